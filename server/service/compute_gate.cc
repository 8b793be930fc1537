#include "server/service/compute_gate.h"

#include "absl/strings/str_cat.h"
#include "server/service/call_scope.h"

namespace kiln::server {

absl::Status ComputeGate::EnterShort() {
  absl::MutexLock lock(&mu_);
  // A caller that gives up while it waits stops waiting (CallScope).
  while (!mu_.AwaitWithTimeout(absl::Condition(this, &ComputeGate::FreeOrJob),
                               absl::Milliseconds(20))) {
    if (CallScope::Cancelled()) return CallScope::Stopped();
  }
  if (!job_.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the session is running job ", job_,
                     "; its weights can be used when the job ends (or cancel it)"));
  }
  short_held_ = true;
  return absl::OkStatus();
}

void ComputeGate::LeaveShort() {
  absl::MutexLock lock(&mu_);
  short_held_ = false;
}

void ComputeGate::EnterJob(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  job_ = job_id;  // from now on short operations are refused rather than queued
  mu_.Await(absl::Condition(this, &ComputeGate::Free));
  job_held_ = true;
}

void ComputeGate::LeaveJob() {
  absl::MutexLock lock(&mu_);
  job_held_ = false;
  job_.clear();
}

}  // namespace kiln::server
