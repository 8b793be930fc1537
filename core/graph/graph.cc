#include "core/graph/graph.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/base/status.h"

namespace kiln {

std::string Graph::NextName(const std::string& base) const {
  auto it = name_counts_.find(base);
  for (int count = it == name_counts_.end() ? 0 : it->second;; ++count) {
    std::string name = count == 0 ? base : absl::StrCat(base, "_", count);
    if (!layers_by_name_.contains(name) && !input_names_.contains(name)) return name;
  }
}

void Graph::CommitName(const std::string& base, const std::string& name) {
  // Keras's counters only move forward: record the number after the one used.
  int& count = name_counts_[base];
  int used = 0;
  if (name != base) absl::SimpleAtoi(absl::string_view(name).substr(base.size() + 1), &used);
  count = std::max(count, used + 1);
}

absl::Status Graph::CheckInput(const Shape& shape, const std::string& name) const {
  for (int i = 0; i < shape.rank(); ++i) {
    if (shape[i] <= 0) {
      return FieldError("shape", absl::StrCat("every dimension of an input's shape must be a "
                                              "positive integer (the batch dimension is not "
                                              "part of it). Received: shape=",
                                              shape.ToString()));
    }
  }
  if (!CheckedProduct(shape.dims()).has_value()) {
    return FieldError("shape",
                      absl::StrCat("an input of shape ", shape.ToString(), " has more than ",
                                   kMaxTensorElements, " elements per sample"));
  }
  if (!name.empty() && (input_names_.contains(name) || layers_by_name_.contains(name))) {
    return WithFieldPrefix(
        absl::AlreadyExistsError(absl::StrCat("The name \"", name,
                                              "\" is already used in this graph. Names "
                                              "must be unique.")),
        "name");
  }
  return absl::OkStatus();
}

absl::StatusOr<TensorId> Graph::AddInput(const Shape& shape, const std::string& name) {
  KILN_RETURN_IF_ERROR(CheckInput(shape, name));
  GraphNode node;
  node.input_name = name.empty() ? NextName("input_layer") : name;
  if (name.empty()) CommitName("input_layer", node.input_name);
  const TensorId id = static_cast<TensorId>(tensors_.size());
  std::vector<int64_t> dims = {kUnknownDim};
  dims.insert(dims.end(), shape.dims().begin(), shape.dims().end());
  tensors_.push_back(SymbolicTensor{Shape(dims), static_cast<int>(nodes_.size()), 0});
  node.outputs = {id};
  input_names_[node.input_name] = static_cast<int>(nodes_.size());
  nodes_.push_back(std::move(node));
  return id;
}

absl::StatusOr<Graph::PreparedLayer> Graph::PrepareAddLayer(
    std::unique_ptr<Layer> layer, absl::Span<const TensorId> inputs) const {
  PreparedLayer prepared;
  prepared.auto_named = layer->name().empty();
  const std::string name = prepared.auto_named ? NextName(layer->base_name()) : layer->name();
  if (!prepared.auto_named && (layers_by_name_.contains(name) || input_names_.contains(name))) {
    return WithFieldPrefix(
        absl::AlreadyExistsError(absl::StrCat("The name \"", name,
                                              "\" is already used in this graph. Layer names "
                                              "must be unique.")),
        layer->FieldPath("name"));
  }
  layer->set_name(name);
  if (!inputs.empty()) {
    absl::StatusOr<std::vector<Shape>> shapes = CheckCall(*layer, inputs);
    if (!shapes.ok()) return shapes.status();
    prepared.output_shapes = *std::move(shapes);
  }
  prepared.layer = std::move(layer);
  prepared.inputs.assign(inputs.begin(), inputs.end());
  return prepared;
}

Graph::AddedLayer Graph::CommitAddLayer(PreparedLayer prepared) {
  const std::string name = prepared.layer->name();
  if (prepared.auto_named) CommitName(prepared.layer->base_name(), name);
  AddedLayer added;
  added.layer = std::shared_ptr<Layer>(std::move(prepared.layer));
  layers_by_name_[name] = added.layer;
  if (!prepared.inputs.empty()) {
    added.outputs = AppendCall(added.layer, prepared.inputs, prepared.output_shapes);
  }
  return added;
}

absl::StatusOr<Graph::AddedLayer> Graph::AddLayer(std::unique_ptr<Layer> layer,
                                                  absl::Span<const TensorId> inputs) {
  KILN_ASSIGN_OR_RETURN(PreparedLayer prepared, PrepareAddLayer(std::move(layer), inputs));
  return CommitAddLayer(std::move(prepared));
}

absl::StatusOr<std::shared_ptr<Layer>> Graph::AddLayer(std::unique_ptr<Layer> layer) {
  KILN_ASSIGN_OR_RETURN(AddedLayer added, AddLayer(std::move(layer), {}));
  return added.layer;
}

absl::StatusOr<std::vector<Shape>> Graph::InputShapes(absl::Span<const TensorId> inputs) const {
  std::vector<Shape> shapes;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const SymbolicTensor* t = tensor(inputs[i]);
    if (t == nullptr) {
      return WithFieldPrefix(
          absl::NotFoundError(absl::StrCat("tensor ", inputs[i], " does not exist")),
          absl::StrCat("inputs[", i, "]"));
    }
    shapes.push_back(t->shape);
  }
  return shapes;
}

absl::StatusOr<std::vector<Shape>> Graph::CheckCall(Layer& layer,
                                                    absl::Span<const TensorId> inputs) const {
  KILN_ASSIGN_OR_RETURN(std::vector<Shape> shapes, InputShapes(inputs));
  // Errors about the inputs as a whole (shapes that do not fit together) are put on "inputs".
  auto on_inputs = [](const absl::Status& status) {
    return FieldPathOf(status).has_value() || status.code() != absl::StatusCode::kInvalidArgument
               ? status
               : WithFieldPrefix(status, "inputs");
  };
  absl::StatusOr<std::vector<Shape>> out_shapes = layer.OutputShapes(shapes);
  if (!out_shapes.ok()) return on_inputs(out_shapes.status());
  if (absl::Status built = layer.BuildIfNeeded(shapes); !built.ok()) return on_inputs(built);
  return out_shapes;
}

std::vector<TensorId> Graph::AppendCall(const std::shared_ptr<Layer>& layer,
                                        absl::Span<const TensorId> inputs,
                                        const std::vector<Shape>& output_shapes) {
  GraphNode node;
  node.layer = layer;
  node.inputs.assign(inputs.begin(), inputs.end());
  const int node_index = static_cast<int>(nodes_.size());
  for (size_t k = 0; k < output_shapes.size(); ++k) {
    node.outputs.push_back(static_cast<TensorId>(tensors_.size()));
    tensors_.push_back(SymbolicTensor{output_shapes[k], node_index, static_cast<int>(k)});
  }
  std::vector<TensorId> outputs = node.outputs;
  nodes_.push_back(std::move(node));
  return outputs;
}

absl::StatusOr<std::vector<TensorId>> Graph::Call(const std::shared_ptr<Layer>& layer,
                                                  absl::Span<const TensorId> inputs) {
  auto it = layers_by_name_.find(layer->name());
  if (it == layers_by_name_.end() || it->second != layer) {
    return absl::NotFoundError(absl::StrCat("layer \"", layer->name(), "\" is not in this graph"));
  }
  KILN_ASSIGN_OR_RETURN(std::vector<Shape> out_shapes, CheckCall(*layer, inputs));
  return AppendCall(layer, inputs, out_shapes);
}

const SymbolicTensor* Graph::tensor(TensorId id) const {
  if (id < 0 || id >= static_cast<TensorId>(tensors_.size())) return nullptr;
  return &tensors_[id];
}

std::shared_ptr<Layer> Graph::FindLayer(const std::string& name) const {
  auto it = layers_by_name_.find(name);
  return it == layers_by_name_.end() ? nullptr : it->second;
}

}  // namespace kiln
