// ScopedCancellation: whether the work on this thread is still wanted. The server installs one
// per request (server/service CallScope) that answers true once the client has cancelled or
// its deadline has passed; long computations in core (an Orthogonal initialisation of a large
// kernel) ask Requested() between steps and stop with Stopped(), and changes check it before
// they commit, so a call answered with an error leaves nothing behind. Outside any scope
// (jobs, restore, tests) nothing is ever cancelled.
#ifndef KILN_CORE_BASE_CANCELLATION_H_
#define KILN_CORE_BASE_CANCELLATION_H_

#include <functional>

#include "absl/status/status.h"

namespace kiln {

class ScopedCancellation {
 public:
  explicit ScopedCancellation(std::function<bool()> cancelled);
  ~ScopedCancellation();
  ScopedCancellation(const ScopedCancellation&) = delete;
  ScopedCancellation& operator=(const ScopedCancellation&) = delete;

  static bool Requested();
  // CANCELLED, for work that stopped because Requested() said so.
  static absl::Status Stopped();

 private:
  std::function<bool()> previous_;
};

}  // namespace kiln

#endif  // KILN_CORE_BASE_CANCELLATION_H_
