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
//
// Checkpoints: between batches (and before the first) Fit asks the callback whether to save
// one and hands it the FitState. Fit given that state back, with the model's weights as they
// were then, continues exactly as the interrupted fit would have: same batches, same shuffle,
// same dropout masks, same optimizer steps, so the same weights bit for bit (on one thread).
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

// Keras History: the logs of every epoch that ran.
struct History {
  std::vector<int> epochs;
  std::vector<Logs> logs;
};

// Where a fit stands between two batches: with the model's weights, everything Fit needs to
// continue from there.
struct FitState {
  int epoch = 0;               // the epoch to continue (0-based)
  int64_t step = 0;            // batches of it already done
  std::vector<int64_t> order;  // its row order once drawn; empty: drawn when it begins
  std::string shuffle_rng;     // the std::mt19937_64 that shuffles, as operator<< writes it
  double loss_sum = 0, loss_count = 0;             // the epoch's running loss
  std::vector<std::pair<double, double>> metrics;  // each metric's running totals
  History history;                                 // the epochs finished
  Model::RandomState random;                       // dropout
  Optimizer::State optimizer;
  int64_t batches_done = 0;  // all epochs together
};

// Why Fit offers a checkpoint.
enum class CheckpointPoint {
  kStart,     // before the first batch (of this run of the fit)
  kBatch,     // after a batch that did not end its epoch
  kEpochEnd,  // after an epoch's end (validation and OnEpochEnd done)
  kStop,      // StopRequested: the fit is about to return CANCELLED
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
  // Fit, between batches: whether to save a checkpoint at `point`, with `epoch` and `step`
  // where the fit stands. If so SaveCheckpoint gets the state; its error stops the fit.
  virtual bool CheckpointDue(CheckpointPoint /*point*/, int /*epoch*/, int64_t /*step*/) {
    return false;
  }
  virtual absl::Status SaveCheckpoint(CheckpointPoint /*point*/, const FitState& /*state*/) {
    return absl::OkStatus();
  }
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
  // `resume`: continue from a checkpoint's state (the model's weights must be the checkpoint's
  // too); the optimizer's state is replaced by the checkpoint's.
  absl::StatusOr<History> Fit(const Dataset& data, const v1::FitConfig& config,
                              TrainingCallback* callback = nullptr,
                              const Dataset* validation = nullptr,
                              const FitState* resume = nullptr);
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

  // The variables the optimizer updates, in the order its state lists them.
  std::vector<Variable*> TrainableVariables() const;
  // The optimizer's state, and setting it back (Keras: optimizer.variables); both
  // FAILED_PRECONDITION before Compile.
  absl::StatusOr<Optimizer::State> OptimizerState();
  absl::Status SetOptimizerState(const Optimizer::State& state);

 private:
  absl::Status CheckTargets(const Dataset& data) const;
  absl::StatusOr<std::vector<Metric>> ResolveMetrics(const Shape& target_shape) const;
  // Sum of the weight regularizers' penalties (and, when add_gradients, their gradients
  // added to the variables' grads).
  double WeightPenalty(bool add_gradients) const;
  // Runs one training batch; returns the batch loss including penalties.
  absl::StatusOr<double> TrainBatch(const Dataset& data, absl::Span<const int64_t> rows,
                                    std::vector<Metric>& metrics, dnnl::stream& stream);
  absl::StatusOr<Logs> EvaluateRows(const Dataset& data, int64_t begin, int64_t end, int batch_size,
                                    TrainingCallback* callback, const std::string& prefix);

  // The fit's running state: the source of FitState and where a resumed fit puts it back.
  struct FitRun;
  absl::Status StartRun(FitRun& run, const FitInfo& info, const v1::FitConfig& config,
                        const FitState* resume);
  FitState CaptureState(const FitRun& run);
  absl::Status OfferCheckpoint(FitRun& run, CheckpointPoint point, TrainingCallback* callback);

  Model* model_;
  v1::CompileConfig compile_config_;
  std::unique_ptr<Optimizer> optimizer_;
  std::optional<LossFunction> loss_;
  std::vector<std::string> metric_names_;
  std::vector<float> targets_;  // a batch of targets
};

}  // namespace kiln

#endif  // KILN_CORE_TRAIN_TRAINER_H_
