#include "server/service/worker_pool.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace kiln::server {

WorkerPool::WorkerPool(int threads, int max_queued, ComputeShares* compute)
    : max_queued_(max_queued), compute_(compute) {
  for (int i = 0; i < std::max(1, threads); ++i) threads_.emplace_back([this] { WorkerLoop(); });
}

WorkerPool::~WorkerPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) t.join();
}

absl::Status WorkerPool::Schedule(absl::AnyInvocable<void() &&> task) {
  absl::MutexLock lock(&mu_);
  if (static_cast<int>(tasks_.size()) >= max_queued_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the server is busy: ", max_queued_,
                     " requests are waiting for a worker thread; try again shortly"));
  }
  tasks_.push_back(std::move(task));
  return absl::OkStatus();
}

void WorkerPool::WorkerLoop() {
  for (;;) {
    absl::AnyInvocable<void() &&> task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &WorkerPool::HasWork));
      if (tasks_.empty()) return;  // stopping, and nothing left to run
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    ComputeShares::Share share(compute_);
    std::move(task)();
  }
}

}  // namespace kiln::server
