// What an operator sees of a running server: /metrics counting RPCs by method and code, jobs,
// training samples, checkpoints, sessions and memory; /healthz and /readyz; and JSON log lines
// that name the RPC, its code, tenant, session and job.
#include <httplib.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "nlohmann/json.hpp"
#include "tests/service/service_fixture.h"

namespace kiln::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class ObservabilityTest : public ServiceTest {
 protected:
  void Configure(server::ServerOptions& options) override {
    options.http_listen = "127.0.0.1:0";
    options.log_format = "json";
    options.log_rpcs = "all";
  }
  std::function<void(const std::string&)> LogSink() override {
    return [this](const std::string& line) {
      absl::MutexLock lock(&mu_);
      lines_.push_back(line);
    };
  }

  httplib::Result Get(const std::string& path) {
    httplib::Client client("127.0.0.1", server_->http_port());
    return client.Get(path);
  }
  std::string Metrics() {
    httplib::Result result = Get("/metrics");
    EXPECT_TRUE(result) << "no answer from /metrics";
    return result ? result->body : "";
  }
  // The JSON log lines whose "rpc" or "job" field is `value`.
  std::vector<nlohmann::json> LinesOf(const std::string& field, const std::string& value) {
    absl::MutexLock lock(&mu_);
    std::vector<nlohmann::json> found;
    for (const std::string& line : lines_) {
      nlohmann::json parsed = nlohmann::json::parse(line);  // every line is JSON
      if (parsed.value(field, "") == value) found.push_back(parsed);
    }
    return found;
  }
  // Lines of `job`, once there are: a job's end is logged just after its Finished event.
  std::vector<nlohmann::json> JobLines(const std::string& job) {
    for (int i = 0; i < 500; ++i) {
      if (std::vector<nlohmann::json> lines = LinesOf("job", job); !lines.empty()) return lines;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return {};
  }
  v1::Job Fit(const std::string& session, int64_t samples) {
    v1::StartFitRequest request;
    request.set_session_id(session);
    request.set_model("small");
    *request.mutable_data() = InlineData(samples);
    request.mutable_config()->set_epochs(1);
    request.mutable_config()->set_batch_size(16);
    v1::Job job;
    const grpc::Status status = jobs_->StartFit(Context().get(), request, &job);
    EXPECT_TRUE(status.ok()) << status.error_message();
    Watch(session, job.id());
    return job;
  }

  absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
};

TEST_F(ObservabilityTest, MetricsCountRpcsByMethodAndCode) {
  const std::string s = CreateSession();
  v1::GetSessionRequest unknown;
  unknown.set_session_id("no-such-session");
  v1::Session answer;
  EXPECT_EQ(sessions_->GetSession(Context().get(), unknown, &answer).error_code(),
            grpc::StatusCode::NOT_FOUND);
  const std::string text = Metrics();
  EXPECT_THAT(text, HasSubstr("kiln_rpc_requests_total{method=\"/kiln.v1.SessionService/"
                              "CreateSession\",code=\"OK\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("kiln_rpc_requests_total{method=\"/kiln.v1.SessionService/"
                              "GetSession\",code=\"NOT_FOUND\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("kiln_rpc_duration_seconds_count{method=\"/kiln.v1.SessionService/"
                              "CreateSession\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\nkiln_sessions 1\n"));
  EXPECT_THAT(text, HasSubstr("\nprocess_resident_memory_bytes "));
  EXPECT_THAT(text, HasSubstr("\nkiln_compute_threads 2\n"));  // the fixture's
}

TEST_F(ObservabilityTest, AFitMovesTheJobTrainingAndCheckpointFigures) {
  const std::string s = CreateSession();
  BuildSmallModel(s);
  CompileSmallModel(s);
  const std::string before = Metrics();
  EXPECT_THAT(before, Not(HasSubstr("\nkiln_training_samples_total ")));
  EXPECT_THAT(before, Not(HasSubstr("\nkiln_jobs{")));
  const v1::Job job = Fit(s, 40);  // batches of 16, 16 and 8
  const std::vector<nlohmann::json> ended = JobLines(job.id());
  const std::string after = Metrics();
  EXPECT_THAT(after, HasSubstr("\nkiln_training_samples_total 40\n"));
  EXPECT_THAT(after, HasSubstr("\nkiln_jobs{state=\"SUCCEEDED\"} 1\n"));
  EXPECT_THAT(after, HasSubstr("\nkiln_jobs_finished_total{kind=\"fit\",state=\"SUCCEEDED\"} 1\n"));
  EXPECT_THAT(after, HasSubstr("\nkiln_checkpoint_duration_seconds_count "));
  EXPECT_THAT(after, Not(HasSubstr("\nkiln_bytes_held 0\n")));  // the model's weights

  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0]["message"], "fit SUCCEEDED");
  EXPECT_EQ(ended[0]["session"], s);
  EXPECT_EQ(ended[0]["level"], "info");
  EXPECT_GT(ended[0]["duration_ms"].get<double>(), 0);
}

TEST_F(ObservabilityTest, EachRpcGetsAJsonLineWithItsCodeSessionAndDuration) {
  const std::string s = CreateSession();
  v1::AddLayerRequest bad;
  bad.set_session_id(s);
  bad.mutable_spec()->mutable_dense()->set_units(-1);
  v1::AddLayerResponse response;
  grpc::ClientContext context;
  context.AddMetadata("x-kiln-session", s);
  EXPECT_EQ(models_->AddLayer(&context, bad, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  const std::vector<nlohmann::json> lines = LinesOf("rpc", "/kiln.v1.ModelService/AddLayer");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["code"], "INVALID_ARGUMENT");
  EXPECT_EQ(lines[0]["level"], "warning");
  EXPECT_EQ(lines[0]["session"], s);
  EXPECT_THAT(lines[0]["message"].get<std::string>(), HasSubstr("units"));
  EXPECT_GE(lines[0]["duration_ms"].get<double>(), 0);
  EXPECT_THAT(lines[0]["time"].get<std::string>(), ::testing::EndsWith("Z"));
  EXPECT_EQ(LinesOf("rpc", "/kiln.v1.SessionService/CreateSession").at(0)["code"], "OK");
}

TEST_F(ObservabilityTest, HealthAndReadiness) {
  EXPECT_EQ(Get("/healthz")->status, 200);
  EXPECT_EQ(Get("/readyz")->status, 200);
  EXPECT_TRUE(server_->ready());
  server_->Shutdown(absl::Seconds(1));
  EXPECT_FALSE(server_->ready());
  EXPECT_FALSE(Get("/readyz"));  // the listener went with the server
}

}  // namespace
}  // namespace kiln::testing
