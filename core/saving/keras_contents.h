// The first step of reading a Keras file: unpacking its container (.keras zip, .weights.h5
// HDF5) into the model's JSON text and the weights, without interpreting the JSON. This runs
// libzip and libhdf5 on untrusted bytes, which a hostile file can crash or make allocate
// without bound: the server runs it only inside kiln-file-reader's sandbox (server/reader).
// InterpretKerasFile (keras_files.h) is the second step.
#ifndef KILN_CORE_SAVING_KERAS_CONTENTS_H_
#define KILN_CORE_SAVING_KERAS_CONTENTS_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/saving/keras_weights.h"
#include "kiln/v1/model.pb.h"

namespace kiln {

// JSON, KERAS or WEIGHTS from the first bytes (zip, HDF5, else JSON).
v1::KerasFormat DetectKerasFormat(absl::string_view bytes);

struct KerasReadOptions {
  bool compile = true;               // read the compile_config
  int64_t max_bytes = 1LL << 31;     // an archive's members together, uncompressed
  int64_t max_elements = 1LL << 28;  // all the weights' elements together
  int64_t max_archive_members = 64;
  int64_t max_compression_ratio = 100;
};

// `status` from inside an archive member: its path after the member's name.
absl::Status InMember(const absl::Status& status, absl::string_view member);

struct KerasFileContents {
  v1::KerasFormat format = v1::KERAS_FORMAT_UNSPECIFIED;  // as detected
  std::string config_json;                                // JSON and .keras
  std::optional<WeightsFile> weights;                     // .keras and .weights.h5
};
absl::StatusOr<KerasFileContents> UnpackKerasFile(absl::string_view bytes, v1::KerasFormat format,
                                                  const KerasReadOptions& options);

}  // namespace kiln

#endif  // KILN_CORE_SAVING_KERAS_CONTENTS_H_
