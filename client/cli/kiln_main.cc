// kiln: the command-line client. `kiln help` lists the commands; every failure exits non-zero
// with the server's status and message on stderr.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/cli/progress.h"
#include "client/cpp/client.h"
#include "core/base/status.h"
#include "core/io/dataset.h"
#include "core/io/npy_writer.h"
#include "core/io/readers.h"
#include "google/protobuf/util/json_util.h"

ABSL_FLAG(std::string, server, "",
          "Kiln server, host:port (default: $KILN_SERVER or "
          "localhost:50051)");
ABSL_FLAG(std::string, session, "", "session id (default: $KILN_SESSION)");
ABSL_FLAG(std::string, model, "", "model name");
ABSL_FLAG(std::string, name, "", "name of what is created (session label, dataset)");
ABSL_FLAG(int64_t, ttl, 0, "session TTL in seconds (0: the server's default)");
ABSL_FLAG(bool, replace, false, "model define: replace a model of the same name");
ABSL_FLAG(std::string, optimizer, "adam", "compile: sgd or adam");
ABSL_FLAG(double, learning_rate, 0, "compile: learning rate (0: the optimizer's default)");
ABSL_FLAG(double, momentum, 0, "compile: SGD momentum");
ABSL_FLAG(std::string, loss, "sparse_categorical_crossentropy", "compile: loss");
ABSL_FLAG(bool, from_logits, false, "compile: the model outputs logits");
ABSL_FLAG(std::string, metrics, "accuracy", "compile: comma-separated metrics");
ABSL_FLAG(std::string, config, "", "compile: a CompileConfig JSON file (overrides the above)");
ABSL_FLAG(std::string, dataset, "", "dataset name (a session dataset or fashion_mnist)");
ABSL_FLAG(std::string, validation_dataset, "", "fit: validation data instead of a split");
ABSL_FLAG(int, epochs, 1, "fit: epochs");
ABSL_FLAG(int, batch_size, 32, "fit/evaluate/predict: batch size");
ABSL_FLAG(double, validation_split, 0, "fit: fraction of the data (its tail) to validate on");
ABSL_FLAG(int64_t, seed, -1, "fit: seed for shuffling and dropout (-1: random)");
ABSL_FLAG(bool, detach, false, "fit/evaluate/predict: print the job id and return");
ABSL_FLAG(std::string, builtin, "", "data open: a built-in dataset, e.g. fashion_mnist:train");
ABSL_FLAG(std::string, x, "", "data open/upload: features file (.npy, .csv, IDX)");
ABSL_FLAG(std::string, y, "", "data open/upload: targets file");
ABSL_FLAG(double, scale, 1.0, "data open/upload: multiply features, e.g. 0.00392157 (1/255)");
ABSL_FLAG(std::string, input, "", "predict: a .npy file of inputs (unary Predict)");
ABSL_FLAG(std::string, output, "", "predict: write the predictions to this .npy file");
ABSL_FLAG(int64_t, from, 0, "jobs watch: events after this sequence number");
ABSL_FLAG(bool, json, false, "print responses as protobuf JSON");

namespace kiln::cli {
namespace {

constexpr char kUsage[] = R"(kiln - command-line client for a Kiln server

Usage: kiln <command> [flags]

  health                                   is the server serving?
  session create [--name=N] [--ttl=SECONDS]
  session list | show | delete              (show/delete: --session)
  model define FILE.json [--replace]       a ModelDefinition in protobuf JSON
  model summary --model=M                  Keras-style model.summary()
  model list
  compile --model=M [--optimizer=adam] [--learning_rate=R] [--momentum=M] [--loss=L]
          [--from_logits] [--metrics=accuracy] | [--config=FILE.json]
  data open --name=N (--builtin=fashion_mnist:train | --x=FILE [--y=FILE]) [--scale=S]
  data upload --name=N --x=FILE.npy [--y=FILE.npy] [--scale=S]
  data list
  fit --model=M --dataset=D [--epochs=1] [--batch_size=32] [--validation_split=F]
      [--validation_dataset=D] [--seed=N] [--detach]
  evaluate --model=M --dataset=D [--batch_size=32]
  predict --model=M (--dataset=D | --input=FILE.npy) [--output=FILE.npy]
  jobs list | watch JOB [--from=N] | cancel JOB

Every command takes --server=HOST:PORT (default $KILN_SERVER, else localhost:50051); session
commands take --session=ID (default $KILN_SESSION). --json prints responses as JSON.
The built-in dataset fashion_mnist means its train split for fit, its test split otherwise.
Exit status: 0 on success, 1 when the server refuses or a job fails, 2 for usage errors.
)";

constexpr char kUsagePayload[] = "type.kiln.dev/kiln.cli.Usage";

// A command-line mistake: exit status 2 rather than 1.
absl::Status UsageError(absl::string_view message) {
  absl::Status status = absl::InvalidArgumentError(message);
  status.SetPayload(kUsagePayload, absl::Cord("usage"));
  return status;
}

std::string Env(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

std::string Server() {
  const std::string flag = absl::GetFlag(FLAGS_server);
  return flag.empty() ? Env("KILN_SERVER", "localhost:50051") : flag;
}

absl::StatusOr<std::string> RequireSession() {
  const std::string flag = absl::GetFlag(FLAGS_session);
  const std::string s = flag.empty() ? Env("KILN_SESSION", "") : flag;
  if (s.empty()) return UsageError("this command needs --session (or $KILN_SESSION)");
  return s;
}

absl::StatusOr<std::string> Require(const std::string& value, const char* flag) {
  if (value.empty()) return UsageError(absl::StrCat("this command needs --", flag));
  return value;
}

absl::Status PrintJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  google::protobuf::util::MessageToJsonString(message, &json, options);
  std::printf("%s", json.c_str());
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadText(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return UsageError(absl::StrCat("cannot read ", path));
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

template <typename Message>
absl::StatusOr<Message> ParseJsonFile(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(std::string text, ReadText(path));
  Message message;
  const auto status = google::protobuf::util::JsonStringToMessage(text, &message);
  if (!status.ok()) {
    return UsageError(absl::StrCat(path, ": not a valid ", Message::descriptor()->name(),
                                   " in protobuf JSON: ", status.ToString()));
  }
  return message;
}

// --- commands -----------------------------------------------------------------------------
// Each returns OK or the error to report; a UsageError exits 2, anything else 1.

absl::Status Health(client::Client& c) {
  KILN_RETURN_IF_ERROR(c.Health());
  std::printf("SERVING\n");
  return absl::OkStatus();
}

absl::Status SessionCommand(client::Client& c, const std::vector<std::string>& args) {
  const std::string verb = args.size() > 1 ? args[1] : "";
  if (verb == "create") {
    v1::CreateSessionRequest request;
    request.set_name(absl::GetFlag(FLAGS_name));
    request.set_ttl_seconds(absl::GetFlag(FLAGS_ttl));
    KILN_ASSIGN_OR_RETURN(v1::Session s,
                          c.Call(&v1::SessionService::Stub::CreateSession, c.sessions(), request));
    if (absl::GetFlag(FLAGS_json)) return PrintJson(s);
    std::printf("%s\n", s.id().c_str());
  } else if (verb == "list") {
    KILN_ASSIGN_OR_RETURN(
        v1::ListSessionsResponse r,
        c.Call(&v1::SessionService::Stub::ListSessions, c.sessions(), v1::ListSessionsRequest()));
    if (absl::GetFlag(FLAGS_json)) return PrintJson(r);
    for (const v1::Session& s : r.sessions()) {
      std::printf("%s  %-16s models=%d datasets=%d jobs=%d\n", s.id().c_str(), s.name().c_str(),
                  s.models_size(), s.datasets_size(), s.jobs_size());
    }
  } else if (verb == "show") {
    v1::GetSessionRequest request;
    KILN_ASSIGN_OR_RETURN(*request.mutable_session_id(), RequireSession());
    KILN_ASSIGN_OR_RETURN(v1::Session s,
                          c.Call(&v1::SessionService::Stub::GetSession, c.sessions(), request));
    return PrintJson(s);
  } else if (verb == "delete") {
    v1::DeleteSessionRequest request;
    KILN_ASSIGN_OR_RETURN(*request.mutable_session_id(), RequireSession());
    KILN_RETURN_IF_ERROR(
        c.Call(&v1::SessionService::Stub::DeleteSession, c.sessions(), request).status());
    std::printf("deleted %s\n", request.session_id().c_str());
  } else {
    return UsageError("usage: kiln session create|list|show|delete");
  }
  return absl::OkStatus();
}

absl::Status ModelCommand(client::Client& c, const std::vector<std::string>& args) {
  const std::string verb = args.size() > 1 ? args[1] : "";
  KILN_ASSIGN_OR_RETURN(const std::string session, RequireSession());
  if (verb == "define") {
    if (args.size() < 3) return UsageError("usage: kiln model define FILE.json");
    v1::DefineModelRequest request;
    request.set_session_id(session);
    KILN_ASSIGN_OR_RETURN(*request.mutable_definition(),
                          ParseJsonFile<v1::ModelDefinition>(args[2]));
    request.set_replace(absl::GetFlag(FLAGS_replace));
    KILN_ASSIGN_OR_RETURN(v1::ModelInfo info,
                          c.Call(&v1::ModelService::Stub::DefineModel, c.models(), request));
    if (absl::GetFlag(FLAGS_json)) return PrintJson(info);
    std::printf("%s%s", info.summary().c_str(), info.compiled() ? "compiled: yes\n" : "");
  } else if (verb == "summary") {
    v1::GetModelRequest request;
    request.set_session_id(session);
    KILN_ASSIGN_OR_RETURN(*request.mutable_name(), Require(absl::GetFlag(FLAGS_model), "model"));
    KILN_ASSIGN_OR_RETURN(v1::ModelInfo info,
                          c.Call(&v1::ModelService::Stub::GetModel, c.models(), request));
    if (absl::GetFlag(FLAGS_json)) return PrintJson(info);
    std::printf("%s", info.summary().c_str());
  } else if (verb == "list") {
    v1::ListModelsRequest request;
    request.set_session_id(session);
    KILN_ASSIGN_OR_RETURN(v1::ListModelsResponse r,
                          c.Call(&v1::ModelService::Stub::ListModels, c.models(), request));
    if (absl::GetFlag(FLAGS_json)) return PrintJson(r);
    for (const v1::ModelInfo& m : r.models()) {
      std::printf("%-20s params=%lld compiled=%s\n", m.name().c_str(),
                  static_cast<long long>(m.total_params()), m.compiled() ? "yes" : "no");
    }
  } else {
    return UsageError("usage: kiln model define FILE.json | summary | list");
  }
  return absl::OkStatus();
}

absl::Status Compile(client::Client& c) {
  v1::CompileRequest request;
  KILN_ASSIGN_OR_RETURN(*request.mutable_session_id(), RequireSession());
  KILN_ASSIGN_OR_RETURN(*request.mutable_model(), Require(absl::GetFlag(FLAGS_model), "model"));
  v1::CompileConfig& config = *request.mutable_config();
  if (!absl::GetFlag(FLAGS_config).empty()) {
    KILN_ASSIGN_OR_RETURN(config, ParseJsonFile<v1::CompileConfig>(absl::GetFlag(FLAGS_config)));
  } else {
    const std::string optimizer = absl::GetFlag(FLAGS_optimizer);
    const double lr = absl::GetFlag(FLAGS_learning_rate);
    if (optimizer == "sgd" || optimizer == "SGD") {
      v1::SGD* sgd = config.mutable_optimizer()->mutable_sgd();
      if (lr > 0) sgd->set_learning_rate(float(lr));
      sgd->set_momentum(float(absl::GetFlag(FLAGS_momentum)));
    } else if (optimizer == "adam" || optimizer == "Adam") {
      v1::Adam* adam = config.mutable_optimizer()->mutable_adam();
      if (lr > 0) adam->set_learning_rate(float(lr));
    } else {
      config.mutable_optimizer()->set_name(optimizer);  // the server explains what it knows
    }
    config.mutable_loss()->set_name(absl::GetFlag(FLAGS_loss));
    config.mutable_loss()->set_from_logits(absl::GetFlag(FLAGS_from_logits));
    for (absl::string_view m :
         absl::StrSplit(absl::GetFlag(FLAGS_metrics), ',', absl::SkipEmpty())) {
      config.add_metrics(std::string(m));
    }
  }
  KILN_ASSIGN_OR_RETURN(v1::ModelInfo info,
                        c.Call(&v1::ModelService::Stub::Compile, c.models(), request));
  if (absl::GetFlag(FLAGS_json)) return PrintJson(info);
  std::printf("compiled %s\n", info.name().c_str());
  return absl::OkStatus();
}

absl::Status PrintDataset(const v1::DatasetInfo& info) {
  if (absl::GetFlag(FLAGS_json)) return PrintJson(info);
  std::string shapes;
  for (const v1::TensorSpec& spec : info.x()) {
    absl::StrAppend(&shapes, shapes.empty() ? "x " : ", ", "(", absl::StrJoin(spec.shape(), ", "),
                    ")");
  }
  if (info.has_y()) absl::StrAppend(&shapes, ", y (", absl::StrJoin(info.y().shape(), ", "), ")");
  std::printf("%s: %lld samples, %s [%s]\n", info.name().c_str(),
              static_cast<long long>(info.samples()), shapes.c_str(), info.source().c_str());
  return absl::OkStatus();
}

absl::Status DataCommand(client::Client& c, const std::vector<std::string>& args) {
  const std::string verb = args.size() > 1 ? args[1] : "";
  KILN_ASSIGN_OR_RETURN(const std::string session, RequireSession());
  if (verb == "open") {
    v1::OpenDatasetRequest request;
    request.set_session_id(session);
    KILN_ASSIGN_OR_RETURN(*request.mutable_name(), Require(absl::GetFlag(FLAGS_name), "name"));
    if (!absl::GetFlag(FLAGS_builtin).empty()) {
      request.set_builtin(absl::GetFlag(FLAGS_builtin));
    } else {
      KILN_ASSIGN_OR_RETURN(*request.mutable_files()->add_x(),
                            Require(absl::GetFlag(FLAGS_x), "x (or --builtin)"));
      request.mutable_files()->set_y(absl::GetFlag(FLAGS_y));
    }
    if (absl::GetFlag(FLAGS_scale) != 1.0) {
      request.mutable_transform()->set_scale(float(absl::GetFlag(FLAGS_scale)));
    }
    KILN_ASSIGN_OR_RETURN(v1::DatasetInfo info,
                          c.Call(&v1::DataService::Stub::OpenDataset, c.data(), request));
    return PrintDataset(info);
  }
  if (verb == "upload") {
    // The .npy files are streamed in 1 MiB chunks and parsed by the server at the end.
    v1::UploadDatasetRequest header;
    v1::UploadHeader& h = *header.mutable_header();
    h.set_session_id(session);
    KILN_ASSIGN_OR_RETURN(*h.mutable_name(), Require(absl::GetFlag(FLAGS_name), "name"));
    KILN_ASSIGN_OR_RETURN(const std::string x_path, Require(absl::GetFlag(FLAGS_x), "x"));
    h.add_x()->set_format("npy");
    const std::string y_path = absl::GetFlag(FLAGS_y);
    if (!y_path.empty()) h.mutable_y()->set_format("npy");
    if (absl::GetFlag(FLAGS_scale) != 1.0) {
      h.mutable_transform()->set_scale(float(absl::GetFlag(FLAGS_scale)));
    }
    grpc::ClientContext context;
    v1::DatasetInfo info;
    auto writer = c.data().UploadDataset(&context, &info);
    writer->Write(header);
    for (const auto& [array, path] :
         {std::pair<std::string, std::string>{"x", x_path}, {"y", y_path}}) {
      if (path.empty()) continue;
      KILN_ASSIGN_OR_RETURN(const std::string bytes, ReadText(path));
      for (size_t offset = 0; offset < bytes.size(); offset += 1 << 20) {
        v1::UploadDatasetRequest chunk;
        chunk.mutable_chunk()->set_array(array);
        chunk.mutable_chunk()->set_data(bytes.substr(offset, 1 << 20));
        if (!writer->Write(chunk)) break;  // the server ended the call; Finish says why
      }
    }
    writer->WritesDone();
    KILN_RETURN_IF_ERROR(client::FromGrpc(writer->Finish()));
    return PrintDataset(info);
  }
  if (verb == "list") {
    v1::ListDatasetsRequest request;
    request.set_session_id(session);
    KILN_ASSIGN_OR_RETURN(v1::ListDatasetsResponse r,
                          c.Call(&v1::DataService::Stub::ListDatasets, c.data(), request));
    if (absl::GetFlag(FLAGS_json)) return PrintJson(r);
    for (const v1::DatasetInfo& d : r.datasets()) KILN_RETURN_IF_ERROR(PrintDataset(d));
    return absl::OkStatus();
  }
  return UsageError("usage: kiln data open|upload|list");
}

// Follows a job to its end, drawing progress for fits; an error unless it SUCCEEDED.
absl::StatusOr<v1::Finished> Follow(client::Client& c, const std::string& session,
                                    const v1::Job& job) {
  FitProgress progress(stdout, isatty(fileno(stdout)) != 0);
  KILN_ASSIGN_OR_RETURN(v1::Finished finished,
                        c.WatchJob(session, job.id(), 0, [&](const v1::JobEvent& e) {
                          if (job.kind() == v1::FIT && !absl::GetFlag(FLAGS_json)) {
                            progress.OnEvent(e);
                          }
                        }));
  if (finished.state() != v1::SUCCEEDED) {
    return absl::Status(static_cast<absl::StatusCode>(finished.error().code()),
                        absl::StrCat("job ", job.id(), " ", v1::JobState_Name(finished.state()),
                                     ": ", finished.error().message()));
  }
  return finished;
}

absl::StatusOr<v1::DataRef> DataRefFromFlag(const std::string& dataset) {
  v1::DataRef ref;
  KILN_ASSIGN_OR_RETURN(*ref.mutable_dataset(), Require(dataset, "dataset"));
  return ref;
}

absl::Status Fit(client::Client& c) {
  v1::StartFitRequest request;
  KILN_ASSIGN_OR_RETURN(*request.mutable_session_id(), RequireSession());
  KILN_ASSIGN_OR_RETURN(*request.mutable_model(), Require(absl::GetFlag(FLAGS_model), "model"));
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
  if (absl::GetFlag(FLAGS_detach)) {
    std::printf("%s\n", job.id().c_str());
    return absl::OkStatus();
  }
  KILN_ASSIGN_OR_RETURN(v1::Finished finished, Follow(c, request.session_id(), job));
  if (absl::GetFlag(FLAGS_json)) return PrintJson(finished);
  return absl::OkStatus();
}

absl::Status Evaluate(client::Client& c) {
  v1::StartEvaluateRequest request;
  KILN_ASSIGN_OR_RETURN(*request.mutable_session_id(), RequireSession());
  KILN_ASSIGN_OR_RETURN(*request.mutable_model(), Require(absl::GetFlag(FLAGS_model), "model"));
  KILN_ASSIGN_OR_RETURN(*request.mutable_data(), DataRefFromFlag(absl::GetFlag(FLAGS_dataset)));
  request.mutable_config()->set_batch_size(absl::GetFlag(FLAGS_batch_size));
  KILN_ASSIGN_OR_RETURN(v1::Job job,
                        c.Call(&v1::JobService::Stub::StartEvaluate, c.jobs(), request));
  if (absl::GetFlag(FLAGS_detach)) {
    std::printf("%s\n", job.id().c_str());
    return absl::OkStatus();
  }
  KILN_ASSIGN_OR_RETURN(v1::Finished finished, Follow(c, request.session_id(), job));
  if (absl::GetFlag(FLAGS_json)) return PrintJson(finished);
  const std::string line = FormatLogs(finished.results());
  std::printf("%s\n", line.substr(std::min<size_t>(3, line.size())).c_str());  // drop " - "
  return absl::OkStatus();
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

absl::Status Predict(client::Client& c) {
  KILN_ASSIGN_OR_RETURN(const std::string session, RequireSession());
  KILN_ASSIGN_OR_RETURN(const std::string model, Require(absl::GetFlag(FLAGS_model), "model"));
  std::vector<int64_t> shape;
  std::string data;
  if (!absl::GetFlag(FLAGS_input).empty()) {
    // Unary Predict on the rows of an .npy file.
    const std::string path = absl::GetFlag(FLAGS_input);
    KILN_ASSIGN_OR_RETURN(const std::string bytes, ReadText(path));
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
    if (absl::GetFlag(FLAGS_detach)) {
      std::printf("%s\n", job.id().c_str());
      return absl::OkStatus();
    }
    KILN_ASSIGN_OR_RETURN(v1::Finished finished, Follow(c, session, job));
    v1::GetDatasetRequest get;
    get.set_session_id(session);
    get.set_name(finished.output_dataset());
    KILN_ASSIGN_OR_RETURN(v1::DatasetInfo info,
                          c.Call(&v1::DataService::Stub::GetDataset, c.data(), get));
    shape.assign(info.x(0).shape().begin(), info.x(0).shape().end());
    for (int64_t offset = 0; offset < info.samples();) {
      v1::ReadDatasetRequest read;
      read.set_session_id(session);
      read.set_name(finished.output_dataset());
      read.set_array("x");
      read.set_offset(offset);
      KILN_ASSIGN_OR_RETURN(v1::TensorProto rows,
                            c.Call(&v1::DataService::Stub::ReadDataset, c.data(), read));
      data += rows.data();
      offset += rows.shape(0);
    }
    std::printf("predictions stored in dataset %s\n", finished.output_dataset().c_str());
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
    FitProgress progress(stdout, isatty(fileno(stdout)) != 0);
    KILN_ASSIGN_OR_RETURN(
        v1::Finished finished,
        c.WatchJob(session, job_id, absl::GetFlag(FLAGS_from), [&](const v1::JobEvent& e) {
          if (absl::GetFlag(FLAGS_json)) {
            PrintJson(e).IgnoreError();
          } else if (job.kind() == v1::FIT) {
            progress.OnEvent(e);
          }
        }));
    if (!absl::GetFlag(FLAGS_json)) {
      std::printf("%s %s%s\n", job_id.c_str(), v1::JobState_Name(finished.state()).c_str(),
                  FormatLogs(finished.results()).c_str());
    }
    if (finished.state() != v1::SUCCEEDED) {
      return absl::Status(static_cast<absl::StatusCode>(finished.error().code()),
                          finished.error().message());
    }
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

absl::Status Run(const std::vector<std::string>& args) {
  client::Client c(Server());
  const std::string& command = args[0];
  if (command == "health") return Health(c);
  if (command == "session") return SessionCommand(c, args);
  if (command == "model") return ModelCommand(c, args);
  if (command == "compile") return Compile(c);
  if (command == "data") return DataCommand(c, args);
  if (command == "fit") return Fit(c);
  if (command == "evaluate") return Evaluate(c);
  if (command == "predict") return Predict(c);
  if (command == "jobs") return JobsCommand(c, args);
  return UsageError(absl::StrCat("unknown command \"", command, "\"; `kiln help` lists them"));
}

}  // namespace
}  // namespace kiln::cli

int main(int argc, char** argv) {
  // `kiln --help` and `kiln <command> --help` print the command list rather than every flag
  // of the libraries linked in (--helpfull still does that).
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::printf("%s", kiln::cli::kUsage);
      return 0;
    }
  }
  absl::SetProgramUsageMessage(kiln::cli::kUsage);
  const std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  const std::vector<std::string> args(positional.begin() + 1, positional.end());
  if (args.empty() || args[0] == "help") {
    std::printf("%s", kiln::cli::kUsage);
    return args.empty() ? 2 : 0;
  }
  const absl::Status status = kiln::cli::Run(args);
  if (status.ok()) return 0;
  std::fflush(stdout);
  const bool usage = status.GetPayload(kiln::cli::kUsagePayload).has_value();
  std::fprintf(stderr, "kiln: %s%s\n",
               usage ? "" : absl::StrCat(absl::StatusCodeToString(status.code()), ": ").c_str(),
               std::string(status.message()).c_str());
  return usage ? 2 : 1;
}
