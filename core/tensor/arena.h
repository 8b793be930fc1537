// Arena: owns the buffers of one execution plan. Every activation, gradient, workspace and
// reordered weight of a plan is carved out of a few large blocks when the plan is built, zeroed
// (so their pages are touched once, then) and freed together with the plan. This is what keeps
// large allocations and page faults out of training steps.
#ifndef KILN_CORE_TENSOR_ARENA_H_
#define KILN_CORE_TENSOR_ARENA_H_

#include <cstddef>
#include <memory>
#include <vector>

namespace kiln {

class Arena {
 public:
  Arena() = default;
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // A zero-filled, 64-byte aligned buffer that lives as long as the arena.
  void* Allocate(size_t bytes);

  size_t bytes_allocated() const { return bytes_allocated_; }

 private:
  // Blocks start small and double up to kBlockBytes, so that a small model's plan holds about
  // what it uses (a session may cache many).
  static constexpr size_t kFirstBlockBytes = size_t{64} << 10;
  static constexpr size_t kBlockBytes = size_t{8} << 20;
  size_t next_block_bytes_ = kFirstBlockBytes;
  std::vector<std::shared_ptr<void>> blocks_;
  char* cursor_ = nullptr;
  size_t remaining_ = 0;
  size_t bytes_allocated_ = 0;
};

}  // namespace kiln

#endif  // KILN_CORE_TENSOR_ARENA_H_
