// ParseJson: protobuf JSON with errors that say where (line and column, field path) and what
// was probably meant.
#include "client/cli/json_input.h"

#include "client/cli/common.h"
#include "gtest/gtest.h"
#include "kiln/v1/model.pb.h"
#include "kiln/v1/training.pb.h"

namespace kiln::cli {
namespace {

std::string Error(absl::string_view text) {
  v1::ModelDefinition definition;
  const absl::Status status = ParseJson(text, "m.json", definition);
  EXPECT_FALSE(status.ok()) << text;
  EXPECT_TRUE(IsUsageError(status));
  return std::string(status.message());
}

TEST(ParseJsonTest, ReadsTheApisJson) {
  v1::ModelDefinition definition;
  ASSERT_TRUE(ParseJson(R"({"name": "m", "nodes": [{"id": "x", "input": {"shape": [4]}},
      {"id": "d", "layer": {"dense": {"units": 3}}, "inputs": ["x"]}],
      "compile": {"loss": {"name": "mse", "fromLogits": false}}})",
                        "m.json", definition)
                  .ok());
  EXPECT_EQ(definition.nodes(1).layer().dense().units(), 3);
  EXPECT_EQ(definition.compile().loss().name(), "mse");
}

TEST(ParseJsonTest, SyntaxErrorsGiveLineAndColumn) {
  const std::string message = Error("{\"name\": \"m\",\n  \"nodes\": [\n    {\"id\": 1,}\n]}");
  EXPECT_NE(message.find("m.json: not valid JSON: line 3, column 14"), std::string::npos)
      << message;
}

TEST(ParseJsonTest, UnknownFieldsGiveThePathAndTheClosestName) {
  EXPECT_EQ(Error(R"({"nodes": [{"id": "x"}, {"id": "d", "layer": {"denes": {}}}]})"),
            "m.json: nodes[1].layer: no field \"denes\" in kiln.v1.LayerSpec; did you mean "
            "\"dense\"?");
  EXPECT_EQ(Error(R"({"nodez": []})"),
            "m.json: no field \"nodez\" in kiln.v1.ModelDefinition; did you mean \"nodes\"?");
  EXPECT_EQ(Error(R"({"compile": {"optimizer": {"adam": {"learning_rat": 0.1}}}})"),
            "m.json: compile.optimizer.adam: no field \"learning_rat\" in kiln.v1.Adam; did you "
            "mean \"learning_rate\"?");
}

TEST(ParseJsonTest, TheDocumentMustBeAnObject) {
  EXPECT_EQ(Error("[1, 2]"),
            "m.json: holds a JSON array, not an object (a kiln.v1.ModelDefinition)");
}

TEST(ParseJsonTest, WrongValuesGiveThePath) {
  EXPECT_EQ(Error(R"({"nodes": [{"id": "d", "layer": {"dense": {"units": "three"}}}]})"),
            "m.json: not a valid kiln.v1.ModelDefinition: nodes[0].layer.dense.units: invalid "
            "value \"three\" for type TYPE_INT32");
}

}  // namespace
}  // namespace kiln::cli
