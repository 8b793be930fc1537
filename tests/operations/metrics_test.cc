// Metrics in Prometheus's text format: counters by label, cumulative histogram buckets with
// +Inf, _sum and _count, gauges read at scrape time, and label values escaped.
#include "server/service/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace kiln::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(MetricsTest, CountersAddUpByLabels) {
  Metrics metrics;
  metrics.DefineCounter("kiln_rpc_requests_total", "RPCs.");
  metrics.Add("kiln_rpc_requests_total", {{"method", "/a"}, {"code", "OK"}});
  metrics.Add("kiln_rpc_requests_total", {{"method", "/a"}, {"code", "OK"}});
  metrics.Add("kiln_rpc_requests_total", {{"method", "/a"}, {"code", "NOT_FOUND"}});
  const std::string text = metrics.Render();
  EXPECT_THAT(text, HasSubstr("# HELP kiln_rpc_requests_total RPCs.\n"
                              "# TYPE kiln_rpc_requests_total counter\n"));
  EXPECT_THAT(text, HasSubstr("kiln_rpc_requests_total{method=\"/a\",code=\"OK\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("kiln_rpc_requests_total{method=\"/a\",code=\"NOT_FOUND\"} 1\n"));
}

TEST(MetricsTest, HistogramBucketsAreCumulative) {
  Metrics metrics;
  metrics.DefineHistogram("latency_seconds", "Latency.", {0.1, 1});
  for (double v : {0.05, 0.1, 0.5, 2.0}) metrics.Observe("latency_seconds", {{"m", "x"}}, v);
  const std::string text = metrics.Render();
  EXPECT_THAT(text, HasSubstr("# TYPE latency_seconds histogram\n"));
  EXPECT_THAT(text, HasSubstr("latency_seconds_bucket{m=\"x\",le=\"0.1\"} 2\n"
                              "latency_seconds_bucket{m=\"x\",le=\"1\"} 3\n"
                              "latency_seconds_bucket{m=\"x\",le=\"+Inf\"} 4\n"
                              "latency_seconds_sum{m=\"x\"} 2.65\n"
                              "latency_seconds_count{m=\"x\"} 4\n"));
}

TEST(MetricsTest, GaugesAreReadWhenScraped) {
  Metrics metrics;
  int sessions = 1;
  metrics.DefineGauge("kiln_sessions", "Sessions.", [&sessions] {
    return std::vector<std::pair<Metrics::Labels, double>>{{{}, double(sessions)}};
  });
  EXPECT_THAT(metrics.Render(), HasSubstr("\nkiln_sessions 1\n"));
  sessions = 3;
  EXPECT_THAT(metrics.Render(), HasSubstr("\nkiln_sessions 3\n"));
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  Metrics metrics;
  metrics.DefineCounter("c", "C.");
  metrics.Add("c", {{"v", "a\"b\\c\nd"}}, 0.5);
  EXPECT_THAT(metrics.Render(), HasSubstr("c{v=\"a\\\"b\\\\c\\nd\"} 0.5\n"));
}

TEST(MetricsTest, FamiliesPrintSortedWithTheirHelpEvenWhenEmpty) {
  Metrics metrics;
  metrics.DefineCounter("b_total", "B.");
  metrics.DefineCounter("a_total", "A.");
  const std::string text = metrics.Render();
  EXPECT_LT(text.find("# HELP a_total"), text.find("# HELP b_total"));
  EXPECT_THAT(text, Not(HasSubstr("\na_total ")));
}

}  // namespace
}  // namespace kiln::server
