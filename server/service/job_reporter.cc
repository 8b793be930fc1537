#include "server/service/job_reporter.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/base/status.h"
#include "core/keras/spec_args.h"
#include "server/service/logs.h"

namespace kiln::server {

absl::StatusOr<CheckpointPolicy> CheckpointPolicy::FromConfig(const v1::FitConfig& config) {
  const SpecArgs args(config, "");
  KILN_RETURN_IF_ERROR(args.Validate());
  CheckpointPolicy policy;
  policy.every_batches = args.Int("checkpoint_every_batches");
  policy.every = absl::Seconds(args.Float("checkpoint_every_seconds"));
  policy.keep = args.Int("keep_checkpoints");
  return policy;
}

JobReporter::JobReporter(std::shared_ptr<Job> job, int64_t batches_done, CheckpointPolicy policy,
                         SaveFn save, bool resumed, SamplesFn trained_samples)
    : job_(std::move(job)),
      policy_(policy),
      save_(std::move(save)),
      skip_start_checkpoint_(resumed),
      batches_done_(batches_done),
      batches_at_checkpoint_(batches_done),
      trained_samples_(std::move(trained_samples)) {}

void JobReporter::Report(v1::JobEvent event) {
  // A storage error is kept by the job, and StopRequested ends the run on it.
  job_->Append(std::move(event)).IgnoreError();
}

void JobReporter::OnTrainBegin(const FitInfo& info) {
  steps_ = info.steps_per_epoch;
  batch_size_ = info.batch_size;
  train_samples_ = info.train_samples;
  v1::JobEvent e;
  v1::TrainBegin* b = e.mutable_train_begin();
  b->set_initial_epoch(info.initial_epoch);
  b->set_epochs(info.epochs);
  b->set_batch_size(info.batch_size);
  b->set_steps_per_epoch(info.steps_per_epoch);
  b->set_samples(info.train_samples);
  b->set_validation_samples(info.validation_samples);
  Report(std::move(e));
}

void JobReporter::OnEpochBegin(int epoch) {
  epoch_start_ = absl::Now();
  v1::JobEvent e;
  e.mutable_epoch_begin()->set_epoch(epoch);
  Report(std::move(e));
}

void JobReporter::OnTrainBatchEnd(int epoch, int64_t batch, const Logs& logs,
                                  double samples_per_second) {
  ++trained_;
  if (trained_samples_) {
    // An epoch's last batch holds what is left of the samples.
    trained_samples_(
        std::max<int64_t>(0, std::min<int64_t>(batch_size_, train_samples_ - batch * batch_size_)));
  }
  BatchDone(epoch, batch, steps_, logs, samples_per_second);
}

void JobReporter::OnTestBatchEnd(int64_t batch, int64_t steps, const Logs& logs,
                                 double samples_per_second) {
  if (job_->kind() == v1::EVALUATE) BatchDone(0, batch, steps, logs, samples_per_second);
}

void JobReporter::OnPredictBatchEnd(int64_t batch, int64_t steps, double samples_per_second) {
  BatchDone(0, batch, steps, {}, samples_per_second);
}

void JobReporter::OnEpochEnd(int epoch, const Logs& logs) {
  v1::JobEvent e;
  v1::EpochEnd* end = e.mutable_epoch_end();
  end->set_epoch(epoch);
  *end->mutable_logs() = ToMetrics(logs);
  end->set_seconds(absl::ToDoubleSeconds(absl::Now() - epoch_start_));
  Report(std::move(e));
}

bool JobReporter::StopRequested() {
  return job_->cancel_requested() || !job_->storage_error().ok();
}

bool JobReporter::CheckpointDue(CheckpointPoint point, int, int64_t) {
  if (save_ == nullptr || !job_->storage_error().ok()) return false;
  switch (point) {
    case CheckpointPoint::kStart:
      due_reason_ = "start";
      return !skip_start_checkpoint_;  // a resumed fit starts from the checkpoint it resumes
    case CheckpointPoint::kEpochEnd:
      due_reason_ = "epoch_end";
      return true;
    case CheckpointPoint::kStop:
      due_reason_ = job_->interrupted() ? "shutdown" : "cancel";
      return true;
    case CheckpointPoint::kBatch:
      if (policy_.every_batches > 0 &&
          batches_done_ - batches_at_checkpoint_ >= policy_.every_batches) {
        due_reason_ = "batches";
        return true;
      }
      if (policy_.every > absl::ZeroDuration() && absl::Now() - last_checkpoint_ >= policy_.every) {
        due_reason_ = "seconds";
        return true;
      }
      return false;
  }
  return false;
}

absl::Status JobReporter::SaveCheckpoint(CheckpointPoint, const FitState& state) {
  batches_at_checkpoint_ = batches_done_;
  last_checkpoint_ = absl::Now();
  return save_(due_reason_, state);
}

void JobReporter::BatchDone(int epoch, int64_t batch, int64_t steps, const Logs& logs,
                            double samples_per_second) {
  job_->SetProgress(epoch, batch + 1, ++batches_done_);
  const absl::Time now = absl::Now();
  if (batch + 1 < steps && now - last_batch_event_ < absl::Milliseconds(100)) return;
  last_batch_event_ = now;
  v1::JobEvent e;
  v1::BatchEnd* b = e.mutable_batch_end();
  b->set_epoch(epoch);
  b->set_batch(batch);
  b->set_steps(steps);
  *b->mutable_logs() = ToMetrics(logs);
  b->set_samples_per_second(samples_per_second);
  Report(std::move(e));
}

}  // namespace kiln::server
