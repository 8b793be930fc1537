#include "core/io/tensor_proto.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/base/status.h"

namespace kiln {

absl::StatusOr<DType> FromProtoDType(v1::DataType dtype, absl::string_view path) {
  switch (dtype) {
    case v1::DATA_TYPE_UNSPECIFIED:
    case v1::FLOAT32:
      return DType::kFloat32;
    case v1::INT32:
      return DType::kInt32;
    case v1::INT64:
      return DType::kInt64;
    case v1::UINT8:
      return DType::kUInt8;
    default:
      return FieldError(absl::StrCat(path, ".dtype"),
                        absl::StrCat("unknown dtype ", static_cast<int>(dtype)));
  }
}

v1::DataType ToProtoDType(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return v1::FLOAT32;
    case DType::kInt32:
      return v1::INT32;
    case DType::kInt64:
      return v1::INT64;
    case DType::kUInt8:
      return v1::UINT8;
  }
  return v1::DATA_TYPE_UNSPECIFIED;
}

absl::StatusOr<Tensor> DecodeTensor(const v1::TensorProto& proto, absl::string_view path,
                                    int64_t max_elements) {
  KILN_ASSIGN_OR_RETURN(DType dtype, FromProtoDType(proto.dtype(), path));
  std::vector<int64_t> dims(proto.shape().begin(), proto.shape().end());
  if (dims.empty()) {
    return FieldError(absl::StrCat(path, ".shape"), "a tensor needs a shape (batch first)");
  }
  const std::optional<int64_t> n = CheckedProduct(dims);
  if (!n.has_value()) {
    return FieldError(
        absl::StrCat(path, ".shape"),
        absl::StrCat("every dimension must be positive and the tensor at most ", kMaxTensorElements,
                     " elements; received shape ", Shape(dims).ToString()));
  }
  // Sizes are checked before anything is allocated: a request may claim any shape.
  const auto over_limit = [&] {
    return WithFieldPrefix(
        absl::ResourceExhaustedError(
            absl::StrCat("the tensor has ", *n, " elements, over the limit of ", max_elements)),
        absl::StrCat(path, ".shape"));
  };
  if (proto.float_values_size() > 0) {
    if (dtype != DType::kFloat32 || !proto.data().empty()) {
      return FieldError(path, "float_values needs dtype FLOAT32 and no `data`");
    }
    if (proto.float_values_size() != *n) {
      return FieldError(absl::StrCat(path, ".float_values"),
                        absl::StrCat("shape ", Shape(dims).ToString(), " needs ", *n,
                                     " values, received ", proto.float_values_size()));
    }
    if (*n > max_elements) return over_limit();
    Tensor out(dtype, Shape(dims));
    std::memcpy(out.raw_data(), proto.float_values().data(), out.byte_size());
    return out;
  }
  const size_t bytes = static_cast<size_t>(*n) * SizeOf(dtype);
  if (proto.data().size() != bytes) {
    return FieldError(absl::StrCat(path, ".data"),
                      absl::StrCat("shape ", Shape(dims).ToString(), " of ", DTypeName(dtype),
                                   " needs ", bytes, " bytes, received ", proto.data().size()));
  }
  if (*n > max_elements) return over_limit();
  Tensor out(dtype, Shape(dims));
  std::memcpy(out.raw_data(), proto.data().data(), bytes);
  return out;
}

v1::TensorProto EncodeTensor(const Tensor& tensor, bool float_values) {
  v1::TensorProto p;
  if (!float_values || tensor.dtype() != DType::kFloat32) {
    // Whole, not by rows: a scalar has none, and an empty tensor's rows have no size.
    p.set_dtype(ToProtoDType(tensor.dtype()));
    for (int64_t d : tensor.shape().dims()) p.add_shape(d);
    p.set_data(static_cast<const char*>(tensor.raw_data()), tensor.byte_size());
    return p;
  }
  p.set_dtype(v1::FLOAT32);
  for (int64_t d : tensor.shape().dims()) p.add_shape(d);
  p.mutable_float_values()->Add(tensor.data<float>(), tensor.data<float>() + tensor.num_elements());
  return p;
}

v1::TensorProto EncodeRows(const Tensor& tensor, int64_t begin, int64_t end) {
  v1::TensorProto p;
  p.set_dtype(ToProtoDType(tensor.dtype()));
  p.add_shape(end - begin);
  for (int i = 1; i < tensor.rank(); ++i) p.add_shape(tensor.shape()[i]);
  const size_t row_bytes = tensor.byte_size() / size_t(tensor.shape()[0]);
  p.set_data(static_cast<const char*>(tensor.raw_data()) + begin * row_bytes,
             (end - begin) * row_bytes);
  return p;
}

v1::TensorSpec SpecOf(const Tensor& tensor) {
  v1::TensorSpec spec;
  spec.set_dtype(ToProtoDType(tensor.dtype()));
  for (int64_t d : tensor.shape().dims()) spec.add_shape(d);
  return spec;
}

absl::StatusOr<Dataset> MakeDataset(std::vector<Tensor> x, Tensor y, absl::string_view path) {
  Dataset data;
  for (Tensor& t : x) data.x.push_back(t.dtype() == DType::kFloat32 ? t : ToFloat32(t));
  if (!y.empty()) data.y = y.dtype() == DType::kFloat32 ? y : ToFloat32(y);
  absl::Status status = data.Validate();
  if (!status.ok()) return WithFieldPrefix(status, path);
  return data;
}

}  // namespace kiln
