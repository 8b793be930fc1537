// Session seeds (Keras's set_random_seed for one session): the same calls give the same
// initial weights and the same fits; each fit reports the seed it used; a failed call draws no
// seed. Also what a job knows while it waits in the queue.
#include "tests/service/service_fixture.h"

namespace kiln::testing {
namespace {

class SeedTest : public ServiceTest {
 protected:
  std::string CreateSeededSession(std::optional<int64_t> seed) {
    v1::CreateSessionRequest request;
    if (seed.has_value()) request.set_seed(*seed);
    v1::Session session;
    grpc::Status status = sessions_->CreateSession(Context().get(), request, &session);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(session.has_seed(), seed.has_value());
    if (seed.has_value()) {
      EXPECT_EQ(session.seed(), *seed);
    }
    return session.id();
  }

  std::string Weights(const std::string& session, const std::string& layer) {
    v1::GetWeightsRequest request;
    request.set_session_id(session);
    request.set_layer(layer);
    request.set_model("small");
    v1::GetWeightsResponse response;
    grpc::Status status = models_->GetWeights(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::string bytes;
    for (const v1::NamedTensor& w : response.weights()) bytes += w.tensor().data();
    return bytes;
  }

  // Fits the small model (its config without a seed) and returns its job when it has ended.
  v1::Job Fit(const std::string& session) {
    v1::StartFitRequest request;
    request.set_session_id(session);
    request.set_model("small");
    *request.mutable_data() = InlineData(64);
    request.mutable_config()->set_epochs(2);
    request.mutable_config()->set_batch_size(16);
    v1::Job job;
    grpc::Status status = jobs_->StartFit(Context().get(), request, &job);
    EXPECT_TRUE(status.ok()) << status.error_message();
    Watch(session, job.id());
    return GetJob(session, job.id());
  }
};

TEST_F(SeedTest, TheSameSeedGivesTheSameWeightsAndTraining) {
  const std::string a = CreateSeededSession(42), b = CreateSeededSession(42);
  const std::string c = CreateSeededSession(43), unseeded = CreateSeededSession(std::nullopt);
  for (const std::string& s : {a, b, c, unseeded}) {
    BuildSmallModel(s);
    CompileSmallModel(s);
  }
  // BuildSmallModel's layers have no names: conv2d is the first with weights.
  EXPECT_EQ(Weights(a, "conv2d"), Weights(b, "conv2d"));
  EXPECT_NE(Weights(a, "conv2d"), Weights(c, "conv2d"));
  EXPECT_NE(Weights(a, "conv2d"), Weights(unseeded, "conv2d"));

  const v1::Job fit_a = Fit(a), fit_b = Fit(b), fit_c = Fit(c);
  ASSERT_EQ(fit_a.state(), v1::SUCCEEDED);
  ASSERT_TRUE(fit_a.has_seed());
  EXPECT_EQ(fit_a.seed(), fit_b.seed());  // drawn from the session's seed
  EXPECT_NE(fit_a.seed(), fit_c.seed());
  ASSERT_EQ(fit_a.history_size(), 2);
  // Same data, same weights, same shuffling: the same losses (the small model is run on one
  // thread-count, so reductions sum in the same order).
  EXPECT_EQ(fit_a.history(1).logs(0).value(), fit_b.history(1).logs(0).value());
  EXPECT_EQ(Weights(a, "dense"), Weights(b, "dense"));
  // The next fit of the same session draws the next seed.
  EXPECT_NE(Fit(a).seed(), fit_a.seed());
}

TEST_F(SeedTest, AFitWithItsOwnSeedReportsIt) {
  const std::string s = CreateSeededSession(std::nullopt);
  BuildSmallModel(s);
  CompileSmallModel(s);
  v1::StartFitRequest request;
  request.set_session_id(s);
  request.set_model("small");
  *request.mutable_data() = InlineData(32);
  request.mutable_config()->set_seed(1234);
  v1::Job job;
  ASSERT_TRUE(jobs_->StartFit(Context().get(), request, &job).ok());
  EXPECT_EQ(job.seed(), 1234);
  Watch(s, job.id());
  // Unseeded session, no seed in the config: a random seed, reported so the run can be repeated.
  request.mutable_config()->clear_seed();
  ASSERT_TRUE(jobs_->StartFit(Context().get(), request, &job).ok());
  EXPECT_TRUE(job.has_seed());
  Watch(s, job.id());
}

TEST_F(SeedTest, AFailedCallDrawsNoSeed) {
  const std::string a = CreateSeededSession(7), b = CreateSeededSession(7);
  for (const std::string& s : {a, b}) {
    BuildSmallModel(s);
    CompileSmallModel(s);
  }
  // In session a only: a layer that fails to be created and a fit that fails its checks.
  v1::AddLayerRequest bad_layer;
  bad_layer.set_session_id(a);
  bad_layer.mutable_spec()->mutable_dense()->set_units(-1);
  v1::AddLayerResponse added;
  EXPECT_FALSE(models_->AddLayer(Context().get(), bad_layer, &added).ok());
  v1::StartFitRequest bad_fit;
  bad_fit.set_session_id(a);
  bad_fit.set_model("small");
  *bad_fit.mutable_data() = InlineData(8);
  bad_fit.mutable_config()->set_epochs(-1);
  v1::Job job;
  EXPECT_FALSE(jobs_->StartFit(Context().get(), bad_fit, &job).ok());
  // Both sessions go on alike.
  const v1::TensorInfo xa = AddInput(a, {4}), xb = AddInput(b, {4});
  AddLayer(a, "dense { units: 3 name: \"next\" }", {xa.id()});
  AddLayer(b, "dense { units: 3 name: \"next\" }", {xb.id()});
  v1::GetWeightsRequest get;
  get.set_layer("next");
  v1::GetWeightsResponse wa, wb;
  get.set_session_id(a);
  ASSERT_TRUE(models_->GetWeights(Context().get(), get, &wa).ok());
  get.set_session_id(b);
  ASSERT_TRUE(models_->GetWeights(Context().get(), get, &wb).ok());
  EXPECT_EQ(wa.weights(0).tensor().data(), wb.weights(0).tensor().data());
  EXPECT_EQ(Fit(a).seed(), Fit(b).seed());
}

TEST_F(SeedTest, AQueuedFitKnowsItsEpochsAndSteps) {
  const std::string s = CreateSeededSession(1);
  BuildSmallModel(s);
  CompileSmallModel(s);
  v1::StartFitRequest request;
  request.set_session_id(s);
  request.set_model("small");
  *request.mutable_data() = InlineData(100);
  request.mutable_config()->set_epochs(3);
  request.mutable_config()->set_batch_size(16);
  v1::Job job;
  const grpc::Status started = jobs_->StartFit(Context().get(), request, &job);
  ASSERT_TRUE(started.ok()) << started.error_code() << " " << started.error_message();
  EXPECT_EQ(job.epochs(), 3);
  EXPECT_EQ(job.steps_per_epoch(), 7);  // ceil(100 / 16)
  Watch(s, job.id());
  v1::StartPredictRequest predict;
  predict.set_session_id(s);
  predict.set_model("small");
  *predict.mutable_data() = InlineData(10);
  ASSERT_TRUE(jobs_->StartPredict(Context().get(), predict, &job).ok());
  EXPECT_EQ(job.output_dataset(), "predictions-" + job.id());  // known before it runs
  Watch(s, job.id());
}

}  // namespace
}  // namespace kiln::testing
