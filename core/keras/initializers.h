// Keras initializers (keras/src/initializers): identifier lookup, validation with Keras's
// messages, fan computation and the sampling formulas. The resolved form of an initializer is
// the proto message with its class set (never a bare name), so it round-trips into configs.
//
// Random values come from a 64-bit Mersenne Twister seeded with the initializer's seed, or with
// the fallback seed the layer drew when the spec has none. As in Keras 3, the same seed gives the
// same values; the values themselves cannot match Keras's own generators bit for bit.
#ifndef KILN_CORE_KERAS_INITIALIZERS_H_
#define KILN_CORE_KERAS_INITIALIZERS_H_

#include <cstdint>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/tensor/tensor.h"
#include "kiln/v1/layers.pb.h"

namespace kiln {

// Canonical class form of `spec`; an unset spec means `default_name` ("glorot_uniform").
absl::StatusOr<v1::Initializer> ResolveInitializer(const v1::Initializer& spec,
                                                   absl::string_view default_name,
                                                   absl::string_view path);

// Keras compute_fans: (fan_in, fan_out) of a weight shape. For a depthwise kernel
// (kh, kw, C, M) that is (kh*kw*C, kh*kw*M).
std::pair<double, double> ComputeFans(const Shape& shape);

// Checks that `resolved` can initialise a weight of `shape` (Identity is 2-D only, Orthogonal
// needs rank >= 2), with Keras's message.
absl::Status CheckInitializerShape(const v1::Initializer& resolved, const Shape& shape,
                                   absl::string_view path);

// Fills `out` (a float32 weight in Keras layout) from `resolved`. CANCELLED (`out` then half
// filled) when the thread's call was cancelled during a long initialisation (cancellation.h).
absl::Status RunInitializer(const v1::Initializer& resolved, uint64_t fallback_seed, Tensor& out);

// Keras's class name of a resolved initializer ("GlorotUniform").
absl::string_view InitializerClassName(const v1::Initializer& resolved);

}  // namespace kiln

#endif  // KILN_CORE_KERAS_INITIALIZERS_H_
