// Finite-difference gradient checks for every layer other than DepthwiseConv2D (which has its
// own grid), in training and inference mode where they differ, and Dropout's behaviour.
#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/unit/test_util.h"

namespace kiln {
namespace {

struct GradCase {
  std::string name;
  std::string spec;
  std::vector<Shape> inputs;  // without batch
  bool training = false;
};

class LayerGradients : public ::testing::TestWithParam<GradCase> {};

TEST_P(LayerGradients, MatchFiniteDifferences) {
  const GradCase& c = GetParam();
  auto lm = testing::MakeLayerModel(testing::ParseSpec(c.spec), c.inputs, 17);
  ASSERT_TRUE(lm.ok()) << lm.status();
  std::vector<Tensor> x;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    std::vector<int64_t> dims = {3};
    dims.insert(dims.end(), c.inputs[i].dims().begin(), c.inputs[i].dims().end());
    x.push_back(testing::RandomTensor(Shape(dims), 40 + i));
  }
  testing::ExpectGradientsMatchFiniteDifferences(*(*lm)->model, x, c.training, 41);
}

const std::vector<GradCase>& GradCases() {
  static const auto* cases = new std::vector<GradCase>{
      GradCase{"conv2d_same_s2",
               "conv2d { filters: 4 kernel_size: 3 strides: 2 padding: \"same\" }",
               {Shape{7, 6, 3}}},
      GradCase{"conv2d_groups_cf_tanh",
               "conv2d { filters: 6 kernel_size: [2, 3] groups: 2 data_format: "
               "\"channels_first\" activation: \"tanh\" }",
               {Shape{4, 5, 6}}},
      GradCase{"conv2d_dilated_gelu",
               "conv2d { filters: 3 kernel_size: 3 dilation_rate: 2 activation: \"gelu\" }",
               {Shape{7, 7, 2}}},
      GradCase{"dense", "dense { units: 5 activation: \"sigmoid\" }", {Shape{6}}},
      GradCase{"dense_rank3", "dense { units: 4 use_bias: false }", {Shape{3, 6}}},
      GradCase{"dense_softmax", "dense { units: 4 activation: \"softmax\" }", {Shape{5}}},
      GradCase{"bn_training", "batch_normalization {}", {Shape{4, 4, 3}}, true},
      GradCase{"bn_inference", "batch_normalization {}", {Shape{4, 4, 3}}, false},
      GradCase{"bn_axis1_training",
               "batch_normalization { axis: 1 center: false }",
               {Shape{3, 4, 4}},
               true},
      GradCase{"bn_2d_training", "batch_normalization { scale: false }", {Shape{5}}, true},
      // Frozen (transfer learning): fit normalises with the moving statistics and passes the
      // gradient through; oneDNN refused the backward of a layer with gamma and beta.
      GradCase{
          "bn_frozen_training", "batch_normalization { trainable: false }", {Shape{4, 4, 3}}, true},
      GradCase{"bn_frozen_no_center_training",
               "batch_normalization { trainable: false center: false }",
               {Shape{6}},
               true},
      GradCase{"avg_pool_same",
               "average_pooling2d { pool_size: 3 strides: 2 padding: \"same\" }",
               {Shape{6, 7, 2}}},
      GradCase{
          "avg_pool_cf", "average_pooling2d { data_format: \"channels_first\" }", {Shape{2, 6, 6}}},
      GradCase{"max_pool", "max_pooling2d { pool_size: 2 }", {Shape{6, 6, 3}}},
      GradCase{"max_pool_same",
               "max_pooling2d { pool_size: 3 strides: 2 padding: \"same\" }",
               {Shape{5, 6, 2}}},
      GradCase{"gap", "global_average_pooling2d {}", {Shape{4, 5, 3}}},
      GradCase{"gap_keepdims_cf",
               "global_average_pooling2d { keepdims: true data_format: \"channels_first\" }",
               {Shape{3, 4, 5}}},
      GradCase{"flatten", "flatten {}", {Shape{3, 4, 2}}},
      GradCase{"flatten_cf", "flatten { data_format: \"channels_first\" }", {Shape{3, 4, 2}}},
      GradCase{"reshape", "reshape { target_shape: [2, -1] }", {Shape{3, 4}}},
      GradCase{"zero_padding", "zero_padding2d { padding: [1, 2, 0, 3] }", {Shape{3, 4, 2}}},
      GradCase{"add3", "add {}", {Shape{3, 4}, Shape{3, 4}, Shape{3, 4}}},
      // Keras 3 broadcasts Add's inputs over their non-batch dims, aligned from the right.
      GradCase{"add_broadcast", "add {}", {Shape{4, 4, 3}, Shape{1, 1, 3}}},
      GradCase{"add_broadcast_first_and_rank", "add {}", {Shape{3}, Shape{2, 3}, Shape{2, 1}}},
      GradCase{"add_broadcast_both", "add {}", {Shape{3, 1}, Shape{1, 4}}},
      GradCase{"concatenate", "concatenate {}", {Shape{3, 2}, Shape{3, 5}}},
      GradCase{"concatenate_axis1", "concatenate { axis: 1 }", {Shape{2, 3, 3}, Shape{1, 3, 3}}},
      GradCase{"softmax_axis1", "softmax { axis: 1 }", {Shape{4, 3}}},
      GradCase{"activation_mish", "activation { activation: \"mish\" }", {Shape{7}}},
      GradCase{"relu_capped_leaky",
               "relu { max_value: 0.8 negative_slope: 0.1 threshold: 0.2 }",
               {Shape{9}}},
      GradCase{"dropout_inference", "dropout { rate: 0.5 }", {Shape{6}}}};
  return *cases;
}

INSTANTIATE_TEST_SUITE_P(Layers, LayerGradients, ::testing::ValuesIn(GradCases()),
                         [](const auto& info) { return info.param.name; });

// Every layer class has a gradient check: here, or DepthwiseConv2D's own grid.
TEST(LayerGradientsCoverage, EveryLayerSpecCase) {
  std::set<int> covered = {v1::LayerSpec::kDepthwiseConv2D};
  for (const GradCase& c : GradCases()) covered.insert(testing::ParseSpec(c.spec).layer_case());
  const auto* oneof = v1::LayerSpec::descriptor()->FindOneofByName("layer");
  for (int i = 0; i < oneof->field_count(); ++i) {
    EXPECT_TRUE(covered.count(oneof->field(i)->number())) << oneof->field(i)->name();
  }
}

// Add's broadcast forward against a naive sum: (4, 4, 3) + (1, 1, 3) + (3,).
TEST(AddTest, BroadcastsAsKerasDoes) {
  auto lm = testing::MakeLayerModel(testing::ParseSpec("add {}"),
                                    {Shape{4, 4, 3}, Shape{1, 1, 3}, Shape{3}});
  ASSERT_TRUE(lm.ok()) << lm.status();
  const std::vector<Tensor> x = {testing::RandomTensor(Shape{2, 4, 4, 3}, 1),
                                 testing::RandomTensor(Shape{2, 1, 1, 3}, 2),
                                 testing::RandomTensor(Shape{2, 3}, 3)};
  const testing::RunResult run = testing::Run(*(*lm)->model, x, false);
  Tensor expected(DType::kFloat32, Shape{2, 4, 4, 3});
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t p = 0; p < 16; ++p) {
      for (int64_t c = 0; c < 3; ++c) {
        expected.data<float>()[(b * 16 + p) * 3 + c] = x[0].data<float>()[(b * 16 + p) * 3 + c] +
                                                       x[1].data<float>()[b * 3 + c] +
                                                       x[2].data<float>()[b * 3 + c];
      }
    }
  }
  testing::ExpectTensorNear(run.outputs[0], expected, 1e-6, 1e-6, "broadcast add");
}

TEST(DropoutTest, TrainingDropsAtTheRateAndScalesTheRest) {
  auto lm = testing::MakeLayerModel(testing::ParseSpec("dropout { rate: 0.3 }"), {Shape{1000}});
  ASSERT_TRUE(lm.ok());
  Tensor x(DType::kFloat32, Shape{4, 1000});
  for (float& v : x.values<float>()) v = 2.0f;
  const Tensor upstream = testing::RandomTensor(x.shape(), 3);
  testing::RunResult r = testing::Run(*(*lm)->model, {x}, true, &upstream);
  int dropped = 0;
  for (int64_t i = 0; i < x.num_elements(); ++i) {
    const float y = r.outputs[0].data<float>()[i];
    const float g = r.input_grads[0].data<float>()[i];
    if (y == 0.0f) {
      ++dropped;
      EXPECT_EQ(g, 0.0f);
    } else {
      EXPECT_NEAR(y, 2.0f / 0.7f, 1e-5);
      EXPECT_NEAR(g, upstream.data<float>()[i] / 0.7f, 1e-5);  // the same mask
    }
  }
  EXPECT_NEAR(double(dropped) / x.num_elements(), 0.3, 0.03);
}

TEST(DropoutTest, NoiseShapeBroadcastsOneDrawPerCell) {
  // noise_shape (batch, 1, channels): whole rows of the middle axis share their draw.
  auto lm = testing::MakeLayerModel(
      testing::ParseSpec("dropout { rate: 0.5 noise_shape: [-1, 1, -1] }"), {Shape{6, 50}});
  ASSERT_TRUE(lm.ok()) << lm.status();
  Tensor x(DType::kFloat32, Shape{2, 6, 50});
  for (float& v : x.values<float>()) v = 1.0f;
  testing::RunResult r = testing::Run(*(*lm)->model, {x}, true);
  const float* y = r.outputs[0].data<float>();
  int zeros = 0;
  for (int n = 0; n < 2; ++n) {
    for (int c = 0; c < 50; ++c) {
      const float first = y[(n * 6) * 50 + c];
      zeros += first == 0.0f;
      for (int t = 1; t < 6; ++t) EXPECT_EQ(y[(n * 6 + t) * 50 + c], first);
    }
  }
  EXPECT_GT(zeros, 20);
  EXPECT_LT(zeros, 80);
}

TEST(DropoutTest, InferenceIsIdentity) {
  auto lm = testing::MakeLayerModel(testing::ParseSpec("dropout { rate: 0.9 }"), {Shape{10}});
  ASSERT_TRUE(lm.ok());
  const Tensor x = testing::RandomTensor(Shape{2, 10}, 1);
  testing::RunResult r = testing::Run(*(*lm)->model, {x}, false);
  testing::ExpectTensorNear(r.outputs[0], x, 0, 0, "identity");
}

}  // namespace
}  // namespace kiln
