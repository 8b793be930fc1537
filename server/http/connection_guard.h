// ConnectionGuard: the HTTP door's admission of connections, before cpp-httplib reads a byte of
// them. cpp-httplib gives each connection a thread that blocks reading it, and its read timeout
// restarts with every byte, so clients that trickle a header line every few seconds held every
// thread and stopped /healthz, /readyz, /metrics and the API for as long as they trickled. The
// guard promises:
//  - a request (headers and body) arrives whole within `read_timeout` of the moment its
//    connection began to wait for it, or the connection is shut down;
//  - a client address over `max_per_client` connections loses its oldest connections that are
//    still sending a request once they have had 100 ms to send it (a connection answering a
//    request or a stream is kept), so a probe from the same address is answered while that
//    client's slow connections go;
// and ElasticThreadPool (below) gives a connection a thread even while the usual ones are all
// held, up to a bound, so probes are answered while every worker is busy.
//
// Thread-safety: every method may be called from any thread.
#ifndef KILN_SERVER_HTTP_CONNECTION_GUARD_H_
#define KILN_SERVER_HTTP_CONNECTION_GUARD_H_

#include <httplib.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace kiln::server {

class ConnectionGuard {
 public:
  struct Options {
    int max_per_client = 8;
    absl::Duration read_timeout = absl::Seconds(30);
  };

  explicit ConnectionGuard(Options options);
  ~ConnectionGuard();
  ConnectionGuard(const ConnectionGuard&) = delete;
  ConnectionGuard& operator=(const ConnectionGuard&) = delete;

  // Runs `serve` for connection `socket` on the calling thread when the connection is admitted
  // (and closes the socket itself when it is not). While `serve` runs, RequestReceived and
  // ResponseSent on this thread say where the connection is.
  bool Serve(int socket, const std::function<bool()>& serve);

  // The calling thread's connection has received a request's headers, and its body is still
  // to come (the same deadline holds)...
  static void BodyFollows();
  // ...has received a whole request (its handler runs now, unbounded: streams)...
  static void RequestReceived();
  // ...or has answered one and waits for the next.
  static void ResponseSent();

  // Connections open now, and connections shut down by the guard so far.
  int open() const ABSL_LOCKS_EXCLUDED(mu_);
  int64_t shut() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Connection {
    int watch = -1;  // the guard's duplicate of the connection's socket
    std::string client;
    bool reading = true;     // waiting for (part of) a request
    absl::Time since;        // when it began to wait
    bool shut_down = false;  // shut by the guard; its thread ends soon
  };

  void ShutDown(Connection& connection) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Watch();
  static void Mark(bool reading);

  // The connection the calling thread serves, and its guard.
  static thread_local ConnectionGuard* current_guard_;
  static thread_local Connection* current_;

  const Options options_;
  mutable absl::Mutex mu_;
  std::vector<std::shared_ptr<Connection>> connections_ ABSL_GUARDED_BY(mu_);
  int64_t shut_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread watchdog_;
};

// cpp-httplib's TaskQueue that runs each connection at once: on one of `threads` kept
// threads, or when they are all busy on an extra thread (which ends when it has been idle a
// few seconds), up to `max_threads` in all; past that connections wait their turn.
class ElasticThreadPool : public httplib::TaskQueue {
 public:
  ElasticThreadPool(int threads, int max_threads);
  ~ElasticThreadPool() override;
  void enqueue(std::function<void()> fn) override;
  void shutdown() override;

 private:
  void Work(bool kept);
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return shutdown_ || !jobs_.empty(); }
  void ReapLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int max_threads_;
  absl::Mutex mu_;
  std::deque<std::function<void()>> jobs_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread::id> finished_ ABSL_GUARDED_BY(mu_);
  int running_ ABSL_GUARDED_BY(mu_) = 0;  // threads alive
  int idle_ ABSL_GUARDED_BY(mu_) = 0;     // threads waiting for a job
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
};

// The server that holds the routes (Base: httplib::Server or httplib::SSLServer) and serves
// the connections a guarded server admits. It listens on nothing itself, but cpp-httplib keeps
// a connection open only while the server believes its listener open: SetOpen says so.
class RouteServerControl {
 public:
  virtual ~RouteServerControl() = default;
  virtual void SetOpen(bool open) = 0;
};
template <class Base>
class RouteServer : public Base, public RouteServerControl {
 public:
  using Base::Base;
  // Only compared with INVALID_SOCKET by cpp-httplib: any other value reads as open.
  void SetOpen(bool open) override { this->svr_sock_ = open ? 0 : INVALID_SOCKET; }
};

// An httplib server whose connections pass a ConnectionGuard: it accepts them and hands each
// admitted one to `delegate` (a RouteServer, plain or TLS) on its thread.
std::unique_ptr<httplib::Server> NewGuardedServer(httplib::Server& delegate,
                                                  std::shared_ptr<ConnectionGuard> guard);

}  // namespace kiln::server

#endif  // KILN_SERVER_HTTP_CONNECTION_GUARD_H_
