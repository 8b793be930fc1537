#include "client/cli/command_line.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "client/cli/common.h"
#include "core/base/closest_match.h"

namespace kiln::cli {
namespace {

// Flags that every command takes.
constexpr absl::string_view kGlobalFlags[] = {"server",   "token",   "tls_ca",
                                              "tls_cert", "tls_key", "json"};

// The flags `command` takes, in the order its help lists them.
std::vector<absl::string_view> FlagsOf(const Command& command) {
  std::vector<absl::string_view> flags;
  if (command.session) flags.push_back("session");
  flags.insert(flags.end(), command.flags.begin(), command.flags.end());
  flags.insert(flags.end(), std::begin(kGlobalFlags), std::end(kGlobalFlags));
  return flags;
}

// Every flag some command takes: the CLI's own, not those of the libraries linked in.
const std::vector<std::string>& AllFlagNames() {
  static const std::vector<std::string>* const sorted = [] {
    absl::flat_hash_set<std::string> names(std::begin(kGlobalFlags), std::end(kGlobalFlags));
    names.insert("session");
    for (const Command& c : Commands()) names.insert(c.flags.begin(), c.flags.end());
    auto* all = new std::vector<std::string>(names.begin(), names.end());
    std::sort(all->begin(), all->end());
    return all;
  }();
  return *sorted;
}

// Whether `word` names a group of commands ("model" of "model define", ...).
bool IsGroup(absl::string_view word) {
  for (const Command& c : Commands()) {
    if (absl::StartsWith(c.name, absl::StrCat(word, " "))) return true;
  }
  return false;
}

bool IsOurFlag(absl::string_view name) {
  const std::vector<std::string>& names = AllFlagNames();
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string DidYouMean(absl::string_view word, const std::vector<std::string>& candidates,
                       absl::string_view prefix = "") {
  std::optional<std::string> closest = ClosestMatch(word, candidates);
  return closest ? absl::StrCat("; did you mean ", prefix, *closest, "?") : "";
}

struct FlagArg {
  std::string name;
  std::optional<std::string> value;  // absent: a bare --name (a bool, or --help)
};

// Splits argv into flags and positional arguments. `--name value` takes the next argument as
// the value of a non-bool flag; "-" alone and negative numbers are positional.
absl::Status SplitArgs(int argc, char** argv, std::vector<FlagArg>& flags, Args& positional) {
  bool flags_done = false;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (flags_done || arg.size() < 2 || arg[0] != '-' || absl::ascii_isdigit(arg[1])) {
      positional.emplace_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_done = true;
      continue;
    }
    if (arg == "-h") arg = "--help";
    absl::ConsumePrefix(&arg, "-");
    absl::ConsumePrefix(&arg, "-");
    FlagArg flag;
    const size_t eq = arg.find('=');
    flag.name = std::string(arg.substr(0, eq));
    if (eq != absl::string_view::npos) flag.value = std::string(arg.substr(eq + 1));
    const absl::CommandLineFlag* known = absl::FindCommandLineFlag(flag.name);
    const bool takes_value = known != nullptr && !known->IsOfType<bool>();
    if (!flag.value && takes_value && flag.name != "help") {
      if (i + 1 >= argc || absl::StartsWith(argv[i + 1], "--")) {
        return UsageError(absl::StrCat("--", flag.name, " needs a value"));
      }
      flag.value = argv[++i];
    }
    flags.push_back(std::move(flag));
  }
  return absl::OkStatus();
}

// The command named by the leading positional arguments ("model define" or "fit"), or a usage
// error naming the closest one.
absl::StatusOr<const Command*> FindCommand(Args& positional) {
  std::vector<std::string> words;  // first words: "fit", "model", ...
  for (const Command& c : Commands()) {
    const std::string first(c.name.substr(0, c.name.find(' ')));
    if (std::find(words.begin(), words.end(), first) == words.end()) words.push_back(first);
  }
  const std::string& first = positional[0];
  if (std::find(words.begin(), words.end(), first) == words.end()) {
    return UsageError(absl::StrCat("unknown command \"", first, "\"", DidYouMean(first, words),
                                   " (`kiln help` lists the commands)"));
  }
  std::vector<std::string> verbs;  // "define", "summary", ... for a group such as "model"
  for (const Command& c : Commands()) {
    if (c.name == first) {
      positional.erase(positional.begin());
      return &c;
    }
    if (absl::StartsWith(c.name, absl::StrCat(first, " "))) {
      verbs.emplace_back(c.name.substr(first.size() + 1));
    }
  }
  const std::string verb = positional.size() > 1 ? positional[1] : "";
  if (std::find(verbs.begin(), verbs.end(), verb) == verbs.end()) {
    const std::string choices =
        absl::StrCat("kiln ", first, " takes: ", absl::StrJoin(verbs, ", "));
    if (verb.empty()) {
      return UsageError(absl::StrCat("kiln ", first, " needs a command; ", choices, " (`kiln help ",
                                     first, "` describes them)"));
    }
    return UsageError(absl::StrCat("unknown command \"", verb, "\" for kiln ", first,
                                   DidYouMean(verb, verbs), " (", choices, ")"));
  }
  const std::string name = absl::StrCat(first, " ", verb);
  positional.erase(positional.begin(), positional.begin() + 2);
  for (const Command& c : Commands()) {
    if (c.name == name) return &c;
  }
  return absl::InternalError(absl::StrCat("no command \"", name, "\""));
}

// `text` in lines of at most `width` columns, each starting with `indent`.
std::string Wrap(absl::string_view text, absl::string_view indent, size_t width) {
  std::string out, line;
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (!line.empty() && indent.size() + line.size() + 1 + word.size() > width) {
      absl::StrAppend(&out, indent, line, "\n");
      line.clear();
    }
    absl::StrAppend(&line, line.empty() ? "" : " ", word);
  }
  if (!line.empty()) absl::StrAppend(&out, indent, line, "\n");
  return out;
}

std::string Synopsis(const Command& command) {
  std::string line = absl::StrCat("kiln ", command.name);
  if (!command.arguments.empty()) absl::StrAppend(&line, " ", command.arguments);
  return line;
}

}  // namespace

absl::StatusOr<Invocation> ParseCommandLine(int argc, char** argv) {
  std::vector<FlagArg> flags;
  Invocation invocation;
  KILN_RETURN_IF_ERROR(SplitArgs(argc, argv, flags, invocation.args));
  for (const FlagArg& f : flags) {
    invocation.help |= f.name == "help";
    invocation.version |= f.name == "version";
  }
  if (invocation.version) return invocation;
  if (!invocation.args.empty() && invocation.args[0] == "help") {
    invocation.help = true;
    invocation.args.erase(invocation.args.begin());
  }
  if (invocation.args.empty()) {
    if (invocation.help) return invocation;
    return UsageError("no command given (`kiln help` lists them)");
  }
  // Flag names first: a misspelled flag may have taken the next word as its value.
  for (const FlagArg& f : flags) {
    absl::string_view name = f.name;
    const bool negated = !f.value && absl::ConsumePrefix(&name, "no") && IsOurFlag(name) &&
                         absl::FindCommandLineFlag(name)->IsOfType<bool>();
    if (f.name != "help" && !IsOurFlag(f.name) && !negated) {
      return UsageError(absl::StrCat("unknown flag --", f.name,
                                     DidYouMean(f.name, AllFlagNames(), "--"),
                                     " (`kiln COMMAND --help` lists a command's flags)"));
    }
  }
  // `kiln help model`, `kiln model --help`: the group's commands.
  if (invocation.help && invocation.args.size() == 1 && IsGroup(invocation.args[0])) {
    invocation.group = invocation.args[0];
    return invocation;
  }
  KILN_ASSIGN_OR_RETURN(invocation.command, FindCommand(invocation.args));
  if (invocation.help) return invocation;

  const Command& command = *invocation.command;
  const std::vector<absl::string_view> allowed = FlagsOf(command);
  for (const FlagArg& f : flags) {
    absl::string_view name = f.name;
    std::string value = f.value.value_or("true");
    if (!IsOurFlag(name)) {  // --noNAME
      absl::ConsumePrefix(&name, "no");
      value = "false";
    }
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      return UsageError(absl::StrCat("kiln ", command.name, " does not take --", name, " (`kiln ",
                                     command.name, " --help` lists its flags)"));
    }
    std::string error;
    if (!absl::FindCommandLineFlag(name)->ParseFrom(value, &error)) {
      return UsageError(absl::StrCat("--", name, "=", value, ": ", error));
    }
  }
  const int n = static_cast<int>(invocation.args.size());
  if (n < command.min_args || (command.max_args >= 0 && n > command.max_args)) {
    return UsageError(
        absl::StrCat("usage: ", Synopsis(command),
                     n > command.max_args && command.max_args >= 0 ? " (too many arguments)" : ""));
  }
  return invocation;
}

std::string CommandList() {
  std::string out = R"(kiln - command-line client for a Kiln server

Usage: kiln COMMAND [ARGUMENTS] [--flag=value ...]

)";
  for (const Command& c : Commands()) {
    absl::StrAppend(&out, absl::StrFormat("  %-38s %s\n",
                                          Synopsis(c).substr(5),  // without "kiln "
                                          c.summary));
  }
  absl::StrAppend(&out, R"(
`kiln COMMAND --help` shows a command's flags. Every command takes --server=HOST[:PORT]
(default $KILN_SERVER, else localhost:50051) and --token (default $KILN_TOKEN) for a server that
requires one; --tls_ca connects with TLS, --tls_cert and --tls_key add a client certificate.
Commands in a session take --session=ID (default $KILN_SESSION); --json prints responses as
protobuf JSON.
Exit status: 0 on success, 1 when the server refuses or a job fails, 2 for usage errors,
130 when Ctrl-C cancelled a job.
)");
  return out;
}

std::string CommandHelp(const Command& command) {
  std::string out = absl::StrCat("Usage: ", Synopsis(command), " [flags]\n\n",
                                 absl::AsciiStrToUpper(command.summary.substr(0, 1)),
                                 command.summary.substr(1), ".\n");
  if (!command.details.empty()) absl::StrAppend(&out, Wrap(command.details, "", 100));
  absl::StrAppend(&out, "\nFlags:\n");
  for (absl::string_view name : FlagsOf(command)) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr) continue;
    const std::string value = flag->IsOfType<bool>() || flag->DefaultValue().empty()
                                  ? ""
                                  : absl::StrCat("=", flag->DefaultValue());
    std::string help = flag->Help();
    for (const auto& [flag_name, text] : command.flag_help) {
      if (flag_name == name) help = std::string(text);
    }
    absl::StrAppend(&out, "  --", name, value, "\n", Wrap(help, "      ", 100));
  }
  return out;
}

std::string GroupHelp(absl::string_view group) {
  std::string out = absl::StrCat("Usage: kiln ", group, " COMMAND [ARGUMENTS] [flags]\n\n");
  for (const Command& c : Commands()) {
    if (!absl::StartsWith(c.name, absl::StrCat(group, " "))) continue;
    absl::StrAppend(&out, absl::StrFormat("  %-38s %s\n", Synopsis(c).substr(5), c.summary));
  }
  absl::StrAppend(&out, "\n`kiln ", group, " COMMAND --help` shows a command's flags.\n");
  return out;
}

}  // namespace kiln::cli
