#include "server/service/model_state.h"

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "core/base/status.h"

namespace kiln::server {
namespace {

// "LAYER/WEIGHT" of every variable of `model`.
absl::flat_hash_map<const Variable*, std::string> VariableNames(const Model& model) {
  absl::flat_hash_map<const Variable*, std::string> names;
  for (const Layer* layer : model.layers()) {
    for (const auto& v : layer->variables()) {
      names[v.get()] = absl::StrCat(layer->name(), "/", v->name);
    }
  }
  return names;
}

absl::flat_hash_map<std::string, const Tensor*> ByName(
    const std::vector<store::NamedTensor>& tensors) {
  absl::flat_hash_map<std::string, const Tensor*> by_name;
  for (const store::NamedTensor& t : tensors) by_name[t.name] = &t.tensor;
  return by_name;
}

absl::Status Mismatch(absl::string_view what, absl::string_view why) {
  return absl::FailedPreconditionError(absl::StrCat(what, " does not fit: ", why));
}

bool Fits(const Tensor* t, const Tensor& like) {
  return t != nullptr && t->dtype() == DType::kFloat32 && t->shape() == like.shape();
}

}  // namespace

std::vector<store::NamedTensor> LayerWeights(const Layer& layer) {
  std::vector<store::NamedTensor> out;
  for (const auto& v : layer.variables()) out.push_back({v->name, v->value});
  return out;
}

std::vector<store::LayerTensors> ModelLayerWeights(const Model& model, const std::string& scope) {
  std::vector<store::LayerTensors> out;
  for (const Layer* layer : model.layers()) {
    if (layer->variables().empty()) continue;
    out.push_back({scope, layer->name(), LayerWeights(*layer)});
  }
  return out;
}

absl::Status SetLayerWeights(Layer& layer, const std::vector<store::NamedTensor>& tensors,
                             absl::string_view what) {
  const auto by_name = ByName(tensors);
  for (const auto& v : layer.variables()) {
    auto it = by_name.find(v->name);
    if (it == by_name.end() || !Fits(it->second, v->value)) {
      return Mismatch(what, absl::StrCat("weight ", v->name, " of layer ", layer.name(),
                                         " is missing or of another shape"));
    }
  }
  for (const auto& v : layer.variables()) {
    KILN_RETURN_IF_ERROR(layer.SetWeight(v->name, *by_name.at(v->name)));
  }
  return absl::OkStatus();
}

void AppendModelWeights(const Model& model, std::vector<store::NamedTensor>& out) {
  for (const Layer* layer : model.layers()) {
    for (const auto& v : layer->variables()) {
      out.push_back({absl::StrCat("w/", layer->name(), "/", v->name), v->value});
    }
  }
}

absl::Status SetModelWeights(Model& model, const std::vector<store::NamedTensor>& tensors,
                             absl::string_view what) {
  const auto by_name = ByName(tensors);
  for (const Layer* layer : model.layers()) {
    for (const auto& v : layer->variables()) {
      auto it = by_name.find(absl::StrCat("w/", layer->name(), "/", v->name));
      if (it == by_name.end() || !Fits(it->second, v->value)) {
        return Mismatch(what, absl::StrCat("weight ", v->name, " of layer ", layer->name(),
                                           " is missing or of another shape"));
      }
    }
  }
  for (Layer* layer : model.layers()) {
    for (const auto& v : layer->variables()) {
      KILN_RETURN_IF_ERROR(
          layer->SetWeight(v->name, *by_name.at(absl::StrCat("w/", layer->name(), "/", v->name))));
    }
  }
  return absl::OkStatus();
}

void AppendOptimizerState(const Model& model, const Trainer& trainer, const Optimizer::State& state,
                          std::vector<store::NamedTensor>& out) {
  const auto names = VariableNames(model);
  const std::vector<Variable*> variables = trainer.TrainableVariables();
  for (size_t i = 0; i < variables.size(); ++i) {
    for (size_t k = 0; k < state.slots[i].size(); ++k) {
      out.push_back({absl::StrCat("o/", names.at(variables[i]), "/", k), state.slots[i][k]});
    }
  }
  Tensor iterations(DType::kInt64, Shape{1});
  iterations.data<int64_t>()[0] = state.iterations;
  out.push_back({"iterations", iterations});
}

absl::StatusOr<Optimizer::State> OptimizerStateFrom(const Model& model, const Trainer& trainer,
                                                    const std::vector<store::NamedTensor>& tensors,
                                                    int64_t iterations, absl::string_view what) {
  const auto names = VariableNames(model);
  const auto by_name = ByName(tensors);
  const Optimizer* optimizer = trainer.optimizer();
  if (optimizer == nullptr) return Mismatch(what, "the model is not compiled");
  Optimizer::State state;
  state.iterations = iterations;
  if (auto it = by_name.find("iterations"); it != by_name.end() &&
                                            it->second->dtype() == DType::kInt64 &&
                                            it->second->num_elements() == 1) {
    state.iterations = it->second->data<int64_t>()[0];
  }
  for (const Variable* v : trainer.TrainableVariables()) {
    std::vector<Tensor>& slots = state.slots.emplace_back();
    for (int k = 0; k < optimizer->slot_count(); ++k) {
      auto it = by_name.find(absl::StrCat("o/", names.at(v), "/", k));
      if (it == by_name.end() || !Fits(it->second, v->value)) {
        return Mismatch(what, absl::StrCat("the optimizer state of ", names.at(v),
                                           " is missing or of another shape"));
      }
      slots.push_back(*it->second);
    }
  }
  return state;
}

}  // namespace kiln::server
