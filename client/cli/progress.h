// Keras-style progress for `kiln fit`: on a terminal a live bar per epoch
//   Epoch 2/5
//    412/938 [========>.....................] - ETA: 12s - loss: 0.4731 - accuracy: 0.8302
// redrawn in place; when the output is piped, one plain line per epoch (Keras's verbose=2):
//   938/938 - 22s - 23ms/step - loss: 0.4731 - accuracy: 0.8302 - val_loss: ...
#ifndef KILN_CLIENT_CLI_PROGRESS_H_
#define KILN_CLIENT_CLI_PROGRESS_H_

#include <cstdio>
#include <string>

#include "kiln/v1/jobs.pb.h"

namespace kiln::cli {

class FitProgress {
 public:
  FitProgress(std::FILE* out, bool interactive) : out_(out), interactive_(interactive) {}
  void OnEvent(const v1::JobEvent& event);

 private:
  void DrawBar(int64_t done, int64_t steps,
               const google::protobuf::RepeatedPtrField<v1::Metric>& logs, double seconds,
               bool final);

  std::FILE* out_;
  bool interactive_;
  int epochs_ = 0;
  int64_t steps_ = 0, batch_size_ = 0;
  double epoch_start_ = 0;
  size_t last_width_ = 0;
};

// " - loss: 0.4731 - accuracy: 0.8302"
std::string FormatLogs(const google::protobuf::RepeatedPtrField<v1::Metric>& logs);

}  // namespace kiln::cli

#endif  // KILN_CLIENT_CLI_PROGRESS_H_
