// What every kiln command shares: the common flags (server, session, model), errors that set
// the exit status, printing protobuf JSON, and files. Exit status: 0 on success; 2 for a
// UsageError (a mistake on the command line, or a file that cannot be read); 130 for an
// InterruptedError (Ctrl-C cancelled the job); 1 for anything else (the server refused, a job
// failed).
#ifndef KILN_CLIENT_CLI_COMMON_H_
#define KILN_CLIENT_CLI_COMMON_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "client/cpp/client.h"
#include "core/base/status.h"
#include "google/protobuf/message.h"

namespace kiln::cli {

inline constexpr int kDefaultPort = 50051;

// A command-line mistake: exit status 2.
absl::Status UsageError(absl::string_view message);
bool IsUsageError(const absl::Status& status);
// A job cancelled by Ctrl-C: exit status 130, as a shell reports a command SIGINT stopped.
absl::Status InterruptedError(absl::string_view message);
bool IsInterrupted(const absl::Status& status);

// The server to talk to, and where that came from, for error messages.
struct ServerAddress {
  std::string target;  // host:port
  std::string origin;  // "--server", "$KILN_SERVER" or "the default"
};
// --server, else $KILN_SERVER, else localhost; the port defaults to 50051.
ServerAddress Server();
// How to connect: --token (or $KILN_TOKEN) and the TLS flags.
client::ClientOptions ConnectionOptions();
// "host" -> "host:50051", "::1" -> "[::1]:50051"; a target with a port or a scheme
// ("unix:...", "dns:///...") is left as it is.
std::string WithDefaultPort(absl::string_view target);

// --session, else $KILN_SESSION; a usage error that says how to get one when neither is set.
absl::StatusOr<std::string> RequireSession();
// --seed: none for its default -1, a usage error for other negative values.
absl::StatusOr<std::optional<int64_t>> SeedFlag();
// `value` of --`flag`; a usage error when it is empty.
absl::StatusOr<std::string> Require(const std::string& value, absl::string_view flag);
// --model, else the session's only model. When it has none or several: a usage error, or, if
// `optional`, "" (for a layer of the session's own graph rather than of a model).
absl::StatusOr<std::string> ResolveModel(client::Client& c, const std::string& session,
                                         bool optional = false);

// Protobuf JSON with the API's field names (as `kiln model define` and --config read it).
absl::StatusOr<std::string> JsonOf(const google::protobuf::Message& message);
absl::Status PrintJson(const google::protobuf::Message& message);

// The whole file; a usage error that says why it cannot be read (missing, permission, ...).
absl::StatusOr<std::string> ReadFile(const std::string& path);
// Replaces `path` with `bytes`; an error that says why it cannot be written.
absl::Status WriteFile(const std::string& path, absl::string_view bytes);

}  // namespace kiln::cli

#endif  // KILN_CLIENT_CLI_COMMON_H_
