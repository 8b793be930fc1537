#include "server/grpc/grpc_status.h"

#include "absl/strings/match.h"
#include "core/base/status.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace kiln::server {

namespace {

// The message goes out twice (grpc-message, percent-encoded, and in the details, base64), the
// field path once: at most about 6 KiB together.
constexpr size_t kMaxMessageBytes = 768;
constexpr size_t kMaxFieldBytes = 256;

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const auto code = static_cast<grpc::StatusCode>(status.code());
  // gRPC refuses trailers over its metadata limit (8 KiB by default) and the client then sees
  // RESOURCE_EXHAUSTED instead of the error: whatever a request echoed, the error fits.
  const std::string message = Shortened(status.message(), kMaxMessageBytes);
  std::optional<std::string> field = FieldPathOf(status);
  if (field.has_value()) field = Shortened(*field, kMaxFieldBytes);
  if (!field.has_value()) return grpc::Status(code, message);
  google::rpc::Status details;
  details.set_code(static_cast<int>(code));
  details.set_message(message);
  google::rpc::BadRequest bad_request;
  google::rpc::BadRequest::FieldViolation* violation = bad_request.add_field_violations();
  violation->set_field(*field);
  // The description is the message without its "path: " prefix.
  violation->set_description(
      message.rfind(*field + ": ", 0) == 0 ? message.substr(field->size() + 2) : message);
  details.add_details()->PackFrom(bad_request);
  return grpc::Status(code, message, details.SerializeAsString());
}

absl::StatusOr<Caller> CallerOf(const grpc::ServerContextBase& context, const Authenticator& auth) {
  if (!auth.required()) return Caller{};
  std::optional<absl::string_view> authorization;
  const auto& metadata = context.client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    authorization = absl::string_view(it->second.data(), it->second.size());
  }
  std::string certificate_name;
  if (const std::shared_ptr<const grpc::AuthContext> peer = context.auth_context();
      peer != nullptr && peer->IsPeerAuthenticated()) {
    for (const grpc::string_ref& name : peer->FindPropertyValues("x509_common_name")) {
      certificate_name.assign(name.data(), name.size());
    }
  }
  // The HTTP door's calls come through the in-process channel, their tokens checked (and
  // their failures counted) at the door.
  const std::string peer = context.peer();
  const std::string client = absl::StartsWith(peer, "inproc") ? "" : ClientAddress(peer);
  return auth.Authenticate(authorization, certificate_name, client);
}

}  // namespace kiln::server
