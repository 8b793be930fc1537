// Shape: a tensor's dimensions, outermost first, in Keras order (channels_last images are
// (batch, height, width, channels)). A dimension of kUnknownDim is not known yet; in Kiln only
// the batch dimension of a symbolic tensor is ever unknown.
#ifndef KILN_CORE_TENSOR_SHAPE_H_
#define KILN_CORE_TENSOR_SHAPE_H_

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

namespace kiln {

inline constexpr int64_t kUnknownDim = -1;

// The most elements Kiln allows in one tensor (8 GiB of float32). Larger sizes are mistakes in
// a spec, and keeping below this bound keeps every byte count far from 64-bit overflow.
inline constexpr int64_t kMaxTensorElements = int64_t{1} << 31;

// The product of `dims` when every dimension is positive and the product is at most `limit`;
// nullopt otherwise. Never overflows.
std::optional<int64_t> CheckedProduct(const std::vector<int64_t>& dims,
                                      int64_t limit = kMaxTensorElements);

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) : dims_(dims) {}
  explicit Shape(std::vector<int64_t> dims) : dims_(std::move(dims)) {}

  int rank() const { return static_cast<int>(dims_.size()); }
  int64_t operator[](int axis) const { return dims_[axis]; }
  int64_t& operator[](int axis) { return dims_[axis]; }
  const std::vector<int64_t>& dims() const { return dims_; }

  // Product of all dimensions; 1 for rank 0. Requires a fully defined shape.
  int64_t num_elements() const;
  bool is_fully_defined() const;

  // The same shape with dimension 0 replaced by `batch`.
  Shape WithBatch(int64_t batch) const;
  // The dimensions after the batch dimension.
  Shape WithoutBatch() const;

  // Python-tuple form as Keras prints shapes: "(None, 32, 32, 3)", "(10,)", "()".
  std::string ToString() const;

  friend bool operator==(const Shape& a, const Shape& b) { return a.dims_ == b.dims_; }
  friend bool operator!=(const Shape& a, const Shape& b) { return !(a == b); }

 private:
  std::vector<int64_t> dims_;
};

// Keras's normalisation of a possibly negative axis: returns axis + rank for negative values.
// The caller checks the range.
inline int NormalizeAxis(int axis, int rank) { return axis < 0 ? axis + rank : axis; }

}  // namespace kiln

#endif  // KILN_CORE_TENSOR_SHAPE_H_
