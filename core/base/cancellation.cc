#include "core/base/cancellation.h"

namespace kiln {
namespace {

thread_local std::function<bool()> current;

}  // namespace

ScopedCancellation::ScopedCancellation(std::function<bool()> cancelled)
    : previous_(std::move(current)) {
  current = std::move(cancelled);
}

ScopedCancellation::~ScopedCancellation() { current = std::move(previous_); }

bool ScopedCancellation::Requested() { return current && current(); }

absl::Status ScopedCancellation::Stopped() {
  return absl::CancelledError("stopped: the client cancelled the call or its deadline passed");
}

}  // namespace kiln
