// Keras model JSON (ImportModel's text): ParseKerasModel, then BuildModel on what it made.
#include <cstdint>

#include "core/graph/definition.h"
#include "core/graph/model.h"
#include "core/saving/keras_model.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kiln::ScopedMemoryAccount scope(kiln::fuzz::InputAccount());
  try {
    absl::StatusOr<kiln::KerasModel> keras = kiln::ParseKerasModel(
        absl::string_view(reinterpret_cast<const char*>(data), size), /*compile=*/true);
    // The server's --max_model_layers bounds the graph.
    if (!keras.ok() || keras->definition.nodes_size() > 64) return 0;
    kiln::Graph graph;
    (void)kiln::BuildModel(keras->definition, graph, 1);
  } catch (const kiln::MemoryExhausted&) {
  }
  return 0;
}
