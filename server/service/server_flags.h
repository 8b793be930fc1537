// ServerFlags: kiln-server's settings as flags, each stated once, as a ServerOptions field with
// its name and help. From this table come the command line (--name=value, --name value, --bool,
// --nobool), the KILN_NAME environment variables (the command line wins), the defaults (those of
// a default-constructed ServerOptions), --help, and the flags reference docs/flags.md
// (`kiln-server --flags_markdown`; a test keeps the committed file equal to it). What values are
// valid is ValidateOptions's (options.h), which the server applies at start.
#ifndef KILN_SERVER_SERVICE_SERVER_FLAGS_H_
#define KILN_SERVER_SERVICE_SERVER_FLAGS_H_

#include <functional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/service/options.h"

namespace kiln::server {

struct ServerFlag {
  using Field = std::variant<int ServerOptions::*, int64_t ServerOptions::*, bool ServerOptions::*,
                             std::string ServerOptions::*, absl::Duration ServerOptions::*>;
  absl::string_view name;
  Field field;
  absl::string_view help;
  // The default as the reference states it, where it depends on the machine; "": the value.
  absl::string_view default_text = {};
};

// Every flag, in the order --help lists them.
const std::vector<ServerFlag>& ServerFlags();

// What a command line asks kiln-server to do.
struct ServerCommandLine {
  enum class Action { kServe, kHelp, kVersion, kFlagsMarkdown, kHashToken };
  Action action = Action::kServe;
  ServerOptions options;
  bool state_dir_given = false;   // by --state_dir or KILN_STATE_DIR
  std::string hash_token_tenant;  // --hash_token=TENANT
};

// Looks an environment variable up: null when it is not set (getenv in kiln-server).
using Environment = std::function<const char*(const char*)>;

// `args` without the program's name. INVALID_ARGUMENT naming the flag or the variable: an
// unknown flag (with the closest real one), a value its type does not take, a missing value.
absl::StatusOr<ServerCommandLine> ParseServerCommandLine(const std::vector<std::string>& args,
                                                         const Environment& environment);

// `kiln-server --help`.
std::string ServerFlagsHelp();
// docs/flags.md.
std::string ServerFlagsMarkdown();

}  // namespace kiln::server

#endif  // KILN_SERVER_SERVICE_SERVER_FLAGS_H_
