// absl::Status -> grpc::Status. An error with a field path (core/base/status.h) also carries a
// google.rpc.Status detail holding a google.rpc.BadRequest with that field, so clients can show
// the error next to the right card socket without parsing the message.
#ifndef KILN_SERVER_GRPC_STATUS_H_
#define KILN_SERVER_GRPC_STATUS_H_

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"

namespace kiln::server {

grpc::Status ToGrpcStatus(const absl::Status& status);

// Answers a unary callback RPC with the status of `handler` (which fills the response).
template <typename Handler>
grpc::ServerUnaryReactor* Respond(grpc::CallbackServerContext* context, Handler&& handler) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(handler()));
  return reactor;
}

// Answers a unary RPC with `(session->*method)(*request)` for the request's session.
template <typename Sessions, typename Request, typename Response, typename Method>
grpc::ServerUnaryReactor* CallSession(grpc::CallbackServerContext* context, Sessions* sessions,
                                      const Request* request, Response* response, Method method) {
  return Respond(context, [&]() -> absl::Status {
    auto session = sessions->Get(request->session_id());
    if (!session.ok()) return session.status();
    auto result = ((**session).*method)(*request);
    if (!result.ok()) return result.status();
    *response = *std::move(result);
    return absl::OkStatus();
  });
}

}  // namespace kiln::server

#endif  // KILN_SERVER_GRPC_STATUS_H_
