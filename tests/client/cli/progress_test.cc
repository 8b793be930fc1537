// JobProgress: Keras-style progress on a terminal, and on a pipe one line per epoch plus a line
// whenever the interval has passed since the last one.
#include "client/cli/progress.h"

#include <cstdio>
#include <string>

#include "absl/strings/str_split.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace kiln::cli {
namespace {

using google::protobuf::util::TimeUtil;

// Captures what JobProgress prints.
class Output {
 public:
  Output() : file_(open_memstream(&buffer_, &size_)) {}
  ~Output() {
    std::fclose(file_);
    std::free(buffer_);
  }
  std::FILE* file() { return file_; }
  std::string text() {
    std::fflush(file_);
    return std::string(buffer_, size_);
  }

 private:
  char* buffer_ = nullptr;
  size_t size_ = 0;
  std::FILE* file_;
};

v1::JobEvent At(double seconds) {
  v1::JobEvent e;
  *e.mutable_time() = TimeUtil::NanosecondsToTimestamp(int64_t(seconds * 1e9));
  return e;
}

v1::JobEvent BatchEnd(double seconds, int64_t batch, int64_t steps) {
  v1::JobEvent e = At(seconds);
  e.mutable_batch_end()->set_batch(batch);
  e.mutable_batch_end()->set_steps(steps);
  v1::Metric* loss = e.mutable_batch_end()->add_logs();
  loss->set_name("loss");
  loss->set_value(0.5);
  return e;
}

// A fit of one epoch of 100 batches that reports a batch every second for 30 s.
std::string RunFit(bool interactive, absl::Duration interval) {
  Output out;
  v1::Job job;
  job.set_id("job-1");
  job.set_kind(v1::FIT);
  job.set_state(v1::QUEUED);
  *job.mutable_created() = TimeUtil::NanosecondsToTimestamp(int64_t(1000e9));
  JobProgress progress(out.file(), interactive, job, interval);
  v1::JobEvent running = At(1000);
  running.mutable_state_changed()->set_state(v1::RUNNING);
  progress.OnEvent(running);
  v1::JobEvent begin = At(1000);
  begin.mutable_train_begin()->set_epochs(1);
  begin.mutable_train_begin()->set_steps_per_epoch(100);
  progress.OnEvent(begin);
  v1::JobEvent epoch = At(1000);
  epoch.mutable_epoch_begin()->set_epoch(0);
  progress.OnEvent(epoch);
  for (int i = 1; i <= 30; ++i) progress.OnEvent(BatchEnd(1000 + i, 3 * i, 100));
  progress.OnEvent(BatchEnd(1031, 99, 100));
  v1::JobEvent end = At(1031);
  end.mutable_epoch_end()->set_seconds(31);
  progress.OnEvent(end);
  return out.text();
}

TEST(JobProgressTest, PipedOutputPrintsALineEachIntervalAndOnePerEpoch) {
  const std::string text = RunFit(/*interactive=*/false, absl::Seconds(10));
  const std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 5u) << text;
  EXPECT_EQ(lines[0], "Epoch 1/1");
  // Batches end at 1001 s, 1002 s, ...: lines at 10 s, 20 s and 30 s after the epoch began.
  EXPECT_EQ(lines[1], " 31/100 - ETA: 22s - loss: 0.5000");
  EXPECT_EQ(lines[2], " 61/100 - ETA: 13s - loss: 0.5000");
  EXPECT_EQ(lines[3], " 91/100 - ETA: 3s - loss: 0.5000");
  EXPECT_EQ(lines[4], "100/100 - 31s 310ms/step");
  EXPECT_EQ(text.find('\r'), std::string::npos);
}

TEST(JobProgressTest, ALongerIntervalPrintsFewerLines) {
  const std::string text = RunFit(/*interactive=*/false, absl::Seconds(25));
  EXPECT_EQ(std::vector<std::string>(absl::StrSplit(text, '\n', absl::SkipEmpty())).size(), 3u)
      << text;
}

TEST(JobProgressTest, ATerminalGetsABarRedrawnInPlace) {
  const std::string text = RunFit(/*interactive=*/true, absl::Seconds(10));
  EXPECT_NE(text.find("\r 31/100 [=========>....................] - ETA: "), std::string::npos)
      << text;
  EXPECT_NE(text.find("100/100 [==============================] - 31s"), std::string::npos);
  EXPECT_EQ(text.back(), '\n');
}

TEST(JobProgressTest, StateNamesAreLowerCase) {
  EXPECT_EQ(StateName(v1::QUEUED), "queued");
  EXPECT_EQ(StateName(v1::CANCELLED), "cancelled");
}

}  // namespace
}  // namespace kiln::cli
