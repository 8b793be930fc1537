// A model's weights and optimizer state as named tensors - the form the store keeps them in -
// and back. Names: a layer's own file holds its weights by weight name ("kernel"); model-wide
// sets (checkpoints, optimizer state) name them "w/LAYER/WEIGHT" and optimizer slots
// "o/LAYER/WEIGHT/SLOT", with the iteration count in "iterations".
#ifndef KILN_SERVER_SERVICE_MODEL_STATE_H_
#define KILN_SERVER_SERVICE_MODEL_STATE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/graph/model.h"
#include "core/train/trainer.h"
#include "server/store/session_store.h"

namespace kiln::server {

// A layer's weights by name (handles on the live buffers: the caller holds the compute gate).
std::vector<store::NamedTensor> LayerWeights(const Layer& layer);
// Every layer of `model`, each as the store keeps it under `scope`.
std::vector<store::LayerTensors> ModelLayerWeights(const Model& model, const std::string& scope);
// Sets a layer's weights from LayerWeights' form; every tensor is checked before any is
// written. FAILED_PRECONDITION naming `what` when they do not fit the layer.
absl::Status SetLayerWeights(Layer& layer, const std::vector<store::NamedTensor>& tensors,
                             absl::string_view what);

// "w/LAYER/WEIGHT" for every weight of `model`, appended to `out`.
void AppendModelWeights(const Model& model, std::vector<store::NamedTensor>& out);
// Sets every weight of `model` from AppendModelWeights' form (other entries are ignored);
// checked first. FAILED_PRECONDITION naming `what` when they do not fit.
absl::Status SetModelWeights(Model& model, const std::vector<store::NamedTensor>& tensors,
                             absl::string_view what);

// The optimizer state of `trainer` (its model's trainable weights), appended to `out`.
void AppendOptimizerState(const Model& model, const Trainer& trainer, const Optimizer::State& state,
                          std::vector<store::NamedTensor>& out);
// AppendOptimizerState's form back; `iterations` from the tensor or, when absent, the given
// value. FAILED_PRECONDITION naming `what` when it does not fit the trainer's optimizer
// (another optimizer was compiled since, say).
absl::StatusOr<Optimizer::State> OptimizerStateFrom(const Model& model, const Trainer& trainer,
                                                    const std::vector<store::NamedTensor>& tensors,
                                                    int64_t iterations, absl::string_view what);

}  // namespace kiln::server

#endif  // KILN_SERVER_SERVICE_MODEL_STATE_H_
