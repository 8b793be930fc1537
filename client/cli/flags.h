// The kiln CLI's flags (defined in flags.cc): their names, types, defaults and help are written
// once there; the command table (command_table.cc) says which command takes which.
#ifndef KILN_CLIENT_CLI_FLAGS_H_
#define KILN_CLIENT_CLI_FLAGS_H_

#include <cstdint>
#include <string>

#include "absl/flags/declare.h"
#include "absl/time/time.h"

ABSL_DECLARE_FLAG(std::string, server);
ABSL_DECLARE_FLAG(std::string, token);
ABSL_DECLARE_FLAG(std::string, tls_ca);
ABSL_DECLARE_FLAG(std::string, tls_cert);
ABSL_DECLARE_FLAG(std::string, tls_key);
ABSL_DECLARE_FLAG(std::string, session);
ABSL_DECLARE_FLAG(std::string, model);
ABSL_DECLARE_FLAG(std::string, name);
ABSL_DECLARE_FLAG(int64_t, ttl);
ABSL_DECLARE_FLAG(bool, replace);
ABSL_DECLARE_FLAG(std::string, format);
ABSL_DECLARE_FLAG(bool, skip_compile);
ABSL_DECLARE_FLAG(bool, on_server);
ABSL_DECLARE_FLAG(std::string, optimizer);
ABSL_DECLARE_FLAG(double, learning_rate);
ABSL_DECLARE_FLAG(double, momentum);
ABSL_DECLARE_FLAG(std::string, loss);
ABSL_DECLARE_FLAG(bool, from_logits);
ABSL_DECLARE_FLAG(std::string, metrics);
ABSL_DECLARE_FLAG(std::string, config);
ABSL_DECLARE_FLAG(std::string, dataset);
ABSL_DECLARE_FLAG(std::string, validation_dataset);
ABSL_DECLARE_FLAG(int, epochs);
ABSL_DECLARE_FLAG(int, batch_size);
ABSL_DECLARE_FLAG(double, validation_split);
ABSL_DECLARE_FLAG(int64_t, seed);
ABSL_DECLARE_FLAG(int64_t, checkpoint_every_batches);
ABSL_DECLARE_FLAG(double, checkpoint_every_seconds);
ABSL_DECLARE_FLAG(int, keep_checkpoints);
ABSL_DECLARE_FLAG(bool, detach);
ABSL_DECLARE_FLAG(std::string, builtin);
ABSL_DECLARE_FLAG(std::string, x);
ABSL_DECLARE_FLAG(std::string, y);
ABSL_DECLARE_FLAG(double, scale);
ABSL_DECLARE_FLAG(std::string, input);
ABSL_DECLARE_FLAG(std::string, output);
ABSL_DECLARE_FLAG(bool, keep);
ABSL_DECLARE_FLAG(std::string, array);
ABSL_DECLARE_FLAG(std::string, output_dir);
ABSL_DECLARE_FLAG(int64_t, from);
ABSL_DECLARE_FLAG(absl::Duration, wait);
ABSL_DECLARE_FLAG(std::string, service);
ABSL_DECLARE_FLAG(absl::Duration, progress_interval);
ABSL_DECLARE_FLAG(bool, json);

#endif  // KILN_CLIENT_CLI_FLAGS_H_
