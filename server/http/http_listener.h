// HttpListener: kiln-server's HTTP door (--http_listen), for what operators and their tools
// ask over HTTP: GET /metrics (Prometheus's text format), /healthz (200 while the process
// serves) and /readyz (200 only while the server takes calls: 503 while it loads its state and
// once it drains). It answers on its own few threads, never gRPC's or the compute threads.
// Plain HTTP: it serves no session data, and the web door will extend it.
#ifndef KILN_SERVER_HTTP_HTTP_LISTENER_H_
#define KILN_SERVER_HTTP_HTTP_LISTENER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace kiln::server {

class HttpListener {
 public:
  struct Handlers {
    std::function<std::string()> metrics;  // the /metrics body
    std::function<bool()> ready;           // /readyz
  };

  // Binds `address` (host:port; port 0 picks a free one) and serves until destroyed.
  // UNAVAILABLE naming --http_listen when it cannot bind; INVALID_ARGUMENT when `address` is
  // not host:port.
  static absl::StatusOr<std::unique_ptr<HttpListener>> Start(const std::string& address,
                                                             Handlers handlers);
  ~HttpListener();

  int port() const { return port_; }

 private:
  HttpListener() = default;

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace kiln::server

#endif  // KILN_SERVER_HTTP_HTTP_LISTENER_H_
