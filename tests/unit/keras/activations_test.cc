// Keras activations: names, closed-form values, derivatives (against central differences), and
// the oneDNN / custom kernels that run them (against the scalar formulas), in plain and in
// blocked, padded layouts.
#include "core/keras/activations.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/layers/registry.h"
#include "gtest/gtest.h"
#include "tests/unit/test_util.h"

namespace kiln {
namespace {

const char* const kNames[] = {"linear",    "relu",     "relu6",      "leaky_relu",   "elu",
                              "selu",      "gelu",     "sigmoid",    "hard_sigmoid", "tanh",
                              "softplus",  "softsign", "swish",      "silu",         "hard_swish",
                              "hard_silu", "mish",     "exponential"};

Activation Parse(const std::string& name) {
  absl::StatusOr<Activation> a = ParseActivation(name, "activation");
  EXPECT_TRUE(a.ok()) << a.status();
  return *a;
}

TEST(ActivationsTest, EmptyNameIsLinear) { EXPECT_EQ(Parse("").kind, ActivationKind::kLinear); }

TEST(ActivationsTest, UnknownNameUsesKerasMessage) {
  absl::StatusOr<Activation> a = ParseActivation("relu7", "dense.activation");
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(a.status().message(),
            "dense.activation: Could not interpret activation function identifier: relu7");
}

TEST(ActivationsTest, ClosedFormValues) {
  EXPECT_DOUBLE_EQ(ActivationValue(Parse("relu"), -2), 0);
  EXPECT_DOUBLE_EQ(ActivationValue(Parse("relu"), 3), 3);
  EXPECT_DOUBLE_EQ(ActivationValue(Parse("relu6"), 7), 6);
  EXPECT_NEAR(ActivationValue(Parse("leaky_relu"), -1), -0.2, 1e-7);  // slope 0.2f
  EXPECT_NEAR(ActivationValue(Parse("elu"), -1), std::exp(-1.0) - 1, 1e-12);
  EXPECT_NEAR(ActivationValue(Parse("selu"), -1),
              1.0507009873554805 * 1.6732632423543772 * (std::exp(-1.0) - 1), 1e-12);
  EXPECT_NEAR(ActivationValue(Parse("gelu"), 1), 0.8413447460685429, 1e-12);  // exact, not tanh
  EXPECT_NEAR(ActivationValue(Parse("sigmoid"), 0), 0.5, 1e-12);
  // Keras 3: relu6(x + 3) / 6, not Keras 2's 0.2x + 0.5.
  EXPECT_NEAR(ActivationValue(Parse("hard_sigmoid"), 1), 1.0 / 6 + 0.5, 1e-12);
  EXPECT_DOUBLE_EQ(ActivationValue(Parse("hard_sigmoid"), 2.9), 2.9 / 6 + 0.5);
  EXPECT_DOUBLE_EQ(ActivationValue(Parse("hard_sigmoid"), -3.5), 0);
  EXPECT_NEAR(ActivationValue(Parse("softplus"), 0), std::log(2.0), 1e-12);
  EXPECT_NEAR(ActivationValue(Parse("softsign"), 3), 0.75, 1e-12);
  EXPECT_NEAR(ActivationValue(Parse("swish"), 1), 1 / (1 + std::exp(-1.0)), 1e-12);
  EXPECT_NEAR(ActivationValue(Parse("hard_swish"), 1), 1 * (1.0 / 6 + 0.5), 1e-12);
  EXPECT_NEAR(ActivationValue(Parse("mish"), 1), std::tanh(std::log1p(std::exp(1.0))), 1e-12);
  EXPECT_NEAR(ActivationValue(Parse("exponential"), 1), std::exp(1.0), 1e-12);
}

TEST(ActivationsTest, GeneralizedReluFollowsKerasFormula) {
  // keras.activations.relu(x, negative_slope=0.1, max_value=2, threshold=0.5)
  const Activation a = GeneralizedRelu(0.1f, 2.0f, 0.5f);
  EXPECT_DOUBLE_EQ(ActivationValue(a, 1.0), 1.0);
  EXPECT_DOUBLE_EQ(ActivationValue(a, 5.0), 2.0);
  EXPECT_NEAR(ActivationValue(a, 0.2), 0.1 * (0.2 - 0.5), 1e-7);
  EXPECT_NEAR(ActivationValue(a, -1.0), 0.1 * (-1.5), 1e-7);
}

class ActivationByName : public ::testing::TestWithParam<const char*> {};

TEST_P(ActivationByName, DerivativeMatchesCentralDifference) {
  const Activation a = Parse(GetParam());
  for (double x : {-4.1, -2.2, -0.7, -0.3, 0.4, 0.9, 1.7, 2.6, 4.3, 6.8}) {
    const double h = 1e-6;
    const double numeric = (ActivationValue(a, x + h) - ActivationValue(a, x - h)) / (2 * h);
    EXPECT_NEAR(ActivationDerivative(a, x), numeric, 1e-5 * std::max(1.0, std::abs(numeric)))
        << GetParam() << " at " << x;
  }
}

// Runs the Activation layer (oneDNN eltwise or Kiln's loop) against the scalar formula, forward
// and backward.
TEST_P(ActivationByName, LayerMatchesScalarFormula) {
  const Activation a = Parse(GetParam());
  auto lm = testing::MakeLayerModel(
      testing::ParseSpec(absl::StrCat("activation { activation: \"", GetParam(), "\" }")),
      {Shape{5, 7}});
  ASSERT_TRUE(lm.ok()) << lm.status();
  const Tensor x = testing::RandomTensor(Shape{3, 5, 7}, 11, -5.0f, 5.0f);
  const Tensor upstream = testing::RandomTensor(Shape{3, 5, 7}, 12);
  testing::RunResult r = testing::Run(*(*lm)->model, {x}, false, &upstream);
  ASSERT_EQ(r.outputs.size(), 1u);
  Tensor expected(DType::kFloat32, x.shape()), expected_grad(DType::kFloat32, x.shape());
  for (int64_t i = 0; i < x.num_elements(); ++i) {
    const double v = x.data<float>()[i];
    expected.data<float>()[i] = float(ActivationValue(a, v));
    expected_grad.data<float>()[i] = float(upstream.data<float>()[i] * ActivationDerivative(a, v));
  }
  testing::ExpectTensorNear(r.outputs[0], expected, 1e-5, 1e-4, "output");
  testing::ExpectTensorNear(r.input_grads[0], expected_grad, 1e-5, 1e-3, "input gradient");
}

INSTANTIATE_TEST_SUITE_P(AllNames, ActivationByName, ::testing::ValuesIn(kNames),
                         [](const auto& info) { return std::string(info.param); });

TEST(ActivationsTest, SoftmaxAndLogSoftmaxNormaliseTheLastAxis) {
  for (const char* name : {"softmax", "log_softmax"}) {
    auto lm = testing::MakeLayerModel(
        testing::ParseSpec(absl::StrCat("activation { activation: \"", name, "\" }")),
        {Shape{4, 6}});
    ASSERT_TRUE(lm.ok()) << lm.status();
    const Tensor x = testing::RandomTensor(Shape{2, 4, 6}, 3, -3, 3);
    testing::RunResult r = testing::Run(*(*lm)->model, {x}, false);
    for (int64_t row = 0; row < 8; ++row) {
      const float* in = x.data<float>() + row * 6;
      double max = in[0], sum = 0;
      for (int j = 1; j < 6; ++j) max = std::max<double>(max, in[j]);
      for (int j = 0; j < 6; ++j) sum += std::exp(in[j] - max);
      for (int j = 0; j < 6; ++j) {
        const double log_p = in[j] - max - std::log(sum);
        const double expected = std::string(name) == "softmax" ? std::exp(log_p) : log_p;
        EXPECT_NEAR(r.outputs[0].data<float>()[row * 6 + j], expected, 1e-5) << name;
      }
    }
  }
}

// Kiln's own kernels must keep the padding of blocked layouts at zero: hard_sigmoid(0) = 0.5
// would otherwise leak into the padded channels that the next convolution reads.
TEST(ActivationsTest, CustomKernelOnPaddedBlockedLayout) {
  Graph graph;
  auto input = graph.AddInput(Shape{6, 6, 3}, "x");
  ASSERT_TRUE(input.ok());
  TensorId t = *input;
  std::vector<std::shared_ptr<Layer>> layers;
  for (const char* text :
       {"conv2d { filters: 3 kernel_size: 3 padding: \"same\" }",
        "activation { activation: \"hard_sigmoid\" }",
        "conv2d { filters: 5 kernel_size: 3 padding: \"same\" kernel_initializer { ones {} } }"}) {
    auto layer = CreateLayer(testing::ParseSpec(text), 3);
    ASSERT_TRUE(layer.ok()) << layer.status();
    auto added = graph.AddLayer(std::move(*layer));
    ASSERT_TRUE(added.ok());
    layers.push_back(*added);
    auto out = graph.Call(*added, {t});
    ASSERT_TRUE(out.ok()) << out.status();
    t = (*out)[0];
  }
  auto model = Model::Create(graph, {*input}, {t}, "m");
  ASSERT_TRUE(model.ok());
  const Tensor x = testing::RandomTensor(Shape{2, 6, 6, 3}, 5);
  testing::RunResult r = testing::Run(**model, {x}, false);
  // With an all-ones second kernel, each output is the sum of the 3x3x3 neighbourhood of
  // hard_sigmoid(conv1(x)); recompute it from the first layer's own output.
  auto first = Model::Create(graph, {*input}, {graph.nodes()[2].outputs[0]}, "first");
  ASSERT_TRUE(first.ok());
  testing::RunResult h = testing::Run(**first, {x}, false);
  const float* hs = h.outputs[0].data<float>();
  for (int n = 0; n < 2; ++n) {
    for (int i = 0; i < 6; ++i) {
      for (int j = 0; j < 6; ++j) {
        double sum = 0;
        for (int p = -1; p <= 1; ++p) {
          for (int q = -1; q <= 1; ++q) {
            if (i + p < 0 || i + p >= 6 || j + q < 0 || j + q >= 6) continue;
            for (int c = 0; c < 3; ++c) sum += hs[((n * 6 + i + p) * 6 + j + q) * 3 + c];
          }
        }
        EXPECT_NEAR(r.outputs[0].data<float>()[((n * 6 + i) * 6 + j) * 5], sum, 1e-4);
      }
    }
  }
}

}  // namespace
}  // namespace kiln
