// The end-to-end check: a small MobileNet-style model (Conv2D, then DepthwiseConv2D +
// BatchNormalization + ReLU blocks with pointwise convolutions, GlobalAveragePooling2D, Dense)
// reaches at least 80% accuracy on held-out Fashion-MNIST images, in well under a minute.
#include "core/io/builtin_datasets.h"
#include "core/layers/registry.h"
#include "core/train/trainer.h"
#include "gtest/gtest.h"
#include "tests/unit/test_util.h"

namespace kiln {
namespace {

TEST(MobileNetFashionMnistTest, ReachesEightyPercentOnHeldOutImages) {
  auto train = LoadFashionMnist("train");
  if (absl::IsNotFound(train.status())) GTEST_SKIP() << train.status();
  ASSERT_TRUE(train.ok()) << train.status();
  auto test = LoadFashionMnist("test");
  ASSERT_TRUE(test.ok()) << test.status();

  Graph graph;
  auto input = graph.AddInput(Shape{28, 28, 1}, "image");
  TensorId x = *input;
  uint64_t seed = 10;
  for (const char* text :
       {"conv2d { filters: 32 kernel_size: 3 strides: 2 padding: \"same\" use_bias: false }",
        "batch_normalization {}", "relu {}",
        "depthwise_conv2d { kernel_size: 3 padding: \"same\" use_bias: false }",
        "batch_normalization {}", "relu {}",
        "conv2d { filters: 64 kernel_size: 1 use_bias: false }", "batch_normalization {}",
        "relu {}",
        "depthwise_conv2d { kernel_size: 3 strides: 2 padding: \"same\" use_bias: false }",
        "batch_normalization {}", "relu {}",
        "conv2d { filters: 128 kernel_size: 1 use_bias: false }", "batch_normalization {}",
        "relu {}", "global_average_pooling2d {}", "dense { units: 10 activation: \"softmax\" }"}) {
    auto layer = CreateLayer(testing::ParseSpec(text), ++seed);
    ASSERT_TRUE(layer.ok()) << layer.status();
    auto added = graph.AddLayer(std::move(*layer));
    auto out = graph.Call(*added, {x});
    ASSERT_TRUE(out.ok()) << out.status();
    x = (*out)[0];
  }
  auto model = Model::Create(graph, {*input}, {x}, "tiny_mobilenet");
  ASSERT_TRUE(model.ok());
  Trainer trainer(model->get());
  v1::CompileConfig compile;
  // Adam's default rate. Much higher rates move the weights faster than BatchNormalization's
  // moving statistics (a ~100-step average) can follow, and inference mode suffers.
  compile.mutable_optimizer()->set_name("adam");
  compile.mutable_loss()->set_name("sparse_categorical_crossentropy");
  compile.add_metrics("accuracy");
  ASSERT_TRUE(trainer.Compile(compile).ok());
  v1::FitConfig fit;
  // 5,625 steps: plenty for BatchNormalization's moving statistics (momentum 0.99, starting at
  // mean 0 / variance 1) to forget their initial values, which inference mode relies on.
  fit.set_epochs(3);
  fit.set_batch_size(32);
  fit.set_seed(1);
  auto history = trainer.Fit(*train, fit);
  ASSERT_TRUE(history.ok()) << history.status();
  // Held out: the 10,000 test images, never seen in training.
  v1::EvaluateConfig evaluate;
  evaluate.set_batch_size(250);
  auto logs = trainer.Evaluate(*test, evaluate);
  ASSERT_TRUE(logs.ok()) << logs.status();
  ASSERT_EQ((*logs)[1].first, "accuracy");
  EXPECT_GE((*logs)[1].second, 0.80);
  RecordProperty("held_out_accuracy", std::to_string((*logs)[1].second));
}

}  // namespace
}  // namespace kiln
