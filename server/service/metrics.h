// Metrics: what kiln-server counts, in Prometheus's text exposition format (version 0.0.4).
// Counters and histograms are recorded as things happen; gauges are read from their owners
// when scraped, so that they can never drift from what they measure. A family is defined once
// (name, help, type, and a histogram's buckets); recording into a family that was not defined,
// or with the wrong type, is a programming error and aborts in debug builds, does nothing in
// release. Thread-safe.
#ifndef KILN_SERVER_SERVICE_METRICS_H_
#define KILN_SERVER_SERVICE_METRICS_H_

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace kiln::server {

class Metrics {
 public:
  // Label names and values, in the order they print.
  using Labels = std::vector<std::pair<std::string, std::string>>;
  // A gauge's samples at the moment of the scrape.
  using GaugeReader = std::function<std::vector<std::pair<Labels, double>>()>;

  // Latency buckets in seconds, 100 us to 60 s.
  static const std::vector<double>& LatencyBuckets();

  void DefineCounter(std::string name, std::string help);
  void DefineHistogram(std::string name, std::string help, std::vector<double> buckets);
  void DefineGauge(std::string name, std::string help, GaugeReader read);

  void Add(absl::string_view counter, const Labels& labels, double value = 1);
  void Observe(absl::string_view histogram, const Labels& labels, double value);

  // Every family, sorted by name; label values escaped as the format requires.
  std::string Render() const;

 private:
  enum class Type { kCounter, kHistogram, kGauge };
  struct Histogram {
    std::vector<uint64_t> counts;  // per bucket, not cumulative; the last one is +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  struct Family {
    Type type;
    std::string help;
    std::vector<double> buckets;
    std::map<Labels, double> counters;
    std::map<Labels, Histogram> histograms;
    GaugeReader read;
  };
  Family* Find(absl::string_view name, Type type) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, Family, std::less<>> families_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kiln::server

#endif  // KILN_SERVER_SERVICE_METRICS_H_
