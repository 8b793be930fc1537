// The factory of every layer class, one per LayerSpec case, implemented in that layer's file
// and collected in registry.cc. Each validates its spec with Keras's wording; error field paths
// start at the spec's oneof field ("depthwise_conv2d.strides"). `seed` seeds the weights whose
// initializer has no seed of its own.
#ifndef KILN_CORE_LAYERS_FACTORIES_H_
#define KILN_CORE_LAYERS_FACTORIES_H_

#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "core/layers/layer.h"

namespace kiln {

using LayerFactory = absl::StatusOr<std::unique_ptr<Layer>> (*)(const v1::LayerSpec& spec,
                                                                uint64_t seed);

// A layer message's `trainable`, when set.
template <typename Spec>
std::optional<bool> TrainableOf(const Spec& spec) {
  return spec.has_trainable() ? std::optional<bool>(spec.trainable()) : std::nullopt;
}

// Constructs layer class L from the spec and runs its Init() (the spec validation).
template <typename L>
absl::StatusOr<std::unique_ptr<Layer>> MakeLayer(const v1::LayerSpec& spec, uint64_t seed) {
  auto layer = std::make_unique<L>(spec, seed);
  absl::Status status = layer->Init();
  if (!status.ok()) return status;
  return layer;
}

absl::StatusOr<std::unique_ptr<Layer>> CreateDepthwiseConv2D(const v1::LayerSpec&, uint64_t);
absl::StatusOr<std::unique_ptr<Layer>> CreateConv2D(const v1::LayerSpec&, uint64_t);
absl::StatusOr<std::unique_ptr<Layer>> CreateDense(const v1::LayerSpec&, uint64_t);
absl::StatusOr<std::unique_ptr<Layer>> CreateFlatten(const v1::LayerSpec&, uint64_t);
absl::StatusOr<std::unique_ptr<Layer>> CreateReshape(const v1::LayerSpec&, uint64_t);
absl::StatusOr<std::unique_ptr<Layer>> CreateActivation(const v1::LayerSpec&, uint64_t);
absl::StatusOr<std::unique_ptr<Layer>> CreateReLU(const v1::LayerSpec&, uint64_t);
absl::StatusOr<std::unique_ptr<Layer>> CreateSoftmax(const v1::LayerSpec&, uint64_t);
absl::StatusOr<std::unique_ptr<Layer>> CreateBatchNormalization(const v1::LayerSpec&, uint64_t);
absl::StatusOr<std::unique_ptr<Layer>> CreateMaxPooling2D(const v1::LayerSpec&, uint64_t);
absl::StatusOr<std::unique_ptr<Layer>> CreateAveragePooling2D(const v1::LayerSpec&, uint64_t);
absl::StatusOr<std::unique_ptr<Layer>> CreateGlobalAveragePooling2D(const v1::LayerSpec&, uint64_t);
absl::StatusOr<std::unique_ptr<Layer>> CreateDropout(const v1::LayerSpec&, uint64_t);
absl::StatusOr<std::unique_ptr<Layer>> CreateAdd(const v1::LayerSpec&, uint64_t);
absl::StatusOr<std::unique_ptr<Layer>> CreateConcatenate(const v1::LayerSpec&, uint64_t);
absl::StatusOr<std::unique_ptr<Layer>> CreateZeroPadding2D(const v1::LayerSpec&, uint64_t);

}  // namespace kiln

#endif  // KILN_CORE_LAYERS_FACTORIES_H_
