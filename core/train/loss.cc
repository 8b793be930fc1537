#include "core/train/loss.h"

#include <algorithm>
#include <cmath>

#include "absl/algorithm/container.h"
#include "absl/strings/str_cat.h"
#include "core/base/status.h"

namespace kiln {
namespace {

constexpr double kEpsilon = 1e-7;

double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// Cross-entropy of one row of `k` class scores against target probabilities `t` (one-hot for
// sparse labels). Writes d/dscores into g (scaled by `scale`) when g is non-null.
double CrossEntropyRow(const float* p, const float* t, int64_t label, int64_t k, bool logits,
                       double scale, float* g) {
  auto target = [&](int64_t j) -> double { return t != nullptr ? t[j] : (j == label ? 1.0 : 0.0); };
  double loss = 0;
  if (logits) {
    double max = p[0];
    for (int64_t j = 1; j < k; ++j) max = std::max<double>(max, p[j]);
    double sum = 0;
    for (int64_t j = 0; j < k; ++j) sum += std::exp(p[j] - max);
    const double log_sum = std::log(sum) + max;
    double target_sum = 0;
    for (int64_t j = 0; j < k; ++j) {
      loss -= target(j) * (p[j] - log_sum);
      target_sum += target(j);
    }
    if (g != nullptr) {
      for (int64_t j = 0; j < k; ++j) {
        g[j] = float(scale * (std::exp(p[j] - log_sum) * target_sum - target(j)));
      }
    }
    return loss;
  }
  // q = p / sum(p), clipped; d/dp_j = (g_j - sum_k g_k q_k) / s with g_k = -t_k / q_k where q_k
  // was not clipped.
  double s = 0;
  for (int64_t j = 0; j < k; ++j) s += p[j];
  double dot = 0;
  for (int64_t j = 0; j < k; ++j) {
    const double q = p[j] / s;
    const double clipped = std::clamp(q, kEpsilon, 1.0 - kEpsilon);
    loss -= target(j) * std::log(clipped);
    if (g != nullptr) {
      const double gj = (q == clipped) ? -target(j) / clipped : 0.0;
      g[j] = float(gj);
      dot += gj * q;
    }
  }
  if (g != nullptr) {
    for (int64_t j = 0; j < k; ++j) g[j] = float(scale * (g[j] - dot) / s);
  }
  return loss;
}

}  // namespace

namespace {

struct LossEntry {
  LossKind kind;
  KerasName name;
};

const std::vector<LossEntry>& LossTable() {
  static const auto* table = new std::vector<LossEntry>{
      {LossKind::kSparseCategoricalCrossentropy,
       {"sparse_categorical_crossentropy",
        {"SparseCategoricalCrossentropy"},
        "Cross-entropy of integer class labels against class probabilities (or logits)."}},
      {LossKind::kCategoricalCrossentropy,
       {"categorical_crossentropy",
        {"CategoricalCrossentropy"},
        "Cross-entropy of one-hot labels against class probabilities (or logits)."}},
      {LossKind::kBinaryCrossentropy,
       {"binary_crossentropy",
        {"BinaryCrossentropy"},
        "Cross-entropy of 0/1 labels against probabilities (or logits)."}},
      {LossKind::kMeanSquaredError,
       {"mean_squared_error", {"MeanSquaredError", "mse"}, "Mean of the squared errors."}},
  };
  return *table;
}

}  // namespace

const std::vector<KerasName>& LossNames() {
  static const auto* names = [] {
    auto* out = new std::vector<KerasName>;
    for (const LossEntry& entry : LossTable()) out->push_back(entry.name);
    return out;
  }();
  return *names;
}

absl::StatusOr<LossFunction> ResolveLoss(const v1::Loss& spec, absl::string_view path) {
  if (spec.name().empty()) {
    return FieldError(absl::StrCat(path, ".name"),
                      "a loss is required, e.g. \"sparse_categorical_crossentropy\"");
  }
  const LossEntry* found = nullptr;
  for (const LossEntry& entry : LossTable()) {
    if (entry.name.name == spec.name() || absl::c_linear_search(entry.name.aliases, spec.name())) {
      found = &entry;
    }
  }
  if (found == nullptr) {
    return FieldError(absl::StrCat(path, ".name"),
                      absl::StrCat("Could not interpret loss identifier: ", spec.name(),
                                   ". Supported: sparse_categorical_crossentropy, "
                                   "categorical_crossentropy, binary_crossentropy, "
                                   "mean_squared_error (mse)"));
  }
  LossFunction loss;
  loss.kind = found->kind;
  loss.from_logits = spec.from_logits();
  loss.name = found->name.name;
  if (loss.kind == LossKind::kMeanSquaredError && loss.from_logits) {
    return FieldError(absl::StrCat(path, ".from_logits"),
                      "from_logits applies to cross-entropy losses only");
  }
  return loss;
}

absl::Status LossFunction::CheckTargetShape(const Shape& prediction, const Shape& target) const {
  const std::string message =
      absl::StrCat("targets of shape ", target.ToString(), " do not fit predictions of shape ",
                   prediction.ToString(), " for loss ", name);
  if (kind == LossKind::kSparseCategoricalCrossentropy) {
    // Labels: the prediction's shape without its class axis, optionally with a trailing 1.
    const int r = prediction.rank();
    bool ok = target.rank() == r - 1 || (target.rank() == r && target[r - 1] == 1);
    for (int i = 1; ok && i < r - 1; ++i) ok = target[i] == prediction[i];
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat(message, ": sparse labels need one integer class index per sample"));
    }
    return absl::OkStatus();
  }
  bool ok = target.rank() == prediction.rank();
  for (int i = 1; ok && i < target.rank(); ++i) ok = target[i] == prediction[i];
  if (!ok) return absl::InvalidArgumentError(message);
  return absl::OkStatus();
}

int64_t LossFunction::TargetRowSize(const Shape& prediction) const {
  const int64_t per_sample = prediction.num_elements() / prediction[0];
  if (kind == LossKind::kSparseCategoricalCrossentropy) {
    return per_sample / prediction[prediction.rank() - 1];
  }
  return per_sample;
}

double LossFunction::Compute(const float* p, const float* t, const Shape& shape,
                             float* grad) const {
  const int64_t total = shape.num_elements();
  const int64_t k = shape[shape.rank() - 1];
  const int64_t rows = total / k;  // samples times any middle positions
  double sum = 0;
  switch (kind) {
    case LossKind::kMeanSquaredError: {
      const double scale = 2.0 / double(total);
      for (int64_t i = 0; i < total; ++i) {
        const double d = double(p[i]) - t[i];
        sum += d * d;
        if (grad != nullptr) grad[i] = float(scale * d);
      }
      return sum / double(total);
    }
    case LossKind::kBinaryCrossentropy: {
      const double scale = 1.0 / double(total);
      for (int64_t i = 0; i < total; ++i) {
        const double y = t[i];
        if (from_logits) {
          const double x = p[i];
          sum += std::max(x, 0.0) - x * y + std::log1p(std::exp(-std::abs(x)));
          if (grad != nullptr) grad[i] = float(scale * (Sigmoid(x) - y));
        } else {
          const double q = p[i];
          const double c = std::clamp(q, kEpsilon, 1.0 - kEpsilon);
          sum -= y * std::log(c) + (1.0 - y) * std::log(1.0 - c);
          if (grad != nullptr) {
            grad[i] = (q == c) ? float(scale * (-y / c + (1.0 - y) / (1.0 - c))) : 0.0f;
          }
        }
      }
      return sum / double(total);
    }
    case LossKind::kCategoricalCrossentropy:
    case LossKind::kSparseCategoricalCrossentropy: {
      const bool sparse = kind == LossKind::kSparseCategoricalCrossentropy;
      const double scale = 1.0 / double(rows);
      for (int64_t r = 0; r < rows; ++r) {
        const float* target_row = sparse ? nullptr : t + r * k;
        const int64_t label = sparse ? int64_t(t[r]) : -1;
        sum += CrossEntropyRow(p + r * k, target_row, label, k, from_logits, scale,
                               grad != nullptr ? grad + r * k : nullptr);
      }
      return sum / double(rows);
    }
  }
  return 0;
}

}  // namespace kiln
