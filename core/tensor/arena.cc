#include "core/tensor/arena.h"

#include <algorithm>

#include "core/tensor/tensor.h"

namespace kiln {

void* Arena::Allocate(size_t bytes) {
  const size_t rounded = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
  bytes_allocated_ += rounded;
  if (rounded > kBlockBytes / 4) {
    // Large buffers get a block of their own so small ones do not waste its tail.
    blocks_.push_back(AllocateAligned(rounded));
    return blocks_.back().get();
  }
  if (rounded > remaining_) {
    const size_t block = std::max(next_block_bytes_, rounded);
    next_block_bytes_ = std::min(2 * next_block_bytes_, kBlockBytes);
    blocks_.push_back(AllocateAligned(block));
    cursor_ = static_cast<char*>(blocks_.back().get());
    remaining_ = block;
  }
  void* p = cursor_;
  cursor_ += rounded;
  remaining_ -= rounded;
  return p;
}

}  // namespace kiln
