// The HTTP door's API routes against a stand-in RpcBridge: Connect's unary and streaming
// forms for every method the descriptors declare, its error JSON and HTTP statuses, the
// metadata that travels on, job events as Server-Sent Events (resumed after Last-Event-ID,
// kept alive, bounded per tenant), CORS and the editor's files. The real bridge to a real
// server is tested end to end (tests/e2e/http_gateway_test.py).
#include <gmock/gmock.h>
#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "kiln/v1/jobs.pb.h"
#include "kiln/v1/service.pb.h"
#include "server/http/connect_protocol.h"
#include "server/http/http_listener.h"

namespace kiln::server {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;

// Answers each call with `answer`, after noting it.
class StandInBridge : public RpcBridge {
 public:
  using Answer =
      std::function<BridgeResult(const BridgeCall&, const MessageSink&, const IdleCheck&)>;

  BridgeResult Invoke(const BridgeCall& call, const MessageSink& on_message,
                      const IdleCheck& on_idle, absl::Duration) override {
    {
      absl::MutexLock lock(&mu_);
      calls_.push_back(call);
    }
    return answer(call, on_message, on_idle);
  }
  std::vector<BridgeCall> calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }

  Answer answer = [](const BridgeCall&, const MessageSink& sink, const IdleCheck&) {
    sink("");
    return BridgeResult{};
  };

 private:
  absl::Mutex mu_;
  std::vector<BridgeCall> calls_;
};

std::vector<const google::protobuf::ServiceDescriptor*> Services() {
  std::vector<const google::protobuf::ServiceDescriptor*> services;
  const google::protobuf::FileDescriptor* api = v1::Session::descriptor()->file();
  for (int i = 0; i < api->service_count(); ++i) services.push_back(api->service(i));
  return services;
}

class GatewayTest : public ::testing::Test {
 protected:
  static HttpListener::Options Defaults() {
    HttpListener::Options options;
    options.gateway.keepalive = absl::Seconds(15);  // the stand-in reports quiet intervals itself
    options.gateway.max_stream_time = absl::Minutes(5);
    return options;
  }
  void Start(HttpListener::Options options = Defaults()) {
    options.address = "127.0.0.1:0";
    options.services = Services();
    options.gateway.bridge = &slot_;
    // The token is the tenant; "Bearer bad" is no token of the server's.
    options.gateway.tenant_of = [](std::optional<absl::string_view> authorization,
                                   absl::string_view) -> absl::StatusOr<std::string> {
      if (authorization == "Bearer bad")
        return absl::UnauthenticatedError("the token is not valid");
      return std::string(authorization.value_or(""));
    };
    slot_.Set(bridge_);
    absl::StatusOr<std::unique_ptr<HttpListener>> listener = HttpListener::Start(
        std::move(options), {[] { return std::string(); }, [] { return true; }});
    ASSERT_TRUE(listener.ok()) << listener.status();
    listener_ = *std::move(listener);
  }
  httplib::Client Client() { return httplib::Client("127.0.0.1", listener_->port()); }

  httplib::Result PostJson(const std::string& path, const std::string& body,
                           httplib::Headers headers = {}) {
    return Client().Post(path, headers, body, "application/json");
  }

  std::shared_ptr<StandInBridge> bridge_ = std::make_shared<StandInBridge>();
  BridgeSlot slot_;
  std::unique_ptr<HttpListener> listener_;
};

TEST_F(GatewayTest, UnaryJsonCallsTheMethodWithTheRequestAndItsMetadata) {
  bridge_->answer = [](const BridgeCall& call, const RpcBridge::MessageSink& sink,
                       const RpcBridge::IdleCheck&) {
    v1::CreateSessionRequest request;
    EXPECT_TRUE(request.ParseFromString(call.requests.at(0)));
    EXPECT_EQ(request.name(), "cards");
    EXPECT_EQ(request.ttl_seconds(), 60);
    v1::Session session;
    session.set_id("s-1");
    session.set_name(request.name());
    sink(session.SerializeAsString());
    return BridgeResult{};
  };
  Start();
  httplib::Result reply =
      PostJson("/kiln.v1.SessionService/CreateSession", R"({"name": "cards", "ttlSeconds": 60})",
               {{"Authorization", "Bearer t0k"},
                {"X-Kiln-Session", "s-0"},
                {"Cookie", "c=1"},
                {"Connect-Timeout-Ms", "2500"}});
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(nlohmann::json::parse(reply->body),
            nlohmann::json::parse(R"({"id":"s-1","name":"cards"})"));
  const BridgeCall call = bridge_->calls().at(0);
  EXPECT_EQ(call.method, "/kiln.v1.SessionService/CreateSession");
  EXPECT_THAT(call.metadata, Contains(Pair("authorization", "Bearer t0k")));
  EXPECT_THAT(call.metadata, Contains(Pair("x-kiln-session", "s-0")));
  EXPECT_THAT(call.metadata, Not(Contains(Pair("cookie", "c=1"))));
  EXPECT_EQ(call.timeout, absl::Milliseconds(2500));
}

TEST_F(GatewayTest, UnaryProtoIsPassedThroughAsBytes) {
  bridge_->answer = [](const BridgeCall& call, const RpcBridge::MessageSink& sink,
                       const RpcBridge::IdleCheck&) {
    sink(call.requests.at(0));  // an echo: GetSessionRequest and Session share field 1
    return BridgeResult{};
  };
  Start();
  v1::GetSessionRequest request;
  request.set_session_id("s-7");
  httplib::Result reply = Client().Post("/kiln.v1.SessionService/GetSession",
                                        request.SerializeAsString(), "application/proto");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->get_header_value("Content-Type"), "application/proto");
  v1::Session session;
  ASSERT_TRUE(session.ParseFromString(reply->body));
  EXPECT_EQ(session.id(), "s-7");
}

TEST_F(GatewayTest, EveryMethodOfEveryServiceIsRouted) {
  Start();
  int methods = 0;
  for (const google::protobuf::ServiceDescriptor* service : Services()) {
    for (int i = 0; i < service->method_count(); ++i, ++methods) {
      const google::protobuf::MethodDescriptor& method = *service->method(i);
      const std::string path = absl::StrCat("/", service->full_name(), "/", method.name());
      const bool streaming = method.client_streaming() || method.server_streaming();
      httplib::Result reply = streaming ? Client().Post(path, connect::EncodeEnvelope(0, "{}"),
                                                        "application/connect+json")
                                        : PostJson(path, "{}");
      ASSERT_TRUE(reply) << path;
      EXPECT_EQ(reply->status, 200) << path << ": " << reply->body;
      EXPECT_EQ(bridge_->calls().back().method, path);
    }
  }
  EXPECT_EQ(bridge_->calls().size(), methods);
  EXPECT_GT(methods, 0);
}

TEST_F(GatewayTest, ErrorsAreConnectJsonWithTheirHttpStatusAndDetails) {
  // Connect's table (connectrpc.com/docs/protocol#error-codes).
  const std::vector<std::tuple<absl::StatusCode, std::string, int>> table = {
      {absl::StatusCode::kCancelled, "canceled", 499},
      {absl::StatusCode::kUnknown, "unknown", 500},
      {absl::StatusCode::kInvalidArgument, "invalid_argument", 400},
      {absl::StatusCode::kDeadlineExceeded, "deadline_exceeded", 504},
      {absl::StatusCode::kNotFound, "not_found", 404},
      {absl::StatusCode::kAlreadyExists, "already_exists", 409},
      {absl::StatusCode::kPermissionDenied, "permission_denied", 403},
      {absl::StatusCode::kResourceExhausted, "resource_exhausted", 429},
      {absl::StatusCode::kFailedPrecondition, "failed_precondition", 400},
      {absl::StatusCode::kAborted, "aborted", 409},
      {absl::StatusCode::kOutOfRange, "out_of_range", 400},
      {absl::StatusCode::kUnimplemented, "unimplemented", 501},
      {absl::StatusCode::kInternal, "internal", 500},
      {absl::StatusCode::kUnavailable, "unavailable", 503},
      {absl::StatusCode::kDataLoss, "data_loss", 500},
      {absl::StatusCode::kUnauthenticated, "unauthenticated", 401},
  };
  absl::StatusCode code = absl::StatusCode::kOk;
  bridge_->answer = [&code](const BridgeCall&, const RpcBridge::MessageSink&,
                            const RpcBridge::IdleCheck&) {
    google::rpc::BadRequest bad;
    auto* violation = bad.add_field_violations();
    violation->set_field("spec.dense.units");
    violation->set_description("expected a positive integer");
    google::rpc::Status status;
    status.set_code(static_cast<int>(code));
    status.add_details()->PackFrom(bad);
    return BridgeResult{static_cast<int>(code), "spec.dense.units: expected a positive integer",
                        status.SerializeAsString()};
  };
  Start();
  for (const auto& [status_code, name, http_status] : table) {
    code = status_code;
    httplib::Result reply = PostJson("/kiln.v1.ModelService/AddLayer", "{}");
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->status, http_status) << name;
    const nlohmann::json error = nlohmann::json::parse(reply->body);
    EXPECT_EQ(error["code"], name);
    EXPECT_EQ(error["message"], "spec.dense.units: expected a positive integer");
    EXPECT_EQ(error["details"][0]["type"], "google.rpc.BadRequest");
    EXPECT_EQ(error["details"][0]["debug"]["fieldViolations"][0]["field"], "spec.dense.units");
    std::string value;
    ASSERT_TRUE(absl::Base64Unescape(error["details"][0]["value"].get<std::string>(), &value));
    google::rpc::BadRequest bad;
    ASSERT_TRUE(bad.ParseFromString(value));
    EXPECT_EQ(bad.field_violations(0).field(), "spec.dense.units");
  }
}

TEST_F(GatewayTest, RequestsTheDoorCannotTakeAreRefusedBeforeAnyCall) {
  Start();
  httplib::Result unknown = PostJson("/kiln.v1.ModelService/Teleport", "{}");
  EXPECT_EQ(unknown->status, 404);
  EXPECT_EQ(nlohmann::json::parse(unknown->body)["code"], "unimplemented");

  httplib::Result form = Client().Post("/kiln.v1.SessionService/CreateSession", "name=x",
                                       "application/x-www-form-urlencoded");
  EXPECT_EQ(form->status, 415);
  EXPECT_THAT(form->body, HasSubstr("application/json or application/proto"));

  httplib::Result bad_json = PostJson("/kiln.v1.SessionService/CreateSession", R"({"nmae": 1})");
  EXPECT_EQ(bad_json->status, 400);
  EXPECT_THAT(nlohmann::json::parse(bad_json->body)["message"].get<std::string>(),
              HasSubstr("nmae"));

  httplib::Result bad_timeout =
      PostJson("/kiln.v1.SessionService/CreateSession", "{}", {{"Connect-Timeout-Ms", "soon"}});
  EXPECT_EQ(bad_timeout->status, 400);
  EXPECT_THAT(bad_timeout->body, HasSubstr("Connect-Timeout-Ms"));

  httplib::Result truncated = Client().Post("/kiln.v1.JobService/WatchJob",
                                            std::string("\0\0\0", 3), "application/connect+json");
  EXPECT_EQ(truncated->status, 200);  // a stream's errors are its end message
  EXPECT_THAT(truncated->body, HasSubstr("invalid_argument"));
  EXPECT_TRUE(bridge_->calls().empty());
}

TEST_F(GatewayTest, BeforeTheServerRunsCallsAreUnavailable) {
  Start();
  slot_.Set(nullptr);
  httplib::Result reply = PostJson("/kiln.v1.SessionService/CreateSession", "{}");
  EXPECT_EQ(reply->status, 503);
  EXPECT_EQ(nlohmann::json::parse(reply->body)["code"], "unavailable");
}

// The messages of a Connect stream body: (flags, payload) pairs.
std::vector<std::pair<int, std::string>> Envelopes(const std::string& body) {
  std::vector<std::pair<int, std::string>> envelopes;
  for (size_t at = 0; at + 5 <= body.size();) {
    uint32_t size = 0;
    for (int i = 1; i <= 4; ++i) size = (size << 8) | static_cast<uint8_t>(body[at + i]);
    envelopes.emplace_back(static_cast<uint8_t>(body[at]), body.substr(at + 5, size));
    at += 5 + size;
  }
  return envelopes;
}

v1::JobEvent Event(int64_t sequence) {
  v1::JobEvent event;
  event.set_job_id("j-1");
  event.set_sequence(sequence);
  event.mutable_batch_end()->set_batch(sequence);
  return event;
}

TEST_F(GatewayTest, ServerStreamsAreEnvelopesEndingWithTheStatus) {
  bool fail = false;
  bridge_->answer = [&fail](const BridgeCall& call, const RpcBridge::MessageSink& sink,
                            const RpcBridge::IdleCheck&) {
    v1::WatchJobRequest request;
    EXPECT_TRUE(request.ParseFromString(call.requests.at(0)));
    EXPECT_EQ(request.job_id(), "j-1");
    for (int64_t i = 1; i <= 3; ++i) sink(Event(i).SerializeAsString());
    return fail ? BridgeResult{5, "no job", ""} : BridgeResult{};
  };
  Start();
  const std::string request = connect::EncodeEnvelope(0, R"({"sessionId": "s", "jobId": "j-1"})");
  httplib::Result reply =
      Client().Post("/kiln.v1.JobService/WatchJob", request, "application/connect+json");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->get_header_value("Content-Type"), "application/connect+json");
  std::vector<std::pair<int, std::string>> envelopes = Envelopes(reply->body);
  ASSERT_EQ(envelopes.size(), 4);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(envelopes[i].first, 0);
    EXPECT_EQ(nlohmann::json::parse(envelopes[i].second)["sequence"], std::to_string(i + 1));
  }
  EXPECT_EQ(envelopes[3], std::make_pair(int{connect::kEndOfStream}, std::string("{}")));

  fail = true;
  envelopes = Envelopes(
      Client().Post("/kiln.v1.JobService/WatchJob", request, "application/connect+json")->body);
  ASSERT_EQ(envelopes.size(), 4);
  const nlohmann::json end = nlohmann::json::parse(envelopes[3].second);
  EXPECT_EQ(end["error"]["code"], "not_found");
  EXPECT_EQ(end["error"]["message"], "no job");
}

TEST_F(GatewayTest, ClientStreamsPassEveryMessage) {
  Start();
  v1::ImportModelChunk first, second;
  first.mutable_request()->set_session_id("s");
  second.set_data("\x89HDF");
  const std::string body = connect::EncodeEnvelope(0, first.SerializeAsString()) +
                           connect::EncodeEnvelope(0, second.SerializeAsString());
  httplib::Result reply =
      Client().Post("/kiln.v1.ModelService/ImportModelStream", body, "application/connect+proto");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  const BridgeCall call = bridge_->calls().at(0);
  ASSERT_EQ(call.requests.size(), 2);
  v1::ImportModelChunk got;
  ASSERT_TRUE(got.ParseFromString(call.requests[1]));
  EXPECT_EQ(got.data(), "\x89HDF");
}

// A WatchJob that sends the events after `from_sequence` up to 5, then ends; GetJob succeeds.
StandInBridge::Answer JobOfFiveEvents(int quiet_intervals = 0) {
  return [quiet_intervals](const BridgeCall& call, const RpcBridge::MessageSink& sink,
                           const RpcBridge::IdleCheck& idle) {
    if (absl::EndsWith(call.method, "/GetJob")) return BridgeResult{};
    v1::WatchJobRequest request;
    EXPECT_TRUE(request.ParseFromString(call.requests.at(0)));
    for (int i = 0; i < quiet_intervals; ++i) idle();
    for (int64_t i = request.from_sequence() + 1; i <= 5; ++i) sink(Event(i).SerializeAsString());
    return BridgeResult{};
  };
}

// The `id:` lines of an event stream.
std::vector<std::string> EventIds(const std::string& body) {
  std::vector<std::string> ids;
  for (absl::string_view line : absl::StrSplit(body, '\n')) {
    if (absl::ConsumePrefix(&line, "id: ")) ids.emplace_back(line);
  }
  return ids;
}

TEST_F(GatewayTest, JobEventsStreamAndResumeAfterLastEventId) {
  bridge_->answer = JobOfFiveEvents();
  Start();
  httplib::Result all = Client().Get("/v1/jobs/j-1/events?session_id=s");
  ASSERT_TRUE(all);
  EXPECT_EQ(all->status, 200);
  EXPECT_EQ(all->get_header_value("Content-Type"), "text/event-stream");
  EXPECT_THAT(EventIds(all->body), ElementsAre("1", "2", "3", "4", "5"));
  EXPECT_THAT(all->body, HasSubstr("data: {\"jobId\":\"j-1\",\"sequence\":\"1\""));
  EXPECT_TRUE(absl::EndsWith(all->body, "event: end\ndata: {}\n\n"));

  httplib::Result resumed =
      Client().Get("/v1/jobs/j-1/events?session_id=s", {{"Last-Event-ID", "3"}});
  EXPECT_THAT(EventIds(resumed->body), ElementsAre("4", "5"));
  v1::WatchJobRequest watched;
  ASSERT_TRUE(watched.ParseFromString(bridge_->calls().back().requests.at(0)));
  EXPECT_EQ(watched.session_id(), "s");
  EXPECT_EQ(watched.from_sequence(), 3);

  httplib::Result bad = Client().Get("/v1/jobs/j-1/events?session_id=s", {{"Last-Event-ID", "x"}});
  EXPECT_EQ(bad->status, 400);
  EXPECT_THAT(bad->body, HasSubstr("Last-Event-ID"));
}

TEST_F(GatewayTest, JobEventsTakeTheTokenFromTheUrlAndKeepQuietStreamsAlive) {
  bridge_->answer = JobOfFiveEvents(/*quiet_intervals=*/2);
  Start();
  httplib::Result reply = Client().Get("/v1/jobs/j-1/events?session_id=s&access_token=t0k");
  ASSERT_TRUE(reply);
  EXPECT_THAT(reply->body, HasSubstr(": keepalive\n\n: keepalive\n\nid: 1\n"));
  for (const BridgeCall& call : bridge_->calls()) {
    EXPECT_THAT(call.metadata, Contains(Pair("authorization", "Bearer t0k")));
  }
}

// A WatchJob whose first event comes after 20 ms (GetJob succeeds at once). The door says stop
// once its stream time is up, and the call then ends cancelled, as a real one does.
StandInBridge::Answer SlowWatch() {
  return
      [](const BridgeCall& call, const RpcBridge::MessageSink& sink, const RpcBridge::IdleCheck&) {
        if (absl::EndsWith(call.method, "/GetJob")) return BridgeResult{};
        absl::SleepFor(absl::Milliseconds(20));
        const bool more = sink(Event(1).SerializeAsString());
        return more ? BridgeResult{} : BridgeResult{1, "cancelled", ""};
      };
}

TEST_F(GatewayTest, AStreamPastItsTimeEndsWithoutEndSoThatEventSourceResumes) {
  bridge_->answer = SlowWatch();
  HttpListener::Options options = Defaults();
  options.gateway.max_stream_time = absl::Milliseconds(10);
  Start(std::move(options));
  httplib::Result reply = Client().Get("/v1/jobs/j-1/events?session_id=s");
  ASSERT_TRUE(reply);
  EXPECT_THAT(EventIds(reply->body), ElementsAre("1"));
  EXPECT_THAT(reply->body, Not(HasSubstr("event: end")));
  EXPECT_THAT(reply->body, Not(HasSubstr("event: failed")));
}

TEST_F(GatewayTest, JobEventsOfAnUnknownJobAreAnHttpError) {
  bridge_->answer = [](const BridgeCall&, const RpcBridge::MessageSink&,
                       const RpcBridge::IdleCheck&) {
    return BridgeResult{5, "job_id: no job \"j-9\"", ""};
  };
  Start();
  httplib::Result reply = Client().Get("/v1/jobs/j-9/events?session_id=s");
  EXPECT_EQ(reply->status, 404);
  EXPECT_EQ(nlohmann::json::parse(reply->body)["code"], "not_found");
  EXPECT_EQ(bridge_->calls().size(), 1);  // GetJob only
}

TEST_F(GatewayTest, StreamsAreBoundedPerTenant) {
  absl::Notification watching, release;
  bridge_->answer = [&](const BridgeCall& call, const RpcBridge::MessageSink& sink,
                        const RpcBridge::IdleCheck&) {
    if (absl::EndsWith(call.method, "/GetJob")) return BridgeResult{};
    if (!watching.HasBeenNotified()) watching.Notify();
    release.WaitForNotification();
    sink(Event(1).SerializeAsString());
    return BridgeResult{};
  };
  HttpListener::Options options = Defaults();
  options.max_streams_per_tenant = 1;
  Start(std::move(options));
  std::thread first([&] {
    httplib::Result reply =
        Client().Get("/v1/jobs/j-1/events?session_id=s", {{"Authorization", "Bearer a"}});
    EXPECT_THAT(EventIds(reply->body), ElementsAre("1"));
  });
  watching.WaitForNotification();
  EXPECT_EQ(listener_->open_streams(), 1);
  httplib::Result second =
      Client().Get("/v1/jobs/j-1/events?session_id=s", {{"Authorization", "Bearer a"}});
  EXPECT_EQ(second->status, 429);
  EXPECT_THAT(second->body, HasSubstr("--http_max_streams_per_tenant=1"));
  release.Notify();
  first.join();
  // The stream's thread lets go of it just after the client has read the last byte.
  for (int i = 0; i < 500 && listener_->open_streams() > 0; ++i)
    absl::SleepFor(absl::Milliseconds(10));
  ASSERT_EQ(listener_->open_streams(), 0);
  // The first tenant has its stream back; another tenant counts its own (see StreamLimitsTest).
  EXPECT_EQ(
      Client().Get("/v1/jobs/j-1/events?session_id=s", {{"Authorization", "Bearer b"}})->status,
      200);
  EXPECT_EQ(
      Client().Get("/v1/jobs/j-1/events?session_id=s", {{"Authorization", "Bearer a"}})->status,
      200);
}

TEST_F(GatewayTest, CorsAllowsTheConfiguredOriginsOnly) {
  HttpListener::Options options = Defaults();
  options.cors_origins = {"https://app.example"};
  Start(std::move(options));
  httplib::Result preflight =
      Client().Options("/kiln.v1.SessionService/CreateSession",
                       {{"Origin", "https://app.example"},
                        {"Access-Control-Request-Method", "POST"},
                        {"Access-Control-Request-Headers", "content-type,authorization"}});
  ASSERT_TRUE(preflight);
  EXPECT_EQ(preflight->status, 204);
  EXPECT_EQ(preflight->get_header_value("Access-Control-Allow-Origin"), "https://app.example");
  EXPECT_THAT(preflight->get_header_value("Access-Control-Allow-Headers"),
              HasSubstr("Authorization"));
  EXPECT_THAT(preflight->get_header_value("Access-Control-Allow-Methods"), HasSubstr("POST"));
  // The headers a page sends travel on, the editor's session header among them.
  httplib::Result custom =
      Client().Options("/kiln.v1.ModelService/AddLayer",
                       {{"Origin", "https://app.example"},
                        {"Access-Control-Request-Method", "POST"},
                        {"Access-Control-Request-Headers", "x-kiln-session, cookie"}});
  EXPECT_THAT(custom->get_header_value("Access-Control-Allow-Headers"),
              HasSubstr("x-kiln-session"));
  EXPECT_THAT(custom->get_header_value("Access-Control-Allow-Headers"), Not(HasSubstr("cookie")));

  httplib::Result foreign = Client().Options(
      "/kiln.v1.SessionService/CreateSession",
      {{"Origin", "https://evil.example"}, {"Access-Control-Request-Method", "POST"}});
  EXPECT_EQ(foreign->status, 403);
  EXPECT_FALSE(foreign->has_header("Access-Control-Allow-Origin"));

  httplib::Result call =
      PostJson("/kiln.v1.SessionService/CreateSession", "{}", {{"Origin", "https://app.example"}});
  EXPECT_EQ(call->get_header_value("Access-Control-Allow-Origin"), "https://app.example");
  httplib::Result other =
      PostJson("/kiln.v1.SessionService/CreateSession", "{}", {{"Origin", "https://evil.example"}});
  EXPECT_FALSE(other->has_header("Access-Control-Allow-Origin"));
}

TEST_F(GatewayTest, ServesTheEditorsFilesWithAStrictPolicy) {
  const std::filesystem::path root =
      std::filesystem::temp_directory_path() / absl::StrCat("kiln-web-", getpid());
  std::filesystem::create_directories(root);
  std::ofstream(root / "index.html") << "<!doctype html><title>Kiln</title>";
  HttpListener::Options options = Defaults();
  options.web_root = root.string();
  Start(std::move(options));
  httplib::Result page = Client().Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_THAT(page->body, HasSubstr("<title>Kiln</title>"));
  EXPECT_THAT(page->get_header_value("Content-Security-Policy"), HasSubstr("default-src 'self'"));
  EXPECT_EQ(page->get_header_value("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(Client().Get("/missing.js")->status, 404);
  std::filesystem::remove_all(root);

  HttpListener::Options missing;
  missing.address = "127.0.0.1:0";
  missing.web_root = root.string();
  absl::StatusOr<std::unique_ptr<HttpListener>> refused =
      HttpListener::Start(std::move(missing), {[] { return std::string(); }, [] { return true; }});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("--web_root"));
}

TEST_F(GatewayTest, WithAuthenticationRequestsWithoutAValidTokenNeverReachTheBridge) {
  HttpListener::Options options = Defaults();
  options.gateway.authentication_required = true;
  Start(std::move(options));
  httplib::Result bad =
      PostJson("/kiln.v1.SessionService/CreateSession", "{}", {{"Authorization", "Bearer bad"}});
  EXPECT_EQ(bad->status, 401);
  EXPECT_EQ(nlohmann::json::parse(bad->body)["code"], "unauthenticated");
  httplib::Result events = Client().Get("/v1/jobs/j-1/events?session_id=s&access_token=bad");
  EXPECT_EQ(events->status, 401);
  EXPECT_TRUE(bridge_->calls().empty());
  EXPECT_EQ(
      PostJson("/kiln.v1.SessionService/CreateSession", "{}", {{"Authorization", "Bearer good"}})
          ->status,
      200);
  EXPECT_EQ(Client().Get("/healthz")->status, 200);  // probes need no token
}

TEST_F(GatewayTest, AnUnauthenticatedLoopbackDoorAnswersLoopbackNamesOnly) {
  HttpListener::Options options = Defaults();
  options.gateway.loopback_hosts_only = true;
  Start(std::move(options));
  // A page whose name was re-pointed at 127.0.0.1 still sends its own name as Host.
  httplib::Result rebound =
      PostJson("/kiln.v1.SessionService/CreateSession", "{}", {{"Host", "attacker.example"}});
  EXPECT_EQ(rebound->status, 403);
  EXPECT_EQ(nlohmann::json::parse(rebound->body)["code"], "permission_denied");
  // Names that only look like loopback addresses are names an attacker can own.
  for (const char* host :
       {"127.attacker.example", "127.0.0.1.attacker.example:8080", "localhost.attacker.example",
        "127.1", "[::1.attacker]", "[::2]:80", "0x7f.0.0.1"}) {
    EXPECT_EQ(PostJson("/kiln.v1.SessionService/CreateSession", "{}", {{"Host", host}})->status,
              403)
        << host;
  }
  EXPECT_TRUE(bridge_->calls().empty());
  for (const char* host : {"localhost:8080", "LocalHost", "127.0.0.1:8080", "127.45.6.7",
                           "[::1]:8080", "[0:0:0:0:0:0:0:1]"}) {
    EXPECT_EQ(PostJson("/kiln.v1.SessionService/CreateSession", "{}", {{"Host", host}})->status,
              200)
        << host;
  }
}

TEST_F(GatewayTest, AConnectStreamPastItsTimeEndsUnavailableForTheClientToCallAgain) {
  bridge_->answer = SlowWatch();
  HttpListener::Options options = Defaults();
  options.gateway.max_stream_time = absl::Milliseconds(10);
  Start(std::move(options));
  std::vector<std::pair<int, std::string>> envelopes = Envelopes(
      Client()
          .Post("/kiln.v1.JobService/WatchJob", connect::EncodeEnvelope(0, R"({"jobId": "j-1"})"),
                "application/connect+json")
          ->body);
  ASSERT_EQ(envelopes.size(), 2);
  const nlohmann::json end = nlohmann::json::parse(envelopes[1].second);
  EXPECT_EQ(end["error"]["code"], "unavailable");
  EXPECT_THAT(end["error"]["message"].get<std::string>(), HasSubstr("--http_max_stream_time"));
}

TEST_F(GatewayTest, BytesThatAreNotUtf8GetAnErrorNotACrash) {
  Start();
  const std::string bad = "{\"sessionId\": \"\xff\xfe\"}";
  httplib::Result stream = Client().Post(
      "/kiln.v1.JobService/WatchJob", connect::EncodeEnvelope(0, bad), "application/connect+json");
  ASSERT_TRUE(stream);
  const std::vector<std::pair<int, std::string>> envelopes = Envelopes(stream->body);
  ASSERT_EQ(envelopes.size(), 1);
  EXPECT_EQ(nlohmann::json::parse(envelopes[0].second)["error"]["code"], "invalid_argument");
  httplib::Result unary = PostJson("/kiln.v1.SessionService/GetSession", bad);
  EXPECT_EQ(unary->status, 400);
  EXPECT_EQ(nlohmann::json::parse(unary->body)["code"], "invalid_argument");
  httplib::Result timeout =
      PostJson("/kiln.v1.SessionService/GetSession", "{}", {{"Connect-Timeout-Ms", "\xff"}});
  EXPECT_EQ(timeout->status, 400);
  EXPECT_TRUE(bridge_->calls().empty());
}

TEST(StreamLimitsTest, CountsPerOwnerAndInAll) {
  StreamLimits limits(/*per_owner=*/2, /*total=*/3);
  auto a1 = limits.Acquire("a");
  auto a2 = limits.Acquire("a");
  ASSERT_TRUE(a1.ok() && a2.ok());
  EXPECT_EQ(limits.Acquire("a").status().code(), absl::StatusCode::kResourceExhausted);
  auto b1 = limits.Acquire("b");
  ASSERT_TRUE(b1.ok());
  absl::StatusOr<std::unique_ptr<StreamLimits::Lease>> full = limits.Acquire("c");
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(full.status().message(), HasSubstr("--http_threads"));
  a1->reset();
  auto c1 = limits.Acquire("c");
  EXPECT_TRUE(c1.ok());
  EXPECT_EQ(limits.open(), 3);
}

TEST(ConnectProtocolTest, EnvelopesRoundTripAndRejectWhatClientsMayNotSend) {
  const std::string body = connect::EncodeEnvelope(0, "ab") + connect::EncodeEnvelope(0, "");
  absl::StatusOr<std::vector<connect::Envelope>> decoded = connect::DecodeEnvelopes(body);
  ASSERT_TRUE(decoded.ok());
  ASSERT_EQ(decoded->size(), 2);
  EXPECT_EQ((*decoded)[0].payload, "ab");
  EXPECT_EQ((*decoded)[1].payload, "");
  EXPECT_FALSE(connect::DecodeEnvelopes(body.substr(0, body.size() - 1)).ok());
  EXPECT_THAT(connect::DecodeEnvelopes(connect::EncodeEnvelope(connect::kCompressed, "x"))
                  .status()
                  .message(),
              HasSubstr("compressed"));
  EXPECT_FALSE(connect::DecodeEnvelopes(connect::EncodeEnvelope(connect::kEndOfStream, "{}")).ok());
  EXPECT_EQ(connect::UnaryCodec("application/json; charset=utf-8"), connect::Codec::kJson);
  EXPECT_EQ(connect::StreamCodec("Application/Connect+Proto"), connect::Codec::kProto);
  EXPECT_EQ(connect::UnaryCodec("application/connect+json"), std::nullopt);
}

}  // namespace
}  // namespace kiln::server
