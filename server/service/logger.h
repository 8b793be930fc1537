// Logger: kiln-server's log, one line per event, to one stream. As text for people
// ("kiln-server: message (tenant=alice session=... rpc=... code=... 1.2 ms)") or, with
// --log_format=json, as one JSON object per line for log collectors: time (UTC, RFC 3339 with
// microseconds), level, message, and whichever of tenant, session, job, rpc, code and
// duration_ms the event has. Lines from several threads never interleave. Tokens never reach
// it: callers log tenants, never credentials.
#ifndef KILN_SERVER_SERVICE_LOGGER_H_
#define KILN_SERVER_SERVICE_LOGGER_H_

#include <cstdio>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace kiln::server {

enum class LogFormat { kText, kJson };
// "text" or "json"; INVALID_ARGUMENT naming --log_format otherwise.
absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view text);

// Which RPCs get a log line: none, those that end with an error, or all.
enum class LogRpcs { kNone, kErrors, kAll };
// "none", "errors" or "all"; INVALID_ARGUMENT naming --log_rpcs otherwise.
absl::StatusOr<LogRpcs> ParseLogRpcs(absl::string_view text);

enum class LogLevel { kInfo, kWarning, kError };

// What an event is about; empty fields are left out.
struct LogFields {
  std::string tenant;
  std::string session;
  std::string job;
  std::string rpc;
  std::string code;
  std::optional<double> duration_ms;
};

class Logger {
 public:
  // `sink` receives each line without its newline; null: stderr.
  explicit Logger(LogFormat format, std::function<void(const std::string&)> sink = nullptr);

  void Log(LogLevel level, absl::string_view message, const LogFields& fields = {});
  void Info(absl::string_view message, const LogFields& fields = {}) {
    Log(LogLevel::kInfo, message, fields);
  }
  void Warning(absl::string_view message, const LogFields& fields = {}) {
    Log(LogLevel::kWarning, message, fields);
  }
  void Error(absl::string_view message, const LogFields& fields = {}) {
    Log(LogLevel::kError, message, fields);
  }

  // The line for an event at `time`, as Log writes it.
  std::string Format(LogLevel level, absl::string_view message, const LogFields& fields,
                     absl::Time time) const;
  LogFormat format() const { return format_; }

 private:
  const LogFormat format_;
  std::function<void(const std::string&)> sink_;
  absl::Mutex mu_;  // one line at a time
};

}  // namespace kiln::server

#endif  // KILN_SERVER_SERVICE_LOGGER_H_
