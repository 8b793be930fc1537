// MemoryAccount: bytes held on behalf of someone - a session, a tenant - against a limit, with
// an optional parent account that every charge also goes to (a session's bytes count for its
// tenant too). A charge that would take any account in the chain past its limit is refused
// before anything is allocated, and charges nothing.
//
// ScopedMemoryAccount makes an account the current one of a thread: every tensor buffer
// allocated on that thread meanwhile (AllocateAligned: weights, gradients, optimizer slots,
// plans' arenas, decoded datasets and inputs) is charged to it and released when the buffer is
// freed, whichever thread frees it. Such an allocation that is refused, or for which the
// system has no memory, throws MemoryExhausted (a std::bad_alloc): the edges that run work for
// a session catch it and answer RESOURCE_EXHAUSTED.
//
// Thread-safety: an account may be charged and released from any thread.
#ifndef KILN_CORE_TENSOR_MEMORY_ACCOUNT_H_
#define KILN_CORE_TENSOR_MEMORY_ACCOUNT_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <new>
#include <string>

#include "absl/status/status.h"

namespace kiln {

class MemoryAccount {
 public:
  // `holder` names who holds the bytes in messages ("the session", "tenant \"alice\""),
  // `limit_flag` the setting that bounds it ("--max_session_bytes").
  MemoryAccount(std::string holder, std::string limit_flag, int64_t limit,
                std::shared_ptr<MemoryAccount> parent = nullptr);
  MemoryAccount(const MemoryAccount&) = delete;
  MemoryAccount& operator=(const MemoryAccount&) = delete;

  // RESOURCE_EXHAUSTED naming the account over its limit, the limit and its flag.
  absl::Status Charge(int64_t bytes);
  void Release(int64_t bytes);
  int64_t used() const { return used_.load(std::memory_order_relaxed); }
  int64_t limit() const { return limit_; }

  // What may still be charged before an account in the chain refuses, and which one that is:
  // sizes estimated from shapes are checked against it before anything is allocated.
  struct Headroom {
    int64_t bytes;
    std::string holder, limit_flag;
  };
  Headroom Available() const;

 private:
  const std::string holder_, limit_flag_;
  const int64_t limit_;
  const std::shared_ptr<MemoryAccount> parent_;
  std::atomic<int64_t> used_{0};
};

// Thrown by tensor allocation; what() is a message for the client.
class MemoryExhausted : public std::bad_alloc {
 public:
  explicit MemoryExhausted(std::string message) : message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

class ScopedMemoryAccount {
 public:
  // `account` may be null: allocations in the scope are charged to no one (shared caches).
  explicit ScopedMemoryAccount(std::shared_ptr<MemoryAccount> account);
  ~ScopedMemoryAccount();
  ScopedMemoryAccount(const ScopedMemoryAccount&) = delete;
  ScopedMemoryAccount& operator=(const ScopedMemoryAccount&) = delete;

  // The calling thread's current account (null outside any scope).
  static const std::shared_ptr<MemoryAccount>& Current();

 private:
  std::shared_ptr<MemoryAccount> previous_;
};

}  // namespace kiln

#endif  // KILN_CORE_TENSOR_MEMORY_ACCOUNT_H_
