// Bounds every request meets before the service acts on it, read from the message's shape so
// that a new field is bounded the day it is added: every string (names, ids, identifiers) at
// most 256 bytes - Keras sets no limit, but a name longer than that is a mistake or an attack,
// and every stored or echoed string stays small - except file paths (`path`, and a FileSource's
// `x` and `y`), at most 4096; a compile config's `metrics` at most 32 entries. Errors are
// INVALID_ARGUMENT at the field's path ("spec.dense.name", "compile.metrics").
#ifndef KILN_SERVER_SERVICE_REQUEST_BOUNDS_H_
#define KILN_SERVER_SERVICE_REQUEST_BOUNDS_H_

#include <cstddef>

#include "absl/status/status.h"
#include "google/protobuf/message.h"

namespace kiln::server {

inline constexpr size_t kMaxNameBytes = 256;
inline constexpr size_t kMaxPathBytes = 4096;
inline constexpr int kMaxMetrics = 32;

absl::Status CheckRequestBounds(const google::protobuf::Message& request);

}  // namespace kiln::server

#endif  // KILN_SERVER_SERVICE_REQUEST_BOUNDS_H_
