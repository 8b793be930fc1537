// Structured fuzzing of every unary RPC: thousands of requests, most of them valid requests
// changed in a few places, the rest made up field by field (RequestFuzzer). Whatever comes
// back, every call must get a deliberate status - never INTERNAL, UNKNOWN or a deadline - and
// the server must still train a model afterwards. Under KILN_SANITIZE=ON this is the
// sanitizer run of the service.
#include <grpcpp/impl/client_unary_call.h>

#include <cstdlib>
#include <random>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/text_format.h"
#include "tests/service/request_fuzzer.h"
#include "tests/service/service_fixture.h"

namespace kiln::testing {
namespace {

using google::protobuf::Message;

class FuzzTest : public ServiceTest {
 protected:
  void Configure(server::ServerOptions& options) override {
    options.max_session_bytes = int64_t{64} << 20;
    options.max_message_bytes = int64_t{8} << 20;
    // The fuzzer creates many sessions; the server-wide limit is the one it should meet.
    options.max_tenant_sessions = options.max_sessions;
  }
};

// Valid requests for the mutator to start from, in protobuf text format; $S is the session,
// $I and $O the small model's input and output tensors.
constexpr const char* kSeeds[][2] = {
    {"SessionService/CreateSession", R"pb(name: "f" ttl_seconds: 60)pb"},
    {"SessionService/GetSession", R"pb(session_id: "$S")pb"},
    {"ModelService/AddInput", R"pb(session_id: "$S"
                                   input {
                                     shape: [ 8, 8, 1 ]
                                     name: "img"
                                   })pb"},
    {"ModelService/AddLayer",
     R"pb(session_id: "$S"
          inputs: $I
          spec {
            depthwise_conv2d { kernel_size: 3 strides: 2 padding: "same" depth_multiplier: 2 }
          })pb"},
    {"ModelService/AddLayer", R"pb(session_id: "$S"
                                   inputs: $I
                                   spec {
                                     conv2d {
                                       filters: 4
                                       kernel_size: [ 3, 1 ]
                                       dilation_rate: 2
                                       groups: 1
                                     }
                                   })pb"},
    {"ModelService/AddLayer", R"pb(session_id: "$S"
                                   inputs: $I
                                   spec { dense { units: 3 activation: "relu" } })pb"},
    {"ModelService/AddLayer", R"pb(session_id: "$S"
                                   inputs: $I
                                   spec { batch_normalization { axis: -1 } })pb"},
    {"ModelService/AddLayer", R"pb(session_id: "$S"
                                   inputs: $I
                                   spec { max_pooling2d { pool_size: 2 } })pb"},
    {"ModelService/AddLayer", R"pb(session_id: "$S"
                                   inputs: $I
                                   spec { average_pooling2d { pool_size: 3 strides: 1 } })pb"},
    {"ModelService/AddLayer", R"pb(session_id: "$S"
                                   inputs: $I
                                   spec { reshape { target_shape: [ 64 ] } })pb"},
    {"ModelService/AddLayer", R"pb(session_id: "$S"
                                   inputs: $I
                                   spec { zero_padding2d { padding: [ 1 ] } })pb"},
    {"ModelService/AddLayer", R"pb(session_id: "$S"
                                   inputs: $I
                                   spec { dropout { rate: 0.5 } })pb"},
    {"ModelService/AddLayer", R"pb(session_id: "$S"
                                   inputs: [ $I, $I ]
                                   spec { concatenate { axis: -1 } })pb"},
    {"ModelService/AddLayer", R"pb(session_id: "$S"
                                   inputs: [ $I, $I ]
                                   spec { add {} })pb"},
    {"ModelService/AddLayer", R"pb(session_id: "$S"
                                   inputs: $I
                                   spec { flatten {} })pb"},
    {"ModelService/CallLayer", R"pb(session_id: "$S" layer: "re_lu" inputs: $I)pb"},
    {"ModelService/GetLayer", R"pb(session_id: "$S" layer: "depthwise_conv2d")pb"},
    {"ModelService/CreateModel", R"pb(session_id: "$S" name: "again" inputs: $I outputs: $O)pb"},
    {"ModelService/DefineModel", R"pb(session_id: "$S"
                                      replace: true
                                      definition {
                                        name: "defined"
                                        nodes {
                                          id: "x"
                                          input { shape: [ 8, 8, 1 ] }
                                        }
                                        nodes {
                                          id: "dw"
                                          layer { depthwise_conv2d { kernel_size: 3 } }
                                          inputs: "x"
                                        }
                                        nodes {
                                          id: "gap"
                                          layer { global_average_pooling2d {} }
                                          inputs: "dw"
                                        }
                                        nodes {
                                          id: "out"
                                          layer { dense { units: 3 activation: "softmax" } }
                                          inputs: "gap"
                                        }
                                        compile {
                                          optimizer { adam { learning_rate: 0.01 } }
                                          loss { name: "sparse_categorical_crossentropy" }
                                          metrics: "accuracy"
                                        }
                                      })pb"},
    {"ModelService/GetModel", R"pb(session_id: "$S" name: "small")pb"},
    {"ModelService/Compile", R"pb(session_id: "$S"
                                  model: "small"
                                  config {
                                    optimizer { sgd { learning_rate: 0.1 momentum: 0.9 } }
                                    loss { name: "sparse_categorical_crossentropy" }
                                    metrics: "accuracy"
                                  })pb"},
    {"ModelService/GetWeights", R"pb(session_id: "$S" layer: "dense")pb"},
    {"ModelService/SetWeights", R"pb(session_id: "$S"
                                     layer: "dense"
                                     weights {
                                       name: "bias"
                                       tensor {
                                         dtype: FLOAT32
                                         shape: 3
                                         float_values: [ 0, 1, 2 ]
                                       }
                                     })pb"},
    {"DataService/BeginUpload", R"pb(header {
                                       session_id: "$S"
                                       name: "up"
                                       x {
                                         format: "raw"
                                         dtype: FLOAT32
                                         shape: [ 2, 8, 8, 1 ]
                                       }
                                       y { format: "raw" dtype: INT32 shape: 2 }
                                     })pb"},
    {"DataService/OpenDataset", R"pb(session_id: "$S"
                                     name: "fm"
                                     builtin: "fashion_mnist:test"
                                     transform { scale: 0.0039 })pb"},
    {"DataService/OpenDataset", R"pb(session_id: "$S"
                                     name: "file"
                                     files { x: "x.npy" y: "y.npy" })pb"},
    {"DataService/ReadDataset",
     R"pb(session_id: "$S" name: "fm" array: "x" offset: 9990 limit: 5)pb"},
    {"DataService/GetDataset", R"pb(session_id: "$S" name: "fm")pb"},
    {"JobService/StartFit", R"pb(session_id: "$S"
                                 model: "small"
                                 data { dataset: "fm" }
                                 config { epochs: 1 batch_size: 1000 })pb"},
    {"JobService/StartEvaluate", R"pb(session_id: "$S"
                                      model: "small"
                                      data { dataset: "fm" }
                                      config { batch_size: 500 })pb"},
    {"JobService/StartPredict", R"pb(session_id: "$S"
                                     model: "small"
                                     data { dataset: "fm" })pb"},
    {"JobService/GetJob", R"pb(session_id: "$S" job_id: "job-1")pb"},
    {"InferenceService/Predict",
     R"pb(session_id: "$S"
          model: "small"
          inputs {
            dtype: FLOAT32
            shape: [ 2, 8, 8, 1 ]
            float_values: [
              0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
              0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
              0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
              1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
              1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
            ]
          })pb"},
};

TEST_F(FuzzTest, RandomRequestsGetAStatusAndLeaveTheServerWorking) {
  const std::string s = CreateSession();
  BuildSmallModel(s);
  CompileSmallModel(s);
  v1::GetModelRequest get_model;
  get_model.set_session_id(s);
  get_model.set_name("small");
  v1::ModelInfo small;
  ASSERT_TRUE(models_->GetModel(Context().get(), get_model, &small).ok());
  // KILN_FUZZ_SEED and KILN_FUZZ_REQUESTS make longer or different runs by hand.
  const char* seed_env = std::getenv("KILN_FUZZ_SEED");
  const char* requests_env = std::getenv("KILN_FUZZ_REQUESTS");
  const uint32_t seed = seed_env != nullptr ? uint32_t(std::atoll(seed_env)) : 20261124;
  const int requests = requests_env != nullptr ? std::atoi(requests_env) : 3000;
  RequestFuzzer fuzzer(seed);
  fuzzer.set_session(s);
  fuzzer.Harvest(small);

  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  auto* factory = google::protobuf::MessageFactory::generated_factory();
  std::vector<const google::protobuf::MethodDescriptor*> methods;
  for (const char* name : {"kiln.v1.SessionService", "kiln.v1.ModelService", "kiln.v1.DataService",
                           "kiln.v1.JobService", "kiln.v1.InferenceService"}) {
    const auto* service = pool->FindServiceByName(name);
    ASSERT_NE(service, nullptr) << name;
    for (int i = 0; i < service->method_count(); ++i) {
      const auto* method = service->method(i);
      if (method->client_streaming() || method->server_streaming()) continue;
      // Deleting the session would end the run early; it gets its turn at the end.
      if (method->name() == "DeleteSession") continue;
      methods.push_back(method);
    }
  }
  std::vector<std::pair<const google::protobuf::MethodDescriptor*, std::unique_ptr<Message>>> seeds;
  for (const auto& [name, text] : kSeeds) {
    const auto* method =
        pool->FindMethodByName(absl::StrReplaceAll(absl::StrCat("kiln.v1.", name), {{"/", "."}}));
    ASSERT_NE(method, nullptr) << name;
    std::unique_ptr<Message> seed(factory->GetPrototype(method->input_type())->New());
    const std::string filled =
        absl::StrReplaceAll(text, {{"$S", s},
                                   {"$I", absl::StrCat(small.inputs(0).id())},
                                   {"$O", absl::StrCat(small.outputs(0).id())}});
    ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(filled, seed.get())) << filled;
    seeds.emplace_back(method, std::move(seed));
  }
  // The jobs again on data of the small model's shape (Fashion-MNIST is 28x28).
  for (size_t i = 0, n = seeds.size(); i < n; ++i) {
    const auto* data_field = seeds[i].second->GetDescriptor()->FindFieldByName("data");
    if (data_field == nullptr || data_field->message_type() != v1::DataRef::descriptor()) continue;
    std::unique_ptr<Message> copy(seeds[i].second->New());
    copy->CopyFrom(*seeds[i].second);
    copy->GetReflection()->MutableMessage(copy.get(), data_field)->CopyFrom(InlineData(24));
    seeds.emplace_back(seeds[i].first, std::move(copy));
  }

  int ok = 0, refused = 0;
  // Per method, requests that got past validation: accepted, or refused only because of the
  // session's state (e.g. weights busy while a fuzzed fit runs).
  absl::flat_hash_map<std::string, int> reached;
  std::mt19937 pick(seed + 1);
  for (int i = 0; i < requests; ++i) {
    // Mostly a valid request changed in a few places; sometimes one made up from nothing.
    const google::protobuf::MethodDescriptor* method;
    std::unique_ptr<Message> request;
    if (pick() % 4 != 0) {
      const auto& [seed_method, seed] = seeds[pick() % seeds.size()];
      method = seed_method;
      request.reset(seed->New());
      request->CopyFrom(*seed);
      if (pick() % 8 != 0) fuzzer.Mutate(request.get());
    } else {
      method = methods[pick() % methods.size()];
      request.reset(factory->GetPrototype(method->input_type())->New());
      fuzzer.Fill(request.get());
    }
    std::unique_ptr<Message> response(factory->GetPrototype(method->output_type())->New());
    const std::string path = absl::StrCat("/", method->service()->full_name(), "/", method->name());
    grpc::internal::RpcMethod rpc(path.c_str(), grpc::internal::RpcMethod::NORMAL_RPC);
    auto context = Context(30);
    const grpc::Status status = grpc::internal::BlockingUnaryCall<Message, Message>(
        channel_.get(), rpc, context.get(), *request, response.get());
    // Every refusal is a deliberate one: no deadline overruns, no internal errors.
    ASSERT_NE(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
        << path << " " << request->ShortDebugString();
    ASSERT_NE(status.error_code(), grpc::StatusCode::INTERNAL)
        << path << " " << request->ShortDebugString() << ": " << status.error_message();
    ASSERT_NE(status.error_code(), grpc::StatusCode::UNKNOWN)
        << path << " " << request->ShortDebugString() << ": " << status.error_message();
    if (status.ok() || status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
      ++reached[method->name()];
    }
    if (status.ok()) {
      ++ok;
      fuzzer.Harvest(*response);
    } else {
      ++refused;
      EXPECT_FALSE(status.error_message().empty()) << path << " " << request->ShortDebugString();
    }
  }
  std::printf("%d requests accepted, %d refused\n", ok, refused);
  // The fuzzer does reach past validation, into building, training and prediction.
  EXPECT_GT(refused, requests / 6);
  for (const char* method : {"AddLayer", "DefineModel", "SetWeights", "StartFit", "Predict"}) {
    EXPECT_GE(reached[method], 3) << method;
  }

  // The session still works: cancel whatever the fuzzer started, then build and train.
  v1::ListJobsRequest list;
  list.set_session_id(s);
  v1::ListJobsResponse jobs;
  ASSERT_TRUE(jobs_->ListJobs(Context().get(), list, &jobs).ok());
  for (const v1::Job& job : jobs.jobs()) {
    v1::CancelJobRequest cancel;
    cancel.set_session_id(s);
    cancel.set_job_id(job.id());
    v1::Job cancelled;
    jobs_->CancelJob(Context().get(), cancel, &cancelled);
  }
  for (const v1::Job& job : jobs.jobs()) Watch(s, job.id());
  const std::string fresh = CreateSession();
  BuildSmallModel(fresh, "after");
  CompileSmallModel(fresh, "after");
  v1::StartFitRequest fit;
  fit.set_session_id(fresh);
  fit.set_model("after");
  *fit.mutable_data() = InlineData(32);
  v1::Job job;
  ASSERT_TRUE(jobs_->StartFit(Context().get(), fit, &job).ok());
  const std::vector<v1::JobEvent> events = Watch(fresh, job.id());
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().finished().state(), v1::SUCCEEDED);
  v1::DeleteSessionRequest remove;
  remove.set_session_id(s);
  v1::DeleteSessionResponse removed;
  EXPECT_TRUE(sessions_->DeleteSession(Context().get(), remove, &removed).ok());
}

}  // namespace
}  // namespace kiln::testing
