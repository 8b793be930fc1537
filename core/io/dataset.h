// Dataset: samples held in memory, one row per sample along axis 0 - one float32 feature
// tensor per model input, and the targets (float32; class labels are stored as integral
// floats). This is what fit/evaluate/predict consume; the readers in this folder produce the
// tensors.
#ifndef KILN_CORE_IO_DATASET_H_
#define KILN_CORE_IO_DATASET_H_

#include <vector>

#include "absl/status/status.h"
#include "core/tensor/tensor.h"

namespace kiln {

struct Dataset {
  std::vector<Tensor> x;
  Tensor y;  // empty for prediction-only data

  int64_t size() const { return x.empty() ? 0 : x[0].shape()[0]; }
  // Every tensor float32 with the same number of rows (and at least one row).
  absl::Status Validate() const;
  // Rows [begin, end) of every tensor, as copies.
  Dataset Slice(int64_t begin, int64_t end) const;
};

// Converts any tensor to float32, multiplying by `scale` (e.g. 1/255 for image bytes).
Tensor ToFloat32(const Tensor& tensor, float scale = 1.0f);

// Copies rows `indices` of `source` (row-major, axis 0) into `dest` back to back.
void GatherRows(const Tensor& source, absl::Span<const int64_t> indices, float* dest);

}  // namespace kiln

#endif  // KILN_CORE_IO_DATASET_H_
