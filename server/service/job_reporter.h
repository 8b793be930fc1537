// JobReporter: a job's TrainingCallback. It turns the trainer's callbacks into the job's
// events - batch ends at most every 100 ms (always for an epoch's or a run's last batch), so
// small fast batches do not flood watchers - stops the job when it is cancelled or its events
// cannot be stored, and for a fit decides when to checkpoint.
#ifndef KILN_SERVER_SERVICE_JOB_REPORTER_H_
#define KILN_SERVER_SERVICE_JOB_REPORTER_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "core/train/trainer.h"
#include "kiln/v1/training.pb.h"
#include "server/service/job.h"

namespace kiln::server {

// When a fit checkpoints (FitConfig's fields, with Kiln's defaults): at its start, at every
// epoch end, when it stops early, and between batches after every `every_batches` batches
// and `every` of time.
// When a fit saves checkpoints and how many it keeps: FitConfig's checkpoint fields, with the
// defaults that their options state.
struct CheckpointPolicy {
  int64_t every_batches = 0;  // 0: not by count
  absl::Duration every;       // zero: not by time
  int keep = 1;               // the newest kept
  // INVALID_ARGUMENT at config.<field> for values out of range.
  static absl::StatusOr<CheckpointPolicy> FromConfig(const v1::FitConfig& config);
};

class JobReporter : public TrainingCallback {
 public:
  // Saves a checkpoint of `state`; `reason` as Checkpoint.reason says.
  using SaveFn = std::function<absl::Status(const std::string& reason, const FitState& state)>;
  // Told the samples of each training batch, as it ends.
  using SamplesFn = std::function<void(int64_t samples)>;

  // `batches_done`: of the job before this run (a resumed fit). With `save`, a fit's
  // checkpoints follow `policy`; `resumed` says the fit starts from a checkpoint, which is
  // then not saved again.
  JobReporter(std::shared_ptr<Job> job, int64_t batches_done = 0, CheckpointPolicy policy = {},
              SaveFn save = nullptr, bool resumed = false, SamplesFn trained_samples = nullptr);

  // Batches trained by this run.
  int64_t trained() const { return trained_; }

  void OnTrainBegin(const FitInfo& info) override;
  void OnEpochBegin(int epoch) override;
  void OnTrainBatchEnd(int epoch, int64_t batch, const Logs& logs,
                       double samples_per_second) override;
  // A fit's validation batches are not reported: its epoch end carries their results.
  void OnTestBatchEnd(int64_t batch, int64_t steps, const Logs& logs,
                      double samples_per_second) override;
  void OnPredictBatchEnd(int64_t batch, int64_t steps, double samples_per_second) override;
  void OnEpochEnd(int epoch, const Logs& logs) override;
  bool StopRequested() override;
  bool CheckpointDue(CheckpointPoint point, int epoch, int64_t step) override;
  absl::Status SaveCheckpoint(CheckpointPoint point, const FitState& state) override;

 private:
  void Report(v1::JobEvent event);
  void BatchDone(int epoch, int64_t batch, int64_t steps, const Logs& logs,
                 double samples_per_second);

  std::shared_ptr<Job> job_;
  const CheckpointPolicy policy_;
  const SaveFn save_;
  bool skip_start_checkpoint_;
  int64_t steps_ = 0, batches_done_ = 0, trained_ = 0;
  int64_t batches_at_checkpoint_ = 0;
  std::string due_reason_;
  absl::Time epoch_start_, last_batch_event_ = absl::InfinitePast();
  absl::Time last_checkpoint_ = absl::Now();
  const SamplesFn trained_samples_;
  int64_t batch_size_ = 0, train_samples_ = 0;
};

}  // namespace kiln::server

#endif  // KILN_SERVER_SERVICE_JOB_REPORTER_H_
