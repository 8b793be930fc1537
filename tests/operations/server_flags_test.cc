// The server's flags table: the command line, KILN_* variables, their errors, --help and the
// committed reference docs/flags.md.
#include "server/service/server_flags.h"

#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kiln::server {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<ServerCommandLine> Parse(std::vector<std::string> args,
                                        std::map<std::string, std::string> environment = {}) {
  return ParseServerCommandLine(args, [&environment](const char* name) -> const char* {
    auto it = environment.find(name);
    return it == environment.end() ? nullptr : it->second.c_str();
  });
}

TEST(ServerFlagsTest, TheCommandLineAndTheEnvironmentSetOptions) {
  absl::StatusOr<ServerCommandLine> line =
      Parse({"--listen=0.0.0.0:7000", "--max_sessions", "9", "--insecure", "--session_ttl=90s"},
            {{"KILN_MAX_SESSIONS", "3"}, {"KILN_HTTP_THREADS", "5"}});
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(line->action, ServerCommandLine::Action::kServe);
  EXPECT_EQ(line->options.listen, "0.0.0.0:7000");
  EXPECT_EQ(line->options.max_sessions, 9);  // the command line wins
  EXPECT_EQ(line->options.http_threads, 5);
  EXPECT_TRUE(line->options.insecure);
  EXPECT_EQ(line->options.session_ttl, absl::Seconds(90));
  EXPECT_EQ(line->options.max_tenant_jobs, ServerOptions().max_tenant_jobs);  // defaults
  EXPECT_FALSE(Parse({"--insecure", "--noinsecure"})->options.insecure);
}

// KILN_STATE_DIR with --ephemeral wrote no port file: only --state_dir counted as given.
TEST(ServerFlagsTest, AStateDirectoryFromTheEnvironmentCountsAsGiven) {
  EXPECT_TRUE(Parse({"--ephemeral"}, {{"KILN_STATE_DIR", "/tmp/x"}})->state_dir_given);
  EXPECT_TRUE(Parse({"--ephemeral", "--state_dir=/tmp/x"})->state_dir_given);
  EXPECT_FALSE(Parse({"--ephemeral"})->state_dir_given);
}

TEST(ServerFlagsTest, MistakesNameTheFlagOrVariable) {
  EXPECT_THAT(std::string(Parse({"--max_sesions=3"}).status().message()),
              HasSubstr("unknown flag --max_sesions; did you mean --max_sessions?"));
  EXPECT_THAT(std::string(Parse({"--max_sessions=lots"}).status().message()),
              HasSubstr("--max_sessions=lots"));
  EXPECT_THAT(std::string(Parse({}, {{"KILN_MAX_SESSIONS", "lots"}}).status().message()),
              HasSubstr("KILN_MAX_SESSIONS=lots"));
  EXPECT_THAT(std::string(Parse({"--listen"}).status().message()),
              HasSubstr("--listen needs a value"));
  EXPECT_THAT(std::string(Parse({"serve"}).status().message()), HasSubstr("takes only flags"));
}

TEST(ServerFlagsTest, ActionsAreRecognised) {
  EXPECT_EQ(Parse({"--help"})->action, ServerCommandLine::Action::kHelp);
  EXPECT_EQ(Parse({"--version"})->action, ServerCommandLine::Action::kVersion);
  EXPECT_EQ(Parse({"--flags_markdown"})->action, ServerCommandLine::Action::kFlagsMarkdown);
  absl::StatusOr<ServerCommandLine> hash = Parse({"--hash_token=alice"});
  ASSERT_TRUE(hash.ok());
  EXPECT_EQ(hash->action, ServerCommandLine::Action::kHashToken);
  EXPECT_EQ(hash->hash_token_tenant, "alice");
}

// --worker_threads said "0: all cores"; 0 is the CPU budget (cgroup quota, else affinity).
TEST(ServerFlagsTest, HelpStatesEachFlagWithItsDefaultAndVariable) {
  const std::string help = ServerFlagsHelp();
  EXPECT_THAT(help, HasSubstr("--listen (default: 127.0.0.1:50051), $KILN_LISTEN"));
  EXPECT_THAT(help, HasSubstr("--session_ttl (default: 1h), $KILN_SESSION_TTL"));
  EXPECT_THAT(help, HasSubstr("0: the CPUs the process may use"));
  EXPECT_THAT(help, ::testing::Not(HasSubstr("all cores")));
  for (const ServerFlag& flag : ServerFlags()) {
    EXPECT_THAT(help, HasSubstr(absl::StrCat("--", flag.name, " (default: "))) << flag.name;
  }
}

// The reference in docs/ is generated; regenerate it with
//   build/server/kiln-server --flags_markdown > docs/flags.md
TEST(ServerFlagsTest, TheCommittedReferenceIsTheGeneratedOne) {
  std::ifstream file(KILN_SOURCE_DIR "/docs/flags.md");
  ASSERT_TRUE(file.good()) << "docs/flags.md is missing";
  std::stringstream committed;
  committed << file.rdbuf();
  EXPECT_EQ(committed.str(), ServerFlagsMarkdown())
      << "docs/flags.md is stale: build/server/kiln-server --flags_markdown > docs/flags.md";
}

}  // namespace
}  // namespace kiln::server
