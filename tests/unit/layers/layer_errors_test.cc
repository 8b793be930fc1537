// Invalid layer specs and calls: each is rejected with INVALID_ARGUMENT naming the field (or the
// layer) in Keras's words, and nothing is left half-done. A randomised sweep over every layer
// message checks that no spec and no input shape can crash the engine.
#include <random>

#include "absl/strings/str_cat.h"
#include "core/base/status.h"
#include "core/layers/registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/test_util.h"

namespace kiln {
namespace {

using ::testing::HasSubstr;

absl::Status CreateError(const std::string& text) {
  absl::StatusOr<std::unique_ptr<Layer>> layer = CreateLayer(testing::ParseSpec(text), 1);
  EXPECT_FALSE(layer.ok()) << text;
  return layer.status();
}

void ExpectFieldError(const std::string& text, const std::string& path,
                      const std::string& message_part) {
  const absl::Status s = CreateError(text);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << text;
  EXPECT_EQ(FieldPathOf(s), path) << text << " -> " << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(message_part)) << text;
}

// Every case of the LayerSpec oneof has a class, registered from its own file, and a layer made
// from its empty message (or an error) names that class.
TEST(LayerRegistryTest, EveryLayerSpecCaseHasAClass) {
  const auto* oneof = v1::LayerSpec::descriptor()->FindOneofByName("layer");
  for (int i = 0; i < oneof->field_count(); ++i) {
    const auto layer_case = static_cast<v1::LayerSpec::LayerCase>(oneof->field(i)->number());
    EXPECT_TRUE(IsLayerRegistered(layer_case)) << oneof->field(i)->name();
  }
  auto relu = CreateLayer(testing::ParseSpec("relu {}"), 1);
  ASSERT_TRUE(relu.ok());
  EXPECT_EQ((*relu)->class_name(), "ReLU");
  EXPECT_EQ((*relu)->base_name(), "re_lu");
  EXPECT_EQ((*relu)->FieldPath("threshold"), "relu.threshold");
  EXPECT_EQ(CreateLayer(v1::LayerSpec(), 1).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(LayerErrorsTest, DepthwiseTupleArguments) {
  ExpectFieldError("depthwise_conv2d {}", "depthwise_conv2d.kernel_size",
                   "Missing required argument `kernel_size`");
  ExpectFieldError("depthwise_conv2d { kernel_size: [0, 3] }", "depthwise_conv2d.kernel_size",
                   "The `kernel_size` argument must be a tuple of 2 integers. Received "
                   "kernel_size=[0, 3], including values {0} that do not satisfy `value > 0`");
  ExpectFieldError("depthwise_conv2d { kernel_size: -3 }", "depthwise_conv2d.kernel_size",
                   "including values {-3}");
  ExpectFieldError("depthwise_conv2d { kernel_size: [3, 3, 3] }", "depthwise_conv2d.kernel_size",
                   "must be a tuple of 2 integers. Received kernel_size=[3, 3, 3]");
  ExpectFieldError("depthwise_conv2d { kernel_size: 3 strides: 0 }", "depthwise_conv2d.strides",
                   "The `strides` argument must be a tuple of 2 integers");
  ExpectFieldError("depthwise_conv2d { kernel_size: 3 strides: [1, 2, 1] }",
                   "depthwise_conv2d.strides", "Received strides=[1, 2, 1]");
  ExpectFieldError("depthwise_conv2d { kernel_size: 3 dilation_rate: [1, -2] }",
                   "depthwise_conv2d.dilation_rate", "including values {-2}");
}

TEST(LayerErrorsTest, DepthwiseOtherArguments) {
  ExpectFieldError("depthwise_conv2d { kernel_size: 3 padding: \"causal\" }",
                   "depthwise_conv2d.padding",
                   "The `padding` argument must be a list/tuple or one of {'valid', 'same'}. "
                   "Received: causal");
  ExpectFieldError("depthwise_conv2d { kernel_size: 3 data_format: \"NHWC\" }",
                   "depthwise_conv2d.data_format", "Received: data_format=nhwc");
  ExpectFieldError("depthwise_conv2d { kernel_size: 3 depth_multiplier: 0 }",
                   "depthwise_conv2d.depth_multiplier",
                   "Invalid value for argument `depth_multiplier`. Expected a strictly positive "
                   "value. Received depth_multiplier=0.");
  ExpectFieldError("depthwise_conv2d { kernel_size: 3 depth_multiplier: -2 }",
                   "depthwise_conv2d.depth_multiplier", "depth_multiplier=-2");
  ExpectFieldError("depthwise_conv2d { kernel_size: 3 strides: 2 dilation_rate: 2 }",
                   "depthwise_conv2d.strides",
                   "`strides > 1` not supported in conjunction with `dilation_rate > 1`. "
                   "Received: strides=(2, 2) and dilation_rate=(2, 2)");
  ExpectFieldError("depthwise_conv2d { kernel_size: 3 activation: \"relu7\" }",
                   "depthwise_conv2d.activation",
                   "Could not interpret activation function identifier: relu7");
  ExpectFieldError("depthwise_conv2d { kernel_size: 3 depthwise_initializer { name: \"glorot\" } }",
                   "depthwise_conv2d.depthwise_initializer",
                   "Could not interpret initializer identifier: glorot");
  ExpectFieldError("depthwise_conv2d { kernel_size: 3 bias_regularizer { name: \"l3\" } }",
                   "depthwise_conv2d.bias_regularizer",
                   "Could not interpret regularizer identifier: l3");
  ExpectFieldError("depthwise_conv2d { kernel_size: 3 depthwise_constraint { name: \"clip\" } }",
                   "depthwise_conv2d.depthwise_constraint",
                   "Could not interpret constraint identifier: clip");
  ExpectFieldError("depthwise_conv2d { kernel_size: 3 activity_regularizer { l2 { l2: -1 } } }",
                   "depthwise_conv2d.activity_regularizer.l2.l2",
                   "Invalid value for argument l2: expected a non-negative float.");
  ExpectFieldError("depthwise_conv2d { kernel_size: 3 dtype: \"float16\" }",
                   "depthwise_conv2d.dtype", "float32 only");
}

TEST(LayerErrorsTest, OtherLayerArguments) {
  ExpectFieldError("conv2d { kernel_size: 3 }", "conv2d.filters",
                   "Invalid value for argument `filters`");
  ExpectFieldError("conv2d { filters: 6 kernel_size: 3 groups: 4 }", "conv2d.groups",
                   "The number of filters must be evenly divisible by the number of groups");
  ExpectFieldError("dense { units: 0 }", "dense.units", "expected a positive integer");
  ExpectFieldError("dense { units: 3 kernel_initializer { variance_scaling { scale: 0 } } }",
                   "dense.kernel_initializer.variance_scaling.scale",
                   "Argument `scale` must be positive float");
  ExpectFieldError("dropout { rate: 1.5 }", "dropout.rate",
                   "Invalid value received for argument `rate`. Expected a float value between "
                   "0 and 1. Received: rate=1.5");
  ExpectFieldError("relu { negative_slope: -1 }", "relu.negative_slope",
                   "negative_slope of a ReLU layer cannot be a negative value");
  ExpectFieldError("relu { max_value: -1 }", "relu.max_value", "cannot be a negative value");
  ExpectFieldError("relu { threshold: -0.5 }", "relu.threshold", "cannot be a negative value");
  ExpectFieldError("activation {}", "activation.activation", "Missing required argument");
  ExpectFieldError("reshape { target_shape: [-1, -1] }", "reshape.target_shape",
                   "There must be at most one unknown dimension");
  ExpectFieldError("zero_padding2d { padding: [1, 2, 3] }", "zero_padding2d.padding",
                   "`padding` should be either an int");
  ExpectFieldError("zero_padding2d { padding: -1 }", "zero_padding2d.padding", "non-negative");
  ExpectFieldError("max_pooling2d { pool_size: 0 }", "max_pooling2d.pool_size",
                   "The `pool_size` argument must be a tuple of 2 integers");
  ExpectFieldError("batch_normalization { momentum: 2 }", "batch_normalization.momentum",
                   "momentum");
  ExpectFieldError("batch_normalization { beta_constraint { max_norm { max_value: -1 } } }",
                   "batch_normalization.beta_constraint.max_norm.max_value", "non-negative");
  EXPECT_EQ(CreateLayer(v1::LayerSpec(), 1).status().code(), absl::StatusCode::kInvalidArgument);
}

// Errors that depend on the input: raised when the layer is called, naming the layer.
absl::Status CallError(const std::string& spec, const std::vector<Shape>& shapes) {
  auto lm = testing::MakeLayerModel(testing::ParseSpec(spec), shapes);
  EXPECT_FALSE(lm.ok()) << spec;
  return lm.status();
}

TEST(LayerErrorsTest, CallErrors) {
  absl::Status s = CallError("depthwise_conv2d { name: \"dw\" kernel_size: 3 }", {Shape{8, 8}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldPathOf(s), "inputs[0]");  // the input at fault, as the graph's callers name it
  EXPECT_EQ(s.message(),
            "inputs[0]: Input 0 of layer \"dw\" is incompatible with the layer: expected "
            "ndim=4, found ndim=3. Full shape received: (None, 8, 8)");
  s = CallError("depthwise_conv2d { name: \"dw\" kernel_size: 5 }", {Shape{4, 9, 3}});
  EXPECT_EQ(FieldPathOf(s), "inputs");
  EXPECT_EQ(
      s.message(),
      "inputs: Computed output size would be zero or negative. Received `inputs shape=(None, 4, 9, "
      "3)`, `kernel shape=(5, 5, 3, 1)`, `dilation_rate=(1, 1)`, `strides=(1, 1)`, "
      "`padding=valid`.");
  s = CallError("depthwise_conv2d { kernel_size: 3 dilation_rate: 3 }", {Shape{6, 6, 2}});
  EXPECT_THAT(std::string(s.message()), HasSubstr("Computed output size would be zero"));
  s = CallError("conv2d { filters: 4 kernel_size: 1 groups: 2 }", {Shape{5, 5, 3}});
  EXPECT_THAT(std::string(s.message()), HasSubstr("input channels must be evenly divisible"));
  s = CallError("max_pooling2d { pool_size: 3 }", {Shape{2, 2, 1}});
  EXPECT_THAT(std::string(s.message()), HasSubstr("Computed output size would be negative"));
  s = CallError("reshape { target_shape: [5, -1] }", {Shape{3, 4}});
  EXPECT_THAT(std::string(s.message()), HasSubstr("total size of the new array must be unchanged"));
  s = CallError("add {}", {Shape{4}, Shape{5}});
  EXPECT_THAT(std::string(s.message()), HasSubstr("Inputs have incompatible shapes"));
  s = CallError("add {}", {Shape{4, 4, 3}, Shape{2, 3}});
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("Inputs have incompatible shapes. Received shapes (4, 4, 3) and (2, 3)"));
  s = CallError("add {}", {Shape{4}});
  EXPECT_THAT(std::string(s.message()), HasSubstr("at least 2 inputs"));
  s = CallError("concatenate { axis: 1 }", {Shape{2, 3}, Shape{3, 4}});
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("requires inputs with matching shapes except for the concatenation axis"));
  s = CallError("batch_normalization { axis: 3 }", {Shape{4, 4}});
  EXPECT_THAT(std::string(s.message()), HasSubstr("Invalid axis"));
  EXPECT_TRUE(testing::MakeLayerModel(
                  testing::ParseSpec("dense { units: 3 kernel_initializer { identity {} } }"),
                  {Shape{2, 4, 5}})
                  .ok())
      << "Identity works on Dense's 2-D kernel";
  s = CallError("depthwise_conv2d { kernel_size: 3 depthwise_initializer { identity {} } }",
                {Shape{5, 5, 2}});
  EXPECT_EQ(FieldPathOf(s), "depthwise_conv2d.depthwise_initializer");
  EXPECT_THAT(std::string(s.message()), HasSubstr("Identity matrix initializer can only be used"));
  EXPECT_TRUE(
      testing::MakeLayerModel(
          testing::ParseSpec("dense { units: 3 kernel_regularizer { orthogonal_regularizer {} } }"),
          {Shape{2, 4, 5}})
          .ok());
  s = CallError(
      "depthwise_conv2d { kernel_size: 3 depthwise_regularizer { orthogonal_regularizer {} } }",
      {Shape{5, 5, 2}});
  EXPECT_THAT(std::string(s.message()), HasSubstr("OrthogonalRegularizer must have rank 2"));
}

TEST(LayerErrorsTest, SharedLayerRejectsOtherChannelCountsAndStaysIntact) {
  Graph graph;
  auto a = graph.AddInput(Shape{8, 8, 3}, "a");
  auto b = graph.AddInput(Shape{8, 8, 4}, "b");
  auto c = graph.AddInput(Shape{16, 16, 3}, "c");
  auto layer =
      CreateLayer(testing::ParseSpec("depthwise_conv2d { name: \"dw\" kernel_size: 3 }"), 1);
  ASSERT_TRUE(layer.ok());
  auto dw = graph.AddLayer(std::move(*layer));
  ASSERT_TRUE(dw.ok());
  ASSERT_TRUE(graph.Call(*dw, {*a}).ok());
  const size_t nodes = graph.nodes().size(), tensors = graph.tensors().size();
  const Tensor kernel = (*dw)->variable("kernel")->value.Clone();
  auto bad = graph.Call(*dw, {*b});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "inputs[0]: Input 0 of layer \"dw\" is incompatible with the layer: expected axis -1 "
            "of input shape to have value 3, but received input with shape (None, 8, 8, 4)");
  EXPECT_EQ(graph.nodes().size(), nodes);
  EXPECT_EQ(graph.tensors().size(), tensors);
  EXPECT_EQ((*dw)->variable("kernel")->value.shape(), kernel.shape());
  // Another spatial size with the same channels is fine, as in Keras.
  auto ok = graph.Call(*dw, {*c});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(graph.tensor((*ok)[0])->shape, (Shape{-1, 14, 14, 3}));
}

TEST(LayerErrorsTest, BatchNormalizationKeepsTheRankItWasBuiltFor) {
  Graph graph;
  auto image = graph.AddInput(Shape{8, 8, 3}, "image");
  auto vector = graph.AddInput(Shape{8}, "vector");
  auto layer = CreateLayer(testing::ParseSpec("batch_normalization { name: \"bn\" }"), 1);
  auto bn = graph.AddLayer(std::move(*layer));
  ASSERT_TRUE(graph.Call(*bn, {*image}).ok());
  // Axis -1 has 8 entries in the vector, but the layer's statistics have 3.
  auto bad = graph.Call(*bn, {*vector});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "inputs[0]: Input 0 of layer \"bn\" is incompatible with the layer: expected ndim=4, "
            "found ndim=2. Full shape received: (None, 8)");
}

TEST(LayerErrorsTest, SizesAreBoundedWithoutOverflow) {
  Graph graph;
  EXPECT_EQ(FieldPathOf(graph.AddInput(Shape{int64_t{1} << 40}, "").status()), "shape");
  auto x = graph.AddInput(Shape{1 << 20}, "x");
  ASSERT_TRUE(x.ok());
  auto dense = graph.AddLayer(*CreateLayer(testing::ParseSpec("dense { units: 1048576 }"), 1));
  auto huge = graph.Call(*dense, {*x});
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(huge.status().message()), HasSubstr("more than 268435456 elements"));
  EXPECT_FALSE((*dense)->built());
  // 3 * 6148914691236517206 wraps to 2 in 64-bit arithmetic.
  auto small = graph.AddInput(Shape{2}, "small");
  auto reshape = graph.AddLayer(
      *CreateLayer(testing::ParseSpec("reshape { target_shape: [3, 6148914691236517206] }"), 1));
  EXPECT_THAT(std::string(graph.Call(*reshape, {*small}).status().message()),
              HasSubstr("total size of the new array must be unchanged"));
  auto big = graph.AddInput(Shape{1 << 16, 1 << 10}, "big");
  // (65536, 65536) per sample: 2^32 elements from a legal 2^26-element kernel.
  auto pad = graph.AddLayer(*CreateLayer(testing::ParseSpec("dense { units: 65536 }"), 1));
  EXPECT_THAT(std::string(graph.Call(*pad, {*big}).status().message()),
              HasSubstr("more than 2147483648 elements per sample"));
}

TEST(LayerErrorsTest, OrthogonalActivityRegularizerNeedsRankTwoOutputs) {
  auto s = CallError("dense { units: 3 activity_regularizer { orthogonal_regularizer {} } }",
                     {Shape{4, 5}});
  EXPECT_EQ(FieldPathOf(s), "dense.activity_regularizer");
  EXPECT_THAT(std::string(s.message()), HasSubstr("OrthogonalRegularizer must have rank 2"));
  EXPECT_TRUE(testing::MakeLayerModel(
                  testing::ParseSpec(
                      "dense { units: 3 activity_regularizer { orthogonal_regularizer {} } }"),
                  {Shape{5}})
                  .ok());
}

TEST(LayerErrorsTest, FailedFirstCallLeavesLayerUnbuilt) {
  Graph graph;
  auto small = graph.AddInput(Shape{2, 2, 3}, "small");
  auto fine = graph.AddInput(Shape{6, 6, 5}, "fine");
  auto layer = CreateLayer(testing::ParseSpec("depthwise_conv2d { kernel_size: 3 }"), 1);
  auto dw = graph.AddLayer(std::move(*layer));
  ASSERT_FALSE(graph.Call(*dw, {*small}).ok());
  EXPECT_FALSE((*dw)->built());
  EXPECT_TRUE((*dw)->variables().empty());
  auto out = graph.Call(*dw, {*fine});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*dw)->variable("kernel")->value.shape(), (Shape{3, 3, 5, 1}));
}

// Fills every field of a layer message with random, often invalid, values.
void Randomize(google::protobuf::Message& message, std::mt19937& gen, int depth = 0) {
  const auto* descriptor = message.GetDescriptor();
  const auto* reflection = message.GetReflection();
  std::uniform_int_distribution<int> coin(0, 2), small(-3, 9), count(0, 4);
  const std::vector<std::string> strings = {"",        "same",  "VALID",        "channels_first",
                                            "relu",    "zeros", "l2",           "max_norm",
                                            "softmax", "bogus", "hard_sigmoid", "float32"};
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const auto* field = descriptor->field(i);
    if (coin(gen) == 0) continue;
    using FD = google::protobuf::FieldDescriptor;
    if (field->is_repeated()) {
      const int n = count(gen);
      for (int k = 0; k < n; ++k) {
        if (field->cpp_type() == FD::CPPTYPE_INT32)
          reflection->AddInt32(&message, field, small(gen));
        if (field->cpp_type() == FD::CPPTYPE_INT64)
          reflection->AddInt64(&message, field, small(gen));
      }
      continue;
    }
    switch (field->cpp_type()) {
      case FD::CPPTYPE_INT32:
        reflection->SetInt32(&message, field, small(gen));
        break;
      case FD::CPPTYPE_INT64:
        reflection->SetInt64(&message, field, small(gen));
        break;
      case FD::CPPTYPE_FLOAT:
        reflection->SetFloat(&message, field, float(small(gen)) / 4.0f);
        break;
      case FD::CPPTYPE_BOOL:
        reflection->SetBool(&message, field, coin(gen) == 1);
        break;
      case FD::CPPTYPE_STRING:
        reflection->SetString(&message, field, strings[gen() % strings.size()]);
        break;
      case FD::CPPTYPE_MESSAGE:
        if (depth < 2) Randomize(*reflection->MutableMessage(&message, field), gen, depth + 1);
        break;
      default:
        break;
    }
  }
}

TEST(LayerErrorsTest, RandomSpecsAndShapesNeverCrash) {
  std::mt19937 gen(2024);
  const auto* oneof = v1::LayerSpec::descriptor()->FindOneofByName("layer");
  int created = 0, called = 0;
  for (int iteration = 0; iteration < 1500; ++iteration) {
    v1::LayerSpec spec;
    const auto* field = oneof->field(gen() % oneof->field_count());
    Randomize(*spec.GetReflection()->MutableMessage(&spec, field), gen);
    absl::StatusOr<std::unique_ptr<Layer>> layer = CreateLayer(spec, 1);
    if (!layer.ok()) {
      EXPECT_EQ(layer.status().code(), absl::StatusCode::kInvalidArgument) << spec.DebugString();
      continue;
    }
    ++created;
    Graph graph;
    std::vector<TensorId> inputs;
    const int n_inputs = 1 + int(gen() % 2);
    const int rank = 1 + int(gen() % 4);
    std::vector<int64_t> dims;
    for (int d = 0; d < rank; ++d) dims.push_back(1 + int64_t(gen() % 6));
    for (int k = 0; k < n_inputs; ++k) inputs.push_back(*graph.AddInput(Shape(dims), ""));
    auto added = graph.AddLayer(std::move(*layer));
    ASSERT_TRUE(added.ok());
    auto out = graph.Call(*added, inputs);
    if (!out.ok()) continue;
    ++called;
    auto model = Model::Create(graph, inputs, *out, "m");
    ASSERT_TRUE(model.ok()) << model.status();
    // Run it too: a layer that accepted its input must compute it.
    std::vector<Tensor> x;
    for (size_t k = 0; k < inputs.size(); ++k) {
      std::vector<int64_t> with_batch = {2};
      with_batch.insert(with_batch.end(), dims.begin(), dims.end());
      x.push_back(testing::RandomTensor(Shape(with_batch), k));
    }
    const Tensor upstream = testing::RandomTensor(graph.tensor((*out)[0])->shape.WithBatch(2), 9);
    testing::RunResult r = testing::Run(**model, x, true, &upstream);
    EXPECT_EQ(r.outputs.size(), out->size()) << spec.DebugString();
  }
  EXPECT_GT(created, 100);
  EXPECT_GT(called, 50);
}

}  // namespace
}  // namespace kiln
