#include "server/service/worker_pool.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace kiln::server {

WorkerPool::WorkerPool(int threads, int max_queued, ComputeShares* compute)
    : threads_count_(std::max(1, threads)), max_queued_(max_queued), compute_(compute) {
  for (int i = 0; i < threads_count_; ++i) threads_.emplace_back([this] { WorkerLoop(); });
}

WorkerPool::~WorkerPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    changed_.SignalAll();
  }
  for (std::thread& t : threads_) t.join();
}

absl::Status WorkerPool::Schedule(const Lane& lane, absl::AnyInvocable<void() &&> task) {
  absl::MutexLock lock(&mu_);
  Tenant& tenant = tenants_[lane.tenant];
  if (static_cast<int>(tenant.waiting.size()) >= max_queued_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the server is busy: ", max_queued_,
                     " of your requests are waiting for a worker thread (--max_queued_rpcs); "
                     "try again shortly"));
  }
  tenant.waiting.push_back(Task{lane.session, std::move(task)});
  ++waiting_;
  changed_.SignalAll();
  return absl::OkStatus();
}

int WorkerPool::FirstRunnable(const std::string& name, const Tenant& tenant) const {
  for (int i = 0; i < static_cast<int>(tenant.waiting.size()); ++i) {
    const std::string& session = tenant.waiting[i].session;
    if (session.empty() || !busy_sessions_.contains(SessionKey(name, session))) return i;
  }
  return -1;
}

std::optional<WorkerPool::Picked> WorkerPool::Pick() {
  const bool last_free_thread = idle_ == 1 && threads_count_ > 1;
  std::string best_name;
  Tenant* best = nullptr;
  int best_index = -1;
  for (auto& [name, tenant] : tenants_) {
    if (tenant.waiting.empty()) continue;
    if (last_free_thread && tenant.running > 0) continue;  // kept for a tenant with nothing running
    if (best != nullptr && std::make_pair(tenant.running, tenant.last_served) >=
                               std::make_pair(best->running, best->last_served)) {
      continue;
    }
    const int index = FirstRunnable(name, tenant);
    if (index < 0) continue;
    best_name = name;
    best = &tenant;
    best_index = index;
  }
  if (best == nullptr) return std::nullopt;
  Picked picked{best_name, std::move(best->waiting[best_index])};
  best->waiting.erase(best->waiting.begin() + best_index);
  --waiting_;
  ++best->running;
  best->last_served = ++served_;
  if (!picked.task.session.empty()) {
    busy_sessions_.insert(SessionKey(best_name, picked.task.session));
  }
  return picked;
}

void WorkerPool::Finished(const std::string& name, const std::string& session) {
  if (!session.empty()) busy_sessions_.erase(SessionKey(name, session));
  auto tenant = tenants_.find(name);
  if (--tenant->second.running == 0 && tenant->second.waiting.empty()) tenants_.erase(tenant);
  changed_.SignalAll();  // the session, the tenant's turn or the last free thread opened up
}

void WorkerPool::WorkerLoop() {
  mu_.Lock();
  ++idle_;
  for (;;) {
    std::optional<Picked> picked = Pick();
    if (!picked.has_value()) {
      if (stopping_ && waiting_ == 0) break;
      changed_.Wait(&mu_);
      continue;
    }
    --idle_;
    mu_.Unlock();
    {
      ComputeShares::Share share(compute_);
      std::move(picked->task.run)();
    }
    mu_.Lock();
    ++idle_;
    Finished(picked->tenant, picked->task.session);
  }
  --idle_;
  mu_.Unlock();
}

}  // namespace kiln::server
