// Session: one client's workspace - a graph built card by card, models, datasets and jobs -
// and every operation the API offers on it. No gRPC here: requests and responses are the API's
// protobuf messages, errors are absl::Status with field paths relative to the request.
//
// Thread-safety: every method may be called from any thread.
// - `mu_` guards the session's maps and graph; graph operations never wait for training.
// - `compute_` (a ComputeGate) is held by whatever reads or writes weights: a running job (for
//   its whole run), Predict, Get/SetWeights and Compile. Those RPCs queue behind each other
//   but do not wait for a job: they answer FAILED_PRECONDITION naming it.
// - Jobs of one session run one at a time (JobScheduler), in the order they were started.
#ifndef KILN_SERVER_SESSION_H_
#define KILN_SERVER_SESSION_H_

#include <atomic>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/graph/graph.h"
#include "core/graph/model.h"
#include "core/io/dataset.h"
#include "core/train/trainer.h"
#include "kiln/v1/service.pb.h"
#include "server/compute_gate.h"
#include "server/datasets.h"
#include "server/job.h"
#include "server/job_scheduler.h"
#include "server/options.h"

namespace kiln::server {

// What every session shares with the rest of the server.
struct Runtime {
  const ServerOptions* options = nullptr;
  JobScheduler* scheduler = nullptr;
  BuiltinDatasets* builtins = nullptr;
  std::atomic<int64_t>* job_counter = nullptr;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  // `seed`: CreateSessionRequest.seed (Keras's set_random_seed for this session), if given.
  Session(std::string id, std::string name, absl::Duration ttl, std::optional<int64_t> seed,
          Runtime runtime);

  const std::string& id() const { return id_; }
  // Marks the session used now (its TTL counts from the last use).
  void Touch();
  // Idle for longer than its TTL, with no job queued or running.
  bool Expired(absl::Time now) const;
  // full: with tensors and layers (GetSession); else a summary (ListSessions).
  v1::Session Describe(bool full) const;
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

  // Data.
  absl::StatusOr<v1::DatasetInfo> OpenDataset(const v1::OpenDatasetRequest& request);
  // Uploads in progress, for both the unary calls and the client stream (which appends with
  // offset -1: no offset check).
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
  absl::StatusOr<v1::Job> CancelJob(const v1::CancelJobRequest& request);

  // Interactive inference.
  absl::StatusOr<v1::PredictResponse> Predict(const v1::PredictRequest& request);

 private:
  struct ModelEntry {
    std::string name;
    std::shared_ptr<Graph> own_graph;  // DefineModel's graph; null when built in the session's
    std::unique_ptr<Model> model;
    std::unique_ptr<Trainer> trainer;
  };
  struct DatasetEntry {
    std::shared_ptr<const Dataset> data;
    v1::DatasetInfo info;
  };

  absl::StatusOr<std::shared_ptr<ModelEntry>> FindModel(const std::string& name,
                                                        absl::string_view field) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // FindModel's error for a job's `model`, checked before its data is decoded.
  absl::Status CheckModelExists(const std::string& name) const ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::shared_ptr<Layer>> FindLayer(const std::string& layer,
                                                   const std::string& model) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A job's data: a session dataset, a built-in, or inline tensors. `default_split` completes
  // a bare "fashion_mnist". Decoding and loading happen outside `mu_`.
  absl::StatusOr<std::shared_ptr<const Dataset>> ResolveData(const v1::DataRef& ref,
                                                             absl::string_view path,
                                                             absl::string_view default_split)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<v1::DatasetInfo> AddDataset(const std::string& name, Dataset data,
                                             const std::string& source)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t DatasetBytes() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Registers a job and hands it to the scheduler with `work`.
  absl::StatusOr<v1::Job> Submit(std::shared_ptr<Job> job, JobScheduler::Work work)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A new job of this session, QUEUED, with a fresh id.
  v1::Job NewJob(const std::string& model, v1::JobKind kind) const;
  // The seed the next new layer or model gets (Peek), or the next fit without a seed of its
  // own; Commit moves on to the one after, so that a failed call leaves every later one as
  // it was.
  static uint64_t Peek(const std::mt19937_64& seeds) { return std::mt19937_64(seeds)(); }
  static void Commit(std::mt19937_64& seeds) { seeds.discard(1); }

  v1::TensorInfo TensorInfoOf(const Graph& graph, TensorId id) const;
  v1::LayerInfo LayerInfoOf(const Layer& layer) const;
  v1::ModelInfo ModelInfoOf(const ModelEntry& entry, bool full) const;

  const std::string id_, name_;
  const std::optional<int64_t> seed_;
  const absl::Time created_;
  const Runtime runtime_;

  ComputeGate compute_;

  mutable absl::Mutex mu_;
  absl::Duration ttl_ ABSL_GUARDED_BY(mu_);
  absl::Time last_used_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::mt19937_64 layer_seeds_ ABSL_GUARDED_BY(mu_);
  std::mt19937_64 fit_seeds_ ABSL_GUARDED_BY(mu_);
  Graph graph_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::shared_ptr<ModelEntry>> models_ ABSL_GUARDED_BY(mu_);
  int model_counter_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, DatasetEntry> datasets_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::unique_ptr<UploadBuilder>> uploads_ ABSL_GUARDED_BY(mu_);
  int64_t upload_counter_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, std::shared_ptr<Job>> jobs_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> job_order_ ABSL_GUARDED_BY(mu_);

  friend class SessionJobRunner;
};

}  // namespace kiln::server

#endif  // KILN_SERVER_SESSION_H_
