// kiln-server: serves the Kiln API over gRPC until SIGINT or SIGTERM, then shuts down
// gracefully (see KilnServer::Shutdown).
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "server/grpc/server.h"
#include "server/service/authenticator.h"

// Defaults come from ServerOptions, where they are written once.
const kiln::server::ServerOptions kDefaults;

ABSL_FLAG(std::string, listen, kDefaults.listen,
          "address to serve on, host:port (0.0.0.0:50051 for every interface; port 0 picks a "
          "free one)");
ABSL_FLAG(int, worker_threads, kDefaults.compute_threads,
          "compute threads shared by running jobs and RPC work (each gets an equal share); 0: "
          "all cores");
ABSL_FLAG(int, rpc_worker_threads, kDefaults.rpc_worker_threads,
          "threads that run every change, Predict, Compile, weight transfers and dataset "
          "parsing (never gRPC's own threads)");
ABSL_FLAG(int, max_queued_rpcs, kDefaults.max_queued_rpcs,
          "RPCs that may wait for an RPC worker thread; more are refused with "
          "RESOURCE_EXHAUSTED");
ABSL_FLAG(int, max_concurrent_jobs, kDefaults.max_concurrent_jobs,
          "jobs that run at once; the others wait in a queue");
ABSL_FLAG(std::string, state_dir, kDefaults.state_dir,
          "directory where sessions, models, weights, datasets, jobs and checkpoints are kept "
          "(one server at a time); kiln-server also writes its bound port there as 'port'");
ABSL_FLAG(bool, ephemeral, kDefaults.ephemeral,
          "keep everything in memory only: a restart starts empty (--state_dir, when given, "
          "then only receives 'port')");
ABSL_FLAG(std::string, data_root, kDefaults.data_root,
          "directory OpenDataset may read files from; empty: no file access");
ABSL_FLAG(int64_t, max_message_bytes, kDefaults.max_message_bytes,
          "largest request or response, bytes");
ABSL_FLAG(absl::Duration, session_ttl, kDefaults.session_ttl,
          "idle time after which a session is deleted (a session may ask for another, up to "
          "--max_session_ttl); it goes on counting while the server is down");
ABSL_FLAG(absl::Duration, max_session_ttl, kDefaults.max_session_ttl,
          "longest TTL a session may ask for");
ABSL_FLAG(int, max_sessions, kDefaults.max_sessions, "sessions the server holds at once");
ABSL_FLAG(int64_t, max_session_bytes, kDefaults.max_session_bytes,
          "bytes one session may hold: weights, gradients, optimizer state, plans, datasets, "
          "uploads and its jobs' inline data");
ABSL_FLAG(int, max_session_models, kDefaults.max_session_models, "models one session may hold");
ABSL_FLAG(int, max_tenant_sessions, kDefaults.max_tenant_sessions, "sessions one tenant may hold");
ABSL_FLAG(int, max_tenant_jobs, kDefaults.max_tenant_jobs,
          "jobs one tenant may have queued or running");
ABSL_FLAG(int64_t, max_tenant_bytes, kDefaults.max_tenant_bytes,
          "bytes one tenant's sessions may hold together (as --max_session_bytes counts them)");
ABSL_FLAG(int64_t, max_tenant_disk_bytes, kDefaults.max_tenant_disk_bytes,
          "bytes one tenant's sessions may keep in --state_dir together (weights, optimizer "
          "state, datasets, checkpoints, records and job events); 0: no quota");
ABSL_FLAG(int64_t, max_server_bytes, kDefaults.max_server_bytes,
          "bytes all sessions may hold together (as --max_session_bytes counts them); 0: three "
          "quarters of the memory the process may use (its cgroup's limit, else physical)");
ABSL_FLAG(int, max_model_layers, kDefaults.max_model_layers,
          "layers of one model, and of a session's graph");
ABSL_FLAG(int64_t, max_model_parameters, kDefaults.max_model_parameters, "parameters of one model");
ABSL_FLAG(int64_t, max_request_elements, kDefaults.max_request_elements,
          "elements of one tensor in a request (Predict inputs, weights, inline data)");
ABSL_FLAG(absl::Duration, shutdown_grace, kDefaults.shutdown_grace,
          "time in-flight RPCs get to finish after SIGINT/SIGTERM");
ABSL_FLAG(std::string, file_reader, kDefaults.file_reader,
          "the kiln-file-reader program that unpacks Keras files (.keras, .weights.h5) in a "
          "sandbox; default: beside kiln-server");
ABSL_FLAG(int64_t, file_reader_memory, kDefaults.file_reader_memory,
          "address space one file reader may use; each import reserves it from its session's "
          "bytes while the reader runs");
ABSL_FLAG(absl::Duration, file_reader_timeout, kDefaults.file_reader_timeout,
          "time (wall and CPU) one file reader may take");
ABSL_FLAG(std::string, auth_tokens_file, kDefaults.auth_tokens_file,
          "file of 'tenant:sha256-hex-of-token' lines (see --hash_token), re-read on SIGHUP; "
          "with it every RPC but health and reflection needs 'authorization: Bearer <token>'");
ABSL_FLAG(std::string, tls_cert, kDefaults.tls_cert,
          "PEM certificate chain: serve TLS (with --tls_key)");
ABSL_FLAG(std::string, tls_key, kDefaults.tls_key, "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, kDefaults.tls_client_ca,
          "PEM CA certificates: require client certificates they signed (mutual TLS); without "
          "--auth_tokens_file the certificate's common name is the tenant");
ABSL_FLAG(bool, insecure, kDefaults.insecure,
          "serve a non-loopback address without authentication (anyone who reaches the port "
          "can use every session)");
ABSL_FLAG(std::string, http_listen, kDefaults.http_listen,
          "host:port of the HTTP listener: /metrics (Prometheus), /healthz, /readyz, every RPC by "
          "the Connect protocol, job events as Server-Sent Events and the card editor "
          "(--web_root); HTTPS with --tls_cert; empty: none");
ABSL_FLAG(int, http_threads, kDefaults.http_threads,
          "threads of the HTTP listener; each open stream holds one, and 4 are kept for other "
          "calls");
ABSL_FLAG(int, http_max_connections, kDefaults.http_max_connections,
          "connections the HTTP listener serves at once: beyond --http_threads, on extra "
          "threads while those are busy");
ABSL_FLAG(int, http_max_connections_per_client, kDefaults.http_max_connections_per_client,
          "HTTP connections one client address may hold; a new one past that closes the "
          "client's oldest connection that is still sending its request");
ABSL_FLAG(absl::Duration, http_read_timeout, kDefaults.http_read_timeout,
          "time an HTTP request (headers and body) may take to arrive; a slower one's "
          "connection is closed");
ABSL_FLAG(int, http_max_streams_per_tenant, kDefaults.http_max_streams_per_tenant,
          "streams (job events, Connect server streams) one tenant may hold open over HTTP");
ABSL_FLAG(absl::Duration, http_keepalive, kDefaults.http_keepalive,
          "quiet time after which an open job event stream gets a keepalive comment");
ABSL_FLAG(absl::Duration, http_max_stream_time, kDefaults.http_max_stream_time,
          "time after which an open HTTP stream is ended; EventSource clients resume it after "
          "the last event they saw, so none holds a thread for good");
ABSL_FLAG(std::string, http_cors_origins, kDefaults.http_cors_origins,
          "origins whose pages may call the HTTP API (comma-separated, as "
          "https://app.example.com; * for any); empty: same-origin pages only");
ABSL_FLAG(std::string, web_root, kDefaults.web_root,
          "directory of the card editor (client/web/dist), served at / of --http_listen; "
          "empty: none");
ABSL_FLAG(std::string, log_format, kDefaults.log_format,
          "text (for people) or json (one object per line: time, level, message, tenant, "
          "session, job, rpc, code, duration_ms)");
ABSL_FLAG(std::string, log_rpcs, kDefaults.log_rpcs,
          "RPCs that get a log line: none, errors (those that fail) or all");
ABSL_FLAG(std::string, hash_token, "",
          "print the --auth_tokens_file line for this tenant and the token read from stdin, "
          "then exit");

namespace {

// Past --shutdown_grace, the time jobs get to write their last checkpoint and the store to
// close.
constexpr absl::Duration kShutdownSlack = absl::Seconds(3);

constexpr char kUsage[] = R"(kiln-server: builds and trains Keras-style models for remote clients.

Usage: kiln-server [--flag=value ...]

Serves the Kiln gRPC API until SIGINT or SIGTERM, then drains and exits 0. `kiln health
--wait=30s` returns once it answers. Every flag can also be set by the environment
variable named after it, KILN_ and the name in capitals (KILN_LISTEN=0.0.0.0:50051); the
command line wins. Flags:
)";

// kiln-server's own flags (this file's), not those of the libraries linked in (--helpfull),
// by name.
std::vector<absl::CommandLineFlag*> OwnFlags() {
  std::vector<absl::CommandLineFlag*> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (absl::EndsWith(flag->Filename(), "server/main.cc")) flags.push_back(flag);
  }
  std::sort(flags.begin(), flags.end(),
            [](const auto* a, const auto* b) { return a->Name() < b->Name(); });
  return flags;
}

// The variable a flag may also be set by: KILN_ and its name in capitals.
std::string EnvironmentName(const absl::CommandLineFlag& flag) {
  return absl::StrCat("KILN_", absl::AsciiStrToUpper(flag.Name()));
}

// --hash_token is a command, not a setting.
bool FromEnvironment(const absl::CommandLineFlag& flag) { return flag.Name() != "hash_token"; }

// Sets each flag from its KILN_ variable where one is set (containers are configured so); the
// command line, parsed after, wins. False, after
// saying which variable is wrong, on a value the flag does not take.
bool ReadEnvironment() {
  for (absl::CommandLineFlag* flag : OwnFlags()) {
    if (!FromEnvironment(*flag)) continue;
    const std::string name = EnvironmentName(*flag);
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) continue;
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      std::fprintf(stderr, "kiln-server: %s=%s: %s\n", name.c_str(), value, error.c_str());
      return false;
    }
  }
  return true;
}

void PrintHelp() {
  std::printf("%s", kUsage);
  for (const absl::CommandLineFlag* flag : OwnFlags()) {
    const std::string variable =
        FromEnvironment(*flag) ? absl::StrCat(", $", EnvironmentName(*flag)) : "";
    std::printf("  --%s (default: %s)%s\n      %s\n", std::string(flag->Name()).c_str(),
                flag->DefaultValue().empty() ? "none" : flag->DefaultValue().c_str(),
                variable.c_str(), flag->Help().c_str());
  }
}

// The token comes from stdin, so that it stays out of the shell's history and `ps`.
int PrintTokenLine(const std::string& tenant) {
  std::string token;
  std::getline(std::cin, token);
  absl::StatusOr<std::string> line =
      kiln::server::TokenFileLine(tenant, absl::StripAsciiWhitespace(token));
  if (!line.ok()) {
    std::fprintf(stderr, "kiln-server: --hash_token: %s\n",
                 std::string(line.status().message()).c_str());
    return 2;
  }
  std::printf("%s\n", line->c_str());
  return 0;
}

}  // namespace

// `port` into STATE_DIR/port, whole or not at all.
absl::Status WritePortFile(const std::string& state_dir, int port) {
  const std::string port_file = absl::StrCat(state_dir, "/port");
  const std::string temporary = absl::StrCat(port_file, ".tmp");
  std::error_code error;
  std::filesystem::create_directories(state_dir, error);
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << port << "\n";
    out.flush();
    if (out.good() && std::rename(temporary.c_str(), port_file.c_str()) == 0) {
      return absl::OkStatus();
    }
  }
  const int cause = errno;
  std::filesystem::remove(temporary, error);
  return absl::UnavailableError(absl::StrCat("cannot write the port file ", port_file, ": ",
                                             std::strerror(cause),
                                             " (is the state directory's disk full?)"));
}

int main(int argc, char** argv) {
  bool state_dir_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h" || arg == "-help") {
      PrintHelp();
      return 0;
    }
    state_dir_given |= absl::StartsWith(arg, "--state_dir") || absl::StartsWith(arg, "-state_dir");
  }
  absl::SetProgramUsageMessage(kUsage);
  if (!ReadEnvironment()) return 2;
  absl::ParseCommandLine(argc, argv);
  if (const std::string tenant = absl::GetFlag(FLAGS_hash_token); !tenant.empty()) {
    return PrintTokenLine(tenant);
  }

  // Signals are taken synchronously by a waiting thread, never by a handler.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  kiln::server::ServerOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.compute_threads = absl::GetFlag(FLAGS_worker_threads);
  options.max_concurrent_jobs = absl::GetFlag(FLAGS_max_concurrent_jobs);
  options.rpc_worker_threads = absl::GetFlag(FLAGS_rpc_worker_threads);
  options.max_queued_rpcs = absl::GetFlag(FLAGS_max_queued_rpcs);
  options.state_dir = absl::GetFlag(FLAGS_state_dir);
  options.ephemeral = absl::GetFlag(FLAGS_ephemeral);
  options.data_root = absl::GetFlag(FLAGS_data_root);
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.session_ttl = absl::GetFlag(FLAGS_session_ttl);
  options.max_session_ttl = absl::GetFlag(FLAGS_max_session_ttl);
  options.max_sessions = absl::GetFlag(FLAGS_max_sessions);
  options.max_session_bytes = absl::GetFlag(FLAGS_max_session_bytes);
  options.max_session_models = absl::GetFlag(FLAGS_max_session_models);
  options.max_tenant_sessions = absl::GetFlag(FLAGS_max_tenant_sessions);
  options.max_tenant_jobs = absl::GetFlag(FLAGS_max_tenant_jobs);
  options.max_tenant_bytes = absl::GetFlag(FLAGS_max_tenant_bytes);
  options.max_server_bytes = absl::GetFlag(FLAGS_max_server_bytes);
  options.max_tenant_disk_bytes = absl::GetFlag(FLAGS_max_tenant_disk_bytes);
  options.max_model_layers = absl::GetFlag(FLAGS_max_model_layers);
  options.max_model_parameters = absl::GetFlag(FLAGS_max_model_parameters);
  options.max_request_elements = absl::GetFlag(FLAGS_max_request_elements);
  options.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  options.file_reader = absl::GetFlag(FLAGS_file_reader);
  options.file_reader_memory = absl::GetFlag(FLAGS_file_reader_memory);
  options.file_reader_timeout = absl::GetFlag(FLAGS_file_reader_timeout);
  options.auth_tokens_file = absl::GetFlag(FLAGS_auth_tokens_file);
  options.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key = absl::GetFlag(FLAGS_tls_key);
  options.tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  options.insecure = absl::GetFlag(FLAGS_insecure);
  options.http_listen = absl::GetFlag(FLAGS_http_listen);
  options.http_threads = absl::GetFlag(FLAGS_http_threads);
  options.http_max_streams_per_tenant = absl::GetFlag(FLAGS_http_max_streams_per_tenant);
  options.http_max_connections = absl::GetFlag(FLAGS_http_max_connections);
  options.http_max_connections_per_client = absl::GetFlag(FLAGS_http_max_connections_per_client);
  options.http_read_timeout = absl::GetFlag(FLAGS_http_read_timeout);
  options.http_keepalive = absl::GetFlag(FLAGS_http_keepalive);
  options.http_max_stream_time = absl::GetFlag(FLAGS_http_max_stream_time);
  options.http_cors_origins = absl::GetFlag(FLAGS_http_cors_origins);
  options.web_root = absl::GetFlag(FLAGS_web_root);
  options.log_format = absl::GetFlag(FLAGS_log_format);
  options.log_rpcs = absl::GetFlag(FLAGS_log_rpcs);

  kiln::server::KilnServer server(options);
  if (absl::Status status = server.Start(); !status.ok()) {
    std::fprintf(stderr, "kiln-server: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  kiln::server::Logger& log = server.logger();
  log.Info(absl::StrCat("listening on port ", server.port(), "; ", server.security_summary(), "; ",
                        server.state_summary()));
  log.Info(server.compute_summary());
  log.Info(server.memory_summary());
  if (server.http_port() != 0) {
    log.Info(absl::StrCat("HTTP on port ", server.http_port(),
                          ": the API by Connect, job events, /metrics, /healthz, /readyz",
                          options.web_root.empty() ? "" : ", the card editor at /"));
  }
  if (!options.ephemeral || state_dir_given) {
    // Written then renamed, so that a watcher never reads a half-written port. A port that
    // cannot be written (a full disk) stops the server: whoever waits for the file would
    // otherwise read an empty one, or an old port.
    if (absl::Status written = WritePortFile(options.state_dir, server.port()); !written.ok()) {
      log.Error(std::string(written.message()));
      server.Shutdown(absl::ZeroDuration());
      return 1;
    }
  }

  int signal = 0;
  while (sigwait(&signals, &signal) == 0 && signal == SIGHUP) {
    if (absl::Status reloaded = server.ReloadTokens(); reloaded.ok()) {
      log.Info(absl::StrCat("SIGHUP, tokens re-read: ", server.security_summary()));
    } else {
      log.Warning(absl::StrCat("SIGHUP, tokens kept: ", reloaded.message()));
    }
  }
  log.Info(absl::StrCat(signal == SIGINT ? "SIGINT" : "SIGTERM", ", shutting down"));
  // Work that does not look at cancellation (a long weight initialisation) must not hold the
  // process past the grace: what answered OK is in the store already, so leaving is as safe as
  // a crash, which a restart recovers from.
  std::thread([grace = options.shutdown_grace, &log] {
    absl::SleepFor(grace + kShutdownSlack);
    log.Error(absl::StrCat("still busy ", absl::FormatDuration(grace + kShutdownSlack),
                           " after the signal; exiting now"));
    std::_Exit(1);
  }).detach();
  server.Shutdown(options.shutdown_grace);
  log.Info("stopped");
  return 0;
}
