// GenericBridge: the HTTP door's RpcBridge over a gRPC channel to this very server (its
// in-process channel), with grpc::GenericStub: every method is called as a stream of
// serialized messages, whatever its kind, so one path serves unary, server-streaming and
// client-streaming RPCs and the server's own interceptors, authentication and limits apply.
#ifndef KILN_SERVER_GRPC_GENERIC_BRIDGE_H_
#define KILN_SERVER_GRPC_GENERIC_BRIDGE_H_

#include <memory>

#include "server/http/rpc_bridge.h"

namespace grpc {
class Channel;
}

namespace kiln::server {

class GenericBridge : public RpcBridge {
 public:
  explicit GenericBridge(std::shared_ptr<grpc::Channel> channel);
  ~GenericBridge() override;

  BridgeResult Invoke(const BridgeCall& call, const MessageSink& on_message,
                      const IdleCheck& on_idle, absl::Duration idle_interval) override;

 private:
  std::shared_ptr<grpc::Channel> channel_;
};

}  // namespace kiln::server

#endif  // KILN_SERVER_GRPC_GENERIC_BRIDGE_H_
