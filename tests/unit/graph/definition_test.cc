// BuildModel: a whole graph from one ModelDefinition - node references, shared layers, the
// default inputs and outputs, and errors with field paths; DefinitionOf, its inverse.
#include "core/graph/definition.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/base/status.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace kiln {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::ModelDefinition Parse(const std::string& text) {
  v1::ModelDefinition d;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &d)) << text;
  return d;
}

std::vector<std::string> LayerNames(const Model& model) {
  std::vector<std::string> names;
  for (const Layer* layer : model.layers()) names.push_back(layer->name());
  return names;
}

Shape OutputShape(const Model& model, int i) {
  return model.value_shapes()[model.output_values()[i]];
}

TEST(DefinitionTest, NodesBecomeLayersNamedAfterThem) {
  const auto d = Parse(R"pb(
    name: "m"
    nodes {
      id: "x"
      input { shape: [ 8, 8, 3 ] }
    }
    nodes {
      id: "dw"
      layer { depthwise_conv2d { kernel_size: 3 padding: "same" } }
      inputs: "x"
    }
    nodes {
      id: "named"
      layer { relu { name: "act" } }
      inputs: "dw"
    }
    inputs: "x"
    outputs: "named"
  )pb");
  Graph graph;
  auto model = BuildModel(d, graph, 1);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->name(), "m");
  EXPECT_THAT(LayerNames(**model), ElementsAre("dw", "act"));
  EXPECT_EQ((*model)->input_names()[0], "x");
  EXPECT_EQ(OutputShape(**model, 0), (Shape{-1, 8, 8, 3}));
}

TEST(DefinitionTest, CallNodesShareTheLayer) {
  const auto d = Parse(R"pb(
    nodes {
      id: "a"
      input { shape: [ 4 ] }
    }
    nodes {
      id: "b"
      input { shape: [ 4 ] }
    }
    nodes {
      id: "dense"
      layer { dense { units: 2 } }
      inputs: "a"
    }
    nodes { id: "again" call: "dense" inputs: "b" }
  )pb");
  Graph graph;
  auto model = BuildModel(d, graph, 1);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_THAT(LayerNames(**model), ElementsAre("dense"));
  EXPECT_EQ((*model)->CountParams(), 4 * 2 + 2);
  EXPECT_EQ((*model)->name(), "model");
}

TEST(DefinitionTest, DefinitionOfBuildsTheSameModelAgain) {
  // Two inputs, a shared layer called on both, auto-named layers and an explicit output order.
  const auto d = Parse(R"pb(
    name: "twin"
    nodes {
      id: "a"
      input { shape: [ 6, 6, 2 ] }
    }
    nodes {
      id: "b"
      input { shape: [ 6, 6, 2 ] }
    }
    nodes {
      id: "dw"
      layer { depthwise_conv2d { kernel_size: 3 depth_multiplier: 2 use_bias: false } }
      inputs: "a"
    }
    nodes { id: "dw_again" call: "dw" inputs: "b" }
    nodes {
      id: "sum"
      layer { add {} }
      inputs: [ "dw", "dw_again" ]
    }
    nodes {
      id: "flat"
      layer { flatten {} }
      inputs: "sum"
    }
    inputs: [ "b", "a" ]
    outputs: [ "flat", "dw" ]
  )pb");
  Graph graph;
  auto model = BuildModel(d, graph, 1);
  ASSERT_TRUE(model.ok()) << model.status();

  const v1::ModelDefinition again = DefinitionOf(**model);
  EXPECT_EQ(again.name(), "twin");
  std::vector<std::string> ids;
  for (const v1::GraphNode& node : again.nodes()) ids.push_back(node.id());
  EXPECT_THAT(ids, ElementsAre("b", "a", "dw", "dw#1", "sum", "flat"));
  EXPECT_EQ(again.nodes(3).call(), "dw");
  EXPECT_THAT(again.nodes(3).inputs(), ElementsAre("b"));
  EXPECT_THAT(again.nodes(1).input().shape(), ElementsAre(6, 6, 2));
  EXPECT_EQ(again.nodes(2).layer().depthwise_conv2d().depth_multiplier(), 2);
  EXPECT_THAT(again.inputs(), ElementsAre("b", "a"));
  EXPECT_THAT(again.outputs(), ElementsAre("flat", "dw"));

  Graph rebuilt_graph;
  auto rebuilt = BuildModel(again, rebuilt_graph, 1);
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status();
  EXPECT_THAT(LayerNames(**rebuilt), ElementsAre("dw", "sum", "flat"));
  EXPECT_EQ((*rebuilt)->CountParams(), (*model)->CountParams());
  EXPECT_EQ(OutputShape(**rebuilt, 0), OutputShape(**model, 0));
  EXPECT_EQ(OutputShape(**rebuilt, 1), OutputShape(**model, 1));
  // A fixed point: the rebuilt model's definition is the same message.
  EXPECT_EQ(DefinitionOf(**rebuilt).SerializeAsString(), again.SerializeAsString());
}

TEST(DefinitionTest, DefinitionOfMakesIdsOfNamesThatAreNoIds) {
  // ':' in a name would read as an output index, and a layer may be named like another
  // layer's second call.
  const auto d = Parse(R"pb(
    nodes {
      id: "in"
      input {
        shape: [ 4 ]
        name: "img:0"
      }
    }
    nodes {
      id: "d"
      layer { dense { units: 4 name: "head:1" } }
      inputs: "in"
    }
    nodes { id: "again" call: "d" inputs: "d" }
    nodes {
      id: "z"
      layer { relu { name: "head_1#1" } }
      inputs: "again"
    }
  )pb");
  Graph graph;
  auto model = BuildModel(d, graph, 1);
  ASSERT_TRUE(model.ok()) << model.status();
  const v1::ModelDefinition again = DefinitionOf(**model);
  std::vector<std::string> ids;
  for (const v1::GraphNode& node : again.nodes()) ids.push_back(node.id());
  EXPECT_THAT(ids, ElementsAre("img_0", "head_1", "head_1#1", "head_1#1_1"));
  EXPECT_EQ(again.nodes(0).input().name(), "img:0");
  EXPECT_EQ(again.nodes(2).call(), "head_1");
  Graph rebuilt_graph;
  auto rebuilt = BuildModel(again, rebuilt_graph, 1);
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status();
  EXPECT_THAT(LayerNames(**rebuilt), ElementsAre("head:1", "head_1#1"));
  EXPECT_THAT((*rebuilt)->input_names(), ElementsAre("img:0"));
  EXPECT_EQ((*rebuilt)->CountParams(), (*model)->CountParams());
}

TEST(DefinitionTest, UnlistedInputsAndOutputsAreTheOpenEnds) {
  // Two inputs; "left" is read by "sum", "right_only" is read by nobody: outputs are the two
  // tensors no node reads, in node order.
  const auto d = Parse(R"pb(
    nodes {
      id: "a"
      input { shape: [ 3 ] }
    }
    nodes {
      id: "b"
      input { shape: [ 3 ] }
    }
    nodes {
      id: "left"
      layer { dense { units: 3 } }
      inputs: "a"
    }
    nodes {
      id: "right_only"
      layer { dense { units: 5 } }
      inputs: "b"
    }
    nodes {
      id: "sum"
      layer { add {} }
      inputs: [ "left", "b" ]
    }
  )pb");
  Graph graph;
  auto model = BuildModel(d, graph, 1);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_THAT((*model)->input_names(), ElementsAre("a", "b"));
  ASSERT_EQ((*model)->output_values().size(), 2u);
  EXPECT_EQ(OutputShape(**model, 0), (Shape{-1, 5}));
  EXPECT_EQ(OutputShape(**model, 1), (Shape{-1, 3}));
}

struct BadDefinition {
  std::string text;
  std::string field;
  std::string message;
};

void PrintTo(const BadDefinition& bad, std::ostream* os) { *os << bad.field; }

// "3_nodes_1_inputs_0": the case number and its field, as a test name.
std::string CaseName(const ::testing::TestParamInfo<BadDefinition>& info) {
  std::string name = absl::StrCat(info.index, "_", info.param.field);
  for (char& c : name) c = absl::ascii_isalnum(c) ? c : '_';
  return name;
}

class DefinitionErrorTest : public ::testing::TestWithParam<BadDefinition> {};

TEST_P(DefinitionErrorTest, NamesTheField) {
  Graph graph;
  auto model = BuildModel(Parse(GetParam().text), graph, 1);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument) << model.status();
  EXPECT_EQ(FieldPathOf(model.status()), GetParam().field) << model.status();
  EXPECT_THAT(model.status().message(), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Errors, DefinitionErrorTest,
    ::testing::Values(BadDefinition{R"pb(nodes { input { shape: 3 } })pb", "nodes[0].id",
                                    "every node needs an id"},
                      BadDefinition{R"pb(nodes {
                                           id: "a"
                                           input { shape: 3 }
                                         }
                                         nodes {
                                           id: "a"
                                           input { shape: 3 }
                                         })pb",
                                    "nodes[1].id", "node id \"a\" is used twice"},
                      BadDefinition{R"pb(nodes {
                                           id: "a"
                                           input { shape: 3 }
                                         }
                                         nodes {
                                           id: "d"
                                           layer { dense { units: 2 } }
                                           inputs: "later"
                                         })pb",
                                    "nodes[1].inputs[0]", "unknown node \"later\""},
                      BadDefinition{R"pb(nodes {
                                           id: "a"
                                           input { shape: 3 }
                                         }
                                         nodes {
                                           id: "d"
                                           layer { dense { units: 2 } }
                                           inputs: "a:x"
                                         })pb",
                                    "nodes[1].inputs[0]", "bad tensor reference \"a:x\""},
                      BadDefinition{R"pb(nodes {
                                           id: "a"
                                           input { shape: 3 }
                                         }
                                         nodes {
                                           id: "d"
                                           layer { dense { units: 2 } }
                                           inputs: "a:1"
                                         })pb",
                                    "nodes[1].inputs[0]", "has 1 output(s); there is no output 1"},
                      BadDefinition{R"pb(nodes {
                                           id: "a"
                                           input { shape: 3 }
                                         }
                                         nodes {
                                           id: "b"
                                           input { shape: 3 }
                                           inputs: "a"
                                         })pb",
                                    "nodes[1].inputs", "an input node takes no inputs"},
                      BadDefinition{R"pb(nodes {
                                           id: "a"
                                           input { shape: 3 }
                                         }
                                         nodes { id: "c" call: "a" inputs: "a" })pb",
                                    "nodes[1].call", "\"a\" is not an earlier layer node"},
                      BadDefinition{R"pb(nodes { id: "a" })pb", "nodes[0]",
                                    "a node needs one of input, layer or call"},
                      BadDefinition{R"pb(nodes {
                                           id: "a"
                                           input { shape: 3 }
                                         }
                                         nodes {
                                           id: "d"
                                           layer { dense { units: 0 } }
                                           inputs: "a"
                                         })pb",
                                    "nodes[1].layer.dense.units", "units"},
                      BadDefinition{R"pb(nodes {
                                           id: "a"
                                           input { shape: 3 }
                                         }
                                         nodes {
                                           id: "d"
                                           layer { dense { units: 2 } }
                                           inputs: "a"
                                         }
                                         inputs: "d")pb",
                                    "inputs[0]", "\"d\" is not an input node"},
                      BadDefinition{R"pb(nodes {
                                           id: "a"
                                           input { shape: 3 }
                                         }
                                         outputs: "nope")pb",
                                    "outputs[0]", "unknown node \"nope\""}),
    CaseName);

}  // namespace
}  // namespace kiln
