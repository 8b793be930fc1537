#include "server/service/job.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/base/status.h"
#include "google/protobuf/util/time_util.h"

namespace kiln::server {

namespace {

google::protobuf::Timestamp Now() {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(absl::Now()));
}

google::rpc::Status ToRpcStatus(const absl::Status& status) {
  google::rpc::Status out;
  out.set_code(static_cast<int>(status.code()));
  out.set_message(std::string(status.message()));
  return out;
}

}  // namespace

bool IsTerminal(v1::JobState state) {
  return state == v1::SUCCEEDED || state == v1::FAILED || state == v1::CANCELLED ||
         state == v1::INTERRUPTED;
}

Job::Job(v1::Job plan, EventSink sink)
    : id_(plan.id()), session_id_(plan.session_id()), kind_(plan.kind()), sink_(std::move(sink)) {
  snapshot_ = std::move(plan);
  snapshot_.set_state(v1::QUEUED);
  if (!snapshot_.has_created()) *snapshot_.mutable_created() = Now();
}

std::shared_ptr<Job> Job::Restore(v1::Job plan, const std::vector<v1::JobEvent>& events,
                                  EventSink sink) {
  auto job = std::make_shared<Job>(std::move(plan), std::move(sink));
  absl::MutexLock lock(&job->mu_);
  for (const v1::JobEvent& event : events) job->Apply(event);
  return job;
}

v1::Job Job::Snapshot() const {
  absl::MutexLock lock(&mu_);
  return snapshot_;
}

v1::JobState Job::state() const {
  absl::MutexLock lock(&mu_);
  return snapshot_.state();
}

bool Job::finished() const { return IsTerminal(state()); }

int64_t Job::last_sequence() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(events_.size());
}

std::optional<v1::JobEvent> Job::EventAt(int64_t sequence) const {
  absl::MutexLock lock(&mu_);
  if (sequence < 1 || sequence > static_cast<int64_t>(events_.size())) return std::nullopt;
  return events_[sequence - 1];
}

absl::Status Job::storage_error() const {
  absl::MutexLock lock(&mu_);
  return storage_error_;
}

bool Job::Accept(v1::JobEvent& event) const {
  const bool ended = !events_.empty() && events_.back().has_finished();
  if (ended && !event.has_resumed()) return false;
  if (!ended && event.has_resumed()) return false;
  if (event.has_state_changed()) {
    const v1::JobState from = snapshot_.state(), to = event.state_changed().state();
    // A repeated cancel says nothing new; a job cancelled while it was being started stays
    // CANCELLING rather than appearing to run again.
    if (to == from || (from == v1::CANCELLING && to == v1::RUNNING)) return false;
  }
  event.set_job_id(id_);
  event.set_sequence(static_cast<int64_t>(events_.size()) + 1);
  *event.mutable_time() = Now();
  return true;
}

void Job::Apply(v1::JobEvent event) {
  switch (event.event_case()) {
    case v1::JobEvent::kStateChanged: {
      const v1::JobState to = event.state_changed().state();
      snapshot_.set_state(to);
      if (to == v1::RUNNING) *snapshot_.mutable_started() = event.time();
      break;
    }
    case v1::JobEvent::kTrainBegin:
      initial_epoch_ = event.train_begin().initial_epoch();
      snapshot_.set_epochs(event.train_begin().epochs());
      snapshot_.set_steps_per_epoch(event.train_begin().steps_per_epoch());
      break;
    case v1::JobEvent::kEpochBegin:
      snapshot_.set_epoch(event.epoch_begin().epoch());
      snapshot_.set_batch(0);
      break;
    case v1::JobEvent::kBatchEnd:
      *snapshot_.mutable_logs() = event.batch_end().logs();
      snapshot_.set_batch(event.batch_end().batch() + 1);
      if (kind_ != v1::FIT) snapshot_.set_steps_per_epoch(event.batch_end().steps());
      // The log has a batch's position, not the running count SetProgress keeps; a job read
      // back after a crash (INTERRUPTED) reports the batches its log saw done.
      if (kind_ == v1::FIT) {
        snapshot_.set_batches_done(
            std::max(snapshot_.batches_done(),
                     (event.batch_end().epoch() - initial_epoch_) * event.batch_end().steps() +
                         event.batch_end().batch() + 1));
      }
      break;
    case v1::JobEvent::kEpochEnd: {
      *snapshot_.mutable_logs() = event.epoch_end().logs();
      v1::EpochLogs* h = snapshot_.add_history();
      h->set_epoch(event.epoch_end().epoch());
      *h->mutable_logs() = event.epoch_end().logs();
      break;
    }
    case v1::JobEvent::kFinished: {
      const v1::Finished& f = event.finished();
      snapshot_.set_state(f.state());
      *snapshot_.mutable_finished() = event.time();
      if (f.results_size() > 0) *snapshot_.mutable_logs() = f.results();
      if (!f.output_dataset().empty()) snapshot_.set_output_dataset(f.output_dataset());
      if (f.has_error()) *snapshot_.mutable_error() = f.error();
      snapshot_.set_batch(f.batch());
      snapshot_.set_batches_done(f.batches_done());
      break;
    }
    case v1::JobEvent::kCheckpointSaved:
      snapshot_.set_last_checkpoint(event.checkpoint_saved().checkpoint().number());
      break;
    case v1::JobEvent::kResumed: {
      const v1::Resumed& r = event.resumed();
      snapshot_.clear_finished();
      snapshot_.clear_error();
      snapshot_.set_resumes(snapshot_.resumes() + 1);
      // Epochs from the checkpoint's on run again.
      auto* history = snapshot_.mutable_history();
      history->erase(std::remove_if(history->begin(), history->end(),
                                    [&](const v1::EpochLogs& h) { return h.epoch() >= r.epoch(); }),
                     history->end());
      snapshot_.set_epoch(r.epoch());
      snapshot_.set_batch(r.batch());
      break;
    }
    case v1::JobEvent::EVENT_NOT_SET:
      break;
  }
  events_.push_back(std::move(event));
  snapshot_.set_last_sequence(static_cast<int64_t>(events_.size()));
}

void Job::Notify() {
  std::vector<std::shared_ptr<JobSubscription>> wake;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = subscribers_.begin(); it != subscribers_.end();) {
      if (auto s = it->lock()) {
        wake.push_back(std::move(s));
        ++it;
      } else {
        it = subscribers_.erase(it);
      }
    }
  }
  // Outside the lock: a subscriber's callback may read events back.
  for (auto& s : wake) s->Notify();
}

absl::Status Job::Append(v1::JobEvent event) {
  {
    absl::MutexLock append(&append_mu_);
    {
      absl::MutexLock lock(&mu_);
      if (!Accept(event)) return absl::OkStatus();
    }
    // Stored before anyone can read it; the sink may take a while, and readers go on.
    absl::Status stored = sink_ ? sink_(event) : absl::OkStatus();
    absl::MutexLock lock(&mu_);
    if (!stored.ok()) {
      if (storage_error_.ok()) storage_error_ = stored;
      // The end of a job is shown even when it cannot be stored, so that watchers finish; a
      // restart then finds the job unfinished and marks it INTERRUPTED.
      if (!event.has_finished()) return stored;
    }
    Apply(std::move(event));
  }
  Notify();
  return absl::OkStatus();
}

absl::Status Job::Reopen(v1::Resumed resumed) {
  if (!finished()) {
    return absl::FailedPreconditionError(absl::StrCat("job ", id_, " has not ended"));
  }
  resumed.set_previous_state(state());
  v1::JobEvent event;
  *event.mutable_resumed() = std::move(resumed);
  KILN_RETURN_IF_ERROR(Append(std::move(event)));
  cancel_requested_ = false;
  interrupted_ = false;
  return SetState(v1::QUEUED);
}

void Job::SetProgress(int epoch, int64_t batches, int64_t total_batches) {
  absl::MutexLock lock(&mu_);
  snapshot_.set_epoch(epoch);
  snapshot_.set_batch(batches);
  snapshot_.set_batches_done(total_batches);
}

absl::Status Job::SetState(v1::JobState state) {
  v1::JobEvent event;
  event.mutable_state_changed()->set_state(state);
  return Append(std::move(event));
}

void Job::Finish(v1::JobState state, const absl::Status& error, v1::Finished details) {
  details.set_state(state);
  if (!error.ok()) *details.mutable_error() = ToRpcStatus(error);
  {
    absl::MutexLock lock(&mu_);
    for (const v1::EpochLogs& h : snapshot_.history()) *details.add_history() = h;
    details.set_batch(snapshot_.batch());
    details.set_batches_done(snapshot_.batches_done());
  }
  v1::JobEvent event;
  *event.mutable_finished() = std::move(details);
  Append(std::move(event)).IgnoreError();  // remembered in storage_error_; the job ends anyway
}

std::shared_ptr<JobSubscription> Job::Subscribe(std::function<void()> notify) {
  auto subscription = std::make_shared<JobSubscription>(std::move(notify));
  absl::MutexLock lock(&mu_);
  subscribers_.push_back(subscription);
  return subscription;
}

}  // namespace kiln::server
