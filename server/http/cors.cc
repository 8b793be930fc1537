#include "server/http/cors.h"

#include <algorithm>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace kiln::server {
namespace {

// What a preflight may ask for: the headers the door reads, and application headers (x-*),
// which travel on as metadata (the editor's X-Kiln-Session among them).
bool AllowedHeader(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(name));
  return lower == "authorization" || lower == "content-type" || lower == "last-event-id" ||
         absl::StartsWith(lower, "connect-") || absl::StartsWith(lower, "x-");
}

// The requested headers the door takes, or the door's own when a preflight names none.
std::string AllowedHeaders(const std::string& requested) {
  std::vector<std::string> allowed = {"Authorization", "Content-Type", "Connect-Protocol-Version",
                                      "Connect-Timeout-Ms", "Last-Event-ID"};
  for (absl::string_view name : absl::StrSplit(requested, ',', absl::SkipWhitespace())) {
    if (AllowedHeader(name)) allowed.emplace_back(absl::StripAsciiWhitespace(name));
  }
  return absl::StrJoin(allowed, ", ");
}
constexpr char kExposedHeaders[] = "Content-Type, Grpc-Status, Grpc-Message";

bool Allowed(const std::vector<std::string>& origins, const std::string& origin) {
  return !origin.empty() && std::any_of(origins.begin(), origins.end(), [&](const auto& allowed) {
    return allowed == "*" || allowed == origin;
  });
}

}  // namespace

void InstallCors(std::vector<std::string> allowed_origins, httplib::Server& server) {
  auto origins = std::make_shared<const std::vector<std::string>>(std::move(allowed_origins));
  server.Options(R"(.*)", [origins](const httplib::Request& request, httplib::Response& response) {
    const std::string origin = request.get_header_value("Origin");
    if (!Allowed(*origins, origin)) {
      response.status = 403;
      response.set_content("origin not allowed (--http_cors_origins)\n", "text/plain");
      return;
    }
    response.status = 204;
    response.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    response.set_header("Access-Control-Allow-Headers",
                        AllowedHeaders(request.get_header_value("Access-Control-Request-Headers")));
    response.set_header("Access-Control-Max-Age", "7200");
  });
  // Runs before each response is written, streams included.
  server.set_post_routing_handler(
      [origins](const httplib::Request& request, httplib::Response& response) {
        const std::string origin = request.get_header_value("Origin");
        response.set_header("Vary", "Origin");
        if (!Allowed(*origins, origin)) return;
        response.set_header("Access-Control-Allow-Origin", origin);
        response.set_header("Access-Control-Expose-Headers", kExposedHeaders);
      });
}

}  // namespace kiln::server
