#include "server/service/cpu_budget.h"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace kiln::server {
namespace {

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A cgroup hierarchy as mountinfo lists it: the cgroup mounted (its root) and where.
struct Mount {
  std::string root;
  std::string point;
};

enum class Hierarchy { kV2, kV1Cpu };

// The process's cgroup in `hierarchy`, from /proc/self/cgroup ("0::/path" for v2,
// "4:cpu,cpuacct:/path" for v1).
std::optional<std::string> CgroupOf(const std::string& proc_cgroup, Hierarchy hierarchy) {
  for (absl::string_view line : absl::StrSplit(proc_cgroup, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> parts = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (parts.size() != 3) continue;
    if (hierarchy == Hierarchy::kV2) {
      if (parts[0] == "0" && parts[1].empty()) return std::string(parts[2]);
      continue;
    }
    for (absl::string_view controller : absl::StrSplit(parts[1], ',')) {
      if (controller == "cpu") return std::string(parts[2]);
    }
  }
  return std::nullopt;
}

// The mount of `hierarchy` in /proc/self/mountinfo: "id parent dev root point options
// [optional fields] - fstype source super-options".
std::optional<Mount> MountOf(const std::string& mountinfo, Hierarchy hierarchy) {
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    const auto dash = std::find(fields.begin(), fields.end(), "-");
    if (dash - fields.begin() < 5 || fields.end() - dash < 4) continue;
    const absl::string_view fstype = dash[1];
    bool match = hierarchy == Hierarchy::kV2 && fstype == "cgroup2";
    if (hierarchy == Hierarchy::kV1Cpu && fstype == "cgroup") {
      for (absl::string_view option : absl::StrSplit(dash[3], ',')) match |= option == "cpu";
    }
    if (match) return Mount{std::string(fields[3]), std::string(fields[4])};
  }
  return std::nullopt;
}

// The quota in CPUs that one cgroup directory sets, if any.
std::optional<double> V2Quota(const std::string& dir) {
  std::optional<std::string> text = ReadFile(dir + "/cpu.max");
  if (!text) return std::nullopt;
  std::vector<absl::string_view> parts =
      absl::StrSplit(absl::StripAsciiWhitespace(*text), ' ', absl::SkipEmpty());
  double quota = 0, period = 0;
  if (parts.size() != 2 || !absl::SimpleAtod(parts[0], &quota) ||
      !absl::SimpleAtod(parts[1], &period) || quota <= 0 || period <= 0) {
    return std::nullopt;  // "max 100000": no quota
  }
  return quota / period;
}

std::optional<double> V1Quota(const std::string& dir) {
  std::optional<std::string> quota_text = ReadFile(dir + "/cpu.cfs_quota_us");
  std::optional<std::string> period_text = ReadFile(dir + "/cpu.cfs_period_us");
  double quota = 0, period = 0;
  if (!quota_text || !period_text ||
      !absl::SimpleAtod(absl::StripAsciiWhitespace(*quota_text), &quota) ||
      !absl::SimpleAtod(absl::StripAsciiWhitespace(*period_text), &period) || quota <= 0 ||
      period <= 0) {
    return std::nullopt;  // -1: no quota
  }
  return quota / period;
}

// Lowers `budget`'s quota to the smallest one set on the process's cgroup in `hierarchy` or
// on an ancestor below the mount.
void ApplyHierarchy(const std::string& root, const std::string& proc_cgroup,
                    const std::string& mountinfo, Hierarchy hierarchy, CpuBudget& budget) {
  std::optional<std::string> cgroup = CgroupOf(proc_cgroup, hierarchy);
  std::optional<Mount> mount = MountOf(mountinfo, hierarchy);
  if (!cgroup || !mount) return;
  // Inside a cgroup namespace the mount's root is the process's own cgroup: what lies below
  // it is the path relative to the mount; a path outside the mount root means the mount is
  // the process's cgroup itself.
  std::string relative = *cgroup;
  if (mount->root != "/") {
    relative = absl::StartsWith(relative, mount->root) ? relative.substr(mount->root.size()) : "";
  }
  relative = std::string(absl::StripSuffix(relative, "/"));
  const std::filesystem::path top = root + mount->point;
  std::filesystem::path dir = top;
  dir += relative;
  std::error_code error;
  if (!std::filesystem::is_directory(dir, error)) dir = top;
  const auto quota_of = hierarchy == Hierarchy::kV2 ? V2Quota : V1Quota;
  for (std::filesystem::path at = dir.lexically_normal();; at = at.parent_path()) {
    if (std::optional<double> quota = quota_of(at.string());
        quota && (budget.quota_cpus == 0 || *quota < budget.quota_cpus)) {
      budget.quota_cpus = *quota;
      budget.quota_file = (at / (hierarchy == Hierarchy::kV2 ? "cpu.max" : "cpu.cfs_quota_us"))
                              .string()
                              .substr(root.size());
    }
    if (at == top.lexically_normal() || at == at.parent_path()) break;
  }
}

int AffinityCpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

}  // namespace

std::string CpuBudget::Describe() const {
  std::string text =
      absl::StrCat(cpus, cpus == 1 ? " CPU" : " CPUs", " (affinity mask ", affinity_cpus);
  if (quota_cpus > 0) {
    absl::StrAppend(&text,
                    absl::StrFormat(", cgroup quota %.2f CPUs in %s", quota_cpus, quota_file));
  } else {
    absl::StrAppend(&text, ", no cgroup quota");
  }
  return absl::StrCat(text, ")");
}

CpuBudget ReadCpuBudget(int affinity_cpus, const std::string& root) {
  CpuBudget budget;
  budget.affinity_cpus = std::max(1, affinity_cpus);
  const std::string proc_cgroup = ReadFile(root + "/proc/self/cgroup").value_or("");
  const std::string mountinfo = ReadFile(root + "/proc/self/mountinfo").value_or("");
  for (Hierarchy hierarchy : {Hierarchy::kV2, Hierarchy::kV1Cpu}) {
    ApplyHierarchy(root, proc_cgroup, mountinfo, hierarchy, budget);
  }
  budget.cpus = budget.affinity_cpus;
  if (budget.quota_cpus > 0) {
    // A quota of 1.5 CPUs still runs two threads at once, part of the time.
    const int quota = std::max(1, static_cast<int>(std::ceil(budget.quota_cpus - 1e-9)));
    budget.cpus = std::min(budget.cpus, quota);
  }
  return budget;
}

CpuBudget ReadCpuBudget() { return ReadCpuBudget(AffinityCpus(), ""); }

}  // namespace kiln::server
