// FailedAuthLimiter: bounds how fast one client address may guess tokens. Each address may
// fail `max_failures` times per `window`; past that its requests are refused without their
// token being looked at (RESOURCE_EXHAUSTED, saying when to try again) until the window
// ends. Addresses are the transport's (gRPC's peer, the HTTP door's remote address, without
// the port); the table forgets addresses whose window has passed and holds at most
// `max_addresses` (the oldest windows go first).
//
// Thread-safety: every method may be called from any thread.
#ifndef KILN_SERVER_SERVICE_FAILED_AUTH_LIMITER_H_
#define KILN_SERVER_SERVICE_FAILED_AUTH_LIMITER_H_

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace kiln::server {

class FailedAuthLimiter {
 public:
  struct Options {
    int max_failures = 20;
    absl::Duration window = absl::Minutes(1);
    int max_addresses = 65536;
  };
  FailedAuthLimiter() : FailedAuthLimiter(Options{}) {}
  explicit FailedAuthLimiter(Options options) : options_(options) {}

  // OK, or RESOURCE_EXHAUSTED when `address` has failed too often lately.
  absl::Status Admit(absl::string_view address, absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);
  void Failed(absl::string_view address, absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Window {
    absl::Time start;
    int failures = 0;
  };
  const Options options_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Window> windows_ ABSL_GUARDED_BY(mu_);
};

// "ipv4:10.0.0.7:5123" (gRPC's peer), "[::1]:80", "10.0.0.7" -> the address without the port.
std::string ClientAddress(absl::string_view peer);

}  // namespace kiln::server

#endif  // KILN_SERVER_SERVICE_FAILED_AUTH_LIMITER_H_
