// Every layer against golden values computed by PyTorch (tests/fixtures/make_golden.py, run
// with Debian's python3-torch; the JSON is committed so this test needs no PyTorch). Each case
// sets the weights, runs one forward pass and one backward pass of sum(output * upstream), and
// compares the output, the input and weight gradients and any updated weights (BatchNormalization's
// moving statistics).
#include <cctype>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/io/readers.h"
#include "golden.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/unit/test_util.h"

namespace kiln::testing {
// gtest prints a parameter in failure messages; the case's name is enough.
void PrintTo(const LayerGoldenCase& golden, std::ostream* os) { *os << golden.name(); }
}  // namespace kiln::testing

namespace kiln {
namespace {

Tensor ToTensor(const kiln::testing::GoldenTensor& g) {
  Tensor t(DType::kFloat32, Shape(std::vector<int64_t>(g.shape().begin(), g.shape().end())));
  for (int i = 0; i < g.values_size(); ++i) t.data<float>()[i] = float(g.values(i));
  return t;
}

std::vector<kiln::testing::LayerGoldenCase> LoadCases() {
  const std::string path = testing::FixturePath("golden_layers.json");
  absl::StatusOr<std::string> json = ReadFile(path);
  if (!json.ok()) return {};
  kiln::testing::GoldenFile file;
  google::protobuf::util::JsonParseOptions options;
  if (!google::protobuf::util::JsonStringToMessage(*json, &file, options).ok()) return {};
  return {file.cases().begin(), file.cases().end()};
}

TEST(GoldenFixtureTest, LoadsAndCoversEveryLayerClass) {
  const auto cases = LoadCases();
  ASSERT_GT(cases.size(), 100u) << "tests/fixtures/golden_layers.json missing or unparsable";
  std::set<int> kinds;
  for (const auto& c : cases) kinds.insert(c.spec().layer_case());
  const auto* oneof = v1::LayerSpec::descriptor()->FindOneofByName("layer");
  for (int i = 0; i < oneof->field_count(); ++i) {
    EXPECT_TRUE(kinds.count(oneof->field(i)->number()))
        << "no golden case for " << oneof->field(i)->name();
  }
}

class GoldenLayer : public ::testing::TestWithParam<kiln::testing::LayerGoldenCase> {};

TEST_P(GoldenLayer, MatchesPyTorch) {
  const auto& golden = GetParam();
  std::vector<Tensor> inputs;
  std::vector<Shape> shapes;
  for (const auto& g : golden.inputs()) {
    inputs.push_back(ToTensor(g));
    shapes.push_back(inputs.back().shape().WithoutBatch());
  }
  auto lm = testing::MakeLayerModel(golden.spec(), shapes);
  ASSERT_TRUE(lm.ok()) << lm.status();
  Layer& layer = *(*lm)->layer;
  for (const auto& [name, value] : golden.weights()) {
    ASSERT_TRUE(layer.SetWeight(name, ToTensor(value)).ok()) << name;
  }
  const Tensor upstream = ToTensor(golden.upstream());
  testing::RunResult r = testing::Run(*(*lm)->model, inputs, golden.training(), &upstream);
  ASSERT_EQ(r.outputs.size(), 1u);
  const double atol = 1e-4, rtol = 1e-3;
  testing::ExpectTensorNear(r.outputs[0], ToTensor(golden.output()), atol, rtol, "output");
  ASSERT_EQ(r.input_grads.size(), size_t(golden.input_grads_size()));
  for (int i = 0; i < golden.input_grads_size(); ++i) {
    testing::ExpectTensorNear(r.input_grads[i], ToTensor(golden.input_grads(i)), atol, rtol,
                              absl::StrCat("input gradient ", i));
  }
  for (const auto& [name, value] : golden.weight_grads()) {
    ASSERT_TRUE(r.weight_grads.count(name)) << "no gradient for " << name;
    testing::ExpectTensorNear(r.weight_grads[name], ToTensor(value), atol, rtol,
                              absl::StrCat("gradient of ", name));
  }
  for (const auto& [name, value] : golden.weights_after()) {
    testing::ExpectTensorNear(layer.variable(name)->value, ToTensor(value), 1e-5, 1e-4,
                              absl::StrCat(name, " after the step"));
  }
}

INSTANTIATE_TEST_SUITE_P(PyTorch, GoldenLayer, ::testing::ValuesIn(LoadCases()),
                         [](const auto& info) {
                           std::string name = info.param.name();
                           for (char& ch : name) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace kiln
