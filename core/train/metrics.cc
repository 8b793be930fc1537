#include "core/train/metrics.h"

#include "absl/strings/str_cat.h"
#include "core/base/status.h"

namespace kiln {
namespace {

int64_t ArgMax(const float* row, int64_t k) {
  int64_t best = 0;
  for (int64_t j = 1; j < k; ++j) {
    if (row[j] > row[best]) best = j;
  }
  return best;
}

}  // namespace

void Metric::Update(const float* p, const float* t, const Shape& shape) {
  const int64_t total = shape.num_elements();
  const int64_t k = shape[shape.rank() - 1];
  switch (kind_) {
    case MetricKind::kBinaryAccuracy:
      for (int64_t i = 0; i < total; ++i) correct_ += (p[i] > 0.5f) == (t[i] > 0.5f) ? 1 : 0;
      count_ += double(total);
      return;
    case MetricKind::kSparseCategoricalAccuracy:
    case MetricKind::kCategoricalAccuracy: {
      const int64_t rows = total / k;
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t predicted = ArgMax(p + r * k, k);
        const int64_t expected =
            kind_ == MetricKind::kSparseCategoricalAccuracy ? int64_t(t[r]) : ArgMax(t + r * k, k);
        correct_ += predicted == expected ? 1 : 0;
      }
      count_ += double(rows);
      return;
    }
  }
}

const std::vector<KerasName>& MetricNames() {
  static const auto* names = new std::vector<KerasName>{
      {"accuracy",
       {"acc"},
       "Binary, sparse categorical or categorical accuracy, chosen from the shapes as Keras "
       "does."},
      {"sparse_categorical_accuracy", {}, "How often the top class equals an integer label."},
      {"categorical_accuracy", {}, "How often the top class equals the one-hot label's."},
      {"binary_accuracy", {}, "How often the prediction, cut at 0.5, equals the 0/1 label."},
  };
  return *names;
}

absl::StatusOr<Metric> ResolveMetric(const std::string& name, const Shape& prediction,
                                     const Shape& target, absl::string_view path) {
  if (name == "accuracy" || name == "acc") {
    const int64_t p_last = prediction[prediction.rank() - 1];
    const int64_t t_last = target[target.rank() - 1];
    if (p_last == 1) return Metric(MetricKind::kBinaryAccuracy, name);
    if (target.rank() < prediction.rank() || (t_last == 1 && p_last > 1)) {
      return Metric(MetricKind::kSparseCategoricalAccuracy, name);
    }
    return Metric(MetricKind::kCategoricalAccuracy, name);
  }
  if (name == "sparse_categorical_accuracy") {
    return Metric(MetricKind::kSparseCategoricalAccuracy, name);
  }
  if (name == "categorical_accuracy") return Metric(MetricKind::kCategoricalAccuracy, name);
  if (name == "binary_accuracy") return Metric(MetricKind::kBinaryAccuracy, name);
  return FieldError(path, absl::StrCat("Could not interpret metric identifier: ", name,
                                       ". Supported: accuracy (acc), "
                                       "sparse_categorical_accuracy, categorical_accuracy, "
                                       "binary_accuracy"));
}

}  // namespace kiln
