#include "server/service/server_flags.h"

#include <optional>
#include <type_traits>

#include "absl/flags/marshalling.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "core/base/closest_match.h"
#include "core/base/status.h"

namespace kiln::server {
namespace {

constexpr char kUsage[] = R"(kiln-server: builds and trains Keras-style models for remote clients.

Usage: kiln-server [--flag=value ...]

Serves the Kiln gRPC API until SIGINT or SIGTERM, then drains and exits 0. `kiln health
--wait=30s` returns once it answers. Every flag can also be set by the environment
variable named after it, KILN_ and the name in capitals (KILN_LISTEN=0.0.0.0:50051); the
command line wins. `kiln-server --hash_token=TENANT` prints a tokens-file line for the token
read from stdin; `--version` prints the version. Flags:
)";

std::string EnvironmentName(absl::string_view flag) {
  return absl::StrCat("KILN_", absl::AsciiStrToUpper(flag));
}

const ServerFlag* FindFlag(absl::string_view name) {
  for (const ServerFlag& flag : ServerFlags()) {
    if (flag.name == name) return &flag;
  }
  return nullptr;
}

bool IsBool(const ServerFlag& flag) {
  return std::holds_alternative<bool ServerOptions::*>(flag.field);
}

// Sets the flag's field from `text`; `source` names where the text came from, for the error.
absl::Status Set(const ServerFlag& flag, absl::string_view text, absl::string_view source,
                 ServerOptions& options) {
  std::string error;
  const bool parsed = std::visit(
      [&](auto field) {
        using T = std::remove_reference_t<decltype(options.*field)>;
        T value;
        if (!absl::ParseFlag(text, &value, &error)) return false;
        options.*field = std::move(value);
        return true;
      },
      flag.field);
  if (parsed) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", error));
}

std::string DefaultText(const ServerFlag& flag) {
  if (!flag.default_text.empty()) return std::string(flag.default_text);
  static const ServerOptions* const defaults = new ServerOptions();
  std::string text =
      std::visit([](auto field) { return absl::UnparseFlag(defaults->*field); }, flag.field);
  return text.empty() ? "none" : text;
}

std::vector<std::string> FlagNames() {
  std::vector<std::string> names;
  for (const ServerFlag& flag : ServerFlags()) names.emplace_back(flag.name);
  for (const char* action : {"help", "version", "hash_token", "flags_markdown"}) {
    names.emplace_back(action);
  }
  return names;
}

}  // namespace

const std::vector<ServerFlag>& ServerFlags() {
  static const auto* const flags = new std::vector<ServerFlag>{
      {"listen", &ServerOptions::listen,
       "address to serve on, host:port (0.0.0.0:50051 for every interface; port 0 picks a free "
       "one)"},
      {"worker_threads", &ServerOptions::compute_threads,
       "compute threads shared by running jobs and RPC work (each gets an equal share); 0: the "
       "CPUs the process may use (its cgroup's CPU quota, else its CPU affinity)"},
      {"rpc_worker_threads", &ServerOptions::rpc_worker_threads,
       "threads that run every change, Predict, Compile, weight transfers and dataset parsing "
       "(never gRPC's own threads)"},
      {"max_queued_rpcs", &ServerOptions::max_queued_rpcs,
       "RPCs that may wait for an RPC worker thread; more are refused with RESOURCE_EXHAUSTED"},
      {"max_concurrent_jobs", &ServerOptions::max_concurrent_jobs,
       "jobs that run at once; the others wait in a queue"},
      {"state_dir", &ServerOptions::state_dir,
       "directory where sessions, models, weights, datasets, jobs and checkpoints are kept (one "
       "server at a time); kiln-server also writes its bound port there as 'port'",
       "$XDG_STATE_HOME/kiln, else $HOME/.local/state/kiln, else /var/lib/kiln"},
      {"ephemeral", &ServerOptions::ephemeral,
       "keep everything in memory only: a restart starts empty (--state_dir, when given, then "
       "only receives 'port')"},
      {"data_root", &ServerOptions::data_root,
       "directory OpenDataset may read files from; empty: no file access"},
      {"max_message_bytes", &ServerOptions::max_message_bytes,
       "largest request or response, bytes"},
      {"session_ttl", &ServerOptions::session_ttl,
       "idle time after which a session is deleted (a session may ask for another, up to "
       "--max_session_ttl); it goes on counting while the server is down"},
      {"max_session_ttl", &ServerOptions::max_session_ttl, "longest TTL a session may ask for"},
      {"max_sessions", &ServerOptions::max_sessions, "sessions the server holds at once"},
      {"max_session_bytes", &ServerOptions::max_session_bytes,
       "bytes one session may hold: weights, gradients, optimizer state, plans, datasets, "
       "uploads and its jobs' inline data"},
      {"max_session_models", &ServerOptions::max_session_models, "models one session may hold"},
      {"max_tenant_sessions", &ServerOptions::max_tenant_sessions, "sessions one tenant may hold"},
      {"max_tenant_jobs", &ServerOptions::max_tenant_jobs,
       "jobs one tenant may have queued or running"},
      {"max_tenant_bytes", &ServerOptions::max_tenant_bytes,
       "bytes one tenant's sessions may hold together (as --max_session_bytes counts them)"},
      {"max_tenant_disk_bytes", &ServerOptions::max_tenant_disk_bytes,
       "bytes one tenant's sessions may keep in --state_dir together: tensor files (weights, "
       "optimizer state, datasets, checkpoints) and records (graph changes, job events). A tensor "
       "file past it is refused with RESOURCE_EXHAUSTED before it is written; records count but "
       "are never refused, so a fit is not stopped by its own log; 0: no quota"},
      {"max_server_bytes", &ServerOptions::max_server_bytes,
       "bytes all sessions may hold together (as --max_session_bytes counts them); 0: three "
       "quarters of the memory the process may use (its cgroup's limit, else physical)"},
      {"max_model_layers", &ServerOptions::max_model_layers,
       "layers of one model, and of a session's graph"},
      {"max_model_parameters", &ServerOptions::max_model_parameters, "parameters of one model"},
      {"max_request_elements", &ServerOptions::max_request_elements,
       "elements of one tensor in a request (Predict inputs, weights, inline data)"},
      {"shutdown_grace", &ServerOptions::shutdown_grace,
       "time in-flight RPCs get to finish after SIGINT/SIGTERM"},
      {"file_reader", &ServerOptions::file_reader,
       "the kiln-file-reader program that unpacks Keras files (.keras, .weights.h5) in a "
       "sandbox; default: beside kiln-server",
       "kiln-file-reader beside kiln-server"},
      {"file_reader_memory", &ServerOptions::file_reader_memory,
       "address space one file reader may use; each import reserves it from its session's bytes "
       "while the reader runs"},
      {"file_reader_timeout", &ServerOptions::file_reader_timeout,
       "time (wall and CPU) one file reader may take"},
      {"auth_tokens_file", &ServerOptions::auth_tokens_file,
       "file of 'tenant:sha256-hex-of-token' lines (see --hash_token), re-read on SIGHUP; with "
       "it every RPC but health and reflection needs 'authorization: Bearer <token>'"},
      {"tls_cert", &ServerOptions::tls_cert, "PEM certificate chain: serve TLS (with --tls_key)"},
      {"tls_key", &ServerOptions::tls_key, "PEM private key of --tls_cert"},
      {"tls_client_ca", &ServerOptions::tls_client_ca,
       "PEM CA certificates: require client certificates they signed (mutual TLS); without "
       "--auth_tokens_file the certificate's common name is the tenant"},
      {"insecure", &ServerOptions::insecure,
       "serve a non-loopback address without authentication (anyone who reaches the port can use "
       "every session)"},
      {"http_listen", &ServerOptions::http_listen,
       "host:port of the HTTP listener: /metrics (Prometheus), /healthz, /readyz, every RPC by "
       "the Connect protocol, job events as Server-Sent Events and the card editor (--web_root); "
       "HTTPS with --tls_cert; empty: none"},
      {"http_threads", &ServerOptions::http_threads,
       "threads of the HTTP listener; each open stream holds one, and 4 are kept for other calls"},
      {"http_max_connections", &ServerOptions::http_max_connections,
       "connections the HTTP listener serves at once: beyond --http_threads, on extra threads "
       "while those are busy"},
      {"http_max_connections_per_client", &ServerOptions::http_max_connections_per_client,
       "HTTP connections one client address may hold; a new one past that closes the client's "
       "oldest connection that is still sending its request"},
      {"http_read_timeout", &ServerOptions::http_read_timeout,
       "time an HTTP request (headers and body) may take to arrive; a slower one's connection is "
       "closed"},
      {"http_max_streams_per_tenant", &ServerOptions::http_max_streams_per_tenant,
       "streams (job events, Connect server streams) one tenant may hold open over HTTP"},
      {"http_keepalive", &ServerOptions::http_keepalive,
       "quiet time after which an open job event stream gets a keepalive comment"},
      {"http_max_stream_time", &ServerOptions::http_max_stream_time,
       "time after which an open HTTP stream is ended; EventSource clients resume it after the "
       "last event they saw, so none holds a thread for good"},
      {"http_cors_origins", &ServerOptions::http_cors_origins,
       "origins whose pages may call the HTTP API (comma-separated, as https://app.example.com; "
       "* for any); empty: same-origin pages only"},
      {"web_root", &ServerOptions::web_root,
       "directory of the card editor (client/web/dist), served at / of --http_listen; empty: "
       "none"},
      {"log_format", &ServerOptions::log_format,
       "text (for people) or json (one object per line: time, level, message, tenant, session, "
       "job, rpc, code, duration_ms)"},
      {"log_rpcs", &ServerOptions::log_rpcs,
       "RPCs that get a log line: none, errors (those that fail) or all"},
  };
  return *flags;
}

absl::StatusOr<ServerCommandLine> ParseServerCommandLine(const std::vector<std::string>& args,
                                                         const Environment& environment) {
  ServerCommandLine line;
  for (const ServerFlag& flag : ServerFlags()) {
    const std::string variable = EnvironmentName(flag.name);
    const char* value = environment(variable.c_str());
    if (value == nullptr) continue;
    KILN_RETURN_IF_ERROR(Set(flag, value, absl::StrCat(variable, "=", value), line.options));
    line.state_dir_given |= flag.name == "state_dir";
  }
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (arg == "-h") arg = "--help";
    if (!absl::ConsumePrefix(&arg, "--") && !absl::ConsumePrefix(&arg, "-")) {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument \"", arg, "\": kiln-server takes only flags"));
    }
    const size_t eq = arg.find('=');
    const absl::string_view name = arg.substr(0, eq);
    std::optional<std::string> value;
    if (eq != absl::string_view::npos) value = std::string(arg.substr(eq + 1));
    if (name == "help") return ServerCommandLine{.action = ServerCommandLine::Action::kHelp};
    if (name == "version") return ServerCommandLine{.action = ServerCommandLine::Action::kVersion};
    if (name == "flags_markdown") {
      return ServerCommandLine{.action = ServerCommandLine::Action::kFlagsMarkdown};
    }
    const ServerFlag* flag = FindFlag(name);
    bool negated = false;
    if (flag == nullptr && absl::StartsWith(name, "no") && !value.has_value()) {
      flag = FindFlag(name.substr(2));
      negated = flag != nullptr && IsBool(*flag);
      if (!negated) flag = nullptr;
    }
    if (flag == nullptr && name != "hash_token") {
      const std::optional<std::string> closest = ClosestMatch(name, FlagNames());
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name,
                       closest.has_value() ? absl::StrCat("; did you mean --", *closest, "?") : "",
                       " (kiln-server --help lists the flags)"));
    }
    if (!value.has_value()) {
      if (negated) {
        value = "false";
      } else if (flag != nullptr && IsBool(*flag)) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
      }
    }
    if (name == "hash_token") {
      line.action = ServerCommandLine::Action::kHashToken;
      line.hash_token_tenant = *value;
      continue;
    }
    KILN_RETURN_IF_ERROR(
        Set(*flag, *value, absl::StrCat("--", flag->name, "=", *value), line.options));
    line.state_dir_given |= flag->name == "state_dir";
  }
  return line;
}

std::string ServerFlagsHelp() {
  std::string out = kUsage;
  for (const ServerFlag& flag : ServerFlags()) {
    absl::StrAppend(&out, "  --", flag.name, " (default: ", DefaultText(flag), "), $",
                    EnvironmentName(flag.name), "\n      ", flag.help, "\n");
  }
  return out;
}

std::string ServerFlagsMarkdown() {
  std::string out = R"(# kiln-server flags

Generated by `kiln-server --flags_markdown` from the flags table
(`server/service/server_flags.cc`); a test keeps this file equal to it. Every flag can also be
set by the environment variable in its row; the command line wins. Durations take Go's form
(`90s`, `10m`, `1h30m`); sizes are bytes.

| Flag | Variable | Default | What it sets |
|---|---|---|---|
)";
  for (const ServerFlag& flag : ServerFlags()) {
    absl::StrAppend(&out, "| `--", flag.name, "` | `", EnvironmentName(flag.name), "` | ",
                    absl::StrReplaceAll(DefaultText(flag), {{"|", "\\|"}}), " | ",
                    absl::StrReplaceAll(flag.help, {{"|", "\\|"}}), " |\n");
  }
  return out;
}

}  // namespace kiln::server
