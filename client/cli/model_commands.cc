// kiln model define|summary|definition|list|delete|import|export; kiln compile.
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/cli/commands.h"
#include "client/cli/common.h"
#include "client/cli/flags.h"
#include "client/cli/json_input.h"

namespace kiln::cli {

absl::Status ModelDefine(client::Client& c, const Args& args) {
  v1::DefineModelRequest request;
  KILN_ASSIGN_OR_RETURN(*request.mutable_session_id(), RequireSession());
  KILN_ASSIGN_OR_RETURN(*request.mutable_definition(), ParseJsonFile<v1::ModelDefinition>(args[0]));
  request.set_replace(absl::GetFlag(FLAGS_replace));
  KILN_ASSIGN_OR_RETURN(v1::ModelInfo info,
                        c.Call(&v1::ModelService::Stub::DefineModel, c.models(), request));
  if (absl::GetFlag(FLAGS_json)) return PrintJson(info);
  std::printf("%s%s", info.summary().c_str(), info.compiled() ? "compiled: yes\n" : "");
  return absl::OkStatus();
}

absl::Status ModelSummary(client::Client& c, const Args&) {
  v1::GetModelRequest request;
  KILN_ASSIGN_OR_RETURN(*request.mutable_session_id(), RequireSession());
  KILN_ASSIGN_OR_RETURN(*request.mutable_name(), ResolveModel(c, request.session_id()));
  KILN_ASSIGN_OR_RETURN(v1::ModelInfo info,
                        c.Call(&v1::ModelService::Stub::GetModel, c.models(), request));
  if (absl::GetFlag(FLAGS_json)) return PrintJson(info);
  std::printf("%s", info.summary().c_str());
  return absl::OkStatus();
}

absl::Status ModelDefinition(client::Client& c, const Args& args) {
  v1::GetModelRequest request;
  KILN_ASSIGN_OR_RETURN(*request.mutable_session_id(), RequireSession());
  KILN_ASSIGN_OR_RETURN(*request.mutable_name(), ResolveModel(c, request.session_id()));
  request.set_include_definition(true);
  KILN_ASSIGN_OR_RETURN(v1::ModelInfo info,
                        c.Call(&v1::ModelService::Stub::GetModel, c.models(), request));
  if (args.empty()) return PrintJson(info.definition());
  KILN_ASSIGN_OR_RETURN(std::string json, JsonOf(info.definition()));
  KILN_RETURN_IF_ERROR(WriteFile(args[0], json));
  std::printf("wrote %s: model %s as a definition of %d nodes\n", args[0].c_str(),
              info.name().c_str(), info.definition().nodes_size());
  return absl::OkStatus();
}

absl::Status ModelList(client::Client& c, const Args&) {
  v1::ListModelsRequest request;
  KILN_ASSIGN_OR_RETURN(*request.mutable_session_id(), RequireSession());
  KILN_ASSIGN_OR_RETURN(v1::ListModelsResponse r,
                        c.Call(&v1::ModelService::Stub::ListModels, c.models(), request));
  if (absl::GetFlag(FLAGS_json)) return PrintJson(r);
  for (const v1::ModelInfo& m : r.models()) {
    std::printf("%-20s params=%lld compiled=%s\n", m.name().c_str(),
                static_cast<long long>(m.total_params()), m.compiled() ? "yes" : "no");
  }
  return absl::OkStatus();
}

absl::Status ModelDelete(client::Client& c, const Args& args) {
  v1::DeleteModelRequest request;
  KILN_ASSIGN_OR_RETURN(*request.mutable_session_id(), RequireSession());
  request.set_name(args[0]);
  KILN_RETURN_IF_ERROR(c.Call(&v1::ModelService::Stub::DeleteModel, c.models(), request).status());
  std::printf("deleted model %s\n", request.name().c_str());
  return absl::OkStatus();
}

namespace {

// --format, or what the file's name says (for export).
absl::StatusOr<v1::KerasFormat> KerasFormatOf(const std::string& file, bool from_name) {
  const std::string format = absl::GetFlag(FLAGS_format);
  if (format == "json") return v1::KERAS_FORMAT_JSON;
  if (format == "keras") return v1::KERAS_FORMAT_KERAS;
  if (format == "weights") return v1::KERAS_FORMAT_WEIGHTS;
  if (!format.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--format=", format, ": expected json, keras or weights"));
  }
  if (!from_name) return v1::KERAS_FORMAT_UNSPECIFIED;
  if (absl::EndsWith(file, ".keras")) return v1::KERAS_FORMAT_KERAS;
  if (absl::EndsWith(file, ".h5")) return v1::KERAS_FORMAT_WEIGHTS;
  return v1::KERAS_FORMAT_JSON;
}

absl::Status PrintImported(const v1::ModelInfo& info) {
  if (absl::GetFlag(FLAGS_json)) return PrintJson(info);
  std::printf("%s%s", info.summary().c_str(), info.compiled() ? "compiled: yes\n" : "");
  return absl::OkStatus();
}

}  // namespace

absl::Status ModelImport(client::Client& c, const Args& args) {
  v1::ImportModelRequest request;
  KILN_ASSIGN_OR_RETURN(*request.mutable_session_id(), RequireSession());
  KILN_ASSIGN_OR_RETURN(v1::KerasFormat format, KerasFormatOf(args[0], false));
  request.set_format(format);
  request.set_name(absl::GetFlag(FLAGS_model).empty() ? absl::GetFlag(FLAGS_name)
                                                      : absl::GetFlag(FLAGS_model));
  request.set_replace(absl::GetFlag(FLAGS_replace));
  request.set_skip_compile(absl::GetFlag(FLAGS_skip_compile));
  if (absl::GetFlag(FLAGS_on_server)) {
    request.set_path(args[0]);
    KILN_ASSIGN_OR_RETURN(v1::ModelInfo info,
                          c.Call(&v1::ModelService::Stub::ImportModel, c.models(), request));
    return PrintImported(info);
  }
  // Read before the call starts, so that a missing file sends nothing; then streamed in
  // 1 MiB chunks, whatever the server's message limit.
  KILN_ASSIGN_OR_RETURN(const std::string bytes, ReadFile(args[0]));
  grpc::ClientContext context;
  client::NameSession(context, request);
  v1::ModelInfo info;
  auto writer = c.models().ImportModelStream(&context, &info);
  v1::ImportModelChunk first;
  *first.mutable_request() = request;
  if (writer->Write(first)) {
    for (size_t offset = 0; offset < bytes.size(); offset += 1 << 20) {
      v1::ImportModelChunk chunk;
      chunk.set_data(bytes.substr(offset, 1 << 20));
      if (!writer->Write(chunk)) break;  // the server ended the call; Finish says why
    }
  }
  writer->WritesDone();
  KILN_RETURN_IF_ERROR(client::FromGrpc(writer->Finish()));
  return PrintImported(info);
}

absl::Status ModelExport(client::Client& c, const Args& args) {
  v1::ExportModelRequest request;
  KILN_ASSIGN_OR_RETURN(*request.mutable_session_id(), RequireSession());
  KILN_ASSIGN_OR_RETURN(*request.mutable_model(), ResolveModel(c, request.session_id()));
  KILN_ASSIGN_OR_RETURN(v1::KerasFormat format, KerasFormatOf(args[0], true));
  request.set_format(format);
  grpc::ClientContext context;
  client::NameSession(context, request);
  auto reader = c.models().ExportModel(&context, request);
  std::string bytes;
  v1::ExportModelChunk chunk;
  while (reader->Read(&chunk)) bytes += chunk.data();
  KILN_RETURN_IF_ERROR(client::FromGrpc(reader->Finish()));
  if (int64_t(bytes.size()) != chunk.total_bytes()) {
    return absl::DataLossError(
        absl::StrCat("received ", bytes.size(), " of the file's ", chunk.total_bytes(), " bytes"));
  }
  KILN_RETURN_IF_ERROR(WriteFile(args[0], bytes));
  std::printf("wrote %s (%zu bytes)\n", args[0].c_str(), bytes.size());
  return absl::OkStatus();
}

absl::Status Compile(client::Client& c, const Args&) {
  v1::CompileRequest request;
  KILN_ASSIGN_OR_RETURN(*request.mutable_session_id(), RequireSession());
  KILN_ASSIGN_OR_RETURN(*request.mutable_model(), ResolveModel(c, request.session_id()));
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

}  // namespace kiln::cli
