#include "server/http/http_listener.h"

#include <httplib.h>
#include <sys/socket.h>

#include <chrono>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace kiln::server {
namespace {

// Enough for scrapes and probes; each connection holds one while it is open.
constexpr int kThreads = 2;

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

}  // namespace

absl::StatusOr<std::unique_ptr<HttpListener>> HttpListener::Start(const std::string& address,
                                                                  Handlers handlers) {
  absl::StatusOr<std::pair<std::string, int>> split = SplitAddress(address);
  if (!split.ok()) return split.status();
  const auto& [host, port] = *split;
  std::unique_ptr<HttpListener> listener(new HttpListener());
  listener->server_ = std::make_unique<httplib::Server>();
  httplib::Server& server = *listener->server_;
  server.new_task_queue = [] { return new httplib::ThreadPool(kThreads); };
  // cpp-httplib's default adds SO_REUSEPORT, with which a second server on the port would
  // silently take half its connections; a port in use must fail to bind instead.
  server.set_socket_options([](socket_t socket) {
    const int yes = 1;
    setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
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
  listener->port_ =
      port == 0 ? server.bind_to_any_port(host) : (server.bind_to_port(host, port) ? port : -1);
  if (listener->port_ <= 0) {
    return absl::UnavailableError(
        absl::StrCat("--http_listen: cannot listen on ", address,
                     ": the port is in use or the host is not an address of this machine"));
  }
  listener->thread_ = std::thread([&server] { server.listen_after_bind(); });
  // stop() ends only a server that runs: wait for it, so that a listener destroyed at once
  // still stops.
  for (int i = 0; i < 1000 && !server.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return listener;
}

HttpListener::~HttpListener() {
  if (server_ != nullptr) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace kiln::server
