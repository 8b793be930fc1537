#include "core/graph/graph.h"

#include "absl/strings/str_cat.h"
#include "core/base/status.h"

namespace kiln {

std::string Graph::UniqueName(const std::string& base) {
  for (;;) {
    int& count = name_counts_[base];
    std::string name = count == 0 ? base : absl::StrCat(base, "_", count);
    ++count;
    if (!layers_by_name_.contains(name) && !input_names_.contains(name)) return name;
  }
}

absl::StatusOr<TensorId> Graph::AddInput(const Shape& shape, const std::string& name) {
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
    return FieldError("name", absl::StrCat("The name \"", name,
                                           "\" is already used in this "
                                           "graph. Names must be unique."));
  }
  GraphNode node;
  node.input_name = name.empty() ? UniqueName("input_layer") : name;
  const TensorId id = static_cast<TensorId>(tensors_.size());
  std::vector<int64_t> dims = {kUnknownDim};
  dims.insert(dims.end(), shape.dims().begin(), shape.dims().end());
  tensors_.push_back(SymbolicTensor{Shape(dims), static_cast<int>(nodes_.size()), 0});
  node.outputs = {id};
  input_names_[node.input_name] = static_cast<int>(nodes_.size());
  nodes_.push_back(std::move(node));
  return id;
}

absl::StatusOr<std::shared_ptr<Layer>> Graph::AddLayer(std::unique_ptr<Layer> layer) {
  if (layer->name().empty()) {
    layer->set_name(UniqueName(layer->base_name()));
  } else if (layers_by_name_.contains(layer->name()) || input_names_.contains(layer->name())) {
    return absl::AlreadyExistsError(absl::StrCat("The name \"", layer->name(),
                                                 "\" is already used in this graph. Layer "
                                                 "names must be unique."));
  }
  std::shared_ptr<Layer> shared(std::move(layer));
  layers_by_name_[shared->name()] = shared;
  return shared;
}

absl::StatusOr<std::vector<TensorId>> Graph::Call(const std::shared_ptr<Layer>& layer,
                                                  absl::Span<const TensorId> inputs) {
  auto it = layers_by_name_.find(layer->name());
  if (it == layers_by_name_.end() || it->second != layer) {
    return absl::NotFoundError(absl::StrCat("layer \"", layer->name(), "\" is not in this graph"));
  }
  std::vector<Shape> shapes;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const SymbolicTensor* t = tensor(inputs[i]);
    if (t == nullptr) {
      return absl::NotFoundError(absl::StrCat("tensor ", inputs[i], " does not exist"));
    }
    shapes.push_back(t->shape);
  }
  KILN_ASSIGN_OR_RETURN(std::vector<Shape> out_shapes, layer->OutputShapes(shapes));
  KILN_RETURN_IF_ERROR(layer->BuildIfNeeded(shapes));

  GraphNode node;
  node.layer = layer;
  node.inputs.assign(inputs.begin(), inputs.end());
  const int node_index = static_cast<int>(nodes_.size());
  for (size_t k = 0; k < out_shapes.size(); ++k) {
    node.outputs.push_back(static_cast<TensorId>(tensors_.size()));
    tensors_.push_back(SymbolicTensor{out_shapes[k], node_index, static_cast<int>(k)});
  }
  std::vector<TensorId> outputs = node.outputs;
  nodes_.push_back(std::move(node));
  return outputs;
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
