#include "server/http/gateway.h"

#include <arpa/inet.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/base/status.h"
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

std::optional<std::string> Authorization(const httplib::Request& request) {
  if (request.has_header("Authorization")) return request.get_header_value("Authorization");
  if (request.has_param("access_token") && absl::StartsWith(request.path, "/v1/jobs/")) {
    return absl::StrCat("Bearer ", request.get_param_value("access_token"));
  }
  return std::nullopt;
}

std::string StreamOwner(const Gateway& gateway, const httplib::Request& request) {
  const std::optional<std::string> authorization = Authorization(request);
  return gateway.tenant_of(authorization, request.remote_addr).value_or("");
}

namespace {

// API requests: Connect calls and job event streams (not probes, metrics or files).
bool IsApiRequest(const httplib::Request& request) {
  return (request.method == "POST" && absl::StartsWith(request.path, "/kiln.")) ||
         (request.method == "GET" && absl::StartsWith(request.path, "/v1/"));
}

// Literal loopback addresses (127.0.0.0/8 as a dotted quad, ::1) and "localhost": a name a
// DNS-rebinding page could own ("127.attacker.example") is not one.
bool IsLoopbackHost(absl::string_view host) {
  // Host is name[:port] or [v6]:port.
  if (absl::ConsumePrefix(&host, "[")) {
    const size_t close = host.find(']');
    if (close == absl::string_view::npos) return false;
    in6_addr v6;
    return inet_pton(AF_INET6, std::string(host.substr(0, close)).c_str(), &v6) == 1 &&
           IN6_IS_ADDR_LOOPBACK(&v6);
  }
  host = host.substr(0, host.find(':'));
  if (absl::EqualsIgnoreCase(host, "localhost")) return true;
  in_addr v4;  // inet_pton takes only the four-part dotted quad
  return inet_pton(AF_INET, std::string(host).c_str(), &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127;
}

}  // namespace

httplib::Server::HandlerWithResponse GatewayGuard(std::shared_ptr<const Gateway> gateway) {
  return [gateway](const httplib::Request& request, httplib::Response& response) {
    using Handled = httplib::Server::HandlerResponse;
    if (!IsApiRequest(request)) return Handled::Unhandled;
    if (gateway->loopback_hosts_only && !IsLoopbackHost(request.get_header_value("Host"))) {
      SendError(absl::PermissionDeniedError(absl::StrCat(
                    "Host ", Quoted(request.get_header_value("Host")),
                    " is not a loopback name: a door on loopback without authentication answers "
                    "only localhost, 127.0.0.1 and [::1]")),
                response);
      return Handled::Handled;
    }
    if (gateway->authentication_required) {
      const std::optional<std::string> authorization = Authorization(request);
      absl::StatusOr<std::string> tenant = gateway->tenant_of(authorization, request.remote_addr);
      if (!tenant.ok()) {
        SendError(tenant.status(), response);
        return Handled::Handled;
      }
    }
    return Handled::Unhandled;
  };
}

BridgeResult ResultOf(const absl::Status& status) {
  return BridgeResult{static_cast<int>(status.code()), std::string(status.message()), ""};
}

absl::Status NotServingYet() {
  return absl::UnavailableError("kiln-server is starting; retry shortly");
}

void SendError(const BridgeResult& result, httplib::Response& response) {
  response.status = connect::HttpStatus(result.code);
  response.set_content(connect::ErrorJson(result), "application/json");
}

void SendError(const absl::Status& status, httplib::Response& response) {
  SendError(ResultOf(status), response);
}

}  // namespace kiln::server
