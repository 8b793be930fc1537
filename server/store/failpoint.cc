#include "server/store/failpoint.h"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "server/store/io_error.h"

namespace kiln::store {
namespace {

struct Armed {
  std::string action;  // "abort", "enospc", "eio"
  int64_t on_hit = 1;  // abort@N: the hit that fires; errors fire on every hit
  int64_t hits = 0;
};

class Failpoints {
 public:
  Failpoints() {
    const char* spec = std::getenv("KILN_FAILPOINTS");
    if (spec != nullptr) Arm(spec);
  }

  void Arm(absl::string_view spec) {
    absl::MutexLock lock(&mu_);
    points_.clear();
    for (absl::string_view item : absl::StrSplit(spec, ';', absl::SkipWhitespace())) {
      std::pair<std::string, std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
      Armed armed;
      std::pair<std::string, std::string> at = absl::StrSplit(kv.second, absl::MaxSplits('@', 1));
      armed.action = at.first;
      if (!at.second.empty() && !absl::SimpleAtoi(at.second, &armed.on_hit)) armed.on_hit = 1;
      points_[kv.first] = armed;
    }
    armed_ = !points_.empty();
  }

  bool armed() const { return armed_; }

  absl::Status Hit(absl::string_view name) {
    absl::MutexLock lock(&mu_);
    auto it = points_.find(name);
    if (it == points_.end()) return absl::OkStatus();
    Armed& point = it->second;
    ++point.hits;
    if (point.action == "abort") {
      if (point.hits != point.on_hit) return absl::OkStatus();
      std::fprintf(stderr, "kiln-server: failpoint %s: abort\n", it->first.c_str());
      std::fflush(stderr);
      std::abort();
    }
    const int error = point.action == "enospc" ? ENOSPC : EIO;
    return IoError(error, absl::StrCat("failpoint ", name));
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Armed> points_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> armed_{false};
};

Failpoints& Instance() {
  static Failpoints* const failpoints = new Failpoints();
  return *failpoints;
}

}  // namespace

absl::Status Failpoint(absl::string_view name) {
  Failpoints& f = Instance();
  if (!f.armed()) return absl::OkStatus();
  return f.Hit(name);
}

bool FailpointsArmed() { return Instance().armed(); }

void ArmFailpoints(absl::string_view spec) { Instance().Arm(spec); }

}  // namespace kiln::store
