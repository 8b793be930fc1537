#include "core/tensor/memory_account.h"

#include "absl/strings/str_cat.h"

namespace kiln {
namespace {

thread_local std::shared_ptr<MemoryAccount> current_account;

}  // namespace

MemoryAccount::MemoryAccount(std::string holder, std::string limit_flag, int64_t limit,
                             std::shared_ptr<MemoryAccount> parent)
    : holder_(std::move(holder)),
      limit_flag_(std::move(limit_flag)),
      limit_(limit),
      parent_(std::move(parent)) {}

absl::Status MemoryAccount::Charge(int64_t bytes) {
  const int64_t before = used_.fetch_add(bytes, std::memory_order_relaxed);
  if (before + bytes > limit_) {
    used_.fetch_sub(bytes, std::memory_order_relaxed);
    return absl::ResourceExhaustedError(
        absl::StrCat(holder_, " would hold ", before + bytes, " bytes, over its limit of ", limit_,
                     " (", limit_flag_, "); it holds ", before,
                     " (weights, gradients, optimizer state, plans, datasets and uploads)"));
  }
  if (parent_ != nullptr) {
    if (absl::Status status = parent_->Charge(bytes); !status.ok()) {
      used_.fetch_sub(bytes, std::memory_order_relaxed);
      return status;
    }
  }
  return absl::OkStatus();
}

MemoryAccount::Headroom MemoryAccount::Available() const {
  Headroom room{limit_ - used(), holder_, limit_flag_};
  if (parent_ != nullptr) {
    Headroom above = parent_->Available();
    if (above.bytes < room.bytes) room = std::move(above);
  }
  if (room.bytes < 0) room.bytes = 0;
  return room;
}

void MemoryAccount::Release(int64_t bytes) {
  used_.fetch_sub(bytes, std::memory_order_relaxed);
  if (parent_ != nullptr) parent_->Release(bytes);
}

ScopedMemoryAccount::ScopedMemoryAccount(std::shared_ptr<MemoryAccount> account)
    : previous_(std::move(current_account)) {
  current_account = std::move(account);
}

ScopedMemoryAccount::~ScopedMemoryAccount() { current_account = std::move(previous_); }

const std::shared_ptr<MemoryAccount>& ScopedMemoryAccount::Current() { return current_account; }

}  // namespace kiln
