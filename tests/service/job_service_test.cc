// JobService and InferenceService over a real channel: fit with streamed events, resuming a
// watch, cancel, evaluate and predict jobs, unary Predict, and shutdown.
#include <thread>

#include "tests/service/service_fixture.h"

namespace kiln::testing {
namespace {

using grpc::StatusCode;

class JobServiceTest : public ServiceTest {
 protected:
  v1::Job StartFit(const std::string& session, int epochs, int batch_size, int64_t samples,
                   float validation_split = 0) {
    v1::StartFitRequest request;
    request.set_session_id(session);
    request.set_model("small");
    *request.mutable_data() = InlineData(samples);
    request.mutable_config()->set_epochs(epochs);
    request.mutable_config()->set_batch_size(batch_size);
    request.mutable_config()->set_seed(3);
    request.mutable_config()->set_validation_split(validation_split);
    v1::Job job;
    grpc::Status status = jobs_->StartFit(Context().get(), request, &job);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return job;
  }
};

TEST_F(JobServiceTest, FitStreamsEventsInOrderAndFinishesWithHistory) {
  const std::string s = CreateSession();
  BuildSmallModel(s);
  CompileSmallModel(s);
  const v1::Job job = StartFit(s, 3, 16, 96, 0.25);
  EXPECT_EQ(job.kind(), v1::FIT);
  grpc::Status status;
  const std::vector<v1::JobEvent> events = Watch(s, job.id(), 0, -1, &status);
  EXPECT_TRUE(status.ok()) << status.error_message();
  ASSERT_FALSE(events.empty());
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].sequence(), int64_t(i) + 1);  // no gap, no duplicate
    EXPECT_EQ(events[i].job_id(), job.id());
    EXPECT_TRUE(events[i].has_time());
  }
  int epoch_begins = 0, epoch_ends = 0, batch_ends = 0;
  bool train_begin = false;
  for (const v1::JobEvent& e : events) {
    train_begin |= e.has_train_begin();
    epoch_begins += e.has_epoch_begin();
    epoch_ends += e.has_epoch_end();
    batch_ends += e.has_batch_end();
  }
  EXPECT_TRUE(train_begin);
  EXPECT_EQ(epoch_begins, 3);
  EXPECT_EQ(epoch_ends, 3);
  EXPECT_GE(batch_ends, 3);  // at least every epoch's last batch
  // The first state change is RUNNING; the last event is Finished with the History.
  EXPECT_EQ(events.front().state_changed().state(), v1::RUNNING);
  const v1::Finished& finished = events.back().finished();
  EXPECT_EQ(finished.state(), v1::SUCCEEDED);
  ASSERT_EQ(finished.history_size(), 3);
  // validation_split 0.25 of 96: 72 train rows, 24 validation rows.
  for (const v1::JobEvent& e : events) {
    if (e.has_train_begin()) {
      EXPECT_EQ(e.train_begin().samples(), 72);
      EXPECT_EQ(e.train_begin().validation_samples(), 24);
      EXPECT_EQ(e.train_begin().steps_per_epoch(), 5);
    }
  }
  std::vector<std::string> keys;
  for (const v1::Metric& m : finished.history(2).logs()) keys.push_back(m.name());
  EXPECT_EQ(keys, (std::vector<std::string>{"loss", "accuracy", "val_loss", "val_accuracy"}));
  const v1::Job done = GetJob(s, job.id());
  EXPECT_EQ(done.state(), v1::SUCCEEDED);
  EXPECT_EQ(done.last_sequence(), int64_t(events.size()));
  EXPECT_EQ(done.batches_done(), 15);
  // Watching a finished job replays its whole log.
  EXPECT_EQ(Watch(s, job.id()).size(), events.size());
}

TEST_F(JobServiceTest, ReconnectingWatcherSeesEveryEventExactlyOnce) {
  const std::string s = CreateSession();
  BuildSmallModel(s);
  CompileSmallModel(s);
  const v1::Job job = StartFit(s, 60, 8, 256);
  // A watcher reads a few events, disconnects, and resumes from the last sequence it saw -
  // while the job keeps running and appending.
  std::vector<v1::JobEvent> seen = Watch(s, job.id(), 0, 4);
  ASSERT_EQ(seen.size(), 4u);
  int resumed_while_running = 0;
  while (true) {
    resumed_while_running += GetJob(s, job.id()).state() == v1::RUNNING;
    std::vector<v1::JobEvent> more = Watch(s, job.id(), seen.back().sequence(), 3);
    seen.insert(seen.end(), more.begin(), more.end());
    if (more.empty() || seen.back().has_finished()) break;
  }
  EXPECT_GT(resumed_while_running, 3);
  ASSERT_TRUE(seen.back().has_finished());
  const std::vector<v1::JobEvent> all = Watch(s, job.id());
  ASSERT_EQ(seen.size(), all.size());
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(seen[i].sequence(), int64_t(i) + 1);
    EXPECT_EQ(seen[i].SerializeAsString(), all[i].SerializeAsString());
  }
}

TEST_F(JobServiceTest, ManyWatchersGetTheSameEvents) {
  const std::string s = CreateSession();
  BuildSmallModel(s);
  CompileSmallModel(s);
  const v1::Job job = StartFit(s, 3, 8, 96);
  std::vector<std::vector<v1::JobEvent>> streams(4);
  std::vector<std::thread> watchers;
  for (auto& stream : streams) {
    watchers.emplace_back([&, this] { stream = Watch(s, job.id()); });
  }
  for (auto& t : watchers) t.join();
  for (const auto& stream : streams) {
    ASSERT_EQ(stream.size(), streams[0].size());
    EXPECT_TRUE(stream.back().has_finished());
  }
}

// A watcher that stops reading fills its stream's flow-control window; the job must neither
// wait for it nor lose events for the others.
TEST_F(JobServiceTest, AWatcherThatNeverReadsDoesNotHoldTheJobBack) {
  const std::string s = CreateSession();
  BuildSmallModel(s);
  CompileSmallModel(s);
  // 600 one-batch epochs: some 1,800 events, well over the stream's 64 KiB window.
  const v1::Job job = StartFit(s, 600, 8, 8);
  grpc::ClientContext stuck_context;
  v1::WatchJobRequest request;
  request.set_session_id(s);
  request.set_job_id(job.id());
  std::unique_ptr<grpc::ClientReader<v1::JobEvent>> stuck =
      jobs_->WatchJob(&stuck_context, request);  // never read
  const std::vector<v1::JobEvent> events = Watch(s, job.id());
  ASSERT_FALSE(events.empty());
  ASSERT_TRUE(events.back().has_finished());
  EXPECT_EQ(events.back().finished().state(), v1::SUCCEEDED);
  EXPECT_EQ(events.back().sequence(), static_cast<int64_t>(events.size()));
  EXPECT_GT(events.size(), 1800u);
  stuck_context.TryCancel();
  stuck->Finish().IgnoreError();
}

TEST_F(JobServiceTest, CancelStopsWithinOneBatch) {
  const std::string s = CreateSession();
  BuildSmallModel(s);
  CompileSmallModel(s);
  const v1::Job job = StartFit(s, 1000, 4, 256);  // far more batches than the test will wait for
  // Wait for training to be under way.
  std::vector<v1::JobEvent> first = Watch(s, job.id(), 0, 4);
  ASSERT_EQ(first.size(), 4u);
  v1::CancelJobRequest cancel;
  cancel.set_session_id(s);
  cancel.set_job_id(job.id());
  v1::Job at_cancel;
  ASSERT_TRUE(jobs_->CancelJob(Context().get(), cancel, &at_cancel).ok());
  EXPECT_TRUE(at_cancel.state() == v1::CANCELLING || at_cancel.state() == v1::CANCELLED);
  grpc::Status status;
  const std::vector<v1::JobEvent> events = Watch(s, job.id(), 0, -1, &status);
  EXPECT_TRUE(status.ok());
  ASSERT_TRUE(events.back().has_finished());
  EXPECT_EQ(events.back().finished().state(), v1::CANCELLED);
  EXPECT_EQ(events.back().finished().error().code(), int(StatusCode::CANCELLED));
  // The trainer checks for cancellation before every batch: at most the batch under way when
  // the cancel arrived completes.
  const v1::Job final_job = GetJob(s, job.id());
  EXPECT_LE(final_job.batches_done() - at_cancel.batches_done(), 1);
  EXPECT_LT(final_job.batches_done(), 1000 * 64);
}

TEST_F(JobServiceTest, ErrorsBeforeAJobStarts) {
  const std::string s = CreateSession();
  BuildSmallModel(s);
  v1::StartFitRequest request;
  request.set_session_id(s);
  request.set_model("small");
  *request.mutable_data() = InlineData(16);
  v1::Job job;
  // Fit before compile.
  ExpectError(jobs_->StartFit(Context().get(), request, &job), StatusCode::FAILED_PRECONDITION, "",
              "You must call `compile()` before using the model");
  CompileSmallModel(s);
  // Data whose shape does not match the model's input: both shapes in the message.
  v1::TensorProto* x = request.mutable_data()->mutable_inline_()->mutable_x(0);
  x->set_shape(1, 4);
  x->set_shape(2, 16);
  ExpectError(jobs_->StartFit(Context().get(), request, &job), StatusCode::INVALID_ARGUMENT, "data",
              "expects data of shape (None, 8, 8, 1), but received data of shape "
              "(16, 4, 16, 1)");
  *request.mutable_data() = InlineData(16);
  request.mutable_config()->set_batch_size(0);
  ExpectError(jobs_->StartFit(Context().get(), request, &job), StatusCode::INVALID_ARGUMENT,
              "config.batch_size", "must be positive");
  request.mutable_config()->clear_batch_size();
  request.mutable_data()->set_dataset("nope");
  ExpectError(jobs_->StartFit(Context().get(), request, &job), StatusCode::NOT_FOUND,
              "data.dataset", "no dataset \"nope\"");
  request.set_model("missing");
  ExpectError(jobs_->StartFit(Context().get(), request, &job), StatusCode::NOT_FOUND, "model",
              "no model \"missing\"");
  v1::GetJobRequest get;
  get.set_session_id(s);
  get.set_job_id("job-404");
  ExpectError(jobs_->GetJob(Context().get(), get, &job), StatusCode::NOT_FOUND, "job_id",
              "no job \"job-404\"");
  v1::ListJobsRequest list;
  list.set_session_id(s);
  v1::ListJobsResponse jobs;
  ASSERT_TRUE(jobs_->ListJobs(Context().get(), list, &jobs).ok());
  EXPECT_EQ(jobs.jobs_size(), 0);  // no failed request left a job behind
}

TEST_F(JobServiceTest, EvaluatePredictJobAndUnaryPredict) {
  const std::string s = CreateSession();
  BuildSmallModel(s);
  CompileSmallModel(s);
  Watch(s, StartFit(s, 2, 16, 64).id());

  v1::StartEvaluateRequest evaluate;
  evaluate.set_session_id(s);
  evaluate.set_model("small");
  *evaluate.mutable_data() = InlineData(40, 9);
  v1::Job job;
  ASSERT_TRUE(jobs_->StartEvaluate(Context().get(), evaluate, &job).ok());
  const std::vector<v1::JobEvent> events = Watch(s, job.id());
  ASSERT_EQ(events.back().finished().state(), v1::SUCCEEDED);
  ASSERT_EQ(events.back().finished().results_size(), 2);
  EXPECT_EQ(events.back().finished().results(0).name(), "loss");
  // Its progress: test batches (40 rows in batches of 32) ending with the results.
  const v1::JobEvent* last_batch = nullptr;
  for (const v1::JobEvent& e : events) last_batch = e.has_batch_end() ? &e : last_batch;
  ASSERT_NE(last_batch, nullptr);
  EXPECT_EQ(last_batch->batch_end().batch(), 1);
  EXPECT_EQ(last_batch->batch_end().steps(), 2);
  ASSERT_EQ(last_batch->batch_end().logs_size(), 2);
  EXPECT_FLOAT_EQ(last_batch->batch_end().logs(0).value(),
                  events.back().finished().results(0).value());
  EXPECT_EQ(GetJob(s, job.id()).batches_done(), 2);

  v1::StartPredictRequest predict;
  predict.set_session_id(s);
  predict.set_model("small");
  *predict.mutable_data() = InlineData(10, 4);
  ASSERT_TRUE(jobs_->StartPredict(Context().get(), predict, &job).ok());
  const std::vector<v1::JobEvent> predict_events = Watch(s, job.id());
  ASSERT_GE(predict_events.size(), 2u);
  const v1::BatchEnd& predicted = predict_events[predict_events.size() - 2].batch_end();
  EXPECT_EQ(predicted.batch() + 1, predicted.steps());  // one batch of 10 rows
  EXPECT_EQ(predicted.logs_size(), 0);
  const std::string output = predict_events.back().finished().output_dataset();
  EXPECT_EQ(output, "predictions-" + job.id());
  v1::ReadDatasetRequest read;
  read.set_session_id(s);
  read.set_name(output);
  read.set_array("x");
  read.set_offset(2);
  read.set_limit(3);
  v1::TensorProto rows;
  ASSERT_TRUE(data_->ReadDataset(Context().get(), read, &rows).ok());
  EXPECT_EQ(std::vector<int64_t>(rows.shape().begin(), rows.shape().end()),
            (std::vector<int64_t>{3, 3}));

  // Unary Predict on the same rows gives the same probabilities.
  v1::PredictRequest request;
  request.set_session_id(s);
  request.set_model("small");
  *request.add_inputs() = InlineData(10, 4).inline_().x(0);
  v1::PredictResponse response;
  ASSERT_TRUE(inference_->Predict(Context().get(), request, &response).ok());
  ASSERT_EQ(response.outputs_size(), 1);
  const float* p = reinterpret_cast<const float*>(response.outputs(0).data().data());
  const float* q = reinterpret_cast<const float*>(rows.data().data());
  for (int i = 0; i < 9; ++i) EXPECT_NEAR(p[6 + i], q[i], 1e-6);
  for (int r = 0; r < 10; ++r) EXPECT_NEAR(p[3 * r] + p[3 * r + 1] + p[3 * r + 2], 1.0, 1e-5);
  // Wrong input shape: both shapes.
  request.mutable_inputs(0)->set_shape(2, 9);
  request.mutable_inputs(0)->set_data(std::string(10 * 8 * 9 * 4, '\0'));
  ExpectError(inference_->Predict(Context().get(), request, &response),
              StatusCode::INVALID_ARGUMENT, "inputs",
              "expects data of shape (None, 8, 8, 1), but received data of shape (10, 8, 9, 1)");
}

TEST_F(JobServiceTest, WeightsAreBusyWhileAJobRuns) {
  const std::string s = CreateSession();
  BuildSmallModel(s);
  CompileSmallModel(s);
  const v1::Job job = StartFit(s, 1000, 4, 256);
  Watch(s, job.id(), 0, 3);  // running now
  v1::PredictRequest request;
  request.set_session_id(s);
  request.set_model("small");
  *request.add_inputs() = InlineData(2).inline_().x(0);
  v1::PredictResponse response;
  ExpectError(inference_->Predict(Context().get(), request, &response),
              StatusCode::FAILED_PRECONDITION, "", "the session is running job " + job.id());
  // Building more cards is fine meanwhile.
  AddInput(s, {4});
  v1::CancelJobRequest cancel;
  cancel.set_session_id(s);
  cancel.set_job_id(job.id());
  v1::Job cancelled;
  ASSERT_TRUE(jobs_->CancelJob(Context().get(), cancel, &cancelled).ok());
  Watch(s, job.id());
  EXPECT_TRUE(inference_->Predict(Context().get(), request, &response).ok());
}

TEST_F(JobServiceTest, QueuedJobsOfASessionRunInOrder) {
  const std::string s = CreateSession();
  BuildSmallModel(s);
  CompileSmallModel(s);
  const v1::Job first = StartFit(s, 2, 16, 64);
  const v1::Job second = StartFit(s, 1, 16, 64);
  const std::vector<v1::JobEvent> a = Watch(s, first.id());
  const std::vector<v1::JobEvent> b = Watch(s, second.id());
  ASSERT_EQ(a.back().finished().state(), v1::SUCCEEDED);
  ASSERT_EQ(b.back().finished().state(), v1::SUCCEEDED);
  // The second started after the first finished.
  const v1::Job j1 = GetJob(s, first.id()), j2 = GetJob(s, second.id());
  EXPECT_GE(j2.started().seconds() * 1000000000LL + j2.started().nanos(),
            j1.finished().seconds() * 1000000000LL + j1.finished().nanos());
}

TEST_F(JobServiceTest, ShutdownInterruptsRunningJobsAndClosesWatchers) {
  const std::string s = CreateSession();
  BuildSmallModel(s);
  CompileSmallModel(s);
  const v1::Job job = StartFit(s, 1000, 4, 256);
  Watch(s, job.id(), 0, 3);
  grpc::Status status;
  std::vector<v1::JobEvent> events;
  std::thread watcher([&] { events = Watch(s, job.id(), 0, -1, &status); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  server_->Shutdown(absl::Seconds(5));
  watcher.join();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().finished().state(), v1::INTERRUPTED);
  EXPECT_EQ(status.error_code(), StatusCode::UNAVAILABLE) << status.error_message();
  server_.reset();
}

class SessionExpiryTest : public JobServiceTest {
 protected:
  void Configure(server::ServerOptions& options) override {
    options.session_reap_interval = absl::Milliseconds(50);
  }
  // Without touching the session (ListSessions does not count as its use).
  bool Listed(const std::string& session) {
    v1::ListSessionsResponse list;
    EXPECT_TRUE(sessions_->ListSessions(Context().get(), v1::ListSessionsRequest(), &list).ok());
    for (const v1::Session& s : list.sessions()) {
      if (s.id() == session) return true;
    }
    return false;
  }
};

TEST_F(SessionExpiryTest, ARunningJobKeepsItsSessionAlive) {
  v1::CreateSessionRequest create;
  create.set_ttl_seconds(1);
  v1::Session session;
  ASSERT_TRUE(sessions_->CreateSession(Context().get(), create, &session).ok());
  const std::string s = session.id();
  BuildSmallModel(s);
  CompileSmallModel(s);
  const v1::Job job = StartFit(s, /*epochs=*/100000, 16, 64);
  // A watch uses the session when it starts only; read events for 2.5 TTLs.
  {
    auto context = Context();
    v1::WatchJobRequest request;
    request.set_session_id(s);
    request.set_job_id(job.id());
    auto reader = jobs_->WatchJob(context.get(), request);
    const absl::Time until = absl::Now() + absl::Milliseconds(2500);
    v1::JobEvent event;
    while (absl::Now() < until && reader->Read(&event)) {
    }
    EXPECT_TRUE(Listed(s)) << "the session expired under its running job";
    context->TryCancel();
    reader->Finish().IgnoreError();
  }
  v1::CancelJobRequest cancel;
  cancel.set_session_id(s);
  cancel.set_job_id(job.id());
  v1::Job cancelled;
  ASSERT_TRUE(jobs_->CancelJob(Context().get(), cancel, &cancelled).ok());
  EXPECT_EQ(Watch(s, job.id()).back().finished().state(), v1::CANCELLED);
  // Idle now: gone once its TTL has passed.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (Listed(s) && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(100));
  EXPECT_FALSE(Listed(s));
}

}  // namespace
}  // namespace kiln::testing
