// WorkerPool: threads for the blocking part of RPCs - every change (it writes to the store),
// Predict, Compile, weights, dataset parsing - so that gRPC's callback threads never wait on
// disk, computation or a session's locks (gRPC's callback API must not block).
//
// Every task names its Lane: the tenant it runs for and, optionally, the session it touches.
// The pool promises:
//  - a session's tasks run one at a time, in the order scheduled, so a task never occupies a
//    thread only to wait for the session's locks or compute gate behind its predecessor;
//  - tenants take turns: a free thread goes to the tenant with the fewest tasks running
//    (ties: the one served least recently), and a tenant that already runs a task never takes
//    the last free thread, which stays for a tenant with nothing running - so one tenant's
//    long Predicts cannot make another tenant's short call wait for them;
//  - each tenant may have at most `max_queued` tasks waiting; past that Schedule refuses with
//    RESOURCE_EXHAUSTED, so a flood is answered at once instead of growing memory without end,
//    and does not take the queue from other tenants.
// Each running task holds a ComputeShares::Share. The destructor runs what is queued, then
// joins. Thread-safe.
#ifndef KILN_SERVER_SERVICE_WORKER_POOL_H_
#define KILN_SERVER_SERVICE_WORKER_POOL_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "server/service/compute_shares.h"

namespace kiln::server {

class WorkerPool {
 public:
  struct Lane {
    std::string tenant;
    std::string session;  // "" when the task touches no existing session
  };

  WorkerPool(int threads, int max_queued, ComputeShares* compute);
  ~WorkerPool();

  // RESOURCE_EXHAUSTED (and `task` is dropped) when `max_queued` tasks of the lane's tenant
  // are waiting already.
  absl::Status Schedule(const Lane& lane, absl::AnyInvocable<void() &&> task);

 private:
  struct Task {
    std::string session;
    absl::AnyInvocable<void() &&> run;
  };
  struct Tenant {
    std::deque<Task> waiting;
    int running = 0;
    uint64_t last_served = 0;
  };
  // What a worker runs next, taken out of its tenant's queue.
  struct Picked {
    std::string tenant;
    Task task;
  };

  void WorkerLoop();
  std::optional<Picked> Pick() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The first waiting task of `tenant` whose session runs nothing, or -1.
  int FirstRunnable(const std::string& name, const Tenant& tenant) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Finished(const std::string& tenant, const std::string& session)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static std::pair<std::string, std::string> SessionKey(const std::string& tenant,
                                                        const std::string& session) {
    return {tenant, session};
  }

  const int threads_count_;
  const int max_queued_;
  ComputeShares* const compute_;
  absl::Mutex mu_;
  absl::CondVar changed_;
  // Tenants with tasks waiting or running; dropped when they have neither.
  absl::flat_hash_map<std::string, Tenant> tenants_ ABSL_GUARDED_BY(mu_);
  // (tenant, session) of every task running: a tenant cannot hold back another's session.
  absl::flat_hash_set<std::pair<std::string, std::string>> busy_sessions_ ABSL_GUARDED_BY(mu_);
  int idle_ ABSL_GUARDED_BY(mu_) = 0;
  int waiting_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t served_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace kiln::server

#endif  // KILN_SERVER_SERVICE_WORKER_POOL_H_
