#include "client/cli/json_input.h"

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "client/cli/command_line.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/json_util.h"

namespace kiln::cli {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

std::string Join(absl::string_view path, absl::string_view key) {
  return path.empty() ? std::string(key) : absl::StrCat(path, ".", key);
}

// The first object key, depth first, that names no field of its message, with the closest
// field name. Protobuf's parser finds these too, but without a suggestion.
absl::Status CheckFieldNames(const nlohmann::json& value, const Descriptor* type,
                             const std::string& path) {
  // Well-known types (Struct, Any, Timestamp, ...) have JSON forms of their own.
  if (!value.is_object() || absl::StartsWith(type->full_name(), "google.protobuf.")) {
    return absl::OkStatus();
  }
  for (const auto& [key, child] : value.items()) {
    const FieldDescriptor* field = type->FindFieldByName(key);
    if (field == nullptr) field = type->FindFieldByCamelcaseName(key);
    if (field == nullptr) {
      std::vector<std::string> names;
      for (int i = 0; i < type->field_count(); ++i) names.push_back(type->field(i)->name());
      const std::optional<std::string> closest = ClosestMatch(key, names);
      return absl::InvalidArgumentError(absl::StrCat(
          path.empty() ? "" : absl::StrCat(path, ": "), "no field \"", key, "\" in ",
          type->full_name(), closest ? absl::StrCat("; did you mean \"", *closest, "\"?") : ""));
    }
    if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || field->is_map()) continue;
    const std::string child_path = Join(path, key);
    if (field->is_repeated() && child.is_array()) {
      for (size_t i = 0; i < child.size(); ++i) {
        KILN_RETURN_IF_ERROR(CheckFieldNames(child[i], field->message_type(),
                                             absl::StrCat(child_path, "[", i, "]")));
      }
    } else {
      KILN_RETURN_IF_ERROR(CheckFieldNames(child, field->message_type(), child_path));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseJson(absl::string_view text, absl::string_view source,
                       google::protobuf::Message& message) {
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    // "[json.exception.parse_error.101] parse error at line 3, column 14: syntax error ..."
    absl::string_view what = e.what();
    const size_t at = what.find("parse error at ");
    if (at != absl::string_view::npos) what.remove_prefix(at + std::strlen("parse error at "));
    return UsageError(absl::StrCat(source, ": not valid JSON: ", what));
  }
  if (!json.is_object()) {
    return UsageError(absl::StrCat(source, ": holds a JSON ", json.type_name(),
                                   ", not an object (a ", message.GetDescriptor()->full_name(),
                                   ")"));
  }
  if (absl::Status names = CheckFieldNames(json, message.GetDescriptor(), ""); !names.ok()) {
    return UsageError(absl::StrCat(source, ": ", names.message()));
  }
  const auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(text.data(), text.size()), &message);
  if (!status.ok()) {
    // "(nodes[0].layer.dense.units): invalid value ..." -> "nodes[0].layer.dense.units: ..."
    std::string detail(status.message());
    if (absl::StartsWith(detail, "(")) {
      const size_t close = detail.find(')');
      if (close != std::string::npos) {
        const std::string path = detail.substr(1, close - 1);
        const std::string after = detail.substr(close + 1);
        const absl::string_view rest =
            absl::StripLeadingAsciiWhitespace(absl::StripPrefix(after, ":"));
        detail = path.empty() ? std::string(rest) : absl::StrCat(path, ": ", rest);
      }
    }
    return UsageError(
        absl::StrCat(source, ": not a valid ", message.GetDescriptor()->full_name(), ": ", detail));
  }
  return absl::OkStatus();
}

}  // namespace kiln::cli
