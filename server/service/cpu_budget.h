// CpuBudget: how many CPUs this process may really use, counted as container-aware runtimes
// count them: the CPUs of its affinity mask, lowered by a cgroup CPU quota - cgroup v2's
// cpu.max or v1's cpu.cfs_quota_us / cpu.cfs_period_us, of the process's cgroup and of every
// ancestor up to the mount, the smallest winning - rounded up to whole CPUs. kiln-server sizes
// its compute threads from it: OpenMP threads that outnumber the quota spin against each other
// and the throttled ones stall the rest at every barrier.
#ifndef KILN_SERVER_SERVICE_CPU_BUDGET_H_
#define KILN_SERVER_SERVICE_CPU_BUDGET_H_

#include <string>

namespace kiln::server {

struct CpuBudget {
  int affinity_cpus = 1;   // CPUs in the affinity mask
  double quota_cpus = 0;   // the cgroup quota in CPUs (quota / period); 0: none
  std::string quota_file;  // where the quota was read, for the log
  int cpus = 1;            // what to use: min(affinity_cpus, ceil(quota_cpus)), at least 1

  // "2 CPUs (affinity mask 16, cgroup quota 1.5 CPUs in /sys/fs/cgroup/cpu.max)".
  std::string Describe() const;
};

// The calling process's budget.
CpuBudget ReadCpuBudget();

// The budget for `affinity_cpus` and the cgroup files under `root` (which stands for "/":
// root/proc/self/cgroup, root/proc/self/mountinfo and the cgroup mounts it names under root).
// Files that are missing or unreadable count as no quota.
CpuBudget ReadCpuBudget(int affinity_cpus, const std::string& root);

}  // namespace kiln::server

#endif  // KILN_SERVER_SERVICE_CPU_BUDGET_H_
