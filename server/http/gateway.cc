#include "server/http/gateway.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "server/http/connect_protocol.h"

namespace kiln::server {
namespace {

bool ForwardedKey(absl::string_view key) {
  if (key == "authorization") return true;
  if (!absl::StartsWith(key, "x-") || absl::EndsWith(key, "-bin")) return false;
  for (char c : key) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-' || c == '_' || c == '.')) {
      return false;
    }
  }
  return true;
}

bool PrintableValue(absl::string_view value) {
  for (char c : value) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> ForwardedMetadata(
    const httplib::Request& request, std::optional<std::string> authorization) {
  std::vector<std::pair<std::string, std::string>> metadata;
  for (const auto& [name, value] : request.headers) {
    const std::string key = absl::AsciiStrToLower(name);
    if (key == "authorization" && authorization.has_value()) continue;
    if (ForwardedKey(key) && PrintableValue(value)) metadata.emplace_back(key, value);
  }
  if (authorization.has_value() && PrintableValue(*authorization)) {
    metadata.emplace_back("authorization", *authorization);
  }
  return metadata;
}

std::optional<absl::string_view> Authorization(const httplib::Request& request) {
  if (!request.has_header("Authorization")) return std::nullopt;
  // httplib keeps headers for the request's life.
  const auto found = request.headers.find("Authorization");
  return absl::string_view(found->second);
}

BridgeResult ResultOf(const absl::Status& status) {
  return BridgeResult{static_cast<int>(status.code()), std::string(status.message()), ""};
}

void SendError(const BridgeResult& result, httplib::Response& response) {
  response.status = connect::HttpStatus(result.code);
  response.set_content(connect::ErrorJson(result), "application/json");
}

void SendError(const absl::Status& status, httplib::Response& response) {
  SendError(ResultOf(status), response);
}

}  // namespace kiln::server
