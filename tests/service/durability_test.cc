// Durable state through the service: what a restarted server brings back, checkpoints and
// resumed fits, damaged state, disk space, TTLs across restarts, and a full state directory.
// The server restarts in-process (as SIGTERM stops it); the crash tests of the real binary
// are in tests/e2e/crash_test.py.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "server/store/failpoint.h"
#include "server/store/sqlite.h"
#include "tests/service/service_fixture.h"

// A call that must succeed, with the server's message when it does not.
#define ASSERT_RPC_OK(call)                                       \
  do {                                                            \
    const grpc::Status rpc_status_ = (call);                      \
    ASSERT_TRUE(rpc_status_.ok()) << rpc_status_.error_message(); \
  } while (0)

namespace kiln::testing {
namespace {

using google::protobuf::util::MessageDifferencer;
using grpc::StatusCode;
using ::testing::HasSubstr;

class DurabilityTest : public ServiceTest {
 protected:
  // One compute thread: fits repeat bit for bit.
  void Configure(server::ServerOptions& options) override { options.compute_threads = 1; }

  std::string SeededSession(int64_t seed) {
    v1::CreateSessionRequest request;
    request.set_name("durable");
    request.set_seed(seed);
    v1::Session session;
    EXPECT_TRUE(sessions_->CreateSession(Context().get(), request, &session).ok());
    return session.id();
  }

  v1::Job StartFit(const std::string& session, int epochs, const std::string& config_text = "") {
    v1::StartFitRequest request;
    request.set_session_id(session);
    request.set_model("small");
    *request.mutable_data() = InlineData(96, 3);
    request.mutable_config()->set_epochs(epochs);
    request.mutable_config()->set_batch_size(8);
    if (!config_text.empty()) {
      v1::FitConfig extra;
      EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(config_text, &extra));
      request.mutable_config()->MergeFrom(extra);
    }
    v1::Job job;
    const grpc::Status status = jobs_->StartFit(Context().get(), request, &job);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return job;
  }

  // Every weight of every layer with weights of the small model, by "layer/weight".
  std::map<std::string, std::string> ModelWeights(const std::string& session) {
    v1::GetModelRequest get;
    get.set_session_id(session);
    get.set_name("small");
    v1::ModelInfo model;
    EXPECT_TRUE(models_->GetModel(Context().get(), get, &model).ok());
    std::map<std::string, std::string> weights;
    for (const v1::LayerSummary& layer : model.layers()) {
      if (layer.params() == 0) continue;
      v1::GetWeightsRequest request;
      request.set_session_id(session);
      request.set_layer(layer.name());
      v1::GetWeightsResponse response;
      const grpc::Status status = models_->GetWeights(Context().get(), request, &response);
      EXPECT_TRUE(status.ok()) << status.error_message();
      for (const v1::NamedTensor& w : response.weights()) {
        weights[absl::StrCat(layer.name(), "/", w.name())] = w.tensor().data();
      }
    }
    return weights;
  }

  v1::Job Resume(const std::string& session, const std::string& job) {
    v1::ResumeJobRequest request;
    request.set_session_id(session);
    request.set_job_id(job);
    v1::Job resumed;
    const grpc::Status status = jobs_->ResumeJob(Context().get(), request, &resumed);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return resumed;
  }

  std::vector<v1::Checkpoint> Checkpoints(const std::string& session, const std::string& job) {
    v1::ListCheckpointsRequest request;
    request.set_session_id(session);
    request.set_job_id(job);
    v1::ListCheckpointsResponse response;
    EXPECT_TRUE(jobs_->ListCheckpoints(Context().get(), request, &response).ok());
    return {response.checkpoints().begin(), response.checkpoints().end()};
  }

  // Cancels `job` once it reported `batches` batch ends.
  void CancelAfterBatches(const std::string& session, const std::string& job, int batches) {
    for (int i = 0; i < 2000 && GetJob(session, job).batches_done() < batches; ++i) {
      absl::SleepFor(absl::Milliseconds(2));
    }
    v1::CancelJobRequest cancel;
    cancel.set_session_id(session);
    cancel.set_job_id(job);
    v1::Job cancelled;
    ASSERT_RPC_OK(jobs_->CancelJob(Context().get(), cancel, &cancelled));
  }

  int64_t TensorBytes() {
    int64_t bytes = 0;
    std::error_code error;
    for (const auto& f :
         std::filesystem::recursive_directory_iterator(options_.state_dir + "/tensors", error)) {
      if (f.is_regular_file()) bytes += int64_t(f.file_size());
    }
    return bytes;
  }

  std::vector<std::string> TensorFiles() {
    std::vector<std::string> files;
    std::error_code error;
    for (const auto& f :
         std::filesystem::recursive_directory_iterator(options_.state_dir + "/tensors", error)) {
      if (f.is_regular_file()) files.push_back(f.path().string());
    }
    return files;
  }
};

TEST_F(DurabilityTest, ARestartedServerHasEverySessionModelWeightDatasetAndJob) {
  const std::string s = SeededSession(5);
  BuildSmallModel(s);
  CompileSmallModel(s);
  // A layer created unbuilt and called later, a DefineModel model and a dataset too.
  const v1::AddLayerResponse spare = AddLayer(s, "dense { units: 2 name: \"spare\" }", {});
  v1::CallLayerRequest call;
  call.set_session_id(s);
  call.set_layer("spare");
  call.add_inputs(AddInput(s, {5}, "side").id());
  v1::CallLayerResponse called;
  ASSERT_RPC_OK(models_->CallLayer(Context().get(), call, &called));
  v1::DefineModelRequest define;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      R"pb(definition {
             name: "defined"
             nodes {
               id: "x"
               input { shape: [ 4 ] }
             }
             nodes {
               id: "d"
               layer { dense { units: 3 } }
               inputs: "x"
             }
             compile {
               optimizer { name: "sgd" }
               loss { name: "mse" }
             }
           })pb",
      &define));
  define.set_session_id(s);
  v1::ModelInfo defined;
  ASSERT_RPC_OK(models_->DefineModel(Context().get(), define, &defined));
  v1::BeginUploadRequest begin;
  begin.mutable_header()->set_session_id(s);
  begin.mutable_header()->set_name("raw");
  v1::ArraySpec* x = begin.mutable_header()->add_x();
  x->set_format("raw");
  x->set_dtype(v1::FLOAT32);
  for (int64_t d : {3, 4}) x->add_shape(d);
  v1::BeginUploadResponse upload;
  ASSERT_RPC_OK(data_->BeginUpload(Context().get(), begin, &upload));
  v1::AppendUploadChunkRequest chunk;
  chunk.set_session_id(s);
  chunk.set_upload_id(upload.upload_id());
  chunk.mutable_chunk()->set_array("x");
  const std::vector<float> values = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  chunk.mutable_chunk()->set_data(values.data(), values.size() * sizeof(float));
  v1::AppendUploadChunkResponse appended;
  ASSERT_RPC_OK(data_->AppendUploadChunk(Context().get(), chunk, &appended));
  v1::FinishUploadRequest finish;
  finish.set_session_id(s);
  finish.set_upload_id(upload.upload_id());
  v1::DatasetInfo dataset;
  ASSERT_RPC_OK(data_->FinishUpload(Context().get(), finish, &dataset));
  // A finished fit (weights and optimizer state) and a predict job (a dataset of predictions).
  const v1::Job fit = StartFit(s, 2);
  Watch(s, fit.id());
  v1::StartPredictRequest predict;
  predict.set_session_id(s);
  predict.set_model("small");
  *predict.mutable_data() = InlineData(10, 9);
  v1::Job predict_job;
  ASSERT_RPC_OK(jobs_->StartPredict(Context().get(), predict, &predict_job));
  Watch(s, predict_job.id());

  v1::GetSessionRequest get;
  get.set_session_id(s);
  v1::Session before, after;
  ASSERT_RPC_OK(sessions_->GetSession(Context().get(), get, &before));
  const std::map<std::string, std::string> weights = ModelWeights(s);
  v1::ListJobsRequest list_jobs;
  list_jobs.set_session_id(s);
  v1::ListJobsResponse jobs_before, jobs_after;
  ASSERT_RPC_OK(jobs_->ListJobs(Context().get(), list_jobs, &jobs_before));
  const std::vector<v1::JobEvent> events = Watch(s, fit.id());
  v1::PredictRequest unary;
  unary.set_session_id(s);
  unary.set_model("small");
  *unary.add_inputs() = InlineData(4, 11).inline_().x(0);
  v1::PredictResponse predicted_before, predicted_after;
  ASSERT_RPC_OK(inference_->Predict(Context().get(), unary, &predicted_before));

  RestartServer();

  ASSERT_RPC_OK(sessions_->GetSession(Context().get(), get, &after));
  before.clear_expires();
  after.clear_expires();
  // Plans and optimizer slots are made again on first use, not restored.
  before.clear_bytes_held();
  after.clear_bytes_held();
  EXPECT_TRUE(MessageDifferencer::Equals(before, after)) << before.DebugString() << "\nvs\n"
                                                         << after.DebugString();
  EXPECT_EQ(ModelWeights(s), weights);
  ASSERT_RPC_OK(jobs_->ListJobs(Context().get(), list_jobs, &jobs_after));
  EXPECT_TRUE(MessageDifferencer::Equals(jobs_before, jobs_after))
      << jobs_before.DebugString() << "\nvs\n"
      << jobs_after.DebugString();
  const std::vector<v1::JobEvent> events_after = Watch(s, fit.id());
  ASSERT_EQ(events_after.size(), events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(events[i], events_after[i])) << i;
  }
  ASSERT_RPC_OK(inference_->Predict(Context().get(), unary, &predicted_after));
  EXPECT_EQ(predicted_after.outputs(0).data(), predicted_before.outputs(0).data());
  v1::ReadDatasetRequest read;
  read.set_session_id(s);
  read.set_name("raw");
  v1::TensorProto raw;
  ASSERT_RPC_OK(data_->ReadDataset(Context().get(), read, &raw));
  EXPECT_EQ(raw.data(), std::string(reinterpret_cast<const char*>(values.data()),
                                    values.size() * sizeof(float)));
  read.set_name(predict_job.output_dataset());
  ASSERT_RPC_OK(data_->ReadDataset(Context().get(), read, &raw));
  EXPECT_EQ(raw.shape(0), 10);
  // The optimizer state came back too: one more epoch from here equals one more epoch in a
  // session that never restarted (the seeded twin below, trained the same way).
  const std::string twin = SeededSession(5);
  BuildSmallModel(twin);
  CompileSmallModel(twin);
  AddLayer(twin, "dense { units: 2 name: \"spare\" }", {});
  call.set_session_id(twin);
  call.clear_inputs();
  call.add_inputs(AddInput(twin, {5}, "side").id());
  ASSERT_RPC_OK(models_->CallLayer(Context().get(), call, &called));
  define.set_session_id(twin);
  ASSERT_RPC_OK(models_->DefineModel(Context().get(), define, &defined));
  Watch(twin, StartFit(twin, 2).id());
  EXPECT_EQ(ModelWeights(twin), weights);
  const v1::Job more = StartFit(s, 1, "seed: 77");
  const v1::Job more_twin = StartFit(twin, 1, "seed: 77");
  Watch(s, more.id());
  Watch(twin, more_twin.id());
  EXPECT_EQ(ModelWeights(s), ModelWeights(twin));
  // Seeds continue where they were: the next layer gets the same weights in both sessions.
  const std::string next = "dense { units: 3 name: \"next\" }";
  AddLayer(s, next, {AddInput(s, {6}, "in6").id()});
  AddLayer(twin, next, {AddInput(twin, {6}, "in6").id()});
  v1::GetWeightsRequest next_weights;
  next_weights.set_layer("next");
  v1::GetWeightsResponse a, b;
  next_weights.set_session_id(s);
  ASSERT_RPC_OK(models_->GetWeights(Context().get(), next_weights, &a));
  next_weights.set_session_id(twin);
  ASSERT_RPC_OK(models_->GetWeights(Context().get(), next_weights, &b));
  EXPECT_EQ(a.weights(0).tensor().data(), b.weights(0).tensor().data());
}

TEST_F(DurabilityTest, AResumedFitEndsWithTheWeightsOfAnUninterruptedOne) {
  // The reference: a fit that runs through.
  const std::string reference = SeededSession(11);
  BuildSmallModel(reference);
  CompileSmallModel(reference);
  constexpr int kEpochs = 20;
  const v1::Job full = StartFit(reference, kEpochs, "seed: 3 checkpoint_every_batches: 5");
  ASSERT_EQ(Watch(reference, full.id()).back().finished().state(), v1::SUCCEEDED);
  const std::map<std::string, std::string> expected = ModelWeights(reference);

  // The same fit, cancelled mid-epoch, resumed, stopped by a restart, and resumed again.
  const std::string s = SeededSession(11);
  BuildSmallModel(s);
  CompileSmallModel(s);
  const v1::Job job = StartFit(s, kEpochs, "seed: 3 checkpoint_every_batches: 5");
  CancelAfterBatches(s, job.id(), 7);
  std::vector<v1::JobEvent> events = Watch(s, job.id());
  ASSERT_EQ(events.back().finished().state(), v1::CANCELLED);
  std::vector<v1::Checkpoint> checkpoints = Checkpoints(s, job.id());
  ASSERT_FALSE(checkpoints.empty());
  EXPECT_EQ(checkpoints.back().reason(), "cancel");
  EXPECT_LE(checkpoints.size(), 3u);  // keep_checkpoints' default
  auto first_saved = std::find_if(events.begin(), events.end(),
                                  [](const v1::JobEvent& e) { return e.has_checkpoint_saved(); });
  ASSERT_NE(first_saved, events.end());
  EXPECT_EQ(first_saved->checkpoint_saved().checkpoint().reason(), "start");

  v1::Job resumed = Resume(s, job.id());
  EXPECT_EQ(resumed.state(), v1::QUEUED);
  EXPECT_EQ(resumed.resumes(), 1);
  EXPECT_EQ(resumed.last_checkpoint(), checkpoints.back().number());
  const int64_t seam = int64_t(events.size()) + 1;
  for (int i = 0; i < 2000 && GetJob(s, job.id()).epoch() < 2; ++i) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  RestartServer();  // stops the fit at its next batch, with a "shutdown" checkpoint
  v1::Job interrupted = GetJob(s, job.id());
  ASSERT_EQ(interrupted.state(), v1::INTERRUPTED);
  Resume(s, job.id());
  events = Watch(s, job.id());
  ASSERT_EQ(events.back().finished().state(), v1::SUCCEEDED);
  EXPECT_EQ(ModelWeights(s), expected);

  // One log across both resumptions: 1, 2, 3, ... with the seams marked.
  int resumes = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].sequence(), int64_t(i) + 1);
    if (events[i].has_resumed()) ++resumes;
  }
  EXPECT_EQ(resumes, 2);
  EXPECT_TRUE(events[seam - 1].has_resumed());
  // The History has each epoch once, as the uninterrupted fit's.
  const v1::Job done = GetJob(s, job.id());
  const v1::Job reference_done = GetJob(reference, full.id());
  ASSERT_EQ(done.history_size(), kEpochs);
  for (int e = 0; e < kEpochs; ++e) {
    EXPECT_EQ(done.history(e).epoch(), e);
    EXPECT_EQ(done.history(e).logs(0).value(), reference_done.history(e).logs(0).value()) << e;
  }
}

class TwoThreadDurabilityTest : public DurabilityTest {
 protected:
  void Configure(server::ServerOptions& options) override { options.compute_threads = 2; }
};

TEST_F(TwoThreadDurabilityTest, AResumedFitEndsWithinOneMillionthOfAnUninterruptedOne) {
  const std::string reference = SeededSession(11), s = SeededSession(11);
  for (const std::string& session : {reference, s}) {
    BuildSmallModel(session);
    CompileSmallModel(session);
  }
  const v1::Job full = StartFit(reference, 6, "seed: 3 checkpoint_every_batches: 3");
  Watch(reference, full.id());
  const v1::Job job = StartFit(s, 6, "seed: 3 checkpoint_every_batches: 3");
  CancelAfterBatches(s, job.id(), 20);
  Watch(s, job.id());
  Resume(s, job.id());
  ASSERT_EQ(Watch(s, job.id()).back().finished().state(), v1::SUCCEEDED);
  const auto expected = ModelWeights(reference), got = ModelWeights(s);
  ASSERT_EQ(got.size(), expected.size());
  for (const auto& [name, bytes] : expected) {
    const auto* a = reinterpret_cast<const float*>(bytes.data());
    const auto* b = reinterpret_cast<const float*>(got.at(name).data());
    for (size_t i = 0; i < bytes.size() / sizeof(float); ++i) {
      EXPECT_NEAR(b[i], a[i], 1e-6 * std::max(1.0f, std::abs(a[i]))) << name << "[" << i << "]";
    }
  }
}

TEST_F(DurabilityTest, CheckpointsAreKeptListedRestoredAndDeleted) {
  const std::string s = SeededSession(2);
  BuildSmallModel(s);
  CompileSmallModel(s);
  const std::map<std::string, std::string> initial = ModelWeights(s);
  const v1::Job job = StartFit(s, 3, "keep_checkpoints: 2");
  const std::vector<v1::JobEvent> events = Watch(s, job.id());
  int saved = 0;
  for (const v1::JobEvent& e : events) saved += e.has_checkpoint_saved();
  EXPECT_EQ(saved, 4);  // the start and three epoch ends
  std::vector<v1::Checkpoint> kept = Checkpoints(s, job.id());
  ASSERT_EQ(kept.size(), 2u);  // the newest two
  EXPECT_EQ(kept[0].number(), 3);
  EXPECT_EQ(kept[1].number(), 4);
  EXPECT_EQ(kept[1].epoch(), 3);
  EXPECT_EQ(kept[1].reason(), "epoch_end");
  EXPECT_GT(kept[1].bytes(), 0);
  const std::map<std::string, std::string> trained = ModelWeights(s);
  EXPECT_NE(trained, initial);

  // A succeeded fit cannot be resumed; a checkpoint that is gone cannot be restored.
  v1::ResumeJobRequest resume;
  resume.set_session_id(s);
  resume.set_job_id(job.id());
  v1::Job unused;
  ExpectError(jobs_->ResumeJob(Context().get(), resume, &unused), StatusCode::FAILED_PRECONDITION,
              "", "SUCCEEDED");
  v1::RestoreCheckpointRequest restore;
  restore.set_session_id(s);
  restore.set_job_id(job.id());
  restore.set_number(1);
  v1::Checkpoint restored;
  ExpectError(jobs_->RestoreCheckpoint(Context().get(), restore, &restored), StatusCode::NOT_FOUND,
              "number", "no checkpoint 1");
  restore.set_job_id("job-nope");
  ExpectError(jobs_->RestoreCheckpoint(Context().get(), restore, &restored), StatusCode::NOT_FOUND,
              "job_id", "job-nope");

  // Restoring the epoch-2 checkpoint puts its weights back; after a restart too.
  restore.set_job_id(job.id());
  restore.set_number(3);
  ASSERT_RPC_OK(jobs_->RestoreCheckpoint(Context().get(), restore, &restored));
  EXPECT_EQ(restored.epoch(), 2);
  const std::map<std::string, std::string> at_epoch_2 = ModelWeights(s);
  EXPECT_NE(at_epoch_2, trained);
  RestartServer();
  EXPECT_EQ(ModelWeights(s), at_epoch_2);
  restore.set_number(0);  // the newest
  ASSERT_RPC_OK(jobs_->RestoreCheckpoint(Context().get(), restore, &restored));
  EXPECT_EQ(ModelWeights(s), trained);

  v1::DeleteCheckpointRequest remove;
  remove.set_session_id(s);
  remove.set_job_id(job.id());
  remove.set_number(3);
  v1::DeleteCheckpointResponse removed;
  const int64_t bytes_before = TensorBytes();
  ASSERT_RPC_OK(jobs_->DeleteCheckpoint(Context().get(), remove, &removed));
  EXPECT_EQ(TensorBytes(), bytes_before - kept[0].bytes());
  ASSERT_EQ(Checkpoints(s, job.id()).size(), 1u);
  ExpectError(jobs_->DeleteCheckpoint(Context().get(), remove, &removed), StatusCode::NOT_FOUND,
              "number", "no checkpoint 3");
  remove.set_number(0);
  ExpectError(jobs_->DeleteCheckpoint(Context().get(), remove, &removed),
              StatusCode::INVALID_ARGUMENT, "number", "give the number");
}

TEST_F(DurabilityTest, BadCheckpointSettingsAreRefusedBeforeTheJobStarts) {
  const std::string s = SeededSession(1);
  BuildSmallModel(s);
  CompileSmallModel(s);
  for (const auto& [config, field] : std::vector<std::pair<std::string, std::string>>{
           {"keep_checkpoints: 0", "config.keep_checkpoints"},
           {"checkpoint_every_batches: -1", "config.checkpoint_every_batches"},
           {"checkpoint_every_seconds: -2", "config.checkpoint_every_seconds"}}) {
    v1::StartFitRequest request;
    request.set_session_id(s);
    request.set_model("small");
    *request.mutable_data() = InlineData(16);
    ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(config, request.mutable_config()));
    v1::Job job;
    ExpectError(jobs_->StartFit(Context().get(), request, &job), StatusCode::INVALID_ARGUMENT,
                field, "");
  }
  v1::ListJobsRequest list;
  list.set_session_id(s);
  v1::ListJobsResponse jobs;
  ASSERT_RPC_OK(jobs_->ListJobs(Context().get(), list, &jobs));
  EXPECT_EQ(jobs.jobs_size(), 0);
}

TEST_F(DurabilityTest, DamagedStateIsDataLossForItsSessionAndTheOthersLoad) {
  const std::string truncated = SeededSession(1), missing = SeededSession(2),
                    bad_row = SeededSession(3), fine = SeededSession(4);
  for (const std::string& s : {truncated, missing, bad_row, fine}) {
    BuildSmallModel(s);
    CompileSmallModel(s);
    Watch(s, StartFit(s, 1).id());
  }
  const std::map<std::string, std::string> fine_weights = ModelWeights(fine);
  server_->Shutdown(absl::Seconds(5));
  server_.reset();
  auto first_file = [&](const std::string& session) {
    for (const auto& f :
         std::filesystem::directory_iterator(options_.state_dir + "/tensors/" + session)) {
      if (f.path().filename().string().rfind("weights-", 0) == 0) return f.path().string();
    }
    return std::string();
  };
  const std::string cut = first_file(truncated);
  ASSERT_FALSE(cut.empty());
  std::filesystem::resize_file(cut, std::filesystem::file_size(cut) / 2);
  const std::string gone = first_file(missing);
  ASSERT_FALSE(gone.empty());
  std::filesystem::remove(gone);
  {
    absl::StatusOr<std::unique_ptr<store::SqliteDb>> db =
        store::SqliteDb::Open(options_.state_dir + "/kiln.db");
    ASSERT_TRUE(db.ok());
    absl::StatusOr<store::SqliteStatement> update = (*db)->Prepare(
        "UPDATE ops SET record=x'ffffffff' WHERE session_id=?1 AND kind='graph' AND id=(SELECT "
        "min(id) FROM ops WHERE session_id=?1)");
    ASSERT_TRUE(update.ok());
    ASSERT_TRUE(update->BindText(1, bad_row).Run().ok());
  }
  StartServer();

  for (const auto& [session, damage] : std::vector<std::pair<std::string, std::string>>{
           {truncated, "truncated"}, {missing, "missing"}, {bad_row, "cannot be read"}}) {
    v1::GetSessionRequest get;
    get.set_session_id(session);
    v1::Session described;
    ASSERT_RPC_OK(sessions_->GetSession(Context().get(), get, &described));
    EXPECT_THAT(described.damaged(), HasSubstr(damage)) << session;
    v1::ListModelsRequest list;
    list.set_session_id(session);
    v1::ListModelsResponse models;
    ExpectError(models_->ListModels(Context().get(), list, &models), StatusCode::DATA_LOSS,
                "session_id", damage);
  }
  EXPECT_EQ(ModelWeights(fine), fine_weights);
  v1::ListSessionsResponse all;
  ASSERT_RPC_OK(sessions_->ListSessions(Context().get(), {}, &all));
  EXPECT_EQ(all.sessions_size(), 4);
  // A damaged session can be deleted, and it is gone after the next restart too.
  v1::DeleteSessionRequest remove;
  remove.set_session_id(truncated);
  v1::DeleteSessionResponse removed;
  ASSERT_RPC_OK(sessions_->DeleteSession(Context().get(), remove, &removed));
  RestartServer();
  ASSERT_RPC_OK(sessions_->ListSessions(Context().get(), {}, &all));
  EXPECT_EQ(all.sessions_size(), 3);
  EXPECT_FALSE(std::filesystem::exists(options_.state_dir + "/tensors/" + truncated));
}

TEST_F(DurabilityTest, DeletedSessionsGiveTheirDiskSpaceBack) {
  const int64_t empty = TensorBytes();
  const std::string s = SeededSession(1);
  BuildSmallModel(s);
  CompileSmallModel(s);
  Watch(s, StartFit(s, 2).id());
  v1::OpenDatasetRequest open;  // a stored copy of a file below the data root
  open.set_session_id(s);
  open.set_name("file");
  {
    std::ofstream csv(data_root_ + "/rows.csv");
    for (int i = 0; i < 2000; ++i) csv << i << "," << i * 2 << "," << i % 3 << "\n";
  }
  open.mutable_files()->add_x("rows.csv");
  open.mutable_files()->set_label_column(-1);
  v1::DatasetInfo dataset;
  const grpc::Status opened = data_->OpenDataset(Context().get(), open, &dataset);
  ASSERT_TRUE(opened.ok()) << opened.error_message();
  EXPECT_GT(TensorBytes(), empty + 2000 * 8);
  v1::DeleteSessionRequest remove;
  remove.set_session_id(s);
  v1::DeleteSessionResponse removed;
  ASSERT_RPC_OK(sessions_->DeleteSession(Context().get(), remove, &removed));
  EXPECT_EQ(TensorBytes(), empty);
  RestartServer();
  v1::ListSessionsResponse all;
  ASSERT_RPC_OK(sessions_->ListSessions(Context().get(), {}, &all));
  EXPECT_EQ(all.sessions_size(), 0);
}

class DurabilityTtlTest : public DurabilityTest {
 protected:
  void Configure(server::ServerOptions& options) override {
    options.session_reap_interval = absl::Milliseconds(100);
  }
};

TEST_F(DurabilityTtlTest, TtlsGoOnCountingWhileTheServerIsDown) {
  v1::CreateSessionRequest request;
  request.set_ttl_seconds(1);
  v1::Session brief, lasting;
  ASSERT_RPC_OK(sessions_->CreateSession(Context().get(), request, &brief));
  request.set_ttl_seconds(3600);
  ASSERT_RPC_OK(sessions_->CreateSession(Context().get(), request, &lasting));
  server_->Shutdown(absl::Seconds(5));
  server_.reset();
  absl::SleepFor(absl::Milliseconds(1300));  // longer than the brief one's TTL
  StartServer();
  absl::SleepFor(absl::Milliseconds(400));  // a few reaper passes
  v1::GetSessionRequest get;
  get.set_session_id(brief.id());
  v1::Session got;
  ExpectError(sessions_->GetSession(Context().get(), get, &got), StatusCode::NOT_FOUND,
              "session_id", "");
  get.set_session_id(lasting.id());
  EXPECT_TRUE(sessions_->GetSession(Context().get(), get, &got).ok());
}

TEST_F(DurabilityTest, AFullStateDirectoryFailsChangesAndKeepsServingReads) {
  const std::string s = SeededSession(1);
  BuildSmallModel(s);
  CompileSmallModel(s);
  const std::map<std::string, std::string> weights = ModelWeights(s);
  const std::vector<std::string> files = TensorFiles();
  v1::GetWeightsRequest get;
  get.set_session_id(s);
  get.set_layer("dense");
  v1::GetWeightsResponse dense;
  ASSERT_RPC_OK(models_->GetWeights(Context().get(), get, &dense));
  v1::SetWeightsRequest set;
  set.set_session_id(s);
  set.set_layer("dense");
  *set.add_weights() = dense.weights(1);
  set.mutable_weights(0)->mutable_tensor()->set_data(
      std::string(dense.weights(1).tensor().data().size(), '\x01'));
  v1::SetWeightsResponse unused;

  // Tensor files that cannot be written, then a database that cannot commit.
  for (const char* failpoint :
       {"weights.write=enospc", "weights.half_written=enospc", "weights.commit=enospc"}) {
    store::ArmFailpoints(failpoint);
    ExpectError(models_->SetWeights(Context().get(), set, &unused), StatusCode::RESOURCE_EXHAUSTED,
                "", "the state directory is full");
    store::ArmFailpoints("");
    EXPECT_EQ(ModelWeights(s), weights) << failpoint;
    EXPECT_EQ(TensorFiles(), files) << failpoint;  // nothing half-written left behind
  }
  store::ArmFailpoints("op.commit=eio");
  v1::AddLayerRequest add;
  add.set_session_id(s);
  add.mutable_spec()->mutable_dense()->set_units(2);
  add.add_inputs(0);
  v1::AddLayerResponse added;
  ExpectError(models_->AddLayer(Context().get(), add, &added), StatusCode::UNAVAILABLE, "",
              "the state directory failed");
  // Reads go on: the session, a prediction.
  v1::GetSessionRequest describe;
  describe.set_session_id(s);
  v1::Session session;
  ASSERT_RPC_OK(sessions_->GetSession(Context().get(), describe, &session));
  const int layers = session.layers_size();
  v1::PredictRequest predict;
  predict.set_session_id(s);
  predict.set_model("small");
  *predict.add_inputs() = InlineData(2).inline_().x(0);
  v1::PredictResponse predicted;
  EXPECT_TRUE(inference_->Predict(Context().get(), predict, &predicted).ok());
  store::ArmFailpoints("");
  RestartServer();
  ASSERT_RPC_OK(sessions_->GetSession(Context().get(), describe, &session));
  EXPECT_EQ(session.layers_size(), layers);  // the failed AddLayer changed nothing
  EXPECT_EQ(ModelWeights(s), weights);
  ASSERT_RPC_OK(models_->SetWeights(Context().get(), set, &unused));  // space again
}

TEST_F(DurabilityTest, ASecondServerOnTheSameStateDirectoryRefusesToStart) {
  server::ServerOptions options = options_;
  server::KilnServer second(options);
  const absl::Status status = second.Start();
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_THAT(std::string(status.message()),
              HasSubstr(absl::StrCat("in use by process ", ::getpid())));
}

}  // namespace
}  // namespace kiln::testing
