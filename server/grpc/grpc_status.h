// The one edge between absl::Status and gRPC: ToGrpcStatus turns an error with a field path
// (core/base/status.h) into a gRPC status that also carries a google.rpc.Status detail holding
// a google.rpc.BadRequest with that field, so clients can show the error next to the right card
// socket without parsing the message. Also the helpers that answer unary callback RPCs with
// such a status, on the gRPC thread (reads) or on a WorkerPool (changes and computation),
// after authenticating the caller.
#ifndef KILN_SERVER_GRPC_GRPC_STATUS_H_
#define KILN_SERVER_GRPC_GRPC_STATUS_H_

#include <grpcpp/grpcpp.h>

#include <type_traits>

#include "absl/status/status.h"
#include "server/service/authenticator.h"
#include "server/service/call_scope.h"
#include "server/service/caller.h"
#include "server/service/request_bounds.h"
#include "server/service/session_manager.h"
#include "server/service/worker_pool.h"

namespace kiln::server {

grpc::Status ToGrpcStatus(const absl::Status& status);

// What every service handler works with.
struct Backend {
  SessionManager* sessions = nullptr;
  WorkerPool* pool = nullptr;  // for handlers that change anything, compute or wait
  const Authenticator* auth = nullptr;
};

// Who calls: the tenant named by the request's bearer token or by its verified client
// certificate; UNAUTHENTICATED when the server requires one and it is missing or wrong.
absl::StatusOr<Caller> CallerOf(const grpc::ServerContextBase& context, const Authenticator& auth);

// Answers a unary callback RPC with the status of `handler(caller)` (which fills the
// response), run on the gRPC thread: for handlers that only read memory. An unauthenticated
// call never reaches the handler.
template <typename Handler>
grpc::ServerUnaryReactor* Respond(grpc::CallbackServerContext* context, const Backend& backend,
                                  Handler&& handler) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<Caller> caller = CallerOf(*context, *backend.auth);
  reactor->Finish(ToGrpcStatus(caller.ok() ? handler(*caller) : caller.status()));
  return reactor;
}

// Like Respond, but `handler` runs on the backend's pool, after the caller's earlier calls on
// `session_id` ("" for none) have finished: for handlers that write to the store, compute or
// wait. It must hold no references to the caller's locals. The request and response live
// until Finish. A full queue answers RESOURCE_EXHAUSTED at once.
template <typename Handler>
grpc::ServerUnaryReactor* RespondFromPool(grpc::CallbackServerContext* context,
                                          const Backend& backend, const std::string& session_id,
                                          Handler handler) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<Caller> caller = CallerOf(*context, *backend.auth);
  if (!caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  const WorkerPool::Lane lane{caller->id, session_id};
  absl::Status scheduled = backend.pool->Schedule(
      lane,
      [context, reactor, caller = *std::move(caller), handler = std::move(handler)]() mutable {
        if (context->IsCancelled()) {  // the client gave up while the call was queued
          reactor->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
          return;
        }
        CallScope call([context] { return context->IsCancelled(); });
        reactor->Finish(ToGrpcStatus(handler(caller)));
      });
  if (!scheduled.ok()) reactor->Finish(ToGrpcStatus(scheduled));
  return reactor;
}

// A handler that fills `response` with `(session->*method)(*request)` for the request's
// session (methods that return absl::Status leave the response empty), charged to it.
template <typename Request, typename Response, typename Method>
auto SessionHandler(SessionManager* sessions, const Request* request, Response* response,
                    Method method) {
  return [sessions, request, response, method](const Caller& caller) -> absl::Status {
    KILN_RETURN_IF_ERROR(CheckRequestBounds(*request));
    absl::StatusOr<std::shared_ptr<Session>> session = sessions->Get(caller, request->session_id());
    if (!session.ok()) return session.status();
    auto result = (*session)->Charged([&] { return ((**session).*method)(*request); });
    if constexpr (std::is_same_v<decltype(result), absl::Status>) {
      return result;
    } else {
      if (!result.ok()) return result.status();
      *response = *std::move(result);
      return absl::OkStatus();
    }
  };
}

// Reads: on the gRPC thread.
template <typename Request, typename Response, typename Method>
grpc::ServerUnaryReactor* CallSession(grpc::CallbackServerContext* context, const Backend& backend,
                                      const Request* request, Response* response, Method method) {
  return Respond(context, backend, SessionHandler(backend.sessions, request, response, method));
}

// Changes and computation: on the pool.
template <typename Request, typename Response, typename Method>
grpc::ServerUnaryReactor* CallSessionFromPool(grpc::CallbackServerContext* context,
                                              const Backend& backend, const Request* request,
                                              Response* response, Method method) {
  return RespondFromPool(context, backend, request->session_id(),
                         SessionHandler(backend.sessions, request, response, method));
}

}  // namespace kiln::server

#endif  // KILN_SERVER_GRPC_GRPC_STATUS_H_
