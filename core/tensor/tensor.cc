#include "core/tensor/tensor.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/tensor/memory_account.h"

namespace kiln {

absl::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "float32";
    case DType::kInt32:
      return "int32";
    case DType::kInt64:
      return "int64";
    case DType::kUInt8:
      return "uint8";
  }
  return "unknown";
}

std::shared_ptr<void> AllocateAligned(size_t bytes) {
  constexpr size_t kHugePage = size_t{2} << 20;
  const size_t alignment = bytes >= kHugePage ? kHugePage : 64;
  const size_t rounded = (std::max<size_t>(bytes, 1) + alignment - 1) / alignment * alignment;
  std::shared_ptr<MemoryAccount> account = ScopedMemoryAccount::Current();
  if (account != nullptr) {
    if (absl::Status charged = account->Charge(static_cast<int64_t>(rounded)); !charged.ok()) {
      throw MemoryExhausted(std::string(charged.message()));
    }
  }
  void* p = std::aligned_alloc(alignment, rounded);
  if (p == nullptr) {
    if (account != nullptr) account->Release(static_cast<int64_t>(rounded));
    throw MemoryExhausted(
        absl::StrCat("the server is out of memory (allocating ", bytes, " bytes)"));
  }
  if (alignment == kHugePage) madvise(p, rounded, MADV_HUGEPAGE);
  std::memset(p, 0, rounded);
  return std::shared_ptr<void>(p, [account = std::move(account), rounded](void* q) {
    std::free(q);
    if (account != nullptr) account->Release(static_cast<int64_t>(rounded));
  });
}

Tensor::Tensor(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) {
  KILN_CHECK(shape_.is_fully_defined()) << "tensor shape " << shape_.ToString();
  buffer_ = AllocateAligned(byte_size());
}

Tensor Tensor::Clone() const {
  if (empty()) return Tensor();
  Tensor out(dtype_, shape_);
  std::memcpy(out.raw_data(), raw_data(), byte_size());
  return out;
}

Tensor Tensor::Reshaped(Shape shape) const {
  KILN_CHECK_EQ(shape.num_elements(), num_elements())
      << "cannot reshape " << shape_.ToString() << " to " << shape.ToString();
  Tensor out = *this;
  out.shape_ = std::move(shape);
  return out;
}

Tensor Tensor::FromVector(Shape shape, absl::Span<const float> values) {
  Tensor out(DType::kFloat32, std::move(shape));
  KILN_CHECK_EQ(static_cast<int64_t>(values.size()), out.num_elements());
  std::memcpy(out.raw_data(), values.data(), values.size() * sizeof(float));
  return out;
}

}  // namespace kiln
