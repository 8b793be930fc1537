// Logger's two formats: JSON lines a collector can parse (every field, escaping, invalid
// UTF-8 replaced), text lines for people, and lines that never interleave.
#include "server/service/logger.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "absl/time/civil_time.h"
#include "nlohmann/json.hpp"

namespace kiln::server {
namespace {

using ::testing::HasSubstr;

const absl::Time kTime =
    absl::FromCivil(absl::CivilSecond(2026, 12, 2, 16, 30, 5), absl::UTCTimeZone()) +
    absl::Microseconds(123456);

LogFields AllFields() {
  LogFields fields;
  fields.tenant = "alice";
  fields.session = "s-1";
  fields.job = "job-2";
  fields.rpc = "/kiln.v1.ModelService/AddLayer";
  fields.code = "INVALID_ARGUMENT";
  fields.duration_ms = 1.25;
  return fields;
}

TEST(LoggerTest, JsonLinesCarryEveryField) {
  const Logger logger(LogFormat::kJson, [](const std::string&) {});
  const std::string line =
      logger.Format(LogLevel::kWarning, "units: must be positive", AllFields(), kTime);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const nlohmann::json parsed = nlohmann::json::parse(line);
  EXPECT_EQ(parsed["time"], "2026-12-02T16:30:05.123456Z");
  EXPECT_EQ(parsed["level"], "warning");
  EXPECT_EQ(parsed["message"], "units: must be positive");
  EXPECT_EQ(parsed["tenant"], "alice");
  EXPECT_EQ(parsed["session"], "s-1");
  EXPECT_EQ(parsed["job"], "job-2");
  EXPECT_EQ(parsed["rpc"], "/kiln.v1.ModelService/AddLayer");
  EXPECT_EQ(parsed["code"], "INVALID_ARGUMENT");
  EXPECT_DOUBLE_EQ(parsed["duration_ms"].get<double>(), 1.25);
}

TEST(LoggerTest, JsonLeavesOutEmptyFieldsAndEscapes) {
  const Logger logger(LogFormat::kJson, [](const std::string&) {});
  const std::string line =
      logger.Format(LogLevel::kInfo, "a \"quoted\"\nline \xff", LogFields{}, kTime);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const nlohmann::json parsed = nlohmann::json::parse(line);
  EXPECT_EQ(parsed.size(), 3u);  // time, level, message
  EXPECT_THAT(parsed["message"].get<std::string>(), HasSubstr("a \"quoted\"\nline "));
}

TEST(LoggerTest, TextLinesAreForPeople) {
  const Logger logger(LogFormat::kText, [](const std::string&) {});
  EXPECT_EQ(logger.Format(LogLevel::kInfo, "listening on port 5", {}, kTime),
            "kiln-server: listening on port 5");
  EXPECT_EQ(logger.Format(LogLevel::kError, "disk full", AllFields(), kTime),
            "kiln-server: error: disk full (tenant=alice session=s-1 job=job-2 "
            "rpc=/kiln.v1.ModelService/AddLayer code=INVALID_ARGUMENT 1.2 ms)");
}

TEST(LoggerTest, LinesFromManyThreadsStayWhole) {
  std::vector<std::string> lines;
  Logger logger(LogFormat::kJson, [&lines](const std::string& line) { lines.push_back(line); });
  std::vector<std::thread> threads;
  constexpr int kThreads = 4, kLines = 200;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&logger] {
      for (int i = 0; i < kLines; ++i) logger.Info("tick", AllFields());
    });
  }
  for (std::thread& thread : threads) thread.join();
  ASSERT_EQ(lines.size(), size_t{kThreads * kLines});
  for (const std::string& line : lines) EXPECT_EQ(nlohmann::json::parse(line)["message"], "tick");
}

TEST(LoggerTest, FormatsAndRpcChoicesParse) {
  EXPECT_EQ(*ParseLogFormat("json"), LogFormat::kJson);
  EXPECT_EQ(*ParseLogFormat("text"), LogFormat::kText);
  EXPECT_THAT(ParseLogFormat("yaml").status().message(),
              HasSubstr("--log_format: expected text or json, got 'yaml'"));
  EXPECT_EQ(*ParseLogRpcs("all"), LogRpcs::kAll);
  EXPECT_THAT(ParseLogRpcs("some").status().message(), HasSubstr("--log_rpcs"));
}

}  // namespace
}  // namespace kiln::server
