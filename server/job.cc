#include "server/job.h"

#include "absl/time/clock.h"
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

Job::Job(v1::Job plan) : id_(plan.id()), session_id_(plan.session_id()), kind_(plan.kind()) {
  snapshot_ = std::move(plan);
  snapshot_.set_state(v1::QUEUED);
  *snapshot_.mutable_created() = Now();
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

void Job::Append(v1::JobEvent event) {
  std::vector<std::shared_ptr<JobSubscription>> wake;
  {
    absl::MutexLock lock(&mu_);
    if (!events_.empty() && events_.back().has_finished()) return;
    event.set_job_id(id_);
    event.set_sequence(static_cast<int64_t>(events_.size()) + 1);
    *event.mutable_time() = Now();
    switch (event.event_case()) {
      case v1::JobEvent::kStateChanged: {
        const v1::JobState from = snapshot_.state(), to = event.state_changed().state();
        // A repeated cancel says nothing new; a job cancelled while it was being started
        // stays CANCELLING rather than appearing to run again.
        if (to == from || (from == v1::CANCELLING && to == v1::RUNNING)) return;
        snapshot_.set_state(to);
        if (event.state_changed().state() == v1::RUNNING)
          *snapshot_.mutable_started() = event.time();
        break;
      }
      case v1::JobEvent::kTrainBegin:
        snapshot_.set_epochs(event.train_begin().epochs());
        snapshot_.set_steps_per_epoch(event.train_begin().steps_per_epoch());
        break;
      case v1::JobEvent::kEpochBegin:
        snapshot_.set_epoch(event.epoch_begin().epoch());
        snapshot_.set_batch(0);
        break;
      case v1::JobEvent::kBatchEnd:
        *snapshot_.mutable_logs() = event.batch_end().logs();
        if (kind_ != v1::FIT) snapshot_.set_steps_per_epoch(event.batch_end().steps());
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
        break;
      }
      case v1::JobEvent::EVENT_NOT_SET:
        break;
    }
    events_.push_back(std::move(event));
    snapshot_.set_last_sequence(static_cast<int64_t>(events_.size()));
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

void Job::SetProgress(int epoch, int64_t batches, int64_t total_batches) {
  absl::MutexLock lock(&mu_);
  snapshot_.set_epoch(epoch);
  snapshot_.set_batch(batches);
  snapshot_.set_batches_done(total_batches);
}

void Job::SetState(v1::JobState state) {
  v1::JobEvent event;
  event.mutable_state_changed()->set_state(state);
  Append(std::move(event));
}

void Job::Finish(v1::JobState state, const absl::Status& error, v1::Finished details) {
  details.set_state(state);
  if (!error.ok()) *details.mutable_error() = ToRpcStatus(error);
  {
    absl::MutexLock lock(&mu_);
    for (const v1::EpochLogs& h : snapshot_.history()) *details.add_history() = h;
  }
  v1::JobEvent event;
  *event.mutable_finished() = std::move(details);
  Append(std::move(event));
}

std::shared_ptr<JobSubscription> Job::Subscribe(std::function<void()> notify) {
  auto subscription = std::make_shared<JobSubscription>(std::move(notify));
  absl::MutexLock lock(&mu_);
  subscribers_.push_back(subscription);
  return subscription;
}

}  // namespace kiln::server
