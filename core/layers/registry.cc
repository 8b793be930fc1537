#include "core/layers/registry.h"

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "core/base/check.h"

namespace kiln {
namespace {

absl::flat_hash_map<v1::LayerSpec::LayerCase, LayerFactory>& Factories() {
  // Static initialisers of other files fill it, so it is made on first use.
  static auto* factories = new absl::flat_hash_map<v1::LayerSpec::LayerCase, LayerFactory>();
  return *factories;
}

}  // namespace

bool RegisterLayer(v1::LayerSpec::LayerCase layer_case, LayerFactory factory) {
  KILN_CHECK(Factories().emplace(layer_case, factory).second)
      << "layer case " << layer_case << " registered twice";
  return true;
}

bool IsLayerRegistered(v1::LayerSpec::LayerCase layer_case) {
  return Factories().contains(layer_case);
}

absl::StatusOr<std::unique_ptr<Layer>> CreateLayer(const v1::LayerSpec& spec, uint64_t seed) {
  if (spec.layer_case() == v1::LayerSpec::LAYER_NOT_SET) {
    return absl::InvalidArgumentError("layer spec sets no layer: set exactly one layer message");
  }
  auto it = Factories().find(spec.layer_case());
  if (it == Factories().end()) {
    return absl::UnimplementedError(
        absl::StrCat("Kiln has no implementation of layer case ", spec.layer_case(), " yet"));
  }
  std::unique_ptr<Layer> layer = it->second(spec, seed);
  absl::Status status = layer->Initialize();
  if (!status.ok()) return status;
  return layer;
}

}  // namespace kiln
