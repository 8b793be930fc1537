// JobService: starting and managing jobs, and WatchJob's event stream.
#include "core/base/status.h"
#include "server/grpc/grpc_status.h"
#include "server/grpc/services.h"

namespace kiln::server {
namespace {

// WatchJob: writes the job's events from `from_sequence + 1` on, one write at a time, waking
// up when the job appends more, and finishes once it has written the last event of a job that
// has ended (a job resumed meanwhile goes on). The job never waits for this reactor: a slow
// client only falls behind in the log. A token revoked while it streams (SIGHUP) ends it
// UNAUTHENTICATED.
class WatchReactor : public grpc::ServerWriteReactor<v1::JobEvent> {
 public:
  WatchReactor(std::shared_ptr<Job> job, int64_t from_sequence, const Authenticator& auth,
               std::optional<std::string> authorization, const std::string& tenant)
      : job_(std::move(job)), next_(std::max<int64_t>(from_sequence, 0) + 1) {
    revocation_ = auth.WatchRevocation(std::move(authorization), tenant, [this] { Revoke(); });
    subscription_ = job_->Subscribe([this] { Pump(); });
    Pump();
  }

  void OnWriteDone(bool ok) override {
    bool finish = false, revoked = false;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      revoked = revoked_;
      if (!ok || cancelled_ || revoked_) {  // the client went away, or may no longer watch
        finish = TakeFinish();
      } else {
        ++next_;
      }
    }
    if (finish) {
      Finish(revoked ? Revoked()
                     : grpc::Status(grpc::StatusCode::CANCELLED, "the watcher went away"));
    } else {
      Pump();
    }
  }

  void OnCancel() override {
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      // With a write in flight, OnWriteDone finishes the stream.
      finish = !writing_ && TakeFinish();
    }
    if (finish) Finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
  }

  void OnDone() override {
    subscription_->Reset();                             // no Pump runs or will run after this
    if (revocation_ != nullptr) revocation_->Cancel();  // nor Revoke
    delete this;
  }

 private:
  // Writes the next event if one is ready and no write is in flight, or finishes the stream
  // after the job's last event. gRPC is called outside the lock.
  void Pump() {
    bool write = false, finish = false;
    {
      absl::MutexLock lock(&mu_);
      if (writing_ || finished_ || cancelled_ || revoked_) return;
      if (std::optional<v1::JobEvent> event = job_->EventAt(next_)) {
        current_ = *std::move(event);  // not touched again until OnWriteDone
        writing_ = write = true;
      } else if (job_->finished() && next_ > job_->last_sequence()) {
        finish = TakeFinish();
      }
    }
    if (write) {
      StartWrite(&current_);
    } else if (finish) {
      Finish(job_->interrupted()
                 ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down")
                 : grpc::Status::OK);
    }
  }

  void Revoke() {
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      revoked_ = true;
      // With a write in flight, OnWriteDone finishes the stream.
      finish = !writing_ && TakeFinish();
    }
    if (finish) Finish(Revoked());
  }

  static grpc::Status Revoked() {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "the token this stream was opened with was revoked");
  }

  // True the first time: the caller then finishes the stream.
  bool TakeFinish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return false;
    finished_ = true;
    return true;
  }

  const std::shared_ptr<Job> job_;
  std::shared_ptr<JobSubscription> subscription_;
  std::shared_ptr<RevocationWatch> revocation_;
  absl::Mutex mu_;
  int64_t next_ ABSL_GUARDED_BY(mu_);
  v1::JobEvent current_;  // written only while no write is in flight
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool revoked_ ABSL_GUARDED_BY(mu_) = false;
};

// Finishes a write reactor immediately with an error (unknown session or job).
class FailedWatch : public grpc::ServerWriteReactor<v1::JobEvent> {
 public:
  explicit FailedWatch(const absl::Status& status) { Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerUnaryReactor* JobServiceImpl::StartFit(grpc::CallbackServerContext* context,
                                                   const v1::StartFitRequest* request,
                                                   v1::Job* response) {
  return CallSessionFromPool(context, backend_, request, response, &Session::StartFit);
}

grpc::ServerUnaryReactor* JobServiceImpl::StartEvaluate(grpc::CallbackServerContext* context,
                                                        const v1::StartEvaluateRequest* request,
                                                        v1::Job* response) {
  return CallSessionFromPool(context, backend_, request, response, &Session::StartEvaluate);
}

grpc::ServerUnaryReactor* JobServiceImpl::StartPredict(grpc::CallbackServerContext* context,
                                                       const v1::StartPredictRequest* request,
                                                       v1::Job* response) {
  return CallSessionFromPool(context, backend_, request, response, &Session::StartPredict);
}

grpc::ServerUnaryReactor* JobServiceImpl::GetJob(grpc::CallbackServerContext* context,
                                                 const v1::GetJobRequest* request,
                                                 v1::Job* response) {
  return Respond(context, backend_, [&](const Caller& caller) -> absl::Status {
    KILN_ASSIGN_OR_RETURN(std::shared_ptr<Session> session,
                          backend_.sessions->Get(caller, request->session_id()));
    KILN_ASSIGN_OR_RETURN(std::shared_ptr<Job> job, session->FindJob(request->job_id()));
    *response = job->Snapshot();
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* JobServiceImpl::ListJobs(grpc::CallbackServerContext* context,
                                                   const v1::ListJobsRequest* request,
                                                   v1::ListJobsResponse* response) {
  return Respond(context, backend_, [&](const Caller& caller) -> absl::Status {
    KILN_ASSIGN_OR_RETURN(std::shared_ptr<Session> session,
                          backend_.sessions->Get(caller, request->session_id()));
    *response = session->ListJobs();
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* JobServiceImpl::CancelJob(grpc::CallbackServerContext* context,
                                                    const v1::CancelJobRequest* request,
                                                    v1::Job* response) {
  return CallSessionFromPool(context, backend_, request, response, &Session::CancelJob);
}

grpc::ServerUnaryReactor* JobServiceImpl::ResumeJob(grpc::CallbackServerContext* context,
                                                    const v1::ResumeJobRequest* request,
                                                    v1::Job* response) {
  return CallSessionFromPool(context, backend_, request, response, &Session::ResumeJob);
}

grpc::ServerUnaryReactor* JobServiceImpl::ListCheckpoints(grpc::CallbackServerContext* context,
                                                          const v1::ListCheckpointsRequest* request,
                                                          v1::ListCheckpointsResponse* response) {
  return CallSession(context, backend_, request, response, &Session::ListCheckpoints);
}

grpc::ServerUnaryReactor* JobServiceImpl::RestoreCheckpoint(
    grpc::CallbackServerContext* context, const v1::RestoreCheckpointRequest* request,
    v1::Checkpoint* response) {
  return CallSessionFromPool(context, backend_, request, response, &Session::RestoreCheckpoint);
}

grpc::ServerUnaryReactor* JobServiceImpl::DeleteCheckpoint(
    grpc::CallbackServerContext* context, const v1::DeleteCheckpointRequest* request,
    v1::DeleteCheckpointResponse* response) {
  return CallSessionFromPool(context, backend_, request, response, &Session::DeleteCheckpoint);
}

grpc::ServerWriteReactor<v1::JobEvent>* JobServiceImpl::WatchJob(
    grpc::CallbackServerContext* context, const v1::WatchJobRequest* request) {
  absl::StatusOr<Caller> caller = CallerOf(*context, *backend_.auth);
  if (!caller.ok()) return new FailedWatch(caller.status());
  absl::StatusOr<std::shared_ptr<Session>> session =
      backend_.sessions->Get(*caller, request->session_id());
  if (!session.ok()) return new FailedWatch(session.status());
  if (request->from_sequence() < 0) {
    return new FailedWatch(FieldError("from_sequence", "must not be negative"));
  }
  absl::StatusOr<std::shared_ptr<Job>> job = (*session)->FindJob(request->job_id());
  if (!job.ok()) return new FailedWatch(job.status());
  std::optional<std::string> authorization;
  const auto& metadata = context->client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    authorization.emplace(it->second.data(), it->second.size());
  }
  return new WatchReactor(*std::move(job), request->from_sequence(), *backend_.auth,
                          std::move(authorization), caller->id);
}

}  // namespace kiln::server
