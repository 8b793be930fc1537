// The .keras archive (Keras 3's saving_lib): a zip of metadata.json, config.json and
// model.weights.h5, stored uncompressed, in that order, as Keras writes it. Read and written in
// memory with libzip (Debian libzip); reading accepts deflated members too, as Python's zipfile
// does, within limits (ArchiveLimits) that a zip bomb meets before it is inflated far.
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

// What reading an archive may cost. Keras writes three members, stored; a deflated member may
// shrink a few times, never a hundred.
struct ArchiveLimits {
  int64_t max_members = 64;
  int64_t max_total_bytes = int64_t{1} << 31;  // the members read, uncompressed, together
  int64_t max_ratio = 100;                     // uncompressed / compressed, per member
};

// Counted while inflating, not taken from the directory (which may lie): a member past a
// limit is RESOURCE_EXHAUSTED naming the member and the limit, before more is inflated; more
// members than allowed likewise. A missing config.json or model.weights.h5 is
// INVALID_ARGUMENT naming it.
absl::StatusOr<KerasArchive> ReadKerasArchive(absl::string_view bytes, const ArchiveLimits& limits);

// Whether `bytes` start like a zip file.
bool IsZip(absl::string_view bytes);

}  // namespace kiln

#endif  // KILN_CORE_SAVING_KERAS_ARCHIVE_H_
