// Conversions between the API's TensorProto (dtype, shape, raw little-endian bytes or
// float_values) and core Tensors, with every size a client controls checked. The server decodes
// requests with them; the CLI turns .npy files into requests and responses into .npy files.
#ifndef KILN_CORE_IO_TENSOR_PROTO_H_
#define KILN_CORE_IO_TENSOR_PROTO_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/io/dataset.h"
#include "core/tensor/tensor.h"
#include "kiln/v1/data.pb.h"

namespace kiln {

// Errors are INVALID_ARGUMENT at `path` ("inputs[0]: ..."); RESOURCE_EXHAUSTED at
// `path`.shape for a well-formed tensor of more than `max_elements` elements, before anything
// is allocated.
absl::StatusOr<Tensor> DecodeTensor(const v1::TensorProto& proto, absl::string_view path,
                                    int64_t max_elements = kMaxTensorElements);

// Raw bytes when `float_values` is false (the default, compact); float_values for JSON clients.
v1::TensorProto EncodeTensor(const Tensor& tensor, bool float_values = false);
// Rows [begin, end) of `tensor` (axis 0).
v1::TensorProto EncodeRows(const Tensor& tensor, int64_t begin, int64_t end);

v1::DataType ToProtoDType(DType dtype);
// INVALID_ARGUMENT at "<path>.dtype" for values outside the enum.
absl::StatusOr<DType> FromProtoDType(v1::DataType dtype, absl::string_view path);
v1::TensorSpec SpecOf(const Tensor& tensor);

// Builds a Dataset from decoded x/y tensors: x converted to float32; y to float32.
absl::StatusOr<Dataset> MakeDataset(std::vector<Tensor> x, Tensor y, absl::string_view path);

}  // namespace kiln

#endif  // KILN_CORE_IO_TENSOR_PROTO_H_
