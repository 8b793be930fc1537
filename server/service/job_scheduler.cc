#include "server/service/job_scheduler.h"

#include <algorithm>

namespace kiln::server {

JobScheduler::JobScheduler(int max_concurrent_jobs, ComputeShares* compute) : compute_(compute) {
  for (int i = 0; i < std::max(1, max_concurrent_jobs); ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
}

JobScheduler::~JobScheduler() { Shutdown(); }

absl::Status JobScheduler::Submit(const std::string& session, std::shared_ptr<Job> job, Work work) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("the server is shutting down");
  queue_.push_back(Entry{session, std::move(job), std::move(work)});
  return absl::OkStatus();
}

bool JobScheduler::accepting() const {
  absl::MutexLock lock(&mu_);
  return !stopping_;
}

void JobScheduler::Cancel(const std::shared_ptr<Job>& job) {
  job->RequestCancel();
  bool was_queued = false;
  {
    absl::MutexLock lock(&mu_);
    auto it =
        std::find_if(queue_.begin(), queue_.end(), [&](const Entry& e) { return e.job == job; });
    if (it != queue_.end()) {
      queue_.erase(it);
      was_queued = true;
    }
  }
  if (was_queued) {
    job->Finish(v1::CANCELLED, absl::CancelledError("cancelled before it started"));
  } else if (!job->finished()) {
    job->SetState(v1::CANCELLING).IgnoreError();  // storage errors stop the job by themselves
  }
}

void JobScheduler::Shutdown() {
  std::deque<Entry> dropped;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
    dropped.swap(queue_);
    for (const auto& job : running_) job->RequestCancel(/*server_shutdown=*/true);
  }
  for (Entry& e : dropped) {
    e.job->Finish(v1::INTERRUPTED, absl::UnavailableError("the server stopped before the job "
                                                          "started"));
  }
  for (std::thread& t : workers_) {
    if (t.joinable()) t.join();
  }
  workers_.clear();
}

std::deque<JobScheduler::Entry>::iterator JobScheduler::NextRunnable() {
  return std::find_if(queue_.begin(), queue_.end(), [this](const Entry& e) {
    mu_.AssertHeld();
    return !busy_sessions_.contains(e.session);
  });
}

void JobScheduler::WorkerLoop() {
  for (;;) {
    Entry entry;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &JobScheduler::CanProceed));
      auto it = NextRunnable();
      if (it == queue_.end()) return;  // stopping, nothing to run
      entry = std::move(*it);
      queue_.erase(it);
      busy_sessions_.insert(entry.session);
      running_.push_back(entry.job);
    }
    {
      ComputeShares::Share share(compute_);
      entry.work();
    }
    {
      absl::MutexLock lock(&mu_);
      busy_sessions_.erase(entry.session);
      running_.erase(std::find(running_.begin(), running_.end(), entry.job));
    }
  }
}

}  // namespace kiln::server
