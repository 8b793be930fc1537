// kiln fit|evaluate|predict and kiln jobs list|watch|cancel: jobs followed live.
#include <unistd.h>

#include <cstdio>
#include <optional>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/cli/commands.h"
#include "client/cli/common.h"
#include "client/cli/flags.h"
#include "client/cli/interrupt.h"
#include "client/cli/npy_files.h"
#include "client/cli/progress.h"

namespace kiln::cli {
namespace {

// The error a job that did not succeed ended with, its message after `context`; for a fit
// that can go on, how to resume it.
absl::Status JobError(const v1::Job& job, const v1::Finished& finished, absl::string_view context) {
  std::string message = absl::StrCat(context, finished.error().message());
  if (job.kind() == v1::FIT &&
      (finished.state() == v1::INTERRUPTED || finished.state() == v1::FAILED)) {
    absl::StrAppend(&message, "\nkiln: `kiln jobs resume ", job.id(), "` continues it");
  }
  return absl::Status(static_cast<absl::StatusCode>(finished.error().code()), message);
}

JobProgress NewProgress(const v1::Job& job) {
  return JobProgress(stdout, isatty(fileno(stdout)) != 0, job,
                     absl::GetFlag(FLAGS_progress_interval));
}

// With --detach, prints the job's id and returns nothing; otherwise follows the job to its
// end, drawing its progress, and returns how it finished: an error unless it SUCCEEDED. The
// first Ctrl-C while following cancels the job.
absl::StatusOr<std::optional<v1::Finished>> FollowUnlessDetached(client::Client& c,
                                                                 const std::string& session,
                                                                 const v1::Job& job,
                                                                 int64_t from_sequence = 0) {
  if (absl::GetFlag(FLAGS_detach)) {
    std::printf("%s\n", job.id().c_str());
    return std::nullopt;
  }
  JobProgress progress = NewProgress(job);
  std::optional<QueuedNotice> queued;
  if (!absl::GetFlag(FLAGS_json)) queued.emplace(stdout, job);
  OnInterrupt cancel_on_ctrl_c([&c, session, id = job.id()] {
    std::fflush(stdout);
    std::fprintf(stderr, "\nkiln: Ctrl-C: cancelling %s (press Ctrl-C again to stop waiting)\n",
                 id.c_str());
    v1::CancelJobRequest request;
    request.set_session_id(session);
    request.set_job_id(id);
    v1::Job cancelled;
    grpc::ClientContext context;  // a short deadline: a hung server must not hold kiln here
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    client::NameSession(context, request);
    const grpc::Status status = c.jobs().CancelJob(&context, request, &cancelled);
    if (!status.ok()) {
      std::fprintf(stderr, "kiln: cancelling %s: %s\n", id.c_str(),
                   client::FromGrpc(status).ToString().c_str());
    }
  });
  KILN_ASSIGN_OR_RETURN(v1::Finished finished,
                        c.WatchJob(session, job.id(), from_sequence, [&](const v1::JobEvent& e) {
                          if (queued.has_value()) queued->OnEvent();
                          if (!absl::GetFlag(FLAGS_json)) progress.OnEvent(e);
                        }));
  if (finished.state() == v1::CANCELLED && cancel_on_ctrl_c.interrupted()) {
    return InterruptedError(absl::StrCat("job ", job.id(), " cancelled"));
  }
  if (finished.state() != v1::SUCCEEDED) {
    return JobError(job, finished,
                    absl::StrCat("job ", job.id(), " ", StateName(finished.state()), ": "));
  }
  return finished;
}

absl::StatusOr<v1::DataRef> DataRefFromFlag(const std::string& dataset) {
  v1::DataRef ref;
  KILN_ASSIGN_OR_RETURN(*ref.mutable_dataset(), Require(dataset, "dataset"));
  return ref;
}

// How to get and free a dataset left in the session.
std::string FreeHint(const std::string& dataset) {
  return absl::StrCat("`kiln data read ", dataset,
                      " --output=FILE.npy` downloads them, `kiln data ", "delete ", dataset,
                      "` frees their bytes");
}

// Per row the most likely class and its score.
void PrintPredictions(const v1::TensorProto& predictions) {
  const std::string& data = predictions.data();
  const float* p = reinterpret_cast<const float*>(data.data());
  const int64_t rows = predictions.shape_size() > 0 ? predictions.shape(0) : 0;
  const int64_t cols = rows > 0 ? int64_t(data.size() / sizeof(float)) / rows : 0;
  std::printf("predictions: (%s)\n", absl::StrJoin(predictions.shape(), ", ").c_str());
  for (int64_t r = 0; r < std::min<int64_t>(rows, 10); ++r) {
    int64_t best = 0;
    for (int64_t j = 1; j < cols; ++j) best = p[r * cols + j] > p[r * cols + best] ? j : best;
    std::printf("  %lld: class %lld (%.4f)\n", static_cast<long long>(r),
                static_cast<long long>(best), p[r * cols + best]);
  }
  if (rows > 10) std::printf("  ... %lld more rows\n", static_cast<long long>(rows - 10));
}

// Unary Predict on the rows of an .npy file.
absl::StatusOr<v1::TensorProto> PredictFile(client::Client& c, const std::string& session) {
  v1::PredictRequest request;
  request.set_session_id(session);
  request.set_batch_size(absl::GetFlag(FLAGS_batch_size));
  // The file first: a file that cannot be read needs no server to say so.
  KILN_ASSIGN_OR_RETURN(*request.add_inputs(), ReadNpyFile(absl::GetFlag(FLAGS_input)));
  KILN_ASSIGN_OR_RETURN(*request.mutable_model(), ResolveModel(c, session));
  KILN_ASSIGN_OR_RETURN(v1::PredictResponse r,
                        c.Call(&v1::InferenceService::Stub::Predict, c.inference(), request));
  return r.outputs(0);
}

// A predict job over a dataset, followed to its end; the session dataset that holds its
// predictions, or nothing with --detach.
absl::StatusOr<std::optional<std::string>> RunPredictJob(client::Client& c,
                                                         const std::string& session) {
  v1::StartPredictRequest request;
  request.set_session_id(session);
  KILN_ASSIGN_OR_RETURN(*request.mutable_model(), ResolveModel(c, session));
  KILN_ASSIGN_OR_RETURN(*request.mutable_data(), DataRefFromFlag(absl::GetFlag(FLAGS_dataset)));
  request.mutable_config()->set_batch_size(absl::GetFlag(FLAGS_batch_size));
  KILN_ASSIGN_OR_RETURN(v1::Job job,
                        c.Call(&v1::JobService::Stub::StartPredict, c.jobs(), request));
  const std::string& output = job.output_dataset();
  KILN_ASSIGN_OR_RETURN(std::optional<v1::Finished> finished,
                        FollowUnlessDetached(c, session, job));
  if (!finished.has_value()) {
    std::fprintf(stderr, "kiln: the predictions will be the session's dataset %s: %s\n",
                 output.c_str(), FreeHint(output).c_str());
    return std::nullopt;
  }
  return output;
}

// Writes the predictions to --output, or prints them.
absl::Status ShowPredictions(const v1::TensorProto& predictions) {
  if (!absl::GetFlag(FLAGS_output).empty()) {
    KILN_RETURN_IF_ERROR(WriteNpyFile(absl::GetFlag(FLAGS_output), predictions));
    std::printf("wrote %s: (%s)\n", absl::GetFlag(FLAGS_output).c_str(),
                absl::StrJoin(predictions.shape(), ", ").c_str());
    return absl::OkStatus();
  }
  if (absl::GetFlag(FLAGS_json)) return PrintJson(predictions);
  PrintPredictions(predictions);
  return absl::OkStatus();
}

}  // namespace

absl::Status Fit(client::Client& c, const Args&) {
  v1::StartFitRequest request;
  KILN_ASSIGN_OR_RETURN(*request.mutable_session_id(), RequireSession());
  KILN_ASSIGN_OR_RETURN(*request.mutable_model(), ResolveModel(c, request.session_id()));
  KILN_ASSIGN_OR_RETURN(*request.mutable_data(), DataRefFromFlag(absl::GetFlag(FLAGS_dataset)));
  if (!absl::GetFlag(FLAGS_validation_dataset).empty()) {
    KILN_ASSIGN_OR_RETURN(*request.mutable_validation_data(),
                          DataRefFromFlag(absl::GetFlag(FLAGS_validation_dataset)));
  }
  v1::FitConfig& config = *request.mutable_config();
  config.set_epochs(absl::GetFlag(FLAGS_epochs));
  config.set_batch_size(absl::GetFlag(FLAGS_batch_size));
  config.set_validation_split(absl::GetFlag(FLAGS_validation_split));
  KILN_ASSIGN_OR_RETURN(const std::optional<int64_t> seed, SeedFlag());
  if (seed.has_value()) config.set_seed(*seed);
  if (absl::GetFlag(FLAGS_checkpoint_every_batches) != 0) {
    config.set_checkpoint_every_batches(absl::GetFlag(FLAGS_checkpoint_every_batches));
  }
  if (absl::GetFlag(FLAGS_checkpoint_every_seconds) != -1) {
    config.set_checkpoint_every_seconds(absl::GetFlag(FLAGS_checkpoint_every_seconds));
  }
  if (absl::GetFlag(FLAGS_keep_checkpoints) != 0) {
    config.set_keep_checkpoints(absl::GetFlag(FLAGS_keep_checkpoints));
  }
  KILN_ASSIGN_OR_RETURN(v1::Job job, c.Call(&v1::JobService::Stub::StartFit, c.jobs(), request));
  KILN_ASSIGN_OR_RETURN(std::optional<v1::Finished> finished,
                        FollowUnlessDetached(c, request.session_id(), job));
  if (finished.has_value() && absl::GetFlag(FLAGS_json)) return PrintJson(*finished);
  return absl::OkStatus();
}

absl::Status Evaluate(client::Client& c, const Args&) {
  v1::StartEvaluateRequest request;
  KILN_ASSIGN_OR_RETURN(*request.mutable_session_id(), RequireSession());
  KILN_ASSIGN_OR_RETURN(*request.mutable_model(), ResolveModel(c, request.session_id()));
  KILN_ASSIGN_OR_RETURN(*request.mutable_data(), DataRefFromFlag(absl::GetFlag(FLAGS_dataset)));
  request.mutable_config()->set_batch_size(absl::GetFlag(FLAGS_batch_size));
  KILN_ASSIGN_OR_RETURN(v1::Job job,
                        c.Call(&v1::JobService::Stub::StartEvaluate, c.jobs(), request));
  KILN_ASSIGN_OR_RETURN(std::optional<v1::Finished> finished,
                        FollowUnlessDetached(c, request.session_id(), job));
  if (!finished.has_value()) return absl::OkStatus();
  if (absl::GetFlag(FLAGS_json)) return PrintJson(*finished);
  const std::string line = FormatLogs(finished->results());
  std::printf("%s\n", line.substr(std::min<size_t>(3, line.size())).c_str());  // drop " - "
  return absl::OkStatus();
}

absl::Status Predict(client::Client& c, const Args&) {
  KILN_ASSIGN_OR_RETURN(const std::string session, RequireSession());
  if (absl::GetFlag(FLAGS_input).empty() == absl::GetFlag(FLAGS_dataset).empty()) {
    return UsageError("kiln predict needs either --input=FILE.npy or --dataset=D");
  }
  if (!absl::GetFlag(FLAGS_input).empty()) {
    KILN_ASSIGN_OR_RETURN(const v1::TensorProto predictions, PredictFile(c, session));
    return ShowPredictions(predictions);
  }
  KILN_ASSIGN_OR_RETURN(const std::optional<std::string> output, RunPredictJob(c, session));
  if (!output.has_value()) return absl::OkStatus();  // --detach
  // The predictions leave the session only once they are safely out: they would count toward
  // its byte limit.
  absl::StatusOr<v1::TensorProto> predictions = ReadDatasetArray(c, session, *output, "x");
  absl::Status shown = predictions.ok() ? ShowPredictions(*predictions) : predictions.status();
  if (!shown.ok()) {
    return absl::Status(shown.code(),
                        absl::StrCat(shown.message(), "\nkiln: the predictions are still the ",
                                     "session's dataset ", *output, ": ", FreeHint(*output)));
  }
  if (absl::GetFlag(FLAGS_keep)) {
    std::fprintf(stderr,
                 "kiln: kept the predictions as the session's dataset %s (%zu bytes of its "
                 "limit); `kiln data delete %s` frees them\n",
                 output->c_str(), predictions->data().size(), output->c_str());
    return absl::OkStatus();
  }
  v1::DeleteDatasetRequest drop;
  drop.set_session_id(session);
  drop.set_name(*output);
  return c.Call(&v1::DataService::Stub::DeleteDataset, c.data(), drop).status();
}

absl::Status JobsList(client::Client& c, const Args&) {
  v1::ListJobsRequest request;
  KILN_ASSIGN_OR_RETURN(*request.mutable_session_id(), RequireSession());
  KILN_ASSIGN_OR_RETURN(v1::ListJobsResponse r,
                        c.Call(&v1::JobService::Stub::ListJobs, c.jobs(), request));
  if (absl::GetFlag(FLAGS_json)) return PrintJson(r);
  for (const v1::Job& j : r.jobs()) {
    // A queued job has no progress yet; the others show the epoch they are in (or ended in).
    const std::string epochs = j.kind() == v1::FIT && j.state() != v1::QUEUED
                                   ? absl::StrFormat(" epoch %d/%d", j.epoch() + 1, j.epochs())
                                   : "";
    std::printf("%-8s %-9s %-12s %-11s%s%s\n", j.id().c_str(),
                absl::AsciiStrToLower(v1::JobKind_Name(j.kind())).c_str(), j.model().c_str(),
                StateName(j.state()).c_str(), epochs.c_str(), FormatLogs(j.logs()).c_str());
  }
  return absl::OkStatus();
}

absl::Status JobsWatch(client::Client& c, const Args& args) {
  v1::GetJobRequest get;
  KILN_ASSIGN_OR_RETURN(*get.mutable_session_id(), RequireSession());
  get.set_job_id(args[0]);
  KILN_ASSIGN_OR_RETURN(v1::Job job, c.Call(&v1::JobService::Stub::GetJob, c.jobs(), get));
  JobProgress progress = NewProgress(job);
  std::optional<QueuedNotice> queued;
  if (!absl::GetFlag(FLAGS_json)) queued.emplace(stdout, job);
  KILN_ASSIGN_OR_RETURN(
      v1::Finished finished,
      c.WatchJob(get.session_id(), job.id(), absl::GetFlag(FLAGS_from), [&](const v1::JobEvent& e) {
        if (queued.has_value()) queued->OnEvent();
        if (absl::GetFlag(FLAGS_json)) {
          PrintJson(e).IgnoreError();
        } else {
          progress.OnEvent(e);
        }
      }));
  if (!absl::GetFlag(FLAGS_json)) {
    std::printf("%s %s%s\n", job.id().c_str(), StateName(finished.state()).c_str(),
                FormatLogs(finished.results()).c_str());
  }
  if (finished.state() != v1::SUCCEEDED) return JobError(job, finished, "");
  return absl::OkStatus();
}

absl::Status JobsCancel(client::Client& c, const Args& args) {
  v1::CancelJobRequest request;
  KILN_ASSIGN_OR_RETURN(*request.mutable_session_id(), RequireSession());
  request.set_job_id(args[0]);
  KILN_ASSIGN_OR_RETURN(v1::Job j, c.Call(&v1::JobService::Stub::CancelJob, c.jobs(), request));
  std::printf("%s %s\n", j.id().c_str(), StateName(j.state()).c_str());
  return absl::OkStatus();
}

absl::Status JobsResume(client::Client& c, const Args& args) {
  v1::ResumeJobRequest request;
  KILN_ASSIGN_OR_RETURN(*request.mutable_session_id(), RequireSession());
  request.set_job_id(args[0]);
  KILN_ASSIGN_OR_RETURN(v1::Job job, c.Call(&v1::JobService::Stub::ResumeJob, c.jobs(), request));
  if (!absl::GetFlag(FLAGS_json) && !absl::GetFlag(FLAGS_detach)) {
    std::printf("%s resumed from checkpoint %lld: epoch %d/%d, batch %lld\n", job.id().c_str(),
                static_cast<long long>(job.last_checkpoint()), job.epoch() + 1, job.epochs(),
                static_cast<long long>(job.batch()));
  }
  // The events of the earlier run and the seam are behind it: follow what comes next.
  KILN_ASSIGN_OR_RETURN(std::optional<v1::Finished> finished,
                        FollowUnlessDetached(c, request.session_id(), job, job.last_sequence()));
  if (finished.has_value() && absl::GetFlag(FLAGS_json)) return PrintJson(*finished);
  return absl::OkStatus();
}

}  // namespace kiln::cli
