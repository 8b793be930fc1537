// DType: the element types a Tensor can hold. Kiln computes in float32; the integer types carry
// labels and raw data set bytes until they are converted.
#ifndef KILN_CORE_TENSOR_DTYPE_H_
#define KILN_CORE_TENSOR_DTYPE_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace kiln {

enum class DType : uint8_t { kFloat32, kInt32, kInt64, kUInt8 };

constexpr size_t SizeOf(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
    case DType::kInt32:
      return 4;
    case DType::kInt64:
      return 8;
    case DType::kUInt8:
      return 1;
  }
  return 0;
}

// Numpy-style name: "float32", "int32", "int64", "uint8".
absl::string_view DTypeName(DType dtype);

template <typename T>
constexpr DType DTypeOf();
template <>
constexpr DType DTypeOf<float>() {
  return DType::kFloat32;
}
template <>
constexpr DType DTypeOf<int32_t>() {
  return DType::kInt32;
}
template <>
constexpr DType DTypeOf<int64_t>() {
  return DType::kInt64;
}
template <>
constexpr DType DTypeOf<uint8_t>() {
  return DType::kUInt8;
}

}  // namespace kiln

#endif  // KILN_CORE_TENSOR_DTYPE_H_
