// Trainer: compile errors, fit semantics (validation tail split, batches per epoch, history,
// penalties in the loss), cancellation, data checks, evaluate and predict.
#include "core/train/trainer.h"

#include "core/base/status.h"
#include "core/layers/registry.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "tests/unit/test_util.h"

namespace kiln {
namespace {

using ::testing::HasSubstr;

// y = 3 x0 - 2 x1 + 1 with a Dense(1) model, or 3-class labels from the sign pattern.
struct Toy {
  Graph graph;
  std::unique_ptr<Model> model;
  std::shared_ptr<Layer> dense;
};

std::unique_ptr<Toy> MakeToy(const std::string& dense_spec) {
  auto toy = std::make_unique<Toy>();
  auto x = toy->graph.AddInput(Shape{2}, "x");
  auto layer = CreateLayer(testing::ParseSpec(dense_spec), 1);
  EXPECT_TRUE(layer.ok()) << layer.status();
  toy->dense = *toy->graph.AddLayer(std::move(*layer));
  auto y = toy->graph.Call(toy->dense, {*x});
  toy->model = std::move(*Model::Create(toy->graph, {*x}, {(*y)[0]}, "toy"));
  return toy;
}

Dataset Regression(int64_t n) {
  Dataset d;
  d.x.push_back(testing::RandomTensor(Shape{n, 2}, 5));
  d.y = Tensor(DType::kFloat32, Shape{n, 1});
  for (int64_t i = 0; i < n; ++i) {
    const float* x = d.x[0].data<float>() + 2 * i;
    d.y.data<float>()[i] = 3 * x[0] - 2 * x[1] + 1;
  }
  return d;
}

v1::CompileConfig Compile(const std::string& text) {
  v1::CompileConfig c;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &c)) << text;
  return c;
}

class Recorder : public TrainingCallback {
 public:
  void OnTrainBegin(const FitInfo& info) override { this->info = info; }
  void OnTrainBatchEnd(int, int64_t, const Logs& logs, double) override {
    ++batches;
    last_batch_logs = logs;
    if (stop_after > 0 && batches >= stop_after) stop = true;
  }
  void OnEpochEnd(int, const Logs& logs) override { epoch_logs.push_back(logs); }
  bool StopRequested() override { return stop; }

  FitInfo info;
  int batches = 0, stop_after = 0;
  bool stop = false;
  Logs last_batch_logs;
  std::vector<Logs> epoch_logs;
};

TEST(TrainerTest, FitBeforeCompileIsFailedPrecondition) {
  auto toy = MakeToy("dense { units: 1 }");
  Trainer trainer(toy->model.get());
  auto result = trainer.Fit(Regression(10), v1::FitConfig());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(result.status().message()),
              HasSubstr("You must call `compile()` before using the model"));
}

TEST(TrainerTest, CompileErrorsNameTheField) {
  auto toy = MakeToy("dense { units: 1 }");
  Trainer trainer(toy->model.get());
  EXPECT_EQ(FieldPathOf(trainer.Compile(Compile("loss { name: \"mse\" }"))), "optimizer");
  EXPECT_EQ(FieldPathOf(trainer.Compile(Compile("optimizer { name: \"sgd\" }"))), "loss.name");
  EXPECT_EQ(FieldPathOf(trainer.Compile(
                Compile("optimizer { name: \"sgd\" } loss { name: \"mse\" } metrics: \"f1\""))),
            "metrics[0]");
  EXPECT_FALSE(trainer.compiled());
}

TEST(TrainerTest, LinearRegressionConverges) {
  auto toy = MakeToy("dense { units: 1 }");
  Trainer trainer(toy->model.get());
  ASSERT_TRUE(trainer
                  .Compile(Compile("optimizer { sgd { learning_rate: 0.1 momentum: 0.5 } } "
                                   "loss { name: \"mse\" }"))
                  .ok());
  v1::FitConfig fit;
  fit.set_epochs(30);
  fit.set_batch_size(16);
  fit.set_seed(3);
  auto history = trainer.Fit(Regression(256), fit);
  ASSERT_TRUE(history.ok()) << history.status();
  EXPECT_LT(history->logs.back()[0].second, 1e-4);
  const float* k = toy->dense->variable("kernel")->value.data<float>();
  EXPECT_NEAR(k[0], 3, 1e-2);
  EXPECT_NEAR(k[1], -2, 1e-2);
  EXPECT_NEAR(toy->dense->variable("bias")->value.data<float>()[0], 1, 1e-2);
}

// Transfer learning's usual setup: a frozen BatchNormalization (with gamma and beta) after a
// trainable layer. The fit failed with INTERNAL (oneDNN refused the backward); Keras runs the
// frozen layer in inference mode and passes the gradient through it.
TEST(TrainerTest, AFrozenBatchNormalizationPassesTheGradientThrough) {
  Graph graph;
  auto x = graph.AddInput(Shape{2}, "x");
  std::vector<std::shared_ptr<Layer>> layers;
  std::vector<TensorId> t = {*x};
  for (const char* spec :
       {"dense { units: 4 }", "batch_normalization { trainable: false momentum: 0.5 }",
        "dense { units: 1 }"}) {
    auto layer = CreateLayer(testing::ParseSpec(spec), 7);
    ASSERT_TRUE(layer.ok()) << layer.status();
    layers.push_back(*graph.AddLayer(std::move(*layer)));
    auto out = graph.Call(layers.back(), t);
    ASSERT_TRUE(out.ok()) << out.status();
    t = *out;
  }
  auto model = Model::Create(graph, {*x}, t, "frozen");
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<Tensor> frozen, first;
  for (const auto& v : layers[1]->variables()) frozen.push_back(v->value.Clone());
  for (const auto& v : layers[0]->variables()) first.push_back(v->value.Clone());
  Trainer trainer(model->get());
  ASSERT_TRUE(
      trainer.Compile(Compile("optimizer { sgd { learning_rate: 0.05 } } loss { name: \"mse\" }"))
          .ok());
  v1::FitConfig fit;
  fit.set_epochs(3);
  fit.set_batch_size(16);
  fit.set_seed(3);
  auto history = trainer.Fit(Regression(128), fit);
  ASSERT_TRUE(history.ok()) << history.status();
  EXPECT_LT(history->logs.back()[0].second, history->logs.front()[0].second);
  // The frozen layer's gamma, beta and moving statistics did not move; the layer before it
  // learned through it.
  for (size_t i = 0; i < frozen.size(); ++i) {
    const Tensor& now = layers[1]->variables()[i]->value;
    for (int64_t j = 0; j < now.num_elements(); ++j) {
      EXPECT_EQ(now.data<float>()[j], frozen[i].data<float>()[j])
          << layers[1]->variables()[i]->name;
    }
  }
  const Tensor& kernel = layers[0]->variables()[0]->value;
  double moved = 0;
  for (int64_t j = 0; j < kernel.num_elements(); ++j) {
    moved += std::abs(kernel.data<float>()[j] - first[0].data<float>()[j]);
  }
  EXPECT_GT(moved, 1e-3);
}

TEST(TrainerTest, ValidationSplitTakesTheTailAndBatchesCoverTheRest) {
  auto toy = MakeToy("dense { units: 1 }");
  Trainer trainer(toy->model.get());
  ASSERT_TRUE(trainer.Compile(Compile("optimizer { name: \"adam\" } loss { name: \"mse\" }")).ok());
  v1::FitConfig fit;
  fit.set_epochs(2);
  fit.set_batch_size(8);
  fit.set_validation_split(0.25f);
  Recorder recorder;
  Dataset data = Regression(50);  // split_at = floor(50 * 0.75) = 37
  auto history = trainer.Fit(data, fit, &recorder);
  ASSERT_TRUE(history.ok()) << history.status();
  EXPECT_EQ(recorder.info.train_samples, 37);
  EXPECT_EQ(recorder.info.validation_samples, 13);
  EXPECT_EQ(recorder.info.steps_per_epoch, 5);  // 8+8+8+8+5
  EXPECT_EQ(recorder.batches, 10);
  ASSERT_EQ(history->logs.size(), 2u);
  ASSERT_EQ(history->logs[0].size(), 2u);
  EXPECT_EQ(history->logs[0][0].first, "loss");
  EXPECT_EQ(history->logs[0][1].first, "val_loss");
  // val_loss is the evaluation of exactly the last 13 rows.
  Trainer evaluator(toy->model.get());
  ASSERT_TRUE(
      evaluator.Compile(Compile("optimizer { name: \"sgd\" } loss { name: \"mse\" }")).ok());
  auto tail = evaluator.Evaluate(data.Slice(37, 50), v1::EvaluateConfig());
  ASSERT_TRUE(tail.ok());
  // The model changed after the epoch-2 validation only through epoch 2's training, which
  // ended before it; so the last val_loss is the tail's current loss.
  EXPECT_NEAR(history->logs[1][1].second, (*tail)[0].second, 1e-6);
}

TEST(TrainerTest, ValidationSplitIsComputedInDoublePrecisionLikeKeras) {
  // floor(10 * (1 - 0.2)) = 8 in Python; in float32 arithmetic it would be 7.
  auto toy = MakeToy("dense { units: 1 }");
  Trainer trainer(toy->model.get());
  ASSERT_TRUE(trainer.Compile(Compile("optimizer { name: \"sgd\" } loss { name: \"mse\" }")).ok());
  v1::FitConfig fit;
  fit.set_validation_split(0.2);
  Recorder recorder;
  ASSERT_TRUE(trainer.Fit(Regression(10), fit, &recorder).ok());
  EXPECT_EQ(recorder.info.train_samples, 8);
  EXPECT_EQ(recorder.info.validation_samples, 2);
}

TEST(TrainerTest, SameSeedReplaysShufflingAndDropout) {
  auto toy = std::make_unique<Toy>();
  auto x = toy->graph.AddInput(Shape{2}, "x");
  auto drop = *toy->graph.AddLayer(*CreateLayer(testing::ParseSpec("dropout { rate: 0.5 }"), 1));
  toy->dense = *toy->graph.AddLayer(*CreateLayer(testing::ParseSpec("dense { units: 1 }"), 2));
  auto h = toy->graph.Call(drop, {*x});
  auto y = toy->graph.Call(toy->dense, {(*h)[0]});
  toy->model = std::move(*Model::Create(toy->graph, {*x}, {(*y)[0]}, "toy"));
  Trainer trainer(toy->model.get());
  ASSERT_TRUE(trainer
                  .Compile(Compile("optimizer { sgd { learning_rate: 0.1 } } "
                                   "loss { name: \"mse\" }"))
                  .ok());
  const Tensor initial = toy->dense->variable("kernel")->value.Clone();
  v1::FitConfig fit;
  fit.set_epochs(2);
  fit.set_batch_size(4);
  fit.set_seed(42);
  ASSERT_TRUE(trainer.Fit(Regression(20), fit).ok());
  const Tensor first = toy->dense->variable("kernel")->value.Clone();
  ASSERT_TRUE(toy->dense->SetWeight("kernel", initial).ok());
  ASSERT_TRUE(toy->dense->SetWeight("bias", Tensor(DType::kFloat32, Shape{1})).ok());
  ASSERT_TRUE(trainer.Fit(Regression(20), fit).ok());
  testing::ExpectTensorNear(toy->dense->variable("kernel")->value, first, 0, 0, "replayed fit");
}

TEST(TrainerTest, TooSmallForValidationSplit) {
  auto toy = MakeToy("dense { units: 1 }");
  Trainer trainer(toy->model.get());
  ASSERT_TRUE(trainer.Compile(Compile("optimizer { name: \"sgd\" } loss { name: \"mse\" }")).ok());
  v1::FitConfig fit;
  fit.set_validation_split(0.5f);
  auto result = trainer.Fit(Regression(1), fit);
  EXPECT_EQ(FieldPathOf(result.status()), "validation_split");
  EXPECT_THAT(std::string(result.status().message()),
              HasSubstr("not sufficient to split it into a validation and training set"));
}

TEST(TrainerTest, DataMustFitTheModel) {
  auto toy = MakeToy("dense { units: 3 activation: \"softmax\" }");
  Trainer trainer(toy->model.get());
  ASSERT_TRUE(trainer
                  .Compile(Compile("optimizer { name: \"sgd\" } "
                                   "loss { name: \"sparse_categorical_crossentropy\" } "
                                   "metrics: \"accuracy\""))
                  .ok());
  Dataset wrong;
  wrong.x.push_back(testing::RandomTensor(Shape{4, 5}, 1));
  wrong.y = Tensor(DType::kFloat32, Shape{4});
  auto a = trainer.Fit(wrong, v1::FitConfig());
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(a.status().message()), HasSubstr("expects data of shape (None, 2)"));
  EXPECT_THAT(std::string(a.status().message()), HasSubstr("received data of shape (4, 5)"));
  Dataset labels;
  labels.x.push_back(testing::RandomTensor(Shape{4, 2}, 1));
  labels.y = Tensor::FromVector(Shape{4}, {0, 1, 3, 2});
  auto b = trainer.Fit(labels, v1::FitConfig());
  EXPECT_THAT(std::string(b.status().message()),
              HasSubstr("Received a label value of 3 which is outside the valid range of [0, 3)"));
  Dataset rows;
  rows.x.push_back(testing::RandomTensor(Shape{4, 2}, 1));
  rows.y = Tensor(DType::kFloat32, Shape{3});
  EXPECT_EQ(trainer.Fit(rows, v1::FitConfig()).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(TrainerTest, CancelStopsWithinOneBatch) {
  auto toy = MakeToy("dense { units: 1 }");
  Trainer trainer(toy->model.get());
  ASSERT_TRUE(trainer.Compile(Compile("optimizer { name: \"sgd\" } loss { name: \"mse\" }")).ok());
  v1::FitConfig fit;
  fit.set_epochs(5);
  fit.set_batch_size(4);
  Recorder recorder;
  recorder.stop_after = 3;
  auto result = trainer.Fit(Regression(100), fit, &recorder);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(recorder.batches, 3);
}

TEST(TrainerTest, LossIncludesWeightPenalties) {
  auto toy = MakeToy(
      "dense { units: 1 kernel_regularizer { l2 { l2: 0.5 } } "
      "kernel_initializer { constant { value: 2 } } }");
  Trainer trainer(toy->model.get());
  ASSERT_TRUE(trainer
                  .Compile(Compile("optimizer { sgd { learning_rate: 0 } } "
                                   "loss { name: \"mse\" }"))
                  .ok());
  Dataset data = Regression(8);
  auto logs = trainer.Evaluate(data, v1::EvaluateConfig());
  ASSERT_TRUE(logs.ok());
  double mse = 0;
  for (int i = 0; i < 8; ++i) {
    const float* x = data.x[0].data<float>() + 2 * i;
    const double d = 2 * x[0] + 2 * x[1] - data.y.data<float>()[i];
    mse += d * d / 8;
  }
  EXPECT_NEAR((*logs)[0].second, mse + 0.5 * (4 + 4), 1e-4);
}

TEST(TrainerTest, PredictMatchesForwardAndKeepsRowOrder) {
  auto toy = MakeToy("dense { units: 3 activation: \"tanh\" }");
  Trainer trainer(toy->model.get());
  Dataset data;
  data.x.push_back(testing::RandomTensor(Shape{37, 2}, 9));
  v1::PredictConfig config;
  config.set_batch_size(8);
  auto out = trainer.Predict(data, config);
  ASSERT_TRUE(out.ok()) << out.status();
  testing::RunResult r = testing::Run(*toy->model, data.x, false);
  testing::ExpectTensorNear((*out)[0], r.outputs[0], 1e-6, 1e-6, "predictions");
}

}  // namespace
}  // namespace kiln
