#include "core/base/status.h"

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace kiln {

absl::Status FieldError(absl::string_view path, absl::string_view message) {
  absl::Status status = absl::InvalidArgumentError(absl::StrCat(path, ": ", message));
  status.SetPayload(kFieldPathPayloadUrl, absl::Cord(path));
  return status;
}

absl::Status WithFieldPrefix(const absl::Status& status, absl::string_view prefix) {
  if (status.ok() || prefix.empty()) return status;
  std::optional<std::string> old_path = FieldPathOf(status);
  if (!old_path.has_value()) {
    absl::Status out(status.code(), absl::StrCat(prefix, ": ", status.message()));
    out.SetPayload(kFieldPathPayloadUrl, absl::Cord(prefix));
    return out;
  }
  // The message starts with the old path; keep the rest of it.
  absl::string_view message = status.message();
  if (absl::StartsWith(message, *old_path)) message.remove_prefix(old_path->size());
  const std::string path = old_path->empty()       ? std::string(prefix)
                           : (*old_path)[0] == '[' ? absl::StrCat(prefix, *old_path)
                                                   : absl::StrCat(prefix, ".", *old_path);
  absl::Status out(status.code(), absl::StrCat(path, message));
  out.SetPayload(kFieldPathPayloadUrl, absl::Cord(path));
  return out;
}

absl::Status WithFieldPath(const absl::Status& status, absl::string_view path) {
  if (status.ok()) return status;
  absl::string_view message = status.message();
  if (std::optional<std::string> old_path = FieldPathOf(status)) {
    if (absl::StartsWith(message, *old_path)) message.remove_prefix(old_path->size());
    absl::ConsumePrefix(&message, ": ");
  }
  absl::Status out(status.code(), absl::StrCat(path, ": ", message));
  out.SetPayload(kFieldPathPayloadUrl, absl::Cord(path));
  return out;
}

std::optional<std::string> FieldPathOf(const absl::Status& status) {
  auto payload = status.GetPayload(kFieldPathPayloadUrl);
  if (!payload.has_value()) return std::nullopt;
  return std::string(*payload);
}

std::string Shortened(absl::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  // Never inside a UTF-8 character: messages travel in protobuf strings and JSON, which must
  // stay valid UTF-8.
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return absl::StrCat(text.substr(0, cut), "... (", text.size(), " characters)");
}

std::string Quoted(absl::string_view text) {
  constexpr size_t kMaxEcho = 64;
  const std::string shown = Shortened(text, kMaxEcho);
  if (shown.size() == text.size()) return absl::StrCat("\"", text, "\"");
  // '"abc..." (N characters)': the quote closes before the length.
  const size_t dots = shown.rfind("... (");
  return absl::StrCat("\"", shown.substr(0, dots), "...\"", shown.substr(dots + 3));
}

}  // namespace kiln
