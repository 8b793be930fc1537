// Session: Keras model files in and out. Importing a model is DefineModel with the file's
// graph, its weights set before the model is recorded, and both recorded in one transaction:
// an import that answered OK is whole after a restart, one that failed left nothing.
#include <algorithm>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/base/status.h"
#include "server/reader/file_reader.h"
#include "server/service/call_scope.h"
#include "server/service/data_root.h"
#include "server/service/model_state.h"
#include "server/service/session.h"
#include "server/service/session_internal.h"

namespace kiln::server {
namespace {

// An error of the definition made from a Keras file, at its place in the file instead:
// "definition.nodes[3].layer.dense.units" -> "<source>.config.layers[3].config.units".
absl::Status InFileTerms(const absl::Status& status, const KerasModel& model,
                         const std::string& source) {
  std::optional<std::string> path = FieldPathOf(status);
  if (!path.has_value()) return status;
  absl::string_view rest = *path;
  if (absl::ConsumePrefix(&rest, "definition.compile")) {
    return WithFieldPath(status, absl::StrCat(source, ".compile_config", rest));
  }
  if (absl::ConsumePrefix(&rest, "definition.name")) return WithFieldPath(status, "name");
  if (absl::ConsumePrefix(&rest, "definition.")) {
    return WithFieldPath(status, absl::StrCat(source, ".", model.JsonPathOf(rest)));
  }
  return status;
}

// The optimizer state a Keras file holds for `model`, when it fits the trainer's optimizer.
// Keras lists the slots in the order of its model.layers (`groups`, by layer name), which
// need not be Kiln's; they are put in the trainer's order. As in Keras, a state that does not
// fit is skipped, not an error.
std::optional<Optimizer::State> OptimizerStateOf(
    const WeightsFile& file, const std::vector<std::pair<std::string, std::string>>& groups,
    const Model& model, const Trainer& trainer) {
  auto group = file.groups.find("optimizer");
  if (!trainer.compiled() || group == file.groups.end()) return std::nullopt;
  std::vector<const Variable*> keras_order;
  for (const auto& [name, path] : groups) {
    for (const Layer* layer : model.layers()) {
      if (layer->name() != name) continue;
      for (const auto& v : layer->variables()) {
        if (v->trainable) keras_order.push_back(v.get());
      }
    }
  }
  const std::vector<Variable*> kiln_order = trainer.TrainableVariables();
  if (keras_order.size() != kiln_order.size()) return std::nullopt;
  absl::StatusOr<Optimizer::State> keras_state =
      OptimizerStateFromKeras(*trainer.optimizer(), group->second, int64_t(keras_order.size()));
  if (!keras_state.ok()) return std::nullopt;
  Optimizer::State state;
  state.iterations = keras_state->iterations;
  for (const Variable* v : kiln_order) {
    const auto at = std::find(keras_order.begin(), keras_order.end(), v);
    if (at == keras_order.end()) return std::nullopt;
    state.slots.push_back(keras_state->slots[at - keras_order.begin()]);
    for (const Tensor& slot : state.slots.back()) {
      if (slot.dtype() != DType::kFloat32 || slot.shape() != v->value.shape()) return std::nullopt;
    }
  }
  return state;
}

}  // namespace

KerasReadOptions Session::ModelFileLimits() const {
  KerasReadOptions limits;
  limits.max_elements = 4 * runtime_.options->max_model_parameters + 16;
  limits.max_bytes = 4 * limits.max_elements + (int64_t{64} << 20);
  return limits;
}

absl::StatusOr<KerasFile> Session::ReadKerasFileReserved(absl::string_view bytes,
                                                         v1::KerasFormat format,
                                                         const KerasReadOptions& read) {
  if (format == v1::KERAS_FORMAT_UNSPECIFIED) format = DetectKerasFormat(bytes);
  const ServerOptions& options = *runtime_.options;
  const FileReaderOptions reader{.path = options.file_reader,
                                 .memory_bytes = options.file_reader_memory,
                                 .timeout = options.file_reader_timeout};
  if (format == v1::KERAS_FORMAT_JSON) {
    return ReadUntrustedKerasFile(bytes, format, read, reader, &CallScope::Cancelled);
  }
  // The reader's memory is the session's while it runs: the machine's, however it is spent.
  if (absl::Status reserved = memory_->Charge(options.file_reader_memory); !reserved.ok()) {
    return absl::ResourceExhaustedError(
        absl::StrCat(reserved.message(), " (reading a .keras or .weights.h5 file reserves ",
                     options.file_reader_memory, " bytes, --file_reader_memory, while it runs)"));
  }
  absl::Cleanup release = [&] { memory_->Release(options.file_reader_memory); };
  return ReadUntrustedKerasFile(bytes, format, read, reader, &CallScope::Cancelled);
}

absl::StatusOr<v1::ModelInfo> Session::ImportModel(const v1::ImportModelRequest& request) {
  const ServerOptions& options = *runtime_.options;
  KerasReadOptions read = ModelFileLimits();
  read.compile = !request.skip_compile();
  std::string source, bytes;
  switch (request.source_case()) {
    case v1::ImportModelRequest::kData:
      source = "data";
      break;
    case v1::ImportModelRequest::kPath: {
      source = "path";
      const DataRoot root(options.data_root);
      if (!root.enabled()) {
        return WithFieldPrefix(
            absl::FailedPreconditionError(
                "this server reads no files: start it with --data_root, or send the file's "
                "bytes in `data`"),
            "path");
      }
      absl::StatusOr<std::string> read_bytes = root.Read(request.path(), size_t(read.max_bytes));
      if (!read_bytes.ok()) return WithFieldPrefix(read_bytes.status(), "path");
      bytes = *std::move(read_bytes);
      break;
    }
    default:
      return FieldError("data",
                        "give the file's bytes in `data`, or its path below the "
                        "server's --data_root in `path`");
  }
  const absl::string_view file_bytes = source == "data" ? request.data() : bytes;
  absl::StatusOr<KerasFile> file = ReadKerasFileReserved(file_bytes, request.format(), read);
  if (!file.ok()) return WithFieldPrefix(file.status(), source);
  if (file->format == v1::KERAS_FORMAT_WEIGHTS) {
    return ImportWeights(request, *file->weights, source);
  }

  KerasModel& keras = *file->model;
  v1::DefineModelRequest define;
  *define.mutable_definition() = std::move(keras.definition);
  if (!request.name().empty()) define.mutable_definition()->set_name(request.name());
  define.set_replace(request.replace());
  absl::MutexLock writer(&writer_mu_);
  absl::StatusOr<PreparedModel> prepared = PrepareModel(define);
  if (!prepared.ok()) return InFileTerms(prepared.status(), keras, source);
  Model& model = *prepared->entry->model;
  store::ModelWeights stored;
  if (file->weights.has_value()) {
    absl::StatusOr<std::vector<MatchedWeights>> weights =
        MatchKerasWeights(*file->weights, keras.weight_groups, model, "model.weights.h5:");
    if (!weights.ok()) return WithFieldPrefix(weights.status(), source);
    for (MatchedWeights& w : *weights) KILN_RETURN_IF_ERROR(w.layer->SetWeights(w.values));
    if (std::optional<Optimizer::State> state = OptimizerStateOf(
            *file->weights, keras.weight_groups, model, *prepared->entry->trainer)) {
      KILN_RETURN_IF_ERROR(prepared->entry->trainer->SetOptimizerState(*state));
      AppendOptimizerState(model, *prepared->entry->trainer, *state, stored.optimizer);
    }
    stored.layers = ModelLayerWeights(model, prepared->entry->name);
  }
  if (CallScope::Cancelled()) return CallScope::Stopped();
  KILN_RETURN_IF_ERROR(runtime_.store->PutModel(prepared->record, prepared->entry->name,
                                                prepared->op, /*own_scope=*/true,
                                                file->weights.has_value() ? &stored : nullptr));
  return CommitModel(*std::move(prepared));
}

absl::StatusOr<v1::ModelInfo> Session::ImportWeights(const v1::ImportModelRequest& request,
                                                     const WeightsFile& file,
                                                     const std::string& source) {
  KILN_RETURN_IF_ERROR(compute_.EnterShort());
  absl::Cleanup leave = [this] { compute_.LeaveShort(); };
  absl::MutexLock writer(&writer_mu_);
  std::shared_ptr<ModelEntry> entry;
  {
    absl::ReaderMutexLock lock(&mu_);
    absl::StatusOr<std::shared_ptr<ModelEntry>> found = FindModel(request.name(), "name");
    if (!found.ok()) {
      return request.name().empty()
                 ? FieldError("name",
                              "a .weights.h5 file holds weights only: name the model "
                              "to load them into")
                 : found.status();
    }
    entry = *std::move(found);
  }
  const Model& model = *entry->model;
  absl::StatusOr<std::vector<MatchedWeights>> weights =
      MatchKerasWeights(file, KerasWeightGroups(model), model, "");
  if (!weights.ok()) return WithFieldPrefix(weights.status(), source);
  // Stored as they will be before anything changes.
  std::vector<store::LayerTensors> stored;
  for (const MatchedWeights& w : *weights) {
    store::LayerTensors layer{entry->scope(), w.layer->name(), {}};
    for (size_t i = 0; i < w.values.size(); ++i) {
      layer.tensors.push_back({w.layer->variables()[i]->name, w.values[i]});
    }
    stored.push_back(std::move(layer));
  }
  std::vector<store::NamedTensor> optimizer;
  const std::optional<Optimizer::State> state =
      OptimizerStateOf(file, KerasWeightGroups(model), model, *entry->trainer);
  if (state.has_value()) AppendOptimizerState(model, *entry->trainer, *state, optimizer);
  if (CallScope::Cancelled()) return CallScope::Stopped();
  KILN_RETURN_IF_ERROR(runtime_.store->PutWeights(store_key_, stored, entry->name,
                                                  state.has_value() ? &optimizer : nullptr));
  absl::MutexLock lock(&mu_);  // GetLayer and Describe read weights' shapes, not values
  for (MatchedWeights& w : *weights) KILN_RETURN_IF_ERROR(w.layer->SetWeights(w.values));
  if (state.has_value()) KILN_RETURN_IF_ERROR(entry->trainer->SetOptimizerState(*state));
  return ModelInfoOf(*entry, true);
}

absl::StatusOr<KerasExport> Session::ExportModel(const v1::ExportModelRequest& request) {
  KILN_RETURN_IF_ERROR(compute_.EnterShort());
  absl::Cleanup leave = [this] { compute_.LeaveShort(); };
  std::shared_ptr<ModelEntry> entry;
  {
    absl::ReaderMutexLock lock(&mu_);
    KILN_ASSIGN_OR_RETURN(entry, FindModel(request.model(), "model"));
  }
  const Trainer& trainer = *entry->trainer;
  std::optional<Optimizer::State> state;
  if (trainer.compiled()) {
    KILN_ASSIGN_OR_RETURN(state, entry->trainer->OptimizerState());
  }
  return WriteKerasFile(
      *entry->model, request.format(), trainer.compiled() ? &trainer.compile_config() : nullptr,
      trainer.compiled() ? trainer.optimizer() : nullptr, state.has_value() ? &*state : nullptr);
}

}  // namespace kiln::server
