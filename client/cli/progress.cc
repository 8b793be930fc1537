#include "client/cli/progress.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/util/time_util.h"

namespace kiln::cli {
namespace {

double Seconds(const google::protobuf::Timestamp& t) {
  return double(google::protobuf::util::TimeUtil::TimestampToNanoseconds(t)) / 1e9;
}

}  // namespace

QueuedNotice::QueuedNotice(std::FILE* out, const v1::Job& job) {
  if (job.state() != v1::QUEUED) return;
  thread_ = std::thread([this, out, id = job.id()] {
    if (!started_.WaitForNotificationWithTimeout(absl::Seconds(1))) {
      std::fprintf(out, "%s is queued: it starts when the jobs ahead of it end\n", id.c_str());
      std::fflush(out);
    }
  });
}

QueuedNotice::~QueuedNotice() {
  OnEvent();
  if (thread_.joinable()) thread_.join();
}

void QueuedNotice::OnEvent() {
  if (!started_.HasBeenNotified()) started_.Notify();
}

std::string StateName(v1::JobState state) {
  return absl::AsciiStrToLower(v1::JobState_Name(state));
}

std::string FormatLogs(const google::protobuf::RepeatedPtrField<v1::Metric>& logs) {
  std::string out;
  for (const v1::Metric& m : logs)
    absl::StrAppend(&out, absl::StrFormat(" - %s: %.4f", m.name(), m.value()));
  return out;
}

void JobProgress::DrawBar(int64_t done, int64_t steps,
                          const google::protobuf::RepeatedPtrField<v1::Metric>& logs,
                          double seconds, bool final) {
  const int width = std::to_string(steps).size();
  std::string line = absl::StrFormat("%*d/%d", width, done, steps);
  if (interactive_) {
    constexpr int kBar = 30;
    const int filled = steps > 0 ? int(kBar * done / steps) : kBar;
    std::string bar(filled, '=');
    if (filled < kBar) bar += '>';
    bar.resize(kBar, '.');
    absl::StrAppend(&line, " [", bar, "]");
  }
  if (final) {
    absl::StrAppend(&line, absl::StrFormat(" - %.0fs %.0fms/step", seconds,
                                           steps > 0 ? 1e3 * seconds / steps : 0.0));
  } else {
    const double eta = done > 0 ? seconds * double(steps - done) / double(done) : 0;
    absl::StrAppend(&line, absl::StrFormat(" - ETA: %.0fs", eta));
  }
  absl::StrAppend(&line, FormatLogs(logs));
  if (interactive_) {
    // Overwrite the previous state of the line, padding away any longer leftovers.
    std::string padded = line;
    if (padded.size() < last_width_) padded.resize(last_width_, ' ');
    std::fprintf(out_, "\r%s%s", padded.c_str(), final ? "\n" : "");
    last_width_ = final ? 0 : line.size();
  } else {
    std::fprintf(out_, "%s\n", line.c_str());
  }
  std::fflush(out_);
}

void JobProgress::MaybeHeartbeat(const v1::BatchEnd& b, double now) {
  if (now - last_line_ < interval_) return;
  last_line_ = now;
  DrawBar(b.batch() + 1, b.steps(), b.logs(), start_ > 0 ? now - start_ : 0, false);
}

JobProgress::JobProgress(std::FILE* out, bool interactive, const v1::Job& job,
                         absl::Duration interval)
    : out_(out),
      interactive_(interactive),
      fit_(job.kind() == v1::FIT),
      epochs_(job.epochs()),
      steps_(job.steps_per_epoch()),
      start_(job.has_started() ? Seconds(job.started()) : 0),
      interval_(absl::ToDoubleSeconds(interval)),
      last_line_(Seconds(job.created())) {}

void JobProgress::OnEvent(const v1::JobEvent& event) {
  switch (event.event_case()) {
    case v1::JobEvent::kStateChanged:
      if (event.state_changed().state() == v1::RUNNING) start_ = last_line_ = Seconds(event.time());
      break;
    case v1::JobEvent::kTrainBegin:
      epochs_ = event.train_begin().epochs();
      steps_ = event.train_begin().steps_per_epoch();
      break;
    case v1::JobEvent::kEpochBegin:
      start_ = last_line_ = Seconds(event.time());
      std::fprintf(out_, "Epoch %d/%d\n", event.epoch_begin().epoch() + 1, epochs_);
      std::fflush(out_);
      break;
    case v1::JobEvent::kBatchEnd: {
      const v1::BatchEnd& b = event.batch_end();
      const bool last = b.batch() + 1 >= b.steps();
      const double seconds = start_ > 0 ? Seconds(event.time()) - start_ : 0;
      if (last) {
        // A fit's epoch line comes with its EpochEnd.
        if (!fit_) DrawBar(b.batch() + 1, b.steps(), b.logs(), seconds, true);
      } else if (interactive_) {
        DrawBar(b.batch() + 1, b.steps(), b.logs(), seconds, false);
      } else {
        MaybeHeartbeat(b, Seconds(event.time()));
      }
      break;
    }
    case v1::JobEvent::kEpochEnd: {
      const v1::EpochEnd& e = event.epoch_end();
      DrawBar(steps_, steps_, e.logs(), e.seconds(), true);
      break;
    }
    case v1::JobEvent::kResumed: {
      const v1::Resumed& r = event.resumed();
      std::fprintf(out_, "Resumed from checkpoint %lld: epoch %d, batch %lld\n",
                   static_cast<long long>(r.checkpoint()), r.epoch() + 1,
                   static_cast<long long>(r.batch()));
      std::fflush(out_);
      break;
    }
    default:
      break;
  }
}

}  // namespace kiln::cli
