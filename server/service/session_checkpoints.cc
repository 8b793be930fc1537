// Session: a fit's checkpoints - saving them while it trains, reading one back to resume, and
// the RPCs that list, restore and delete them.
#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "core/base/status.h"
#include "server/service/logs.h"
#include "server/service/model_state.h"
#include "server/service/service_metrics.h"
#include "server/service/session.h"
#include "server/service/session_internal.h"

namespace kiln::server {
namespace {

store::FitProgress ProgressOf(const FitState& state) {
  store::FitProgress p;
  p.set_epoch(state.epoch);
  p.set_step(state.step);
  p.set_shuffle_rng(state.shuffle_rng);
  p.set_loss_sum(state.loss_sum);
  p.set_loss_count(state.loss_count);
  for (const auto& [sum, count] : state.metrics) {
    p.add_metric_sums(sum);
    p.add_metric_counts(count);
  }
  p.set_random_seed(state.random.seed);
  p.set_random_step(state.random.step);
  p.set_optimizer_iterations(state.optimizer.iterations);
  p.set_batches_done(state.batches_done);
  return p;
}

Tensor OrderTensor(const std::vector<int64_t>& order) {
  Tensor t(DType::kInt64, Shape{int64_t(order.size())});
  std::copy(order.begin(), order.end(), t.data<int64_t>());
  return t;
}

const store::CheckpointRecord* FindCheckpoint(const std::vector<store::CheckpointRecord>& all,
                                              int64_t number) {
  if (all.empty()) return nullptr;
  if (number == 0) return &all.back();
  for (const store::CheckpointRecord& c : all) {
    if (c.info().number() == number) return &c;
  }
  return nullptr;
}

absl::Status NoCheckpoint(const std::string& job_id, int64_t number) {
  return WithFieldPrefix(
      absl::NotFoundError(number == 0 ? absl::StrCat("job ", job_id, " has no checkpoints")
                                      : absl::StrCat("job ", job_id, " has no checkpoint ", number,
                                                     " (kept ones: ListCheckpoints)")),
      "number");
}

}  // namespace

absl::Status Session::SaveCheckpoint(Job& job, const ModelEntry& entry, const std::string& reason,
                                     const FitState& state, int keep) {
  const absl::Time start = absl::Now();
  std::vector<store::NamedTensor> tensors;
  AppendModelWeights(*entry.model, tensors);
  AppendOptimizerState(*entry.model, *entry.trainer, state.optimizer, tensors);
  if (!state.order.empty()) tensors.push_back({"order", OrderTensor(state.order)});
  store::CheckpointRecord record;
  v1::Checkpoint& info = *record.mutable_info();
  info.set_job_id(job.id());
  {
    absl::ReaderMutexLock lock(&mu_);
    const std::vector<store::CheckpointRecord>& kept = jobs_.at(job.id()).checkpoints;
    info.set_number(kept.empty() ? job.Snapshot().last_checkpoint() + 1
                                 : kept.back().info().number() + 1);
  }
  *info.mutable_time() = internal::ToTimestamp(absl::Now());
  info.set_epoch(state.epoch);
  info.set_batch(state.step);
  info.set_batches_done(state.batches_done);
  info.set_reason(reason);
  info.set_bytes(store::TensorFileSize(tensors));
  *record.mutable_progress() = ProgressOf(state);
  KILN_RETURN_IF_ERROR(runtime_.store->PutCheckpoint(store_key_, record, tensors, keep));
  runtime_.metrics->Observe(kCheckpointSeconds, {}, absl::ToDoubleSeconds(absl::Now() - start));
  {
    absl::MutexLock lock(&mu_);
    std::vector<store::CheckpointRecord>& kept = jobs_.at(job.id()).checkpoints;
    kept.push_back(record);
    if (int(kept.size()) > keep) kept.erase(kept.begin(), kept.end() - keep);
  }
  v1::JobEvent event;
  *event.mutable_checkpoint_saved()->mutable_checkpoint() = info;
  return job.Append(std::move(event));
}

absl::StatusOr<FitState> Session::LoadCheckpoint(const Job& job, const ModelEntry& entry,
                                                 const store::CheckpointRecord& record) {
  const std::string what =
      absl::StrCat("checkpoint ", record.info().number(), " of job ", job.id());
  KILN_ASSIGN_OR_RETURN(
      std::vector<store::NamedTensor> tensors,
      runtime_.store->ReadCheckpoint(store_key_, job.id(), record.info().number()));
  const store::FitProgress& p = record.progress();
  FitState state;
  KILN_ASSIGN_OR_RETURN(state.optimizer, OptimizerStateFrom(*entry.model, *entry.trainer, tensors,
                                                            p.optimizer_iterations(), what));
  KILN_RETURN_IF_ERROR(SetModelWeights(*entry.model, tensors, what));
  state.epoch = p.epoch();
  state.step = p.step();
  for (const store::NamedTensor& t : tensors) {
    if (t.name == "order" && t.tensor.dtype() == DType::kInt64) {
      state.order.assign(t.tensor.data<int64_t>(),
                         t.tensor.data<int64_t>() + t.tensor.num_elements());
    }
  }
  state.shuffle_rng = p.shuffle_rng();
  state.loss_sum = p.loss_sum();
  state.loss_count = p.loss_count();
  for (int i = 0; i < p.metric_sums_size() && i < p.metric_counts_size(); ++i) {
    state.metrics.emplace_back(p.metric_sums(i), p.metric_counts(i));
  }
  // The epochs before the checkpoint's, as the job's events recorded them (Resumed dropped
  // the later ones from its history).
  v1::Job snapshot = job.Snapshot();
  state.history = HistoryFrom(snapshot.history());
  state.random = {p.random_seed(), p.random_step()};
  state.batches_done = p.batches_done();
  return state;
}

absl::StatusOr<v1::ListCheckpointsResponse> Session::ListCheckpoints(
    const v1::ListCheckpointsRequest& request) const {
  absl::ReaderMutexLock lock(&mu_);
  KILN_ASSIGN_OR_RETURN(const JobEntry* job, FindJobEntry(request.job_id()));
  v1::ListCheckpointsResponse response;
  for (const store::CheckpointRecord& c : job->checkpoints) {
    *response.add_checkpoints() = c.info();
  }
  return response;
}

absl::StatusOr<v1::Checkpoint> Session::RestoreCheckpoint(
    const v1::RestoreCheckpointRequest& request) {
  KILN_RETURN_IF_ERROR(compute_.EnterShort());
  absl::Cleanup leave = [this] { compute_.LeaveShort(); };
  absl::MutexLock writer(&writer_mu_);
  store::CheckpointRecord checkpoint;
  std::shared_ptr<ModelEntry> entry;
  {
    absl::ReaderMutexLock lock(&mu_);
    KILN_ASSIGN_OR_RETURN(const JobEntry* job, FindJobEntry(request.job_id()));
    const store::CheckpointRecord* found = FindCheckpoint(job->checkpoints, request.number());
    if (found == nullptr) return NoCheckpoint(request.job_id(), request.number());
    checkpoint = *found;
    const std::string model = job->job->Snapshot().model();
    absl::StatusOr<std::shared_ptr<ModelEntry>> found_model = FindModel(model, "job_id");
    if (!found_model.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "job ", request.job_id(), " trained model \"", model, "\", which no longer exists"));
    }
    entry = *std::move(found_model);
  }
  KILN_ASSIGN_OR_RETURN(
      std::vector<store::NamedTensor> tensors,
      runtime_.store->ReadCheckpoint(store_key_, request.job_id(), checkpoint.info().number()));
  const std::string what =
      absl::StrCat("checkpoint ", checkpoint.info().number(), " of job ", request.job_id());
  // Everything is checked before anything is stored or set.
  std::optional<Optimizer::State> optimizer;
  if (entry->trainer->compiled()) {
    KILN_ASSIGN_OR_RETURN(optimizer,
                          OptimizerStateFrom(*entry->model, *entry->trainer, tensors,
                                             checkpoint.progress().optimizer_iterations(), what));
  }
  std::vector<store::LayerTensors> layers;
  for (store::LayerTensors& layer : ModelLayerWeights(*entry->model, entry->scope())) {
    for (store::NamedTensor& weight : layer.tensors) {
      const std::string name = absl::StrCat("w/", layer.layer, "/", weight.name);
      auto it = std::find_if(tensors.begin(), tensors.end(),
                             [&](const store::NamedTensor& t) { return t.name == name; });
      if (it == tensors.end() || it->tensor.shape() != weight.tensor.shape()) {
        return absl::FailedPreconditionError(
            absl::StrCat(what, " does not fit model \"", entry->name, "\": weight ", weight.name,
                         " of layer ", layer.layer, " is missing or of another shape"));
      }
      weight.tensor = it->tensor;
    }
    layers.push_back(std::move(layer));
  }
  std::vector<store::NamedTensor> optimizer_tensors;
  if (optimizer.has_value()) {
    AppendOptimizerState(*entry->model, *entry->trainer, *optimizer, optimizer_tensors);
  }
  KILN_RETURN_IF_ERROR(runtime_.store->PutWeights(store_key_, layers, entry->name,
                                                  optimizer ? &optimizer_tensors : nullptr));
  absl::MutexLock lock(&mu_);
  KILN_RETURN_IF_ERROR(SetModelWeights(*entry->model, tensors, what));
  if (optimizer.has_value()) KILN_RETURN_IF_ERROR(entry->trainer->SetOptimizerState(*optimizer));
  return checkpoint.info();
}

absl::Status Session::DeleteCheckpoint(const v1::DeleteCheckpointRequest& request) {
  absl::MutexLock writer(&writer_mu_);
  {
    absl::ReaderMutexLock lock(&mu_);
    KILN_ASSIGN_OR_RETURN(const JobEntry* job, FindJobEntry(request.job_id()));
    if (request.number() <= 0) {
      return FieldError("number", "give the number of the checkpoint to delete");
    }
    if (FindCheckpoint(job->checkpoints, request.number()) == nullptr) {
      return NoCheckpoint(request.job_id(), request.number());
    }
  }
  KILN_RETURN_IF_ERROR(
      runtime_.store->DeleteCheckpoint(store_key_, request.job_id(), request.number()));
  absl::MutexLock lock(&mu_);
  std::vector<store::CheckpointRecord>& kept = jobs_.at(request.job_id()).checkpoints;
  kept.erase(std::remove_if(kept.begin(), kept.end(),
                            [&](const store::CheckpointRecord& c) {
                              return c.info().number() == request.number();
                            }),
             kept.end());
  return absl::OkStatus();
}

}  // namespace kiln::server
