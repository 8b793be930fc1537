#include "client/cli/common.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "client/cli/flags.h"
#include "google/protobuf/util/json_util.h"

namespace kiln::cli {
namespace {

constexpr char kUsagePayload[] = "type.kiln.dev/kiln.cli.Usage";
constexpr char kInterruptedPayload[] = "type.kiln.dev/kiln.cli.Interrupted";

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

}  // namespace

absl::Status UsageError(absl::string_view message) {
  absl::Status status = absl::InvalidArgumentError(message);
  status.SetPayload(kUsagePayload, absl::Cord("usage"));
  return status;
}

bool IsUsageError(const absl::Status& status) {
  return status.GetPayload(kUsagePayload).has_value();
}

absl::Status InterruptedError(absl::string_view message) {
  absl::Status status = absl::CancelledError(message);
  status.SetPayload(kInterruptedPayload, absl::Cord("interrupted"));
  return status;
}

bool IsInterrupted(const absl::Status& status) {
  return status.GetPayload(kInterruptedPayload).has_value();
}

std::string WithDefaultPort(absl::string_view target) {
  if (absl::StrContains(target, "://") || absl::StartsWith(target, "unix:") ||
      absl::StartsWith(target, "unix-abstract:") || absl::StartsWith(target, "ipv4:") ||
      absl::StartsWith(target, "ipv6:")) {
    return std::string(target);
  }
  if (absl::StartsWith(target, "[")) {  // [v6] or [v6]:port
    if (absl::StrContains(target, "]:")) return std::string(target);
    return absl::StrCat(target, ":", kDefaultPort);
  }
  const size_t colons = std::count(target.begin(), target.end(), ':');
  if (colons == 0) return absl::StrCat(target, ":", kDefaultPort);
  if (colons == 1 && absl::EndsWith(target, ":")) return absl::StrCat(target, kDefaultPort);
  if (colons > 1) return absl::StrCat("[", target, "]:", kDefaultPort);  // a bare IPv6 address
  return std::string(target);
}

ServerAddress Server() {
  if (const std::string flag = absl::GetFlag(FLAGS_server); !flag.empty()) {
    return {WithDefaultPort(flag), "--server"};
  }
  if (const std::string env = Env("KILN_SERVER"); !env.empty()) {
    return {WithDefaultPort(env), "$KILN_SERVER"};
  }
  return {WithDefaultPort("localhost"), "the default"};
}

client::ClientOptions ConnectionOptions() {
  client::ClientOptions options;
  options.token = absl::GetFlag(FLAGS_token);
  if (options.token.empty()) options.token = Env("KILN_TOKEN");
  options.tls_ca = absl::GetFlag(FLAGS_tls_ca);
  options.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key = absl::GetFlag(FLAGS_tls_key);
  return options;
}

absl::StatusOr<std::string> RequireSession() {
  std::string session = absl::GetFlag(FLAGS_session);
  if (session.empty()) session = Env("KILN_SESSION");
  if (session.empty()) {
    return UsageError(
        "this command works in a session: give --session=ID or set $KILN_SESSION; create one "
        "with `export KILN_SESSION=$(kiln session create)` (`kiln session list` shows the "
        "server's sessions)");
  }
  return session;
}

absl::StatusOr<std::optional<int64_t>> SeedFlag() {
  const int64_t seed = absl::GetFlag(FLAGS_seed);
  if (seed == -1) return std::nullopt;
  if (seed < 0) return UsageError(absl::StrCat("--seed=", seed, ": a seed is 0 or more"));
  return seed;
}

absl::StatusOr<std::string> Require(const std::string& value, absl::string_view flag) {
  if (value.empty()) return UsageError(absl::StrCat("this command needs --", flag));
  return value;
}

absl::StatusOr<std::string> ResolveModel(client::Client& c, const std::string& session,
                                         bool optional) {
  if (!absl::GetFlag(FLAGS_model).empty()) return absl::GetFlag(FLAGS_model);
  v1::ListModelsRequest request;
  request.set_session_id(session);
  KILN_ASSIGN_OR_RETURN(v1::ListModelsResponse r,
                        c.Call(&v1::ModelService::Stub::ListModels, c.models(), request));
  if (r.models_size() == 1) return r.models(0).name();
  if (optional) return std::string();
  if (r.models_size() == 0) {
    return UsageError("the session has no model yet; define one first (kiln model define FILE)");
  }
  std::vector<std::string> names;
  for (const v1::ModelInfo& m : r.models()) names.push_back(m.name());
  return UsageError(absl::StrCat("the session has ", names.size(), " models (",
                                 absl::StrJoin(names, ", "), "); choose one with --model"));
}

absl::StatusOr<std::string> JsonOf(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  const auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) return absl::InternalError(status.ToString());
  return json;
}

absl::Status PrintJson(const google::protobuf::Message& message) {
  KILN_ASSIGN_OR_RETURN(std::string json, JsonOf(message));
  std::printf("%s", json.c_str());
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  std::string bytes;
  if (file != nullptr) {
    char buffer[1 << 16];
    size_t n;
    while ((n = std::fread(buffer, 1, sizeof(buffer), file.get())) > 0) bytes.append(buffer, n);
  }
  if (file == nullptr || std::ferror(file.get())) {
    return UsageError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  return bytes;
}

absl::Status WriteFile(const std::string& path, absl::string_view bytes) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (!file) return UsageError(absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  file.close();
  if (!file) {
    return absl::DataLossError(absl::StrCat("writing ", path, " failed: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace kiln::cli
