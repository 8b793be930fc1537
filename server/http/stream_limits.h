// StreamLimits: bounds the HTTP door's long-lived responses (Connect server streams, job event
// streams), each of which holds one of the listener's threads while it is open: so many per
// tenant, and so many in all, so that one tenant's open browser tabs never take the threads
// every other caller needs. Thread-safe.
#ifndef KILN_SERVER_HTTP_STREAM_LIMITS_H_
#define KILN_SERVER_HTTP_STREAM_LIMITS_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace kiln::server {

class StreamLimits {
 public:
  // Releases its stream when destroyed.
  class Lease {
   public:
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;

   private:
    friend class StreamLimits;
    Lease(StreamLimits* limits, std::string owner) : limits_(limits), owner_(std::move(owner)) {}
    StreamLimits* limits_;
    std::string owner_;
  };

  StreamLimits(int per_owner, int total) : per_owner_(per_owner), total_(total) {}

  // A stream for `owner` (a tenant; "" for anonymous callers); RESOURCE_EXHAUSTED naming the
  // limit reached.
  absl::StatusOr<std::unique_ptr<Lease>> Acquire(const std::string& owner) ABSL_LOCKS_EXCLUDED(mu_);
  int open() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Release(const std::string& owner) ABSL_LOCKS_EXCLUDED(mu_);

  const int per_owner_;
  const int total_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, int> open_by_owner_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace kiln::server

#endif  // KILN_SERVER_HTTP_STREAM_LIMITS_H_
