// RpcObserver: a gRPC server interceptor that sees every RPC - Kiln's services, health and
// reflection - as it ends: it counts it in Metrics by method and status code with its latency
// (kiln_rpc_requests_total, kiln_rpc_duration_seconds) and logs the calls that --log_rpcs
// asks for, with the tenant (authenticated as the handlers do), the session the client names
// in its x-kiln-session metadata, the method, the code and the duration. It never changes a
// call.
#ifndef KILN_SERVER_GRPC_RPC_OBSERVER_H_
#define KILN_SERVER_GRPC_RPC_OBSERVER_H_

#include <grpcpp/support/server_interceptor.h>

#include "server/service/authenticator.h"
#include "server/service/logger.h"
#include "server/service/metrics.h"

namespace kiln::server {

// The metadata key clients send the session id under, for session affinity and the logs.
inline constexpr char kSessionMetadata[] = "x-kiln-session";

class RpcObserverFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  // Defines the RPC families in `metrics`. All must outlive the server.
  RpcObserverFactory(Metrics* metrics, Logger* logger, const Authenticator* auth, LogRpcs log);

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  friend class RpcObserver;
  Metrics* const metrics_;
  Logger* const logger_;
  const Authenticator* const auth_;
  const LogRpcs log_;
};

}  // namespace kiln::server

#endif  // KILN_SERVER_GRPC_RPC_OBSERVER_H_
