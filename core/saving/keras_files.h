// Keras model files as a whole: telling their format, reading one into a model definition and
// weights, matching a weights file to a model's layers with Keras's checks, and writing a model
// as Keras 3 JSON, a .keras archive or a .weights.h5 file. The pieces are keras_model.h (the
// graph), keras_weights.h (HDF5) and keras_archive.h (zip).
#ifndef KILN_CORE_SAVING_KERAS_FILES_H_
#define KILN_CORE_SAVING_KERAS_FILES_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/saving/keras_contents.h"
#include "core/saving/keras_model.h"
#include "core/saving/keras_weights.h"
#include "core/train/optimizer.h"
#include "kiln/v1/model.pb.h"

namespace kiln {

class Model;
class Layer;

// What a file holds: a model (JSON and .keras) and weights (.keras and .weights.h5).
struct KerasFile {
  v1::KerasFormat format = v1::KERAS_FORMAT_UNSPECIFIED;
  std::optional<KerasModel> model;
  std::optional<WeightsFile> weights;
};

// `format` UNSPECIFIED: detected. Errors carry paths into the file: "config.layers[2]..." for
// the JSON, "layers/dense/vars/0" for weights; inside an archive, after the member's name
// ("config.json:config.layers[2]...", "model.weights.h5:layers/dense/vars/0").
absl::StatusOr<KerasFile> ReadKerasFile(absl::string_view bytes, v1::KerasFormat format,
                                        const KerasReadOptions& options);

// ReadKerasFile's second step, after UnpackKerasFile (keras_contents.h): the model's JSON.
absl::StatusOr<KerasFile> InterpretKerasFile(KerasFileContents contents,
                                             const KerasReadOptions& options);

// One layer's new weights, checked against it.
struct MatchedWeights {
  Layer* layer;
  std::vector<Tensor> values;  // in layer->variables() order
};

// Matches `file`'s groups to `model`'s layers - by the groups' name attributes where the file
// has them (Keras >= 3.6), else by the paths of `groups` (name, path) - and checks each layer's
// count and shapes with Keras's messages, changing nothing. `prefix` starts error paths.
absl::StatusOr<std::vector<MatchedWeights>> MatchKerasWeights(
    const WeightsFile& file, const std::vector<std::pair<std::string, std::string>>& groups,
    const Model& model, const std::string& prefix);

// The optimizer's variables as Keras 3 keeps them (optimizer/vars: iteration, learning rate,
// then Adam's momentum and velocity per trainable variable, interleaved, and AMSGrad's
// maxima after them; SGD's momentums), and back. `state` as Optimizer exports it.
WeightGroup KerasOptimizerGroup(const Optimizer& optimizer, const Optimizer::State& state);
absl::StatusOr<Optimizer::State> OptimizerStateFromKeras(const Optimizer& optimizer,
                                                         const WeightGroup& group,
                                                         int64_t trainable_variables);

struct KerasExport {
  std::string bytes;
  std::string file_name;  // "<model>.json", "<model>.keras", "<model>.weights.h5"
};

// `compile` and `optimizer` (with its `state`) may be null: an uncompiled model, or one whose
// optimizer state is not written.
absl::StatusOr<KerasExport> WriteKerasFile(const Model& model, v1::KerasFormat format,
                                           const v1::CompileConfig* compile,
                                           const Optimizer* optimizer,
                                           const Optimizer::State* state);

}  // namespace kiln

#endif  // KILN_CORE_SAVING_KERAS_FILES_H_
