// WorkerPool: threads for the blocking part of unary RPCs - Predict, Compile, weights, dataset
// files - so that gRPC's callback threads never wait on computation or on a session's compute
// gate (gRPC's callback API must not block). Tasks run in the order scheduled; each sets
// max(1, compute_threads / tasks running) OpenMP threads first, so one large Predict uses
// every core and many small ones share them. The destructor runs what is queued, then joins.
#ifndef KILN_SERVER_WORKER_POOL_H_
#define KILN_SERVER_WORKER_POOL_H_

#include <deque>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace kiln::server {

class WorkerPool {
 public:
  WorkerPool(int threads, int compute_threads);
  ~WorkerPool();

  void Schedule(absl::AnyInvocable<void() &&> task);

 private:
  void WorkerLoop();
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !tasks_.empty(); }

  const int compute_threads_;
  absl::Mutex mu_;
  std::deque<absl::AnyInvocable<void() &&>> tasks_ ABSL_GUARDED_BY(mu_);
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace kiln::server

#endif  // KILN_SERVER_WORKER_POOL_H_
