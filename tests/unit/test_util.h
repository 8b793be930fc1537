// Helpers for core tests: single-layer models, one-shot forward/backward runs, finite
// differences and tensor comparisons.
#ifndef KILN_TESTS_UNIT_TEST_UTIL_H_
#define KILN_TESTS_UNIT_TEST_UTIL_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/graph/graph.h"
#include "core/graph/model.h"
#include "core/tensor/tensor.h"
#include "kiln/v1/layers.pb.h"

namespace kiln::testing {

// Parses a LayerSpec from protobuf text format ("depthwise_conv2d { kernel_size: 3 }").
v1::LayerSpec ParseSpec(const std::string& text);

// One layer called on fresh inputs of the given shapes (without the batch dimension).
struct LayerModel {
  Graph graph;
  std::shared_ptr<Layer> layer;
  std::unique_ptr<Model> model;
};
absl::StatusOr<std::unique_ptr<LayerModel>> MakeLayerModel(const v1::LayerSpec& spec,
                                                           const std::vector<Shape>& input_shapes,
                                                           uint64_t seed = 1);

// Uniform values in [lo, hi).
Tensor RandomTensor(const Shape& shape, uint64_t seed, float lo = -1.0f, float hi = 1.0f);

struct RunResult {
  std::vector<Tensor> outputs;
  std::vector<Tensor> input_grads;             // when an upstream gradient was given
  std::map<std::string, Tensor> weight_grads;  // trainable weights, by name
};
// One forward pass (and, with `upstream`, one backward pass of sum(output0 * upstream)) on a
// fresh plan. `training` selects the training-mode forward.
RunResult Run(Model& model, const std::vector<Tensor>& inputs, bool training,
              const Tensor* upstream = nullptr);

// Checks the analytic gradients of sum(output0 * upstream) + activity penalties against central
// differences, at up
// to `samples` entries of every input and trainable weight. Relative error per entry must stay
// below `tolerance` (scaled by max(1, |gradient|)). Without check_input_gradients the plan
// computes no input gradients, as in training, and only weights are checked.
void ExpectGradientsMatchFiniteDifferences(Model& model, const std::vector<Tensor>& inputs,
                                           bool training, uint64_t seed, double tolerance = 2e-2,
                                           int samples = 24, double epsilon = 5e-3,
                                           bool check_input_gradients = true);

// |actual - expected| <= atol + rtol * |expected| elementwise, with a message naming `what`.
void ExpectTensorNear(const Tensor& actual, const Tensor& expected, double atol, double rtol,
                      const std::string& what);

// The directory holding tests/fixtures.
std::string FixturePath(const std::string& name);

}  // namespace kiln::testing

#endif  // KILN_TESTS_UNIT_TEST_UTIL_H_
