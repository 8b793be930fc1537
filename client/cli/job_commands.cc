// kiln fit|evaluate|predict and kiln jobs list|watch|cancel: jobs followed live.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <optional>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/cli/commands.h"
#include "client/cli/common.h"
#include "client/cli/flags.h"
#include "client/cli/progress.h"
#include "core/io/dataset.h"
#include "core/io/npy_writer.h"
#include "core/io/readers.h"

namespace kiln::cli {
namespace {

// The error a job that did not succeed ended with, its message after `context`.
absl::Status JobError(const v1::Finished& finished, absl::string_view context) {
  return absl::Status(static_cast<absl::StatusCode>(finished.error().code()),
                      absl::StrCat(context, finished.error().message()));
}

// With --detach, prints the job's id and returns nothing; otherwise follows the job to its
// end, drawing its progress, and returns how it finished: an error unless it SUCCEEDED.
absl::StatusOr<std::optional<v1::Finished>> FollowUnlessDetached(client::Client& c,
                                                                 const std::string& session,
                                                                 const v1::Job& job) {
  if (absl::GetFlag(FLAGS_detach)) {
    std::printf("%s\n", job.id().c_str());
    return std::nullopt;
  }
  JobProgress progress(stdout, isatty(fileno(stdout)) != 0, job);
  KILN_ASSIGN_OR_RETURN(v1::Finished finished,
                        c.WatchJob(session, job.id(), 0, [&](const v1::JobEvent& e) {
                          if (!absl::GetFlag(FLAGS_json)) progress.OnEvent(e);
                        }));
  if (finished.state() != v1::SUCCEEDED) {
    return JobError(finished,
                    absl::StrCat("job ", job.id(), " ", v1::JobState_Name(finished.state()), ": "));
  }
  return finished;
}

absl::StatusOr<v1::DataRef> DataRefFromFlag(const std::string& dataset) {
  v1::DataRef ref;
  KILN_ASSIGN_OR_RETURN(*ref.mutable_dataset(), Require(dataset, "dataset"));
  return ref;
}

// Writes float32 data as .npy.
absl::Status WriteNpy(const std::string& path, const std::vector<int64_t>& shape,
                      const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  out << FormatNpyFloat32(shape, data);
  if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

// Per row the most likely class and its score.
void PrintPredictions(const std::vector<int64_t>& shape, const std::string& data) {
  const float* p = reinterpret_cast<const float*>(data.data());
  const int64_t rows = shape[0];
  const int64_t cols = rows > 0 ? int64_t(data.size() / sizeof(float)) / rows : 0;
  std::printf("predictions: (%s)\n", absl::StrJoin(shape, ", ").c_str());
  for (int64_t r = 0; r < std::min<int64_t>(rows, 10); ++r) {
    int64_t best = 0;
    for (int64_t j = 1; j < cols; ++j) best = p[r * cols + j] > p[r * cols + best] ? j : best;
    std::printf("  %lld: class %lld (%.4f)\n", static_cast<long long>(r),
                static_cast<long long>(best), p[r * cols + best]);
  }
  if (rows > 10) std::printf("  ... %lld more rows\n", static_cast<long long>(rows - 10));
}

}  // namespace

absl::Status Fit(client::Client& c) {
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
  if (absl::GetFlag(FLAGS_seed) >= 0) config.set_seed(absl::GetFlag(FLAGS_seed));
  KILN_ASSIGN_OR_RETURN(v1::Job job, c.Call(&v1::JobService::Stub::StartFit, c.jobs(), request));
  KILN_ASSIGN_OR_RETURN(std::optional<v1::Finished> finished,
                        FollowUnlessDetached(c, request.session_id(), job));
  if (!finished.has_value()) return absl::OkStatus();
  if (absl::GetFlag(FLAGS_json)) return PrintJson(*finished);
  return absl::OkStatus();
}

absl::Status Evaluate(client::Client& c) {
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

absl::Status Predict(client::Client& c) {
  KILN_ASSIGN_OR_RETURN(const std::string session, RequireSession());
  KILN_ASSIGN_OR_RETURN(const std::string model, ResolveModel(c, session));
  std::vector<int64_t> shape;
  std::string data;
  if (!absl::GetFlag(FLAGS_input).empty()) {
    // Unary Predict on the rows of an .npy file.
    const std::string path = absl::GetFlag(FLAGS_input);
    KILN_ASSIGN_OR_RETURN(const std::string bytes, ReadFile(path));
    KILN_ASSIGN_OR_RETURN(Tensor x, ParseNpy(bytes, path));
    x = ToFloat32(x);
    v1::PredictRequest request;
    request.set_session_id(session);
    request.set_model(model);
    request.set_batch_size(absl::GetFlag(FLAGS_batch_size));
    v1::TensorProto* t = request.add_inputs();
    t->set_dtype(v1::FLOAT32);
    for (int64_t d : x.shape().dims()) t->add_shape(d);
    t->set_data(x.raw_data(), x.byte_size());
    KILN_ASSIGN_OR_RETURN(v1::PredictResponse r,
                          c.Call(&v1::InferenceService::Stub::Predict, c.inference(), request));
    if (absl::GetFlag(FLAGS_json)) return PrintJson(r);
    shape.assign(r.outputs(0).shape().begin(), r.outputs(0).shape().end());
    data = r.outputs(0).data();
  } else {
    // A predict job over a dataset; its predictions become a dataset, read back in pages.
    v1::StartPredictRequest request;
    request.set_session_id(session);
    request.set_model(model);
    KILN_ASSIGN_OR_RETURN(*request.mutable_data(), DataRefFromFlag(absl::GetFlag(FLAGS_dataset)));
    request.mutable_config()->set_batch_size(absl::GetFlag(FLAGS_batch_size));
    KILN_ASSIGN_OR_RETURN(v1::Job job,
                          c.Call(&v1::JobService::Stub::StartPredict, c.jobs(), request));
    KILN_ASSIGN_OR_RETURN(std::optional<v1::Finished> finished,
                          FollowUnlessDetached(c, session, job));
    if (!finished.has_value()) return absl::OkStatus();
    v1::GetDatasetRequest get;
    get.set_session_id(session);
    get.set_name(finished->output_dataset());
    KILN_ASSIGN_OR_RETURN(v1::DatasetInfo info,
                          c.Call(&v1::DataService::Stub::GetDataset, c.data(), get));
    shape.assign(info.x(0).shape().begin(), info.x(0).shape().end());
    for (int64_t offset = 0; offset < info.samples();) {
      v1::ReadDatasetRequest read;
      read.set_session_id(session);
      read.set_name(finished->output_dataset());
      read.set_array("x");
      read.set_offset(offset);
      KILN_ASSIGN_OR_RETURN(v1::TensorProto rows,
                            c.Call(&v1::DataService::Stub::ReadDataset, c.data(), read));
      data += rows.data();
      offset += rows.shape(0);
    }
    std::printf("predictions stored in dataset %s\n", finished->output_dataset().c_str());
  }
  if (!absl::GetFlag(FLAGS_output).empty()) {
    KILN_RETURN_IF_ERROR(WriteNpy(absl::GetFlag(FLAGS_output), shape, data));
    std::printf("wrote %s\n", absl::GetFlag(FLAGS_output).c_str());
  } else {
    PrintPredictions(shape, data);
  }
  return absl::OkStatus();
}

absl::Status JobsCommand(client::Client& c, const std::vector<std::string>& args) {
  const std::string verb = args.size() > 1 ? args[1] : "";
  KILN_ASSIGN_OR_RETURN(const std::string session, RequireSession());
  if (verb == "list") {
    v1::ListJobsRequest request;
    request.set_session_id(session);
    KILN_ASSIGN_OR_RETURN(v1::ListJobsResponse r,
                          c.Call(&v1::JobService::Stub::ListJobs, c.jobs(), request));
    if (absl::GetFlag(FLAGS_json)) return PrintJson(r);
    for (const v1::Job& j : r.jobs()) {
      const std::string epochs =
          j.kind() == v1::FIT ? absl::StrFormat(" epoch %d/%d", j.epoch() + 1, j.epochs()) : "";
      std::printf("%-8s %-9s %-12s %-11s%s%s\n", j.id().c_str(), v1::JobKind_Name(j.kind()).c_str(),
                  j.model().c_str(), v1::JobState_Name(j.state()).c_str(), epochs.c_str(),
                  FormatLogs(j.logs()).c_str());
    }
    return absl::OkStatus();
  }
  if (args.size() < 3) return UsageError("usage: kiln jobs list | watch JOB | cancel JOB");
  const std::string& job_id = args[2];
  if (verb == "watch") {
    v1::GetJobRequest get;
    get.set_session_id(session);
    get.set_job_id(job_id);
    KILN_ASSIGN_OR_RETURN(v1::Job job, c.Call(&v1::JobService::Stub::GetJob, c.jobs(), get));
    JobProgress progress(stdout, isatty(fileno(stdout)) != 0, job);
    KILN_ASSIGN_OR_RETURN(
        v1::Finished finished,
        c.WatchJob(session, job_id, absl::GetFlag(FLAGS_from), [&](const v1::JobEvent& e) {
          if (absl::GetFlag(FLAGS_json)) {
            PrintJson(e).IgnoreError();
          } else {
            progress.OnEvent(e);
          }
        }));
    if (!absl::GetFlag(FLAGS_json)) {
      std::printf("%s %s%s\n", job_id.c_str(), v1::JobState_Name(finished.state()).c_str(),
                  FormatLogs(finished.results()).c_str());
    }
    if (finished.state() != v1::SUCCEEDED) return JobError(finished, "");
    return absl::OkStatus();
  }
  if (verb == "cancel") {
    v1::CancelJobRequest request;
    request.set_session_id(session);
    request.set_job_id(job_id);
    KILN_ASSIGN_OR_RETURN(v1::Job j, c.Call(&v1::JobService::Stub::CancelJob, c.jobs(), request));
    std::printf("%s %s\n", j.id().c_str(), v1::JobState_Name(j.state()).c_str());
    return absl::OkStatus();
  }
  return UsageError("usage: kiln jobs list | watch JOB | cancel JOB");
}

}  // namespace kiln::cli
