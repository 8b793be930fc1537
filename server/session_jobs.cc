// Session: jobs (fit, evaluate, predict) and the RPCs that read or write weights directly.
#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/base/status.h"
#include "core/io/tensor_proto.h"
#include "server/session.h"

namespace kiln::server {
namespace {

google::protobuf::RepeatedPtrField<v1::Metric> ToMetrics(const Logs& logs) {
  google::protobuf::RepeatedPtrField<v1::Metric> out;
  for (const auto& [name, value] : logs) {
    v1::Metric* m = out.Add();
    m->set_name(name);
    m->set_value(value);
  }
  return out;
}

// Turns the trainer's callbacks into job events. Batch ends are sent at most every 100 ms (and
// always for an epoch's or a run's last batch), so fast small batches do not flood watchers.
class JobReporter : public TrainingCallback {
 public:
  explicit JobReporter(std::shared_ptr<Job> job) : job_(std::move(job)) {}

  void OnTrainBegin(const FitInfo& info) override {
    steps_ = info.steps_per_epoch;
    v1::JobEvent e;
    v1::TrainBegin* b = e.mutable_train_begin();
    b->set_initial_epoch(info.initial_epoch);
    b->set_epochs(info.epochs);
    b->set_batch_size(info.batch_size);
    b->set_steps_per_epoch(info.steps_per_epoch);
    b->set_samples(info.train_samples);
    b->set_validation_samples(info.validation_samples);
    job_->Append(std::move(e));
  }
  void OnEpochBegin(int epoch) override {
    epoch_start_ = absl::Now();
    v1::JobEvent e;
    e.mutable_epoch_begin()->set_epoch(epoch);
    job_->Append(std::move(e));
  }
  void OnTrainBatchEnd(int epoch, int64_t batch, const Logs& logs,
                       double samples_per_second) override {
    BatchDone(epoch, batch, steps_, logs, samples_per_second);
  }
  // A fit's validation batches are not reported: its epoch end carries their results.
  void OnTestBatchEnd(int64_t batch, int64_t steps, const Logs& logs,
                      double samples_per_second) override {
    if (job_->kind() == v1::EVALUATE) BatchDone(0, batch, steps, logs, samples_per_second);
  }
  void OnPredictBatchEnd(int64_t batch, int64_t steps, double samples_per_second) override {
    BatchDone(0, batch, steps, {}, samples_per_second);
  }
  void OnEpochEnd(int epoch, const Logs& logs) override {
    v1::JobEvent e;
    v1::EpochEnd* end = e.mutable_epoch_end();
    end->set_epoch(epoch);
    *end->mutable_logs() = ToMetrics(logs);
    end->set_seconds(absl::ToDoubleSeconds(absl::Now() - epoch_start_));
    job_->Append(std::move(e));
  }
  bool StopRequested() override { return job_->cancel_requested(); }

 private:
  void BatchDone(int epoch, int64_t batch, int64_t steps, const Logs& logs,
                 double samples_per_second) {
    job_->SetProgress(epoch, batch + 1, ++batches_done_);
    const absl::Time now = absl::Now();
    if (batch + 1 < steps && now - last_batch_event_ < absl::Milliseconds(100)) return;
    last_batch_event_ = now;
    v1::JobEvent e;
    v1::BatchEnd* b = e.mutable_batch_end();
    b->set_epoch(epoch);
    b->set_batch(batch);
    b->set_steps(steps);
    *b->mutable_logs() = ToMetrics(logs);
    b->set_samples_per_second(samples_per_second);
    job_->Append(std::move(e));
  }

  std::shared_ptr<Job> job_;
  int64_t steps_ = 0, batches_done_ = 0;
  absl::Time epoch_start_, last_batch_event_ = absl::InfinitePast();
};

// Attributes a trainer's pre-flight error to the request: config fields keep their path under
// "config", data shape errors go to "data"; other codes (FAILED_PRECONDITION before compile)
// are left as they are.
absl::Status RequestError(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kInvalidArgument) return status;
  const std::optional<std::string> path = FieldPathOf(status);
  if (!path.has_value()) return WithFieldPrefix(status, "data");
  if (absl::StartsWith(*path, "validation_data")) return status;
  return WithFieldPrefix(status, "config");
}

// The final state of a job that returned `status`.
void FinishJob(Job& job, const absl::Status& status, v1::Finished details = {}) {
  if (status.ok()) {
    job.Finish(v1::SUCCEEDED, status, std::move(details));
  } else if (absl::IsCancelled(status) && job.cancel_requested()) {
    if (job.interrupted()) {
      job.Finish(v1::INTERRUPTED, absl::UnavailableError("the server is shutting down"));
    } else {
      job.Finish(v1::CANCELLED, status);
    }
  } else {
    job.Finish(v1::FAILED, status);
  }
}

}  // namespace

// Runs jobs with the session's compute gate held.
class SessionJobRunner {
 public:
  // Holds the session's compute gate for the duration of `run` and finishes the job with
  // run's status once the gate is released.
  template <typename Fn>
  static void Run(Session& session, Job& job, Fn run) {
    if (job.cancel_requested()) {
      FinishJob(job, absl::CancelledError("cancelled before it started"));
      return;
    }
    absl::Status status;
    v1::Finished details;
    session.compute_.EnterJob(job.id());
    job.SetState(v1::RUNNING);
    try {
      status = run(details);
    } catch (const std::exception& e) {  // never let a job take the server down
      status = absl::InternalError(absl::StrCat("job failed: ", e.what()));
    }
    session.compute_.LeaveJob();
    // Only after the weights are free: a client that reacts to the Finished event may use them
    // at once.
    FinishJob(job, status, std::move(details));
    session.Touch();  // the session's TTL counts from the end of its last job
  }

  static absl::StatusOr<v1::DatasetInfo> StorePredictions(Session& session, const std::string& name,
                                                          std::vector<Tensor> outputs,
                                                          const std::string& job_id) {
    Dataset predictions;
    predictions.x = std::move(outputs);
    absl::MutexLock lock(&session.mu_);
    return session.AddDataset(name, std::move(predictions), absl::StrCat("predictions:", job_id));
  }
};

v1::Job Session::NewJob(const std::string& model, v1::JobKind kind) const {
  v1::Job job;
  job.set_id(absl::StrCat("job-", ++*runtime_.job_counter));
  job.set_session_id(id_);
  job.set_model(model);
  job.set_kind(kind);
  return job;
}

absl::StatusOr<v1::Job> Session::Submit(std::shared_ptr<Job> job, JobScheduler::Work work) {
  if (closed_) {
    return WithFieldPrefix(
        absl::NotFoundError(absl::StrCat("session \"", id_, "\" was deleted or has expired")),
        "session_id");
  }
  KILN_RETURN_IF_ERROR(runtime_.scheduler->Submit(job, std::move(work)));
  jobs_[job->id()] = job;
  job_order_.push_back(job->id());
  return job->Snapshot();
}

absl::StatusOr<v1::Job> Session::StartFit(const v1::StartFitRequest& request) {
  KILN_RETURN_IF_ERROR(CheckModelExists(request.model()));
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<const Dataset> data,
                        ResolveData(request.data(), "data", "train"));
  std::shared_ptr<const Dataset> validation;
  if (request.has_validation_data()) {
    KILN_ASSIGN_OR_RETURN(validation,
                          ResolveData(request.validation_data(), "validation_data", "test"));
  }
  absl::MutexLock lock(&mu_);
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<ModelEntry> entry, FindModel(request.model(), "model"));
  // Everything fit checks before training, answered now rather than by a failed job.
  absl::StatusOr<FitInfo> plan = entry->trainer->PlanFit(*data, request.config(), validation.get());
  if (!plan.ok()) return RequestError(plan.status());
  v1::FitConfig config = request.config();
  if (!config.has_seed()) config.set_seed(int64_t(Peek(fit_seeds_)));
  v1::Job planned = NewJob(request.model(), v1::FIT);
  planned.set_epoch(plan->initial_epoch);
  planned.set_epochs(plan->epochs);
  planned.set_steps_per_epoch(plan->steps_per_epoch);
  planned.set_seed(config.seed());
  auto job = std::make_shared<Job>(std::move(planned));
  std::shared_ptr<Session> self = shared_from_this();
  KILN_ASSIGN_OR_RETURN(
      v1::Job started, Submit(job, [self, job, entry, data, validation, config](int) {
        SessionJobRunner::Run(*self, *job, [&](v1::Finished&) {
          JobReporter reporter(job);
          return entry->trainer->Fit(*data, config, &reporter, validation.get()).status();
        });
      }));
  if (!request.config().has_seed()) Commit(fit_seeds_);
  return started;
}

absl::StatusOr<v1::Job> Session::StartEvaluate(const v1::StartEvaluateRequest& request) {
  KILN_RETURN_IF_ERROR(CheckModelExists(request.model()));
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<const Dataset> data,
                        ResolveData(request.data(), "data", "test"));
  absl::MutexLock lock(&mu_);
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<ModelEntry> entry, FindModel(request.model(), "model"));
  absl::Status valid = entry->trainer->ValidateEvaluate(*data, request.config());
  if (!valid.ok()) return RequestError(valid);
  auto job = std::make_shared<Job>(NewJob(request.model(), v1::EVALUATE));
  std::shared_ptr<Session> self = shared_from_this();
  const v1::EvaluateConfig config = request.config();
  return Submit(job, [self, job, entry, data, config](int) {
    SessionJobRunner::Run(*self, *job, [&](v1::Finished& details) -> absl::Status {
      JobReporter reporter(job);
      KILN_ASSIGN_OR_RETURN(Logs logs, entry->trainer->Evaluate(*data, config, &reporter));
      *details.mutable_results() = ToMetrics(logs);
      return absl::OkStatus();
    });
  });
}

absl::StatusOr<v1::Job> Session::StartPredict(const v1::StartPredictRequest& request) {
  KILN_RETURN_IF_ERROR(CheckModelExists(request.model()));
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<const Dataset> data,
                        ResolveData(request.data(), "data", "test"));
  absl::MutexLock lock(&mu_);
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<ModelEntry> entry, FindModel(request.model(), "model"));
  absl::Status valid = entry->trainer->ValidatePredict(*data, request.config());
  if (!valid.ok()) return RequestError(valid);
  v1::Job planned = NewJob(request.model(), v1::PREDICT);
  const std::string output = request.output_dataset().empty()
                                 ? absl::StrCat("predictions-", planned.id())
                                 : request.output_dataset();
  if (datasets_.contains(output)) {
    return WithFieldPrefix(absl::AlreadyExistsError(absl::StrCat(
                               "a dataset \"", output, "\" already exists in this session")),
                           "output_dataset");
  }
  planned.set_output_dataset(output);
  auto job = std::make_shared<Job>(std::move(planned));
  std::shared_ptr<Session> self = shared_from_this();
  const v1::PredictConfig config = request.config();
  return Submit(job, [self, job, entry, data, config, output](int) {
    SessionJobRunner::Run(*self, *job, [&](v1::Finished& details) -> absl::Status {
      JobReporter reporter(job);
      KILN_ASSIGN_OR_RETURN(std::vector<Tensor> outputs,
                            entry->trainer->Predict(*data, config, &reporter));
      KILN_RETURN_IF_ERROR(
          SessionJobRunner::StorePredictions(*self, output, std::move(outputs), job->id())
              .status());
      details.set_output_dataset(output);
      return absl::OkStatus();
    });
  });
}

absl::StatusOr<std::shared_ptr<Job>> Session::FindJob(const std::string& job_id) const {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) {
    return WithFieldPrefix(
        absl::NotFoundError(absl::StrCat("no job \"", job_id, "\" in this session")), "job_id");
  }
  return it->second;
}

v1::ListJobsResponse Session::ListJobs() const {
  absl::MutexLock lock(&mu_);
  v1::ListJobsResponse response;
  for (const std::string& id : job_order_) *response.add_jobs() = jobs_.at(id)->Snapshot();
  return response;
}

absl::StatusOr<v1::Job> Session::CancelJob(const v1::CancelJobRequest& request) {
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<Job> job, FindJob(request.job_id()));
  if (!job->finished()) runtime_.scheduler->Cancel(job);
  return job->Snapshot();
}

absl::StatusOr<v1::GetWeightsResponse> Session::GetWeights(const v1::GetWeightsRequest& request) {
  KILN_RETURN_IF_ERROR(compute_.EnterShort());
  absl::Cleanup leave = [this] { compute_.LeaveShort(); };
  absl::MutexLock lock(&mu_);
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<Layer> layer, FindLayer(request.layer(), request.model()));
  v1::GetWeightsResponse response;
  for (const auto& v : layer->variables()) {
    v1::NamedTensor* w = response.add_weights();
    w->set_name(v->name);
    *w->mutable_tensor() = EncodeTensor(v->value);
  }
  return response;
}

absl::Status Session::SetWeights(const v1::SetWeightsRequest& request) {
  KILN_RETURN_IF_ERROR(compute_.EnterShort());
  absl::Cleanup leave = [this] { compute_.LeaveShort(); };
  absl::MutexLock lock(&mu_);
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<Layer> layer, FindLayer(request.layer(), request.model()));
  if (!layer->built()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "layer \"", layer->name(), "\" has no weights yet: call it on a tensor first"));
  }
  // Decode and check every weight before writing any.
  std::vector<std::pair<std::string, Tensor>> weights;
  for (int i = 0; i < request.weights_size(); ++i) {
    const std::string path = absl::StrCat("weights[", i, "]");
    KILN_ASSIGN_OR_RETURN(Tensor t,
                          DecodeTensor(request.weights(i).tensor(), absl::StrCat(path, ".tensor")));
    const std::string& name = request.weights(i).name();
    Variable* v = layer->variable(name == "depthwise_kernel" ? "kernel" : name);
    if (v == nullptr) {
      return WithFieldPrefix(
          absl::NotFoundError(
              absl::StrCat("layer \"", layer->name(), "\" has no weight named \"", name, "\"")),
          absl::StrCat(path, ".name"));
    }
    if (t.dtype() != DType::kFloat32 || t.shape() != v->value.shape()) {
      return FieldError(
          absl::StrCat(path, ".tensor"),
          absl::StrCat("Layer ", layer->name(), " weight shape ", v->value.shape().ToString(),
                       " is not compatible with provided weight shape ", t.shape().ToString(),
                       " (float32 expected)."));
    }
    weights.emplace_back(name, std::move(t));
  }
  for (const auto& [name, value] : weights) KILN_RETURN_IF_ERROR(layer->SetWeight(name, value));
  return absl::OkStatus();
}

absl::StatusOr<v1::PredictResponse> Session::Predict(const v1::PredictRequest& request) {
  std::vector<Tensor> x;
  for (int i = 0; i < request.inputs_size(); ++i) {
    KILN_ASSIGN_OR_RETURN(Tensor t,
                          DecodeTensor(request.inputs(i), absl::StrCat("inputs[", i, "]")));
    x.push_back(std::move(t));
  }
  KILN_ASSIGN_OR_RETURN(Dataset data, MakeDataset(std::move(x), Tensor(), "inputs"));
  if (request.batch_size() < 0) return FieldError("batch_size", "must not be negative");
  v1::PredictConfig config;
  config.set_batch_size(request.batch_size() > 0 ? request.batch_size()
                                                 : static_cast<int>(data.size()));
  KILN_RETURN_IF_ERROR(compute_.EnterShort());
  absl::Cleanup leave = [this] { compute_.LeaveShort(); };
  std::shared_ptr<ModelEntry> entry;
  {
    absl::MutexLock lock(&mu_);
    KILN_ASSIGN_OR_RETURN(entry, FindModel(request.model(), "model"));
  }
  absl::StatusOr<std::vector<Tensor>> outputs = entry->trainer->Predict(data, config);
  if (!outputs.ok()) {
    return WithFieldPrefix(outputs.status(), FieldPathOf(outputs.status()) ? "" : "inputs");
  }
  v1::PredictResponse response;
  for (const Tensor& t : *outputs) *response.add_outputs() = EncodeTensor(t);
  return response;
}

}  // namespace kiln::server
