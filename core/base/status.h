// Error helpers shared by all of core/. Errors are absl::Status, never exceptions.
//
// An INVALID_ARGUMENT about one field of a spec carries the field's path twice: as a prefix of
// the message ("depthwise_conv2d.strides: The `strides` argument ...") and as a payload, so a
// caller can prepend its own context (WithFieldPrefix) and the service can fill
// google.rpc.BadRequest without parsing text.
#ifndef KILN_CORE_BASE_STATUS_H_
#define KILN_CORE_BASE_STATUS_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kiln {

inline constexpr absl::string_view kFieldPathPayloadUrl = "type.kiln.dev/kiln.FieldPath";

// INVALID_ARGUMENT "path: message" with `path` recorded as the field path.
absl::Status FieldError(absl::string_view path, absl::string_view message);

// Prepends `prefix` to the field path of `status` ("layers[3]" + "dense.units" ->
// "layers[3].dense.units"). A status without a field path gets `prefix` as its path.
// OK passes through.
absl::Status WithFieldPrefix(const absl::Status& status, absl::string_view prefix);

// The same error (code and message) at `path` instead of its own field path; the message's old
// path prefix, if any, is replaced. OK passes through.
absl::Status WithFieldPath(const absl::Status& status, absl::string_view path);

// `text` from a request in double quotes, for an error message; text over 64 characters is
// cut and its length given, so that a huge id cannot make an error too large to send.
std::string Quoted(absl::string_view text);

// `text` itself when it has at most `max_bytes` bytes; else its first bytes (never part of a
// UTF-8 character) and "... (N characters)". What an error may carry to a client.
std::string Shortened(absl::string_view text, size_t max_bytes);

// The field path recorded by FieldError/WithFieldPrefix, if any.
std::optional<std::string> FieldPathOf(const absl::Status& status);

}  // namespace kiln

#define KILN_STATUS_CONCAT_INNER_(a, b) a##b
#define KILN_STATUS_CONCAT_(a, b) KILN_STATUS_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define KILN_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::absl::Status kiln_status_ = (expr);        \
    if (!kiln_status_.ok()) return kiln_status_; \
  } while (0)

// `lhs = value` from an absl::StatusOr expression, or returns its error.
#define KILN_ASSIGN_OR_RETURN(lhs, expr) \
  KILN_ASSIGN_OR_RETURN_IMPL_(KILN_STATUS_CONCAT_(kiln_statusor_, __LINE__), lhs, expr)
#define KILN_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()

#endif  // KILN_CORE_BASE_STATUS_H_
