// Reading protobuf JSON files (model definitions, compile configs) with errors a person can
// act on: a syntax error gives its line and column, an unknown field its path and the closest
// real field name ("nodes[1].layer: no field \"depthwse_conv2d\" in kiln.v1.LayerSpec; did you
// mean \"depthwise_conv2d\"?"), a wrong value its path. Every such error is a usage error.
#ifndef KILN_CLIENT_CLI_JSON_INPUT_H_
#define KILN_CLIENT_CLI_JSON_INPUT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/cli/common.h"
#include "google/protobuf/message.h"

namespace kiln::cli {

// Parses `text` (named `source` in errors) into `message`.
absl::Status ParseJson(absl::string_view text, absl::string_view source,
                       google::protobuf::Message& message);

// The file at `path`, parsed as a `Message`.
template <typename Message>
absl::StatusOr<Message> ParseJsonFile(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(const std::string text, ReadFile(path));
  Message message;
  KILN_RETURN_IF_ERROR(ParseJson(text, path, message));
  return message;
}

}  // namespace kiln::cli

#endif  // KILN_CLIENT_CLI_JSON_INPUT_H_
