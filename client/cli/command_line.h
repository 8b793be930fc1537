// Parsing kiln's command line against the command table. Flags are absl flags, parsed here
// rather than by absl::ParseCommandLine so that every mistake is a usage error (exit 2) that
// names the closest real command or flag, and each command takes only its own flags.
//
//   kiln [--flag=value | --flag value | --bool | --nobool ...] COMMAND [ARGS...] [flags]
//   kiln help [COMMAND | GROUP] | kiln [COMMAND | GROUP] --help | kiln --version
#ifndef KILN_CLIENT_CLI_COMMAND_LINE_H_
#define KILN_CLIENT_CLI_COMMAND_LINE_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/cli/commands.h"
#include "core/base/closest_match.h"

namespace kiln::cli {

struct Invocation {
  const Command* command = nullptr;  // null with `help` alone: the list of commands
  std::string group;                 // `kiln help model`: the group whose commands to list
  Args args;                         // positional arguments after the command's name
  bool help = false;                 // print help rather than run
  bool version = false;              // --version: print kiln's version
};

// Parses argv and sets the flags it names. A UsageError (common.h) for an unknown command or
// flag (with the closest real one), a flag the command does not take, a value that does not
// parse, or the wrong number of arguments.
absl::StatusOr<Invocation> ParseCommandLine(int argc, char** argv);

// `kiln help`: every command with its one-line summary.
std::string CommandList();
// `kiln NAME --help`: the synopsis, details and every flag the command takes with its default.
std::string CommandHelp(const Command& command);
// `kiln help GROUP`: the group's commands with their summaries.
std::string GroupHelp(absl::string_view group);

using ::kiln::ClosestMatch;  // core/base/closest_match.h

}  // namespace kiln::cli

#endif  // KILN_CLIENT_CLI_COMMAND_LINE_H_
