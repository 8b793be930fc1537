#include "client/cli/common.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/flags/flag.h"
#include "absl/strings/str_join.h"
#include "client/cli/flags.h"

namespace kiln::cli {
namespace {

std::string Env(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

}  // namespace

absl::Status UsageError(absl::string_view message) {
  absl::Status status = absl::InvalidArgumentError(message);
  status.SetPayload(kUsagePayload, absl::Cord("usage"));
  return status;
}

std::string Server() {
  const std::string flag = absl::GetFlag(FLAGS_server);
  return flag.empty() ? Env("KILN_SERVER", "localhost:50051") : flag;
}

absl::StatusOr<std::string> RequireSession() {
  const std::string flag = absl::GetFlag(FLAGS_session);
  const std::string s = flag.empty() ? Env("KILN_SESSION", "") : flag;
  if (s.empty()) return UsageError("this command needs --session (or $KILN_SESSION)");
  return s;
}

absl::StatusOr<std::string> Require(const std::string& value, absl::string_view flag) {
  if (value.empty()) return UsageError(absl::StrCat("this command needs --", flag));
  return value;
}

absl::StatusOr<std::string> ResolveModel(client::Client& c, const std::string& session) {
  if (!absl::GetFlag(FLAGS_model).empty()) return absl::GetFlag(FLAGS_model);
  v1::ListModelsRequest request;
  request.set_session_id(session);
  KILN_ASSIGN_OR_RETURN(v1::ListModelsResponse r,
                        c.Call(&v1::ModelService::Stub::ListModels, c.models(), request));
  if (r.models_size() == 1) return r.models(0).name();
  if (r.models_size() == 0) {
    return UsageError("the session has no model yet; define one first (kiln model define FILE)");
  }
  std::vector<std::string> names;
  for (const v1::ModelInfo& m : r.models()) names.push_back(m.name());
  return UsageError(absl::StrCat("the session has ", names.size(), " models (",
                                 absl::StrJoin(names, ", "), "); choose one with --model"));
}

absl::Status PrintJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  const auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) return absl::InternalError(status.ToString());
  std::printf("%s", json.c_str());
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return UsageError(absl::StrCat("cannot read ", path));
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

}  // namespace kiln::cli
