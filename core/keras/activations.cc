#include "core/keras/activations.h"

#include <cmath>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "core/base/status.h"

namespace kiln {
namespace {

constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluScale = 1.0507009873554804934193349852946;

double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double Softplus(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }

// Keras 3's activations (keras/src/activations), one entry per function; aliases name the same
// function.
struct ActivationEntry {
  ActivationKind kind;
  KerasName name;
};

const std::vector<ActivationEntry>& ActivationTable() {
  static const auto* table = new std::vector<ActivationEntry>{
      {ActivationKind::kLinear, {"linear", {}, "x (no activation)."}},
      {ActivationKind::kRelu, {"relu", {}, "max(x, 0)."}},
      {ActivationKind::kRelu, {"relu6", {}, "min(max(x, 0), 6)."}},
      {ActivationKind::kRelu, {"leaky_relu", {}, "x, or 0.2 * x below 0."}},
      {ActivationKind::kElu, {"elu", {}, "x, or exp(x) - 1 below 0."}},
      {ActivationKind::kSelu, {"selu", {}, "Scaled ELU (self-normalising)."}},
      {ActivationKind::kGelu, {"gelu", {}, "x * Phi(x), the exact erf form."}},
      {ActivationKind::kSigmoid, {"sigmoid", {}, "1 / (1 + exp(-x))."}},
      {ActivationKind::kHardSigmoid, {"hard_sigmoid", {}, "clip(x / 6 + 0.5, 0, 1) (Keras 3)."}},
      {ActivationKind::kTanh, {"tanh", {}, "Hyperbolic tangent."}},
      {ActivationKind::kSoftmax, {"softmax", {}, "exp(x) / sum(exp(x)) over the last axis."}},
      {ActivationKind::kLogSoftmax, {"log_softmax", {}, "log(softmax(x)) over the last axis."}},
      {ActivationKind::kSoftplus, {"softplus", {}, "log(exp(x) + 1)."}},
      {ActivationKind::kSoftsign, {"softsign", {}, "x / (|x| + 1)."}},
      {ActivationKind::kSilu, {"silu", {"swish"}, "x * sigmoid(x)."}},
      {ActivationKind::kHardSilu, {"hard_silu", {"hard_swish"}, "x * hard_sigmoid(x)."}},
      {ActivationKind::kMish, {"mish", {}, "x * tanh(softplus(x))."}},
      {ActivationKind::kExponential, {"exponential", {}, "exp(x)."}},
  };
  return *table;
}

}  // namespace

const std::vector<KerasName>& ActivationNames() {
  static const auto* names = [] {
    auto* out = new std::vector<KerasName>;
    for (const ActivationEntry& entry : ActivationTable()) out->push_back(entry.name);
    return out;
  }();
  return *names;
}

absl::StatusOr<Activation> ParseActivation(absl::string_view name, absl::string_view path) {
  static const auto* kinds = [] {
    auto* out = new absl::flat_hash_map<std::string, ActivationKind>;
    for (const ActivationEntry& entry : ActivationTable()) {
      (*out)[entry.name.name] = entry.kind;
      for (const std::string& alias : entry.name.aliases) (*out)[alias] = entry.kind;
    }
    return out;
  }();
  if (name.empty()) return Activation();
  auto it = kinds->find(name);
  if (it == kinds->end()) {
    return FieldError(path,
                      absl::StrCat("Could not interpret activation function identifier: ", name));
  }
  Activation activation;
  activation.kind = it->second;
  activation.name = std::string(name);
  if (name == "relu6") activation.max_value = 6.0f;
  if (name == "leaky_relu") activation.negative_slope = 0.2f;
  return activation;
}

Activation GeneralizedRelu(float negative_slope, float max_value, float threshold) {
  Activation activation;
  activation.kind = ActivationKind::kRelu;
  activation.name = "relu";
  activation.negative_slope = negative_slope;
  activation.max_value = max_value;
  activation.threshold = threshold;
  return activation;
}

double ActivationValue(const Activation& a, double x) {
  switch (a.kind) {
    case ActivationKind::kLinear:
      return x;
    case ActivationKind::kRelu: {
      // keras.activations.relu: x above the threshold (clipped at max_value), else
      // negative_slope * (x - threshold).
      if (x > a.threshold) return std::min<double>(x, a.max_value);
      return a.negative_slope * (x - a.threshold);
    }
    case ActivationKind::kElu:
      return x > 0 ? x : std::expm1(x);
    case ActivationKind::kSelu:
      return kSeluScale * (x > 0 ? x : kSeluAlpha * std::expm1(x));
    case ActivationKind::kGelu:
      return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    case ActivationKind::kSigmoid:
      return Sigmoid(x);
    case ActivationKind::kHardSigmoid:
      return std::clamp(x / 6.0 + 0.5, 0.0, 1.0);
    case ActivationKind::kTanh:
      return std::tanh(x);
    case ActivationKind::kSoftplus:
      return Softplus(x);
    case ActivationKind::kSoftsign:
      return x / (1.0 + std::abs(x));
    case ActivationKind::kSilu:
      return x * Sigmoid(x);
    case ActivationKind::kHardSilu:
      return x * std::clamp(x / 6.0 + 0.5, 0.0, 1.0);
    case ActivationKind::kMish:
      return x * std::tanh(Softplus(x));
    case ActivationKind::kExponential:
      return std::exp(x);
    case ActivationKind::kSoftmax:
    case ActivationKind::kLogSoftmax:
      break;
  }
  return x;  // not pointwise; callers never ask
}

double ActivationDerivative(const Activation& a, double x) {
  switch (a.kind) {
    case ActivationKind::kLinear:
      return 1.0;
    case ActivationKind::kRelu:
      if (x > a.threshold) return x < a.max_value ? 1.0 : 0.0;
      return a.negative_slope;
    case ActivationKind::kElu:
      return x > 0 ? 1.0 : std::exp(x);
    case ActivationKind::kSelu:
      return kSeluScale * (x > 0 ? 1.0 : kSeluAlpha * std::exp(x));
    case ActivationKind::kGelu: {
      const double pdf = std::exp(-0.5 * x * x) / std::sqrt(2.0 * M_PI);
      return 0.5 * (1.0 + std::erf(x / std::sqrt(2.0))) + x * pdf;
    }
    case ActivationKind::kSigmoid: {
      const double s = Sigmoid(x);
      return s * (1.0 - s);
    }
    case ActivationKind::kHardSigmoid:
      return (x > -3.0 && x < 3.0) ? 1.0 / 6.0 : 0.0;
    case ActivationKind::kTanh: {
      const double t = std::tanh(x);
      return 1.0 - t * t;
    }
    case ActivationKind::kSoftplus:
      return Sigmoid(x);
    case ActivationKind::kSoftsign: {
      const double d = 1.0 + std::abs(x);
      return 1.0 / (d * d);
    }
    case ActivationKind::kSilu: {
      const double s = Sigmoid(x);
      return s * (1.0 + x * (1.0 - s));
    }
    case ActivationKind::kHardSilu:
      if (x <= -3.0) return 0.0;
      if (x >= 3.0) return 1.0;
      return x / 3.0 + 0.5;
    case ActivationKind::kMish: {
      const double sp = Softplus(x);
      const double t = std::tanh(sp);
      return t + x * (1.0 - t * t) * Sigmoid(x);
    }
    case ActivationKind::kExponential:
      return std::exp(x);
    case ActivationKind::kSoftmax:
    case ActivationKind::kLogSoftmax:
      break;
  }
  return 1.0;
}

}  // namespace kiln
