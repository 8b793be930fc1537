#include "core/io/dataset.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace kiln {

absl::Status Dataset::Validate() const {
  if (x.empty()) return absl::InvalidArgumentError("the data set has no feature tensors");
  const int64_t n = x[0].rank() > 0 ? x[0].shape()[0] : 0;
  if (n <= 0) return absl::InvalidArgumentError("the data set has no samples");
  auto check = [&](const Tensor& t, const std::string& what) -> absl::Status {
    if (t.dtype() != DType::kFloat32) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " must be float32, got ", DTypeName(t.dtype())));
    }
    if (t.shape().rank() == 0 || t.shape()[0] != n) {
      return absl::InvalidArgumentError(absl::StrCat(what, " has shape ", t.shape().ToString(),
                                                     " but the data set has ", n, " samples"));
    }
    return absl::OkStatus();
  };
  for (size_t i = 0; i < x.size(); ++i) {
    absl::Status s = check(x[i], absl::StrCat("x[", i, "]"));
    if (!s.ok()) return s;
  }
  if (!y.empty()) return check(y, "y");
  return absl::OkStatus();
}

Dataset Dataset::Slice(int64_t begin, int64_t end) const {
  std::vector<int64_t> rows(end - begin);
  for (int64_t i = begin; i < end; ++i) rows[i - begin] = i;
  auto slice = [&](const Tensor& t) {
    if (t.empty()) return Tensor();
    Tensor out(DType::kFloat32, t.shape().WithBatch(end - begin));
    GatherRows(t, rows, out.data<float>());
    return out;
  };
  Dataset out;
  for (const Tensor& t : x) out.x.push_back(slice(t));
  out.y = slice(y);
  return out;
}

Tensor ToFloat32(const Tensor& tensor, float scale) {
  Tensor out(DType::kFloat32, tensor.shape());
  float* o = out.data<float>();
  const int64_t n = tensor.num_elements();
  switch (tensor.dtype()) {
    case DType::kFloat32:
      for (int64_t i = 0; i < n; ++i) o[i] = tensor.data<float>()[i] * scale;
      break;
    case DType::kInt32:
      for (int64_t i = 0; i < n; ++i) o[i] = float(tensor.data<int32_t>()[i]) * scale;
      break;
    case DType::kInt64:
      for (int64_t i = 0; i < n; ++i) o[i] = float(tensor.data<int64_t>()[i]) * scale;
      break;
    case DType::kUInt8:
      for (int64_t i = 0; i < n; ++i) o[i] = float(tensor.data<uint8_t>()[i]) * scale;
      break;
  }
  return out;
}

void GatherRows(const Tensor& source, absl::Span<const int64_t> indices, float* dest) {
  const int64_t row = source.num_elements() / source.shape()[0];
  const float* src = source.data<float>();
  for (size_t i = 0; i < indices.size(); ++i) {
    std::memcpy(dest + i * row, src + indices[i] * row, row * sizeof(float));
  }
}

}  // namespace kiln
