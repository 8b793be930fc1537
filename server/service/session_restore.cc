// Session::Restore: a stored session rebuilt at start - its graph and models replayed from the
// changes that made them, then weights, optimizer states, datasets and jobs loaded on top.
#include "absl/strings/str_cat.h"
#include "core/base/status.h"
#include "core/graph/definition.h"
#include "core/layers/registry.h"
#include "server/service/model_state.h"
#include "server/service/session.h"
#include "server/service/session_internal.h"
#include "server/store/io_error.h"

namespace kiln::server {

using internal::Ids;

// Applies a stored session's rows to a new Session that nobody else sees yet (so no locks).
class Session::Replayer {
 public:
  Replayer(Session& session, const store::StoredSession& stored) : s_(session), stored_(stored) {}

  absl::Status Run() {
    for (size_t i = 0; i < stored_.ops.size(); ++i) {
      absl::Status status = ApplyOp(stored_.ops[i]);
      if (!status.ok()) {
        return absl::InternalError(absl::StrCat("its change ", i + 1, " (", OpName(stored_.ops[i]),
                                                ") no longer applies: ", status.message()));
      }
    }
    for (const store::StoredSession::Weights& w : stored_.weights) {
      KILN_RETURN_IF_ERROR(LoadWeights(w));
    }
    for (const store::StoredSession::Optimizer& o : stored_.optimizers) {
      KILN_RETURN_IF_ERROR(LoadOptimizer(o));
    }
    for (const store::StoredSession::Dataset& d : stored_.datasets) {
      KILN_RETURN_IF_ERROR(LoadDataset(d));
    }
    for (const store::StoredSession::Job& j : stored_.jobs) LoadJob(j);
    return absl::OkStatus();
  }

 private:
  static std::string OpName(const store::OpRecord& op) {
    return op.GetDescriptor()->FindFieldByNumber(op.op_case()) != nullptr
               ? op.GetDescriptor()->FindFieldByNumber(op.op_case())->name()
               : "unknown";
  }

  absl::Status ApplyOp(const store::OpRecord& op) {
    switch (op.op_case()) {
      case store::OpRecord::kAddInput: {
        const v1::Input& input = op.add_input().input();
        return s_.graph_
            .AddInput(Shape(std::vector<int64_t>(input.shape().begin(), input.shape().end())),
                      input.name())
            .status();
      }
      case store::OpRecord::kAddLayer: {
        KILN_ASSIGN_OR_RETURN(std::unique_ptr<Layer> layer,
                              CreateLayer(op.add_layer().spec(), op.seed()));
        return s_.graph_.AddLayer(std::move(layer), Ids(op.add_layer().inputs())).status();
      }
      case store::OpRecord::kCallLayer: {
        std::shared_ptr<Layer> layer = s_.graph_.FindLayer(op.call_layer().layer());
        if (layer == nullptr) return absl::NotFoundError("its layer is missing");
        return s_.graph_.Call(layer, Ids(op.call_layer().inputs())).status();
      }
      case store::OpRecord::kCreateModel: {
        const v1::CreateModelRequest& r = op.create_model();
        auto entry = std::make_shared<ModelEntry>();
        entry->name = r.name();
        KILN_ASSIGN_OR_RETURN(
            entry->model, Model::Create(s_.graph_, Ids(r.inputs()), Ids(r.outputs()), r.name()));
        entry->trainer = std::make_unique<Trainer>(entry->model.get());
        s_.models_[r.name()] = std::move(entry);
        return absl::OkStatus();
      }
      case store::OpRecord::kDefineModel: {
        const v1::ModelDefinition& definition = op.define_model().definition();
        auto entry = std::make_shared<ModelEntry>();
        entry->name = definition.name().empty() ? "model" : definition.name();
        entry->own_graph = std::make_shared<Graph>();
        KILN_ASSIGN_OR_RETURN(entry->model, BuildModel(definition, *entry->own_graph, op.seed()));
        entry->trainer = std::make_unique<Trainer>(entry->model.get());
        if (definition.has_compile()) {
          KILN_RETURN_IF_ERROR(entry->trainer->Compile(definition.compile()));
        }
        s_.models_[entry->name] = std::move(entry);
        return absl::OkStatus();
      }
      case store::OpRecord::kCompile: {
        KILN_ASSIGN_OR_RETURN(std::shared_ptr<ModelEntry> entry,
                              s_.FindModel(op.compile().model(), "model"));
        auto trainer = std::make_unique<Trainer>(entry->model.get());
        KILN_RETURN_IF_ERROR(trainer->Compile(op.compile().config()));
        entry->trainer = std::move(trainer);
        return absl::OkStatus();
      }
      case store::OpRecord::OP_NOT_SET:
        break;
    }
    return absl::InternalError("an unknown kind of change");
  }

  absl::Status LoadWeights(const store::StoredSession::Weights& w) {
    const std::string what = absl::StrCat("the weights of layer ", w.layer);
    std::shared_ptr<Layer> layer;
    if (w.scope.empty()) {
      layer = s_.graph_.FindLayer(w.layer);
    } else if (auto it = s_.models_.find(w.scope);
               it != s_.models_.end() && it->second->own_graph) {
      layer = it->second->own_graph->FindLayer(w.layer);
    }
    if (layer == nullptr) return absl::InternalError(absl::StrCat(what, " belong to no layer"));
    KILN_ASSIGN_OR_RETURN(std::vector<store::NamedTensor> tensors,
                          s_.runtime_.store->ReadTensors(s_.store_key_, w.file));
    return SetLayerWeights(*layer, tensors, what);
  }

  absl::Status LoadOptimizer(const store::StoredSession::Optimizer& o) {
    const std::string what = absl::StrCat("the optimizer state of model ", o.model);
    auto it = s_.models_.find(o.model);
    if (it == s_.models_.end() || !it->second->trainer->compiled()) {
      return absl::InternalError(absl::StrCat(what, " belongs to no compiled model"));
    }
    KILN_ASSIGN_OR_RETURN(std::vector<store::NamedTensor> tensors,
                          s_.runtime_.store->ReadTensors(s_.store_key_, o.file));
    const ModelEntry& entry = *it->second;
    KILN_ASSIGN_OR_RETURN(Optimizer::State state,
                          OptimizerStateFrom(*entry.model, *entry.trainer, tensors, 0, what));
    return entry.trainer->SetOptimizerState(state);
  }

  absl::Status LoadDataset(const store::StoredSession::Dataset& d) {
    const v1::DatasetInfo& info = d.record.info();
    const std::string what = absl::StrCat("dataset \"", info.name(), "\"");
    Dataset data;
    if (d.record.has_reopen()) {
      const v1::OpenDatasetRequest& reopen = d.record.reopen();
      KILN_ASSIGN_OR_RETURN(std::shared_ptr<const Dataset> builtin,
                            s_.runtime_.builtins->Get(reopen.builtin()));
      data = *builtin;
      KILN_RETURN_IF_ERROR(ApplyTransform(reopen.transform(), data, "transform"));
    } else {
      KILN_ASSIGN_OR_RETURN(std::vector<store::NamedTensor> arrays,
                            s_.runtime_.store->ReadTensors(s_.store_key_, d.file));
      KILN_ASSIGN_OR_RETURN(data, DatasetFromArrays(std::move(arrays), what));
    }
    if (data.size() != info.samples()) {
      return absl::InternalError(
          absl::StrCat(what, " has ", data.size(), " samples, not ", info.samples()));
    }
    s_.datasets_[info.name()] =
        DatasetEntry{std::make_shared<const Dataset>(std::move(data)), info};
    return absl::OkStatus();
  }

  void LoadJob(const store::StoredSession::Job& j) {
    std::shared_ptr<Job> job = Job::Restore(j.record.plan(), j.events, s_.JobSink());
    if (!job->finished()) {
      job->Finish(v1::INTERRUPTED,
                  absl::UnavailableError(
                      "the server stopped before the job ended (ResumeJob continues a fit from "
                      "its newest checkpoint)"));
    }
    s_.jobs_[job->id()] = JobEntry{job, j.record, j.checkpoints};
    s_.job_order_.push_back(job->id());
  }

  Session& s_;
  const store::StoredSession& stored_;
};

Session::Session(const store::SessionRecord& record, Runtime runtime)
    : id_(record.id()),
      store_key_(store::StoreKey(record)),
      owner_(record.owner()),
      name_(record.name()),
      seed_(record.has_seed() ? std::optional<int64_t>(record.seed()) : std::nullopt),
      created_(absl::FromUnixMicros(record.created_micros())),
      runtime_(runtime),
      memory_(runtime.tenants->NewSessionAccount(owner_)),
      ttl_(absl::Seconds(record.ttl_seconds())),
      last_used_(absl::FromUnixMicros(record.last_used_micros())),
      layer_seeds_(internal::SeedStream(seed_, 1, record.layer_seed_draws())),
      fit_seeds_(internal::SeedStream(seed_, 2, record.fit_seed_draws())),
      layer_seed_draws_(record.layer_seed_draws()),
      fit_seed_draws_(record.fit_seed_draws()),
      model_counter_(record.model_counter()) {}

absl::StatusOr<std::shared_ptr<Session>> Session::Restore(const store::StoredSession& stored,
                                                          Runtime runtime) {
  KILN_RETURN_IF_ERROR(stored.damage);
  std::shared_ptr<Session> session(new Session(stored.record, runtime));
  absl::Status status;
  {
    // Nobody else sees the session yet; the locks only satisfy the methods it calls.
    absl::MutexLock writer(&session->writer_mu_);
    absl::MutexLock lock(&session->mu_);
    // What it held counts again (a limit lowered since leaves it damaged, not half loaded).
    status = session->Charged([&] {
      // What was accepted is rebuilt whole: a session's graph may hold more parameters than
      // one model may (the limit is per request).
      ScopedParameterBudget accepted(INT64_MAX, "");
      return Replayer(*session, stored).Run();
    });
  }
  if (!status.ok()) {
    return store::Damaged(absl::StrCat("session ", stored.record.id()), status.message());
  }
  return session;
}

}  // namespace kiln::server
