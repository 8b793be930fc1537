// The Connect protocol's wire pieces (connectrpc.com/docs/protocol), without HTTP or gRPC:
// codes and the HTTP statuses they travel as, error JSON, the five-byte envelopes of streams,
// and the JSON and binary codecs of protobuf messages. Pure functions; the routes that use them
// are in connect_routes.h.
#ifndef KILN_SERVER_HTTP_CONNECT_PROTOCOL_H_
#define KILN_SERVER_HTTP_CONNECT_PROTOCOL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/http/rpc_bridge.h"

namespace google::protobuf {
class Descriptor;
}

namespace kiln::server::connect {

// Connect's name of a google.rpc.Code ("invalid_argument"); "unknown" for a code it lacks.
std::string CodeName(int code);
// The HTTP status a unary error travels with (invalid_argument: 400, not_found: 404, ...).
int HttpStatus(int code);

// The error as Connect's JSON: {"code", "message", "details": [{"type", "value", "debug"}]},
// each detail of `result.details` (a google.rpc.Status) with its bytes in base64 and, for
// people reading curl's output, the detail as JSON in "debug".
std::string ErrorJson(const BridgeResult& result);
// A stream's last message: {} after success, {"error": ...} after a failure.
std::string EndOfStreamJson(const BridgeResult& result);

enum class Codec { kJson, kProto };
// The codec of a unary request's Content-Type (application/json, application/proto; charset
// parameters allowed), or of a streaming one (application/connect+json, ...+proto).
std::optional<Codec> UnaryCodec(absl::string_view content_type);
std::optional<Codec> StreamCodec(absl::string_view content_type);
std::string UnaryContentType(Codec codec);
std::string StreamContentType(Codec codec);

// Envelope flags.
inline constexpr uint8_t kCompressed = 0x01;
inline constexpr uint8_t kEndOfStream = 0x02;

struct Envelope {
  uint8_t flags = 0;
  std::string payload;
};
std::string EncodeEnvelope(uint8_t flags, absl::string_view payload);
// The envelopes of a whole stream body. INVALID_ARGUMENT on a truncated one, a compressed one
// (Kiln negotiates no compression) or an end-of-stream flag from a client.
absl::StatusOr<std::vector<Envelope>> DecodeEnvelopes(absl::string_view body);

// `body` in `codec` as the binary form of `type`; INVALID_ARGUMENT saying what is wrong (JSON
// parse errors, unknown fields). An empty JSON body is the empty message.
absl::StatusOr<std::string> ToBinary(const google::protobuf::Descriptor& type, Codec codec,
                                     absl::string_view body);
// `binary`, a serialized `type`, in `codec` (JSON: proto3's mapping, lowerCamelCase names).
absl::StatusOr<std::string> FromBinary(const google::protobuf::Descriptor& type, Codec codec,
                                       const std::string& binary);

}  // namespace kiln::server::connect

#endif  // KILN_SERVER_HTTP_CONNECT_PROTOCOL_H_
