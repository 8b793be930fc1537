#include "server/service/memory_budget.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace kiln::server {
namespace {

std::optional<std::string> ReadLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  return line;
}

// A limit file's value in bytes; nullopt for "max", absent files and v1's "no limit" (a huge
// page-rounded number).
std::optional<int64_t> LimitIn(const std::string& path) {
  std::optional<std::string> text = ReadLine(path);
  int64_t bytes = 0;
  if (!text.has_value() || !absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &bytes) ||
      bytes <= 0 || bytes >= (int64_t{1} << 60)) {
    return std::nullopt;
  }
  return bytes;
}

}  // namespace

MemoryBudget ReadMemoryBudget() {
  MemoryBudget budget;
  budget.bytes = int64_t(sysconf(_SC_PHYS_PAGES)) * int64_t(sysconf(_SC_PAGE_SIZE));
  budget.source = "physical memory";
  std::ifstream cgroups("/proc/self/cgroup");
  std::string line;
  std::vector<std::string> candidates;
  while (std::getline(cgroups, line)) {
    // v2: "0::/path"; v1: "N:memory:/path" (or with other controllers, comma-separated).
    std::vector<std::string> parts = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (parts.size() != 3) continue;
    if (parts[0] == "0" && parts[1].empty()) {
      candidates.push_back(absl::StrCat("/sys/fs/cgroup", parts[2], "/memory.max"));
      candidates.push_back("/sys/fs/cgroup/memory.max");  // a container's namespaced root
    }
    for (absl::string_view controller : absl::StrSplit(parts[1], ',')) {
      if (controller == "memory") {
        candidates.push_back(
            absl::StrCat("/sys/fs/cgroup/memory", parts[2], "/memory.limit_in_bytes"));
        candidates.push_back("/sys/fs/cgroup/memory/memory.limit_in_bytes");
      }
    }
  }
  for (const std::string& path : candidates) {
    if (std::optional<int64_t> limit = LimitIn(path); limit && *limit < budget.bytes) {
      budget.bytes = *limit;
      budget.source = absl::StrCat("cgroup ", path);
    }
  }
  return budget;
}

int64_t DefaultServerBytes(const MemoryBudget& budget) { return budget.bytes / 4 * 3; }

}  // namespace kiln::server
