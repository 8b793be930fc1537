#include "server/service/call_scope.h"

namespace kiln::server {
namespace {

thread_local std::function<bool()> current_call;

}  // namespace

CallScope::CallScope(std::function<bool()> cancelled) : previous_(std::move(current_call)) {
  current_call = std::move(cancelled);
}

CallScope::~CallScope() { current_call = std::move(previous_); }

bool CallScope::Cancelled() { return current_call && current_call(); }

absl::Status CallScope::Stopped() {
  return absl::CancelledError("stopped: the client cancelled the call or its deadline passed");
}

}  // namespace kiln::server
