#include "server/service/metrics.h"

#include <cassert>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

namespace kiln::server {
namespace {

std::string Number(double value) {
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (std::isnan(value)) return "NaN";
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  return absl::StrFormat("%.9g", value);
}

std::string LabelText(const Metrics::Labels& labels, absl::string_view extra_name = "",
                      absl::string_view extra_value = "") {
  std::vector<std::string> parts;
  auto add = [&parts](absl::string_view name, absl::string_view value) {
    parts.push_back(absl::StrCat(
        name, "=\"", absl::StrReplaceAll(value, {{"\\", "\\\\"}, {"\"", "\\\""}, {"\n", "\\n"}}),
        "\""));
  };
  for (const auto& [name, value] : labels) add(name, value);
  if (!extra_name.empty()) add(extra_name, extra_value);
  return parts.empty() ? "" : absl::StrCat("{", absl::StrJoin(parts, ","), "}");
}

}  // namespace

const std::vector<double>& Metrics::LatencyBuckets() {
  static const std::vector<double>* buckets =
      new std::vector<double>{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                              0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30,    60};
  return *buckets;
}

void Metrics::DefineCounter(std::string name, std::string help) {
  absl::MutexLock lock(&mu_);
  families_[std::move(name)] = Family{Type::kCounter, std::move(help), {}, {}, {}, nullptr};
}

void Metrics::DefineHistogram(std::string name, std::string help, std::vector<double> buckets) {
  absl::MutexLock lock(&mu_);
  families_[std::move(name)] =
      Family{Type::kHistogram, std::move(help), std::move(buckets), {}, {}, nullptr};
}

void Metrics::DefineGauge(std::string name, std::string help, GaugeReader read) {
  absl::MutexLock lock(&mu_);
  families_[std::move(name)] = Family{Type::kGauge, std::move(help), {}, {}, {}, std::move(read)};
}

Metrics::Family* Metrics::Find(absl::string_view name, Type type) {
  auto it = families_.find(name);
  assert(it != families_.end() && it->second.type == type);
  if (it == families_.end() || it->second.type != type) return nullptr;
  return &it->second;
}

void Metrics::Add(absl::string_view counter, const Labels& labels, double value) {
  absl::MutexLock lock(&mu_);
  if (Family* family = Find(counter, Type::kCounter)) family->counters[labels] += value;
}

void Metrics::Observe(absl::string_view histogram, const Labels& labels, double value) {
  absl::MutexLock lock(&mu_);
  Family* family = Find(histogram, Type::kHistogram);
  if (family == nullptr) return;
  Histogram& h = family->histograms[labels];
  h.counts.resize(family->buckets.size() + 1);
  size_t bucket = 0;
  while (bucket < family->buckets.size() && value > family->buckets[bucket]) ++bucket;
  ++h.counts[bucket];
  h.sum += value;
  ++h.count;
}

std::string Metrics::Render() const {
  // Gauges are read outside the lock: their readers take their owners' locks.
  std::map<std::string, GaugeReader> readers;
  std::string out;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, family] : families_) {
      if (family.type == Type::kGauge) readers[name] = family.read;
    }
  }
  std::map<std::string, std::vector<std::pair<Labels, double>>> gauges;
  for (const auto& [name, read] : readers) gauges[name] = read();

  absl::MutexLock lock(&mu_);
  for (const auto& [name, family] : families_) {
    static constexpr absl::string_view kTypes[] = {"counter", "histogram", "gauge"};
    absl::StrAppend(&out, "# HELP ", name, " ", family.help, "\n# TYPE ", name, " ",
                    kTypes[static_cast<int>(family.type)], "\n");
    switch (family.type) {
      case Type::kCounter:
        for (const auto& [labels, value] : family.counters) {
          absl::StrAppend(&out, name, LabelText(labels), " ", Number(value), "\n");
        }
        break;
      case Type::kGauge:
        for (const auto& [labels, value] : gauges[name]) {
          absl::StrAppend(&out, name, LabelText(labels), " ", Number(value), "\n");
        }
        break;
      case Type::kHistogram:
        for (const auto& [labels, h] : family.histograms) {
          uint64_t cumulative = 0;
          for (size_t i = 0; i <= family.buckets.size(); ++i) {
            cumulative += h.counts[i];
            const std::string le =
                i < family.buckets.size() ? Number(family.buckets[i]) : std::string("+Inf");
            absl::StrAppend(&out, name, "_bucket", LabelText(labels, "le", le), " ", cumulative,
                            "\n");
          }
          absl::StrAppend(&out, name, "_sum", LabelText(labels), " ", Number(h.sum), "\n", name,
                          "_count", LabelText(labels), " ", h.count, "\n");
        }
        break;
    }
  }
  return out;
}

}  // namespace kiln::server
