// Trainer: Keras's compile / fit / evaluate / predict for one Model.
//
// fit follows Keras: validation_split takes the tail floor(N * (1 - split)).. of the data before
// any shuffling; shuffle reorders the training rows before each epoch; the last batch of an
// epoch may be smaller; logs carry running means over the epoch's samples of the loss (which
// includes regularization penalties) and metrics; validation runs every validation_freq
// epochs and adds "val_"-prefixed logs.
//
// Progress goes to a TrainingCallback (the service streams it); StopRequested is polled between
// batches, so a cancelled job stops within one batch with CANCELLED.
#ifndef KILN_CORE_TRAIN_TRAINER_H_
#define KILN_CORE_TRAIN_TRAINER_H_

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/graph/model.h"
#include "core/io/dataset.h"
#include "core/train/loss.h"
#include "core/train/metrics.h"
#include "core/train/optimizer.h"
#include "kiln/v1/training.pb.h"

namespace kiln {

// Ordered (name, value) pairs, as Keras orders its logs: loss, metrics, then val_*.
using Logs = std::vector<std::pair<std::string, double>>;

// A fit as it will run: its config with Keras's defaults filled in, and the data's split.
struct FitInfo {
  int initial_epoch = 0;
  int epochs = 0;
  int batch_size = 0;
  int validation_freq = 1;
  bool shuffle = true;
  int64_t steps_per_epoch = 0;
  int64_t train_samples = 0;
  int64_t validation_samples = 0;
};

class TrainingCallback {
 public:
  virtual ~TrainingCallback() = default;
  virtual void OnTrainBegin(const FitInfo&) {}
  virtual void OnEpochBegin(int /*epoch*/) {}
  virtual void OnTrainBatchEnd(int /*epoch*/, int64_t /*batch*/, const Logs& /*logs*/,
                               double /*samples_per_second*/) {}
  virtual void OnEpochEnd(int /*epoch*/, const Logs& /*logs*/) {}
  // After each batch of an evaluation (also a fit's validation, as in Keras) with the running
  // loss and metrics, and after each batch of a prediction. `steps` is the number of batches.
  virtual void OnTestBatchEnd(int64_t /*batch*/, int64_t /*steps*/, const Logs& /*logs*/,
                              double /*samples_per_second*/) {}
  virtual void OnPredictBatchEnd(int64_t /*batch*/, int64_t /*steps*/,
                                 double /*samples_per_second*/) {}
  // Polled between batches (fit, evaluate and predict).
  virtual bool StopRequested() { return false; }
};

// Keras History: the logs of every epoch that ran.
struct History {
  std::vector<int> epochs;
  std::vector<Logs> logs;
};

class Trainer {
 public:
  explicit Trainer(Model* model) : model_(model) {}

  // INVALID_ARGUMENT for unknown optimizer/loss/metric names or bad arguments (paths under
  // "optimizer", "loss", "metrics[i]"); UNIMPLEMENTED for models with several outputs.
  absl::Status Compile(const v1::CompileConfig& config);
  bool compiled() const { return loss_.has_value(); }
  const v1::CompileConfig& compile_config() const { return compile_config_; }
  const Optimizer* optimizer() const { return optimizer_.get(); }

  // FAILED_PRECONDITION before Compile; INVALID_ARGUMENT when the data does not fit the model
  // (naming both shapes) or the config is invalid; CANCELLED when the callback asks to stop.
  // `validation`, when given, is evaluated after each validation_freq epochs instead of a
  // validation_split tail, as Keras's validation_data.
  absl::StatusOr<History> Fit(const Dataset& data, const v1::FitConfig& config,
                              TrainingCallback* callback = nullptr,
                              const Dataset* validation = nullptr);
  // Every check Fit makes before running, without running anything; the fit it would run.
  absl::StatusOr<FitInfo> PlanFit(const Dataset& data, const v1::FitConfig& config,
                                  const Dataset* validation = nullptr) const;
  // The same checks for Evaluate and Predict.
  absl::Status ValidateEvaluate(const Dataset& data, const v1::EvaluateConfig& config) const;
  absl::Status ValidatePredict(const Dataset& data, const v1::PredictConfig& config) const;
  absl::StatusOr<Logs> Evaluate(const Dataset& data, const v1::EvaluateConfig& config,
                                TrainingCallback* callback = nullptr);
  // One tensor per model output, rows in the order of data.x. Needs no Compile.
  absl::StatusOr<std::vector<Tensor>> Predict(const Dataset& data, const v1::PredictConfig& config,
                                              TrainingCallback* callback = nullptr);

  // Checks data.x against the model's inputs (count and per-sample shapes).
  absl::Status CheckInputs(const Dataset& data) const;

 private:
  absl::Status CheckTargets(const Dataset& data) const;
  absl::StatusOr<std::vector<Metric>> ResolveMetrics(const Shape& target_shape) const;
  // Sum of the weight regularizers' penalties (and, when add_gradients, their gradients
  // added to the variables' grads).
  double WeightPenalty(bool add_gradients) const;
  std::vector<Variable*> TrainableVariables() const;
  // Runs one training batch; returns the batch loss including penalties.
  absl::StatusOr<double> TrainBatch(const Dataset& data, absl::Span<const int64_t> rows,
                                    std::vector<Metric>& metrics, dnnl::stream& stream);
  absl::StatusOr<Logs> EvaluateRows(const Dataset& data, int64_t begin, int64_t end, int batch_size,
                                    TrainingCallback* callback, const std::string& prefix);

  Model* model_;
  v1::CompileConfig compile_config_;
  std::unique_ptr<Optimizer> optimizer_;
  std::optional<LossFunction> loss_;
  std::vector<std::string> metric_names_;
  std::vector<float> targets_;  // a batch of targets
};

}  // namespace kiln

#endif  // KILN_CORE_TRAIN_TRAINER_H_
