// Session: jobs - starting fit, evaluate and predict, running them, cancelling and resuming.
#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/base/random_id.h"
#include "core/base/status.h"
#include "server/service/job_reporter.h"
#include "server/service/logs.h"
#include "server/service/service_metrics.h"
#include "server/service/session.h"

namespace kiln::server {
namespace {

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
void FinishJob(Job& job, absl::Status status, v1::Finished details = {}) {
  if (absl::Status stored = job.storage_error(); !stored.ok()) status = stored;
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

bool Resumable(v1::JobState state) {
  return state == v1::INTERRUPTED || state == v1::FAILED || state == v1::CANCELLED;
}

}  // namespace

// A job's data, resolved when it is started (or resumed).
struct Session::JobData {
  std::shared_ptr<const Dataset> data;
  std::shared_ptr<const Dataset> validation;  // fit: validation_data, if given
  std::shared_ptr<void> tenant_slot;          // one of the tenant's jobs, until this ends
};

// Runs jobs with the session's compute gate held.
class SessionJobRunner {
 public:
  // Holds the session's compute gate for the duration of `run` and finishes the job with
  // run's status once the gate is released.
  template <typename Fn>
  static void Run(Session& session, Job& job, Fn run) {
    const absl::Time start = absl::Now();
    if (job.cancel_requested()) {
      FinishJob(job, absl::CancelledError("cancelled before it started"));
      Report(session, job, start);
      return;
    }
    absl::Status status;
    v1::Finished details;
    session.compute_.EnterJob(job.id());
    status = job.SetState(v1::RUNNING);
    if (status.ok()) {
      ScopedMemoryAccount charged(session.memory());  // plans and slots count for the session
      try {
        status = run(details);
      } catch (const std::bad_alloc& e) {
        status = absl::ResourceExhaustedError(e.what());
      } catch (const std::exception& e) {  // never let a job take the server down
        status = absl::InternalError(absl::StrCat("job failed: ", e.what()));
      }
    }
    session.compute_.LeaveJob();
    // Only after the weights are free: a client that reacts to the Finished event may use them
    // at once.
    FinishJob(job, status, std::move(details));
    session.Touch();  // the session's TTL counts from the end of its last job
    Report(session, job, start);
  }

  // Counts the job's end and logs it.
  static void Report(const Session& session, const Job& job, absl::Time start) {
    const v1::Job done = job.Snapshot();
    const std::string kind = absl::AsciiStrToLower(v1::JobKind_Name(job.kind()));
    const std::string state = v1::JobState_Name(done.state());
    session.runtime_.metrics->Add(kJobsFinished, {{"kind", kind}, {"state", state}});
    LogFields fields;
    fields.tenant = session.owner();
    fields.session = session.id();
    fields.job = job.id();
    fields.duration_ms = absl::ToDoubleMilliseconds(absl::Now() - start);
    std::string message = absl::StrCat(kind, " ", state);
    if (done.has_error()) absl::StrAppend(&message, ": ", done.error().message());
    session.runtime_.logger->Log(done.state() == v1::FAILED ? LogLevel::kWarning : LogLevel::kInfo,
                                 message, fields);
  }

  // A fit, from the start or from `resume_from`. The model's state is stored at the end when
  // any batch ran, so that the weights a finished fit reports are the ones a restart has.
  static absl::Status Fit(Session& session, const std::shared_ptr<Job>& job,
                          const std::shared_ptr<Session::ModelEntry>& entry,
                          const v1::FitConfig& config, const Session::JobData& data,
                          const std::optional<store::CheckpointRecord>& resume_from) {
    KILN_ASSIGN_OR_RETURN(CheckpointPolicy policy, CheckpointPolicy::FromConfig(config));
    std::optional<FitState> state;
    if (resume_from.has_value()) {
      KILN_ASSIGN_OR_RETURN(state, session.LoadCheckpoint(*job, *entry, *resume_from));
    }
    JobReporter reporter(
        job, state ? state->batches_done : 0, policy,
        [&](const std::string& reason, const FitState& s) {
          return session.SaveCheckpoint(*job, *entry, reason, s, policy.keep);
        },
        /*resumed=*/state.has_value(),
        [metrics = session.runtime_.metrics](int64_t samples) {
          metrics->Add(kTrainingSamples, {}, double(samples));
        });
    absl::Status status =
        entry->trainer
            ->Fit(*data.data, config, &reporter, data.validation.get(), state ? &*state : nullptr)
            .status();
    if (reporter.trained() > 0) {
      absl::Status stored = session.StoreModelState(entry);
      if (status.ok()) status = stored;
    }
    return status;
  }
};

v1::Job Session::NewJob(const std::string& model, v1::JobKind kind) const {
  v1::Job job;
  job.set_id(absl::StrCat("job-", RandomHex(16)));
  job.set_session_id(id_);
  job.set_model(model);
  job.set_kind(kind);
  return job;
}

Job::EventSink Session::JobSink() const {
  return [store = runtime_.store, key = store_key_](const v1::JobEvent& event) {
    return store->AppendEvent(key, event);
  };
}

std::shared_ptr<Job> Session::MakeJob(v1::Job plan) {
  return std::make_shared<Job>(std::move(plan), JobSink());
}

absl::StatusOr<v1::Job> Session::Submit(std::shared_ptr<Job> job, store::JobRecord& record,
                                        bool draws_fit_seed) {
  store::SessionRecord session;
  {
    absl::ReaderMutexLock lock(&mu_);
    if (closed_) {
      return WithFieldPrefix(
          absl::NotFoundError(absl::StrCat("session \"", id_, "\" was deleted or has expired")),
          "session_id");
    }
    session = RecordLocked();
  }
  if (!runtime_.scheduler->accepting()) {
    return absl::UnavailableError("the server is shutting down");
  }
  *record.mutable_plan() = job->Snapshot();
  if (draws_fit_seed) session.set_fit_seed_draws(session.fit_seed_draws() + 1);
  KILN_RETURN_IF_ERROR(runtime_.store->PutJob(session, record));
  absl::MutexLock lock(&mu_);
  if (draws_fit_seed) {
    fit_seeds_.discard(1);
    ++fit_seed_draws_;
  }
  jobs_[job->id()] = JobEntry{job, record, {}};
  job_order_.push_back(job->id());
  return job->Snapshot();
}

void Session::Schedule(const std::shared_ptr<Job>& job, const store::JobRecord& record,
                       std::shared_ptr<ModelEntry> entry, std::shared_ptr<const JobData> data,
                       std::optional<store::CheckpointRecord> resume_from) {
  std::shared_ptr<Session> self = shared_from_this();
  JobScheduler::Work work;
  if (record.has_fit()) {
    work = [self, job, entry, data, config = record.fit().config(), resume_from] {
      SessionJobRunner::Run(*self, *job, [&](v1::Finished&) {
        return SessionJobRunner::Fit(*self, job, entry, config, *data, resume_from);
      });
    };
  } else if (record.has_evaluate()) {
    work = [self, job, entry, data, config = record.evaluate().config()] {
      SessionJobRunner::Run(*self, *job, [&](v1::Finished& details) -> absl::Status {
        JobReporter reporter(job);
        KILN_ASSIGN_OR_RETURN(Logs logs, entry->trainer->Evaluate(*data->data, config, &reporter));
        *details.mutable_results() = ToMetrics(logs);
        return absl::OkStatus();
      });
    };
  } else {
    const std::string output = record.plan().output_dataset();
    work = [self, job, entry, data, config = record.predict().config(), output] {
      SessionJobRunner::Run(*self, *job, [&](v1::Finished& details) -> absl::Status {
        JobReporter reporter(job);
        KILN_ASSIGN_OR_RETURN(std::vector<Tensor> outputs,
                              entry->trainer->Predict(*data->data, config, &reporter));
        Dataset predictions;
        predictions.x = std::move(outputs);
        KILN_RETURN_IF_ERROR(self->AddDataset(output, std::move(predictions),
                                              absl::StrCat("predictions:", job->id()), nullptr)
                                 .status());
        details.set_output_dataset(output);
        return absl::OkStatus();
      });
    };
  }
  absl::Status submitted = runtime_.scheduler->Submit(store_key_, job, std::move(work));
  if (!submitted.ok()) {
    // Shutdown began after the job was stored: it ends as every queued job does then.
    job->Finish(v1::INTERRUPTED, absl::UnavailableError("the server stopped before the job "
                                                        "started"));
  }
}

absl::StatusOr<v1::Job> Session::StartFit(const v1::StartFitRequest& request) {
  KILN_RETURN_IF_ERROR(CheckModelExists(request.model()));
  auto data = std::make_shared<JobData>();
  KILN_ASSIGN_OR_RETURN(data->tenant_slot, runtime_.tenants->AcquireJob(owner_));
  KILN_ASSIGN_OR_RETURN(data->data, ResolveData(request.data(), "data", "train"));
  if (request.has_validation_data()) {
    KILN_ASSIGN_OR_RETURN(data->validation,
                          ResolveData(request.validation_data(), "validation_data", "test"));
  }
  KILN_RETURN_IF_ERROR(
      WithFieldPrefix(CheckpointPolicy::FromConfig(request.config()).status(), "config"));
  absl::MutexLock writer(&writer_mu_);
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<ModelEntry> entry, JobModel(request.model()));
  const uint64_t seed = [&] {
    absl::ReaderMutexLock lock(&mu_);
    return Peek(fit_seeds_);
  }();
  // Everything fit checks before training, answered now rather than by a failed job.
  absl::StatusOr<FitInfo> plan =
      entry->trainer->PlanFit(*data->data, request.config(), data->validation.get());
  if (!plan.ok()) return RequestError(plan.status());
  store::JobRecord record;
  *record.mutable_fit() = request;
  v1::FitConfig& config = *record.mutable_fit()->mutable_config();
  const bool draws_seed = !config.has_seed();
  if (draws_seed) config.set_seed(int64_t(seed));
  v1::Job planned = NewJob(request.model(), v1::FIT);
  planned.set_epoch(plan->initial_epoch);
  planned.set_epochs(plan->epochs);
  planned.set_steps_per_epoch(plan->steps_per_epoch);
  planned.set_seed(config.seed());
  std::shared_ptr<Job> job = MakeJob(std::move(planned));
  KILN_ASSIGN_OR_RETURN(v1::Job started, Submit(job, record, draws_seed));
  Schedule(job, record, entry, data, std::nullopt);
  return started;
}

absl::StatusOr<v1::Job> Session::StartEvaluate(const v1::StartEvaluateRequest& request) {
  KILN_RETURN_IF_ERROR(CheckModelExists(request.model()));
  auto data = std::make_shared<JobData>();
  KILN_ASSIGN_OR_RETURN(data->tenant_slot, runtime_.tenants->AcquireJob(owner_));
  KILN_ASSIGN_OR_RETURN(data->data, ResolveData(request.data(), "data", "test"));
  absl::MutexLock writer(&writer_mu_);
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<ModelEntry> entry, JobModel(request.model()));
  absl::Status valid = entry->trainer->ValidateEvaluate(*data->data, request.config());
  if (!valid.ok()) return RequestError(valid);
  store::JobRecord record;
  *record.mutable_evaluate() = request;
  std::shared_ptr<Job> job = MakeJob(NewJob(request.model(), v1::EVALUATE));
  KILN_ASSIGN_OR_RETURN(v1::Job started, Submit(job, record, false));
  Schedule(job, record, entry, data, std::nullopt);
  return started;
}

absl::StatusOr<v1::Job> Session::StartPredict(const v1::StartPredictRequest& request) {
  KILN_RETURN_IF_ERROR(CheckModelExists(request.model()));
  auto data = std::make_shared<JobData>();
  KILN_ASSIGN_OR_RETURN(data->tenant_slot, runtime_.tenants->AcquireJob(owner_));
  KILN_ASSIGN_OR_RETURN(data->data, ResolveData(request.data(), "data", "test"));
  absl::MutexLock writer(&writer_mu_);
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<ModelEntry> entry, JobModel(request.model()));
  absl::Status valid = entry->trainer->ValidatePredict(*data->data, request.config());
  if (!valid.ok()) return RequestError(valid);
  v1::Job planned = NewJob(request.model(), v1::PREDICT);
  const std::string output = request.output_dataset().empty()
                                 ? absl::StrCat("predictions-", planned.id())
                                 : request.output_dataset();
  {
    absl::ReaderMutexLock lock(&mu_);
    if (datasets_.contains(output) || pending_datasets_.contains(output)) {
      return WithFieldPrefix(absl::AlreadyExistsError(absl::StrCat(
                                 "a dataset \"", output, "\" already exists in this session")),
                             "output_dataset");
    }
  }
  planned.set_output_dataset(output);
  store::JobRecord record;
  *record.mutable_predict() = request;
  std::shared_ptr<Job> job = MakeJob(std::move(planned));
  KILN_ASSIGN_OR_RETURN(v1::Job started, Submit(job, record, false));
  Schedule(job, record, entry, data, std::nullopt);
  return started;
}

absl::StatusOr<Session::JobEntry*> Session::FindJobEntry(const std::string& job_id) const {
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) {
    return WithFieldPrefix(
        absl::NotFoundError(absl::StrCat("no job ", Quoted(job_id), " in this session")), "job_id");
  }
  return const_cast<JobEntry*>(&it->second);
}

absl::StatusOr<std::shared_ptr<Session::ModelEntry>> Session::JobModel(
    const std::string& model) const {
  absl::ReaderMutexLock lock(&mu_);
  return FindModel(model, "model");
}

absl::StatusOr<std::shared_ptr<Job>> Session::FindJob(const std::string& job_id) const {
  absl::ReaderMutexLock lock(&mu_);
  KILN_ASSIGN_OR_RETURN(JobEntry * entry, FindJobEntry(job_id));
  return entry->job;
}

v1::ListJobsResponse Session::ListJobs() const {
  absl::ReaderMutexLock lock(&mu_);
  v1::ListJobsResponse response;
  for (const std::string& id : job_order_) *response.add_jobs() = jobs_.at(id).job->Snapshot();
  return response;
}

void Session::CountJobs(std::map<v1::JobState, int>& by_state) const {
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& [id, entry] : jobs_) ++by_state[entry.job->state()];
}

absl::StatusOr<v1::Job> Session::CancelJob(const v1::CancelJobRequest& request) {
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<Job> job, FindJob(request.job_id()));
  if (!job->finished()) runtime_.scheduler->Cancel(job);
  return job->Snapshot();
}

absl::StatusOr<v1::Job> Session::ResumeJob(const v1::ResumeJobRequest& request) {
  absl::MutexLock writer(&writer_mu_);
  store::JobRecord record;
  std::shared_ptr<Job> job;
  std::optional<store::CheckpointRecord> checkpoint;
  {
    absl::ReaderMutexLock lock(&mu_);
    KILN_ASSIGN_OR_RETURN(JobEntry * entry, FindJobEntry(request.job_id()));
    job = entry->job;
    record = entry->record;
    if (!entry->checkpoints.empty()) checkpoint = entry->checkpoints.back();
  }
  const v1::Job snapshot = job->Snapshot();
  if (job->kind() != v1::FIT) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job->id(), " is not a fit; only fits can be resumed"));
  }
  if (!Resumable(snapshot.state())) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job->id(), " is ", v1::JobState_Name(snapshot.state()),
                     "; only an INTERRUPTED, FAILED or CANCELLED fit can be resumed"));
  }
  if (!checkpoint.has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job->id(), " has no checkpoint to resume from"));
  }
  absl::StatusOr<std::shared_ptr<ModelEntry>> entry = JobModel(snapshot.model());
  if (!entry.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", job->id(), " trained model \"", snapshot.model(), "\", which no longer exists"));
  }
  // The data as the job was started with; a dataset deleted since cannot be trained on.
  auto data = std::make_shared<JobData>();
  KILN_ASSIGN_OR_RETURN(data->tenant_slot, runtime_.tenants->AcquireJob(owner_));
  absl::StatusOr<std::shared_ptr<const Dataset>> resolved =
      ResolveData(record.fit().data(), "data", "train");
  if (!resolved.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", job->id(), " cannot be resumed: its data: ", resolved.status().message()));
  }
  data->data = *std::move(resolved);
  if (record.fit().has_validation_data()) {
    resolved = ResolveData(record.fit().validation_data(), "validation_data", "test");
    if (!resolved.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("job ", job->id(),
                       " cannot be resumed: its validation data: ", resolved.status().message()));
    }
    data->validation = *std::move(resolved);
  }
  if (!runtime_.scheduler->accepting()) {
    return absl::UnavailableError("the server is shutting down");
  }
  v1::Resumed resumed;
  resumed.set_checkpoint(checkpoint->info().number());
  resumed.set_epoch(checkpoint->info().epoch());
  resumed.set_batch(checkpoint->info().batch());
  KILN_RETURN_IF_ERROR(job->Reopen(std::move(resumed)));
  Schedule(job, record, *std::move(entry), data, checkpoint);
  return job->Snapshot();
}

}  // namespace kiln::server
