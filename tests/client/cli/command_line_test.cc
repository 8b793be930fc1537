// Parsing kiln's command line: commands and flags found, mistakes turned into usage errors
// that name the closest real command or flag, and the server address completed.
#include "client/cli/command_line.h"

#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "client/cli/common.h"
#include "client/cli/flags.h"
#include "gtest/gtest.h"

namespace kiln::cli {
namespace {

absl::StatusOr<Invocation> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "kiln");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return ParseCommandLine(static_cast<int>(argv.size()), argv.data());
}

class CommandLineTest : public ::testing::Test {
 private:
  absl::FlagSaver saver_;  // each test starts from the flags' defaults
};

TEST_F(CommandLineTest, FindsTheCommandItsArgumentsAndFlags) {
  auto fit = Parse({"--server=h:1", "fit", "--epochs", "3", "--detach", "--nojson"});
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_EQ(fit->command->name, "fit");
  EXPECT_TRUE(fit->args.empty());
  EXPECT_EQ(absl::GetFlag(FLAGS_epochs), 3);
  EXPECT_TRUE(absl::GetFlag(FLAGS_detach));
  EXPECT_EQ(absl::GetFlag(FLAGS_server), "h:1");

  auto watch = Parse({"jobs", "watch", "-1"});  // a negative number is an argument
  ASSERT_TRUE(watch.ok()) << watch.status();
  EXPECT_EQ(watch->args, (Args{"-1"}));

  auto set = Parse({"weights", "set", "dense", "kernel=k.npy", "bias=b.npy", "--model=m"});
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->command->name, "weights set");
  EXPECT_EQ(set->args, (Args{"dense", "kernel=k.npy", "bias=b.npy"}));
  EXPECT_EQ(absl::GetFlag(FLAGS_model), "m");
}

TEST_F(CommandLineTest, HelpForTheWholeCliOrOneCommand) {
  auto all = Parse({"help"});
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->help);
  EXPECT_EQ(all->command, nullptr);
  for (const std::vector<std::string>& args : {std::vector<std::string>{"help", "data", "read"},
                                               {"data", "read", "--help"},
                                               {"data", "read", "-h"}}) {
    auto one = Parse(args);
    ASSERT_TRUE(one.ok()) << one.status();
    EXPECT_TRUE(one->help);
    EXPECT_EQ(one->command->name, "data read");
  }
  const std::string help = CommandHelp(*Parse({"help", "data", "read"})->command);
  EXPECT_NE(help.find("Usage: kiln data read NAME [flags]"), std::string::npos) << help;
  EXPECT_NE(help.find("--array=x"), std::string::npos) << help;
  EXPECT_NE(help.find("--session"), std::string::npos) << help;
  EXPECT_EQ(help.find("--epochs"), std::string::npos) << help;
}

TEST_F(CommandLineTest, MistakesAreUsageErrorsWithTheClosestRealName) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"evalute"}, "did you mean evaluate?"},
      {{"jobs", "lst"}, "did you mean list?"},
      {{"fit", "--batchsize=3"}, "did you mean --batch_size?"},
      {{"fit", "--replace"}, "kiln fit does not take --replace"},
      {{"fit", "--epochs=x"}, "--epochs=x"},
      {{"fit", "--epochs"}, "--epochs needs a value"},
      {{"data", "read"}, "usage: kiln data read NAME"},
      {{"--sesion", "abc", "fit"}, "unknown flag --sesion; did you mean --session?"},
      {{"fit", "--dataset", "--epochs=3"}, "--dataset needs a value"},
      {{"fit", "--noreplace"}, "kiln fit does not take --replace"},
      {{"fit", "--no"}, "unknown flag --no ("},  // too short to be a typo of anything
      {{"zzzzzz"}, "unknown command \"zzzzzz\" (`kiln help`"},  // nothing close
      // The word that is wrong, not the whole command line.
      {{"session", "craete"}, "unknown command \"craete\" for kiln session; did you mean create?"},
      {{}, "no command given"},
  };
  for (const auto& [args, message] : cases) {
    auto parsed = Parse(args);
    ASSERT_FALSE(parsed.ok()) << args.size();
    EXPECT_TRUE(IsUsageError(parsed.status()));
    EXPECT_NE(parsed.status().message().find(message), absl::string_view::npos) << parsed.status();
  }
}

// `kiln help model` failed ("kiln model needs a command"): a group's help lists its commands.
TEST_F(CommandLineTest, HelpOfAGroupListsItsCommands) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"help", "model"}, std::vector<std::string>{"model", "--help"}}) {
    absl::StatusOr<Invocation> parsed = Parse(args);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(parsed->group, "model");
    const std::string help = GroupHelp(parsed->group);
    EXPECT_NE(help.find("model define FILE.json"), std::string::npos) << help;
    EXPECT_NE(help.find("model export"), std::string::npos) << help;
    EXPECT_EQ(help.find("session create"), std::string::npos) << help;
  }
}

// `kiln fit --help` showed `session create`'s meaning of --seed too.
TEST_F(CommandLineTest, AFlagSharedByCommandsIsExplainedForEach) {
  const std::string fit = CommandHelp(*Parse({"help", "fit"})->command);
  EXPECT_NE(fit.find("seed of the fit's shuffling and dropout"), std::string::npos) << fit;
  EXPECT_EQ(fit.find("set_random_seed"), std::string::npos) << fit;
  const std::string create = CommandHelp(*Parse({"help", "session", "create"})->command);
  EXPECT_NE(create.find("set_random_seed"), std::string::npos) << create;
}

TEST_F(CommandLineTest, VersionIsAnswered) {
  absl::StatusOr<Invocation> parsed = Parse({"--version"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->version);
}

TEST_F(CommandLineTest, EveryCommandsFlagsExist) {
  for (const Command& command : Commands()) {
    for (absl::string_view flag : command.flags) {
      EXPECT_NE(absl::FindCommandLineFlag(flag), nullptr) << command.name << " --" << flag;
    }
    EXPECT_NE(command.run, nullptr) << command.name;
    EXPECT_FALSE(command.summary.empty()) << command.name;
  }
}

TEST(ClosestMatchTest, OnlyLikelyTypos) {
  EXPECT_EQ(ClosestMatch("depthwse_conv2d", {"dense", "depthwise_conv2d", "conv2d"}),
            "depthwise_conv2d");
  EXPECT_EQ(ClosestMatch("fti", {"fit", "predict"}), "fit");
  EXPECT_EQ(ClosestMatch("banana", {"fit", "predict"}), std::nullopt);
  EXPECT_EQ(ClosestMatch("1", {"x", "y"}), std::nullopt);
  EXPECT_EQ(ClosestMatch("denes", {"dense", "depthwise_conv2d"}), "dense");  // a swap
}

TEST(WithDefaultPortTest, AddsThePortOnlyWhenMissing) {
  EXPECT_EQ(WithDefaultPort("127.0.0.1"), "127.0.0.1:50051");
  EXPECT_EQ(WithDefaultPort("localhost:"), "localhost:50051");
  EXPECT_EQ(WithDefaultPort("example.com:7000"), "example.com:7000");
  EXPECT_EQ(WithDefaultPort("::1"), "[::1]:50051");
  EXPECT_EQ(WithDefaultPort("[::1]"), "[::1]:50051");
  EXPECT_EQ(WithDefaultPort("[::1]:7000"), "[::1]:7000");
  EXPECT_EQ(WithDefaultPort("unix:/run/kiln.sock"), "unix:/run/kiln.sock");
  EXPECT_EQ(WithDefaultPort("dns:///kiln:7000"), "dns:///kiln:7000");
}

}  // namespace
}  // namespace kiln::cli
