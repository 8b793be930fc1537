#include "core/train/trainer.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/base/status.h"
#include "core/dnnl/engine.h"
#include "core/graph/plan.h"
#include "core/keras/regularizers.h"
#include "core/keras/spec_args.h"

namespace kiln {
namespace {

double SamplesPerSecond(int64_t samples, absl::Time start) {
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return seconds > 0 ? double(samples) / seconds : 0.0;
}

// A running mean weighted by samples, as Keras's Mean metric with sample_weight=batch size.
struct RunningMean {
  double sum = 0, count = 0;
  void Add(double value, double n) {
    sum += value * n;
    count += n;
  }
  double Result() const { return count == 0 ? 0.0 : sum / count; }
};

void GatherBatch(const Dataset& data, absl::Span<const int64_t> rows, ExecutionPlan& plan) {
  for (size_t i = 0; i < data.x.size(); ++i) GatherRows(data.x[i], rows, plan.input_data(i));
}

Logs MakeLogs(const std::string& prefix, double loss, const std::vector<Metric>& metrics) {
  Logs logs = {{absl::StrCat(prefix, "loss"), loss}};
  for (const Metric& m : metrics) logs.emplace_back(absl::StrCat(prefix, m.name()), m.Result());
  return logs;
}

}  // namespace

absl::Status Trainer::Compile(const v1::CompileConfig& config) {
  if (model_->output_values().size() != 1) {
    return absl::UnimplementedError(
        absl::StrCat("compile: Kiln trains models with one output; model \"", model_->name(),
                     "\" has ", model_->output_values().size()));
  }
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<Optimizer> optimizer,
                        Optimizer::Create(config.optimizer(), "optimizer"));
  KILN_ASSIGN_OR_RETURN(LossFunction loss, ResolveLoss(config.loss(), "loss"));
  const Shape& out = model_->value_shapes()[model_->output_values()[0]];
  for (int i = 0; i < config.metrics_size(); ++i) {
    // Names are checked now; the accuracy flavour is settled against the data in fit.
    KILN_RETURN_IF_ERROR(
        ResolveMetric(config.metrics(i), out, out, absl::StrCat("metrics[", i, "]")).status());
  }
  optimizer_ = std::move(optimizer);
  loss_ = loss;
  metric_names_.assign(config.metrics().begin(), config.metrics().end());
  compile_config_ = config;
  compile_config_.mutable_optimizer()->CopyFrom(optimizer_->config());
  return absl::OkStatus();
}

absl::Status Trainer::CheckInputs(const Dataset& data) const {
  KILN_RETURN_IF_ERROR(data.Validate());
  const auto& inputs = model_->input_values();
  if (data.x.size() != inputs.size()) {
    return absl::InvalidArgumentError(absl::StrCat("model \"", model_->name(), "\" has ",
                                                   inputs.size(), " inputs but the data has ",
                                                   data.x.size(), " feature tensors"));
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Shape& expected = model_->value_shapes()[inputs[i]];
    const Shape& got = data.x[i].shape();
    if (expected.WithoutBatch() != got.WithoutBatch()) {
      return absl::InvalidArgumentError(
          absl::StrCat("Input ", i, " (\"", model_->input_names()[i], "\") of model \"",
                       model_->name(), "\" expects data of shape ", expected.ToString(),
                       ", but received data of shape ", got.ToString()));
    }
  }
  return absl::OkStatus();
}

absl::Status Trainer::CheckTargets(const Dataset& data) const {
  if (data.y.empty()) return absl::InvalidArgumentError("the data set has no targets (y)");
  const Shape& out = model_->value_shapes()[model_->output_values()[0]];
  KILN_RETURN_IF_ERROR(loss_->CheckTargetShape(out, data.y.shape()));
  if (loss_->kind == LossKind::kSparseCategoricalCrossentropy) {
    const int64_t classes = out[out.rank() - 1];
    for (float label : data.y.values<float>()) {
      if (!(label >= 0 && label < float(classes)) || label != std::floor(label)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "Received a label value of ", label, " which is outside the valid range of [0, ",
            classes, "). Labels for sparse_categorical_crossentropy are class indices."));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Metric>> Trainer::ResolveMetrics(const Shape& target_shape) const {
  const Shape& out = model_->value_shapes()[model_->output_values()[0]];
  std::vector<Metric> metrics;
  for (size_t i = 0; i < metric_names_.size(); ++i) {
    KILN_ASSIGN_OR_RETURN(Metric m, ResolveMetric(metric_names_[i], out, target_shape,
                                                  absl::StrCat("metrics[", i, "]")));
    metrics.push_back(std::move(m));
  }
  return metrics;
}

std::vector<Variable*> Trainer::TrainableVariables() const {
  std::vector<Variable*> out;
  for (Layer* layer : model_->layers()) {
    for (const auto& v : layer->variables()) {
      if (v->trainable) out.push_back(v.get());
    }
  }
  return out;
}

absl::StatusOr<Optimizer::State> Trainer::OptimizerState() {
  if (!compiled()) return absl::FailedPreconditionError("the model is not compiled");
  return optimizer_->ExportState(TrainableVariables());
}

absl::Status Trainer::SetOptimizerState(const Optimizer::State& state) {
  if (!compiled()) return absl::FailedPreconditionError("the model is not compiled");
  return optimizer_->ImportState(state, TrainableVariables());
}

double Trainer::WeightPenalty(bool add_gradients) const {
  double penalty = 0;
  for (Variable* v : TrainableVariables()) {
    if (!v->regularizer.has_value()) continue;
    penalty += RegularizerPenalty(*v->regularizer, v->value.values<float>(), v->value.shape());
    if (add_gradients) {
      AddRegularizerGradient(*v->regularizer, v->value.values<float>(), v->value.shape(), 1.0,
                             v->grad.values<float>());
    }
  }
  return penalty;
}

absl::StatusOr<double> Trainer::TrainBatch(const Dataset& data, absl::Span<const int64_t> rows,
                                           std::vector<Metric>& metrics, dnnl::stream& stream) {
  KILN_ASSIGN_OR_RETURN(ExecutionPlan * plan, model_->GetPlan(int64_t(rows.size()), true));
  GatherBatch(data, rows, *plan);
  const int64_t target_row = loss_->TargetRowSize(plan->output_shape(0));
  targets_.resize(rows.size() * target_row);
  GatherRows(data.y, rows, targets_.data());
  plan->Forward(stream);
  const double loss = loss_->Compute(plan->output_data(0), targets_.data(), plan->output_shape(0),
                                     plan->output_grad_data(0));
  for (Metric& m : metrics) m.Update(plan->output_data(0), targets_.data(), plan->output_shape(0));
  const double activity = plan->activity_penalty();
  plan->Backward(stream);
  const double penalty = WeightPenalty(/*add_gradients=*/true);
  std::vector<Variable*> variables = TrainableVariables();
  optimizer_->Apply(variables);
  return loss + activity + penalty;
}

absl::StatusOr<FitInfo> Trainer::PlanFit(const Dataset& data, const v1::FitConfig& config,
                                         const Dataset* validation) const {
  if (!compiled()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "You must call `compile()` before using the model. (model \"", model_->name(), "\")"));
  }
  const SpecArgs args(config, "");
  KILN_RETURN_IF_ERROR(args.Validate());
  FitInfo info;
  info.initial_epoch = args.Int("initial_epoch");
  info.epochs = args.Int("epochs");
  info.batch_size = args.Int("batch_size");
  info.validation_freq = args.Int("validation_freq");
  info.shuffle = args.Bool("shuffle");
  if (info.initial_epoch < 0 || info.initial_epoch >= info.epochs) {
    return FieldError("initial_epoch",
                      absl::StrCat("must be in [0, epochs). Received: ", config.initial_epoch()));
  }
  KILN_RETURN_IF_ERROR(CheckInputs(data));
  KILN_RETURN_IF_ERROR(CheckTargets(data));
  if (validation != nullptr) {
    absl::Status status = CheckInputs(*validation);
    if (status.ok()) status = CheckTargets(*validation);
    if (!status.ok()) return WithFieldPrefix(status, "validation_data");
  }
  const int64_t n = data.size();
  // Keras: validation_data takes precedence over validation_split.
  const int64_t train_n = validation != nullptr || config.validation_split() == 0
                              ? n
                              : int64_t(std::floor(double(n) * (1.0 - config.validation_split())));
  if (validation == nullptr && config.validation_split() != 0 && (train_n == 0 || train_n == n)) {
    return FieldError("validation_split",
                      absl::StrCat("Training data contains ", n,
                                   " samples, which is not sufficient to split it into a "
                                   "validation and training set as specified by "
                                   "`validation_split=",
                                   config.validation_split(),
                                   "`. Either provide more data, or a different value for the "
                                   "`validation_split` argument."));
  }
  info.steps_per_epoch = (train_n + info.batch_size - 1) / info.batch_size;
  info.train_samples = train_n;
  info.validation_samples = validation != nullptr ? validation->size() : n - train_n;
  return info;
}

// A fit in progress: the state that FitState captures and a resumed fit starts from.
struct Trainer::FitRun {
  int epoch = 0;
  int64_t step = 0;
  std::vector<int64_t> order;  // the epoch's rows, once drawn
  std::mt19937_64 shuffle_rng;
  double loss_sum = 0, loss_count = 0;
  std::vector<Metric> metrics;
  History history;
  int64_t batches_done = 0;

  double loss() const { return loss_count == 0 ? 0.0 : loss_sum / loss_count; }
};

absl::Status Trainer::StartRun(FitRun& run, const FitInfo& info, const v1::FitConfig& config,
                               const FitState* resume) {
  if (resume == nullptr) {
    const uint64_t seed = config.has_seed() ? uint64_t(config.seed()) : std::random_device{}();
    model_->Reseed(seed);
    run.shuffle_rng.seed(seed);
    run.epoch = info.initial_epoch;
    return absl::OkStatus();
  }
  auto mismatch = [](absl::string_view what) {
    return absl::FailedPreconditionError(
        absl::StrCat("the checkpoint does not fit this fit: ", what));
  };
  if (resume->epoch < info.initial_epoch || resume->epoch > info.epochs) {
    return mismatch(absl::StrCat("its epoch ", resume->epoch, " is outside [", info.initial_epoch,
                                 ", ", info.epochs, "]"));
  }
  if (resume->step < 0 || (resume->step > 0 && (resume->epoch == info.epochs ||
                                                resume->step >= info.steps_per_epoch))) {
    return mismatch(
        absl::StrCat("its batch ", resume->step, " is outside the epoch's ", info.steps_per_epoch));
  }
  if ((resume->step > 0 && resume->order.empty()) ||
      (!resume->order.empty() && int64_t(resume->order.size()) != info.train_samples)) {
    return mismatch(absl::StrCat("its row order has ", resume->order.size(), " rows, not ",
                                 info.train_samples));
  }
  for (int64_t row : resume->order) {
    if (row < 0 || row >= info.train_samples) return mismatch("its row order is damaged");
  }
  if (resume->metrics.size() != run.metrics.size()) {
    return mismatch(
        absl::StrCat("it has ", resume->metrics.size(), " metrics, not ", run.metrics.size()));
  }
  std::istringstream rng_text(resume->shuffle_rng);
  rng_text >> run.shuffle_rng;
  if (rng_text.fail()) return mismatch("its shuffle state cannot be read");
  KILN_RETURN_IF_ERROR(optimizer_->ImportState(resume->optimizer, TrainableVariables()));
  model_->SetRandomState(resume->random);
  run.epoch = resume->epoch;
  run.step = resume->step;
  run.order = resume->order;
  run.loss_sum = resume->loss_sum;
  run.loss_count = resume->loss_count;
  for (size_t i = 0; i < run.metrics.size(); ++i) run.metrics[i].set_totals(resume->metrics[i]);
  run.history = resume->history;
  run.batches_done = resume->batches_done;
  return absl::OkStatus();
}

FitState Trainer::CaptureState(const FitRun& run) {
  FitState state;
  state.epoch = run.epoch;
  state.step = run.step;
  state.order = run.order;
  std::ostringstream rng_text;
  rng_text << run.shuffle_rng;
  state.shuffle_rng = rng_text.str();
  state.loss_sum = run.loss_sum;
  state.loss_count = run.loss_count;
  for (const Metric& m : run.metrics) state.metrics.push_back(m.totals());
  state.history = run.history;
  state.random = model_->random_state();
  state.optimizer = optimizer_->ExportState(TrainableVariables());
  state.batches_done = run.batches_done;
  return state;
}

absl::Status Trainer::OfferCheckpoint(FitRun& run, CheckpointPoint point,
                                      TrainingCallback* callback) {
  if (callback == nullptr || !callback->CheckpointDue(point, run.epoch, run.step)) {
    return absl::OkStatus();
  }
  return callback->SaveCheckpoint(point, CaptureState(run));
}

absl::StatusOr<History> Trainer::Fit(const Dataset& data, const v1::FitConfig& config,
                                     TrainingCallback* callback, const Dataset* validation,
                                     const FitState* resume) {
  KILN_ASSIGN_OR_RETURN(const FitInfo info, PlanFit(data, config, validation));
  const int64_t n = data.size();
  const int64_t train_n = info.train_samples;
  const int batch_size = info.batch_size;
  FitRun run;
  KILN_ASSIGN_OR_RETURN(run.metrics, ResolveMetrics(data.y.shape()));
  KILN_RETURN_IF_ERROR(StartRun(run, info, config, resume));
  dnnl::stream stream = NewStream();

  if (callback) callback->OnTrainBegin(info);
  KILN_RETURN_IF_ERROR(OfferCheckpoint(run, CheckpointPoint::kStart, callback));
  while (run.epoch < info.epochs) {
    if (run.step == 0) {
      if (callback) callback->OnEpochBegin(run.epoch);
      if (run.order.empty()) {  // else drawn before a stop at this epoch's first batch
        run.order.resize(train_n);
        std::iota(run.order.begin(), run.order.end(), 0);
        if (info.shuffle) std::shuffle(run.order.begin(), run.order.end(), run.shuffle_rng);
      }
      for (Metric& m : run.metrics) m.Reset();
      run.loss_sum = run.loss_count = 0;
    }
    const absl::Time start = absl::Now();
    const int64_t first_row = run.step * batch_size;
    while (run.step < info.steps_per_epoch) {
      if (callback && callback->StopRequested()) {
        KILN_RETURN_IF_ERROR(OfferCheckpoint(run, CheckpointPoint::kStop, callback));
        return absl::CancelledError(
            absl::StrCat("fit cancelled at epoch ", run.epoch + 1, ", batch ", run.step));
      }
      const int64_t begin = run.step * batch_size;
      const int64_t end = std::min<int64_t>(begin + batch_size, train_n);
      absl::Span<const int64_t> rows(run.order.data() + begin, end - begin);
      absl::StatusOr<double> batch_loss;
      try {
        batch_loss = TrainBatch(data, rows, run.metrics, stream);
      } catch (const dnnl::error& e) {
        return absl::InternalError(absl::StrCat("oneDNN failed during training: ", e.what()));
      }
      if (!batch_loss.ok()) return batch_loss.status();
      run.loss_sum += *batch_loss * double(rows.size());
      run.loss_count += double(rows.size());
      ++run.step;
      ++run.batches_done;
      if (callback) {
        callback->OnTrainBatchEnd(run.epoch, run.step - 1, MakeLogs("", run.loss(), run.metrics),
                                  SamplesPerSecond(end - first_row, start));
      }
      if (run.step < info.steps_per_epoch) {
        KILN_RETURN_IF_ERROR(OfferCheckpoint(run, CheckpointPoint::kBatch, callback));
      }
    }
    Logs logs = MakeLogs("", run.loss(), run.metrics);
    if ((validation != nullptr || train_n < n) && (run.epoch + 1) % info.validation_freq == 0) {
      absl::StatusOr<Logs> val =
          validation != nullptr
              ? EvaluateRows(*validation, 0, validation->size(), batch_size, callback, "val_")
              : EvaluateRows(data, train_n, n, batch_size, callback, "val_");
      if (!val.ok()) return val.status();
      logs.insert(logs.end(), val->begin(), val->end());
    }
    run.history.epochs.push_back(run.epoch);
    run.history.logs.push_back(logs);
    if (callback) callback->OnEpochEnd(run.epoch, logs);
    ++run.epoch;
    run.step = 0;
    run.order.clear();
    KILN_RETURN_IF_ERROR(OfferCheckpoint(run, CheckpointPoint::kEpochEnd, callback));
  }
  return run.history;
}

absl::StatusOr<Logs> Trainer::EvaluateRows(const Dataset& data, int64_t begin, int64_t end,
                                           int batch_size, TrainingCallback* callback,
                                           const std::string& prefix) {
  KILN_ASSIGN_OR_RETURN(std::vector<Metric> metrics, ResolveMetrics(data.y.shape()));
  dnnl::stream stream = NewStream();
  RunningMean loss_mean;
  const double weight_penalty = WeightPenalty(/*add_gradients=*/false);
  std::vector<int64_t> rows;
  const int64_t steps = (end - begin + batch_size - 1) / batch_size;
  const absl::Time start = absl::Now();
  for (int64_t first = begin; first < end; first += batch_size) {
    if (callback && callback->StopRequested()) {
      return absl::CancelledError("evaluation cancelled");
    }
    const int64_t last = std::min<int64_t>(first + batch_size, end);
    rows.resize(last - first);
    std::iota(rows.begin(), rows.end(), first);
    KILN_ASSIGN_OR_RETURN(ExecutionPlan * plan, model_->GetPlan(int64_t(rows.size()), false));
    GatherBatch(data, rows, *plan);
    targets_.resize(rows.size() * loss_->TargetRowSize(plan->output_shape(0)));
    GatherRows(data.y, rows, targets_.data());
    try {
      plan->Forward(stream);
    } catch (const dnnl::error& e) {
      return absl::InternalError(absl::StrCat("oneDNN failed during evaluation: ", e.what()));
    }
    const double loss =
        loss_->Compute(plan->output_data(0), targets_.data(), plan->output_shape(0), nullptr);
    loss_mean.Add(loss + plan->activity_penalty() + weight_penalty, double(rows.size()));
    for (Metric& m : metrics) {
      m.Update(plan->output_data(0), targets_.data(), plan->output_shape(0));
    }
    if (callback) {
      callback->OnTestBatchEnd((first - begin) / batch_size, steps,
                               MakeLogs(prefix, loss_mean.Result(), metrics),
                               SamplesPerSecond(last - begin, start));
    }
  }
  return MakeLogs(prefix, loss_mean.Result(), metrics);
}

absl::Status Trainer::ValidateEvaluate(const Dataset& data,
                                       const v1::EvaluateConfig& config) const {
  if (!compiled()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "You must call `compile()` before using the model. (model \"", model_->name(), "\")"));
  }
  KILN_RETURN_IF_ERROR(SpecArgs(config, "").Validate());
  KILN_RETURN_IF_ERROR(CheckInputs(data));
  return CheckTargets(data);
}

absl::Status Trainer::ValidatePredict(const Dataset& data, const v1::PredictConfig& config) const {
  KILN_RETURN_IF_ERROR(SpecArgs(config, "").Validate());
  return CheckInputs(data);
}

absl::StatusOr<Logs> Trainer::Evaluate(const Dataset& data, const v1::EvaluateConfig& config,
                                       TrainingCallback* callback) {
  KILN_RETURN_IF_ERROR(ValidateEvaluate(data, config));
  const int batch_size = SpecArgs(config, "").Int("batch_size");
  return EvaluateRows(data, 0, data.size(), batch_size, callback, "");
}

absl::StatusOr<std::vector<Tensor>> Trainer::Predict(const Dataset& data,
                                                     const v1::PredictConfig& config,
                                                     TrainingCallback* callback) {
  KILN_RETURN_IF_ERROR(ValidatePredict(data, config));
  const int batch_size = SpecArgs(config, "").Int("batch_size");
  const int64_t n = data.size();
  std::vector<Tensor> outputs;
  for (int v : model_->output_values()) {
    outputs.emplace_back(DType::kFloat32, model_->value_shapes()[v].WithBatch(n));
  }
  dnnl::stream stream = NewStream();
  std::vector<int64_t> rows;
  const int64_t steps = (n + batch_size - 1) / batch_size;
  const absl::Time start = absl::Now();
  for (int64_t first = 0; first < n; first += batch_size) {
    if (callback && callback->StopRequested()) return absl::CancelledError("predict cancelled");
    const int64_t last = std::min<int64_t>(first + batch_size, n);
    rows.resize(last - first);
    std::iota(rows.begin(), rows.end(), first);
    KILN_ASSIGN_OR_RETURN(ExecutionPlan * plan, model_->GetPlan(int64_t(rows.size()), false));
    GatherBatch(data, rows, *plan);
    try {
      plan->Forward(stream);
    } catch (const dnnl::error& e) {
      return absl::InternalError(absl::StrCat("oneDNN failed during prediction: ", e.what()));
    }
    for (size_t o = 0; o < outputs.size(); ++o) {
      const int64_t row = outputs[o].num_elements() / n;
      std::copy_n(plan->output_data(o), rows.size() * row, outputs[o].data<float>() + first * row);
    }
    if (callback) {
      callback->OnPredictBatchEnd(first / batch_size, steps, SamplesPerSecond(last, start));
    }
  }
  return outputs;
}

}  // namespace kiln
