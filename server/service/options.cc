#include "server/service/options.h"

#include <unistd.h>

#include <cstdlib>
#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "server/service/logger.h"

namespace kiln::server {
namespace {

absl::Status OutOfRange(absl::string_view flag, absl::string_view requirement) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, " ", requirement));
}

}  // namespace

std::string DefaultStateDir() {
  if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg != nullptr && xdg[0] == '/') {
    return absl::StrCat(xdg, "/kiln");
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && home[0] == '/') {
    return absl::StrCat(home, "/.local/state/kiln");
  }
  return "/var/lib/kiln";
}

bool IsLoopbackAddress(absl::string_view listen) {
  if (absl::StartsWith(listen, "unix:") || absl::StartsWith(listen, "unix-abstract:")) return true;
  absl::string_view host = listen.substr(0, listen.rfind(':'));
  if (absl::ConsumePrefix(&host, "[")) absl::ConsumeSuffix(&host, "]");
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

absl::Status ValidateOptions(const ServerOptions& options) {
  if (options.compute_threads < 0) return OutOfRange("worker_threads", "must not be negative");
  if (options.max_concurrent_jobs < 1) return OutOfRange("max_concurrent_jobs", "must be >= 1");
  if (options.rpc_worker_threads < 1) return OutOfRange("rpc_worker_threads", "must be >= 1");
  if (options.max_queued_rpcs < 1) return OutOfRange("max_queued_rpcs", "must be >= 1");
  if (options.state_dir.empty() && !options.ephemeral) {
    return OutOfRange("state_dir", "must name a directory (or give --ephemeral)");
  }
  // gRPC takes the limit as an int; below 64 KiB not even a small Predict fits.
  if (options.max_message_bytes < (int64_t{64} << 10) ||
      options.max_message_bytes > std::numeric_limits<int>::max()) {
    return OutOfRange("max_message_bytes", "must be between 65536 and 2147483647");
  }
  if (options.session_ttl <= absl::ZeroDuration()) {
    return OutOfRange("session_ttl", "must be positive");
  }
  if (options.max_session_ttl < options.session_ttl) {
    return OutOfRange("max_session_ttl", "must not be shorter than --session_ttl");
  }
  if (options.session_reap_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("the session reap interval must be positive");
  }
  if (options.max_sessions < 1) return OutOfRange("max_sessions", "must be >= 1");
  if (options.max_session_bytes < 1) return OutOfRange("max_session_bytes", "must be >= 1");
  if (options.max_session_models < 1) return OutOfRange("max_session_models", "must be >= 1");
  if (options.max_tenant_sessions < 1) return OutOfRange("max_tenant_sessions", "must be >= 1");
  if (options.max_tenant_jobs < 1) return OutOfRange("max_tenant_jobs", "must be >= 1");
  if (options.max_tenant_bytes < 1) return OutOfRange("max_tenant_bytes", "must be >= 1");
  if (options.max_tenant_disk_bytes < 0) {
    return OutOfRange("max_tenant_disk_bytes", "must be >= 0 (0: no quota)");
  }
  if (options.max_server_bytes < 0) {
    return OutOfRange("max_server_bytes", "must be >= 0 (0: three quarters of memory)");
  }
  if (options.max_model_layers < 1) return OutOfRange("max_model_layers", "must be >= 1");
  if (options.max_model_parameters < 1) {
    return OutOfRange("max_model_parameters", "must be >= 1");
  }
  if (options.max_request_elements < 1) {
    return OutOfRange("max_request_elements", "must be >= 1");
  }
  if (options.shutdown_grace < absl::ZeroDuration()) {
    return OutOfRange("shutdown_grace", "must not be negative");
  }
  if (access(options.file_reader.c_str(), X_OK) != 0) {
    return OutOfRange("file_reader",
                      absl::StrCat("must name the kiln-file-reader program (", options.file_reader,
                                   " cannot be run); it is installed beside kiln-server"));
  }
  if (options.file_reader_memory < (int64_t{64} << 20)) {
    return OutOfRange("file_reader_memory", "must be >= 64 MiB");
  }
  if (options.file_reader_timeout < absl::Seconds(1)) {
    return OutOfRange("file_reader_timeout", "must be >= 1s");
  }
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return OutOfRange(options.tls_cert.empty() ? "tls_cert" : "tls_key",
                      "must be given with --tls_cert and --tls_key together");
  }
  if (!options.tls_client_ca.empty() && options.tls_cert.empty()) {
    return OutOfRange("tls_client_ca", "needs --tls_cert and --tls_key (mutual TLS)");
  }
  if (absl::Status format = ParseLogFormat(options.log_format).status(); !format.ok()) {
    return format;
  }
  if (absl::Status rpcs = ParseLogRpcs(options.log_rpcs).status(); !rpcs.ok()) return rpcs;
  if (options.http_threads < 2) return OutOfRange("http_threads", "must be >= 2");
  if (options.http_max_connections < options.http_threads) {
    return OutOfRange("http_max_connections", "must be >= --http_threads");
  }
  if (options.http_max_connections_per_client < 1) {
    return OutOfRange("http_max_connections_per_client", "must be >= 1");
  }
  if (options.http_read_timeout < absl::Milliseconds(100)) {
    return OutOfRange("http_read_timeout", "must be >= 100ms");
  }
  if (options.http_max_streams_per_tenant < 1) {
    return OutOfRange("http_max_streams_per_tenant", "must be >= 1");
  }
  if (options.http_keepalive <= absl::ZeroDuration()) {
    return OutOfRange("http_keepalive", "must be positive");
  }
  if (options.http_max_stream_time <= absl::ZeroDuration()) {
    return OutOfRange("http_max_stream_time", "must be positive");
  }
  if (options.http_listen.empty()) {
    if (!options.web_root.empty()) return OutOfRange("web_root", "needs --http_listen");
    if (!options.http_cors_origins.empty()) {
      return OutOfRange("http_cors_origins", "needs --http_listen");
    }
  }
  const bool authenticated = !options.auth_tokens_file.empty() || !options.tls_client_ca.empty();
  // The HTTP door serves the same API, so it is held to the same rule.
  for (const std::string* address : {&options.listen, &options.http_listen}) {
    if (address->empty() || authenticated || options.insecure || IsLoopbackAddress(*address)) {
      continue;
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to serve ", *address,
        " without authentication: give --auth_tokens_file or --tls_client_ca, or --insecure to "
        "let anyone who reaches it use every session"));
  }
  return absl::OkStatus();
}

}  // namespace kiln::server
