// Server settings and their checks. The defaults here are kiln-server's flag defaults (main.cc
// reads them from a default-constructed ServerOptions); tests set fields directly.
#ifndef KILN_SERVER_SERVICE_OPTIONS_H_
#define KILN_SERVER_SERVICE_OPTIONS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/reader/file_reader.h"

namespace kiln::server {

// $XDG_STATE_HOME/kiln, else $HOME/.local/state/kiln (the XDG base directory default), else
// /var/lib/kiln.
std::string DefaultStateDir();

struct ServerOptions {
  std::string listen = "127.0.0.1:50051";  // host:port; port 0 picks a free one
  int compute_threads = 0;                 // OpenMP threads shared by running work; 0: all cores
  int max_concurrent_jobs = 1;             // more are queued
  int rpc_worker_threads = 4;              // run changes, Predict, Compile, weights, parsing
  int max_queued_rpcs = 1024;              // RPCs waiting for a worker; more are refused
  // Sessions, models, weights, datasets and jobs are kept here, and the bound port as `port`.
  std::string state_dir = DefaultStateDir();
  bool ephemeral = false;  // keep nothing on disk (state_dir then only receives `port`)
  std::string data_root;   // OpenDataset files are read below it; empty: none
  int64_t max_message_bytes = int64_t{64} << 20;
  absl::Duration session_ttl = absl::Hours(1);
  absl::Duration max_session_ttl = absl::Hours(24);
  absl::Duration session_reap_interval = absl::Seconds(5);  // expiry checks and last-use flushes
  int max_sessions = 256;
  // Bytes a session holds: weights, gradients, optimizer state, plans, datasets, uploads and
  // the inline data of its jobs.
  int64_t max_session_bytes = int64_t{4} << 30;
  int max_session_models = 64;

  // Per tenant: across all of its sessions.
  int max_tenant_sessions = 64;
  int max_tenant_jobs = 16;  // queued and running
  int64_t max_tenant_bytes = int64_t{8} << 30;
  // What a tenant's sessions may keep in the state directory (tensor files and records);
  // 0: no quota.
  int64_t max_tenant_disk_bytes = int64_t{16} << 30;
  // What all sessions hold together; 0: three quarters of the memory the process may use (its
  // cgroup's limit, else physical memory).
  int64_t max_server_bytes = 0;
  // Per model (and per session graph), per request tensor.
  int max_model_layers = 1024;
  int64_t max_model_parameters = int64_t{100} << 20;
  int64_t max_request_elements = int64_t{1} << 26;
  absl::Duration shutdown_grace = absl::Seconds(10);

  // Keras files' containers are unpacked by this helper in a sandbox (server/reader); each
  // import reserves `file_reader_memory` of its session's memory while its reader runs.
  std::string file_reader = DefaultFileReaderPath();
  int64_t file_reader_memory = int64_t{2} << 30;
  absl::Duration file_reader_timeout = absl::Seconds(60);

  // Who may call (README "Security and reliability").
  std::string auth_tokens_file;   // `tenant:sha256-hex-of-token` lines; "": no tokens
  std::string tls_cert, tls_key;  // PEM files: serve TLS (both or neither)
  std::string tls_client_ca;      // PEM file: require client certificates it signed (mTLS)
  bool insecure = false;          // serve a non-loopback address without authentication

  // Operations (README "Operations").
  // host:port of /metrics, /healthz, /readyz and the web door (the API by Connect, job events,
  // the card editor); "": none.
  std::string http_listen;
  int http_threads = 16;  // each open stream holds one
  int http_max_streams_per_tenant = 4;
  // Connections: extra threads serve them while the kept ones are busy, up to this many in all.
  int http_max_connections = 256;
  int http_max_connections_per_client = 8;  // a client address's; a new one closes its slowest
  absl::Duration http_read_timeout = absl::Seconds(30);  // a whole request, headers and body
  absl::Duration http_keepalive = absl::Seconds(15);     // comment lines on idle event streams
  // A stream open this long is ended (clients resume it), so none holds a thread for good.
  absl::Duration http_max_stream_time = absl::Minutes(30);
  std::string http_cors_origins;    // comma-separated origins that may call; "*": any
  std::string web_root;             // the card editor's files, served at /; "": none
  std::string log_format = "text";  // text or json (one object per line)
  std::string log_rpcs = "errors";  // RPCs that get a log line: none, errors or all
};

// Whether `listen` (host:port, or a unix: address) can be reached from this machine only.
bool IsLoopbackAddress(absl::string_view listen);

// INVALID_ARGUMENT naming the kiln-server flag of the first setting out of range.
absl::Status ValidateOptions(const ServerOptions& options);

}  // namespace kiln::server

#endif  // KILN_SERVER_SERVICE_OPTIONS_H_
