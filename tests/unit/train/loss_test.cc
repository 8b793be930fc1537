// Keras losses: the documented examples, from_logits forms, gradients by central differences,
// target shape checks; and the accuracy metrics.
#include "core/train/loss.h"

#include <cmath>

#include "core/base/status.h"
#include "core/train/metrics.h"
#include "gtest/gtest.h"

namespace kiln {
namespace {

LossFunction Loss(const std::string& name, bool logits = false) {
  v1::Loss spec;
  spec.set_name(name);
  spec.set_from_logits(logits);
  auto loss = ResolveLoss(spec, "loss");
  EXPECT_TRUE(loss.ok()) << loss.status();
  return *loss;
}

TEST(LossTest, KerasDocumentationExamples) {
  // keras.losses.CategoricalCrossentropy docstring.
  const std::vector<float> pred = {0.05f, 0.95f, 0.0f, 0.1f, 0.8f, 0.1f};
  const std::vector<float> onehot = {0, 1, 0, 0, 0, 1};
  EXPECT_NEAR(
      Loss("categorical_crossentropy").Compute(pred.data(), onehot.data(), Shape{2, 3}, nullptr),
      1.177, 1e-3);
  const std::vector<float> labels = {1, 2};
  EXPECT_NEAR(Loss("sparse_categorical_crossentropy")
                  .Compute(pred.data(), labels.data(), Shape{2, 3}, nullptr),
              1.177, 1e-3);
  // keras.losses.BinaryCrossentropy docstring (probabilities).
  const std::vector<float> bp = {0.6f, 0.4f, 0.4f, 0.6f}, bt = {0, 1, 0, 0};
  EXPECT_NEAR(Loss("binary_crossentropy").Compute(bp.data(), bt.data(), Shape{2, 2}, nullptr),
              0.815, 1e-3);
  // keras.losses.BinaryCrossentropy(from_logits=True) docstring.
  const std::vector<float> logits = {-18.6f, 0.51f, 2.94f, -12.8f}, lt = {0, 1, 0, 0};
  EXPECT_NEAR(
      Loss("binary_crossentropy", true).Compute(logits.data(), lt.data(), Shape{4, 1}, nullptr),
      0.865, 1e-3);
  // keras.losses.MeanSquaredError docstring.
  const std::vector<float> mp = {1, 1, 1, 0}, mt = {0, 1, 0, 0};
  EXPECT_NEAR(Loss("mse").Compute(mp.data(), mt.data(), Shape{2, 2}, nullptr), 0.5, 1e-6);
}

TEST(LossTest, LogitsFormsEqualProbabilityForms) {
  const std::vector<float> logits = {1.0f, -0.5f, 2.0f, 0.3f, 0.2f, -1.0f};
  std::vector<float> probs(6);
  for (int r = 0; r < 2; ++r) {
    double sum = 0;
    for (int j = 0; j < 3; ++j) sum += std::exp(logits[r * 3 + j]);
    for (int j = 0; j < 3; ++j) probs[r * 3 + j] = float(std::exp(logits[r * 3 + j]) / sum);
  }
  const std::vector<float> labels = {2, 0};
  EXPECT_NEAR(Loss("sparse_categorical_crossentropy", true)
                  .Compute(logits.data(), labels.data(), Shape{2, 3}, nullptr),
              Loss("sparse_categorical_crossentropy")
                  .Compute(probs.data(), labels.data(), Shape{2, 3}, nullptr),
              1e-6);
}

TEST(LossTest, GradientsMatchCentralDifferences) {
  struct Case {
    std::string name;
    bool logits;
    std::vector<float> target;
  };
  const std::vector<float> base = {0.2f, 0.5f, 0.3f, 0.6f, 0.1f, 0.3f};
  for (const Case& c :
       std::vector<Case>{{"categorical_crossentropy", false, {0, 1, 0, 0.2f, 0.3f, 0.5f}},
                         {"categorical_crossentropy", true, {0, 1, 0, 0.2f, 0.3f, 0.5f}},
                         {"sparse_categorical_crossentropy", false, {1, 2}},
                         {"sparse_categorical_crossentropy", true, {0, 2}},
                         {"binary_crossentropy", false, {0, 1, 1, 0, 0.5f, 1}},
                         {"binary_crossentropy", true, {0, 1, 1, 0, 0.5f, 1}},
                         {"mean_squared_error", false, {0, 1, 1, 0, 0.5f, 1}}}) {
    const LossFunction loss = Loss(c.name, c.logits);
    std::vector<float> p = base, grad(6);
    loss.Compute(p.data(), c.target.data(), Shape{2, 3}, grad.data());
    for (int i = 0; i < 6; ++i) {
      const float saved = p[i];
      const double h = 1e-3;
      p[i] = saved + float(h);
      const double plus = loss.Compute(p.data(), c.target.data(), Shape{2, 3}, nullptr);
      p[i] = saved - float(h);
      const double minus = loss.Compute(p.data(), c.target.data(), Shape{2, 3}, nullptr);
      p[i] = saved;
      EXPECT_NEAR(grad[i], (plus - minus) / (2 * h), 2e-3) << c.name << " logits=" << c.logits;
    }
  }
}

TEST(LossTest, ResolutionAndTargetShapes) {
  v1::Loss spec;
  EXPECT_EQ(FieldPathOf(ResolveLoss(spec, "loss").status()), "loss.name");
  spec.set_name("hinge");
  EXPECT_EQ(FieldPathOf(ResolveLoss(spec, "loss").status()), "loss.name");
  EXPECT_EQ(Loss("SparseCategoricalCrossentropy").name, "sparse_categorical_crossentropy");
  const LossFunction sparse = Loss("sparse_categorical_crossentropy");
  EXPECT_TRUE(sparse.CheckTargetShape(Shape{-1, 10}, Shape{60000}).ok());
  EXPECT_TRUE(sparse.CheckTargetShape(Shape{-1, 10}, Shape{60000, 1}).ok());
  EXPECT_FALSE(sparse.CheckTargetShape(Shape{-1, 10}, Shape{60000, 10}).ok());
  EXPECT_TRUE(Loss("mse").CheckTargetShape(Shape{-1, 3}, Shape{5, 3}).ok());
  EXPECT_FALSE(Loss("mse").CheckTargetShape(Shape{-1, 3}, Shape{5, 2}).ok());
}

TEST(MetricsTest, AccuracyResolvesFromShapesAsKerasDoes) {
  EXPECT_EQ(ResolveMetric("accuracy", Shape{-1, 10}, Shape{5}, "m")->kind(),
            MetricKind::kSparseCategoricalAccuracy);
  EXPECT_EQ(ResolveMetric("acc", Shape{-1, 10}, Shape{5, 1}, "m")->kind(),
            MetricKind::kSparseCategoricalAccuracy);
  EXPECT_EQ(ResolveMetric("accuracy", Shape{-1, 10}, Shape{5, 10}, "m")->kind(),
            MetricKind::kCategoricalAccuracy);
  EXPECT_EQ(ResolveMetric("accuracy", Shape{-1, 1}, Shape{5, 1}, "m")->kind(),
            MetricKind::kBinaryAccuracy);
  EXPECT_EQ(ResolveMetric("accuracy", Shape{-1, 10}, Shape{5}, "m")->name(), "accuracy");
  EXPECT_FALSE(ResolveMetric("auc", Shape{-1, 10}, Shape{5}, "metrics[0]").ok());
}

TEST(MetricsTest, RunningMeanOverBatches) {
  Metric m(MetricKind::kSparseCategoricalAccuracy, "accuracy");
  const std::vector<float> p1 = {0.1f, 0.9f, 0.8f, 0.2f}, t1 = {1, 1};  // 1 of 2
  const std::vector<float> p2 = {0.3f, 0.7f}, t2 = {1};                 // 1 of 1
  m.Update(p1.data(), t1.data(), Shape{2, 2});
  m.Update(p2.data(), t2.data(), Shape{1, 2});
  EXPECT_NEAR(m.Result(), 2.0 / 3.0, 1e-12);
  Metric b(MetricKind::kBinaryAccuracy, "binary_accuracy");
  const std::vector<float> bp = {0.7f, 0.2f, 0.6f}, bt = {1, 0, 0};
  b.Update(bp.data(), bt.data(), Shape{3, 1});
  EXPECT_NEAR(b.Result(), 2.0 / 3.0, 1e-12);
}

}  // namespace
}  // namespace kiln
