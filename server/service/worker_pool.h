// WorkerPool: threads for the blocking part of RPCs - every change (it writes to the store),
// Predict, Compile, weights, dataset parsing - so that gRPC's callback threads never wait on
// disk, computation or a session's locks (gRPC's callback API must not block). Tasks run in
// the order scheduled, each holding a ComputeShares::Share. The queue is bounded: past
// `max_queued` tasks waiting, Schedule refuses more, so a flood of requests is answered
// RESOURCE_EXHAUSTED instead of growing memory without end. The destructor runs what is
// queued, then joins.
#ifndef KILN_SERVER_SERVICE_WORKER_POOL_H_
#define KILN_SERVER_SERVICE_WORKER_POOL_H_

#include <deque>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "server/service/compute_shares.h"

namespace kiln::server {

class WorkerPool {
 public:
  WorkerPool(int threads, int max_queued, ComputeShares* compute);
  ~WorkerPool();

  // RESOURCE_EXHAUSTED (and `task` is dropped) when `max_queued` tasks are waiting already.
  absl::Status Schedule(absl::AnyInvocable<void() &&> task);

 private:
  void WorkerLoop();
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !tasks_.empty(); }

  const int max_queued_;
  ComputeShares* const compute_;
  absl::Mutex mu_;
  std::deque<absl::AnyInvocable<void() &&>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace kiln::server

#endif  // KILN_SERVER_SERVICE_WORKER_POOL_H_
