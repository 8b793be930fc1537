#include "core/saving/keras_model.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/algorithm/container.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "core/base/status.h"
#include "core/graph/model.h"
#include "core/keras/keras_class.h"
#include "core/train/loss.h"

namespace kiln {
namespace {

constexpr char kCallSeparator = '#';  // node id of a layer's k-th call: "<layer>#<k>"

// One tensor reference: a layer's call and which of its outputs.
struct TensorRef {
  std::string layer;
  int node = 0;
  int tensor = 0;
  std::string path;  // where the reference is, for errors
};

// One call of a layer (an inbound node), or an input layer's tensor.
struct Call {
  int layer_index = 0;  // in config.layers
  int node = 0;         // the layer's k-th call
  std::vector<TensorRef> inputs;
  std::string path;
};

struct LayerEntry {
  std::string name, class_name, path;
  bool is_input = false;
  v1::GraphNode node;  // the input, or the layer (without inputs)
  int calls = 0;
};

std::string NodeId(const std::string& layer, int node) {
  return node == 0 ? layer : absl::StrCat(layer, std::string(1, kCallSeparator), node);
}

absl::Status Expect(bool ok, const std::string& path, absl::string_view what, const Json& got) {
  if (ok) return absl::OkStatus();
  std::string shown = got.dump();
  if (shown.size() > 80) shown = absl::StrCat(shown.substr(0, 77), "...");
  return FieldError(path, absl::StrCat("expected ", what, ", got ", shown));
}

const Json& Member(const Json& object, const char* key) {
  static const Json* const kNull = new Json(nullptr);
  return object.is_object() && object.contains(key) ? object[key] : *kNull;
}

// [name, node, tensor] or [name, node, tensor, kwargs] (Keras 2 and keras_history).
absl::StatusOr<TensorRef> ParseHistory(const Json& value, const std::string& path) {
  KILN_RETURN_IF_ERROR(Expect(value.is_array() && (value.size() == 3 || value.size() == 4) &&
                                  value[0].is_string() && value[1].is_number_integer() &&
                                  value[2].is_number_integer(),
                              path, "[layer name, node index, tensor index]", value));
  TensorRef ref{value[0].get<std::string>(), value[1].get<int>(), value[2].get<int>(), path};
  if (value.size() == 4) {
    KILN_RETURN_IF_ERROR(Expect(value[3].is_object(), JsonPath(path, 3), "call kwargs", value[3]));
  }
  return ref;
}

// Every __keras_tensor__ in a Keras 3 call's args, in order.
absl::Status CollectKerasTensors(const Json& value, const std::string& path,
                                 std::vector<TensorRef>& out) {
  if (value.is_array()) {
    for (size_t i = 0; i < value.size(); ++i) {
      KILN_RETURN_IF_ERROR(CollectKerasTensors(value[i], JsonPath(path, i), out));
    }
    return absl::OkStatus();
  }
  if (value.is_object() && Member(value, "class_name") == "__keras_tensor__") {
    const std::string history = JsonPath(JsonPath(path, "config"), "keras_history");
    KILN_ASSIGN_OR_RETURN(TensorRef ref,
                          ParseHistory(Member(Member(value, "config"), "keras_history"), history));
    out.push_back(std::move(ref));
    return absl::OkStatus();
  }
  return FieldError(
      path, absl::StrCat("Kiln calls layers on tensors only; this call passes ", value.dump()));
}

// The call kwargs Keras injects (training, mask) are accepted; any other is refused.
absl::Status CheckKwargs(const Json& kwargs, const std::string& path) {
  if (kwargs.is_null()) return absl::OkStatus();
  KILN_RETURN_IF_ERROR(Expect(kwargs.is_object(), path, "call kwargs (an object)", kwargs));
  for (const auto& [key, value] : kwargs.items()) {
    if (key == "training" || (key == "mask" && value.is_null())) continue;
    return FieldError(JsonPath(path, key),
                      absl::StrCat("Kiln does not take the call argument `", key, "`"));
  }
  return absl::OkStatus();
}

// One inbound node, in Keras 3's {"args", "kwargs"} form or Keras 2's list of entries.
absl::StatusOr<std::vector<TensorRef>> ParseInboundNode(const Json& node, const std::string& path) {
  std::vector<TensorRef> refs;
  if (node.is_object()) {
    KILN_RETURN_IF_ERROR(CollectKerasTensors(Member(node, "args"), JsonPath(path, "args"), refs));
    KILN_RETURN_IF_ERROR(CheckKwargs(Member(node, "kwargs"), JsonPath(path, "kwargs")));
  } else {
    KILN_RETURN_IF_ERROR(Expect(node.is_array(), path, "an inbound node", node));
    for (size_t i = 0; i < node.size(); ++i) {
      KILN_ASSIGN_OR_RETURN(TensorRef ref, ParseHistory(node[i], JsonPath(path, i)));
      if (node[i].size() == 4) {
        KILN_RETURN_IF_ERROR(CheckKwargs(node[i][3], JsonPath(JsonPath(path, i), 3)));
      }
      refs.push_back(std::move(ref));
    }
  }
  if (refs.empty()) return FieldError(path, "a layer call needs at least one input tensor");
  return refs;
}

// input_layers / output_layers: one [name, node, tensor], or a list of them.
absl::StatusOr<std::vector<TensorRef>> ParseEnds(const Json& value, const std::string& path) {
  if (value.is_array() && !value.empty() && value[0].is_string()) {
    KILN_ASSIGN_OR_RETURN(TensorRef ref, ParseHistory(value, path));
    return std::vector<TensorRef>{ref};
  }
  KILN_RETURN_IF_ERROR(Expect(value.is_array() && !value.empty(), path,
                              "a list of [layer name, node index, tensor index]", value));
  std::vector<TensorRef> refs;
  for (size_t i = 0; i < value.size(); ++i) {
    KILN_ASSIGN_OR_RETURN(TensorRef ref, ParseHistory(value[i], JsonPath(path, i)));
    refs.push_back(std::move(ref));
  }
  return refs;
}

// batch_shape / batch_input_shape of an input: every dimension but the batch known.
absl::Status ParseInputShape(const Json& shape, const std::string& path, const std::string& name,
                             v1::Input& input) {
  KILN_RETURN_IF_ERROR(Expect(shape.is_array() && !shape.empty(), path,
                              "a batch shape such as [null, 28, 28, 1]", shape));
  for (size_t i = 1; i < shape.size(); ++i) {
    if (!shape[i].is_number_integer() || shape[i].get<int64_t>() <= 0) {
      return FieldError(
          JsonPath(path, i),
          absl::StrCat("Kiln needs every dimension of input \"", name,
                       "\" but the batch to be a positive integer; got ", shape[i].dump()));
    }
    input.add_shape(shape[i].get<int64_t>());
  }
  return absl::OkStatus();
}

absl::StatusOr<LayerEntry> ParseInputLayer(const Json& config, const std::string& path,
                                           const std::string& name) {
  LayerEntry entry;
  entry.is_input = true;
  v1::Input& input = *entry.node.mutable_input();
  input.set_name(name);
  const char* shape_key = config.contains("batch_shape") ? "batch_shape" : "batch_input_shape";
  KILN_RETURN_IF_ERROR(
      ParseInputShape(Member(config, shape_key), JsonPath(path, shape_key), name, input));
  for (const auto& [key, value] : config.items()) {
    const std::string at = JsonPath(path, key);
    if (key == "batch_shape" || key == "batch_input_shape" || key == "name") continue;
    if (key == "dtype") {
      const Json& dtype = value.is_object() ? Member(Member(value, "config"), "name") : value;
      KILN_RETURN_IF_ERROR(Expect(dtype.is_string(), at, "a dtype", value));
      input.set_dtype(dtype.get<std::string>());
      continue;
    }
    if ((key == "sparse" || key == "ragged" || key == "optional") && value == Json(false)) continue;
    return FieldError(at, absl::StrCat("Kiln's inputs take no `", key, "`=", value.dump(),
                                       " (only dense float32 inputs of a fixed shape)"));
  }
  return entry;
}

absl::StatusOr<LayerEntry> ParseLayer(const Json& layer, const std::string& path, bool sequential) {
  KILN_RETURN_IF_ERROR(Expect(layer.is_object(), path, "a layer object", layer));
  const Json& class_name = Member(layer, "class_name");
  KILN_RETURN_IF_ERROR(
      Expect(class_name.is_string(), JsonPath(path, "class_name"), "a class name", class_name));
  const Json& config = Member(layer, "config");
  const std::string config_path = JsonPath(path, "config");
  KILN_RETURN_IF_ERROR(Expect(config.is_object(), config_path, "the layer's config", config));
  const Json& name_json = layer.contains("name") ? Member(layer, "name") : Member(config, "name");
  KILN_RETURN_IF_ERROR(Expect(name_json.is_string() && !name_json.get<std::string>().empty(),
                              JsonPath(path, "name"), "the layer's name", name_json));
  const std::string name = name_json.get<std::string>();
  if (name.find(':') != std::string::npos || name.find(kCallSeparator) != std::string::npos) {
    return FieldError(JsonPath(path, "name"),
                      absl::StrCat("Kiln's layer names cannot hold ':' or '#': \"", name, "\""));
  }
  LayerEntry entry;
  if (class_name == "InputLayer") {
    KILN_ASSIGN_OR_RETURN(entry, ParseInputLayer(config, config_path, name));
  } else {
    const auto* field = FindKerasClass(v1::LayerSpec::descriptor()->FindOneofByName("layer"),
                                       class_name.get<std::string>());
    if (field == nullptr) {
      return FieldError(
          JsonPath(path, "class_name"),
          absl::StrCat("Kiln has no layer class \"", class_name.get<std::string>(),
                       "\" yet (layer \"", name, "\"); `kiln catalogue` lists the layers it has"));
    }
    Json layer_config = config;
    // A Sequential model's first layer may carry the input's shape (Keras 2).
    if (sequential) {
      for (const char* key : {"batch_input_shape", "batch_shape", "input_shape"}) {
        if (layer_config.contains(key)) layer_config.erase(key);
      }
    }
    v1::LayerSpec* spec = entry.node.mutable_layer();
    google::protobuf::Message* message = spec->GetReflection()->MutableMessage(spec, field);
    KILN_RETURN_IF_ERROR(MessageFromKerasConfig(layer_config, config_path, *message));
    message->GetReflection()->SetString(message, message->GetDescriptor()->FindFieldByName("name"),
                                        name);
  }
  entry.name = name;
  entry.class_name = class_name.get<std::string>();
  entry.path = path;
  entry.node.set_id(name);
  return entry;
}

// Keras's loss and metric objects by their names.
absl::StatusOr<std::string> LossOrMetricName(const Json& value, const std::string& path,
                                             bool* from_logits) {
  if (value.is_string()) return value.get<std::string>();
  KILN_RETURN_IF_ERROR(Expect(value.is_object() && Member(value, "class_name").is_string(), path,
                              "a name or a Keras object", value));
  const Json& config = Member(value, "config");
  if (from_logits != nullptr) {
    *from_logits = Member(config, "from_logits") == Json(true);
    for (const auto& [key, item] : config.items()) {
      const bool neutral = key == "name" || key == "from_logits" || key == "dtype" ||
                           (key == "reduction" && item == "sum_over_batch_size") ||
                           (key == "label_smoothing" && item == Json(0.0)) ||
                           (key == "axis" && item == Json(-1)) ||
                           (key == "ignore_class" && item.is_null());
      if (!neutral) {
        return FieldError(JsonPath(JsonPath(path, "config"), key),
                          absl::StrCat("Kiln's losses take no `", key, "`=", item.dump()));
      }
    }
    return Member(value, "class_name").get<std::string>();
  }
  // Metrics: the config's name is what compile() gave ("accuracy").
  if (Member(config, "name").is_string()) return Member(config, "name").get<std::string>();
  return Member(value, "class_name").get<std::string>();
}

absl::Status ParseCompile(const Json& compile, const std::string& path, v1::CompileConfig& out) {
  KILN_RETURN_IF_ERROR(KerasObjectFromJson(Member(compile, "optimizer"),
                                           JsonPath(path, "optimizer"), *out.mutable_optimizer()));
  bool from_logits = false;
  const Json& loss = Member(compile, "loss");
  if (!loss.is_null()) {
    KILN_ASSIGN_OR_RETURN(*out.mutable_loss()->mutable_name(),
                          LossOrMetricName(loss, JsonPath(path, "loss"), &from_logits));
    out.mutable_loss()->set_from_logits(from_logits);
  }
  const Json& metrics = Member(compile, "metrics");
  if (!metrics.is_null()) {
    KILN_RETURN_IF_ERROR(
        Expect(metrics.is_array(), JsonPath(path, "metrics"), "a list of metrics", metrics));
    for (size_t i = 0; i < metrics.size(); ++i) {
      KILN_ASSIGN_OR_RETURN(
          std::string name,
          LossOrMetricName(metrics[i], JsonPath(JsonPath(path, "metrics"), i), nullptr));
      out.add_metrics(std::move(name));
    }
  }
  for (const char* key : {"loss_weights", "weighted_metrics"}) {
    if (!Member(compile, key).is_null()) {
      return FieldError(JsonPath(path, key), absl::StrCat("Kiln compiles without `", key, "`"));
    }
  }
  return absl::OkStatus();
}

// Orders the calls so that each comes after the calls that produce its inputs (Keras lists a
// shared layer once, at its first call, although later calls may read later layers), keeping
// the file's order where it can. Checks every reference on the way.
class GraphBuilder {
 public:
  GraphBuilder(std::vector<LayerEntry> layers, std::vector<Call> calls, KerasModel& out)
      : layers_(std::move(layers)), calls_(std::move(calls)), out_(out) {}

  absl::Status Build() {
    for (size_t i = 0; i < layers_.size(); ++i) by_name_[layers_[i].name] = static_cast<int>(i);
    for (const Call& call : calls_) {
      for (const TensorRef& ref : call.inputs) KILN_RETURN_IF_ERROR(Check(ref));
    }
    std::set<std::pair<int, int>> done;  // (layer, node) emitted
    std::vector<bool> emitted(calls_.size(), false);
    for (size_t i = 0; i < layers_.size(); ++i) {
      if (!layers_[i].is_input) continue;
      Emit(layers_[i], 0, {});
      done.insert({int(i), 0});
    }
    for (size_t left = calls_.size(); left > 0; --left) {
      int next = -1;
      for (size_t c = 0; c < calls_.size() && next < 0; ++c) {
        if (emitted[c]) continue;
        bool ready = true;
        for (const TensorRef& ref : calls_[c].inputs) {
          ready &= done.count({by_name_[ref.layer], ref.node}) > 0;
        }
        if (ready) next = static_cast<int>(c);
      }
      if (next < 0) return CycleError(emitted);
      const Call& call = calls_[next];
      emitted[next] = true;
      done.insert({call.layer_index, call.node});
      Emit(layers_[call.layer_index], call.node, call.inputs, call.path);
    }
    return absl::OkStatus();
  }

  absl::Status Check(const TensorRef& ref) const {
    auto it = by_name_.find(ref.layer);
    if (it == by_name_.end()) {
      return FieldError(ref.path, absl::StrCat("no layer named \"", ref.layer, "\" in the model"));
    }
    const LayerEntry& layer = layers_[it->second];
    const int calls = layer.is_input ? 1 : layer.calls;
    if (ref.node < 0 || ref.node >= calls) {
      return FieldError(ref.path, absl::StrCat("layer \"", ref.layer, "\" has ", calls,
                                               " inbound node(s); there is no node ", ref.node));
    }
    if (ref.tensor != 0) {
      return FieldError(
          ref.path, absl::StrCat("layer \"", ref.layer, "\" has one output; there is no tensor ",
                                 ref.tensor));
    }
    return absl::OkStatus();
  }

  std::string Ref(const TensorRef& ref) const {
    const std::string id = NodeId(ref.layer, ref.node);
    return ref.tensor == 0 ? id : absl::StrCat(id, ":", ref.tensor);
  }

 private:
  void Emit(const LayerEntry& layer, int node, const std::vector<TensorRef>& inputs,
            const std::string& path = "") {
    v1::GraphNode* out = out_.definition.add_nodes();
    if (node == 0) {
      *out = layer.node;
    } else {
      out->set_id(NodeId(layer.name, node));
      out->set_call(layer.name);
    }
    for (const TensorRef& ref : inputs) out->add_inputs(Ref(ref));
    out_.node_paths.push_back({layer.path, path.empty() ? layer.path : path});
  }

  absl::Status CycleError(const std::vector<bool>& emitted) const {
    std::vector<std::string> stuck;
    std::string path;
    for (size_t c = 0; c < calls_.size(); ++c) {
      if (emitted[c]) continue;
      if (path.empty()) path = calls_[c].path;
      stuck.push_back(NodeId(layers_[calls_[c].layer_index].name, calls_[c].node));
    }
    return FieldError(path, absl::StrCat("the model's graph has a cycle: these calls wait on each "
                                         "other's outputs: ",
                                         absl::StrJoin(stuck, ", ")));
  }

  std::vector<LayerEntry> layers_;
  std::vector<Call> calls_;
  KerasModel& out_;
  absl::flat_hash_map<std::string, int> by_name_;
};

void AddWeightGroup(KerasModel& model, std::map<std::string, int>& used, const std::string& layer,
                    const std::string& class_name) {
  std::string name = KerasSnakeCase(class_name);
  const int n = used[name]++;
  if (n > 0) absl::StrAppend(&name, "_", n);
  model.weight_groups.emplace_back(layer, absl::StrCat("layers/", name));
}

absl::Status ParseFunctional(const Json& config, const std::string& path, KerasModel& model) {
  const Json& layers_json = Member(config, "layers");
  const std::string layers_path = JsonPath(path, "layers");
  KILN_RETURN_IF_ERROR(
      Expect(layers_json.is_array(), layers_path, "the model's list of layers", layers_json));
  std::vector<LayerEntry> layers;
  std::vector<Call> calls;
  absl::flat_hash_map<std::string, size_t> seen;
  std::map<std::string, int> used;
  for (size_t i = 0; i < layers_json.size(); ++i) {
    const std::string at = JsonPath(layers_path, i);
    KILN_ASSIGN_OR_RETURN(LayerEntry entry, ParseLayer(layers_json[i], at, false));
    if (auto it = seen.find(entry.name); it != seen.end()) {
      return FieldError(JsonPath(at, "name"),
                        absl::StrCat("The name \"", entry.name, "\" is used by layers[", it->second,
                                     "] and layers[", i, "]; layer names must be unique"));
    }
    seen[entry.name] = i;
    AddWeightGroup(model, used, entry.name, entry.class_name);
    const Json& nodes = Member(layers_json[i], "inbound_nodes");
    const std::string nodes_path = JsonPath(at, "inbound_nodes");
    if (!entry.is_input) {
      KILN_RETURN_IF_ERROR(Expect(nodes.is_array() && !nodes.empty(), nodes_path,
                                  "the layer's inbound nodes (Kiln keeps called layers only)",
                                  nodes));
      for (size_t k = 0; k < nodes.size(); ++k) {
        const std::string node_path = JsonPath(nodes_path, k);
        KILN_ASSIGN_OR_RETURN(std::vector<TensorRef> inputs, ParseInboundNode(nodes[k], node_path));
        calls.push_back(Call{static_cast<int>(layers.size()), static_cast<int>(k),
                             std::move(inputs), node_path});
      }
      entry.calls = static_cast<int>(nodes.size());
    }
    layers.push_back(std::move(entry));
  }
  const std::string inputs_path = JsonPath(path, "input_layers");
  const std::string outputs_path = JsonPath(path, "output_layers");
  KILN_ASSIGN_OR_RETURN(std::vector<TensorRef> inputs,
                        ParseEnds(Member(config, "input_layers"), inputs_path));
  KILN_ASSIGN_OR_RETURN(std::vector<TensorRef> outputs,
                        ParseEnds(Member(config, "output_layers"), outputs_path));
  GraphBuilder builder(std::move(layers), std::move(calls), model);
  KILN_RETURN_IF_ERROR(builder.Build());
  for (const TensorRef& ref : inputs) {
    KILN_RETURN_IF_ERROR(builder.Check(ref));
    model.definition.add_inputs(builder.Ref(ref));
  }
  for (const TensorRef& ref : outputs) {
    KILN_RETURN_IF_ERROR(builder.Check(ref));
    model.definition.add_outputs(builder.Ref(ref));
  }
  return absl::OkStatus();
}

// A Sequential model: its layers called one after the other on its input.
absl::Status ParseSequential(const Json& config, const std::string& path, KerasModel& model) {
  const Json& layers_json = Member(config, "layers");
  const std::string layers_path = JsonPath(path, "layers");
  KILN_RETURN_IF_ERROR(Expect(layers_json.is_array() && !layers_json.empty(), layers_path,
                              "the model's list of layers", layers_json));
  std::map<std::string, int> used;
  absl::flat_hash_map<std::string, size_t> seen;
  std::string previous;
  for (size_t i = 0; i < layers_json.size(); ++i) {
    const std::string at = JsonPath(layers_path, i);
    KILN_ASSIGN_OR_RETURN(LayerEntry entry, ParseLayer(layers_json[i], at, true));
    if (auto it = seen.find(entry.name); it != seen.end()) {
      return FieldError(JsonPath(at, "name"),
                        absl::StrCat("The name \"", entry.name, "\" is used by layers[", it->second,
                                     "] and layers[", i, "]; layer names must be unique"));
    }
    seen[entry.name] = i;
    if (i == 0 && !entry.is_input) {
      // Keras 2: the first layer carries the input's shape; a Sequential built without an
      // Input has it as the model's build_input_shape.
      const Json& first = Member(layers_json[i], "config");
      const bool own = first.contains("batch_input_shape") || first.contains("batch_shape");
      const char* key = !own                                  ? "build_input_shape"
                        : first.contains("batch_input_shape") ? "batch_input_shape"
                                                              : "batch_shape";
      LayerEntry input;
      input.is_input = true;
      input.name = "input_layer";
      input.node.set_id(input.name);
      input.node.mutable_input()->set_name(input.name);
      KILN_RETURN_IF_ERROR(
          ParseInputShape(Member(own ? first : config, key),
                          own ? JsonPath(JsonPath(at, "config"), key) : JsonPath(path, key),
                          input.name, *input.node.mutable_input()));
      *model.definition.add_nodes() = input.node;
      model.node_paths.push_back({at, at});
      previous = input.name;
    }
    if (entry.is_input) {
      if (i != 0) return FieldError(at, "an InputLayer can only come first in a Sequential model");
    } else {
      entry.node.add_inputs(previous);
      AddWeightGroup(model, used, entry.name, entry.class_name);
    }
    *model.definition.add_nodes() = entry.node;
    model.node_paths.push_back({at, at});
    previous = entry.name;
  }
  model.definition.add_outputs(previous);
  return absl::OkStatus();
}

std::string LineAndColumn(absl::string_view text, size_t offset) {
  offset = std::min(offset, text.size());
  const size_t line = std::count(text.begin(), text.begin() + offset, '\n') + 1;
  const size_t start = text.rfind('\n', offset == 0 ? 0 : offset - 1);
  const size_t column = start == absl::string_view::npos ? offset + 1 : offset - start;
  return absl::StrCat("line ", line, ", column ", column);
}

}  // namespace

std::string KerasModel::JsonPathOf(absl::string_view definition_path) const {
  int node = -1;
  absl::string_view rest = definition_path;
  if (absl::ConsumePrefix(&rest, "nodes[")) {
    const size_t close = rest.find(']');
    if (close == absl::string_view::npos || !absl::SimpleAtoi(rest.substr(0, close), &node) ||
        node < 0 || node >= static_cast<int>(node_paths.size())) {
      return std::string(definition_path);
    }
    rest.remove_prefix(close + 1);
    const NodePath& at = node_paths[node];
    // ".layer.<case>.<field>..." is "<layer>.config.<field>..."
    if (absl::ConsumePrefix(&rest, ".layer.")) {
      const size_t dot = rest.find('.');
      if (dot == absl::string_view::npos) return absl::StrCat(at.layer, ".config");
      return absl::StrCat(at.layer, ".config", rest.substr(dot));
    }
    if (absl::ConsumePrefix(&rest, ".input.")) return absl::StrCat(at.layer, ".config.", rest);
    return absl::StrCat(at.call, rest);
  }
  if (absl::ConsumePrefix(&rest, "inputs")) return absl::StrCat("config.input_layers", rest);
  if (absl::ConsumePrefix(&rest, "outputs")) return absl::StrCat("config.output_layers", rest);
  return std::string(definition_path);
}

static absl::StatusOr<KerasModel> ParseKerasDocument(absl::string_view text, bool compile);

// Deeper documents are refused before parsing: the converters recurse on nesting.
constexpr int kMaxJsonDepth = 64;

// The first place where `text` nests deeper than kMaxJsonDepth, or npos.
static size_t TooDeep(absl::string_view text) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) return i;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return absl::string_view::npos;
}

absl::StatusOr<KerasModel> ParseKerasModel(absl::string_view text, bool compile) {
  if (const size_t at = TooDeep(text); at != absl::string_view::npos) {
    return FieldError("", absl::StrCat("the document nests deeper than ", kMaxJsonDepth,
                                       " levels at ", LineAndColumn(text, at)));
  }
  try {
    return ParseKerasDocument(text, compile);
  } catch (const Json::exception& e) {
    // The converters check types before reading values; this is a safety net.
    return FieldError("", absl::StrCat("unexpected JSON: ", e.what()));
  }
}

static absl::StatusOr<KerasModel> ParseKerasDocument(absl::string_view text, bool compile) {
  Json root;
  try {
    root = Json::parse(text.begin(), text.end());
  } catch (const Json::parse_error& e) {
    return FieldError(
        "", absl::StrCat("not valid JSON: at ", LineAndColumn(text, e.byte - 1), ": ", e.what()));
  }
  KILN_RETURN_IF_ERROR(Expect(root.is_object(), "", "a Keras model (a JSON object)", root));
  KerasModel model;
  std::string class_name = "Functional";
  const Json* config = &root;
  std::string path;
  if (root.contains("class_name")) {
    KILN_RETURN_IF_ERROR(Expect(root["class_name"].is_string(), "class_name",
                                "the model's class name", root["class_name"]));
    class_name = root["class_name"].get<std::string>();
    config = &root["config"];
    path = "config";
  }
  KILN_RETURN_IF_ERROR(Expect(config->is_object(), path, "the model's config", *config));
  const Json& name = Member(*config, "name");
  model.definition.set_name(name.is_string() ? name.get<std::string>() : "model");
  if (class_name == "Functional" || class_name == "Model") {
    KILN_RETURN_IF_ERROR(ParseFunctional(*config, path, model));
  } else if (class_name == "Sequential") {
    KILN_RETURN_IF_ERROR(ParseSequential(*config, path, model));
  } else {
    return FieldError("class_name", absl::StrCat("Kiln reads Functional and Sequential models, "
                                                 "not \"",
                                                 class_name, "\""));
  }
  const Json& compile_config = Member(root, "compile_config");
  if (compile && compile_config.is_object() && !compile_config.empty()) {
    KILN_RETURN_IF_ERROR(
        ParseCompile(compile_config, "compile_config", *model.definition.mutable_compile()));
  }
  return model;
}

namespace {

// Who produces each value of `model`: the layer's name, which of its calls, which output.
struct Producer {
  std::string layer;
  int node = 0, tensor = 0;
};

Json KerasTensor(const Model& model, int value, const Producer& p) {
  Json shape = Json::array({nullptr});
  const Shape& s = model.value_shapes()[value];
  for (int i = 1; i < s.rank(); ++i) shape.push_back(s[i]);
  return Json{{"class_name", "__keras_tensor__"},
              {"config",
               {{"shape", shape},
                {"dtype", "float32"},
                {"keras_history", Json::array({p.layer, p.node, p.tensor})}}}};
}

Json BatchShape(const Shape& shape) {
  Json out = Json::array({nullptr});
  for (int i = 1; i < shape.rank(); ++i) out.push_back(shape[i]);
  return out;
}

Json CompileJson(const v1::CompileConfig& compile) {
  Json loss = compile.loss().name();
  if (compile.loss().from_logits()) {
    for (const KerasName& name : LossNames()) {
      if (name.name == compile.loss().name() ||
          absl::c_linear_search(name.aliases, compile.loss().name())) {
        loss = Json{
            {"module", "keras.losses"},
            {"class_name", name.aliases.front()},
            {"config",
             {{"name", name.name}, {"reduction", "sum_over_batch_size"}, {"from_logits", true}}},
            {"registered_name", nullptr}};
      }
    }
  }
  return Json{{"optimizer", KerasObjectJson(compile.optimizer())},
              {"loss", loss},
              {"loss_weights", nullptr},
              {"metrics",
               Json(std::vector<std::string>(compile.metrics().begin(), compile.metrics().end()))},
              {"weighted_metrics", nullptr},
              {"run_eagerly", false},
              {"steps_per_execution", 1},
              {"jit_compile", false}};
}

}  // namespace

Json KerasModelJson(const Model& model, const v1::CompileConfig* compile) {
  std::vector<Producer> producers(model.value_shapes().size());
  Json layers = Json::array();
  for (size_t i = 0; i < model.input_values().size(); ++i) {
    const std::string& name = model.input_names()[i];
    producers[model.input_values()[i]] = Producer{name, 0, 0};
    layers.push_back(
        Json{{"module", "keras.layers"},
             {"class_name", "InputLayer"},
             {"config",
              {{"batch_shape", BatchShape(model.value_shapes()[model.input_values()[i]])},
               {"dtype", "float32"},
               {"sparse", false},
               {"ragged", false},
               {"name", name},
               {"optional", false}}},
             {"registered_name", nullptr},
             {"name", name},
             {"inbound_nodes", Json::array()}});
  }
  absl::flat_hash_map<const Layer*, size_t> entry_of;  // layer -> index in `layers`
  absl::flat_hash_map<const Layer*, int> calls;
  for (const Model::Node& node : model.nodes()) {
    const Layer* layer = node.layer.get();
    if (!entry_of.contains(layer)) {
      entry_of[layer] = layers.size();
      const auto* field = layer->spec().GetReflection()->GetOneofFieldDescriptor(
          layer->spec(), v1::LayerSpec::descriptor()->FindOneofByName("layer"));
      const auto& message = layer->spec().GetReflection()->GetMessage(layer->spec(), field);
      Json entry = {{"module", KerasClassOf(field->message_type()).module()},
                    {"class_name", layer->class_name()},
                    {"config", KerasConfigOf(message)},
                    {"registered_name", nullptr}};
      if (!layer->variables().empty()) {
        Json input_shape = Json::array();
        for (int v : node.inputs) input_shape.push_back(BatchShape(model.value_shapes()[v]));
        entry["build_config"] = {
            {"input_shape", node.inputs.size() == 1 ? input_shape[0] : input_shape}};
      }
      entry["name"] = layer->name();
      entry["inbound_nodes"] = Json::array();
      layers.push_back(std::move(entry));
    }
    const int call = calls[layer]++;
    Json args = Json::array();
    for (int v : node.inputs) args.push_back(KerasTensor(model, v, producers[v]));
    Json inbound = {
        {"args", node.inputs.size() == 1 ? Json::array({args[0]}) : Json::array({args})},
        {"kwargs", Json::object()}};
    layers[entry_of[layer]]["inbound_nodes"].push_back(std::move(inbound));
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      producers[node.outputs[k]] = Producer{layer->name(), call, static_cast<int>(k)};
    }
  }
  auto ends = [&](const std::vector<int>& values) {
    Json out = Json::array();
    for (int v : values) {
      out.push_back(Json::array({producers[v].layer, producers[v].node, producers[v].tensor}));
    }
    return values.size() == 1 ? out[0] : out;
  };
  Json config = {{"name", model.name()},
                 {"trainable", true},
                 {"layers", std::move(layers)},
                 {"input_layers", ends(model.input_values())},
                 {"output_layers", ends(model.output_values())}};
  return Json{{"module", "keras.src.models.functional"},
              {"class_name", "Functional"},
              {"config", std::move(config)},
              {"registered_name", "Functional"},
              {"build_config", {{"input_shape", nullptr}}},
              {"compile_config", compile != nullptr ? CompileJson(*compile) : Json::object()}};
}

std::vector<std::pair<std::string, std::string>> KerasWeightGroups(const Model& model) {
  KerasModel groups;
  std::map<std::string, int> used;
  for (const std::string& name : model.input_names()) {
    AddWeightGroup(groups, used, name, "InputLayer");
  }
  for (const Layer* layer : model.layers()) {
    AddWeightGroup(groups, used, layer->name(), layer->class_name());
  }
  return groups.weight_groups;
}

}  // namespace kiln
