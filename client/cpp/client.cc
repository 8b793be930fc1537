#include "client/cpp/client.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/client_interceptor.h>
#include <sys/random.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <iterator>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/base/status.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace kiln::client {

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  const absl::Status plain(static_cast<absl::StatusCode>(status.error_code()),
                           status.error_message());
  google::rpc::Status details;
  if (status.error_details().empty() || !details.ParseFromString(status.error_details())) {
    return plain;
  }
  for (const auto& any : details.details()) {
    google::rpc::BadRequest bad;
    if (any.UnpackTo(&bad) && bad.field_violations_size() > 0) {
      absl::Status out = plain;
      out.SetPayload(kFieldPathPayloadUrl, absl::Cord(bad.field_violations(0).field()));
      return out;
    }
  }
  return plain;
}

namespace {

// Adds the bearer token to every call of a channel, streams and health checks included.
class TokenInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit TokenInterceptor(const std::string* header) : header_(header) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->insert({"authorization", *header_});
    }
    methods->Proceed();
  }

 private:
  const std::string* header_;
};

class TokenInterceptorFactory : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit TokenInterceptorFactory(const std::string& token)
      : header_(absl::StrCat("Bearer ", token)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new TokenInterceptor(&header_);
  }

 private:
  const std::string header_;  // lives as long as the channel, which owns the factory
};

absl::StatusOr<std::string> ReadPem(const std::string& path, absl::string_view flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("--", flag, ": cannot read ", path));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", path, " is not a PEM file"));
  }
  return text;
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> CredentialsFor(
    const ClientOptions& options) {
  if (!options.tls && options.tls_ca.empty() && options.tls_cert.empty() &&
      options.tls_key.empty()) {
    return grpc::InsecureChannelCredentials();
  }
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key go together");
  }
  grpc::SslCredentialsOptions ssl;
  if (!options.tls_ca.empty()) {
    KILN_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPem(options.tls_ca, "tls_ca"));
  }
  if (!options.tls_cert.empty()) {
    KILN_ASSIGN_OR_RETURN(ssl.pem_cert_chain, ReadPem(options.tls_cert, "tls_cert"));
    KILN_ASSIGN_OR_RETURN(ssl.pem_private_key, ReadPem(options.tls_key, "tls_key"));
  }
  return grpc::SslCredentials(ssl);
}

}  // namespace

std::string DrawSessionId() {
  unsigned char bytes[16];
  for (size_t got = 0; got < sizeof(bytes);) {
    const ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n > 0) got += static_cast<size_t>(n);  // interrupted by a signal: ask again
  }
  std::string id = "s-";
  for (unsigned char b : bytes) absl::StrAppend(&id, absl::Hex(b, absl::kZeroPad2));
  return id;
}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const std::string& target,
                                                        const ClientOptions& options) {
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> credentials,
                        CredentialsFor(options));
  grpc::ChannelArguments args;
  // Reconnect soon after a server (re)starts: gRPC's default first backoff is a second. Not
  // GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: gRPC takes it as the connect timeout too (20 s by
  // default), and 100 ms failed handshakes with a busy server ("timed out before receiving
  // SETTINGS frame").
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  // Each Client its own connection: clients in one process do not queue behind each other.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  if (!options.token.empty()) {
    interceptors.push_back(std::make_unique<TokenInterceptorFactory>(options.token));
  }
  std::shared_ptr<grpc::Channel> channel = grpc::experimental::CreateCustomChannelWithInterceptors(
      target, credentials, args, std::move(interceptors));
  return std::unique_ptr<Client>(new Client(std::move(channel), options.timeout));
}

Client::Client(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout)
    : timeout_(timeout), channel_(std::move(channel)) {
  sessions_ = v1::SessionService::NewStub(channel_);
  models_ = v1::ModelService::NewStub(channel_);
  data_ = v1::DataService::NewStub(channel_);
  jobs_ = v1::JobService::NewStub(channel_);
  inference_ = v1::InferenceService::NewStub(channel_);
  catalogue_ = v1::CatalogueService::NewStub(channel_);
}

absl::Status Client::Health(const std::string& service, absl::Duration wait) {
  if (wait <= absl::ZeroDuration()) {
    return CheckHealthOnce(service, absl::Now() + absl::Seconds(10), /*wait_for_ready=*/false);
  }
  const absl::Time deadline = absl::Now() + wait;
  for (;;) {
    // wait_for_ready: the call waits for a connection rather than failing at once.
    absl::Status status = CheckHealthOnce(service, deadline, /*wait_for_ready=*/true);
    if (absl::IsDeadlineExceeded(status)) {
      return absl::UnavailableError(
          absl::StrCat("no server answered SERVING within ", absl::FormatDuration(wait)));
    }
    if (status.ok() || absl::IsNotFound(status) ||
        absl::Now() + absl::Milliseconds(100) >= deadline) {
      return status;
    }
    absl::SleepFor(absl::Milliseconds(100));  // it answers, but is not SERVING yet
  }
}

absl::Status Client::CheckHealthOnce(const std::string& service, absl::Time deadline,
                                     bool wait_for_ready) {
  // grpc.health.v1.HealthCheckRequest: field 1, the service name (empty: the whole server).
  if (service.size() > 127) return absl::InvalidArgumentError("service name too long");
  std::string request_bytes;
  if (!service.empty()) {
    request_bytes = absl::StrCat("\x0a", std::string(1, char(service.size())), service);
  }
  grpc::GenericStub stub(channel_);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(deadline));
  context.set_wait_for_ready(wait_for_ready);
  grpc::Slice slice(request_bytes);  // an empty slice still makes a valid (empty) message
  grpc::ByteBuffer request(&slice, 1), response;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status result;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) {
                   std::lock_guard<std::mutex> lock(mu);
                   result = std::move(s);
                   done = true;
                   cv.notify_one();
                 });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
  if (!result.ok()) {
    if (result.error_code() == grpc::StatusCode::NOT_FOUND) {
      return absl::NotFoundError(absl::StrCat("the server has no service \"", service, "\""));
    }
    return FromGrpc(result);
  }
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (response.Dump(&slices).ok()) {
    for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  // HealthCheckResponse{status: SERVING} is field 1 = 1.
  if (bytes != std::string("\x08\x01", 2)) {
    return absl::UnavailableError("the server is not serving (it is starting or shutting down)");
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Finished> Client::WatchJob(
    const std::string& session, const std::string& job, int64_t from_sequence,
    const std::function<void(const v1::JobEvent&)>& on_event) {
  constexpr int kMaxRetries = 6;  // in a row without an event: about 15 s of backoff in all
  int64_t last = from_sequence;
  std::optional<v1::Finished> finished;
  for (int retries = 0;; ++retries) {
    v1::WatchJobRequest request;
    request.set_session_id(session);
    request.set_job_id(job);
    request.set_from_sequence(last);
    grpc::ClientContext context;
    NameSession(context, request);
    auto reader = jobs_->WatchJob(&context, request);
    v1::JobEvent event;
    while (reader->Read(&event)) {
      last = event.sequence();
      retries = 0;
      if (on_event) on_event(event);
      // A Finished event ends the job unless it is resumed, which the server then streams on:
      // the stream's end is the job's.
      if (event.has_finished()) finished = event.finished();
    }
    grpc::Status status = reader->Finish();
    if (status.ok()) {
      if (finished.has_value()) return *finished;
      return FinishedFromJob(session, job);  // from_sequence was past the end
    }
    // A stream the server closed as it shut down ends a job that ended INTERRUPTED.
    if (finished.has_value() && finished->state() == v1::INTERRUPTED) return *finished;
    // Only a dropped connection is worth resuming; anything else is the answer.
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE || retries >= kMaxRetries) {
      return FromGrpc(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250 << std::min(retries, 4)));
  }
}

absl::StatusOr<v1::Finished> Client::FinishedFromJob(const std::string& session,
                                                     const std::string& job) {
  v1::GetJobRequest request;
  request.set_session_id(session);
  request.set_job_id(job);
  KILN_ASSIGN_OR_RETURN(v1::Job snapshot, Call(&v1::JobService::Stub::GetJob, *jobs_, request));
  if (!snapshot.has_finished()) {
    return absl::InternalError("the event stream ended before the job did");
  }
  v1::Finished finished;
  finished.set_state(snapshot.state());
  if (snapshot.has_error()) *finished.mutable_error() = snapshot.error();
  if (snapshot.kind() != v1::FIT) *finished.mutable_results() = snapshot.logs();
  finished.set_output_dataset(snapshot.output_dataset());
  *finished.mutable_history() = snapshot.history();
  return finished;
}

}  // namespace kiln::client
