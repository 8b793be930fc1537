// HttpListener: the three paths, readiness as its handler says, and the errors of --http_listen.
#include "server/http/http_listener.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>

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

}  // namespace
}  // namespace kiln::server
