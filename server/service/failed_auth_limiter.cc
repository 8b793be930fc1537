#include "server/service/failed_auth_limiter.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace kiln::server {

absl::Status FailedAuthLimiter::Admit(absl::string_view address, absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto it = windows_.find(address);
  if (it == windows_.end()) return absl::OkStatus();
  if (now - it->second.start >= options_.window) {
    windows_.erase(it);
    return absl::OkStatus();
  }
  if (it->second.failures < options_.max_failures) return absl::OkStatus();
  const absl::Duration wait = it->second.start + options_.window - now;
  return absl::ResourceExhaustedError(
      absl::StrCat("too many requests with a wrong token from this address (",
                   options_.max_failures, " in ", absl::FormatDuration(options_.window),
                   "); try again in ", absl::FormatDuration(absl::Ceil(wait, absl::Seconds(1)))));
}

void FailedAuthLimiter::Failed(absl::string_view address, absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (int(windows_.size()) >= options_.max_addresses && !windows_.contains(address)) {
    // Full: half the table is forgotten. An attacker spread over more addresses than the
    // table holds gains no more guesses than the addresses would give it anyway.
    for (auto it = windows_.begin(); it != windows_.end();) {
      windows_.erase(it++);
      if (int(windows_.size()) < options_.max_addresses / 2) break;
    }
  }
  Window& window = windows_[address];
  if (window.failures == 0 || now - window.start >= options_.window) {
    window = Window{now, 0};
  }
  ++window.failures;
}

std::string ClientAddress(absl::string_view peer) {
  absl::ConsumePrefix(&peer, "ipv4:");
  absl::ConsumePrefix(&peer, "ipv6:");
  if (absl::ConsumePrefix(&peer, "[")) return std::string(peer.substr(0, peer.find(']')));
  // An IPv4 address with a port has one colon; a bare IPv6 address has several.
  const size_t colon = peer.rfind(':');
  if (colon != absl::string_view::npos && peer.find(':') == colon) {
    return std::string(peer.substr(0, colon));
  }
  return std::string(peer);
}

}  // namespace kiln::server
