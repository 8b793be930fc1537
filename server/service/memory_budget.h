// MemoryBudget: how much memory this process may use, counted as container runtimes count it:
// the cgroup's memory limit (v2 memory.max of the process's cgroup, else v1's
// memory.limit_in_bytes) where one is set, else the machine's physical memory. kiln-server
// bounds what all sessions together hold (--max_server_bytes) by three quarters of it by
// default, above the per-tenant and per-session bounds, so that a few tenants within their own
// limits cannot together take more than the machine has.
#ifndef KILN_SERVER_SERVICE_MEMORY_BUDGET_H_
#define KILN_SERVER_SERVICE_MEMORY_BUDGET_H_

#include <cstdint>
#include <string>

namespace kiln::server {

struct MemoryBudget {
  int64_t bytes = 0;   // what the process may use
  std::string source;  // "cgroup /sys/fs/cgroup/memory.max" or "physical memory"
};

MemoryBudget ReadMemoryBudget();

// What --max_server_bytes = 0 means: three quarters of the budget.
int64_t DefaultServerBytes(const MemoryBudget& budget);

}  // namespace kiln::server

#endif  // KILN_SERVER_SERVICE_MEMORY_BUDGET_H_
