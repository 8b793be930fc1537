// GenericBridge: the HTTP door's RpcBridge over a gRPC channel to this very server (its
// in-process channel), with grpc::GenericStub: every method is called as a stream of
// serialized messages, whatever its kind, so one path serves unary, server-streaming and
// client-streaming RPCs and the server's own interceptors, authentication and limits apply.
//
// Close() must come before the server shuts down: the in-process channel cannot take a call
// once the server has closed it, so new calls are refused here, and those in flight are let
// finish (the HTTP door's share of the shutdown grace) before the server goes.
#ifndef KILN_SERVER_GRPC_GENERIC_BRIDGE_H_
#define KILN_SERVER_GRPC_GENERIC_BRIDGE_H_

#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/http/rpc_bridge.h"

namespace grpc {
class Channel;
class ClientContext;
}  // namespace grpc

namespace kiln::server {

class GenericBridge : public RpcBridge {
 public:
  explicit GenericBridge(std::shared_ptr<grpc::Channel> channel);
  ~GenericBridge() override;

  // UNAVAILABLE once closed.
  BridgeResult Invoke(const BridgeCall& call, const MessageSink& on_message,
                      const IdleCheck& on_idle, absl::Duration idle_interval) override
      ABSL_LOCKS_EXCLUDED(mu_);

  // Refuses new calls, waits until `deadline` for those in flight, cancels what is left and
  // waits for it to end.
  void Close(absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  std::shared_ptr<grpc::Channel> channel_;
  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_set<grpc::ClientContext*> calls_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kiln::server

#endif  // KILN_SERVER_GRPC_GENERIC_BRIDGE_H_
