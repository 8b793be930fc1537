#include "server/service/session.h"

#include <algorithm>
#include <random>

#include "core/graph/summary.h"
#include "server/service/session_internal.h"

namespace kiln::server {

using internal::SeedStream;
using internal::ToTimestamp;

Session::Session(std::string id, std::string store_key, const Caller& owner,
                 const v1::CreateSessionRequest& request, absl::Duration ttl, Runtime runtime)
    : id_(std::move(id)),
      store_key_(std::move(store_key)),
      owner_(owner.id),
      name_(request.name()),
      seed_(request.has_seed() ? std::optional<int64_t>(request.seed()) : std::nullopt),
      // Microseconds, as the store keeps it: a restored session says the same time.
      created_(absl::FromUnixMicros(absl::ToUnixMicros(absl::Now()))),
      runtime_(runtime),
      memory_(runtime.tenants->NewSessionAccount(owner_)),
      ttl_(ttl),
      last_used_(created_),
      layer_seeds_(SeedStream(seed_, 1)),
      fit_seeds_(SeedStream(seed_, 2)) {}

void Session::Touch() {
  absl::MutexLock lock(&mu_);
  last_used_ = absl::Now();
  used_since_flush_ = true;
}

bool Session::Expired(absl::Time now) const {
  absl::MutexLock lock(&mu_);
  for (const auto& [id, entry] : jobs_) {
    if (!entry.job->finished()) return false;  // a queued or running job keeps it alive
  }
  return now - last_used_ > ttl_;
}

absl::Status Session::FlushLastUse() {
  store::SessionRecord record;
  {
    absl::MutexLock lock(&mu_);
    if (!used_since_flush_ || closed_) return absl::OkStatus();
    used_since_flush_ = false;
    record = RecordLocked();
  }
  absl::MutexLock writer(&writer_mu_);  // not interleaved with a change's own record
  absl::Status stored = runtime_.store->UpdateSession(record);
  if (!stored.ok()) {
    absl::MutexLock lock(&mu_);
    used_since_flush_ = true;  // tried again at the next flush
  }
  return stored;
}

store::SessionRecord Session::Record() const {
  absl::MutexLock lock(&mu_);
  return RecordLocked();
}

store::SessionRecord Session::RecordLocked() const {
  store::SessionRecord r;
  r.set_id(id_);
  r.set_store_key(store_key_);
  r.set_owner(owner_);
  r.set_name(name_);
  r.set_ttl_seconds(absl::ToInt64Seconds(ttl_));
  if (seed_.has_value()) r.set_seed(*seed_);
  r.set_created_micros(absl::ToUnixMicros(created_));
  r.set_last_used_micros(absl::ToUnixMicros(last_used_));
  r.set_layer_seed_draws(layer_seed_draws_);
  r.set_fit_seed_draws(fit_seed_draws_);
  r.set_model_counter(model_counter_);
  return r;
}

v1::Session Session::Describe(bool full) const {
  absl::MutexLock lock(&mu_);
  v1::Session s;
  s.set_id(id_);
  s.set_name(name_);
  s.set_owner(owner_);
  *s.mutable_created() = ToTimestamp(created_);
  *s.mutable_expires() = ToTimestamp(last_used_ + ttl_);
  s.set_ttl_seconds(absl::ToInt64Seconds(ttl_));
  if (seed_.has_value()) s.set_seed(*seed_);
  s.set_bytes_held(memory_->used());
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
    for (const auto& [id, entry] : jobs_) jobs.push_back(entry.job);
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

}  // namespace kiln::server
