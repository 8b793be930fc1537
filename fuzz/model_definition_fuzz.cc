// DefineModel's graphs: BuildModel on any ModelDefinition.
#include <cstdint>

#include "core/graph/definition.h"
#include "core/graph/model.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kiln::v1::ModelDefinition definition;
  if (!definition.ParseFromArray(data, static_cast<int>(size))) return 0;
  if (definition.nodes_size() > 64) return 0;  // the server's --max_model_layers bounds this
  kiln::ScopedMemoryAccount scope(kiln::fuzz::InputAccount());
  try {
    kiln::Graph graph;
    (void)kiln::BuildModel(definition, graph, 1);
  } catch (const kiln::MemoryExhausted&) {
  }
  return 0;
}
