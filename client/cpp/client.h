// kiln::client::Client: a thin C++ client for the Kiln API - one channel, a stub per service,
// calls that return absl::StatusOr (gRPC errors become absl::Status carrying the server's
// BadRequest field path), and WatchJob as a loop over events.
#ifndef KILN_CLIENT_CPP_CLIENT_H_
#define KILN_CLIENT_CPP_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kiln/v1/service.grpc.pb.h"

namespace kiln::client {

// gRPC status -> absl::Status; the first BadRequest field violation becomes the field path
// (core/base/status.h's FieldPathOf reads it back).
absl::Status FromGrpc(const grpc::Status& status);

// How a Client reaches its server.
struct ClientOptions {
  absl::Duration timeout = absl::Minutes(10);  // deadline of each unary call
  int max_message_bytes = 256 << 20;
  std::string token;  // sent as `authorization: Bearer <token>` with every call
  // TLS: when `tls` (implied by any file below); `tls_ca` names the PEM roots that sign the
  // server's certificate ("": the system's roots); tls_cert/tls_key a client certificate.
  bool tls = false;
  std::string tls_ca, tls_cert, tls_key;
};

// The metadata key that names a call's session: a load balancer keeps a session's calls on
// the replica that holds it by hashing on it (README "Scaling out"), and the server's logs
// name the session.
inline constexpr char kSessionMetadata[] = "x-kiln-session";

// A session id for CreateSessionRequest.session_id: "s-" and 128 bits from getrandom(2), so
// that x-kiln-session can name the session from its create on (README "Scaling out").
std::string DrawSessionId();

// Adds `request`'s session (its session_id, or its upload header's) to `context`.
template <typename Request>
void NameSession(grpc::ClientContext& context, const Request& request) {
  if constexpr (requires { request.session_id(); }) {
    if (!request.session_id().empty()) context.AddMetadata(kSessionMetadata, request.session_id());
  } else if constexpr (requires { request.header().session_id(); }) {
    if (!request.header().session_id().empty()) {
      context.AddMetadata(kSessionMetadata, request.header().session_id());
    }
  }
}

class Client {
 public:
  // `target`: host:port. Nothing is sent until the first call. INVALID_ARGUMENT or NOT_FOUND
  // when a TLS file cannot be read.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(const std::string& target,
                                                         const ClientOptions& options = {});

  // grpc.health.v1 Check of the whole server, or of `service` ("kiln.v1.ModelService"): OK
  // when SERVING, UNAVAILABLE when not (or not reachable), NOT_FOUND for an unknown service.
  // With `wait` > 0 it keeps asking (waiting for the server to come up) until it is SERVING or
  // `wait` has passed.
  absl::Status Health(const std::string& service = "", absl::Duration wait = absl::ZeroDuration());

  // A unary call with this client's deadline:
  //   client.Call(&v1::ModelService::Stub::AddLayer, client.models(), request)
  template <typename Stub, typename Request, typename Response>
  absl::StatusOr<Response> Call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&,
                                                             Response*),
                                Stub& stub, const Request& request) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
    NameSession(context, request);
    Response response;
    grpc::Status status = (stub.*method)(&context, request, &response);
    if (!status.ok()) return FromGrpc(status);
    return response;
  }

  // Streams a job's events after `from_sequence` to `on_event` (which may be null) until the
  // job ends, and returns its last Finished event (a resumed job goes on after an earlier one).
  // A broken stream is resumed from the last event seen, so on_event sees each event exactly
  // once; after a few failed reconnections in a row the error is returned. When from_sequence
  // is already past a finished job's last event, the Finished details come from GetJob.
  absl::StatusOr<v1::Finished> WatchJob(const std::string& session, const std::string& job,
                                        int64_t from_sequence,
                                        const std::function<void(const v1::JobEvent&)>& on_event);

  v1::SessionService::Stub& sessions() { return *sessions_; }
  v1::ModelService::Stub& models() { return *models_; }
  v1::DataService::Stub& data() { return *data_; }
  v1::JobService::Stub& jobs() { return *jobs_; }
  v1::InferenceService::Stub& inference() { return *inference_; }
  v1::CatalogueService::Stub& catalogue() { return *catalogue_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

 private:
  absl::StatusOr<v1::Finished> FinishedFromJob(const std::string& session, const std::string& job);

  Client(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout);

  absl::Status CheckHealthOnce(const std::string& service, absl::Time deadline,
                               bool wait_for_ready);

  absl::Duration timeout_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::SessionService::Stub> sessions_;
  std::unique_ptr<v1::ModelService::Stub> models_;
  std::unique_ptr<v1::DataService::Stub> data_;
  std::unique_ptr<v1::JobService::Stub> jobs_;
  std::unique_ptr<v1::InferenceService::Stub> inference_;
  std::unique_ptr<v1::CatalogueService::Stub> catalogue_;
};

}  // namespace kiln::client

#endif  // KILN_CLIENT_CPP_CLIENT_H_
