// The kiln CLI's commands. Each is one entry of the command table (command_table.cc): its name,
// arguments, help, the flags it takes, and the function that runs it. `args` holds the
// positional arguments after the command's name; everything else comes from flags.h.
#ifndef KILN_CLIENT_CLI_COMMANDS_H_
#define KILN_CLIENT_CLI_COMMANDS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/cpp/client.h"

namespace kiln::cli {

using Args = std::vector<std::string>;

struct Command {
  absl::string_view name = {};       // "fit", "model define"
  absl::string_view arguments = {};  // the positional part of the synopsis: "FILE.json", "JOB"
  absl::string_view summary = {};    // one line for `kiln help`
  absl::string_view details = {};    // more for `kiln NAME --help`; may be empty
  bool session = false;              // works in a session (--session / $KILN_SESSION)
  std::vector<absl::string_view> flags = {};  // besides --server, --json, --help (and --session)
  // What a flag means for this command where it differs from the flag's own help (--seed of
  // `session create` and of `fit`).
  std::vector<std::pair<absl::string_view, absl::string_view>> flag_help = {};
  int min_args = 0, max_args = 0;  // positional arguments after the name; -1: any
  absl::Status (*run)(client::Client& c, const Args& args) = nullptr;
};

// Every command, in the order `kiln help` lists them.
const std::vector<Command>& Commands();

// session_commands.cc
absl::Status Health(client::Client& c, const Args& args);
absl::Status SessionCreate(client::Client& c, const Args& args);
absl::Status SessionList(client::Client& c, const Args& args);
absl::Status SessionShow(client::Client& c, const Args& args);
absl::Status SessionDelete(client::Client& c, const Args& args);
// model_commands.cc
absl::Status ModelDefine(client::Client& c, const Args& args);
absl::Status ModelSummary(client::Client& c, const Args& args);
absl::Status ModelDefinition(client::Client& c, const Args& args);
absl::Status ModelList(client::Client& c, const Args& args);
absl::Status ModelDelete(client::Client& c, const Args& args);
absl::Status ModelImport(client::Client& c, const Args& args);
absl::Status ModelExport(client::Client& c, const Args& args);
absl::Status Compile(client::Client& c, const Args& args);
// weights_commands.cc
absl::Status WeightsGet(client::Client& c, const Args& args);
absl::Status WeightsSet(client::Client& c, const Args& args);
// data_commands.cc
absl::Status DataOpen(client::Client& c, const Args& args);
absl::Status DataUpload(client::Client& c, const Args& args);
absl::Status DataList(client::Client& c, const Args& args);
absl::Status DataRead(client::Client& c, const Args& args);
absl::Status DataDelete(client::Client& c, const Args& args);
// Every row of one array ("x", "x0", "y") of a session dataset, read page by page.
absl::StatusOr<v1::TensorProto> ReadDatasetArray(client::Client& c, const std::string& session,
                                                 const std::string& name, const std::string& array);
// job_commands.cc
absl::Status Fit(client::Client& c, const Args& args);
absl::Status Evaluate(client::Client& c, const Args& args);
absl::Status Predict(client::Client& c, const Args& args);
absl::Status JobsList(client::Client& c, const Args& args);
absl::Status JobsWatch(client::Client& c, const Args& args);
absl::Status JobsCancel(client::Client& c, const Args& args);
absl::Status JobsResume(client::Client& c, const Args& args);
// catalogue_commands.cc
absl::Status Catalogue(client::Client& c, const Args& args);
// checkpoint_commands.cc
absl::Status CheckpointsList(client::Client& c, const Args& args);
absl::Status CheckpointsRestore(client::Client& c, const Args& args);
absl::Status CheckpointsDelete(client::Client& c, const Args& args);

}  // namespace kiln::cli

#endif  // KILN_CLIENT_CLI_COMMANDS_H_
