// Gateway: what the HTTP door's API routes (Connect calls, job event streams) share: the
// bridge to the RPCs, the bound on open streams and who owns one, and the request headers
// that travel on as gRPC metadata. Every call goes through the bridge, so the HTTP door adds
// no rule of its own to who may do what.
#ifndef KILN_SERVER_HTTP_GATEWAY_H_
#define KILN_SERVER_HTTP_GATEWAY_H_

#include <httplib.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/http/rpc_bridge.h"
#include "server/http/stream_limits.h"

namespace kiln::server {

struct Gateway {
  BridgeSlot* bridge = nullptr;
  StreamLimits* streams = nullptr;
  // The tenant of a request with this authorization header from this client address ("" for
  // the anonymous caller), or UNAUTHENTICATED when the server needs a token and this is none
  // of its (RESOURCE_EXHAUSTED when the address has failed too often lately).
  std::function<absl::StatusOr<std::string>(std::optional<absl::string_view> authorization,
                                            absl::string_view client)>
      tenant_of;
  // Whether calls must prove who they are: then API requests without a valid token are refused
  // before their body is read.
  bool authentication_required = false;
  // An unauthenticated door on a loopback address answers API requests only for loopback host
  // names, so that a web page whose name an attacker re-points at 127.0.0.1 (DNS rebinding)
  // cannot call it.
  bool loopback_hosts_only = false;
  absl::Duration keepalive;  // comment lines on idle event streams
  // A stream open this long is ended; clients resume where it stopped (Last-Event-ID,
  // from_sequence), and a forgotten tab never holds a thread for good.
  absl::Duration max_stream_time;
};

// The request's headers that become gRPC metadata: authorization and application headers
// (x-*), with lowercase keys; others (HTTP's own, Connect's, the browser's) stay behind, as do
// values gRPC cannot carry. `authorization`, when given, replaces the header's (EventSource
// cannot send headers, so it comes from the URL).
std::vector<std::pair<std::string, std::string>> ForwardedMetadata(
    const httplib::Request& request, std::optional<std::string> authorization = std::nullopt);

// The request's authorization: its header, or for job event streams (EventSource cannot send
// headers) `Bearer <access_token>` from the URL.
std::optional<std::string> Authorization(const httplib::Request& request);

// Checks, before the body is read, what every API request must pass: its Host (see
// loopback_hosts_only) and its token (see authentication_required). The listener runs it as
// (part of) its pre-routing handler.
httplib::Server::HandlerWithResponse GatewayGuard(std::shared_ptr<const Gateway> gateway);

// The tenant that owns a stream `request` opens ("" when it has none).
std::string StreamOwner(const Gateway& gateway, const httplib::Request& request);

// Sends `result` (a failure) as Connect's error JSON with its HTTP status.
void SendError(const BridgeResult& result, httplib::Response& response);
void SendError(const absl::Status& status, httplib::Response& response);

// A failure as a BridgeResult (no details).
BridgeResult ResultOf(const absl::Status& status);

// What a call gets while the bridge is not set yet: UNAVAILABLE, to retry.
absl::Status NotServingYet();

}  // namespace kiln::server

#endif  // KILN_SERVER_HTTP_GATEWAY_H_
