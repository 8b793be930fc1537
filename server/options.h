// Server settings (kiln-server's flags fill them; tests set them directly) and their checks.
#ifndef KILN_SERVER_OPTIONS_H_
#define KILN_SERVER_OPTIONS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace kiln::server {

struct ServerOptions {
  std::string listen = "127.0.0.1:50051";  // host:port; port 0 picks a free one
  int compute_threads = 0;                 // OpenMP threads shared by running jobs; 0: all cores
  int max_concurrent_jobs = 1;             // more are queued
  int rpc_worker_threads = 4;              // run Predict, Compile, weights and data parsing
  std::string state_dir;                   // kiln-server writes its bound port there
  std::string data_root;                   // OpenDataset files are read below it; empty: none
  int64_t max_message_bytes = int64_t{64} << 20;
  absl::Duration session_ttl = absl::Hours(1);
  absl::Duration max_session_ttl = absl::Hours(24);
  absl::Duration session_reap_interval = absl::Seconds(5);  // how often expiry is checked
  int max_sessions = 256;
  int64_t max_session_bytes = int64_t{4} << 30;  // datasets and uploads of one session
};

// INVALID_ARGUMENT naming the kiln-server flag of the first setting out of range.
absl::Status ValidateOptions(const ServerOptions& options);

}  // namespace kiln::server

#endif  // KILN_SERVER_OPTIONS_H_
