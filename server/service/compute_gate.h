// ComputeGate: who may use a session's weights right now. A job holds the gate for its whole
// run; short operations (Predict, Get/SetWeights, Compile) hold it briefly and one at a time.
// Short operations queue behind each other but never behind a job: while a job holds the gate,
// or waits for it, they are refused at once with FAILED_PRECONDITION naming the job - a client
// must not hang for the length of a training run. Thread-safe.
#ifndef KILN_SERVER_SERVICE_COMPUTE_GATE_H_
#define KILN_SERVER_SERVICE_COMPUTE_GATE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace kiln::server {

class ComputeGate {
 public:
  // Waits for other short operations, then holds the gate; FAILED_PRECONDITION if a job has it,
  // CANCELLED when the call gives up while it waits (CallScope).
  absl::Status EnterShort();
  void LeaveShort();

  // Waits until the gate is free, then holds it for job `job_id`.
  void EnterJob(const std::string& job_id);
  void LeaveJob();

 private:
  bool Free() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !short_held_ && !job_held_; }
  bool FreeOrJob() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return Free() || !job_.empty(); }

  mutable absl::Mutex mu_;
  bool short_held_ ABSL_GUARDED_BY(mu_) = false;
  bool job_held_ ABSL_GUARDED_BY(mu_) = false;
  std::string job_ ABSL_GUARDED_BY(mu_);  // set from EnterJob until LeaveJob
};

}  // namespace kiln::server

#endif  // KILN_SERVER_SERVICE_COMPUTE_GATE_H_
