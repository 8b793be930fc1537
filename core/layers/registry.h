// The layer registry: creates the Layer a LayerSpec describes, choosing the factory by the
// spec's oneof case. Every factory validates its whole spec up front, so a layer that exists
// is well-formed; input shapes are checked later, when it is called.
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

}  // namespace kiln

#endif  // KILN_CORE_LAYERS_REGISTRY_H_
