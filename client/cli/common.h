// What every kiln command shares: reading the common flags (server, session, model), usage
// errors (exit status 2), and printing or reading protobuf JSON. Each command returns OK or the
// error to report; a UsageError exits 2, anything else 1.
#ifndef KILN_CLIENT_CLI_COMMON_H_
#define KILN_CLIENT_CLI_COMMON_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "client/cpp/client.h"
#include "core/base/status.h"
#include "google/protobuf/message.h"
#include "google/protobuf/util/json_util.h"

namespace kiln::cli {

// Marks a UsageError.
inline constexpr char kUsagePayload[] = "type.kiln.dev/kiln.cli.Usage";

// A command-line mistake: exit status 2 rather than 1.
absl::Status UsageError(absl::string_view message);

// --server, else $KILN_SERVER, else localhost:50051.
std::string Server();
// --session, else $KILN_SESSION; a usage error when neither is set.
absl::StatusOr<std::string> RequireSession();
// `value` of --`flag`; a usage error when it is empty.
absl::StatusOr<std::string> Require(const std::string& value, absl::string_view flag);
// --model, else the session's only model; a usage error when there is none or several.
absl::StatusOr<std::string> ResolveModel(client::Client& c, const std::string& session);

absl::Status PrintJson(const google::protobuf::Message& message);
absl::StatusOr<std::string> ReadFile(const std::string& path);

template <typename Message>
absl::StatusOr<Message> ParseJsonFile(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  Message message;
  const auto status = google::protobuf::util::JsonStringToMessage(text, &message);
  if (!status.ok()) {
    return UsageError(absl::StrCat(path, ": not a valid ", Message::descriptor()->name(),
                                   " in protobuf JSON: ", status.ToString()));
  }
  return message;
}

}  // namespace kiln::cli

#endif  // KILN_CLIENT_CLI_COMMON_H_
