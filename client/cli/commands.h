// The kiln CLI's commands. `args` holds the positional arguments, the command's name first;
// everything else comes from the flags in flags.h.
#ifndef KILN_CLIENT_CLI_COMMANDS_H_
#define KILN_CLIENT_CLI_COMMANDS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "client/cpp/client.h"

namespace kiln::cli {

// session_commands.cc
absl::Status Health(client::Client& c);
absl::Status SessionCommand(client::Client& c, const std::vector<std::string>& args);
// model_commands.cc
absl::Status ModelCommand(client::Client& c, const std::vector<std::string>& args);
absl::Status Compile(client::Client& c);
// data_commands.cc
absl::Status DataCommand(client::Client& c, const std::vector<std::string>& args);
// job_commands.cc
absl::Status Fit(client::Client& c);
absl::Status Evaluate(client::Client& c);
absl::Status Predict(client::Client& c);
absl::Status JobsCommand(client::Client& c, const std::vector<std::string>& args);

}  // namespace kiln::cli

#endif  // KILN_CLIENT_CLI_COMMANDS_H_
