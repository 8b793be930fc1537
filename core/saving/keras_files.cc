#include "core/saving/keras_files.h"

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/base/status.h"
#include "core/graph/model.h"
#include "core/keras/keras_class.h"
#include "core/keras/spec_args.h"
#include "core/saving/keras_archive.h"

namespace kiln {
namespace {

// The Keras version Kiln's files follow (written to metadata.json).
constexpr char kKerasVersion[] = "3.15.1";

std::string ShapeRepr(const Shape& shape) {
  std::vector<std::string> dims;
  for (int64_t d : shape.dims()) dims.push_back(absl::StrCat(d));
  return absl::StrCat("(", absl::StrJoin(dims, ", "), dims.size() == 1 ? ",)" : ")");
}

Layer* FindLayer(const Model& model, const std::string& name) {
  for (Layer* layer : model.layers()) {
    if (layer->name() == name) return layer;
  }
  return nullptr;
}

std::string OptimizerName(const Optimizer& optimizer) {
  const google::protobuf::Message* held = KerasObjectClass(optimizer.config());
  return held == nullptr ? "" : KerasSnakeCase(KerasClassOf(held->GetDescriptor()).class_name());
}

double LearningRate(const Optimizer& optimizer) {
  return SpecArgs(*KerasObjectClass(optimizer.config()), "").Float("learning_rate");
}

}  // namespace

absl::StatusOr<KerasFile> InterpretKerasFile(KerasFileContents contents,
                                             const KerasReadOptions& options) {
  KerasFile file;
  file.format = contents.format;
  file.weights = std::move(contents.weights);
  if (file.format == v1::KERAS_FORMAT_JSON || file.format == v1::KERAS_FORMAT_KERAS) {
    absl::StatusOr<KerasModel> model = ParseKerasModel(contents.config_json, options.compile);
    if (!model.ok()) {
      return file.format == v1::KERAS_FORMAT_KERAS ? InMember(model.status(), "config.json")
                                                   : model.status();
    }
    file.model = *std::move(model);
  }
  return file;
}

absl::StatusOr<KerasFile> ReadKerasFile(absl::string_view bytes, v1::KerasFormat format,
                                        const KerasReadOptions& options) {
  KILN_ASSIGN_OR_RETURN(KerasFileContents contents, UnpackKerasFile(bytes, format, options));
  return InterpretKerasFile(std::move(contents), options);
}

absl::StatusOr<std::vector<MatchedWeights>> MatchKerasWeights(
    const WeightsFile& file, const std::vector<std::pair<std::string, std::string>>& groups,
    const Model& model, const std::string& prefix) {
  // Keras >= 3.6 names each group after its layer: trust that over positions when present.
  absl::flat_hash_map<std::string, std::string> by_name;
  for (const auto& [path, group] : file.groups) {
    if (!group.name.empty() && absl::StartsWith(path, "layers/")) by_name[group.name] = path;
  }
  std::vector<MatchedWeights> out;
  for (const auto& [name, positional] : groups) {
    Layer* layer = FindLayer(model, name);
    if (layer == nullptr) continue;  // an input layer: no variables
    auto named = by_name.find(name);
    const std::string path = named != by_name.end() ? named->second : positional;
    auto it = file.groups.find(path);
    const std::vector<Tensor> none;
    const std::vector<Tensor>& values = it == file.groups.end() ? none : it->second.values;
    const auto& variables = layer->variables();
    const std::string vars = absl::StrCat(prefix, path, "/vars");
    if (values.size() != variables.size()) {
      std::vector<std::string> expected;
      for (const auto& v : variables) expected.push_back(absl::StrCat("'", v->name, "'"));
      return FieldError(vars, absl::StrCat("Layer '", name, "' expected ", variables.size(),
                                           " variables, but received ", values.size(),
                                           " variables during loading. Expected: [",
                                           absl::StrJoin(expected, ", "), "]"));
    }
    MatchedWeights weights{layer, {}};
    for (size_t i = 0; i < values.size(); ++i) {
      const Shape& want = variables[i]->value.shape();
      if (values[i].dtype() != DType::kFloat32 || values[i].shape() != want) {
        return FieldError(
            absl::StrCat(vars, "/", i),
            absl::StrCat("The shape of the target variable and the shape of the target value in "
                         "`variable.assign(value)` must match. variable.shape=",
                         ShapeRepr(want), ", Received: value.shape=", ShapeRepr(values[i].shape()),
                         ". Target variable: ", variables[i]->name, " of layer '", name, "'"));
      }
      weights.values.push_back(values[i]);
    }
    out.push_back(std::move(weights));
  }
  return out;
}

WeightGroup KerasOptimizerGroup(const Optimizer& optimizer, const Optimizer::State& state) {
  WeightGroup group;
  group.name = OptimizerName(optimizer);
  Tensor iteration(DType::kInt64, Shape{});
  *iteration.data<int64_t>() = state.iterations;
  group.values.push_back(std::move(iteration));
  Tensor learning_rate(DType::kFloat32, Shape{});
  *learning_rate.data<float>() = static_cast<float>(LearningRate(optimizer));
  group.values.push_back(std::move(learning_rate));
  // Keras interleaves the first two slots per variable and keeps a third (AMSGrad's maxima)
  // after all of them.
  const int paired = std::min(optimizer.slot_count(), 2);
  for (const auto& slots : state.slots) {
    for (int k = 0; k < paired; ++k) group.values.push_back(slots[k]);
  }
  for (int k = paired; k < optimizer.slot_count(); ++k) {
    for (const auto& slots : state.slots) group.values.push_back(slots[k]);
  }
  return group;
}

absl::StatusOr<Optimizer::State> OptimizerStateFromKeras(const Optimizer& optimizer,
                                                         const WeightGroup& group,
                                                         int64_t trainable_variables) {
  const int slots = optimizer.slot_count();
  const size_t expected = 2 + size_t(slots) * trainable_variables;
  if (group.values.size() != expected || group.values[0].dtype() != DType::kInt64 ||
      group.values[0].num_elements() != 1) {
    return FieldError(
        "optimizer/vars",
        absl::StrCat("Skipping variable loading for optimizer '", OptimizerName(optimizer),
                     "', because it has ", expected, " variables whereas the saved optimizer has ",
                     group.values.size(), " variables."));
  }
  Optimizer::State state;
  state.iterations = *group.values[0].data<int64_t>();
  state.slots.resize(trainable_variables);
  const int paired = std::min(slots, 2);
  size_t next = 2;
  for (auto& variable : state.slots) {
    for (int k = 0; k < paired; ++k) variable.push_back(group.values[next++]);
  }
  for (int k = paired; k < slots; ++k) {
    for (auto& variable : state.slots) variable.push_back(group.values[next++]);
  }
  return state;
}

absl::StatusOr<KerasExport> WriteKerasFile(const Model& model, v1::KerasFormat format,
                                           const v1::CompileConfig* compile,
                                           const Optimizer* optimizer,
                                           const Optimizer::State* state) {
  KerasExport out;
  if (format == v1::KERAS_FORMAT_UNSPECIFIED) format = v1::KERAS_FORMAT_JSON;
  const std::string config = KerasModelJson(model, compile).dump();
  if (format == v1::KERAS_FORMAT_JSON) {
    out.bytes = config;
    out.file_name = absl::StrCat(model.name(), ".json");
    return out;
  }
  WeightsFile weights;
  weights.model_name = model.name();
  for (const auto& [name, path] : KerasWeightGroups(model)) {
    WeightGroup& group = weights.groups[path];
    group.name = name;
    if (Layer* layer = FindLayer(model, name)) {
      for (const auto& v : layer->variables()) group.values.push_back(v->value);
    }
  }
  if (optimizer != nullptr && state != nullptr) {
    weights.groups["optimizer"] = KerasOptimizerGroup(*optimizer, *state);
  }
  KILN_ASSIGN_OR_RETURN(std::string h5, WriteWeightsFile(weights));
  if (format == v1::KERAS_FORMAT_WEIGHTS) {
    out.bytes = std::move(h5);
    out.file_name = absl::StrCat(model.name(), ".weights.h5");
    return out;
  }
  KerasArchive archive;
  archive.metadata_json =
      Json{
          {"keras_version", kKerasVersion},
          {"date_saved", absl::FormatTime("%Y-%m-%d@%H:%M:%S", absl::Now(), absl::LocalTimeZone())}}
          .dump();
  archive.config_json = config;
  archive.weights_h5 = std::move(h5);
  KILN_ASSIGN_OR_RETURN(out.bytes, WriteKerasArchive(archive));
  out.file_name = absl::StrCat(model.name(), ".keras");
  return out;
}

}  // namespace kiln
