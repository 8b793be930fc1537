// JobScheduler: runs jobs on its own worker threads (never on gRPC threads), at most
// `max_concurrent_jobs` at a time, the rest queued. Jobs of one session run one after another
// in the order they were submitted, because they share the session's layers.
//
// Each job takes a ComputeShares::Share while it runs.
// Shutdown refuses new jobs, marks queued ones INTERRUPTED, asks running ones to stop at their
// next batch and waits for them.
#ifndef KILN_SERVER_SERVICE_JOB_SCHEDULER_H_
#define KILN_SERVER_SERVICE_JOB_SCHEDULER_H_

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "server/service/compute_shares.h"
#include "server/service/job.h"

namespace kiln::server {

class JobScheduler {
 public:
  // Runs the job (with OpenMP set to the job's share of the threads) and leaves it finished.
  using Work = std::function<void()>;

  JobScheduler(int max_concurrent_jobs, ComputeShares* compute);
  ~JobScheduler();

  // UNAVAILABLE once shutting down. `session`: the store key of the job's session (unique
  // across tenants), whose jobs run one at a time.
  absl::Status Submit(const std::string& session, std::shared_ptr<Job> job, Work work);
  // False once shutting down: callers check before they store a job they will submit.
  bool accepting() const;
  // A queued job is removed and finishes CANCELLED; a running one is asked to stop.
  void Cancel(const std::shared_ptr<Job>& job);
  void Shutdown();

 private:
  struct Entry {
    std::string session;
    std::shared_ptr<Job> job;
    Work work;
  };
  void WorkerLoop();
  // The first queued job whose session has no running job, or queue_.end().
  std::deque<Entry>::iterator NextRunnable() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool CanProceed() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || NextRunnable() != queue_.end();
  }

  ComputeShares* const compute_;
  mutable absl::Mutex mu_;
  std::deque<Entry> queue_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> busy_sessions_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<Job>> running_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace kiln::server

#endif  // KILN_SERVER_SERVICE_JOB_SCHEDULER_H_
