// absl::Status -> grpc::Status. An error with a field path (core/base/status.h) also carries a
// google.rpc.Status detail holding a google.rpc.BadRequest with that field, so clients can show
// the error next to the right card socket without parsing the message. Also the helpers that
// answer unary callback RPCs with such a status, on the gRPC thread or on a WorkerPool.
#ifndef KILN_SERVER_GRPC_STATUS_H_
#define KILN_SERVER_GRPC_STATUS_H_

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "server/worker_pool.h"

namespace kiln::server {

grpc::Status ToGrpcStatus(const absl::Status& status);

// Answers a unary callback RPC with the status of `handler` (which fills the response), run
// on the gRPC thread: for handlers that neither compute nor wait.
template <typename Handler>
grpc::ServerUnaryReactor* Respond(grpc::CallbackServerContext* context, Handler&& handler) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(handler()));
  return reactor;
}

// Like Respond, but `handler` runs on `pool`: for handlers that compute or wait. It must hold
// no references to the caller's locals. The request and response live until Finish.
template <typename Handler>
grpc::ServerUnaryReactor* RespondFromPool(grpc::CallbackServerContext* context, WorkerPool* pool,
                                          Handler handler) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  pool->Schedule([context, reactor, handler = std::move(handler)]() mutable {
    if (context->IsCancelled()) {  // the client gave up while the call was queued
      reactor->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
      return;
    }
    reactor->Finish(ToGrpcStatus(handler()));
  });
  return reactor;
}

// A handler that fills `response` with `(session->*method)(*request)` for the request's
// session.
template <typename Sessions, typename Request, typename Response, typename Method>
auto SessionHandler(Sessions* sessions, const Request* request, Response* response, Method method) {
  return [sessions, request, response, method]() -> absl::Status {
    auto session = sessions->Get(request->session_id());
    if (!session.ok()) return session.status();
    auto result = ((**session).*method)(*request);
    if (!result.ok()) return result.status();
    *response = *std::move(result);
    return absl::OkStatus();
  };
}

template <typename Sessions, typename Request, typename Response, typename Method>
grpc::ServerUnaryReactor* CallSession(grpc::CallbackServerContext* context, Sessions* sessions,
                                      const Request* request, Response* response, Method method) {
  return Respond(context, SessionHandler(sessions, request, response, method));
}

template <typename Sessions, typename Request, typename Response, typename Method>
grpc::ServerUnaryReactor* CallSessionFromPool(grpc::CallbackServerContext* context,
                                              WorkerPool* pool, Sessions* sessions,
                                              const Request* request, Response* response,
                                              Method method) {
  return RespondFromPool(context, pool, SessionHandler(sessions, request, response, method));
}

}  // namespace kiln::server

#endif  // KILN_SERVER_GRPC_STATUS_H_
