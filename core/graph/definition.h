// Builds a model from a ModelDefinition - the whole graph in one message, as a card editor
// saves it - into a Graph, and gives a model's definition back. Node ids name nodes and their
// outputs ("conv1" is output 0 of node conv1, "split:1" its output 1); a layer takes its node's
// id as name unless its spec names it.
#ifndef KILN_CORE_GRAPH_DEFINITION_H_
#define KILN_CORE_GRAPH_DEFINITION_H_

#include <memory>

#include "absl/status/statusor.h"
#include "core/graph/graph.h"
#include "core/graph/model.h"
#include "kiln/v1/model.pb.h"

namespace kiln {

// Errors carry field paths within the definition ("nodes[3].layer.dense.units",
// "nodes[4].inputs[0]", "outputs[0]"). On error `graph` may hold some of the nodes; callers
// build into a fresh graph and drop it.
absl::StatusOr<std::unique_ptr<Model>> BuildModel(const v1::ModelDefinition& definition,
                                                  Graph& graph, uint64_t seed);

// The inverse of BuildModel: a definition that builds `model` again - the same layers with the
// same specs, wiring, inputs and outputs (not its weights, nor its compile config). Inputs and
// layers take their names as node ids; a layer's k-th call (k > 0) is node "<name>#<k>",
// calling it again, as Keras model files name them. A ':' in a name (it marks an output index
// in references) becomes '_' in the id and a taken id gets a suffix "_<n>"; the names stay
// in the specs, so the rebuilt layers and inputs keep them.
v1::ModelDefinition DefinitionOf(const Model& model);

}  // namespace kiln

#endif  // KILN_CORE_GRAPH_DEFINITION_H_
