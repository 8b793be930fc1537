#include "server/http/connect_protocol.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/util/json_util.h>

#include <array>
#include <memory>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/rpc/status.pb.h"

namespace kiln::server::connect {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::Message;
using google::protobuf::MessageFactory;

struct CodeInfo {
  const char* name;
  int http_status;
};

// Indexed by google.rpc.Code; Connect's table of names and HTTP statuses.
constexpr std::array<CodeInfo, 17> kCodes = {{
    {"ok", 200},
    {"canceled", 499},
    {"unknown", 500},
    {"invalid_argument", 400},
    {"deadline_exceeded", 504},
    {"not_found", 404},
    {"already_exists", 409},
    {"permission_denied", 403},
    {"resource_exhausted", 429},
    {"failed_precondition", 400},
    {"aborted", 409},
    {"out_of_range", 400},
    {"unimplemented", 501},
    {"internal", 500},
    {"unavailable", 503},
    {"data_loss", 500},
    {"unauthenticated", 401},
}};

const CodeInfo& InfoOf(int code) {
  return code >= 0 && code < static_cast<int>(kCodes.size()) ? kCodes[code] : kCodes[2];
}

std::unique_ptr<Message> NewMessage(const Descriptor& type) {
  const Message* prototype = MessageFactory::generated_factory()->GetPrototype(&type);
  return std::unique_ptr<Message>(prototype->New());
}

nlohmann::json DetailJson(const google::protobuf::Any& any) {
  nlohmann::json detail;
  const absl::string_view type_name =
      absl::string_view(any.type_url()).substr(any.type_url().rfind('/') + 1);
  detail["type"] = std::string(type_name);
  // Connect writes base64 without padding.
  std::string value = absl::Base64Escape(any.value());
  while (!value.empty() && value.back() == '=') value.pop_back();
  detail["value"] = std::move(value);
  if (const Descriptor* type =
          DescriptorPool::generated_pool()->FindMessageTypeByName(std::string(type_name))) {
    std::unique_ptr<Message> message = NewMessage(*type);
    std::string json;
    if (message->ParseFromString(any.value()) &&
        google::protobuf::util::MessageToJsonString(*message, &json).ok()) {
      detail["debug"] = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
    }
  }
  return detail;
}

nlohmann::json ErrorObject(const BridgeResult& result) {
  nlohmann::json error;
  error["code"] = CodeName(result.code);
  if (!result.message.empty()) error["message"] = result.message;
  google::rpc::Status status;
  if (!result.details.empty() && status.ParseFromString(result.details) &&
      status.details_size() > 0) {
    nlohmann::json details = nlohmann::json::array();
    for (const google::protobuf::Any& any : status.details()) details.push_back(DetailJson(any));
    error["details"] = std::move(details);
  }
  return error;
}

// The media type of a Content-Type, lowercase, without parameters.
std::string MediaType(absl::string_view content_type) {
  const std::string type(
      absl::StripAsciiWhitespace(content_type.substr(0, content_type.find(';'))));
  return absl::AsciiStrToLower(type);
}

}  // namespace

std::string CodeName(int code) { return InfoOf(code).name; }
int HttpStatus(int code) { return InfoOf(code).http_status; }

namespace {

// Messages may quote what a client sent, which need not be UTF-8: such bytes become U+FFFD
// rather than an exception.
std::string Dump(const nlohmann::json& json) {
  return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::string ErrorJson(const BridgeResult& result) { return Dump(ErrorObject(result)); }

std::string EndOfStreamJson(const BridgeResult& result) {
  nlohmann::json end = nlohmann::json::object();
  if (result.code != 0) end["error"] = ErrorObject(result);
  return Dump(end);
}

std::optional<Codec> UnaryCodec(absl::string_view content_type) {
  const std::string type = MediaType(content_type);
  if (type == "application/json") return Codec::kJson;
  if (type == "application/proto") return Codec::kProto;
  return std::nullopt;
}

std::optional<Codec> StreamCodec(absl::string_view content_type) {
  const std::string type = MediaType(content_type);
  if (type == "application/connect+json") return Codec::kJson;
  if (type == "application/connect+proto") return Codec::kProto;
  return std::nullopt;
}

std::string UnaryContentType(Codec codec) {
  return codec == Codec::kJson ? "application/json" : "application/proto";
}
std::string StreamContentType(Codec codec) {
  return codec == Codec::kJson ? "application/connect+json" : "application/connect+proto";
}

std::string EncodeEnvelope(uint8_t flags, absl::string_view payload) {
  std::string envelope(5, '\0');
  envelope[0] = static_cast<char>(flags);
  const uint32_t size = static_cast<uint32_t>(payload.size());
  for (int i = 0; i < 4; ++i) envelope[1 + i] = static_cast<char>((size >> (24 - 8 * i)) & 0xff);
  envelope.append(payload.data(), payload.size());
  return envelope;
}

absl::StatusOr<std::vector<Envelope>> DecodeEnvelopes(absl::string_view body) {
  std::vector<Envelope> envelopes;
  size_t at = 0;
  while (at < body.size()) {
    if (body.size() - at < 5) {
      return absl::InvalidArgumentError(
          absl::StrCat("the request stream ends inside an envelope's header at byte ", at));
    }
    const uint8_t flags = static_cast<uint8_t>(body[at]);
    uint32_t size = 0;
    for (int i = 1; i <= 4; ++i) size = (size << 8) | static_cast<uint8_t>(body[at + i]);
    if (body.size() - at - 5 < size) {
      return absl::InvalidArgumentError(absl::StrCat("the envelope at byte ", at, " says ", size,
                                                     " bytes follow; the stream ends before"));
    }
    if (flags & kCompressed) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the envelope at byte ", at, " is compressed; Kiln negotiates no compression"));
    }
    if (flags & kEndOfStream) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the envelope at byte ", at, " is an end-of-stream, which only servers send"));
    }
    envelopes.push_back({flags, std::string(body.substr(at + 5, size))});
    at += 5 + size;
  }
  return envelopes;
}

absl::StatusOr<std::string> ToBinary(const Descriptor& type, Codec codec, absl::string_view body) {
  std::unique_ptr<Message> message = NewMessage(type);
  if (codec == Codec::kProto) {
    if (!message->ParseFromArray(body.data(), static_cast<int>(body.size()))) {
      return absl::InvalidArgumentError(
          absl::StrCat("the body is not a binary ", type.full_name(), " message"));
    }
    return std::string(body);
  }
  if (!absl::StripAsciiWhitespace(body).empty()) {
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = false;
    const google::protobuf::util::Status parsed =
        google::protobuf::util::JsonStringToMessage(std::string(body), message.get(), options);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("the body is not a JSON ", type.full_name(),
                                                     ": ", parsed.message().ToString()));
    }
  }
  return message->SerializeAsString();
}

absl::StatusOr<std::string> FromBinary(const Descriptor& type, Codec codec,
                                       const std::string& binary) {
  if (codec == Codec::kProto) return binary;
  std::unique_ptr<Message> message = NewMessage(type);
  if (!message->ParseFromString(binary)) {
    return absl::InternalError(absl::StrCat("the server sent a malformed ", type.full_name()));
  }
  std::string json;
  const google::protobuf::util::Status printed =
      google::protobuf::util::MessageToJsonString(*message, &json);
  if (!printed.ok()) return absl::InternalError(printed.message().ToString());
  return json;
}

}  // namespace kiln::server::connect
