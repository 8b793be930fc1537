// Job: one fit, evaluate or predict run - its state, progress, and an append-only log of
// events numbered 1, 2, 3, ... that any number of watchers read at their own pace.
//
// Promises:
// - An event is handed to the job's sink (the store) before anyone can read it, so what a
//   watcher saw survives a restart: a watcher that reconnects with the last sequence it saw,
//   to this server or to the next one on the same state, continues without a gap or a
//   duplicate. Events are never dropped or renumbered.
// - Appending never waits for a watcher: it stores the event and pokes each subscriber, whose
//   callback must only schedule work (WatchJob's reactor starts a write if it is idle).
//   Readers never wait for the sink.
// - The last event of an ended job is Finished. Only Reopen (ResumeJob) appends after it.
#ifndef KILN_SERVER_SERVICE_JOB_H_
#define KILN_SERVER_SERVICE_JOB_H_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "kiln/v1/jobs.pb.h"

namespace kiln::server {

// A subscriber's wake-up call. Reset() guarantees that the callback is not running and will
// not run again, so its owner may then be destroyed.
class JobSubscription {
 public:
  explicit JobSubscription(std::function<void()> notify) : notify_(std::move(notify)) {}
  void Notify() {
    absl::MutexLock lock(&mu_);
    if (notify_) notify_();
  }
  void Reset() {
    absl::MutexLock lock(&mu_);
    notify_ = nullptr;
  }

 private:
  absl::Mutex mu_;
  std::function<void()> notify_ ABSL_GUARDED_BY(mu_);
};

class Job {
 public:
  // Stores an event durably; Append fails (and drops the event) when it fails.
  using EventSink = std::function<absl::Status(const v1::JobEvent&)>;

  // `plan`: the job's id, session_id, model and kind, and what is known before it runs
  // (epochs, steps_per_epoch, seed, output_dataset). The job starts QUEUED.
  Job(v1::Job plan, EventSink sink);
  // A stored job with its events, which are not handed to the sink again.
  static std::shared_ptr<Job> Restore(v1::Job plan, const std::vector<v1::JobEvent>& events,
                                      EventSink sink);

  const std::string& id() const { return id_; }
  const std::string& session_id() const { return session_id_; }
  v1::JobKind kind() const { return kind_; }

  // The job as GetJob returns it.
  v1::Job Snapshot() const;
  v1::JobState state() const;
  bool finished() const;

  // Appends an event (its sequence number and time are set here) and updates the snapshot's
  // progress from it. Ignored once Finished has been appended, and for a state change to the
  // state the job is in. The sink's error is returned and remembered (storage_error).
  absl::Status Append(v1::JobEvent event);
  // The event with sequence number `sequence`, if it exists yet.
  std::optional<v1::JobEvent> EventAt(int64_t sequence) const;
  int64_t last_sequence() const;

  // Progress without an event (batch-end events are throttled; the snapshot is exact):
  // `batches` completed in `epoch`, and in all epochs together.
  void SetProgress(int epoch, int64_t batches, int64_t total_batches);

  // State transitions, each recorded as an event. Finish appends the final event; the job
  // ends in memory even when the sink fails to store it.
  absl::Status SetState(v1::JobState state);
  void Finish(v1::JobState state, const absl::Status& error, v1::Finished details = {});
  // ResumeJob: appends `resumed` after the Finished event of an ended job, then QUEUED, and
  // clears the cancel request. FAILED_PRECONDITION unless the job has ended.
  absl::Status Reopen(v1::Resumed resumed);
  // The first error the sink returned, if any: the job's runner stops on it.
  absl::Status storage_error() const;

  // Cancellation: the job's runner polls cancel_requested() between batches. A cancel because
  // the server is shutting down ends the job INTERRUPTED rather than CANCELLED.
  void RequestCancel(bool server_shutdown = false) {
    if (server_shutdown) interrupted_ = true;
    cancel_requested_ = true;
  }
  bool cancel_requested() const { return cancel_requested_; }
  bool interrupted() const { return interrupted_; }

  std::shared_ptr<JobSubscription> Subscribe(std::function<void()> notify);

 private:
  // Whether `event` would be appended now (see Append); sets its sequence number and time.
  bool Accept(v1::JobEvent& event) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Updates the snapshot from an accepted event and adds it to the log.
  void Apply(v1::JobEvent event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Notify();

  const std::string id_, session_id_;
  const v1::JobKind kind_;
  const EventSink sink_;
  std::atomic<bool> cancel_requested_{false};
  std::atomic<bool> interrupted_{false};

  // Held across a whole Append, the sink's write included, so events reach the sink in
  // sequence order; mu_ is held only around the in-memory parts.
  absl::Mutex append_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  absl::Status storage_error_ ABSL_GUARDED_BY(mu_);
  v1::Job snapshot_ ABSL_GUARDED_BY(mu_);
  int initial_epoch_ ABSL_GUARDED_BY(mu_) = 0;  // the fit's, from its TrainBegin
  std::vector<v1::JobEvent> events_ ABSL_GUARDED_BY(mu_);
  std::vector<std::weak_ptr<JobSubscription>> subscribers_ ABSL_GUARDED_BY(mu_);
};

bool IsTerminal(v1::JobState state);

}  // namespace kiln::server

#endif  // KILN_SERVER_SERVICE_JOB_H_
