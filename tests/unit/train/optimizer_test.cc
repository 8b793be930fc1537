// Optimizers: Keras 3's update rules applied by hand for a few steps, clipping, weight decay,
// constraints after the update, and argument validation.
#include "core/train/optimizer.h"

#include <cmath>

#include "core/base/status.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace kiln {
namespace {

std::unique_ptr<Optimizer> Make(const std::string& text) {
  v1::Optimizer spec;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &spec)) << text;
  auto opt = Optimizer::Create(spec, "optimizer");
  EXPECT_TRUE(opt.ok()) << opt.status();
  return std::move(*opt);
}

Variable MakeVariable(std::vector<float> w) {
  Variable v;
  v.value = Tensor::FromVector(Shape{int64_t(w.size())}, w);
  v.grad = Tensor(DType::kFloat32, v.value.shape());
  return v;
}

void SetGrad(Variable& v, std::vector<float> g) {
  std::copy(g.begin(), g.end(), v.grad.data<float>());
}

TEST(OptimizerTest, PlainSgd) {
  auto opt = Make("name: \"sgd\"");
  EXPECT_FLOAT_EQ(opt->learning_rate(), 0.01f);
  Variable v = MakeVariable({1.0f, -2.0f});
  SetGrad(v, {0.5f, -1.0f});
  const uint64_t version = v.version;
  opt->Apply({&v});
  EXPECT_FLOAT_EQ(v.value.data<float>()[0], 1.0f - 0.01f * 0.5f);
  EXPECT_FLOAT_EQ(v.value.data<float>()[1], -2.0f + 0.01f);
  EXPECT_GT(v.version, version);
  EXPECT_EQ(opt->iterations(), 1);
}

TEST(OptimizerTest, SgdMomentumAndNesterov) {
  for (bool nesterov : {false, true}) {
    auto opt = Make(nesterov ? "sgd { learning_rate: 0.1 momentum: 0.9 nesterov: true }"
                             : "sgd { learning_rate: 0.1 momentum: 0.9 }");
    Variable v = MakeVariable({1.0f});
    double w = 1.0, m = 0.0;
    for (float g : {0.5f, -0.25f, 1.0f}) {
      SetGrad(v, {g});
      opt->Apply({&v});
      m = 0.9 * m - 0.1 * g;
      w += nesterov ? 0.9 * m - 0.1 * g : m;
      EXPECT_NEAR(v.value.data<float>()[0], w, 1e-6) << "nesterov=" << nesterov;
    }
  }
}

TEST(OptimizerTest, AdamAndAmsgrad) {
  for (bool amsgrad : {false, true}) {
    auto opt = Make(amsgrad ? "adam { learning_rate: 0.01 amsgrad: true }"
                            : "adam { learning_rate: 0.01 }");
    Variable v = MakeVariable({0.5f});
    double w = 0.5, m = 0, s = 0, s_hat = 0;
    int step = 0;
    for (float g : {0.3f, -0.1f, 0.2f, 0.05f}) {
      SetGrad(v, {g});
      opt->Apply({&v});
      ++step;
      const double alpha = 0.01 * std::sqrt(1 - std::pow(0.999, step)) / (1 - std::pow(0.9, step));
      m += (g - m) * (1 - 0.9);
      s += (double(g) * g - s) * (1 - 0.999);
      s_hat = std::max(s_hat, s);
      w -= m * alpha / (std::sqrt(amsgrad ? s_hat : s) + 1e-7);
      EXPECT_NEAR(v.value.data<float>()[0], w, 1e-6) << "amsgrad=" << amsgrad;
    }
  }
}

TEST(OptimizerTest, ClippingAndWeightDecay) {
  auto clipnorm = Make("sgd { learning_rate: 1 clipnorm: 1 }");
  Variable a = MakeVariable({0, 0});
  SetGrad(a, {3, 4});  // norm 5 -> scaled to 1
  clipnorm->Apply({&a});
  EXPECT_NEAR(a.value.data<float>()[0], -0.6, 1e-6);
  EXPECT_NEAR(a.value.data<float>()[1], -0.8, 1e-6);

  auto clipvalue = Make("sgd { learning_rate: 1 clipvalue: 0.5 }");
  Variable b = MakeVariable({0, 0});
  SetGrad(b, {3, -0.25f});
  clipvalue->Apply({&b});
  EXPECT_NEAR(b.value.data<float>()[0], -0.5, 1e-6);
  EXPECT_NEAR(b.value.data<float>()[1], 0.25, 1e-6);

  auto global = Make("sgd { learning_rate: 1 global_clipnorm: 1 }");
  Variable c = MakeVariable({0}), d = MakeVariable({0});
  SetGrad(c, {3});
  SetGrad(d, {4});
  global->Apply({&c, &d});
  EXPECT_NEAR(c.value.data<float>()[0], -0.6, 1e-6);
  EXPECT_NEAR(d.value.data<float>()[0], -0.8, 1e-6);

  auto decay = Make("sgd { learning_rate: 0.1 weight_decay: 0.5 }");
  Variable e = MakeVariable({2});
  SetGrad(e, {1});
  decay->Apply({&e});
  EXPECT_NEAR(e.value.data<float>()[0], 2 - 2 * 0.5 * 0.1 - 0.1 * 1, 1e-6);
}

TEST(OptimizerTest, ConstraintAppliesAfterTheUpdate) {
  auto opt = Make("sgd { learning_rate: 1 }");
  Variable v = MakeVariable({0.5f, -0.5f});
  v.constraint.emplace();
  v.constraint->mutable_non_neg();
  SetGrad(v, {1.0f, -1.0f});  // -> -0.5, 0.5 -> NonNeg -> 0, 0.5
  opt->Apply({&v});
  EXPECT_EQ(v.value.data<float>()[0], 0.0f);
  EXPECT_NEAR(v.value.data<float>()[1], 0.5f, 1e-7);
}

TEST(OptimizerTest, Validation) {
  auto error = [](const std::string& text) {
    v1::Optimizer spec;
    EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &spec));
    return Optimizer::Create(spec, "optimizer").status();
  };
  EXPECT_EQ(FieldPathOf(error("")), "optimizer");
  EXPECT_EQ(FieldPathOf(error("name: \"rmsprop\"")), "optimizer.name");
  EXPECT_EQ(FieldPathOf(error("sgd { momentum: 1.5 }")), "optimizer.sgd.momentum");
  EXPECT_EQ(error("sgd { momentum: 1.5 }").message(),
            "optimizer.sgd.momentum: `momentum` must be a float between [0, 1].");
  EXPECT_EQ(FieldPathOf(error("adam { learning_rate: -1 }")), "optimizer.adam.learning_rate");
  EXPECT_EQ(FieldPathOf(error("adam { beta_1: 1 }")), "optimizer.adam.beta_1");
  EXPECT_EQ(FieldPathOf(error("sgd { clipnorm: 1 clipvalue: 1 }")), "optimizer.sgd");
}

}  // namespace
}  // namespace kiln
