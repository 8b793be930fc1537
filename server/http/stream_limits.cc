#include "server/http/stream_limits.h"

#include "absl/strings/str_cat.h"

namespace kiln::server {

StreamLimits::Lease::~Lease() { limits_->Release(owner_); }

absl::StatusOr<std::unique_ptr<StreamLimits::Lease>> StreamLimits::Acquire(
    const std::string& owner) {
  absl::MutexLock lock(&mu_);
  if (open_ >= total_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the HTTP listener has ", open_,
                     " streams open, its most (--http_threads less those kept for other calls); "
                     "close one or retry later"));
  }
  int& mine = open_by_owner_[owner];
  if (mine >= per_owner_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "this caller has ", mine, " streams open, its most (--http_max_streams_per_tenant=",
        per_owner_, "); close one first"));
  }
  ++mine;
  ++open_;
  return std::unique_ptr<Lease>(new Lease(this, owner));
}

void StreamLimits::Release(const std::string& owner) {
  absl::MutexLock lock(&mu_);
  --open_;
  if (--open_by_owner_[owner] == 0) open_by_owner_.erase(owner);
}

int StreamLimits::open() const {
  absl::MutexLock lock(&mu_);
  return open_;
}

}  // namespace kiln::server
