#include "server/http/connection_guard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

namespace kiln::server {
namespace {

// cpp-httplib serves a connection only from its own accept loop, through its private virtual
// Server::process_and_close_socket, and gives no other way to serve a socket. An explicit
// instantiation may name a private member (C++20 [temp.spec.general]/6): this names it once,
// so that the guarded server can hand an admitted connection to the server that holds the
// routes, whose own (plain or TLS) implementation then serves it.
using ProcessAndCloseSocket = bool (httplib::Server::*)(socket_t);
ProcessAndCloseSocket DelegateProcessAndClose();
template <ProcessAndCloseSocket member>
struct ExposeProcessAndClose {
  friend ProcessAndCloseSocket DelegateProcessAndClose() { return member; }
};
template struct ExposeProcessAndClose<&httplib::Server::process_and_close_socket>;

class GuardedServer : public httplib::Server {
 public:
  GuardedServer(httplib::Server& delegate, std::shared_ptr<ConnectionGuard> guard)
      : delegate_(delegate), guard_(std::move(guard)) {}

 private:
  bool process_and_close_socket(socket_t socket) override {
    return guard_->Serve(socket, [&] { return (delegate_.*DelegateProcessAndClose())(socket); });
  }

  httplib::Server& delegate_;
  const std::shared_ptr<ConnectionGuard> guard_;
};

// The client's address, without the port ("" when the socket has none).
std::string PeerOf(int socket) {
  sockaddr_storage address{};
  socklen_t size = sizeof(address);
  if (getpeername(socket, reinterpret_cast<sockaddr*>(&address), &size) != 0) return "";
  char text[INET6_ADDRSTRLEN] = {};
  if (address.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&address)->sin_addr, text, sizeof(text));
  } else if (address.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&address)->sin6_addr, text, sizeof(text));
  }
  return text;
}

constexpr absl::Duration kWatchInterval = absl::Milliseconds(50);
constexpr absl::Duration kGrace = absl::Milliseconds(100);

}  // namespace

thread_local ConnectionGuard* ConnectionGuard::current_guard_ = nullptr;
thread_local ConnectionGuard::Connection* ConnectionGuard::current_ = nullptr;

ConnectionGuard::ConnectionGuard(Options options)
    : options_(options), watchdog_([this] { Watch(); }) {}

ConnectionGuard::~ConnectionGuard() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  watchdog_.join();
}

void ConnectionGuard::ShutDown(Connection& connection) {
  // The guard's own duplicate of the socket: the serving thread may have closed its
  // descriptor already, and the number may belong to another connection by now.
  shutdown(connection.watch, SHUT_RDWR);
  connection.shut_down = true;
  ++shut_;
}

bool ConnectionGuard::Serve(int socket, const std::function<bool()>& serve) {
  auto connection = std::make_shared<Connection>();
  connection->watch = dup(socket);
  connection->client = PeerOf(socket);
  connection->since = absl::Now();
  if (connection->watch < 0) {
    shutdown(socket, SHUT_RDWR);
    close(socket);
    return false;
  }
  {
    absl::MutexLock lock(&mu_);
    connections_.push_back(connection);
  }
  current_guard_ = this;
  current_ = connection.get();
  const bool served = serve();
  current_ = nullptr;
  current_guard_ = nullptr;
  absl::MutexLock lock(&mu_);
  connections_.erase(std::find(connections_.begin(), connections_.end(), connection));
  close(connection->watch);
  return served;
}

void ConnectionGuard::Mark(bool reading) {
  ConnectionGuard* guard = current_guard_;
  if (guard == nullptr || current_ == nullptr) return;
  absl::MutexLock lock(&guard->mu_);
  current_->reading = reading;
  current_->since = absl::Now();
}

void ConnectionGuard::RequestReceived() { Mark(false); }
void ConnectionGuard::ResponseSent() { Mark(true); }

void ConnectionGuard::BodyFollows() {
  // Still reading, against the same deadline: the body counts with the headers.
  ConnectionGuard* guard = current_guard_;
  if (guard == nullptr || current_ == nullptr) return;
  absl::MutexLock lock(&guard->mu_);
  current_->reading = true;
}

int ConnectionGuard::open() const {
  absl::MutexLock lock(&mu_);
  return int(connections_.size());
}

int64_t ConnectionGuard::shut() const {
  absl::MutexLock lock(&mu_);
  return shut_;
}

void ConnectionGuard::Watch() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), kWatchInterval);
    const absl::Time now = absl::Now();
    absl::flat_hash_map<absl::string_view, std::vector<Connection*>> by_client;
    for (const auto& connection : connections_) {
      if (connection->shut_down) continue;
      if (connection->reading && now - connection->since > options_.read_timeout) {
        ShutDown(*connection);
        continue;
      }
      by_client[connection->client].push_back(connection.get());
    }
    // A client over its limit loses its oldest connections still sending a request, once
    // they have had kGrace to send it: a quick request (a probe) is answered by then.
    for (auto& [client, mine] : by_client) {
      int over = int(mine.size()) - options_.max_per_client;
      if (over <= 0) continue;
      std::sort(mine.begin(), mine.end(),
                [](const Connection* a, const Connection* b) { return a->since < b->since; });
      for (Connection* connection : mine) {
        if (over == 0) break;
        if (connection->reading && now - connection->since > kGrace) {
          ShutDown(*connection);
          --over;
        }
      }
    }
  }
}

ElasticThreadPool::ElasticThreadPool(int threads, int max_threads)
    : max_threads_(std::max(threads, max_threads)) {
  absl::MutexLock lock(&mu_);
  for (int i = 0; i < threads; ++i) {
    ++running_;
    threads_.emplace_back([this] { Work(/*kept=*/true); });
  }
}

ElasticThreadPool::~ElasticThreadPool() { shutdown(); }

void ElasticThreadPool::enqueue(std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  ReapLocked();
  jobs_.push_back(std::move(fn));
  if (idle_ < int(jobs_.size()) && running_ < max_threads_) {
    ++running_;
    threads_.emplace_back([this] { Work(/*kept=*/false); });
  }
}

void ElasticThreadPool::ReapLocked() {
  for (std::thread::id id : finished_) {
    auto it = std::find_if(threads_.begin(), threads_.end(),
                           [id](const std::thread& t) { return t.get_id() == id; });
    if (it != threads_.end()) {
      it->join();  // it has returned from Work, or is about to
      threads_.erase(it);
    }
  }
  finished_.clear();
}

void ElasticThreadPool::shutdown() {
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    shutdown_ = true;
    threads.swap(threads_);
    finished_.clear();
  }
  for (std::thread& t : threads) t.join();
}

void ElasticThreadPool::Work(bool kept) {
  absl::MutexLock lock(&mu_);
  for (;;) {
    ++idle_;
    const absl::Condition has_work(this, &ElasticThreadPool::HasWork);
    if (kept) {
      mu_.Await(has_work);
    } else {
      mu_.AwaitWithTimeout(has_work, absl::Seconds(5));
    }
    --idle_;
    if (shutdown_ || (jobs_.empty() && !kept)) break;
    if (jobs_.empty()) continue;
    std::function<void()> job = std::move(jobs_.front());
    jobs_.pop_front();
    mu_.Unlock();
    job();
    mu_.Lock();
  }
  --running_;
  if (!shutdown_) finished_.push_back(std::this_thread::get_id());
}

std::unique_ptr<httplib::Server> NewGuardedServer(httplib::Server& delegate,
                                                  std::shared_ptr<ConnectionGuard> guard) {
  return std::make_unique<GuardedServer>(delegate, std::move(guard));
}

}  // namespace kiln::server
