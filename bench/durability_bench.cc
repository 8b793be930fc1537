// What durability costs a client: latency of the calls that change state, against a running
// kiln-server (--server). bench/compare_durability.py runs it against a server that keeps its
// state (--state_dir) and one that does not (--ephemeral), round after round, and reports the
// ratio. Measured, each as p50 and p99 of --calls calls, in microseconds:
//   create_session  CreateSession (the session is deleted after the timing)
//   add_layer       AddLayer: a Dense(16) card on a (16,) input, called on it
//   set_weights     SetWeights of a 1 MiB kernel (Dense 512 -> 512, float32)
// Prints one JSON object.
#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "client/cpp/client.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051", "kiln-server address");
ABSL_FLAG(int, calls, 200, "timed calls of each kind");

namespace kiln::bench {
namespace {

using client::Client;

struct Percentiles {
  double p50 = 0, p99 = 0;
};

Percentiles Of(std::vector<double> micros) {
  std::sort(micros.begin(), micros.end());
  auto at = [&](double q) {
    return micros[std::min(micros.size() - 1, size_t(q * micros.size()))];
  };
  return {at(0.50), at(0.99)};
}

template <typename Fn>
Percentiles Time(int calls, Fn call) {
  std::vector<double> micros;
  for (int i = 0; i < calls; ++i) {
    const absl::Time start = absl::Now();
    call(i);
    micros.push_back(absl::ToDoubleMicroseconds(absl::Now() - start));
  }
  return Of(std::move(micros));
}

template <typename T>
T Check(absl::StatusOr<T> result, const char* what) {
  if (!result.ok()) {
    std::fprintf(stderr, "durability_bench: %s: %s\n", what, result.status().ToString().c_str());
    std::exit(1);
  }
  return *std::move(result);
}

std::string NewSession(Client& c) {
  v1::CreateSessionRequest request;
  request.set_name("durability_bench");
  return Check(c.Call(&v1::SessionService::Stub::CreateSession, c.sessions(), request),
               "CreateSession")
      .id();
}

void DeleteSession(Client& c, const std::string& id) {
  v1::DeleteSessionRequest request;
  request.set_session_id(id);
  Check(c.Call(&v1::SessionService::Stub::DeleteSession, c.sessions(), request), "DeleteSession");
}

int64_t AddInput(Client& c, const std::string& session, int64_t width) {
  v1::AddInputRequest request;
  request.set_session_id(session);
  request.mutable_input()->add_shape(width);
  return Check(c.Call(&v1::ModelService::Stub::AddInput, c.models(), request), "AddInput").id();
}

v1::AddLayerResponse AddDense(Client& c, const std::string& session, int64_t input, int units,
                              const std::string& name) {
  v1::AddLayerRequest request;
  request.set_session_id(session);
  request.mutable_spec()->mutable_dense()->set_units(units);
  request.mutable_spec()->mutable_dense()->set_name(name);
  request.add_inputs(input);
  return Check(c.Call(&v1::ModelService::Stub::AddLayer, c.models(), request), "AddLayer");
}

int Main() {
  std::unique_ptr<Client> connection =
      Check(Client::Connect(absl::GetFlag(FLAGS_server)), "Connect");
  Client& c = *connection;
  const int calls = absl::GetFlag(FLAGS_calls);
  std::vector<std::string> created;
  const Percentiles create = Time(calls, [&](int) { created.push_back(NewSession(c)); });
  for (const std::string& id : created) DeleteSession(c, id);

  const std::string session = NewSession(c);
  const int64_t input = AddInput(c, session, 16);
  const Percentiles add =
      Time(calls, [&](int i) { AddDense(c, session, input, 16, absl::StrFormat("dense_%d", i)); });

  AddDense(c, session, AddInput(c, session, 512), 512, "big");
  v1::SetWeightsRequest set;
  set.set_session_id(session);
  set.set_layer("big");
  v1::NamedTensor* kernel = set.add_weights();
  kernel->set_name("kernel");
  kernel->mutable_tensor()->set_dtype(v1::FLOAT32);
  kernel->mutable_tensor()->add_shape(512);
  kernel->mutable_tensor()->add_shape(512);
  // Two kernels, prepared before the timing, taken in turn: every call changes the weights.
  std::string kernels[2];
  std::mt19937 gen(1);
  std::uniform_real_distribution<float> uniform(-0.1f, 0.1f);
  for (std::string& bytes : kernels) {
    std::vector<float> values(512 * 512);
    for (float& v : values) v = uniform(gen);
    bytes.assign(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  }
  const Percentiles set_weights = Time(calls, [&](int i) {
    kernel->mutable_tensor()->set_data(kernels[i % 2]);
    Check(c.Call(&v1::ModelService::Stub::SetWeights, c.models(), set), "SetWeights");
  });
  DeleteSession(c, session);

  std::printf(
      "{\"create_session\": {\"p50_us\": %.1f, \"p99_us\": %.1f}, "
      "\"add_layer\": {\"p50_us\": %.1f, \"p99_us\": %.1f}, "
      "\"set_weights_1mib\": {\"p50_us\": %.1f, \"p99_us\": %.1f}, \"calls\": %d}\n",
      create.p50, create.p99, add.p50, add.p99, set_weights.p50, set_weights.p99, calls);
  return 0;
}

}  // namespace
}  // namespace kiln::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return kiln::bench::Main();
}
