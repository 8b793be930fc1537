// kiln: the command-line client. `kiln help` lists the commands; every failure exits non-zero
// with the server's status and message on stderr.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "client/cli/commands.h"
#include "client/cli/common.h"

namespace kiln::cli {
namespace {

constexpr char kUsage[] = R"(kiln - command-line client for a Kiln server

Usage: kiln <command> [flags]

  health                                   is the server serving?
  session create [--name=N] [--ttl=SECONDS]
  session list | show | delete              (show/delete: --session)
  model define FILE.json [--replace]       a ModelDefinition in protobuf JSON
  model summary [--model=M]                Keras-style model.summary()
  model list
  compile [--model=M] [--optimizer=adam] [--learning_rate=R] [--momentum=M] [--loss=L]
          [--from_logits] [--metrics=accuracy] | [--config=FILE.json]
  data open --name=N (--builtin=fashion_mnist:train | --x=FILE [--y=FILE]) [--scale=S]
  data upload --name=N --x=FILE.npy [--y=FILE.npy] [--scale=S]
  data list
  fit [--model=M] --dataset=D [--epochs=1] [--batch_size=32] [--validation_split=F]
      [--validation_dataset=D] [--seed=N] [--detach]
  evaluate [--model=M] --dataset=D [--batch_size=32]
  predict [--model=M] (--dataset=D | --input=FILE.npy) [--output=FILE.npy]
  jobs list | watch JOB [--from=N] | cancel JOB

Every command takes --server=HOST:PORT (default $KILN_SERVER, else localhost:50051); session
commands take --session=ID (default $KILN_SESSION); --model may be left out when the session
has one model. --json prints responses as JSON.
The built-in dataset fashion_mnist means its train split for fit, its test split otherwise.
Exit status: 0 on success, 1 when the server refuses or a job fails, 2 for usage errors.
)";

absl::Status Run(const std::vector<std::string>& args) {
  client::Client c(Server());
  const std::string& command = args[0];
  if (command == "health") return Health(c);
  if (command == "session") return SessionCommand(c, args);
  if (command == "model") return ModelCommand(c, args);
  if (command == "compile") return Compile(c);
  if (command == "data") return DataCommand(c, args);
  if (command == "fit") return Fit(c);
  if (command == "evaluate") return Evaluate(c);
  if (command == "predict") return Predict(c);
  if (command == "jobs") return JobsCommand(c, args);
  return UsageError(absl::StrCat("unknown command \"", command, "\"; `kiln help` lists them"));
}

}  // namespace
}  // namespace kiln::cli

int main(int argc, char** argv) {
  // `kiln --help` and `kiln <command> --help` print the command list rather than every flag
  // of the libraries linked in (--helpfull still does that).
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::printf("%s", kiln::cli::kUsage);
      return 0;
    }
  }
  absl::SetProgramUsageMessage(kiln::cli::kUsage);
  const std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  const std::vector<std::string> args(positional.begin() + 1, positional.end());
  if (args.empty() || args[0] == "help") {
    std::printf("%s", kiln::cli::kUsage);
    return args.empty() ? 2 : 0;
  }
  const absl::Status status = kiln::cli::Run(args);
  if (status.ok()) return 0;
  std::fflush(stdout);
  const bool usage = status.GetPayload(kiln::cli::kUsagePayload).has_value();
  std::fprintf(stderr, "kiln: %s%s\n",
               usage ? "" : absl::StrCat(absl::StatusCodeToString(status.code()), ": ").c_str(),
               std::string(status.message()).c_str());
  return usage ? 2 : 1;
}
