// Keras-style progress for the jobs the CLI follows. A fit, on a terminal, gets a live bar per
// epoch
//   Epoch 2/5
//    412/938 [========>.....................] - ETA: 12s - loss: 0.4731 - accuracy: 0.8302
// redrawn in place; when the output is piped, one plain line per epoch (Keras's verbose=2):
//   938/938 - 22s - 23ms/step - loss: 0.4731 - accuracy: 0.8302 - val_loss: ...
// and, so that a long epoch is not silent, a line at least every `interval` in between:
//   412/938 - ETA: 12s - loss: 0.4731 - accuracy: 0.8302
// Evaluate and predict jobs get one such bar (or line) for the whole run.
#ifndef KILN_CLIENT_CLI_PROGRESS_H_
#define KILN_CLIENT_CLI_PROGRESS_H_

#include <cstdio>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "kiln/v1/jobs.pb.h"

namespace kiln::cli {

class JobProgress {
 public:
  // `job`: the job as GetJob or Start* returned it, so that a watch that starts mid-job knows
  // the job's kind, epochs and steps. `interval`: how often a line is printed, at least, when
  // not `interactive`.
  JobProgress(std::FILE* out, bool interactive, const v1::Job& job, absl::Duration interval);
  void OnEvent(const v1::JobEvent& event);

 private:
  void DrawBar(int64_t done, int64_t steps,
               const google::protobuf::RepeatedPtrField<v1::Metric>& logs, double seconds,
               bool final);
  // A plain line for a batch, when `interval` has passed since the last line.
  void MaybeHeartbeat(const v1::BatchEnd& batch, double now);

  std::FILE* out_;
  bool interactive_;
  bool fit_;
  int epochs_ = 0;
  int64_t steps_ = 0;
  double start_ = 0;  // of the epoch (fit) or of the run (evaluate, predict), in seconds
  size_t last_width_ = 0;
  double interval_;       // seconds
  double last_line_ = 0;  // when the last plain line was printed, in seconds
};

// Says that a job waits in the queue, if it has not started a second after it was submitted:
// most jobs start at once, and only a real wait is worth a line.
class QueuedNotice {
 public:
  QueuedNotice(std::FILE* out, const v1::Job& job);
  ~QueuedNotice();
  // Call on each of the job's events: any event means it is no longer waiting.
  void OnEvent();

 private:
  absl::Notification started_;
  std::thread thread_;
};

// "queued", "running", "succeeded", ...
std::string StateName(v1::JobState state);

// " - loss: 0.4731 - accuracy: 0.8302"
std::string FormatLogs(const google::protobuf::RepeatedPtrField<v1::Metric>& logs);

}  // namespace kiln::cli

#endif  // KILN_CLIENT_CLI_PROGRESS_H_
