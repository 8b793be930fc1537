// Keras model JSON (model.to_json(), and config.json in a .keras archive) to and from Kiln's
// ModelDefinition. Reads Keras 2 (nested inbound_nodes lists, {class_name, config} objects,
// batch_input_shape, wrapped input_layers) and Keras 3 (__keras_tensor__ arguments, module,
// registered_name, batch_shape, DTypePolicy objects) Functional and Sequential models, with
// shared layers (several inbound nodes) and several inputs and outputs; writes Keras 3's
// Functional form. Layer configs go through keras_config.h, so every layer message converts.
//
// Errors are INVALID_ARGUMENT at a JSON path into the document ("config.layers[3].config.
// strides"): malformed JSON (with line and column), unknown classes and arguments, duplicate
// names, references to layers or nodes that do not exist, and cycles.
#ifndef KILN_CORE_SAVING_KERAS_MODEL_H_
#define KILN_CORE_SAVING_KERAS_MODEL_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/keras/keras_config.h"
#include "kiln/v1/model.pb.h"

namespace kiln {

class Model;
class Layer;

// A Keras model file's graph in Kiln's terms.
struct KerasModel {
  // Nodes ordered so that inputs come first; a layer's k-th call (k > 0) is node
  // "<layer>#<k>" calling it again. Holds `compile` when the file has a compile_config.
  v1::ModelDefinition definition;
  // Each layer's group in a Keras weights file ("layers/dense_1"), in Keras's model.layers
  // order, by layer name.
  std::vector<std::pair<std::string, std::string>> weight_groups;
  // Where each definition node is in the file, to report errors in the file's terms: its
  // layer's entry ("config.layers[3]") and its call ("config.layers[3].inbound_nodes[1]").
  struct NodePath {
    std::string layer, call;
  };
  std::vector<NodePath> node_paths;

  // A field path into `definition` ("nodes[3].layer.dense.units") as a JSON path into the
  // file ("config.layers[3].config.units"); other paths are returned as they are.
  std::string JsonPathOf(absl::string_view definition_path) const;
};

// Parses Keras model JSON text; `compile`: read the compile_config too.
absl::StatusOr<KerasModel> ParseKerasModel(absl::string_view json, bool compile);

// The Keras 3 model JSON (to_json()'s document) of `model`, with the compile config when
// `compile` is not null.
Json KerasModelJson(const Model& model, const v1::CompileConfig* compile);

// Each input and layer of `model`, by name, with its group in a Keras weights file, in the
// order Keras's model.layers lists the model Kiln exports: "layers/<snake_case class>[_<n>]".
std::vector<std::pair<std::string, std::string>> KerasWeightGroups(const Model& model);

}  // namespace kiln

#endif  // KILN_CORE_SAVING_KERAS_MODEL_H_
