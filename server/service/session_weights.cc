// Session: what reads or writes weights outside a job - Get/SetWeights, Predict - and storing
// a model's state. All of it holds the compute gate.
#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "core/base/status.h"
#include "core/io/tensor_proto.h"
#include "server/service/call_scope.h"
#include "server/service/model_state.h"
#include "server/service/session.h"
#include "server/service/session_internal.h"

namespace kiln::server {
namespace {

// Predict's batch when the request sets none.
constexpr int64_t kPredictBatch = 256;

class StopWhenCallEnds : public TrainingCallback {
 public:
  bool StopRequested() override { return CallScope::Cancelled(); }
};

}  // namespace

absl::StatusOr<v1::GetWeightsResponse> Session::GetWeights(const v1::GetWeightsRequest& request) {
  KILN_RETURN_IF_ERROR(compute_.EnterShort());
  absl::Cleanup leave = [this] { compute_.LeaveShort(); };
  absl::ReaderMutexLock lock(&mu_);
  KILN_ASSIGN_OR_RETURN(FoundLayer found, FindLayer(request.layer(), request.model()));
  v1::GetWeightsResponse response;
  for (const auto& v : found.layer->variables()) {
    v1::NamedTensor* w = response.add_weights();
    w->set_name(v->name);
    *w->mutable_tensor() = EncodeTensor(v->value);
  }
  return response;
}

absl::Status Session::SetWeights(const v1::SetWeightsRequest& request) {
  KILN_RETURN_IF_ERROR(compute_.EnterShort());
  absl::Cleanup leave = [this] { compute_.LeaveShort(); };
  absl::MutexLock writer(&writer_mu_);
  KILN_ASSIGN_OR_RETURN(FoundLayer found, FindLayer(request.layer(), request.model()));
  const std::shared_ptr<Layer>& layer = found.layer;
  if (!layer->built()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "layer \"", layer->name(), "\" has no weights yet: call it on a tensor first"));
  }
  // Decode and check every weight before writing any.
  std::vector<std::pair<std::string, Tensor>> weights;
  for (int i = 0; i < request.weights_size(); ++i) {
    const std::string path = absl::StrCat("weights[", i, "]");
    KILN_ASSIGN_OR_RETURN(Tensor t, internal::DecodeRequestTensor(
                                        request.weights(i).tensor(), absl::StrCat(path, ".tensor"),
                                        runtime_.options->max_request_elements));
    const std::string& name = request.weights(i).name();
    Variable* v = layer->variable(name == "depthwise_kernel" ? "kernel" : name);
    if (v == nullptr) {
      return WithFieldPrefix(
          absl::NotFoundError(
              absl::StrCat("layer \"", layer->name(), "\" has no weight named \"", name, "\"")),
          absl::StrCat(path, ".name"));
    }
    if (t.dtype() != DType::kFloat32 || t.shape() != v->value.shape()) {
      return FieldError(
          absl::StrCat(path, ".tensor"),
          absl::StrCat("Layer ", layer->name(), " weight shape ", v->value.shape().ToString(),
                       " is not compatible with provided weight shape ", t.shape().ToString(),
                       " (float32 expected)."));
    }
    weights.emplace_back(v->name, std::move(t));
  }
  // The layer's whole set as it will be, stored before the layer changes.
  store::LayerTensors stored{found.scope, layer->name(), LayerWeights(*layer)};
  for (store::NamedTensor& t : stored.tensors) {
    for (const auto& [name, value] : weights) {
      if (name == t.name) t.tensor = value;
    }
  }
  KILN_RETURN_IF_ERROR(runtime_.store->PutWeights(store_key_, {stored}, "", nullptr));
  absl::MutexLock lock(&mu_);  // GetLayer and Describe read weights' shapes, not values
  for (const auto& [name, value] : weights) KILN_RETURN_IF_ERROR(layer->SetWeight(name, value));
  return absl::OkStatus();
}

absl::StatusOr<v1::PredictResponse> Session::Predict(const v1::PredictRequest& request) {
  std::vector<Tensor> x;
  for (int i = 0; i < request.inputs_size(); ++i) {
    KILN_ASSIGN_OR_RETURN(
        Tensor t, internal::DecodeRequestTensor(request.inputs(i), absl::StrCat("inputs[", i, "]"),
                                                runtime_.options->max_request_elements));
    x.push_back(std::move(t));
  }
  KILN_ASSIGN_OR_RETURN(Dataset data, MakeDataset(std::move(x), Tensor(), "inputs"));
  if (request.batch_size() < 0) return FieldError("batch_size", "must not be negative");
  v1::PredictConfig config;
  // Batches are where a call whose client gave up stops; inference does not depend on them.
  config.set_batch_size(request.batch_size() > 0
                            ? request.batch_size()
                            : static_cast<int>(std::min<int64_t>(data.size(), kPredictBatch)));
  KILN_RETURN_IF_ERROR(compute_.EnterShort());
  absl::Cleanup leave = [this] { compute_.LeaveShort(); };
  std::shared_ptr<ModelEntry> entry;
  {
    absl::ReaderMutexLock lock(&mu_);
    KILN_ASSIGN_OR_RETURN(entry, FindModel(request.model(), "model"));
  }
  StopWhenCallEnds stop;
  absl::StatusOr<std::vector<Tensor>> outputs = entry->trainer->Predict(data, config, &stop);
  if (absl::IsCancelled(outputs.status())) return CallScope::Stopped();
  if (!outputs.ok()) {
    return WithFieldPrefix(outputs.status(), FieldPathOf(outputs.status()) ? "" : "inputs");
  }
  v1::PredictResponse response;
  for (const Tensor& t : *outputs) *response.add_outputs() = EncodeTensor(t);
  return response;
}

absl::Status Session::StoreModelState(const std::shared_ptr<ModelEntry>& entry) {
  absl::MutexLock writer(&writer_mu_);
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = models_.find(entry->name);
    if (it == models_.end() || it->second != entry) return absl::OkStatus();  // deleted, replaced
  }
  std::vector<store::NamedTensor> optimizer;
  const std::vector<store::NamedTensor>* optimizer_state = nullptr;
  if (entry->trainer->compiled()) {
    KILN_ASSIGN_OR_RETURN(Optimizer::State state, entry->trainer->OptimizerState());
    AppendOptimizerState(*entry->model, *entry->trainer, state, optimizer);
    optimizer_state = &optimizer;
  }
  return runtime_.store->PutWeights(store_key_, ModelLayerWeights(*entry->model, entry->scope()),
                                    entry->name, optimizer_state);
}

}  // namespace kiln::server
