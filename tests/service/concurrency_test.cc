// Eight clients at once, each with its own channel and session, building, training and
// predicting: every call succeeds and every job finishes.
#include <thread>

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
      auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                         grpc::InsecureChannelCredentials());
      auto jobs = v1::JobService::NewStub(channel);
      auto inference = v1::InferenceService::NewStub(channel);
      const std::string s = CreateSession();
      const std::string model = BuildSmallModel(s, "m" + std::to_string(c));
      CompileSmallModel(s, model);
      v1::StartFitRequest fit;
      fit.set_session_id(s);
      fit.set_model(model);
      *fit.mutable_data() = InlineData(64, c + 1);
      fit.mutable_config()->set_epochs(2);
      fit.mutable_config()->set_batch_size(16);
      v1::Job job;
      grpc::Status status = jobs->StartFit(Context().get(), fit, &job);
      if (!status.ok()) {
        failures[c] = "StartFit: " + status.error_message();
        return;
      }
      const std::vector<v1::JobEvent> events = Watch(s, job.id());
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
        status = inference->Predict(Context().get(), predict, &response);
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

}  // namespace
}  // namespace kiln::testing
