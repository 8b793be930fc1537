// ExecutionPlan: gradient sums for tensors with several uses, accumulation for shared layers,
// residual blocks across blocked layouts, activity regularizers, and no allocation growth over
// training steps.
#include "core/graph/plan.h"

#include <malloc.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "core/dnnl/engine.h"
#include "core/graph/model.h"
#include "core/layers/registry.h"
#include "gtest/gtest.h"
#include "tests/unit/test_util.h"

namespace kiln {
namespace {

class Builder {
 public:
  TensorId Input(Shape shape) { return *graph.AddInput(shape, ""); }
  std::shared_ptr<kiln::Layer> NewLayer(const std::string& text) {
    auto layer = CreateLayer(testing::ParseSpec(text), ++seed_);
    EXPECT_TRUE(layer.ok()) << layer.status();
    return *graph.AddLayer(std::move(*layer));
  }
  TensorId Call(const std::shared_ptr<kiln::Layer>& layer, std::vector<TensorId> in) {
    auto out = graph.Call(layer, in);
    EXPECT_TRUE(out.ok()) << out.status();
    return (*out)[0];
  }
  TensorId Apply(const std::string& text, std::vector<TensorId> in) {
    return Call(NewLayer(text), in);
  }
  std::unique_ptr<Model> Make(std::vector<TensorId> in, std::vector<TensorId> out) {
    auto model = Model::Create(graph, in, out, "m");
    EXPECT_TRUE(model.ok()) << model.status();
    return std::move(*model);
  }
  Graph graph;

 private:
  uint64_t seed_ = 0;
};

TEST(PlanTest, TensorWithSeveralUsesSumsItsGradients) {
  Builder b;
  const TensorId x = b.Input(Shape{5});
  const TensorId h = b.Apply("dense { units: 4 activation: \"tanh\" }", {x});
  const TensorId p = b.Apply("dense { units: 3 }", {h});
  const TensorId q = b.Apply("dense { units: 3 activation: \"sigmoid\" }", {h});
  const TensorId s = b.Apply("add {}", {p, q, p});  // p used twice by one layer
  auto model = b.Make({x}, {s});
  testing::ExpectGradientsMatchFiniteDifferences(*model, {testing::RandomTensor(Shape{3, 5}, 1)},
                                                 false, 2);
}

TEST(PlanTest, SharedLayerAccumulatesWeightGradients) {
  Builder b;
  const TensorId x1 = b.Input(Shape{4});
  const TensorId x2 = b.Input(Shape{4});
  auto shared = b.NewLayer("dense { units: 3 activation: \"tanh\" }");
  const TensorId y1 = b.Call(shared, {x1});
  const TensorId y2 = b.Call(shared, {x2});
  const TensorId z = b.Call(shared, {b.Apply("dense { units: 4 }", {y2})});
  auto model = b.Make({x1, x2}, {b.Apply("concatenate {}", {y1, z})});
  testing::ExpectGradientsMatchFiniteDifferences(
      *model, {testing::RandomTensor(Shape{2, 4}, 3), testing::RandomTensor(Shape{2, 4}, 4)}, false,
      5);
}

TEST(PlanTest, ResidualBlockThroughBlockedLayouts) {
  Builder b;
  const TensorId x = b.Input(Shape{6, 6, 16});
  TensorId h = b.Apply("conv2d { filters: 16 kernel_size: 3 padding: \"same\" }", {x});
  h = b.Apply("batch_normalization {}", {h});
  h = b.Apply("activation { activation: \"tanh\" }", {h});
  h = b.Apply("depthwise_conv2d { kernel_size: 3 padding: \"same\" }", {h});
  const TensorId sum = b.Apply("add {}", {h, x});
  const TensorId pooled = b.Apply("global_average_pooling2d {}", {sum});
  auto model = b.Make({x}, {pooled});
  testing::ExpectGradientsMatchFiniteDifferences(
      *model, {testing::RandomTensor(Shape{2, 6, 6, 16}, 6)}, true, 7, 3e-2);
}

TEST(PlanTest, ActivityRegularizerPenaltyIsDividedByBatchAndBackpropagates) {
  Builder b;
  const TensorId x = b.Input(Shape{3});
  auto dense = b.NewLayer("dense { units: 2 activity_regularizer { l2 { l2: 0.5 } } }");
  auto model = b.Make({x}, {b.Call(dense, {x})});
  const Tensor input = testing::RandomTensor(Shape{4, 3}, 8);
  auto plan = ExecutionPlan::Create(*model, 4, PlanOptions{.training = true, .backward = true});
  ASSERT_TRUE(plan.ok());
  dnnl::stream stream = NewStream();
  std::copy_n(input.data<float>(), 12, (*plan)->input_data(0));
  (*plan)->Forward(stream);
  double sq = 0;
  for (int i = 0; i < 8; ++i) sq += double((*plan)->output_data(0)[i]) * (*plan)->output_data(0)[i];
  EXPECT_NEAR((*plan)->activity_penalty(), 0.5 * sq / 4, 1e-6);
  // With a zero loss gradient, the kernel gradient is the penalty's: X^T (2 * 0.5 * Y / 4).
  std::fill_n((*plan)->output_grad_data(0), 8, 0.0f);
  (*plan)->Backward(stream);
  const float* y = (*plan)->output_data(0);
  const Tensor& grad = dense->variable("kernel")->grad;
  for (int i = 0; i < 3; ++i) {
    for (int o = 0; o < 2; ++o) {
      double expected = 0;
      for (int n = 0; n < 4; ++n) expected += input.data<float>()[n * 3 + i] * y[n * 2 + o] / 4;
      EXPECT_NEAR(grad.data<float>()[i * 2 + o], expected, 1e-5);
    }
  }
}

TEST(PlanTest, SameTensorListedTwiceAsOutputGetsBothGradients) {
  Builder b;
  const TensorId x = b.Input(Shape{3});
  auto dense = b.NewLayer("dense { units: 2 }");
  const TensorId y = b.Call(dense, {x});
  auto twice = b.Make({x}, {y, y});
  auto once = b.Make({x}, {y});
  const Tensor input = testing::RandomTensor(Shape{4, 3}, 2);
  dnnl::stream stream = NewStream();
  auto gradient_of = [&](Model& model, const std::vector<float>& scale) {
    auto plan = ExecutionPlan::Create(model, 4, PlanOptions{.backward = true});
    EXPECT_TRUE(plan.ok());
    std::copy_n(input.data<float>(), 12, (*plan)->input_data(0));
    (*plan)->Forward(stream);
    for (int o = 0; o < (*plan)->num_outputs(); ++o)
      std::fill_n((*plan)->output_grad_data(o), 8, scale[o]);
    (*plan)->Backward(stream);
    return dense->variable("kernel")->grad.Clone();
  };
  const Tensor both = gradient_of(*twice, {1.0f, 2.0f});
  const Tensor sum = gradient_of(*once, {3.0f});
  testing::ExpectTensorNear(both, sum, 1e-6, 1e-6, "kernel gradient");
}

TEST(PlanTest, WeightOnlyBackwardMatchesFiniteDifferences) {
  // The production configuration: no gradients wanted for the model's inputs, so the first
  // layers compute weight gradients only.
  Builder b;
  const TensorId x = b.Input(Shape{5, 5, 3});
  TensorId h = b.Apply("conv2d { filters: 4 kernel_size: 3 activation: \"tanh\" }", {x});
  h = b.Apply("depthwise_conv2d { kernel_size: 2 depth_multiplier: 2 }", {h});
  h = b.Apply("flatten {}", {h});
  auto model = b.Make({x}, {b.Apply("dense { units: 3 }", {h})});
  testing::ExpectGradientsMatchFiniteDifferences(
      *model, {testing::RandomTensor(Shape{2, 5, 5, 3}, 4)}, false, 5, 2e-2, 24, 5e-3,
      /*check_input_gradients=*/false);
}

TEST(PlanTest, OversizedPlansAreRefusedBeforeAllocating) {
  Builder b;
  const TensorId x = b.Input(Shape{1024, 1024});
  auto model = b.Make({x}, {b.Apply("dense { units: 16 }", {x})});
  auto too_many = ExecutionPlan::Create(*model, 4096, PlanOptions{});
  EXPECT_EQ(too_many.status().code(), absl::StatusCode::kResourceExhausted);
  auto over_budget =
      ExecutionPlan::Create(*model, 64, PlanOptions{.backward = true, .max_bytes = 1 << 20});
  EXPECT_EQ(over_budget.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(std::string(over_budget.status().message()).find("use a smaller batch_size"),
            std::string::npos);
}

// Inference plans fold BatchNormalization into the preceding convolution and run the following
// activation as a post-op; the result must equal the layer-by-layer computation (which plans
// with a backward pass always use).
TEST(PlanTest, InferenceFusionMatchesLayerByLayer) {
  for (const char* format : {"channels_last", "channels_first"}) {
    Builder b;
    const bool last = std::string(format) == "channels_last";
    const TensorId x = b.Input(last ? Shape{9, 9, 5} : Shape{5, 9, 9});
    const std::string df = absl::StrCat(" data_format: \"", format, "\"");
    const int axis = last ? -1 : 1;
    TensorId h = b.Apply(absl::StrCat("conv2d { filters: 8 kernel_size: 3", df, " }"), {x});
    h = b.Apply(absl::StrCat("batch_normalization { axis: ", axis, " }"), {h});
    h = b.Apply("relu {}", {h});
    h = b.Apply(absl::StrCat("depthwise_conv2d { kernel_size: 3 strides: 2 padding: \"same\" "
                             "use_bias: false",
                             df, " }"),
                {h});
    h = b.Apply(absl::StrCat("batch_normalization { axis: ", axis, " center: false }"), {h});
    h = b.Apply("activation { activation: \"relu6\" }", {h});
    // A BN whose input is also read elsewhere is not fused.
    const TensorId c = b.Apply(absl::StrCat("conv2d { filters: 8 kernel_size: 1", df, " }"), {h});
    const TensorId n =
        b.Apply(absl::StrCat("batch_normalization { axis: ", axis, " scale: false }"), {c});
    const TensorId sum = b.Apply("add {}", {n, c});
    h = b.Apply(absl::StrCat("conv2d { filters: 4 kernel_size: 1", df, " }"), {sum});
    h = b.Apply(absl::StrCat("batch_normalization { axis: ", axis, " epsilon: 0.01 }"), {h});
    h = b.Apply("activation { activation: \"swish\" }", {h});
    auto model = b.Make({x}, {h});
    // Non-trivial statistics and affine parameters.
    uint64_t seed = 100;
    for (Layer* layer : model->layers()) {
      for (const auto& v : layer->variables()) {
        const bool positive = v->name == "moving_variance" || v->name == "gamma";
        Tensor t = testing::RandomTensor(v->value.shape(), ++seed, positive ? 0.5f : -0.5f,
                                         positive ? 1.5f : 0.5f);
        ASSERT_TRUE(layer->SetWeight(v->name, t).ok());
      }
    }
    const Tensor input = testing::RandomTensor(last ? Shape{3, 9, 9, 5} : Shape{3, 5, 9, 9}, 7);
    dnnl::stream stream = NewStream();
    auto run = [&](bool backward) {
      auto plan = ExecutionPlan::Create(*model, 3, PlanOptions{.backward = backward});
      EXPECT_TRUE(plan.ok()) << plan.status();
      // 12 layer calls; inference fuses conv+bn+relu, depthwise+bn+relu6, conv+bn+swish.
      EXPECT_EQ((*plan)->num_ops(), backward ? 12 : 6);
      std::copy_n(input.data<float>(), input.num_elements(), (*plan)->input_data(0));
      (*plan)->Forward(stream);
      Tensor out(DType::kFloat32, (*plan)->output_shape(0));
      std::copy_n((*plan)->output_data(0), out.num_elements(), out.data<float>());
      return out;
    };
    const Tensor unfused = run(true);
    const Tensor fused = run(false);
    testing::ExpectTensorNear(fused, unfused, 1e-5, 1e-4, format);
    // Weight changes reach the fused op's folded copy.
    Layer* bn = model->layers()[1];
    ASSERT_TRUE(bn->SetWeight("moving_mean", testing::RandomTensor(Shape{8}, 77)).ok());
    testing::ExpectTensorNear(run(false), run(true), 1e-5, 1e-4, "after a weight change");
  }
}

// The service builds a model's plans on one worker thread and runs, evicts and destroys them on
// others. With oneDNN's default per-thread scratchpad, a Predict that evicted a plan on a new
// thread crashed kiln-server; every primitive now brings its own scratchpad.
TEST(PlanTest, PlansBuiltRunAndEvictedOnOtherThreadsAgree) {
  Builder b;
  const TensorId x = b.Input(Shape{28, 28, 1});
  TensorId h =
      b.Apply("conv2d { filters: 16 kernel_size: 3 strides: 2 activation: \"relu\" }", {x});
  h = b.Apply(
      "depthwise_conv2d { kernel_size: 3 padding: \"same\" depth_multiplier: 2 "
      "activation: \"relu\" }",
      {h});
  h = b.Apply("max_pooling2d {}", {h});
  h = b.Apply("flatten {}", {h});
  auto model = b.Make({x}, {b.Apply("dense { units: 10 activation: \"softmax\" }", {h})});
  // Each batch size a plan of its own, built and run on a thread of its own: more batch sizes
  // than the model caches plans for, so later threads evict and destroy earlier threads' plans.
  auto predict = [&](int64_t batch) {
    const Tensor input = testing::RandomTensor(Shape{batch, 28, 28, 1}, uint64_t(batch));
    absl::StatusOr<ExecutionPlan*> plan = model->GetPlan(batch, /*training=*/false);
    EXPECT_TRUE(plan.ok()) << plan.status();
    std::copy_n(input.data<float>(), input.num_elements(), (*plan)->input_data(0));
    dnnl::stream stream = NewStream();
    (*plan)->Forward(stream);
    return std::vector<float>((*plan)->output_data(0), (*plan)->output_data(0) + batch * 10);
  };
  std::vector<std::vector<float>> on_threads;
  for (int64_t batch = 1; batch <= 9; ++batch) {
    std::thread([&] { on_threads.push_back(predict(batch)); }).join();
  }
  for (int64_t batch = 1; batch <= 9; ++batch) {
    const std::vector<float> here = predict(batch);
    ASSERT_EQ(here.size(), on_threads[batch - 1].size());
    for (size_t i = 0; i < here.size(); ++i) {
      EXPECT_NEAR(here[i], on_threads[batch - 1][i], 1e-6) << "batch " << batch << " at " << i;
    }
  }
}

// The same for training plans, whose backward pass sums the gradients of a tensor used twice.
TEST(PlanTest, TrainingPlansOnOtherThreadsAgree) {
  Builder b;
  const TensorId x = b.Input(Shape{6});
  const TensorId h = b.Apply("dense { units: 5 activation: \"tanh\" }", {x});
  const TensorId twice = b.Apply("add {}", {h, h});
  auto model = b.Make({x}, {b.Apply("dense { units: 3 }", {twice})});
  Variable* kernel = model->layers()[0]->variables()[0].get();
  auto gradient = [&](int64_t batch) {
    const Tensor input = testing::RandomTensor(Shape{batch, 6}, uint64_t(batch));
    absl::StatusOr<ExecutionPlan*> plan = model->GetPlan(batch, /*training=*/true);
    EXPECT_TRUE(plan.ok()) << plan.status();
    std::copy_n(input.data<float>(), input.num_elements(), (*plan)->input_data(0));
    dnnl::stream stream = NewStream();
    (*plan)->Forward(stream);
    std::fill_n((*plan)->output_grad_data(0), batch * 3, 0.1f);
    (*plan)->Backward(stream);
    return std::vector<float>(kernel->grad.data<float>(),
                              kernel->grad.data<float>() + kernel->grad.num_elements());
  };
  std::vector<std::vector<float>> on_threads;
  for (int64_t batch = 1; batch <= 9; ++batch) {
    std::thread([&] { on_threads.push_back(gradient(batch)); }).join();
  }
  for (int64_t batch = 1; batch <= 9; ++batch) {
    const std::vector<float> here = gradient(batch);
    for (size_t i = 0; i < here.size(); ++i) {
      EXPECT_NEAR(here[i], on_threads[batch - 1][i], 1e-6) << "batch " << batch << " at " << i;
    }
  }
}

TEST(PlanTest, TrainingStepsDoNotGrowTheHeap) {
  Builder b;
  const TensorId x = b.Input(Shape{16, 16, 8});
  TensorId h = b.Apply("conv2d { filters: 32 kernel_size: 3 padding: \"same\" }", {x});
  h = b.Apply("batch_normalization {}", {h});
  h = b.Apply("relu {}", {h});
  h = b.Apply("depthwise_conv2d { kernel_size: 3 strides: 2 padding: \"same\" }", {h});
  h = b.Apply("max_pooling2d {}", {h});
  h = b.Apply("flatten {}", {h});
  h = b.Apply("dropout { rate: 0.5 }", {h});
  auto model = b.Make({x}, {b.Apply("dense { units: 10 activation: \"softmax\" }", {h})});
  auto plan = ExecutionPlan::Create(*model, 32, PlanOptions{.training = true, .backward = true});
  ASSERT_TRUE(plan.ok()) << plan.status();
  dnnl::stream stream = NewStream();
  auto step = [&] {
    (*plan)->Forward(stream);
    std::fill_n((*plan)->output_grad_data(0), 320, 0.01f);
    (*plan)->Backward(stream);
  };
  for (int i = 0; i < 3; ++i) step();
  const size_t before = mallinfo2().uordblks;
  for (int i = 0; i < 20; ++i) step();
  const size_t after = mallinfo2().uordblks;
  EXPECT_LE(after, before + 64 * 1024) << "heap grew by " << (after - before) << " bytes";
  EXPECT_GT((*plan)->bytes(), size_t(32 * 16 * 16 * 32 * 4));
}

}  // namespace
}  // namespace kiln
