// Graph and Model: inputs, Keras auto-names, shared layers, and Model::Create's checks.
#include "core/graph/graph.h"

#include "core/base/status.h"
#include "core/graph/model.h"
#include "core/layers/registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/test_util.h"

namespace kiln {
namespace {

using ::testing::HasSubstr;

std::shared_ptr<Layer> Add(Graph& graph, const std::string& text) {
  auto layer = CreateLayer(testing::ParseSpec(text), 1);
  EXPECT_TRUE(layer.ok()) << layer.status();
  auto added = graph.AddLayer(std::move(*layer));
  EXPECT_TRUE(added.ok()) << added.status();
  return *added;
}

TensorId Call(Graph& graph, const std::shared_ptr<Layer>& layer, std::vector<TensorId> in) {
  auto out = graph.Call(layer, in);
  EXPECT_TRUE(out.ok()) << out.status();
  return (*out)[0];
}

TEST(GraphTest, InputsNeedPositiveDimsAndUniqueNames) {
  Graph graph;
  auto a = graph.AddInput(Shape{28, 28, 1}, "");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(graph.tensor(*a)->shape, (Shape{-1, 28, 28, 1}));
  EXPECT_EQ(graph.nodes()[0].input_name, "input_layer");
  EXPECT_EQ(graph.nodes()[*graph.AddInput(Shape{3}, "")].input_name, "input_layer_1");
  auto zero = graph.AddInput(Shape{0, 3}, "x");
  EXPECT_EQ(FieldPathOf(zero.status()), "shape");
  ASSERT_TRUE(graph.AddInput(Shape{3}, "x").ok());
  EXPECT_EQ(FieldPathOf(graph.AddInput(Shape{3}, "x").status()), "name");
}

TEST(GraphTest, KerasAutoNamesAndUniqueExplicitNames) {
  Graph graph;
  EXPECT_EQ(Add(graph, "dense { units: 2 }")->name(), "dense");
  EXPECT_EQ(Add(graph, "dense { units: 2 }")->name(), "dense_1");
  EXPECT_EQ(Add(graph, "relu {}")->name(), "re_lu");
  EXPECT_EQ(Add(graph, "depthwise_conv2d { kernel_size: 3 }")->name(), "depthwise_conv2d");
  EXPECT_EQ(Add(graph, "depthwise_conv2d { kernel_size: 3 }")->spec().depthwise_conv2d().name(),
            "depthwise_conv2d_1");
  auto layer = CreateLayer(testing::ParseSpec("dense { units: 2 name: \"dense_1\" }"), 1);
  EXPECT_EQ(graph.AddLayer(std::move(*layer)).status().code(), absl::StatusCode::kAlreadyExists);
}

TEST(GraphTest, FailedAddAndCallChangesNothing) {
  Graph graph;
  auto vector = graph.AddInput(Shape{4}, "v");
  auto image = graph.AddInput(Shape{8, 8, 3}, "img");
  const size_t nodes = graph.nodes().size(), tensors = graph.tensors().size();
  auto bad = graph.AddLayer(*CreateLayer(testing::ParseSpec("conv2d { filters: 2 kernel_size: 3 }"), 1),
                            std::vector<TensorId>{*vector});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("expected ndim=4"));
  EXPECT_EQ(graph.nodes().size(), nodes);
  EXPECT_EQ(graph.tensors().size(), tensors);
  EXPECT_EQ(graph.FindLayer("conv2d"), nullptr);
  auto unknown = graph.AddLayer(*CreateLayer(testing::ParseSpec("relu {}"), 1),
                                std::vector<TensorId>{77});
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(FieldPathOf(unknown.status()), "inputs[0]");
  // The auto name was not used up.
  auto good = graph.AddLayer(*CreateLayer(testing::ParseSpec("conv2d { filters: 2 kernel_size: 3 }"), 1),
                             std::vector<TensorId>{*image});
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(good->layer->name(), "conv2d");
  EXPECT_EQ(graph.tensor(good->outputs[0])->shape, (Shape{-1, 6, 6, 2}));
}

TEST(GraphTest, CallOnUnknownTensorIsNotFound) {
  Graph graph;
  auto dense = Add(graph, "dense { units: 2 }");
  EXPECT_EQ(graph.Call(dense, {42}).status().code(), absl::StatusCode::kNotFound);
  Graph other;
  auto x = other.AddInput(Shape{3}, "");
  EXPECT_EQ(other.Call(dense, {*x}).status().code(), absl::StatusCode::kNotFound);
}

TEST(GraphTest, SharedLayerHasOneSetOfWeights) {
  Graph graph;
  auto a = graph.AddInput(Shape{4}, "a");
  auto b = graph.AddInput(Shape{4}, "b");
  auto dense = Add(graph, "dense { units: 3 }");
  const TensorId ya = Call(graph, dense, {*a});
  const TensorId yb = Call(graph, dense, {*b});
  auto add = Add(graph, "add {}");
  const TensorId sum = Call(graph, add, {ya, yb});
  auto model = Model::Create(graph, {*a, *b}, {sum}, "shared");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->layers().size(), 2u);
  EXPECT_EQ((*model)->CountParams(), 4 * 3 + 3);
  // Same weights: equal inputs give equal branch outputs, so the sum is twice one branch.
  const Tensor x = testing::RandomTensor(Shape{2, 4}, 1);
  testing::RunResult both = testing::Run(**model, {x, x}, false);
  auto single = Model::Create(graph, {*a}, {ya}, "single");
  testing::RunResult one = testing::Run(**single, {x}, false);
  for (int i = 0; i < 6; ++i) {
    EXPECT_NEAR(both.outputs[0].data<float>()[i], 2 * one.outputs[0].data<float>()[i], 1e-5);
  }
}

TEST(ModelTest, CreateValidatesInputsAndOutputs) {
  Graph graph;
  auto a = graph.AddInput(Shape{4}, "a");
  auto b = graph.AddInput(Shape{4}, "b");
  auto dense = Add(graph, "dense { units: 3 name: \"d\" }");
  const TensorId y = Call(graph, dense, {*b});
  EXPECT_EQ(FieldPathOf(Model::Create(graph, {}, {y}, "m").status()), "inputs");
  EXPECT_EQ(FieldPathOf(Model::Create(graph, {*b}, {}, "m").status()), "outputs");
  auto missing = Model::Create(graph, {*b}, {99}, "m");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(FieldPathOf(missing.status()), "outputs[0]");
  auto not_input = Model::Create(graph, {y}, {y}, "m");
  EXPECT_EQ(FieldPathOf(not_input.status()), "inputs[0]");
  EXPECT_EQ(FieldPathOf(Model::Create(graph, {*b, *b}, {y}, "m").status()), "inputs[1]");
  auto disconnected = Model::Create(graph, {*a}, {y}, "m");
  ASSERT_FALSE(disconnected.ok());
  EXPECT_THAT(std::string(disconnected.status().message()),
              HasSubstr("Graph disconnected: cannot obtain value for input \"b\""));
  EXPECT_THAT(std::string(disconnected.status().message()), HasSubstr("at layer \"d\""));
}

TEST(ModelTest, LaterGraphChangesDoNotAffectAModel) {
  Graph graph;
  auto a = graph.AddInput(Shape{4}, "a");
  auto dense = Add(graph, "dense { units: 3 }");
  const TensorId y = Call(graph, dense, {*a});
  auto model = Model::Create(graph, {*a}, {y}, "m");
  ASSERT_TRUE(model.ok());
  auto relu = Add(graph, "relu {}");
  Call(graph, relu, {y});
  EXPECT_EQ((*model)->nodes().size(), 1u);
  EXPECT_EQ((*model)->value_shapes().size(), 2u);
}

}  // namespace
}  // namespace kiln
