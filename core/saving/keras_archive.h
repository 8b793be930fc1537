// The .keras archive (Keras 3's saving_lib): a zip of metadata.json, config.json and
// model.weights.h5, stored uncompressed, in that order, as Keras writes it. Read and written in
// memory with libzip (Debian libzip); reading accepts deflated members too, as Python's zipfile
// does, and refuses members larger than a bound.
#ifndef KILN_CORE_SAVING_KERAS_ARCHIVE_H_
#define KILN_CORE_SAVING_KERAS_ARCHIVE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kiln {

struct KerasArchive {
  std::string metadata_json;  // {"keras_version": ..., "date_saved": ...}
  std::string config_json;    // the model, as model.to_json() gives it
  std::string weights_h5;     // model.weights.h5 (keras_weights.h)
};

absl::StatusOr<std::string> WriteKerasArchive(const KerasArchive& archive);

// Members larger than `max_member_bytes` uncompressed are RESOURCE_EXHAUSTED; a missing
// config.json or model.weights.h5 is INVALID_ARGUMENT naming it.
absl::StatusOr<KerasArchive> ReadKerasArchive(absl::string_view bytes, int64_t max_member_bytes);

// Whether `bytes` start like a zip file.
bool IsZip(absl::string_view bytes);

}  // namespace kiln

#endif  // KILN_CORE_SAVING_KERAS_ARCHIVE_H_
