#include "server/http/connect_routes.h"

#include <google/protobuf/descriptor.h>

#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/http/connect_protocol.h"
#include "server/http/connection_guard.h"

namespace kiln::server {
namespace {

using google::protobuf::MethodDescriptor;
using MethodTable = absl::flat_hash_map<std::string, const MethodDescriptor*>;

// Connect-Timeout-Ms: at most 10 digits.
absl::StatusOr<absl::Duration> Timeout(const httplib::Request& request) {
  if (!request.has_header("Connect-Timeout-Ms")) return absl::InfiniteDuration();
  const std::string value = request.get_header_value("Connect-Timeout-Ms");
  int64_t ms = 0;
  if (value.empty() || value.size() > 10 || !absl::SimpleAtoi(value, &ms) || ms < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Connect-Timeout-Ms: expected a number of milliseconds (at most 10 digits), got '", value,
        "'"));
  }
  return absl::Milliseconds(ms);
}

absl::StatusOr<BridgeCall> NewCall(const MethodDescriptor& method,
                                   const httplib::Request& request) {
  BridgeCall call;
  call.method = absl::StrCat("/", method.service()->full_name(), "/", method.name());
  call.metadata = ForwardedMetadata(request);
  absl::StatusOr<absl::Duration> timeout = Timeout(request);
  if (!timeout.ok()) return timeout.status();
  call.timeout = *timeout;
  return call;
}

// The codec of the request's Content-Type for a unary or a streaming method; without one, the
// answer is 415 naming the types the method takes.
std::optional<connect::Codec> CodecOrRefuse(const httplib::Request& request, bool streaming,
                                            httplib::Response& response) {
  const std::string content_type = request.get_header_value("Content-Type");
  std::optional<connect::Codec> codec =
      streaming ? connect::StreamCodec(content_type) : connect::UnaryCodec(content_type);
  if (codec.has_value()) return codec;
  SendError(
      absl::InvalidArgumentError(absl::StrCat(
          "Content-Type '", content_type, "' is not one this method takes: ",
          streaming ? "application/connect+json or application/connect+proto (a streaming method)"
                    : "application/json or application/proto")),
      response);
  response.status = 415;
  return std::nullopt;
}

void ServeUnary(const MethodDescriptor& method, const Gateway& gateway,
                const httplib::Request& request, httplib::Response& response) {
  const std::optional<connect::Codec> codec = CodecOrRefuse(request, false, response);
  if (!codec.has_value()) return;
  absl::StatusOr<BridgeCall> call = NewCall(method, request);
  if (!call.ok()) return SendError(call.status(), response);
  absl::StatusOr<std::string> binary =
      connect::ToBinary(*method.input_type(), *codec, request.body);
  if (!binary.ok()) return SendError(binary.status(), response);
  call->requests.push_back(*std::move(binary));
  std::shared_ptr<RpcBridge> bridge = gateway.bridge->Get();
  if (bridge == nullptr) {
    return SendError(NotServingYet(), response);
  }
  std::string reply;
  const BridgeResult result = bridge->Invoke(
      *call,
      [&reply](const std::string& message) {
        reply = message;
        return true;
      },
      [] { return true; }, absl::InfiniteDuration());
  if (result.code != 0) return SendError(result, response);
  absl::StatusOr<std::string> body = connect::FromBinary(*method.output_type(), *codec, reply);
  if (!body.ok()) return SendError(body.status(), response);
  response.set_content(*std::move(body), connect::UnaryContentType(*codec));
}

// Runs a prepared stream call, writing each response to `sink` in an envelope; returns how it
// ended. A stream the door ends itself says why: past --http_max_stream_time it is unavailable
// (a client resumes it), a response it cannot encode is internal.
BridgeResult RunStream(const Gateway& gateway, const absl::Status& prepared, const BridgeCall& call,
                       const google::protobuf::Descriptor& output, connect::Codec codec,
                       httplib::DataSink& sink) {
  if (!prepared.ok()) return ResultOf(prepared);
  std::shared_ptr<RpcBridge> bridge = gateway.bridge->Get();
  if (bridge == nullptr) {
    return ResultOf(NotServingYet());
  }
  const absl::Time ends = absl::Now() + gateway.max_stream_time;
  std::optional<absl::Status> ended_by_door;
  auto in_time = [&] {
    if (absl::Now() < ends) return true;
    ended_by_door = absl::UnavailableError(
        absl::StrCat("the stream was open for --http_max_stream_time (",
                     absl::FormatDuration(gateway.max_stream_time), "); call again to go on"));
    return false;
  };
  BridgeResult result = bridge->Invoke(
      call,
      [&](const std::string& message) {
        absl::StatusOr<std::string> payload = connect::FromBinary(output, codec, message);
        if (!payload.ok()) {
          ended_by_door = payload.status();
          return false;
        }
        const std::string envelope = connect::EncodeEnvelope(0, *payload);
        return sink.write(envelope.data(), envelope.size()) && in_time();
      },
      [&] { return sink.is_writable() && in_time(); }, gateway.keepalive);
  if (ended_by_door.has_value()) return ResultOf(*ended_by_door);
  return result;
}

// The stream's messages are written as they come; any failure, before or during the call, is
// the end-of-stream message (Connect streams always answer 200).
void ServeStream(const MethodDescriptor& method, std::shared_ptr<const Gateway> gateway,
                 const httplib::Request& request, httplib::Response& response) {
  const std::optional<connect::Codec> codec = CodecOrRefuse(request, true, response);
  if (!codec.has_value()) return;
  auto call = std::make_shared<BridgeCall>();
  absl::Status prepared = [&]() -> absl::Status {
    absl::StatusOr<BridgeCall> made = NewCall(method, request);
    if (!made.ok()) return made.status();
    *call = *std::move(made);
    absl::StatusOr<std::vector<connect::Envelope>> envelopes =
        connect::DecodeEnvelopes(request.body);
    if (!envelopes.ok()) return envelopes.status();
    if (!method.client_streaming() && envelopes->size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          method.full_name(), " takes one request message; the stream holds ", envelopes->size()));
    }
    for (const connect::Envelope& envelope : *envelopes) {
      absl::StatusOr<std::string> binary =
          connect::ToBinary(*method.input_type(), *codec, envelope.payload);
      if (!binary.ok()) return binary.status();
      call->requests.push_back(*std::move(binary));
    }
    return absl::OkStatus();
  }();
  // Held while the stream is open; only streams that answer more than once hold a thread long.
  std::shared_ptr<StreamLimits::Lease> lease;
  if (prepared.ok() && method.server_streaming()) {
    absl::StatusOr<std::unique_ptr<StreamLimits::Lease>> acquired =
        gateway->streams->Acquire(StreamOwner(*gateway, request));
    if (acquired.ok()) {
      lease = *std::move(acquired);
    } else {
      prepared = acquired.status();
    }
  }
  response.set_chunked_content_provider(
      connect::StreamContentType(*codec),
      [gateway, call, lease, prepared, output = method.output_type(), codec = *codec](
          size_t, httplib::DataSink& sink) {
        BridgeResult result;
        // An exception must not leave a provider: it would end the process (cpp-httplib).
        try {
          result = RunStream(*gateway, prepared, *call, *output, codec, sink);
        } catch (const std::exception& e) {
          result = ResultOf(absl::InternalError(absl::StrCat("the HTTP door failed: ", e.what())));
        }
        const std::string end =
            connect::EncodeEnvelope(connect::kEndOfStream, connect::EndOfStreamJson(result));
        sink.write(end.data(), end.size());
        sink.done();
        return true;
      });
}

}  // namespace

void InstallConnectRoutes(const std::vector<const google::protobuf::ServiceDescriptor*>& services,
                          std::shared_ptr<const Gateway> gateway, httplib::Server& server) {
  auto methods = std::make_shared<MethodTable>();
  for (const google::protobuf::ServiceDescriptor* service : services) {
    for (int i = 0; i < service->method_count(); ++i) {
      const MethodDescriptor* method = service->method(i);
      (*methods)[absl::StrCat("/", service->full_name(), "/", method->name())] = method;
    }
  }
  server.Post(R"(/[A-Za-z_][A-Za-z0-9_.]*/[A-Za-z_][A-Za-z0-9_]*)",
              [methods, gateway](const httplib::Request& request, httplib::Response& response) {
                // The body has arrived: a stream may now take its time.
                ConnectionGuard::RequestReceived();
                const auto found = methods->find(request.path);
                if (found == methods->end()) {
                  SendError(absl::UnimplementedError(
                                absl::StrCat("no method ", request.path,
                                             "; the API is POST /kiln.v1.<Service>/<Method>")),
                            response);
                  response.status = 404;
                  return;
                }
                const MethodDescriptor& method = *found->second;
                if (method.client_streaming() || method.server_streaming()) {
                  ServeStream(method, gateway, request, response);
                } else {
                  ServeUnary(method, *gateway, request, response);
                }
              });
}

}  // namespace kiln::server
