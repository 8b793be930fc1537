// The metric families the service records as things happen (the RPC families are
// RpcObserver's, the gauges KilnServer's): named once here, defined by DefineServiceMetrics.
#ifndef KILN_SERVER_SERVICE_SERVICE_METRICS_H_
#define KILN_SERVER_SERVICE_SERVICE_METRICS_H_

#include "server/service/metrics.h"

namespace kiln::server {

// Samples trained, all fits together; rate() of it is the training throughput.
inline constexpr char kTrainingSamples[] = "kiln_training_samples_total";
// Time to write one checkpoint (weights, optimizer state, shuffle order) to the store.
inline constexpr char kCheckpointSeconds[] = "kiln_checkpoint_duration_seconds";
// Jobs that ended, by kind and final state.
inline constexpr char kJobsFinished[] = "kiln_jobs_finished_total";

inline void DefineServiceMetrics(Metrics& metrics) {
  metrics.DefineCounter(kTrainingSamples, "Samples trained by fits, all jobs together.");
  metrics.DefineHistogram(kCheckpointSeconds, "Time to store one checkpoint of a fit.",
                          Metrics::LatencyBuckets());
  metrics.DefineCounter(kJobsFinished, "Jobs that ended, by kind and final state.");
}

}  // namespace kiln::server

#endif  // KILN_SERVER_SERVICE_SERVICE_METRICS_H_
