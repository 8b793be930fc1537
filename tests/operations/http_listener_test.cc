// HttpListener: the three paths, readiness as its handler says, the errors of --http_listen,
// and its connections' guard against slow and many clients.
#include "server/http/http_listener.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "absl/time/clock.h"

namespace kiln::server {
namespace {

using ::testing::HasSubstr;

HttpListener::Options At(std::string address) {
  HttpListener::Options options;
  options.address = std::move(address);
  return options;
}

TEST(HttpListenerTest, ServesMetricsHealthAndReadiness) {
  std::atomic<bool> ready{false};
  absl::StatusOr<std::unique_ptr<HttpListener>> listener = HttpListener::Start(
      At("127.0.0.1:0"),
      {[] { return std::string("kiln_sessions 2\n"); }, [&] { return ready.load(); }});
  ASSERT_TRUE(listener.ok()) << listener.status();
  httplib::Client client("127.0.0.1", (*listener)->port());

  httplib::Result metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_EQ(metrics->body, "kiln_sessions 2\n");
  EXPECT_THAT(metrics->get_header_value("Content-Type"), HasSubstr("text/plain; version=0.0.4"));

  EXPECT_EQ(client.Get("/healthz")->status, 200);
  EXPECT_EQ(client.Get("/readyz")->status, 503);
  ready = true;
  EXPECT_EQ(client.Get("/readyz")->status, 200);
  EXPECT_EQ(client.Get("/elsewhere")->status, 404);
}

TEST(HttpListenerTest, AddressErrorsNameTheFlag) {
  absl::StatusOr<std::unique_ptr<HttpListener>> bad = HttpListener::Start(At("8080"), {});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("--http_listen: expected host:port"));

  absl::StatusOr<std::unique_ptr<HttpListener>> first =
      HttpListener::Start(At("127.0.0.1:0"), {[] { return std::string(); }, [] { return true; }});
  ASSERT_TRUE(first.ok());
  absl::StatusOr<std::unique_ptr<HttpListener>> second =
      HttpListener::Start(At("127.0.0.1:" + std::to_string((*first)->port())),
                          {[] { return std::string(); }, [] { return true; }});
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(), HasSubstr("--http_listen: cannot listen on"));
}

TEST(HttpListenerTest, StopsWhenDestroyedAtOnce) {
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<std::unique_ptr<HttpListener>> listener =
        HttpListener::Start(At("127.0.0.1:0"), {[] { return std::string(); }, [] { return true; }});
    ASSERT_TRUE(listener.ok());
  }
}

// A raw connection to the listener, for clients that misbehave.
class RawConnection {
 public:
  explicit RawConnection(int port) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(uint16_t(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  }
  ~RawConnection() { close(fd_); }
  bool connected() const { return connected_; }
  // Sends `text`; false once the server has closed the connection.
  bool Send(const std::string& text) {
    return send(fd_, text.data(), text.size(), MSG_NOSIGNAL) == ssize_t(text.size());
  }
  // Whether the server closed the connection, waiting up to `wait`.
  bool ClosedWithin(absl::Duration wait) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, int(absl::ToInt64Milliseconds(wait))) <= 0) return false;
    char byte;
    return recv(fd_, &byte, 1, MSG_DONTWAIT) <= 0;
  }

 private:
  int fd_;
  bool connected_ = false;
};

HttpListener::Handlers Probes() {
  return {[] { return std::string("kiln_sessions 0\n"); }, [] { return true; }};
}

// 64 clients trickling a header line at a time held every one of the 16 threads, and /healthz
// (and everything else) went unanswered for as long as they trickled. Now a client address
// holds at most --http_max_connections_per_client of them, and probes find a thread.
TEST(HttpListenerTest, SixtyFourTricklingClientsLeaveTheProbesAnswered) {
  HttpListener::Options options = At("127.0.0.1:0");
  options.read_timeout = absl::Minutes(5);  // the tricklers outlive the test
  absl::StatusOr<std::unique_ptr<HttpListener>> listener = HttpListener::Start(options, Probes());
  ASSERT_TRUE(listener.ok()) << listener.status();
  const int port = (*listener)->port();
  std::vector<std::unique_ptr<RawConnection>> slow;
  for (int i = 0; i < 64; ++i) {
    slow.push_back(std::make_unique<RawConnection>(port));
    ASSERT_TRUE(slow.back()->connected());
    slow.back()->Send("GET /metrics HTTP/1.1\r\nHost: localhost\r\n");
  }
  std::atomic<bool> stop{false};
  std::thread trickle([&] {
    while (!stop.load()) {
      for (auto& connection : slow) connection->Send("X-Slow: 1\r\n");
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  });
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(1);
  client.set_read_timeout(1);
  for (int i = 0; i < 5; ++i) {
    httplib::Result health = client.Get("/healthz");
    ASSERT_TRUE(health) << "no answer within 1 s, try " << i;
    EXPECT_EQ(health->status, 200);
    EXPECT_EQ(client.Get("/readyz")->status, 200);
    EXPECT_EQ(client.Get("/metrics")->status, 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  stop.store(true);
  trickle.join();
  EXPECT_LE((*listener)->open_connections(), options.max_connections_per_client + 1);
  EXPECT_GE((*listener)->shut_connections(), 64 - options.max_connections_per_client);
}

// cpp-httplib's read timeout restarts with every byte: a request trickled a line at a time
// never ended. Now the whole request must arrive within --http_read_timeout.
TEST(HttpListenerTest, ARequestTrickledPastItsReadTimeoutLosesItsConnection) {
  HttpListener::Options options = At("127.0.0.1:0");
  options.read_timeout = absl::Milliseconds(500);
  absl::StatusOr<std::unique_ptr<HttpListener>> listener = HttpListener::Start(options, Probes());
  ASSERT_TRUE(listener.ok()) << listener.status();
  RawConnection slow((*listener)->port());
  ASSERT_TRUE(slow.Send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n"));
  // One header line every 100 ms: each is within httplib's own 5 s read timeout.
  bool closed = false;
  for (int i = 0; i < 600 && !closed; ++i) {
    closed = !slow.Send("X-Slow: 1\r\n") || slow.ClosedWithin(absl::Milliseconds(100));
  }
  EXPECT_TRUE(closed) << "still open after a minute of trickling";
  EXPECT_EQ((*listener)->shut_connections(), 1);
  // A request that arrives whole is answered as ever.
  httplib::Client client("127.0.0.1", (*listener)->port());
  EXPECT_EQ(client.Get("/healthz")->status, 200);
}

TEST(HttpListenerTest, AClientOverItsLimitLosesItsOldestUnfinishedRequests) {
  HttpListener::Options options = At("127.0.0.1:0");
  options.max_connections_per_client = 2;
  absl::StatusOr<std::unique_ptr<HttpListener>> listener = HttpListener::Start(options, Probes());
  ASSERT_TRUE(listener.ok()) << listener.status();
  const int port = (*listener)->port();
  // One after the other: the first is the oldest.
  std::vector<std::unique_ptr<RawConnection>> slow;
  for (int i = 0; i < 3; ++i) {
    slow.push_back(std::make_unique<RawConnection>(port));
    ASSERT_TRUE(slow.back()->Send("GET /healthz HTTP/1.1\r\n"));
    while ((*listener)->open_connections() < i + 1) absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_TRUE(slow[0]->ClosedWithin(absl::Seconds(30)));
  EXPECT_EQ((*listener)->shut_connections(), 1);
  // The two others, and a quick request beside them, are served.
  EXPECT_TRUE(slow[1]->Send("\r\n"));
  EXPECT_TRUE(slow[2]->Send("\r\n"));
  httplib::Client client("127.0.0.1", port);
  EXPECT_EQ(client.Get("/healthz")->status, 200);
}

}  // namespace
}  // namespace kiln::server
