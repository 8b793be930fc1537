// Keras accuracy metrics, as running means over the samples seen since the last Reset (Keras
// resets them at each epoch start). "accuracy"/"acc" is resolved from the shapes and keeps its
// name in the logs, as Keras 3's compile does: binary when predictions have one column, sparse
// categorical when targets have fewer axes or a last axis of 1, else categorical.
#ifndef KILN_CORE_TRAIN_METRICS_H_
#define KILN_CORE_TRAIN_METRICS_H_

#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/keras/keras_class.h"
#include "core/tensor/shape.h"

namespace kiln {

enum class MetricKind { kSparseCategoricalAccuracy, kCategoricalAccuracy, kBinaryAccuracy };

class Metric {
 public:
  Metric(MetricKind kind, std::string name) : kind_(kind), name_(std::move(name)) {}

  const std::string& name() const { return name_; }
  MetricKind kind() const { return kind_; }

  void Reset() {
    correct_ = 0;
    count_ = 0;
  }
  // Adds a batch: predictions of `shape` (batch first) and its targets.
  void Update(const float* prediction, const float* target, const Shape& shape);
  double Result() const { return count_ == 0 ? 0.0 : correct_ / count_; }
  // The running totals, for a checkpoint mid-epoch.
  std::pair<double, double> totals() const { return {correct_, count_}; }
  void set_totals(std::pair<double, double> totals) { std::tie(correct_, count_) = totals; }

 private:
  MetricKind kind_;
  std::string name_;
  double correct_ = 0, count_ = 0;
};

// Every metric name ResolveMetric accepts, for the catalogue.
const std::vector<KerasName>& MetricNames();

// Resolves a metric name given the model output's and the targets' shapes.
absl::StatusOr<Metric> ResolveMetric(const std::string& name, const Shape& prediction,
                                     const Shape& target, absl::string_view path);

}  // namespace kiln

#endif  // KILN_CORE_TRAIN_METRICS_H_
