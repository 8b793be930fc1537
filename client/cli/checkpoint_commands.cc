// kiln checkpoints list|restore|delete: a fit's checkpoints.
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli/commands.h"
#include "client/cli/common.h"
#include "client/cli/flags.h"
#include "google/protobuf/util/time_util.h"

namespace kiln::cli {
namespace {

absl::StatusOr<int64_t> CheckpointNumber(const std::string& arg) {
  int64_t number = 0;
  if (!absl::SimpleAtoi(arg, &number) || number < 1) {
    return UsageError(
        absl::StrCat("a checkpoint number is a positive integer (kiln checkpoints "
                     "list JOB shows them), not \"",
                     arg, "\""));
  }
  return number;
}

// Where the fit stood, counted as Keras's progress bar counts (epochs and batches from 1): a
// checkpoint at the end of a 1-epoch fit is "after epoch 1", not "epoch 2, batch 0".
std::string Position(const v1::Checkpoint& c) {
  if (c.batch() > 0) return absl::StrFormat("epoch %d, after batch %d", c.epoch() + 1, c.batch());
  if (c.epoch() == 0) return "before epoch 1";
  return absl::StrFormat("after epoch %d", c.epoch());
}

std::string Describe(const v1::Checkpoint& c) {
  return absl::StrFormat("%3d  %s  %s  (%s, %d bytes)", c.number(),
                         google::protobuf::util::TimeUtil::ToString(c.time()), Position(c),
                         c.reason(), c.bytes());
}

}  // namespace

absl::Status CheckpointsList(client::Client& c, const Args& args) {
  v1::ListCheckpointsRequest request;
  KILN_ASSIGN_OR_RETURN(*request.mutable_session_id(), RequireSession());
  request.set_job_id(args[0]);
  KILN_ASSIGN_OR_RETURN(v1::ListCheckpointsResponse r,
                        c.Call(&v1::JobService::Stub::ListCheckpoints, c.jobs(), request));
  if (absl::GetFlag(FLAGS_json)) return PrintJson(r);
  for (const v1::Checkpoint& checkpoint : r.checkpoints()) {
    std::printf("%s\n", Describe(checkpoint).c_str());
  }
  if (r.checkpoints().empty())
    std::fprintf(stderr, "kiln: job %s has no checkpoints\n", args[0].c_str());
  return absl::OkStatus();
}

absl::Status CheckpointsRestore(client::Client& c, const Args& args) {
  v1::RestoreCheckpointRequest request;
  KILN_ASSIGN_OR_RETURN(*request.mutable_session_id(), RequireSession());
  request.set_job_id(args[0]);
  if (args.size() > 1) {
    KILN_ASSIGN_OR_RETURN(const int64_t number, CheckpointNumber(args[1]));
    request.set_number(number);
  }
  KILN_ASSIGN_OR_RETURN(v1::Checkpoint restored,
                        c.Call(&v1::JobService::Stub::RestoreCheckpoint, c.jobs(), request));
  if (absl::GetFlag(FLAGS_json)) return PrintJson(restored);
  std::printf("restored checkpoint %s\n", Describe(restored).c_str());
  return absl::OkStatus();
}

absl::Status CheckpointsDelete(client::Client& c, const Args& args) {
  v1::DeleteCheckpointRequest request;
  KILN_ASSIGN_OR_RETURN(*request.mutable_session_id(), RequireSession());
  request.set_job_id(args[0]);
  KILN_ASSIGN_OR_RETURN(const int64_t number, CheckpointNumber(args[1]));
  request.set_number(number);
  return c.Call(&v1::JobService::Stub::DeleteCheckpoint, c.jobs(), request).status();
}

}  // namespace kiln::cli
