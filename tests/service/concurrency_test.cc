// Eight clients at once, each with its own channel and session, building, training and
// predicting: every call succeeds and every job finishes.
#include <cmath>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/service/service_fixture.h"

namespace kiln::testing {
namespace {

class ConcurrencyTest : public ServiceTest {
 protected:
  void Configure(server::ServerOptions& options) override { options.max_concurrent_jobs = 2; }
};

TEST_F(ConcurrencyTest, EightClientsBuildTrainAndPredict) {
  constexpr int kClients = 8;
  std::vector<std::string> failures(kClients);
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      // A channel per client, as separate processes would have.
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // its own connection
      Stubs client(grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                             grpc::InsecureChannelCredentials(), args));
      const std::string s = CreateSession(&client);
      const std::string model = BuildSmallModel(s, absl::StrCat("m", c), &client);
      CompileSmallModel(s, model, &client);
      v1::StartFitRequest fit;
      fit.set_session_id(s);
      fit.set_model(model);
      *fit.mutable_data() = InlineData(64, c + 1);
      fit.mutable_config()->set_epochs(2);
      fit.mutable_config()->set_batch_size(16);
      v1::Job job;
      grpc::Status status = client.jobs->StartFit(Context().get(), fit, &job);
      if (!status.ok()) {
        failures[c] = "StartFit: " + status.error_message();
        return;
      }
      const std::vector<v1::JobEvent> events = Watch(s, job.id(), 0, -1, nullptr, &client);
      if (events.empty() || events.back().finished().state() != v1::SUCCEEDED) {
        failures[c] = "fit did not succeed";
        return;
      }
      v1::PredictRequest predict;
      predict.set_session_id(s);
      predict.set_model(model);
      *predict.add_inputs() = InlineData(5, c).inline_().x(0);
      for (int i = 0; i < 10; ++i) {
        v1::PredictResponse response;
        status = client.inference->Predict(Context().get(), predict, &response);
        if (!status.ok() || response.outputs(0).shape(0) != 5) {
          failures[c] = "Predict: " + status.error_message();
          return;
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  for (int c = 0; c < kClients; ++c) EXPECT_EQ(failures[c], "") << "client " << c;
}

// Predict, GetWeights and Compile calls on one session queue behind each other rather than
// fail, and all of them see consistent weights.
TEST_F(ServiceTest, ConcurrentShortCallsOnOneSessionAllSucceed) {
  const std::string s = CreateSession();
  const std::string model = BuildSmallModel(s);
  v1::PredictRequest predict;
  predict.set_session_id(s);
  predict.set_model(model);
  *predict.add_inputs() = InlineData(32, 7).inline_().x(0);
  v1::PredictResponse expected;
  ASSERT_TRUE(inference_->Predict(Context().get(), predict, &expected).ok());
  constexpr int kCallers = 8;
  std::vector<std::string> failures(kCallers);
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      for (int i = 0; i < 10; ++i) {
        v1::PredictResponse response;
        grpc::Status status = inference_->Predict(Context().get(), predict, &response);
        if (!status.ok()) {
          failures[c] = absl::StrCat("Predict: ", status.error_message());
          return;
        }
        // Thread counts vary with the load, so the sums may round differently.
        const std::string& got = response.outputs(0).data();
        const std::string& want = expected.outputs(0).data();
        for (size_t j = 0; got.size() == want.size() && j < got.size() / sizeof(float); ++j) {
          if (std::abs(reinterpret_cast<const float*>(got.data())[j] -
                       reinterpret_cast<const float*>(want.data())[j]) > 1e-5f) {
            failures[c] = "Predict: different outputs for the same inputs";
            return;
          }
        }
        if (got.size() != want.size()) {
          failures[c] = "Predict: outputs of another size";
          return;
        }
        v1::GetWeightsRequest get;
        get.set_session_id(s);
        get.set_layer("dense");
        v1::GetWeightsResponse weights;
        status = models_->GetWeights(Context().get(), get, &weights);
        if (!status.ok()) {
          failures[c] = absl::StrCat("GetWeights: ", status.error_message());
          return;
        }
      }
    });
  }
  for (auto& t : callers) t.join();
  for (int c = 0; c < kCallers; ++c) EXPECT_EQ(failures[c], "") << "caller " << c;
}

class BusyServerTest : public ServiceTest {
 protected:
  void Configure(server::ServerOptions& options) override {
    options.rpc_worker_threads = 1;
    options.max_queued_rpcs = 2;
  }
};

TEST_F(BusyServerTest, RequestsBeyondTheQueueAreRefusedAndTheServerGoesOn) {
  const std::string s = CreateSession();
  const int64_t input = AddInput(s, {16}).id();
  // A slow call (an Orthogonal initialisation of 4096 x 4096, which stops when cancelled) in
  // another session holds the only worker, so that bursts find it busy however fast the
  // machine is; bursts go on until one was refused.
  const std::string slow_session = CreateSession();
  v1::AddLayerRequest slow;
  slow.set_session_id(slow_session);
  slow.add_inputs(AddInput(slow_session, {4096}).id());
  slow.mutable_spec()->mutable_dense()->set_units(4096);
  slow.mutable_spec()->mutable_dense()->mutable_kernel_initializer()->set_name("orthogonal");
  grpc::ClientContext slow_context;
  std::thread slow_call([&] {
    v1::AddLayerResponse response;
    (void)models_->AddLayer(&slow_context, slow, &response);
  });
  // Far more changes at once than one worker and a queue of two can hold.
  constexpr int kCalls = 48;
  int ok = 0, busy = 0;
  for (int burst = 0; busy == 0 && burst < 100; ++burst) {
    std::vector<grpc::Status> statuses(kCalls);
    std::vector<std::thread> callers;
    for (int i = 0; i < kCalls; ++i) {
      callers.emplace_back([&, i] {
        v1::AddLayerRequest request;
        request.set_session_id(s);
        request.mutable_spec()->mutable_dense()->set_units(8);
        request.add_inputs(input);
        v1::AddLayerResponse response;
        statuses[i] = models_->AddLayer(Context().get(), request, &response);
        // Refused: the slow call has done its part, and the queued calls wait behind it.
        if (!statuses[i].ok()) slow_context.TryCancel();
      });
    }
    for (std::thread& t : callers) t.join();
    for (const grpc::Status& status : statuses) {
      if (status.ok()) {
        ++ok;
      } else {
        ExpectError(status, grpc::StatusCode::RESOURCE_EXHAUSTED, "", "the server is busy");
        ++busy;
      }
    }
  }
  slow_context.TryCancel();
  slow_call.join();
  EXPECT_GT(busy, 0);
  // The server goes on: a call after the bursts is served.
  v1::AddLayerRequest after;
  after.set_session_id(s);
  after.mutable_spec()->mutable_dense()->set_units(8);
  after.add_inputs(input);
  v1::AddLayerResponse added;
  ASSERT_TRUE(models_->AddLayer(Context().get(), after, &added).ok());
  ++ok;
  // Every accepted call, and only those, made a layer.
  v1::GetSessionRequest get;
  get.set_session_id(s);
  v1::Session session;
  ASSERT_TRUE(sessions_->GetSession(Context().get(), get, &session).ok());
  EXPECT_EQ(session.layers_size(), ok);
}

}  // namespace
}  // namespace kiln::testing
