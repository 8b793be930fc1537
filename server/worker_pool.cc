#include "server/worker_pool.h"

#include <omp.h>

#include <algorithm>

namespace kiln::server {

WorkerPool::WorkerPool(int threads, int compute_threads)
    : compute_threads_(std::max(1, compute_threads)) {
  for (int i = 0; i < std::max(1, threads); ++i) threads_.emplace_back([this] { WorkerLoop(); });
}

WorkerPool::~WorkerPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) t.join();
}

void WorkerPool::Schedule(absl::AnyInvocable<void() &&> task) {
  absl::MutexLock lock(&mu_);
  tasks_.push_back(std::move(task));
}

void WorkerPool::WorkerLoop() {
  for (;;) {
    absl::AnyInvocable<void() &&> task;
    int share = 1;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &WorkerPool::HasWork));
      if (tasks_.empty()) return;  // stopping, and nothing left to run
      task = std::move(tasks_.front());
      tasks_.pop_front();
      ++running_;
      share = std::max(1, compute_threads_ / running_);
    }
    omp_set_num_threads(share);
    std::move(task)();
    absl::MutexLock lock(&mu_);
    --running_;
  }
}

}  // namespace kiln::server
