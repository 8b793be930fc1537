#include "server/service/logger.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace kiln::server {
namespace {

constexpr absl::string_view kLevelNames[] = {"info", "warning", "error"};

}  // namespace

absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view text) {
  if (text == "text") return LogFormat::kText;
  if (text == "json") return LogFormat::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("--log_format: expected text or json, got '", text, "'"));
}

absl::StatusOr<LogRpcs> ParseLogRpcs(absl::string_view text) {
  if (text == "none") return LogRpcs::kNone;
  if (text == "errors") return LogRpcs::kErrors;
  if (text == "all") return LogRpcs::kAll;
  return absl::InvalidArgumentError(
      absl::StrCat("--log_rpcs: expected none, errors or all, got '", text, "'"));
}

Logger::Logger(LogFormat format, std::function<void(const std::string&)> sink)
    : format_(format), sink_(std::move(sink)) {
  if (!sink_) {
    sink_ = [](const std::string& line) {
      std::fprintf(stderr, "%s\n", line.c_str());
      std::fflush(stderr);
    };
  }
}

std::string Logger::Format(LogLevel level, absl::string_view message, const LogFields& fields,
                           absl::Time time) const {
  const std::pair<absl::string_view, const std::string*> named[] = {{"tenant", &fields.tenant},
                                                                    {"session", &fields.session},
                                                                    {"job", &fields.job},
                                                                    {"rpc", &fields.rpc},
                                                                    {"code", &fields.code}};
  if (format_ == LogFormat::kJson) {
    nlohmann::ordered_json line;
    line["time"] = absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", time, absl::UTCTimeZone());
    line["level"] = kLevelNames[static_cast<int>(level)];
    line["message"] = std::string(message);
    for (const auto& [name, value] : named) {
      if (!value->empty()) line[std::string(name)] = *value;
    }
    // Microseconds are what a duration here can tell apart.
    if (fields.duration_ms) line["duration_ms"] = std::round(*fields.duration_ms * 1e3) / 1e3;
    // Invalid UTF-8 (a client's bytes) is replaced, never a reason to lose the line.
    return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  std::string text = absl::StrCat(
      "kiln-server: ", level == LogLevel::kInfo ? "" : kLevelNames[static_cast<int>(level)],
      level == LogLevel::kInfo ? "" : ": ", message);
  std::string context;
  for (const auto& [name, value] : named) {
    if (!value->empty()) absl::StrAppend(&context, context.empty() ? "" : " ", name, "=", *value);
  }
  if (fields.duration_ms) {
    absl::StrAppend(&context, context.empty() ? "" : " ",
                    absl::StrFormat("%.1f ms", *fields.duration_ms));
  }
  if (!context.empty()) absl::StrAppend(&text, " (", context, ")");
  return text;
}

void Logger::Log(LogLevel level, absl::string_view message, const LogFields& fields) {
  const std::string line = Format(level, message, fields, absl::Now());
  absl::MutexLock lock(&mu_);
  sink_(line);
}

}  // namespace kiln::server
