// CallScope: the request that work on this thread is done for, as the service sees it below
// the transport - whether its client still waits for the answer. The transport installs one
// per RPC on the thread that runs the RPC's work; long work (Predict's batches, waiting for a
// session's compute gate, a weight initialisation in core) asks Cancelled() and stops, freeing
// its thread and compute share, once the client has cancelled or its deadline has passed; a
// change asks it again before it commits. It is core's ScopedCancellation, seen from here.
#ifndef KILN_SERVER_SERVICE_CALL_SCOPE_H_
#define KILN_SERVER_SERVICE_CALL_SCOPE_H_

#include <functional>

#include "absl/status/status.h"
#include "core/base/cancellation.h"

namespace kiln::server {

class CallScope {
 public:
  explicit CallScope(std::function<bool()> cancelled);
  CallScope(const CallScope&) = delete;
  CallScope& operator=(const CallScope&) = delete;

  // Whether the current call's client gave up; false outside any scope (jobs, restore).
  static bool Cancelled();
  // CANCELLED, for work that stopped because Cancelled() said so.
  static absl::Status Stopped();

 private:
  ScopedCancellation scope_;
};

}  // namespace kiln::server

#endif  // KILN_SERVER_SERVICE_CALL_SCOPE_H_
