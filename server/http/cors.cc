#include "server/http/cors.h"

#include <algorithm>
#include <memory>

namespace kiln::server {
namespace {

constexpr char kAllowedHeaders[] =
    "Authorization, Content-Type, Connect-Protocol-Version, Connect-Timeout-Ms, Last-Event-ID, "
    "X-User-Agent";
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
    response.set_header("Access-Control-Allow-Headers", kAllowedHeaders);
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
