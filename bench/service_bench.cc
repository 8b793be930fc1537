// Kiln measured through its gRPC API, as a remote client sees it. Against a running
// kiln-server (--server), on the TinyMobileNet workload of ../shared/peers/torch_bench.py
// (32x32x3, batch 64; see bench/torch_tiny_mobilenet.py), it measures:
//   train     samples/s of a fit job (server-side epoch times, the first epoch discarded)
//   infer     Predict RPC of 64 images: latency p50/p99 and images/s at p50
//   latency   Predict RPC of 1 image: latency p50/p99
//   rps       Predict RPCs/s (1 image each) with --clients concurrent clients, each on its own
//             channel and session
// and prints one JSON object. bench/compare_service.py runs it next to PyTorch.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/cpp/client.h"
#include "core/base/status.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051", "kiln-server address");
ABSL_FLAG(std::string, modes, "train,infer,latency,rps", "what to measure, comma-separated");
ABSL_FLAG(int, train_steps, 40, "batches per training epoch");
ABSL_FLAG(int, train_epochs, 4, "training epochs (the first is warm-up)");
ABSL_FLAG(int, infer_calls, 40, "timed batch-64 Predict calls");
ABSL_FLAG(int, latency_calls, 400, "timed batch-1 Predict calls");
ABSL_FLAG(int, clients, 8, "rps: concurrent clients");
ABSL_FLAG(double, rps_seconds, 5, "rps: seconds of load");

namespace kiln::bench {
namespace {

using client::Client;

std::unique_ptr<Client> Connect(const std::string& target) {
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(target);
  if (!client.ok()) {
    std::fprintf(stderr, "service_bench: %s\n", client.status().ToString().c_str());
    std::exit(1);
  }
  return *std::move(client);
}

constexpr int kBatch = 64;
constexpr int kImage = 32 * 32 * 3;

// TinyMobileNet as a ModelDefinition: Conv2D 3x3/32 + BN + ReLU, four [DepthwiseConv2D 3x3 +
// BN + ReLU + Conv2D 1x1 + BN + ReLU] blocks (strides 1,2,1,2; channels 64,128,128,256),
// GlobalAveragePooling2D, Dense(10) logits; BatchNormalization with PyTorch's eps and momentum.
v1::ModelDefinition TinyMobileNet() {
  v1::ModelDefinition d;
  d.set_name("tiny_mobilenet");
  std::string previous = "image";
  v1::GraphNode* input = d.add_nodes();
  input->set_id("image");
  for (int dim : {32, 32, 3}) input->mutable_input()->add_shape(dim);
  int index = 0;
  auto add = [&](auto configure) {
    v1::GraphNode* node = d.add_nodes();
    node->set_id(absl::StrCat("n", index++));
    node->add_inputs(previous);
    configure(*node->mutable_layer());
    previous = node->id();
  };
  auto conv = [&](int filters, int kernel) {
    add([&](v1::LayerSpec& s) {
      s.mutable_conv2d()->set_filters(filters);
      s.mutable_conv2d()->add_kernel_size(kernel);
      s.mutable_conv2d()->set_padding("same");
      s.mutable_conv2d()->set_use_bias(false);
    });
  };
  auto bn_relu = [&] {
    add([](v1::LayerSpec& s) {
      s.mutable_batch_normalization()->set_epsilon(1e-5f);
      s.mutable_batch_normalization()->set_momentum(0.9f);
    });
    add([](v1::LayerSpec& s) { s.mutable_relu(); });
  };
  conv(32, 3);
  bn_relu();
  for (auto [filters, stride] :
       std::vector<std::pair<int, int>>{{64, 1}, {128, 2}, {128, 1}, {256, 2}}) {
    add([&, stride = stride](v1::LayerSpec& s) {
      s.mutable_depthwise_conv2d()->add_kernel_size(3);
      s.mutable_depthwise_conv2d()->add_strides(stride);
      s.mutable_depthwise_conv2d()->set_padding("same");
      s.mutable_depthwise_conv2d()->set_use_bias(false);
    });
    bn_relu();
    conv(filters, 1);
    bn_relu();
  }
  add([](v1::LayerSpec& s) { s.mutable_global_average_pooling2d(); });
  add([](v1::LayerSpec& s) { s.mutable_dense()->set_units(10); });
  d.add_inputs("image");
  d.add_outputs(previous);
  v1::CompileConfig& compile = *d.mutable_compile();
  compile.mutable_optimizer()->mutable_sgd()->set_learning_rate(0.01f);
  compile.mutable_optimizer()->mutable_sgd()->set_momentum(0.9f);
  compile.mutable_loss()->set_name("sparse_categorical_crossentropy");
  compile.mutable_loss()->set_from_logits(true);
  return d;
}

std::vector<float> RandomImages(int n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal;
  std::vector<float> x(size_t(n) * kImage);
  for (float& v : x) v = normal(gen);
  return x;
}

v1::TensorProto ImagesTensor(const std::vector<float>& x, int n) {
  v1::TensorProto t;
  t.set_dtype(v1::FLOAT32);
  for (int d : {n, 32, 32, 3}) t.add_shape(d);
  t.set_data(x.data(), size_t(n) * kImage * sizeof(float));
  return t;
}

// A session holding the compiled model; deleted when this goes away.
class BenchSession {
 public:
  static absl::StatusOr<std::unique_ptr<BenchSession>> Create(Client& c) {
    v1::CreateSessionRequest create;
    create.set_name("service-bench");
    KILN_ASSIGN_OR_RETURN(v1::Session s,
                          c.Call(&v1::SessionService::Stub::CreateSession, c.sessions(), create));
    auto session = std::unique_ptr<BenchSession>(new BenchSession(c, s.id()));
    v1::DefineModelRequest define;
    define.set_session_id(s.id());
    *define.mutable_definition() = TinyMobileNet();
    KILN_RETURN_IF_ERROR(c.Call(&v1::ModelService::Stub::DefineModel, c.models(), define).status());
    return session;
  }
  ~BenchSession() {
    v1::DeleteSessionRequest request;
    request.set_session_id(id_);
    c_.Call(&v1::SessionService::Stub::DeleteSession, c_.sessions(), request).IgnoreError();
  }
  const std::string& id() const { return id_; }

  absl::StatusOr<double> PredictMs(const v1::PredictRequest& request) {
    const absl::Time start = absl::Now();
    KILN_RETURN_IF_ERROR(
        c_.Call(&v1::InferenceService::Stub::Predict, c_.inference(), request).status());
    return absl::ToDoubleMilliseconds(absl::Now() - start);
  }

  v1::PredictRequest PredictRequestFor(const std::vector<float>& x, int n) const {
    v1::PredictRequest request;
    request.set_session_id(id_);
    request.set_model("tiny_mobilenet");
    *request.add_inputs() = ImagesTensor(x, n);
    return request;
  }

 private:
  BenchSession(Client& c, std::string id) : c_(c), id_(std::move(id)) {}
  Client& c_;
  std::string id_;
};

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

absl::Status Upload(Client& c, const std::string& session, int n) {
  const std::vector<float> x = RandomImages(n, 1);
  std::vector<int32_t> y(n);
  std::mt19937 gen(2);
  for (int32_t& label : y) label = int32_t(gen() % 10);
  v1::UploadDatasetRequest header;
  v1::UploadHeader& h = *header.mutable_header();
  h.set_session_id(session);
  h.set_name("train");
  v1::ArraySpec& xs = *h.add_x();
  xs.set_format("raw");
  xs.set_dtype(v1::FLOAT32);
  for (int d : {n, 32, 32, 3}) xs.add_shape(d);
  h.mutable_y()->set_format("raw");
  h.mutable_y()->set_dtype(v1::INT32);
  h.mutable_y()->add_shape(n);
  grpc::ClientContext context;
  v1::DatasetInfo info;
  auto writer = c.data().UploadDataset(&context, &info);
  writer->Write(header);
  auto send = [&](const std::string& array, const char* data, size_t bytes) {
    for (size_t offset = 0; offset < bytes; offset += 1 << 20) {
      v1::UploadDatasetRequest chunk;
      chunk.mutable_chunk()->set_array(array);
      chunk.mutable_chunk()->set_data(data + offset, std::min<size_t>(1 << 20, bytes - offset));
      if (!writer->Write(chunk)) return;
    }
  };
  send("x", reinterpret_cast<const char*>(x.data()), x.size() * sizeof(float));
  send("y", reinterpret_cast<const char*>(y.data()), y.size() * sizeof(int32_t));
  writer->WritesDone();
  return client::FromGrpc(writer->Finish());
}

// Median samples/s over the epochs after the first, from the server's EpochEnd times.
absl::StatusOr<std::string> Train(Client& c, BenchSession& session) {
  const int steps = absl::GetFlag(FLAGS_train_steps);
  KILN_RETURN_IF_ERROR(Upload(c, session.id(), steps * kBatch));
  v1::StartFitRequest fit;
  fit.set_session_id(session.id());
  fit.set_model("tiny_mobilenet");
  fit.mutable_data()->set_dataset("train");
  fit.mutable_config()->set_batch_size(kBatch);
  fit.mutable_config()->set_epochs(absl::GetFlag(FLAGS_train_epochs));
  fit.mutable_config()->set_shuffle(false);
  KILN_ASSIGN_OR_RETURN(v1::Job job, c.Call(&v1::JobService::Stub::StartFit, c.jobs(), fit));
  std::vector<double> samples_per_s;
  KILN_ASSIGN_OR_RETURN(v1::Finished finished,
                        c.WatchJob(session.id(), job.id(), 0, [&](const v1::JobEvent& e) {
                          if (e.has_epoch_end() && e.epoch_end().epoch() > 0) {
                            samples_per_s.push_back(steps * kBatch / e.epoch_end().seconds());
                          }
                        }));
  if (finished.state() != v1::SUCCEEDED || samples_per_s.empty()) {
    return absl::InternalError(absl::StrCat("fit: ", finished.error().message()));
  }
  return absl::StrFormat("\"train_img_s\": %.1f, \"train_step_ms\": %.3f",
                         Percentile(samples_per_s, 0.5),
                         kBatch * 1e3 / Percentile(samples_per_s, 0.5));
}

// `calls` timed Predict calls after a few untimed ones.
absl::StatusOr<std::vector<double>> TimePredict(BenchSession& session, int n, int calls) {
  const v1::PredictRequest request = session.PredictRequestFor(RandomImages(n, 3), n);
  std::vector<double> ms;
  for (int i = 0; i < calls + std::max(5, calls / 10); ++i) {
    KILN_ASSIGN_OR_RETURN(double t, session.PredictMs(request));
    if (i >= calls / 10 && ms.size() < size_t(calls)) ms.push_back(t);
  }
  return ms;
}

absl::StatusOr<std::string> Infer(BenchSession& session) {
  KILN_ASSIGN_OR_RETURN(auto ms, TimePredict(session, kBatch, absl::GetFlag(FLAGS_infer_calls)));
  const double p50 = Percentile(ms, 0.5);
  return absl::StrFormat(
      "\"predict64_p50_ms\": %.3f, \"predict64_p99_ms\": %.3f, \"infer_img_s\": %.1f", p50,
      Percentile(ms, 0.99), kBatch * 1e3 / p50);
}

absl::StatusOr<std::string> Latency(BenchSession& session) {
  KILN_ASSIGN_OR_RETURN(auto ms, TimePredict(session, 1, absl::GetFlag(FLAGS_latency_calls)));
  return absl::StrFormat("\"predict1_p50_ms\": %.3f, \"predict1_p99_ms\": %.3f",
                         Percentile(ms, 0.5), Percentile(ms, 0.99));
}

// Each client: its own channel (no shared connection), session and model.
absl::StatusOr<std::string> Rps() {
  const int clients = absl::GetFlag(FLAGS_clients);
  const absl::Duration load = absl::Seconds(absl::GetFlag(FLAGS_rps_seconds));
  std::vector<std::unique_ptr<Client>> channels;
  std::vector<std::unique_ptr<BenchSession>> sessions;
  for (int i = 0; i < clients; ++i) {
    channels.push_back(Connect(absl::GetFlag(FLAGS_server)));
    KILN_ASSIGN_OR_RETURN(auto session, BenchSession::Create(*channels.back()));
    sessions.push_back(std::move(session));
  }
  std::atomic<bool> go{false};
  std::vector<std::vector<double>> latencies(clients);
  std::vector<absl::Status> errors(clients);
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      const v1::PredictRequest request = sessions[i]->PredictRequestFor(RandomImages(1, i), 1);
      for (int w = 0; w < 5; ++w) sessions[i]->PredictMs(request).IgnoreError();  // warm-up
      while (!go.load()) std::this_thread::yield();
      const absl::Time end = absl::Now() + load;
      while (absl::Now() < end) {
        absl::StatusOr<double> t = sessions[i]->PredictMs(request);
        if (!t.ok()) {
          errors[i] = t.status();
          return;
        }
        latencies[i].push_back(*t);
      }
    });
  }
  go = true;
  for (std::thread& t : threads) t.join();
  std::vector<double> all;
  for (int i = 0; i < clients; ++i) {
    KILN_RETURN_IF_ERROR(errors[i]);
    all.insert(all.end(), latencies[i].begin(), latencies[i].end());
  }
  return absl::StrFormat(
      "\"rps_clients\": %d, \"rps\": %.1f, \"rps_p50_ms\": %.3f, \"rps_p99_ms\": %.3f", clients,
      all.size() / absl::ToDoubleSeconds(load), Percentile(all, 0.5), Percentile(all, 0.99));
}

absl::Status Run() {
  std::unique_ptr<Client> connection = Connect(absl::GetFlag(FLAGS_server));
  Client& c = *connection;
  KILN_RETURN_IF_ERROR(c.Health());
  std::vector<std::string> fields;
  for (absl::string_view mode : absl::StrSplit(absl::GetFlag(FLAGS_modes), ',')) {
    absl::StatusOr<std::string> result;
    if (mode == "rps") {
      result = Rps();
    } else {
      KILN_ASSIGN_OR_RETURN(auto session, BenchSession::Create(c));
      if (mode == "train") {
        result = Train(c, *session);
      } else if (mode == "infer") {
        result = Infer(*session);
      } else if (mode == "latency") {
        result = Latency(*session);
      } else {
        return absl::InvalidArgumentError(absl::StrCat("unknown mode ", mode));
      }
    }
    if (!result.ok()) return result.status();
    fields.push_back(*result);
  }
  std::printf("{%s}\n", absl::StrJoin(fields, ", ").c_str());
  return absl::OkStatus();
}

}  // namespace
}  // namespace kiln::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const absl::Status status = kiln::bench::Run();
  if (!status.ok()) {
    std::fprintf(stderr, "service_bench: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
