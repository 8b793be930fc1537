#include "server/http/http_listener.h"

#include <httplib.h>
#include <sys/socket.h>

#include <chrono>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "server/http/connect_routes.h"
#include "server/http/cors.h"
#include "server/http/job_events.h"

namespace kiln::server {
namespace {

// Threads kept from streams, for probes, scrapes and unary calls.
constexpr int kThreadsNotForStreams = 4;

// The card editor is a single-page app from this origin: scripts and data from itself only.
constexpr char kContentSecurityPolicy[] =
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

absl::StatusOr<std::pair<std::string, int>> SplitAddress(const std::string& address) {
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--http_listen: expected host:port (0.0.0.0:8080; port 0 picks a free one), got '", address,
        "'"));
  }
  // [::1]:8080 names an IPv6 host.
  std::string host = address.substr(0, colon);
  host = std::string(absl::StripSuffix(absl::StripPrefix(host, "["), "]"));
  return std::make_pair(host.empty() ? std::string("0.0.0.0") : host, port);
}

absl::StatusOr<std::unique_ptr<httplib::Server>> NewServer(const HttpListener::Options& options) {
  if (options.tls_cert.empty()) return std::make_unique<RouteServer<httplib::Server>>();
  auto server = std::make_unique<RouteServer<httplib::SSLServer>>(
      options.tls_cert.c_str(), options.tls_key.c_str(),
      options.tls_client_ca.empty() ? nullptr : options.tls_client_ca.c_str());
  if (!server->is_valid()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http_listen: cannot serve HTTPS with --tls_cert=", options.tls_cert,
                     " and --tls_key=", options.tls_key));
  }
  return server;
}

}  // namespace

absl::Status HttpListener::Install(const Options& options, Handlers handlers) {
  guard_ = std::make_shared<ConnectionGuard>(ConnectionGuard::Options{
      .max_per_client = options.max_connections_per_client, .read_timeout = options.read_timeout});
  server_ = NewGuardedServer(*routes_, guard_);
  server_->new_task_queue = [threads = options.threads, max = options.max_threads] {
    return new ElasticThreadPool(threads, max);
  };
  // cpp-httplib's default adds SO_REUSEPORT, with which a second server on the port would
  // silently take half its connections; a port in use must fail to bind instead.
  server_->set_socket_options([](socket_t socket) {
    const int yes = 1;
    setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  httplib::Server& server = *routes_;
  server.set_payload_max_length(options.max_body_bytes);
  // A connection holds a thread while it is open: idle and slow ones give theirs back soon.
  server.set_keep_alive_timeout(2);
  server.set_read_timeout(5);
  // Where each connection is, for its guard: a request without a body has arrived when its
  // headers have (a request with one, when its handler starts), and one answered leaves the
  // connection waiting for the next.
  httplib::Server::HandlerWithResponse api_guard;
  server.set_logger(
      [](const httplib::Request&, const httplib::Response&) { ConnectionGuard::ResponseSent(); });
  server.Get("/metrics",
             [metrics = handlers.metrics](const httplib::Request&, httplib::Response& response) {
               response.set_content(metrics(), "text/plain; version=0.0.4; charset=utf-8");
             });
  server.Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("ok\n", "text/plain");
  });
  server.Get("/readyz",
             [ready = handlers.ready](const httplib::Request&, httplib::Response& response) {
               const bool is_ready = ready();
               response.status = is_ready ? 200 : 503;
               response.set_content(is_ready ? "ready\n" : "not ready\n", "text/plain");
             });
  if (options.gateway.bridge != nullptr) {
    streams_ = std::make_unique<StreamLimits>(options.max_streams_per_tenant,
                                              std::max(1, options.threads - kThreadsNotForStreams));
    auto gateway = std::make_shared<Gateway>(options.gateway);
    gateway->streams = streams_.get();
    api_guard = GatewayGuard(gateway);
    InstallConnectRoutes(options.services, gateway, server);
    InstallJobEventRoutes(gateway, server);
    InstallCors(options.cors_origins, server);
  }
  server.set_pre_routing_handler([api_guard](const httplib::Request& request,
                                             httplib::Response& response) {
    const std::string length = request.get_header_value("Content-Length");
    const bool body = (!length.empty() && length != "0") || request.has_header("Transfer-Encoding");
    if (body) {
      ConnectionGuard::BodyFollows();
    } else {
      ConnectionGuard::RequestReceived();
    }
    return api_guard ? api_guard(request, response) : httplib::Server::HandlerResponse::Unhandled;
  });
  if (!options.web_root.empty()) {
    if (!std::filesystem::is_directory(options.web_root) ||
        !server.set_mount_point("/", options.web_root)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--web_root: ", options.web_root, " is not a directory"));
    }
    server.set_file_request_handler([](const httplib::Request&, httplib::Response& response) {
      response.set_header("Content-Security-Policy", kContentSecurityPolicy);
      response.set_header("X-Content-Type-Options", "nosniff");
      response.set_header("Cache-Control", "no-cache");
    });
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<HttpListener>> HttpListener::Start(Options options,
                                                                  Handlers handlers) {
  absl::StatusOr<std::pair<std::string, int>> split = SplitAddress(options.address);
  if (!split.ok()) return split.status();
  const auto& [host, port] = *split;
  std::unique_ptr<HttpListener> listener(new HttpListener());
  absl::StatusOr<std::unique_ptr<httplib::Server>> server = NewServer(options);
  if (!server.ok()) return server.status();
  listener->routes_ = *std::move(server);
  if (absl::Status installed = listener->Install(options, std::move(handlers)); !installed.ok()) {
    return installed;
  }
  httplib::Server& bound = *listener->server_;
  listener->port_ =
      port == 0 ? bound.bind_to_any_port(host) : (bound.bind_to_port(host, port) ? port : -1);
  if (listener->port_ <= 0) {
    return absl::UnavailableError(
        absl::StrCat("--http_listen: cannot listen on ", options.address,
                     ": the port is in use or the host is not an address of this machine"));
  }
  dynamic_cast<RouteServerControl&>(*listener->routes_).SetOpen(true);
  listener->thread_ = std::thread([&bound] { bound.listen_after_bind(); });
  // stop() ends only a server that runs: wait for it, so that a listener destroyed at once
  // still stops.
  for (int i = 0; i < 1000 && !bound.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return listener;
}

HttpListener::~HttpListener() {
  // Connections kept alive end after their current request.
  if (routes_ != nullptr) dynamic_cast<RouteServerControl&>(*routes_).SetOpen(false);
  if (server_ != nullptr) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace kiln::server
