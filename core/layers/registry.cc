#include "core/layers/registry.h"

#include "absl/container/flat_hash_map.h"
#include "core/layers/factories.h"

namespace kiln {

absl::StatusOr<std::unique_ptr<Layer>> CreateLayer(const v1::LayerSpec& spec, uint64_t seed) {
  using Case = v1::LayerSpec::LayerCase;
  static const auto* factories = new absl::flat_hash_map<Case, LayerFactory>{
      {Case::kDepthwiseConv2D, &CreateDepthwiseConv2D},
      {Case::kConv2D, &CreateConv2D},
      {Case::kDense, &CreateDense},
      {Case::kFlatten, &CreateFlatten},
      {Case::kReshape, &CreateReshape},
      {Case::kActivation, &CreateActivation},
      {Case::kRelu, &CreateReLU},
      {Case::kSoftmax, &CreateSoftmax},
      {Case::kBatchNormalization, &CreateBatchNormalization},
      {Case::kMaxPooling2D, &CreateMaxPooling2D},
      {Case::kAveragePooling2D, &CreateAveragePooling2D},
      {Case::kGlobalAveragePooling2D, &CreateGlobalAveragePooling2D},
      {Case::kDropout, &CreateDropout},
      {Case::kAdd, &CreateAdd},
      {Case::kConcatenate, &CreateConcatenate},
      {Case::kZeroPadding2D, &CreateZeroPadding2D},
  };
  auto it = factories->find(spec.layer_case());
  if (it == factories->end()) {
    return absl::InvalidArgumentError("layer spec sets no layer: set exactly one layer message");
  }
  return it->second(spec, seed);
}

}  // namespace kiln
