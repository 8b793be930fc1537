// HttpListener: kiln-server's HTTP door (--http_listen). It answers what operators and their
// tools ask over HTTP: GET /metrics (Prometheus's text format), /healthz (200 while the
// process serves) and /readyz (200 only while the server takes calls: 503 while it loads its
// state and once it drains). With a gateway it is also the door for browsers: every RPC by the
// Connect protocol (connect_routes.h), job events as Server-Sent Events (job_events.h), CORS
// (cors.h) and, with a web root, the card editor's files at /. It answers on its own threads,
// never gRPC's or the compute threads; with a certificate it speaks HTTPS. Connections pass a
// ConnectionGuard (read deadlines, a per-client bound) before a thread reads them.
#ifndef KILN_SERVER_HTTP_HTTP_LISTENER_H_
#define KILN_SERVER_HTTP_HTTP_LISTENER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/http/connection_guard.h"
#include "server/http/gateway.h"

namespace google::protobuf {
class ServiceDescriptor;
}

namespace kiln::server {

class HttpListener {
 public:
  struct Handlers {
    std::function<std::string()> metrics;  // the /metrics body
    std::function<bool()> ready;           // /readyz
  };

  struct Options {
    std::string address;    // host:port; port 0 picks a free one
    int threads = 16;       // kept; each open stream holds one; a few stay for other calls
    int max_threads = 256;  // with extra threads while the kept ones are busy (connections)
    int max_connections_per_client = 8;
    absl::Duration read_timeout = absl::Seconds(30);  // a whole request, headers and body
    std::string tls_cert, tls_key, tls_client_ca;     // PEM files; no cert: plain HTTP
    int64_t max_body_bytes = int64_t{64} << 20;
    // The API: the services served by Connect, and how (no gateway bridge: no API).
    std::vector<const google::protobuf::ServiceDescriptor*> services;
    Gateway gateway;
    int max_streams_per_tenant = 4;
    std::vector<std::string> cors_origins;  // "*": any
    std::string web_root;                   // files served at /; "": none
  };

  // Binds and serves until destroyed. UNAVAILABLE naming --http_listen when it cannot bind;
  // INVALID_ARGUMENT when the address is not host:port, the web root not a directory, or the
  // certificate unusable.
  static absl::StatusOr<std::unique_ptr<HttpListener>> Start(Options options, Handlers handlers);
  ~HttpListener();

  int port() const { return port_; }
  // Connections open now, and those the guard shut down (slow, or over a client's limit).
  int open_connections() const { return guard_->open(); }
  int64_t shut_connections() const { return guard_->shut(); }
  // Streams open now.
  int open_streams() const { return streams_ == nullptr ? 0 : streams_->open(); }

 private:
  HttpListener() = default;
  absl::Status Install(const Options& options, Handlers handlers);

  std::unique_ptr<StreamLimits> streams_;
  std::shared_ptr<ConnectionGuard> guard_;
  std::unique_ptr<httplib::Server> routes_;  // serves the admitted connections
  std::unique_ptr<httplib::Server> server_;  // accepts them
  std::thread thread_;
  int port_ = 0;
};

}  // namespace kiln::server

#endif  // KILN_SERVER_HTTP_HTTP_LISTENER_H_
