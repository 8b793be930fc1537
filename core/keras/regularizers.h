// Keras regularizers (keras/src/regularizers): identifier lookup, validation, penalties and their
// gradients. A weight regularizer's penalty is added to the loss unscaled; an activity
// regularizer's penalty is divided by the batch size (Keras 2 and Keras >= 3.14) - callers pass
// that factor as `scale`.
#ifndef KILN_CORE_KERAS_REGULARIZERS_H_
#define KILN_CORE_KERAS_REGULARIZERS_H_

#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/tensor/shape.h"
#include "kiln/v1/layers.pb.h"

namespace kiln {

// Canonical class form of `spec` with Keras defaults filled in; nullopt when unset.
absl::StatusOr<std::optional<v1::Regularizer>> ResolveRegularizer(const v1::Regularizer& spec,
                                                                  absl::string_view path);

// OrthogonalRegularizer needs a rank-2 weight ("Inputs to OrthogonalRegularizer must have
// rank 2").
absl::Status CheckRegularizerShape(const v1::Regularizer& resolved, const Shape& shape,
                                   absl::string_view path);

// scale * penalty(w). `shape` gives w's dims (OrthogonalRegularizer uses rows/columns).
double RegularizerPenalty(const v1::Regularizer& resolved, absl::Span<const float> w,
                          const Shape& shape, double scale = 1.0);

// grad += scale * d penalty / dw.
void AddRegularizerGradient(const v1::Regularizer& resolved, absl::Span<const float> w,
                            const Shape& shape, double scale, absl::Span<float> grad);

// True when the penalty is a sum of per-element terms (L1, L2, L1L2): such a regularizer can
// run over a buffer in any memory layout, padding included, because its terms vanish at 0.
bool IsElementwiseRegularizer(const v1::Regularizer& resolved);

}  // namespace kiln

#endif  // KILN_CORE_KERAS_REGULARIZERS_H_
