// Tensor: an owning, 64-byte aligned, densely packed row-major array with a DType and a Shape.
// Copies are cheap handles that share the buffer (so a weight can be referenced from several
// places); Clone() makes an independent deep copy. New tensors are zero-filled.
//
// Tensors are the edge representation: data sets, weights in Keras layout, predictions. Inside
// an execution plan activations live in oneDNN memory in whatever layout the primitives chose.
#ifndef KILN_CORE_TENSOR_TENSOR_H_
#define KILN_CORE_TENSOR_TENSOR_H_

#include <cstddef>
#include <memory>

#include "absl/types/span.h"
#include "core/base/check.h"
#include "core/tensor/dtype.h"
#include "core/tensor/shape.h"

namespace kiln {

class Tensor {
 public:
  Tensor() = default;
  // A zero-filled tensor. `shape` must be fully defined.
  Tensor(DType dtype, Shape shape);

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return shape_.rank(); }
  int64_t num_elements() const { return shape_.num_elements(); }
  size_t byte_size() const { return num_elements() * SizeOf(dtype_); }
  bool empty() const { return buffer_ == nullptr; }

  void* raw_data() { return buffer_.get(); }
  const void* raw_data() const { return buffer_.get(); }

  template <typename T>
  T* data() {
    KILN_DCHECK(DTypeOf<T>() == dtype_);
    return static_cast<T*>(buffer_.get());
  }
  template <typename T>
  const T* data() const {
    KILN_DCHECK(DTypeOf<T>() == dtype_);
    return static_cast<const T*>(buffer_.get());
  }
  template <typename T>
  absl::Span<T> values() {
    return absl::Span<T>(data<T>(), num_elements());
  }
  template <typename T>
  absl::Span<const T> values() const {
    return absl::Span<const T>(data<T>(), num_elements());
  }

  Tensor Clone() const;
  // A handle on the same buffer with another shape of the same element count.
  Tensor Reshaped(Shape shape) const;

  // Helpers mostly for tests and data preparation.
  static Tensor FromVector(Shape shape, absl::Span<const float> values);

 private:
  DType dtype_ = DType::kFloat32;
  Shape shape_;
  std::shared_ptr<void> buffer_;
};

// Allocates `bytes` zero-filled bytes aligned to 64, advising huge pages for large buffers
// (first touch of 4 KiB pages is expensive on these machines). Charged to the thread's
// MemoryAccount, if any; throws MemoryExhausted when that refuses or memory runs out.
std::shared_ptr<void> AllocateAligned(size_t bytes);

}  // namespace kiln

#endif  // KILN_CORE_TENSOR_TENSOR_H_
