// Graph: a functional graph under construction - model inputs, layer calls and the symbolic
// tensors between them - as a card editor builds it: add an input, add a layer on some tensors,
// call an existing layer again on others (sharing its weights).
//
// The graph is append-only and every mutation is all-or-nothing: a call that fails validation
// adds no node, names no layer and leaves the layer unbuilt. Layer names are unique within a
// graph; unnamed layers get Keras's auto names ("dense", "dense_1", ...).
#ifndef KILN_CORE_GRAPH_GRAPH_H_
#define KILN_CORE_GRAPH_GRAPH_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/layers/layer.h"
#include "core/tensor/shape.h"

namespace kiln {

using TensorId = int64_t;

struct SymbolicTensor {
  Shape shape;  // the batch dimension (0) is unknown
  int node = -1;
  int output_index = 0;
};

struct GraphNode {
  std::shared_ptr<Layer> layer;  // null for an input node
  std::string input_name;        // input nodes only
  std::vector<TensorId> inputs;
  std::vector<TensorId> outputs;
};

class Graph {
 public:
  // Errors carry field paths relative to the call: "shape", "name", "inputs[i]" (a tensor that
  // does not exist, or of a rank or size the layer cannot take), "inputs" (tensors that do not
  // fit together), the layer's "<spec field>.name" (ALREADY_EXISTS for a taken name).

  // A model input of `shape` (without the batch dimension; every dimension > 0). An empty
  // name gets "input_layer", "input_layer_1", ...; a taken name is ALREADY_EXISTS.
  absl::StatusOr<TensorId> AddInput(const Shape& shape, const std::string& name);
  // AddInput's checks alone: OK means AddInput(shape, name) will succeed.
  absl::Status CheckInput(const Shape& shape, const std::string& name) const;

  // Takes ownership of a new layer, gives it its unique name (the spec's or an auto name) and,
  // when `inputs` is not empty, calls it on them - all or nothing: if the call is invalid the
  // layer is not added and no auto name is used up.
  struct AddedLayer {
    std::shared_ptr<Layer> layer;
    std::vector<TensorId> outputs;
  };
  absl::StatusOr<AddedLayer> AddLayer(std::unique_ptr<Layer> layer,
                                      absl::Span<const TensorId> inputs);
  // The same without a call.
  absl::StatusOr<std::shared_ptr<Layer>> AddLayer(std::unique_ptr<Layer> layer);

  // AddLayer in two steps, for callers that record a change before they make it: Prepare makes
  // every check, names the layer and builds it (its weights' initialisation is the slow part)
  // without changing the graph; Commit adds it and cannot fail, provided the graph did not
  // change in between.
  struct PreparedLayer {
    std::unique_ptr<Layer> layer;
    bool auto_named = false;
    std::vector<TensorId> inputs;
    std::vector<Shape> output_shapes;
  };
  absl::StatusOr<PreparedLayer> PrepareAddLayer(std::unique_ptr<Layer> layer,
                                                absl::Span<const TensorId> inputs) const;
  AddedLayer CommitAddLayer(PreparedLayer prepared);

  // Shapes of the tensors `inputs`; NOT_FOUND at "inputs[i]" for one that does not exist.
  absl::StatusOr<std::vector<Shape>> InputShapes(absl::Span<const TensorId> inputs) const;
  // Call's checks of a call of `layer` on `inputs`, building the layer if it is not built yet
  // (on error it stays unbuilt): OK means Call(layer, inputs) will succeed. Changes nothing
  // in the graph. `layer` need not be in the graph (a twin, see Layer::AdoptWeights).
  absl::StatusOr<std::vector<Shape>> CheckCall(Layer& layer,
                                               absl::Span<const TensorId> inputs) const;

  // Calls `layer` (added to this graph) on `inputs`, building it on its first call.
  absl::StatusOr<std::vector<TensorId>> Call(const std::shared_ptr<Layer>& layer,
                                             absl::Span<const TensorId> inputs);

  // Null when `id` does not exist.
  const SymbolicTensor* tensor(TensorId id) const;
  const std::vector<GraphNode>& nodes() const { return nodes_; }
  const std::vector<SymbolicTensor>& tensors() const { return tensors_; }
  std::shared_ptr<Layer> FindLayer(const std::string& name) const;
  int layer_count() const { return static_cast<int>(layers_by_name_.size()); }

 private:
  // The next unused auto name for `base`; Commit... records that it is now used.
  std::string NextName(const std::string& base) const;
  void CommitName(const std::string& base, const std::string& name);
  std::vector<TensorId> AppendCall(const std::shared_ptr<Layer>& layer,
                                   absl::Span<const TensorId> inputs,
                                   const std::vector<Shape>& output_shapes);

  std::vector<GraphNode> nodes_;
  std::vector<SymbolicTensor> tensors_;
  absl::flat_hash_map<std::string, std::shared_ptr<Layer>> layers_by_name_;
  absl::flat_hash_map<std::string, int> input_names_;
  absl::flat_hash_map<std::string, int> name_counts_;
};

}  // namespace kiln

#endif  // KILN_CORE_GRAPH_GRAPH_H_
