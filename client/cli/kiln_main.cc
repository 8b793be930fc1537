// kiln: the command-line client. `kiln help` lists the commands, `kiln COMMAND --help` shows
// one. A failed command prints its error on stderr and exits with the status its kind of error
// calls for (common.h).
#include <cstdio>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "client/cli/command_line.h"
#include "client/cli/commands.h"
#include "client/cli/common.h"
#include "client/cli/interrupt.h"

namespace kiln::cli {
namespace {

// The message for a failed command, with a hint when the server could not be reached.
std::string ErrorMessage(const absl::Status& status, const ServerAddress& server) {
  if (IsUsageError(status) || IsInterrupted(status)) return std::string(status.message());
  // The server names the request's fields; here they are flags.
  const std::string message = absl::StrCat(
      absl::StatusCodeToString(status.code()), ": ",
      absl::StrReplaceAll(status.message(), {{"set `replace` to", "pass --replace to"}}));
  if (!absl::IsUnavailable(status) || absl::StrContains(status.message(), "shutting down")) {
    return message;
  }
  return absl::StrCat("cannot reach a Kiln server at ", server.target, " (", server.origin,
                      "): ", message,
                      "\nkiln: is kiln-server running there? Start one with ./scripts/serve, or "
                      "point --server or $KILN_SERVER at one.");
}

int Main(int argc, char** argv) {
  // Before gRPC starts any thread: they all inherit the blocked SIGINT.
  InstallInterruptHandler();
  absl::StatusOr<Invocation> invocation = ParseCommandLine(argc, argv);
  if (!invocation.ok()) {
    std::fprintf(stderr, "kiln: %s\n", std::string(invocation.status().message()).c_str());
    return 2;
  }
  if (invocation->version) {
    std::printf("kiln %s\n", KILN_VERSION);
    return 0;
  }
  if (invocation->help) {
    std::printf("%s", !invocation->group.empty()       ? GroupHelp(invocation->group).c_str()
                      : invocation->command == nullptr ? CommandList().c_str()
                                                       : CommandHelp(*invocation->command).c_str());
    return 0;
  }
  const ServerAddress server = Server();
  absl::StatusOr<std::unique_ptr<client::Client>> c =
      client::Client::Connect(server.target, ConnectionOptions());
  // A TLS file that cannot be read is a mistake on the command line.
  const absl::Status status =
      c.ok() ? invocation->command->run(**c, invocation->args) : UsageError(c.status().message());
  if (status.ok()) return 0;
  std::fflush(stdout);
  std::fprintf(stderr, "kiln: %s\n", ErrorMessage(status, server).c_str());
  if (IsUsageError(status)) return 2;
  if (IsInterrupted(status)) return 130;
  return 1;
}

}  // namespace
}  // namespace kiln::cli

int main(int argc, char** argv) { return kiln::cli::Main(argc, argv); }
