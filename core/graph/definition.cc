#include "core/graph/definition.h"

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "core/base/status.h"
#include "core/layers/registry.h"

namespace kiln {
namespace {

struct BuiltNode {
  std::vector<TensorId> outputs;
  std::shared_ptr<Layer> layer;  // null for inputs
  bool is_input = false;
};

// Sets the spec's layer name when it has none, so the layer is called after its node.
void NameAfterNode(v1::LayerSpec& spec, const std::string& id) {
  const auto* oneof = spec.GetDescriptor()->FindOneofByName("layer");
  const auto* field = spec.GetReflection()->GetOneofFieldDescriptor(spec, oneof);
  if (field == nullptr) return;
  auto* message = spec.GetReflection()->MutableMessage(&spec, field);
  const auto* name = message->GetDescriptor()->FindFieldByName("name");
  if (name != nullptr && message->GetReflection()->GetString(*message, name).empty()) {
    message->GetReflection()->SetString(message, name, id);
  }
}

// A node id for a layer or input called `name`: ':' marks an output index in references, so
// it becomes '_', and an id taken already gets a suffix. The name itself stays in the spec.
std::string NodeIdFor(const std::string& name, absl::flat_hash_set<std::string>& used) {
  const std::string base = absl::StrReplaceAll(name, {{":", "_"}});
  std::string id = base;
  for (int n = 1; used.contains(id); ++n) id = absl::StrCat(base, "_", n);
  used.insert(id);
  return id;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> BuildModel(const v1::ModelDefinition& definition,
                                                  Graph& graph, uint64_t seed) {
  absl::flat_hash_map<std::string, BuiltNode> nodes;
  std::vector<std::string> in_order;       // node ids, for the default inputs and outputs
  absl::flat_hash_set<TensorId> consumed;  // tensors some node reads
  // "id" or "id:k" -> tensor.
  auto resolve = [&](const std::string& ref, const std::string& path) -> absl::StatusOr<TensorId> {
    std::vector<std::string> parts = absl::StrSplit(ref, absl::MaxSplits(':', 1));
    int index = 0;
    if (parts.size() == 2 && !absl::SimpleAtoi(parts[1], &index)) {
      return FieldError(path, absl::StrCat("bad tensor reference \"", ref,
                                           "\": use a node id, or \"id:k\" for output k"));
    }
    auto it = nodes.find(parts[0]);
    if (it == nodes.end()) {
      return FieldError(path, absl::StrCat("unknown node \"", parts[0],
                                           "\" (a node can only read nodes listed before it)"));
    }
    if (index < 0 || index >= int(it->second.outputs.size())) {
      return FieldError(path,
                        absl::StrCat("node \"", parts[0], "\" has ", it->second.outputs.size(),
                                     " output(s); there is no "
                                     "output ",
                                     index));
    }
    return it->second.outputs[index];
  };

  for (int i = 0; i < definition.nodes_size(); ++i) {
    const v1::GraphNode& node = definition.nodes(i);
    const std::string path = absl::StrCat("nodes[", i, "]");
    if (node.id().empty()) return FieldError(absl::StrCat(path, ".id"), "every node needs an id");
    if (nodes.contains(node.id())) {
      return FieldError(absl::StrCat(path, ".id"),
                        absl::StrCat("node id \"", node.id(), "\" is used twice"));
    }
    std::vector<TensorId> inputs;
    for (int j = 0; j < node.inputs_size(); ++j) {
      KILN_ASSIGN_OR_RETURN(TensorId t,
                            resolve(node.inputs(j), absl::StrCat(path, ".inputs[", j, "]")));
      inputs.push_back(t);
      consumed.insert(t);
    }
    BuiltNode built;
    switch (node.op_case()) {
      case v1::GraphNode::kInput: {
        if (!inputs.empty()) {
          return FieldError(absl::StrCat(path, ".inputs"), "an input node takes no inputs");
        }
        const v1::Input& in = node.input();
        absl::StatusOr<TensorId> id =
            graph.AddInput(Shape(std::vector<int64_t>(in.shape().begin(), in.shape().end())),
                           in.name().empty() ? node.id() : in.name());
        if (!id.ok()) return WithFieldPrefix(id.status(), absl::StrCat(path, ".input"));
        built.outputs = {*id};
        built.is_input = true;
        break;
      }
      case v1::GraphNode::kLayer: {
        v1::LayerSpec spec = node.layer();
        NameAfterNode(spec, node.id());
        absl::StatusOr<std::unique_ptr<Layer>> layer = CreateLayer(spec, seed + uint64_t(i));
        if (!layer.ok()) return WithFieldPrefix(layer.status(), absl::StrCat(path, ".layer"));
        absl::StatusOr<std::shared_ptr<Layer>> added = graph.AddLayer(std::move(*layer));
        if (!added.ok()) return WithFieldPrefix(added.status(), absl::StrCat(path, ".layer"));
        built.layer = *added;
        break;
      }
      case v1::GraphNode::kCall: {
        auto it = nodes.find(node.call());
        if (it == nodes.end() || it->second.layer == nullptr) {
          return FieldError(absl::StrCat(path, ".call"),
                            absl::StrCat("\"", node.call(), "\" is not an earlier layer node"));
        }
        built.layer = it->second.layer;
        break;
      }
      case v1::GraphNode::OP_NOT_SET:
        return FieldError(path, "a node needs one of input, layer or call");
    }
    if (built.layer != nullptr) {
      absl::StatusOr<std::vector<TensorId>> outputs = graph.Call(built.layer, inputs);
      if (!outputs.ok()) return WithFieldPrefix(outputs.status(), path);
      built.outputs = *outputs;
    }
    nodes[node.id()] = std::move(built);
    in_order.push_back(node.id());
  }

  std::vector<TensorId> inputs, outputs;
  for (int i = 0; i < definition.inputs_size(); ++i) {
    const std::string path = absl::StrCat("inputs[", i, "]");
    auto it = nodes.find(definition.inputs(i));
    if (it == nodes.end() || !it->second.is_input) {
      return FieldError(path, absl::StrCat("\"", definition.inputs(i), "\" is not an input node"));
    }
    inputs.push_back(it->second.outputs[0]);
  }
  for (int i = 0; i < definition.outputs_size(); ++i) {
    KILN_ASSIGN_OR_RETURN(TensorId t,
                          resolve(definition.outputs(i), absl::StrCat("outputs[", i, "]")));
    outputs.push_back(t);
  }
  // Unlisted inputs and outputs default to every input node, and every tensor no node reads,
  // in node order: what an editor's canvas shows as open ends.
  for (const std::string& id : in_order) {
    const BuiltNode& node = nodes[id];
    if (definition.inputs_size() == 0 && node.is_input) inputs.push_back(node.outputs[0]);
    if (definition.outputs_size() != 0 || node.is_input) continue;
    for (TensorId t : node.outputs) {
      if (!consumed.contains(t)) outputs.push_back(t);
    }
  }
  const std::string name = definition.name().empty() ? "model" : definition.name();
  return Model::Create(graph, inputs, outputs, name);
}

v1::ModelDefinition DefinitionOf(const Model& model) {
  v1::ModelDefinition definition;
  definition.set_name(model.name());
  std::vector<std::string> refs(model.value_shapes().size());  // value -> "id" or "id:k"
  absl::flat_hash_set<std::string> used;
  for (size_t i = 0; i < model.input_values().size(); ++i) {
    const int value = model.input_values()[i];
    const std::string& name = model.input_names()[i];
    v1::GraphNode& node = *definition.add_nodes();
    node.set_id(NodeIdFor(name, used));
    if (node.id() != name) node.mutable_input()->set_name(name);
    const Shape sample = model.value_shapes()[value].WithoutBatch();
    for (int64_t d : sample.dims()) node.mutable_input()->add_shape(d);
    definition.add_inputs(node.id());
    refs[value] = node.id();
  }
  absl::flat_hash_map<const Layer*, int> calls;
  absl::flat_hash_map<const Layer*, std::string> first_node;
  for (const Model::Node& step : model.nodes()) {
    const Layer& layer = *step.layer;
    const int call = calls[&layer]++;
    v1::GraphNode& node = *definition.add_nodes();
    if (call == 0) {
      node.set_id(NodeIdFor(layer.name(), used));
      *node.mutable_layer() = layer.spec();
      NameAfterNode(*node.mutable_layer(), layer.name());
      first_node[&layer] = node.id();
    } else {
      node.set_id(NodeIdFor(absl::StrCat(layer.name(), "#", call), used));
      node.set_call(first_node[&layer]);
    }
    for (int value : step.inputs) node.add_inputs(refs[value]);
    for (size_t k = 0; k < step.outputs.size(); ++k) {
      refs[step.outputs[k]] = k == 0 ? node.id() : absl::StrCat(node.id(), ":", k);
    }
  }
  for (int value : model.output_values()) definition.add_outputs(refs[value]);
  return definition;
}

}  // namespace kiln
