#include "server/service/call_scope.h"

namespace kiln::server {

CallScope::CallScope(std::function<bool()> cancelled) : scope_(std::move(cancelled)) {}

bool CallScope::Cancelled() { return ScopedCancellation::Requested(); }

absl::Status CallScope::Stopped() { return ScopedCancellation::Stopped(); }

}  // namespace kiln::server
