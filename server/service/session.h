// Session: one client's workspace - a graph built card by card, models, datasets and jobs -
// and every operation the API offers on it. No gRPC here: requests and responses are the API's
// protobuf messages, errors are absl::Status with field paths relative to the request.
//
// Durability: every change is recorded in the server's SessionStore before it is made in
// memory, so a call that answers OK survives a restart and a call that fails changes nothing,
// in memory or on disk. Restore rebuilds a session from what the store kept.
//
// Thread-safety: every method may be called from any thread.
// - `writer_mu_` serialises changes. A change does its slow parts - initialising weights,
//   writing to the store - holding only writer_mu_, and takes `mu_` just to apply itself.
//   Readers take only `mu_`, so they never wait for a change's slow parts.
// - The graph and the models are written with both mutexes held, so either one suffices to
//   read them.
// - `compute_` (a ComputeGate) is held by whatever reads or writes weights: a running job (for
//   its whole run), Predict, Get/SetWeights, Compile and RestoreCheckpoint. Those RPCs queue
//   behind each other but do not wait for a job: they answer FAILED_PRECONDITION naming it.
// - Jobs of one session run one at a time (JobScheduler), in the order they were started.
#ifndef KILN_SERVER_SERVICE_SESSION_H_
#define KILN_SERVER_SERVICE_SESSION_H_

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/graph/graph.h"
#include "core/graph/model.h"
#include "core/io/dataset.h"
#include "core/layers/parameter_budget.h"
#include "core/saving/keras_files.h"
#include "core/tensor/memory_account.h"
#include "core/train/trainer.h"
#include "kiln/v1/service.pb.h"
#include "server/service/caller.h"
#include "server/service/compute_gate.h"
#include "server/service/datasets.h"
#include "server/service/job.h"
#include "server/service/job_scheduler.h"
#include "server/service/logger.h"
#include "server/service/metrics.h"
#include "server/service/options.h"
#include "server/service/tenants.h"
#include "server/store/session_store.h"

namespace kiln::server {

// What every session shares with the rest of the server.
struct Runtime {
  const ServerOptions* options = nullptr;
  JobScheduler* scheduler = nullptr;
  BuiltinDatasets* builtins = nullptr;
  store::SessionStore* store = nullptr;
  Tenants* tenants = nullptr;
  Metrics* metrics = nullptr;  // service_metrics.h's families defined
  Logger* logger = nullptr;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  // A new session (CreateSessionRequest, its owner, its id and the store's key for it, which
  // unlike the id is unique across tenants); SessionManager stores its record.
  Session(std::string id, std::string store_key, const Caller& owner,
          const v1::CreateSessionRequest& request, absl::Duration ttl, Runtime runtime);
  // Rebuilds a stored session: replays its graph and models, loads weights, optimizer states
  // and datasets, and its jobs with their events; jobs that were queued or running end
  // INTERRUPTED. DATA_LOSS naming what is damaged when the stored state does not load.
  static absl::StatusOr<std::shared_ptr<Session>> Restore(const store::StoredSession& stored,
                                                          Runtime runtime);

  const std::string& id() const { return id_; }
  const std::string& store_key() const { return store_key_; }
  const std::string& owner() const { return owner_; }
  // What the session holds, against --max_session_bytes and its tenant's limit.
  const std::shared_ptr<MemoryAccount>& memory() const { return memory_; }
  // Runs `fn` (returning absl::Status or StatusOr) with the session's memory account current,
  // so that what it allocates counts for the session; an allocation refused or failed becomes
  // RESOURCE_EXHAUSTED. Every request's work on a session runs in one.
  template <typename Fn>
  auto Charged(Fn&& fn) -> decltype(fn()) {
    ScopedMemoryAccount scope(memory_);
    // Weights are counted from their shapes before they are allocated.
    ScopedParameterBudget parameters(runtime_.options->max_model_parameters,
                                     "--max_model_parameters");
    try {
      return fn();
    } catch (const std::bad_alloc& e) {
      return absl::ResourceExhaustedError(e.what());
    }
  }
  // Marks the session used now (its TTL counts from the last use).
  void Touch();
  // Idle for longer than its TTL, with no job queued or running.
  bool Expired(absl::Time now) const;
  // Stores the time of last use if it changed since the last flush (the reaper calls it, so a
  // restart keeps TTLs counting from roughly the last use).
  absl::Status FlushLastUse();
  // full: with tensors and layers (GetSession); else a summary (ListSessions).
  v1::Session Describe(bool full) const;
  // The record the store keeps for this session.
  store::SessionRecord Record() const;
  // Cancels the session's jobs; called when it is deleted or expires.
  void Close();

  // Model building.
  absl::StatusOr<v1::TensorInfo> AddInput(const v1::AddInputRequest& request);
  absl::StatusOr<v1::AddLayerResponse> AddLayer(const v1::AddLayerRequest& request);
  absl::StatusOr<v1::CallLayerResponse> CallLayer(const v1::CallLayerRequest& request);
  absl::StatusOr<v1::LayerInfo> GetLayer(const v1::GetLayerRequest& request) const;
  absl::StatusOr<v1::ModelInfo> CreateModel(const v1::CreateModelRequest& request);
  absl::StatusOr<v1::ModelInfo> DefineModel(const v1::DefineModelRequest& request);
  absl::StatusOr<v1::ModelInfo> GetModel(const v1::GetModelRequest& request) const;
  v1::ListModelsResponse ListModels() const;
  absl::Status DeleteModel(const v1::DeleteModelRequest& request);
  absl::StatusOr<v1::ModelInfo> Compile(const v1::CompileRequest& request);
  absl::StatusOr<v1::GetWeightsResponse> GetWeights(const v1::GetWeightsRequest& request);
  absl::Status SetWeights(const v1::SetWeightsRequest& request);

  // Keras files (session_keras.cc). ImportModel reads the request's `data` or its `path` below
  // --data_root; errors name the request field and the place in the file.
  absl::StatusOr<v1::ModelInfo> ImportModel(const v1::ImportModelRequest& request);
  // How large a Keras file may be (its bytes, its weights' elements): room for the most
  // parameters a model may have (--max_model_parameters) and an optimizer's state for them.
  KerasReadOptions ModelFileLimits() const;
  absl::StatusOr<KerasExport> ExportModel(const v1::ExportModelRequest& request);

  // Data.
  absl::StatusOr<v1::DatasetInfo> OpenDataset(const v1::OpenDatasetRequest& request);
  // Uploads in progress, for both the unary calls and the client stream (which appends with
  // offset -1: no offset check). They live in memory until finished.
  absl::StatusOr<std::string> BeginUpload(const v1::UploadHeader& header);
  absl::StatusOr<int64_t> AppendUploadChunk(const v1::AppendUploadChunkRequest& request);
  absl::StatusOr<int64_t> AppendToUpload(const std::string& upload_id, const v1::UploadChunk& chunk,
                                         int64_t offset);
  absl::StatusOr<v1::DatasetInfo> FinishUpload(const v1::FinishUploadRequest& request);
  // Drops an upload that will not be finished (a failed or abandoned stream).
  void AbortUpload(const std::string& upload_id);
  absl::StatusOr<v1::DatasetInfo> GetDataset(const v1::GetDatasetRequest& request) const;
  v1::ListDatasetsResponse ListDatasets() const;
  absl::Status DeleteDataset(const v1::DeleteDatasetRequest& request);
  absl::StatusOr<v1::TensorProto> ReadDataset(const v1::ReadDatasetRequest& request) const;

  // Jobs.
  absl::StatusOr<v1::Job> StartFit(const v1::StartFitRequest& request);
  absl::StatusOr<v1::Job> StartEvaluate(const v1::StartEvaluateRequest& request);
  absl::StatusOr<v1::Job> StartPredict(const v1::StartPredictRequest& request);
  absl::StatusOr<std::shared_ptr<Job>> FindJob(const std::string& job_id) const;
  v1::ListJobsResponse ListJobs() const;
  // Adds the session's jobs to `by_state`, one per job in its state.
  void CountJobs(std::map<v1::JobState, int>& by_state) const;
  absl::StatusOr<v1::Job> CancelJob(const v1::CancelJobRequest& request);
  absl::StatusOr<v1::Job> ResumeJob(const v1::ResumeJobRequest& request);

  // Checkpoints of fit jobs.
  absl::StatusOr<v1::ListCheckpointsResponse> ListCheckpoints(
      const v1::ListCheckpointsRequest& request) const;
  absl::StatusOr<v1::Checkpoint> RestoreCheckpoint(const v1::RestoreCheckpointRequest& request);
  absl::Status DeleteCheckpoint(const v1::DeleteCheckpointRequest& request);

  // Interactive inference.
  absl::StatusOr<v1::PredictResponse> Predict(const v1::PredictRequest& request);

 private:
  struct ModelEntry {
    std::string name;
    std::shared_ptr<Graph> own_graph;  // DefineModel's graph; null when built in the session's
    std::unique_ptr<Model> model;
    std::unique_ptr<Trainer> trainer;
    // Where the store keeps the weights of the model's layers: "" for the session's graph,
    // the model's name for a graph of its own.
    std::string scope() const { return own_graph ? name : ""; }
  };
  struct DatasetEntry {
    std::shared_ptr<const Dataset> data;
    v1::DatasetInfo info;
  };
  struct FoundLayer {
    std::shared_ptr<Layer> layer;
    std::string scope;  // ModelEntry::scope of where it was found
  };
  // A stored session, before Restore replays it.
  Session(const store::SessionRecord& record, Runtime runtime);

  struct JobEntry {
    std::shared_ptr<Job> job;
    store::JobRecord record;
    std::vector<store::CheckpointRecord> checkpoints;  // oldest first
  };
  struct JobData;  // a job's resolved data (session_jobs.cc)
  class Replayer;  // Restore's helper (session_restore.cc)
  friend class SessionJobRunner;
  friend class FitReporter;

  // --- lookups (session.cc, session_graph.cc); with mu_ or writer_mu_ held ---
  absl::StatusOr<std::shared_ptr<ModelEntry>> FindModel(const std::string& name,
                                                        absl::string_view field) const;
  // FindModel's error for a job's `model`, checked before its data is decoded.
  absl::Status CheckModelExists(const std::string& name) const ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<FoundLayer> FindLayer(const std::string& layer, const std::string& model) const;
  v1::TensorInfo TensorInfoOf(const Graph& graph, TensorId id) const;
  v1::LayerInfo LayerInfoOf(const Layer& layer) const;
  v1::ModelInfo ModelInfoOf(const ModelEntry& entry, bool full) const;
  store::SessionRecord RecordLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  // --- DefineModel in two steps (session_graph.cc), for ImportModel too ---
  struct PreparedModel {
    std::shared_ptr<ModelEntry> entry;  // built (and compiled), not yet in models_
    store::OpRecord op;                 // the DefineModel to record
    store::SessionRecord record;        // the session's record once it is made
  };
  absl::StatusOr<PreparedModel> PrepareModel(const v1::DefineModelRequest& request)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);
  // After the store recorded it: cannot fail.
  v1::ModelInfo CommitModel(PreparedModel prepared) ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);

  // --- Keras files (session_keras.cc) ---
  // ReadUntrustedKerasFile (server/reader) with its reader's memory reserved in the session.
  absl::StatusOr<KerasFile> ReadKerasFileReserved(absl::string_view bytes, v1::KerasFormat format,
                                                  const KerasReadOptions& read);
  absl::StatusOr<v1::ModelInfo> ImportWeights(const v1::ImportModelRequest& request,
                                              const WeightsFile& weights,
                                              const std::string& source);

  // --- model state (session_weights.cc) ---
  // Stores the weights of every layer of `entry`'s model and its optimizer state (a fit's end,
  // RestoreCheckpoint). Skipped for a model that was deleted or replaced meanwhile.
  absl::Status StoreModelState(const std::shared_ptr<ModelEntry>& entry);

  // --- datasets (session_data.cc) ---
  absl::StatusOr<std::shared_ptr<const Dataset>> ResolveData(const v1::DataRef& ref,
                                                             absl::string_view path,
                                                             absl::string_view default_split)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Stores a new dataset and adds it; `reopen` for a built-in, else its arrays are stored.
  absl::StatusOr<v1::DatasetInfo> AddDataset(const std::string& name, Dataset data,
                                             const std::string& source,
                                             const v1::OpenDatasetRequest* reopen)
      ABSL_LOCKS_EXCLUDED(mu_);
  // --max_session_models, --max_model_layers and --max_model_parameters for `model`, about to
  // be added (`replaces`: in place of a model of the same name).
  absl::Status CheckModelLimits(const Model& model, bool replaces) const
      ABSL_SHARED_LOCKS_REQUIRED(writer_mu_);

  // --- jobs (session_jobs.cc) ---
  // The entry of job `job_id`; NOT_FOUND at "job_id". With mu_ held.
  absl::StatusOr<JobEntry*> FindJobEntry(const std::string& job_id) const;
  // With writer_mu_ held: the model a job will run on; NOT_FOUND at "model".
  absl::StatusOr<std::shared_ptr<ModelEntry>> JobModel(const std::string& model) const;
  // Stores a new job (`draws_fit_seed`: it took the session's next fit seed) and lists it; sets
  // record.plan.
  absl::StatusOr<v1::Job> Submit(std::shared_ptr<Job> job, store::JobRecord& record,
                                 bool draws_fit_seed) ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);
  // Queues `job` to run (again, for a resumed fit) on `entry` with its resolved data. A job
  // the scheduler refuses (shutdown began) ends INTERRUPTED.
  void Schedule(const std::shared_ptr<Job>& job, const store::JobRecord& record,
                std::shared_ptr<ModelEntry> entry, std::shared_ptr<const JobData> data,
                std::optional<store::CheckpointRecord> resume_from);
  v1::Job NewJob(const std::string& model, v1::JobKind kind) const;
  // Where this session's jobs store their events.
  Job::EventSink JobSink() const;
  std::shared_ptr<Job> MakeJob(v1::Job plan);
  // The seed the next new layer or model gets (Peek), or the next fit without a seed of its
  // own; Commit moves on to the one after, so that a failed call leaves every later one as
  // it was.
  static uint64_t Peek(const std::mt19937_64& seeds) { return std::mt19937_64(seeds)(); }

  // --- checkpoints (session_checkpoints.cc) ---
  absl::Status SaveCheckpoint(Job& job, const ModelEntry& entry, const std::string& reason,
                              const FitState& state, int keep);
  absl::StatusOr<FitState> LoadCheckpoint(const Job& job, const ModelEntry& entry,
                                          const store::CheckpointRecord& record);

  const std::string id_, store_key_, owner_, name_;
  const std::optional<int64_t> seed_;
  const absl::Time created_;
  const Runtime runtime_;
  const std::shared_ptr<MemoryAccount> memory_;

  ComputeGate compute_;

  absl::Mutex writer_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  absl::Duration ttl_ ABSL_GUARDED_BY(mu_);
  absl::Time last_used_ ABSL_GUARDED_BY(mu_);
  bool used_since_flush_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::mt19937_64 layer_seeds_ ABSL_GUARDED_BY(mu_);
  std::mt19937_64 fit_seeds_ ABSL_GUARDED_BY(mu_);
  int64_t layer_seed_draws_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t fit_seed_draws_ ABSL_GUARDED_BY(mu_) = 0;
  Graph graph_;  // written with writer_mu_ and mu_ held
  absl::flat_hash_map<std::string, std::shared_ptr<ModelEntry>> models_;  // likewise
  int model_counter_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, DatasetEntry> datasets_ ABSL_GUARDED_BY(mu_);
  // Names of datasets being stored (a slow write): taken, though not listed yet.
  absl::flat_hash_set<std::string> pending_datasets_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::unique_ptr<UploadBuilder>> uploads_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, JobEntry> jobs_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> job_order_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kiln::server

#endif  // KILN_SERVER_SERVICE_SESSION_H_
