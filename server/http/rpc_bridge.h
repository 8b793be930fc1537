// RpcBridge: how the HTTP door reaches Kiln's RPCs without knowing gRPC. A call names its
// method ("/kiln.v1.ModelService/AddLayer"), carries serialized request messages and request
// metadata, and hands each serialized response to a callback as it arrives; the result is the
// RPC's own status, so that authentication, limits, validation, field paths and codes are
// exactly those a gRPC client gets. server/grpc implements it over the server's in-process
// channel.
//
// BridgeSlot holds the bridge once the RPC server runs: the HTTP listener starts before it
// (so that /readyz can answer while the state loads) and answers UNAVAILABLE until then.
#ifndef KILN_SERVER_HTTP_RPC_BRIDGE_H_
#define KILN_SERVER_HTTP_RPC_BRIDGE_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace kiln::server {

struct BridgeCall {
  std::string method;                                         // "/package.Service/Method"
  std::vector<std::pair<std::string, std::string>> metadata;  // lowercase ASCII keys
  absl::Duration timeout = absl::InfiniteDuration();
  std::vector<std::string> requests;  // serialized; one for unary and server-streaming RPCs
};

struct BridgeResult {
  int code = 0;  // the google.rpc.Code the RPC ended with
  std::string message;
  std::string details;  // a serialized google.rpc.Status with its details; may be empty
};

class RpcBridge {
 public:
  // Returns false to cancel the call.
  using MessageSink = std::function<bool(const std::string& message)>;
  // Called after each `idle_interval` without a response; returns false to cancel the call.
  using IdleCheck = std::function<bool()>;

  virtual ~RpcBridge() = default;

  // Runs `call` to its end on the calling thread, handing each response to `on_message`.
  virtual BridgeResult Invoke(const BridgeCall& call, const MessageSink& on_message,
                              const IdleCheck& on_idle, absl::Duration idle_interval) = 0;
};

class BridgeSlot {
 public:
  void Set(std::shared_ptr<RpcBridge> bridge) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    bridge_ = std::move(bridge);
  }
  // Null until the RPC server runs.
  std::shared_ptr<RpcBridge> Get() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return bridge_;
  }

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<RpcBridge> bridge_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kiln::server

#endif  // KILN_SERVER_HTTP_RPC_BRIDGE_H_
