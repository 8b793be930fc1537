// Keras losses with the default "sum_over_batch_size" reduction: the mean over all samples (and
// over any axes between batch and classes) of the per-sample loss. Probabilities are normalised
// and clipped to [1e-7, 1 - 1e-7] as keras.ops does; from_logits uses the stable log-softmax /
// sigmoid forms.
#ifndef KILN_CORE_TRAIN_LOSS_H_
#define KILN_CORE_TRAIN_LOSS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/keras/keras_class.h"
#include "core/tensor/shape.h"
#include "kiln/v1/training.pb.h"

namespace kiln {

enum class LossKind {
  kSparseCategoricalCrossentropy,
  kCategoricalCrossentropy,
  kBinaryCrossentropy,
  kMeanSquaredError,
};

struct LossFunction {
  LossKind kind;
  bool from_logits = false;
  std::string name;  // canonical snake_case name

  // Checks that targets of `target` shape fit predictions of `prediction` shape (batch
  // dimensions included or not, consistently). Sparse targets are (N,) or (N, 1) labels.
  absl::Status CheckTargetShape(const Shape& prediction, const Shape& target) const;
  // Number of target values per sample.
  int64_t TargetRowSize(const Shape& prediction) const;

  // Mean loss over `rows` samples; when `grad` is non-null it receives dLoss/dPrediction.
  double Compute(const float* prediction, const float* target, const Shape& prediction_shape,
                 float* grad) const;
};

absl::StatusOr<LossFunction> ResolveLoss(const v1::Loss& spec, absl::string_view path);

// Every loss ResolveLoss accepts, under its Keras name, with its class name among the aliases.
const std::vector<KerasName>& LossNames();

}  // namespace kiln

#endif  // KILN_CORE_TRAIN_LOSS_H_
