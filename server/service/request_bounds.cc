#include "server/service/request_bounds.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/status.h"

namespace kiln::server {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

bool IsPath(const FieldDescriptor& field) {
  return field.name() == "path" || field.name() == "x" || field.name() == "y";
}

absl::Status CheckString(const FieldDescriptor& field, const std::string& value,
                         const std::string& path) {
  const size_t limit = IsPath(field) ? kMaxPathBytes : kMaxNameBytes;
  if (value.size() <= limit) return absl::OkStatus();
  return FieldError(path, absl::StrCat(IsPath(field) ? "a path" : "a name", " may have at most ",
                                       limit, " bytes; received ", Quoted(value)));
}

absl::Status Check(const Message& message, const std::string& prefix, int depth) {
  // Messages nest only a few levels (a spec's initializer); a deeper one is no request.
  if (depth > 32) return FieldError(prefix, "the request nests too deeply");
  const Reflection& reflection = *message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection.ListFields(message, &fields);
  for (const FieldDescriptor* field : fields) {
    const std::string path =
        prefix.empty() ? field->name() : absl::StrCat(prefix, ".", field->name());
    if (field->is_repeated()) {
      const int size = reflection.FieldSize(message, field);
      if (field->name() == "metrics" && size > kMaxMetrics) {
        return FieldError(path, absl::StrCat("at most ", kMaxMetrics, " metrics; received ", size));
      }
      for (int i = 0; i < size; ++i) {
        const std::string at = absl::StrCat(path, "[", i, "]");
        if (field->type() == FieldDescriptor::TYPE_STRING) {
          KILN_RETURN_IF_ERROR(
              CheckString(*field, reflection.GetRepeatedString(message, field, i), at));
        } else if (field->type() == FieldDescriptor::TYPE_MESSAGE) {
          KILN_RETURN_IF_ERROR(
              Check(reflection.GetRepeatedMessage(message, field, i), at, depth + 1));
        }
      }
    } else if (field->type() == FieldDescriptor::TYPE_STRING) {
      KILN_RETURN_IF_ERROR(CheckString(*field, reflection.GetString(message, field), path));
    } else if (field->type() == FieldDescriptor::TYPE_MESSAGE) {
      KILN_RETURN_IF_ERROR(Check(reflection.GetMessage(message, field), path, depth + 1));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckRequestBounds(const Message& request) { return Check(request, "", 0); }

}  // namespace kiln::server
