// Keras activations: name lookup and the exact formulas (keras/src/activations). Pure math; the
// kernels that run them over oneDNN memory are in core/layers/activation_kernel.h.
//
// Version choices (documented in README): hard_sigmoid is Keras 3's relu6(x + 3) / 6, gelu is the
// exact erf form, and relu covers the generalised Keras `relu(x, negative_slope, max_value,
// threshold)` that leaky_relu, relu6 and the ReLU layer are made of.
#ifndef KILN_CORE_KERAS_ACTIVATIONS_H_
#define KILN_CORE_KERAS_ACTIVATIONS_H_

#include <limits>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/keras/keras_class.h"

namespace kiln {

enum class ActivationKind {
  kLinear,
  kRelu,  // generalised: see Activation's fields
  kElu,
  kSelu,
  kGelu,
  kSigmoid,
  kHardSigmoid,
  kTanh,
  kSoftmax,
  kLogSoftmax,
  kSoftplus,
  kSoftsign,
  kSilu,
  kHardSilu,
  kMish,
  kExponential,
};

struct Activation {
  ActivationKind kind = ActivationKind::kLinear;
  std::string name = "linear";  // the Keras name it was given by, for configs and summaries
  // kRelu parameters, Keras relu(x, negative_slope, max_value, threshold).
  float negative_slope = 0.0f;
  float max_value = std::numeric_limits<float>::infinity();
  float threshold = 0.0f;
  // kSoftmax / kLogSoftmax axis (negative counts from the end).
  int axis = -1;

  bool is_linear() const { return kind == ActivationKind::kLinear; }
  // Softmax and log_softmax normalise along an axis; every other activation is pointwise.
  bool is_pointwise() const {
    return kind != ActivationKind::kSoftmax && kind != ActivationKind::kLogSoftmax;
  }
};

// Every activation name ParseActivation accepts (aliases such as "swish" under their Keras
// name), for the catalogue.
const std::vector<KerasName>& ActivationNames();

// Resolves a Keras activation identifier ("relu", "swish", ...); empty means linear.
// Error: "Could not interpret activation function identifier: <name>".
absl::StatusOr<Activation> ParseActivation(absl::string_view name, absl::string_view path);

// The ReLU layer's activation, Keras relu(x, negative_slope, max_value, threshold).
Activation GeneralizedRelu(float negative_slope, float max_value, float threshold);

// Pointwise value f(x) and derivative f'(x), in double for use as a reference as well.
double ActivationValue(const Activation& activation, double x);
double ActivationDerivative(const Activation& activation, double x);

}  // namespace kiln

#endif  // KILN_CORE_KERAS_ACTIVATIONS_H_
