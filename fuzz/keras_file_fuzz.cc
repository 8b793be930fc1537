// A Keras file's import as kiln-server does it (ReadUntrustedKerasFile, then the model and its
// weights): the container unpacked by a sandboxed kiln-file-reader, the JSON interpreted here, the
// model built and the weights matched to it. Built three times, one per kind of file
// (KILN_FUZZ_FORMAT): keras_archive_fuzz (.keras), keras_weights_fuzz
// (.weights.h5, matched to the model its seeds were exported from) and keras_h5_fuzz (Keras 2
// full-model .h5 files, which the reader refuses today after opening them). What must hold:
// nothing in this process crashes, leaks or reads out of bounds, whatever the reader did with
// the bytes (crashing, looping, allocating) - that costs the call an error and nothing else.
#include <cstdint>

#include "core/base/check.h"
#include "core/graph/definition.h"
#include "core/graph/model.h"
#include "core/saving/keras_files.h"
#include "fuzz/fuzz_util.h"
#include "server/reader/file_reader.h"

namespace {

// The model the .weights.h5 seeds were exported from (fuzz/make_seeds.py).
constexpr char kWeightsModel[] = R"({"class_name": "Sequential", "config": {"name": "seed",
  "layers": [{"class_name": "InputLayer", "config": {"batch_shape": [null, 4], "name": "x"}},
             {"class_name": "Dense", "config": {"units": 3, "name": "dense"}},
             {"class_name": "Dense", "config": {"units": 2, "name": "dense_1"}}]}})";

void Import(absl::string_view bytes) {
  kiln::KerasReadOptions read;
  read.max_elements = int64_t{1} << 20;
  read.max_bytes = int64_t{16} << 20;
  const kiln::server::FileReaderOptions reader{
      .path = KILN_FILE_READER, .memory_bytes = int64_t{512} << 20, .timeout = absl::Seconds(10)};
  absl::StatusOr<kiln::KerasFile> file =
      kiln::server::ReadUntrustedKerasFile(bytes, KILN_FUZZ_FORMAT, read, reader, nullptr);
  if (!file.ok()) {
    KILN_CHECK(!file.status().message().empty());
    return;
  }
  if (!file->weights.has_value()) return;
  if (!file->model.has_value()) {
    file->model = *kiln::ParseKerasModel(kWeightsModel, /*compile=*/false);
  }
  if (file->model->definition.nodes_size() > 64) return;  // --max_model_layers
  kiln::Graph graph;
  absl::StatusOr<std::unique_ptr<kiln::Model>> model =
      kiln::BuildModel(file->model->definition, graph, 1);
  if (!model.ok()) return;
  absl::StatusOr<std::vector<kiln::MatchedWeights>> matched =
      kiln::MatchKerasWeights(*file->weights, file->model->weight_groups, **model, "");
  if (!matched.ok()) return;
  for (kiln::MatchedWeights& weights : *matched) (void)weights.layer->SetWeights(weights.values);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kiln::ScopedMemoryAccount scope(kiln::fuzz::InputAccount());
  try {
    Import(absl::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const kiln::MemoryExhausted&) {
  }
  return 0;
}
