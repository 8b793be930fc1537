// Session: the graph built card by card, models, and Compile. Every change follows the same
// three steps under writer_mu_: check and prepare it (slow parts included) without touching
// the session, record it in the store, then apply it under mu_, where it can no longer fail.
#include <algorithm>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/status.h"
#include "core/graph/definition.h"
#include "core/keras/spec_args.h"
#include "core/layers/registry.h"
#include "server/service/call_scope.h"
#include "server/service/session.h"
#include "server/service/session_internal.h"

namespace kiln::server {

using internal::Ids;

absl::StatusOr<v1::TensorInfo> Session::AddInput(const v1::AddInputRequest& request) {
  const v1::Input& input = request.input();
  if (input.has_batch_size()) {
    return FieldError("input.batch_size",
                      "Kiln models take any batch size; give the batch size to fit or predict");
  }
  KILN_RETURN_IF_ERROR(SpecArgs(input, "input").Validate());
  const Shape shape(std::vector<int64_t>(input.shape().begin(), input.shape().end()));
  absl::MutexLock writer(&writer_mu_);
  KILN_RETURN_IF_ERROR(WithFieldPrefix(graph_.CheckInput(shape, input.name()), "input"));
  store::OpRecord op;
  *op.mutable_add_input() = request;
  KILN_RETURN_IF_ERROR(runtime_.store->AppendOp(Record(), op));
  absl::MutexLock lock(&mu_);
  absl::StatusOr<TensorId> id = graph_.AddInput(shape, input.name());
  if (!id.ok()) return WithFieldPrefix(id.status(), "input");  // CheckInput said it would not
  return TensorInfoOf(graph_, *id);
}

absl::Status Session::CheckModelLimits(const Model& model, bool replaces) const {
  const ServerOptions& options = *runtime_.options;
  if (!replaces && static_cast<int>(models_.size()) >= options.max_session_models) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the session holds its maximum of ", options.max_session_models,
                     " models (--max_session_models); delete one first"));
  }
  if (static_cast<int>(model.layers().size()) > options.max_model_layers) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the model has ", model.layers().size(), " layers, over the limit of ",
                     options.max_model_layers, " (--max_model_layers)"));
  }
  if (model.CountParams() > options.max_model_parameters) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the model has ", model.CountParams(), " parameters, over the limit of ",
                     options.max_model_parameters, " (--max_model_parameters)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::AddLayerResponse> Session::AddLayer(const v1::AddLayerRequest& request) {
  absl::MutexLock writer(&writer_mu_);
  if (graph_.layer_count() >= runtime_.options->max_model_layers) {
    return absl::ResourceExhaustedError(absl::StrCat("the session's graph holds its maximum of ",
                                                     runtime_.options->max_model_layers,
                                                     " layers (--max_model_layers)"));
  }
  uint64_t seed;
  store::SessionRecord record;
  {
    absl::ReaderMutexLock lock(&mu_);
    seed = Peek(layer_seeds_);
    record = RecordLocked();
  }
  absl::StatusOr<std::unique_ptr<Layer>> layer = CreateLayer(request.spec(), seed);
  if (!layer.ok()) return WithFieldPrefix(layer.status(), "spec");
  // Builds the layer - its weights' initialisation may be slow - without mu_.
  absl::StatusOr<Graph::PreparedLayer> prepared =
      graph_.PrepareAddLayer(*std::move(layer), Ids(request.inputs()));
  if (!prepared.ok()) {
    // A taken name is the spec's fault; shape errors already name `inputs`.
    return absl::IsAlreadyExists(prepared.status()) ? WithFieldPrefix(prepared.status(), "spec")
                                                    : prepared.status();
  }
  // The build may have outlived the call: one answered with an error commits nothing.
  if (CallScope::Cancelled()) return CallScope::Stopped();
  store::OpRecord op;
  *op.mutable_add_layer() = request;
  op.set_seed(seed);
  record.set_layer_seed_draws(record.layer_seed_draws() + 1);
  KILN_RETURN_IF_ERROR(runtime_.store->AppendOp(record, op));
  absl::MutexLock lock(&mu_);
  layer_seeds_.discard(1);
  ++layer_seed_draws_;
  Graph::AddedLayer added = graph_.CommitAddLayer(*std::move(prepared));
  v1::AddLayerResponse response;
  *response.mutable_layer() = LayerInfoOf(*added.layer);
  for (TensorId t : added.outputs) *response.add_outputs() = TensorInfoOf(graph_, t);
  return response;
}

absl::StatusOr<v1::CallLayerResponse> Session::CallLayer(const v1::CallLayerRequest& request) {
  absl::MutexLock writer(&writer_mu_);
  std::shared_ptr<Layer> layer = graph_.FindLayer(request.layer());
  if (layer == nullptr) {
    return WithFieldPrefix(
        absl::NotFoundError(absl::StrCat("no layer ", Quoted(request.layer()), " in this session")),
        "layer");
  }
  const std::vector<TensorId> inputs = Ids(request.inputs());
  // A first call builds the layer. Readers may look at the layer meanwhile, so its weights are
  // built on a twin (same spec, same seed: the same weights) and adopted afterwards.
  std::unique_ptr<Layer> twin;
  if (!layer->built()) {
    KILN_ASSIGN_OR_RETURN(twin, CreateLayer(layer->spec(), layer->seed()));
    twin->set_name(layer->name());
  }
  KILN_RETURN_IF_ERROR(graph_.CheckCall(twin ? *twin : *layer, inputs).status());
  if (CallScope::Cancelled()) return CallScope::Stopped();
  store::OpRecord op;
  *op.mutable_call_layer() = request;
  KILN_RETURN_IF_ERROR(runtime_.store->AppendOp(Record(), op));
  absl::MutexLock lock(&mu_);
  if (twin) KILN_RETURN_IF_ERROR(layer->AdoptWeights(*twin));
  KILN_ASSIGN_OR_RETURN(std::vector<TensorId> outputs, graph_.Call(layer, inputs));
  v1::CallLayerResponse response;
  for (TensorId t : outputs) *response.add_outputs() = TensorInfoOf(graph_, t);
  return response;
}

namespace {

// "; its layers: a, b, c" (the first 16 and how many more), so that a wrong name is easy to
// correct.
std::string LayersList(const std::vector<std::string>& names) {
  if (names.empty()) return "; it has no layers";
  constexpr size_t kShown = 16;
  std::vector<std::string> shown;
  for (size_t i = 0; i < names.size() && i < kShown; ++i) shown.push_back(Quoted(names[i]));
  return absl::StrCat(
      "; its layers: ", absl::StrJoin(shown, ", "),
      names.size() > kShown ? absl::StrCat(" and ", names.size() - kShown, " more") : "");
}

}  // namespace

absl::StatusOr<Session::FoundLayer> Session::FindLayer(const std::string& layer,
                                                       const std::string& model) const {
  if (!model.empty()) {
    KILN_ASSIGN_OR_RETURN(std::shared_ptr<ModelEntry> entry, FindModel(model, "model"));
    std::vector<std::string> names;
    for (const Model::Node& node : entry->model->nodes()) {
      if (node.layer->name() == layer) return FoundLayer{node.layer, entry->scope()};
      if (std::find(names.begin(), names.end(), node.layer->name()) == names.end()) {
        names.push_back(node.layer->name());
      }
    }
    return WithFieldPrefix(
        absl::NotFoundError(absl::StrCat("model ", Quoted(model), " has no layer ", Quoted(layer),
                                         LayersList(names))),
        "layer");
  }
  std::shared_ptr<Layer> found = graph_.FindLayer(layer);
  if (found == nullptr) {
    std::vector<std::string> names;
    for (const GraphNode& node : graph_.nodes()) {
      if (node.layer != nullptr &&
          std::find(names.begin(), names.end(), node.layer->name()) == names.end()) {
        names.push_back(node.layer->name());
      }
    }
    return WithFieldPrefix(
        absl::NotFoundError(absl::StrCat("no layer ", Quoted(layer),
                                         " in this session's graph (for a layer of a model "
                                         "made by DefineModel, also give `model`)",
                                         LayersList(names))),
        "layer");
  }
  return FoundLayer{std::move(found), ""};
}

absl::StatusOr<v1::LayerInfo> Session::GetLayer(const v1::GetLayerRequest& request) const {
  absl::ReaderMutexLock lock(&mu_);
  KILN_ASSIGN_OR_RETURN(FoundLayer found, FindLayer(request.layer(), request.model()));
  return LayerInfoOf(*found.layer);
}

absl::StatusOr<std::shared_ptr<Session::ModelEntry>> Session::FindModel(
    const std::string& name, absl::string_view field) const {
  auto it = models_.find(name);
  if (it == models_.end()) {
    return WithFieldPrefix(
        absl::NotFoundError(absl::StrCat("no model ", Quoted(name), " in this session")), field);
  }
  return it->second;
}

absl::Status Session::CheckModelExists(const std::string& name) const {
  absl::ReaderMutexLock lock(&mu_);
  return FindModel(name, "model").status();
}

absl::StatusOr<v1::ModelInfo> Session::CreateModel(const v1::CreateModelRequest& request) {
  absl::MutexLock writer(&writer_mu_);
  store::SessionRecord record = Record();
  std::string name = request.name();
  int next_counter = record.model_counter();
  if (name.empty()) {
    do {
      name = next_counter == 0 ? "model" : absl::StrCat("model_", next_counter);
      ++next_counter;
    } while (models_.contains(name));
  } else if (models_.contains(name)) {
    return WithFieldPrefix(
        absl::AlreadyExistsError(absl::StrCat("a model \"", name, "\" already exists")), "name");
  }
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<Model> model,
                        Model::Create(graph_, Ids(request.inputs()), Ids(request.outputs()), name));
  KILN_RETURN_IF_ERROR(CheckModelLimits(*model, /*replaces=*/false));
  store::OpRecord op;
  *op.mutable_create_model() = request;
  op.mutable_create_model()->set_name(name);
  record.set_model_counter(next_counter);
  KILN_RETURN_IF_ERROR(runtime_.store->PutModel(record, name, op, /*own_scope=*/false, nullptr));
  auto entry = std::make_shared<ModelEntry>();
  entry->name = name;
  entry->model = std::move(model);
  entry->trainer = std::make_unique<Trainer>(entry->model.get());
  absl::MutexLock lock(&mu_);
  model_counter_ = next_counter;
  models_[name] = entry;
  return ModelInfoOf(*entry, true);
}

absl::StatusOr<Session::PreparedModel> Session::PrepareModel(
    const v1::DefineModelRequest& request) {
  const v1::ModelDefinition& definition = request.definition();
  PreparedModel prepared;
  const std::string name = definition.name().empty() ? "model" : definition.name();
  if (models_.contains(name) && !request.replace()) {
    return WithFieldPrefix(
        absl::AlreadyExistsError(
            absl::StrCat("a model \"", name, "\" already exists; set `replace` to replace it")),
        "definition.name");
  }
  // Checked before anything is built, and again (parameters) once it is.
  if (definition.nodes_size() > runtime_.options->max_model_layers) {
    return WithFieldPrefix(
        absl::ResourceExhaustedError(absl::StrCat(
            "the definition has ", definition.nodes_size(), " nodes, over the limit of ",
            runtime_.options->max_model_layers, " layers (--max_model_layers)")),
        "definition.nodes");
  }
  prepared.record = Record();
  const uint64_t seed = [&] {
    absl::ReaderMutexLock lock(&mu_);
    return Peek(layer_seeds_);
  }();
  // A definition builds into a graph of its own, without mu_.
  auto entry = std::make_shared<ModelEntry>();
  entry->name = name;
  entry->own_graph = std::make_shared<Graph>();
  absl::StatusOr<std::unique_ptr<Model>> model = BuildModel(definition, *entry->own_graph, seed);
  if (!model.ok()) return WithFieldPrefix(model.status(), "definition");
  entry->model = std::move(*model);
  KILN_RETURN_IF_ERROR(CheckModelLimits(*entry->model, models_.contains(name)));
  entry->trainer = std::make_unique<Trainer>(entry->model.get());
  if (definition.has_compile()) {
    absl::Status status = entry->trainer->Compile(definition.compile());
    if (!status.ok()) return WithFieldPrefix(status, "definition.compile");
  }
  *prepared.op.mutable_define_model() = request;
  prepared.op.set_seed(seed);
  prepared.record.set_layer_seed_draws(prepared.record.layer_seed_draws() + 1);
  prepared.entry = std::move(entry);
  return prepared;
}

v1::ModelInfo Session::CommitModel(PreparedModel prepared) {
  absl::MutexLock lock(&mu_);
  layer_seeds_.discard(1);
  ++layer_seed_draws_;
  // A job that uses a replaced model keeps it until it ends.
  models_[prepared.entry->name] = prepared.entry;
  return ModelInfoOf(*prepared.entry, true);
}

absl::StatusOr<v1::ModelInfo> Session::DefineModel(const v1::DefineModelRequest& request) {
  absl::MutexLock writer(&writer_mu_);
  KILN_ASSIGN_OR_RETURN(PreparedModel prepared, PrepareModel(request));
  if (CallScope::Cancelled()) return CallScope::Stopped();
  KILN_RETURN_IF_ERROR(runtime_.store->PutModel(prepared.record, prepared.entry->name, prepared.op,
                                                /*own_scope=*/true, nullptr));
  return CommitModel(std::move(prepared));
}

absl::StatusOr<v1::ModelInfo> Session::GetModel(const v1::GetModelRequest& request) const {
  absl::ReaderMutexLock lock(&mu_);
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<ModelEntry> entry, FindModel(request.name(), "name"));
  v1::ModelInfo info = ModelInfoOf(*entry, true);
  if (request.include_definition()) {
    *info.mutable_definition() = DefinitionOf(*entry->model);
    if (info.compiled()) *info.mutable_definition()->mutable_compile() = info.compile();
  }
  return info;
}

v1::ListModelsResponse Session::ListModels() const {
  absl::ReaderMutexLock lock(&mu_);
  v1::ListModelsResponse response;
  for (const auto& [name, entry] : models_) *response.add_models() = ModelInfoOf(*entry, false);
  std::sort(response.mutable_models()->begin(), response.mutable_models()->end(),
            [](const v1::ModelInfo& a, const v1::ModelInfo& b) { return a.name() < b.name(); });
  return response;
}

absl::Status Session::DeleteModel(const v1::DeleteModelRequest& request) {
  absl::MutexLock writer(&writer_mu_);
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<ModelEntry> entry, FindModel(request.name(), "name"));
  KILN_RETURN_IF_ERROR(
      runtime_.store->DeleteModel(store_key_, request.name(), entry->own_graph != nullptr));
  absl::MutexLock lock(&mu_);
  models_.erase(request.name());  // a job that uses it keeps it alive until it ends
  return absl::OkStatus();
}

absl::StatusOr<v1::ModelInfo> Session::Compile(const v1::CompileRequest& request) {
  KILN_RETURN_IF_ERROR(compute_.EnterShort());
  absl::Cleanup leave = [this] { compute_.LeaveShort(); };
  absl::MutexLock writer(&writer_mu_);
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<ModelEntry> entry, FindModel(request.model(), "model"));
  // Compiled afresh, as Keras's compile() starts a new optimizer; swapped in once stored.
  auto trainer = std::make_unique<Trainer>(entry->model.get());
  absl::Status status = trainer->Compile(request.config());
  if (!status.ok()) return WithFieldPrefix(status, "config");
  store::OpRecord op;
  *op.mutable_compile() = request;
  KILN_RETURN_IF_ERROR(runtime_.store->PutCompile(store_key_, request.model(), op));
  absl::MutexLock lock(&mu_);
  entry->trainer = std::move(trainer);
  return ModelInfoOf(*entry, false);
}

}  // namespace kiln::server
