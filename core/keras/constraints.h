// Keras constraints (keras/src/constraints, and Keras 2's RadialConstraint): identifier lookup,
// validation and the projections applied to a weight after each optimizer update. Norms are
// taken over `axis` (default 0) with epsilon 1e-7, as Keras computes them.
#ifndef KILN_CORE_KERAS_CONSTRAINTS_H_
#define KILN_CORE_KERAS_CONSTRAINTS_H_

#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/tensor/tensor.h"
#include "kiln/v1/layers.pb.h"

namespace kiln {

// Canonical class form of `spec` with Keras defaults filled in; nullopt when unset.
absl::StatusOr<std::optional<v1::Constraint>> ResolveConstraint(const v1::Constraint& spec,
                                                                absl::string_view path);

// Checks that the constraint's axes exist in a weight of `shape` and, for RadialConstraint,
// that the weight is a square rank-4 kernel of size >= 2.
absl::Status CheckConstraintShape(const v1::Constraint& resolved, const Shape& shape,
                                  absl::string_view path);

// Projects `w` (float32, Keras layout) in place.
void ApplyConstraint(const v1::Constraint& resolved, Tensor& w);

}  // namespace kiln

#endif  // KILN_CORE_KERAS_CONSTRAINTS_H_
