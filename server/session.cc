#include "server/session.h"

#include <algorithm>
#include <random>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "core/base/status.h"
#include "core/graph/definition.h"
#include "core/graph/summary.h"
#include "core/keras/args.h"
#include "core/layers/registry.h"
#include "google/protobuf/util/time_util.h"

namespace kiln::server {
namespace {

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

std::vector<TensorId> Ids(const google::protobuf::RepeatedField<int64_t>& ids) {
  return std::vector<TensorId>(ids.begin(), ids.end());
}

// A generator for one kind of seed: from the session's seed when it has one (each kind its
// own stream), else from the system's entropy.
std::mt19937_64 SeedStream(const std::optional<int64_t>& session_seed, uint64_t kind) {
  if (!session_seed.has_value()) {
    std::random_device entropy;
    return std::mt19937_64((uint64_t(entropy()) << 32) ^ entropy());
  }
  std::seed_seq seq{uint32_t(uint64_t(*session_seed)), uint32_t(uint64_t(*session_seed) >> 32),
                    uint32_t(kind)};
  return std::mt19937_64(seq);
}

}  // namespace

Session::Session(std::string id, std::string name, absl::Duration ttl, std::optional<int64_t> seed,
                 Runtime runtime)
    : id_(std::move(id)),
      name_(std::move(name)),
      seed_(seed),
      created_(absl::Now()),
      runtime_(runtime),
      ttl_(ttl),
      last_used_(absl::Now()),
      layer_seeds_(SeedStream(seed, 1)),
      fit_seeds_(SeedStream(seed, 2)) {}

void Session::Touch() {
  absl::MutexLock lock(&mu_);
  last_used_ = absl::Now();
}

bool Session::Expired(absl::Time now) const {
  absl::MutexLock lock(&mu_);
  for (const auto& [id, job] : jobs_) {
    if (!job->finished()) return false;  // a queued or running job keeps its session alive
  }
  return now - last_used_ > ttl_;
}

v1::Session Session::Describe(bool full) const {
  absl::MutexLock lock(&mu_);
  v1::Session s;
  s.set_id(id_);
  s.set_name(name_);
  *s.mutable_created() = ToTimestamp(created_);
  *s.mutable_expires() = ToTimestamp(last_used_ + ttl_);
  s.set_ttl_seconds(absl::ToInt64Seconds(ttl_));
  if (seed_.has_value()) s.set_seed(*seed_);
  if (full) {
    for (TensorId id = 0; id < static_cast<TensorId>(graph_.tensors().size()); ++id) {
      *s.add_tensors() = TensorInfoOf(graph_, id);
    }
    for (const GraphNode& node : graph_.nodes()) {
      if (node.layer == nullptr) continue;
      bool listed = false;
      for (const auto& l : s.layers()) listed |= l.name() == node.layer->name();
      if (!listed) *s.add_layers() = LayerInfoOf(*node.layer);
    }
  }
  for (const auto& [name, entry] : models_) s.add_models(name);
  for (const auto& [name, entry] : datasets_) s.add_datasets(name);
  for (const std::string& job : job_order_) s.add_jobs(job);
  std::sort(s.mutable_models()->begin(), s.mutable_models()->end());
  std::sort(s.mutable_datasets()->begin(), s.mutable_datasets()->end());
  return s;
}

void Session::Close() {
  std::vector<std::shared_ptr<Job>> jobs;
  {
    absl::MutexLock lock(&mu_);
    closed_ = true;
    for (const auto& [id, job] : jobs_) jobs.push_back(job);
  }
  for (const auto& job : jobs) {
    if (!job->finished()) runtime_.scheduler->Cancel(job);
  }
}

v1::TensorInfo Session::TensorInfoOf(const Graph& graph, TensorId id) const {
  v1::TensorInfo info;
  const SymbolicTensor* t = graph.tensor(id);
  info.set_id(id);
  for (int64_t d : t->shape.dims()) info.add_shape(d);
  const GraphNode& node = graph.nodes()[t->node];
  info.set_producer(node.layer ? node.layer->name() : node.input_name);
  info.set_output_index(t->output_index);
  return info;
}

v1::LayerInfo Session::LayerInfoOf(const Layer& layer) const {
  v1::LayerInfo info;
  info.set_name(layer.name());
  info.set_class_name(layer.class_name());
  *info.mutable_spec() = layer.spec();
  info.set_built(layer.built());
  for (const auto& v : layer.variables()) {
    v1::WeightInfo* w = info.add_weights();
    w->set_name(v->name);
    for (int64_t d : v->value.shape().dims()) w->add_shape(d);
    w->set_trainable(v->trainable);
  }
  info.set_params(layer.CountParams());
  return info;
}

v1::ModelInfo Session::ModelInfoOf(const ModelEntry& entry, bool full) const {
  const Model& model = *entry.model;
  const Graph& graph = entry.own_graph ? *entry.own_graph : graph_;
  v1::ModelInfo info;
  info.set_name(entry.name);
  for (int v : model.input_values()) {
    *info.add_inputs() = TensorInfoOf(graph, model.value_tensor_ids()[v]);
  }
  for (int v : model.output_values()) {
    *info.add_outputs() = TensorInfoOf(graph, model.value_tensor_ids()[v]);
  }
  info.set_total_params(model.CountParams());
  info.set_trainable_params(model.CountTrainableParams());
  info.set_non_trainable_params(model.CountParams() - model.CountTrainableParams());
  info.set_compiled(entry.trainer->compiled());
  if (entry.trainer->compiled()) *info.mutable_compile() = entry.trainer->compile_config();
  if (!full) return info;
  for (const SummaryRow& row : SummaryRows(model)) {
    v1::LayerSummary* l = info.add_layers();
    l->set_name(row.name);
    l->set_class_name(row.class_name);
    for (const Shape& shape : row.output_shapes) {
      v1::TensorInfo* t = l->add_outputs();
      for (int64_t d : shape.dims()) t->add_shape(d);
      t->set_producer(row.name);
    }
    l->set_params(row.params);
    for (const std::string& c : row.connected_to) l->add_connected_to(c);
  }
  info.set_summary(ModelSummary(model));
  return info;
}

absl::StatusOr<v1::TensorInfo> Session::AddInput(const v1::AddInputRequest& request) {
  const v1::Input& input = request.input();
  if (input.has_batch_size()) {
    return FieldError("input.batch_size",
                      "Kiln models take any batch size; give the batch size to fit or predict");
  }
  KILN_RETURN_IF_ERROR(WithFieldPrefix(CheckDType(input.dtype(), "dtype"), "input"));
  absl::MutexLock lock(&mu_);
  absl::StatusOr<TensorId> id = graph_.AddInput(
      Shape(std::vector<int64_t>(input.shape().begin(), input.shape().end())), input.name());
  if (!id.ok()) return WithFieldPrefix(id.status(), "input");
  return TensorInfoOf(graph_, *id);
}

absl::StatusOr<v1::AddLayerResponse> Session::AddLayer(const v1::AddLayerRequest& request) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::unique_ptr<Layer>> layer = CreateLayer(request.spec(), Peek(layer_seeds_));
  if (!layer.ok()) return WithFieldPrefix(layer.status(), "spec");
  absl::StatusOr<Graph::AddedLayer> added =
      graph_.AddLayer(*std::move(layer), Ids(request.inputs()));
  if (!added.ok()) {
    // A taken name is the spec's fault; shape errors already name `inputs`.
    return absl::IsAlreadyExists(added.status()) ? WithFieldPrefix(added.status(), "spec")
                                                 : added.status();
  }
  Commit(layer_seeds_);
  v1::AddLayerResponse response;
  *response.mutable_layer() = LayerInfoOf(*added->layer);
  for (TensorId t : added->outputs) *response.add_outputs() = TensorInfoOf(graph_, t);
  return response;
}

absl::StatusOr<v1::CallLayerResponse> Session::CallLayer(const v1::CallLayerRequest& request) {
  absl::MutexLock lock(&mu_);
  std::shared_ptr<Layer> layer = graph_.FindLayer(request.layer());
  if (layer == nullptr) {
    return WithFieldPrefix(
        absl::NotFoundError(absl::StrCat("no layer \"", request.layer(), "\" in this session")),
        "layer");
  }
  KILN_ASSIGN_OR_RETURN(std::vector<TensorId> outputs, graph_.Call(layer, Ids(request.inputs())));
  v1::CallLayerResponse response;
  for (TensorId t : outputs) *response.add_outputs() = TensorInfoOf(graph_, t);
  return response;
}

absl::StatusOr<std::shared_ptr<Layer>> Session::FindLayer(const std::string& layer,
                                                          const std::string& model) const {
  if (!model.empty()) {
    KILN_ASSIGN_OR_RETURN(std::shared_ptr<ModelEntry> entry, FindModel(model, "model"));
    for (Layer* l : entry->model->layers()) {
      if (l->name() == layer) {
        for (const Model::Node& node : entry->model->nodes()) {
          if (node.layer.get() == l) return node.layer;
        }
      }
    }
    return WithFieldPrefix(
        absl::NotFoundError(absl::StrCat("model \"", model, "\" has no layer \"", layer, "\"")),
        "layer");
  }
  std::shared_ptr<Layer> found = graph_.FindLayer(layer);
  if (found == nullptr) {
    return WithFieldPrefix(
        absl::NotFoundError(absl::StrCat("no layer \"", layer,
                                         "\" in this session's graph (for a layer of a model "
                                         "made by DefineModel, also give `model`)")),
        "layer");
  }
  return found;
}

absl::StatusOr<v1::LayerInfo> Session::GetLayer(const v1::GetLayerRequest& request) const {
  absl::MutexLock lock(&mu_);
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<Layer> layer, FindLayer(request.layer(), request.model()));
  return LayerInfoOf(*layer);
}

absl::StatusOr<std::shared_ptr<Session::ModelEntry>> Session::FindModel(
    const std::string& name, absl::string_view field) const {
  auto it = models_.find(name);
  if (it == models_.end()) {
    return WithFieldPrefix(
        absl::NotFoundError(absl::StrCat("no model \"", name, "\" in this session")), field);
  }
  return it->second;
}

absl::Status Session::CheckModelExists(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  return FindModel(name, "model").status();
}

absl::StatusOr<v1::ModelInfo> Session::CreateModel(const v1::CreateModelRequest& request) {
  absl::MutexLock lock(&mu_);
  std::string name = request.name();
  int next_counter = model_counter_;
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
  model_counter_ = next_counter;
  auto entry = std::make_shared<ModelEntry>();
  entry->name = name;
  entry->model = std::move(model);
  entry->trainer = std::make_unique<Trainer>(entry->model.get());
  models_[name] = entry;
  return ModelInfoOf(*entry, true);
}

absl::StatusOr<v1::ModelInfo> Session::DefineModel(const v1::DefineModelRequest& request) {
  const v1::ModelDefinition& definition = request.definition();
  const std::string name = definition.name().empty() ? "model" : definition.name();
  // A definition builds into a graph of its own, outside the session lock.
  auto entry = std::make_shared<ModelEntry>();
  entry->name = name;
  entry->own_graph = std::make_shared<Graph>();
  uint64_t seed;
  {
    absl::MutexLock lock(&mu_);
    if (models_.contains(name) && !request.replace()) {
      return WithFieldPrefix(
          absl::AlreadyExistsError(
              absl::StrCat("a model \"", name, "\" already exists; set `replace` to replace it")),
          "definition.name");
    }
    seed = Peek(layer_seeds_);
  }
  absl::StatusOr<std::unique_ptr<Model>> model = BuildModel(definition, *entry->own_graph, seed);
  if (!model.ok()) return WithFieldPrefix(model.status(), "definition");
  entry->model = std::move(*model);
  entry->trainer = std::make_unique<Trainer>(entry->model.get());
  if (definition.has_compile()) {
    absl::Status status = entry->trainer->Compile(definition.compile());
    if (!status.ok()) return WithFieldPrefix(status, "definition.compile");
  }
  absl::MutexLock lock(&mu_);
  if (models_.contains(name) && !request.replace()) {
    return WithFieldPrefix(
        absl::AlreadyExistsError(absl::StrCat("a model \"", name, "\" already exists")),
        "definition.name");
  }
  // Two definitions built at once may share a seed; neither changes the seed of a failed one.
  if (seed == Peek(layer_seeds_)) Commit(layer_seeds_);
  models_[name] = entry;
  return ModelInfoOf(*entry, true);
}

absl::StatusOr<v1::ModelInfo> Session::GetModel(const v1::GetModelRequest& request) const {
  absl::MutexLock lock(&mu_);
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<ModelEntry> entry, FindModel(request.name(), "name"));
  return ModelInfoOf(*entry, true);
}

v1::ListModelsResponse Session::ListModels() const {
  absl::MutexLock lock(&mu_);
  v1::ListModelsResponse response;
  for (const auto& [name, entry] : models_) *response.add_models() = ModelInfoOf(*entry, false);
  std::sort(response.mutable_models()->begin(), response.mutable_models()->end(),
            [](const v1::ModelInfo& a, const v1::ModelInfo& b) { return a.name() < b.name(); });
  return response;
}

absl::Status Session::DeleteModel(const v1::DeleteModelRequest& request) {
  absl::MutexLock lock(&mu_);
  KILN_RETURN_IF_ERROR(FindModel(request.name(), "name").status());
  models_.erase(request.name());  // a job that uses it keeps it alive until it ends
  return absl::OkStatus();
}

absl::StatusOr<v1::ModelInfo> Session::Compile(const v1::CompileRequest& request) {
  KILN_RETURN_IF_ERROR(compute_.EnterShort());
  absl::Cleanup leave = [this] { compute_.LeaveShort(); };
  absl::MutexLock lock(&mu_);
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<ModelEntry> entry, FindModel(request.model(), "model"));
  absl::Status status = entry->trainer->Compile(request.config());
  if (!status.ok()) return WithFieldPrefix(status, "config");
  return ModelInfoOf(*entry, false);
}

}  // namespace kiln::server
