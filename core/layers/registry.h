// The layer registry: creates the Layer a LayerSpec describes, choosing the class by the spec's
// oneof case. Each layer class registers itself with one line in its own file:
//
//   KILN_REGISTER_LAYER(kDepthwiseConv2D, DepthwiseConv2DLayer);
//
// CreateLayer validates the whole spec up front (every argument against its KerasArg option,
// then the layer's own Init), so a layer that exists is well-formed; input shapes are checked
// later, when it is called. kiln_layers is linked whole into every binary (core/CMakeLists.txt),
// so no registration is dropped by the linker.
#ifndef KILN_CORE_LAYERS_REGISTRY_H_
#define KILN_CORE_LAYERS_REGISTRY_H_

#include <memory>

#include "absl/status/statusor.h"
#include "core/layers/layer.h"
#include "kiln/v1/layers.pb.h"

namespace kiln {

// INVALID_ARGUMENT with a field path relative to the spec ("depthwise_conv2d.strides: ...").
// `seed` seeds weights whose initializers have none.
absl::StatusOr<std::unique_ptr<Layer>> CreateLayer(const v1::LayerSpec& spec, uint64_t seed);

using LayerFactory = std::unique_ptr<Layer> (*)(const v1::LayerSpec& spec, uint64_t seed);

// Registers the class of one LayerSpec case; returns true, for static initialisers.
bool RegisterLayer(v1::LayerSpec::LayerCase layer_case, LayerFactory factory);
// Whether a LayerSpec case has a class (tests check every case of the oneof has one).
bool IsLayerRegistered(v1::LayerSpec::LayerCase layer_case);

}  // namespace kiln

#define KILN_REGISTER_LAYER(kCase, LayerClass)                                                 \
  [[maybe_unused]] static const bool kiln_layer_registered_##kCase = ::kiln::RegisterLayer(    \
      ::kiln::v1::LayerSpec::kCase,                                                            \
      [](const ::kiln::v1::LayerSpec& spec, uint64_t seed) -> std::unique_ptr<::kiln::Layer> { \
        return std::make_unique<LayerClass>(spec, seed);                                       \
      })

#endif  // KILN_CORE_LAYERS_REGISTRY_H_
