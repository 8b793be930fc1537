// kiln-server: serves the Kiln API over gRPC until SIGINT or SIGTERM, then shuts down
// gracefully (see KilnServer::Shutdown).
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/server.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "address to serve on, host:port (0.0.0.0:50051 for every interface; port 0 picks a "
          "free one)");
ABSL_FLAG(int, worker_threads, 0,
          "compute threads shared by running jobs (each gets an equal share); 0: all cores");
ABSL_FLAG(int, rpc_worker_threads, 4,
          "threads that run Predict, Compile, weight transfers and dataset parsing (never "
          "gRPC's own threads); each Predict gets an equal share of the compute threads");
ABSL_FLAG(int, max_concurrent_jobs, 1, "jobs that run at once; the others wait in a queue");
ABSL_FLAG(std::string, state_dir, "",
          "directory for server state (kiln-server writes its bound port there as 'port')");
ABSL_FLAG(std::string, data_root, "",
          "directory OpenDataset may read files from; empty: no file access");
ABSL_FLAG(int64_t, max_message_bytes, int64_t{64} << 20, "largest request or response, bytes");
ABSL_FLAG(absl::Duration, session_ttl, absl::Hours(1),
          "idle time after which a session is deleted (a session may ask for another, up to "
          "--max_session_ttl)");
ABSL_FLAG(absl::Duration, max_session_ttl, absl::Hours(24), "longest TTL a session may ask for");
ABSL_FLAG(int, max_sessions, 256, "sessions the server holds at once");
ABSL_FLAG(int64_t, max_session_bytes, int64_t{4} << 30,
          "bytes of datasets and uploads one session may hold");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(10),
          "time in-flight RPCs get to finish after SIGINT/SIGTERM");

namespace {

constexpr char kUsage[] = R"(kiln-server: builds and trains Keras-style models for remote clients.

Usage: kiln-server [--flag=value ...]

Serves the Kiln gRPC API until SIGINT or SIGTERM, then drains and exits 0. `kiln health
--wait=30s` returns once it answers. Flags:
)";

// kiln-server's own flags (this file's), not those of the libraries linked in (--helpfull).
void PrintHelp() {
  std::vector<absl::CommandLineFlag*> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (absl::EndsWith(flag->Filename(), "server/main.cc")) flags.push_back(flag);
  }
  std::sort(flags.begin(), flags.end(),
            [](const auto* a, const auto* b) { return a->Name() < b->Name(); });
  std::printf("%s", kUsage);
  for (const absl::CommandLineFlag* flag : flags) {
    std::printf("  --%s (default: %s)\n      %s\n", std::string(flag->Name()).c_str(),
                flag->DefaultValue().empty() ? "none" : flag->DefaultValue().c_str(),
                flag->Help().c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h" || arg == "-help") {
      PrintHelp();
      return 0;
    }
  }
  absl::SetProgramUsageMessage(kUsage);
  absl::ParseCommandLine(argc, argv);

  // Signals are taken synchronously by a waiting thread, never by a handler.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  kiln::server::ServerOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.compute_threads = absl::GetFlag(FLAGS_worker_threads);
  options.max_concurrent_jobs = absl::GetFlag(FLAGS_max_concurrent_jobs);
  options.rpc_worker_threads = absl::GetFlag(FLAGS_rpc_worker_threads);
  options.state_dir = absl::GetFlag(FLAGS_state_dir);
  options.data_root = absl::GetFlag(FLAGS_data_root);
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.session_ttl = absl::GetFlag(FLAGS_session_ttl);
  options.max_session_ttl = absl::GetFlag(FLAGS_max_session_ttl);
  options.max_sessions = absl::GetFlag(FLAGS_max_sessions);
  options.max_session_bytes = absl::GetFlag(FLAGS_max_session_bytes);

  kiln::server::KilnServer server(options);
  if (absl::Status status = server.Start(); !status.ok()) {
    std::fprintf(stderr, "kiln-server: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  std::printf("kiln-server listening on port %d\n", server.port());
  std::fflush(stdout);
  if (!options.state_dir.empty()) {
    // Written then renamed, so that a watcher never reads a half-written port.
    const std::string port_file = absl::StrCat(options.state_dir, "/port");
    std::ofstream(absl::StrCat(port_file, ".tmp")) << server.port() << "\n";
    std::rename(absl::StrCat(port_file, ".tmp").c_str(), port_file.c_str());
  }

  int signal = 0;
  sigwait(&signals, &signal);
  std::printf("kiln-server: %s, shutting down\n", signal == SIGINT ? "SIGINT" : "SIGTERM");
  std::fflush(stdout);
  server.Shutdown(absl::GetFlag(FLAGS_shutdown_grace));
  std::printf("kiln-server: stopped\n");
  return 0;
}
