// The gRPC services (callback API: one reactor per RPC). They only translate: each handler
// finds the session and calls the Session method that does the work (server/service/).
// Handlers that change anything (they write to the store), compute or may wait run on a
// WorkerPool, never on gRPC's threads.
#ifndef KILN_SERVER_GRPC_SERVICES_H_
#define KILN_SERVER_GRPC_SERVICES_H_

#include "kiln/v1/service.grpc.pb.h"
#include "server/grpc/grpc_status.h"

namespace kiln::server {

class SessionServiceImpl final : public v1::SessionService::CallbackService {
 public:
  explicit SessionServiceImpl(Backend backend) : backend_(backend) {}
  grpc::ServerUnaryReactor* CreateSession(grpc::CallbackServerContext* context,
                                          const v1::CreateSessionRequest* request,
                                          v1::Session* response) override;
  grpc::ServerUnaryReactor* GetSession(grpc::CallbackServerContext* context,
                                       const v1::GetSessionRequest* request,
                                       v1::Session* response) override;
  grpc::ServerUnaryReactor* ListSessions(grpc::CallbackServerContext* context,
                                         const v1::ListSessionsRequest* request,
                                         v1::ListSessionsResponse* response) override;
  grpc::ServerUnaryReactor* DeleteSession(grpc::CallbackServerContext* context,
                                          const v1::DeleteSessionRequest* request,
                                          v1::DeleteSessionResponse* response) override;

 private:
  const Backend backend_;
};

class ModelServiceImpl final : public v1::ModelService::CallbackService {
 public:
  explicit ModelServiceImpl(Backend backend) : backend_(backend) {}
  grpc::ServerUnaryReactor* AddInput(grpc::CallbackServerContext* context,
                                     const v1::AddInputRequest* request,
                                     v1::TensorInfo* response) override;
  grpc::ServerUnaryReactor* AddLayer(grpc::CallbackServerContext* context,
                                     const v1::AddLayerRequest* request,
                                     v1::AddLayerResponse* response) override;
  grpc::ServerUnaryReactor* CallLayer(grpc::CallbackServerContext* context,
                                      const v1::CallLayerRequest* request,
                                      v1::CallLayerResponse* response) override;
  grpc::ServerUnaryReactor* GetLayer(grpc::CallbackServerContext* context,
                                     const v1::GetLayerRequest* request,
                                     v1::LayerInfo* response) override;
  grpc::ServerUnaryReactor* CreateModel(grpc::CallbackServerContext* context,
                                        const v1::CreateModelRequest* request,
                                        v1::ModelInfo* response) override;
  grpc::ServerUnaryReactor* DefineModel(grpc::CallbackServerContext* context,
                                        const v1::DefineModelRequest* request,
                                        v1::ModelInfo* response) override;
  grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext* context,
                                     const v1::GetModelRequest* request,
                                     v1::ModelInfo* response) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context,
                                       const v1::ListModelsRequest* request,
                                       v1::ListModelsResponse* response) override;
  grpc::ServerUnaryReactor* DeleteModel(grpc::CallbackServerContext* context,
                                        const v1::DeleteModelRequest* request,
                                        v1::DeleteModelResponse* response) override;
  grpc::ServerUnaryReactor* Compile(grpc::CallbackServerContext* context,
                                    const v1::CompileRequest* request,
                                    v1::ModelInfo* response) override;
  grpc::ServerUnaryReactor* GetWeights(grpc::CallbackServerContext* context,
                                       const v1::GetWeightsRequest* request,
                                       v1::GetWeightsResponse* response) override;
  grpc::ServerUnaryReactor* SetWeights(grpc::CallbackServerContext* context,
                                       const v1::SetWeightsRequest* request,
                                       v1::SetWeightsResponse* response) override;
  grpc::ServerUnaryReactor* ImportModel(grpc::CallbackServerContext* context,
                                        const v1::ImportModelRequest* request,
                                        v1::ModelInfo* response) override;
  grpc::ServerReadReactor<v1::ImportModelChunk>* ImportModelStream(
      grpc::CallbackServerContext* context, v1::ModelInfo* response) override;
  grpc::ServerWriteReactor<v1::ExportModelChunk>* ExportModel(
      grpc::CallbackServerContext* context, const v1::ExportModelRequest* request) override;

 private:
  const Backend backend_;
};

class DataServiceImpl final : public v1::DataService::CallbackService {
 public:
  explicit DataServiceImpl(Backend backend) : backend_(backend) {}
  grpc::ServerReadReactor<v1::UploadDatasetRequest>* UploadDataset(
      grpc::CallbackServerContext* context, v1::DatasetInfo* response) override;
  grpc::ServerUnaryReactor* BeginUpload(grpc::CallbackServerContext* context,
                                        const v1::BeginUploadRequest* request,
                                        v1::BeginUploadResponse* response) override;
  grpc::ServerUnaryReactor* AppendUploadChunk(grpc::CallbackServerContext* context,
                                              const v1::AppendUploadChunkRequest* request,
                                              v1::AppendUploadChunkResponse* response) override;
  grpc::ServerUnaryReactor* FinishUpload(grpc::CallbackServerContext* context,
                                         const v1::FinishUploadRequest* request,
                                         v1::DatasetInfo* response) override;
  grpc::ServerUnaryReactor* OpenDataset(grpc::CallbackServerContext* context,
                                        const v1::OpenDatasetRequest* request,
                                        v1::DatasetInfo* response) override;
  grpc::ServerUnaryReactor* GetDataset(grpc::CallbackServerContext* context,
                                       const v1::GetDatasetRequest* request,
                                       v1::DatasetInfo* response) override;
  grpc::ServerUnaryReactor* ListDatasets(grpc::CallbackServerContext* context,
                                         const v1::ListDatasetsRequest* request,
                                         v1::ListDatasetsResponse* response) override;
  grpc::ServerUnaryReactor* DeleteDataset(grpc::CallbackServerContext* context,
                                          const v1::DeleteDatasetRequest* request,
                                          v1::DeleteDatasetResponse* response) override;
  grpc::ServerUnaryReactor* ReadDataset(grpc::CallbackServerContext* context,
                                        const v1::ReadDatasetRequest* request,
                                        v1::TensorProto* response) override;

 private:
  const Backend backend_;
};

class JobServiceImpl final : public v1::JobService::CallbackService {
 public:
  explicit JobServiceImpl(Backend backend) : backend_(backend) {}
  grpc::ServerUnaryReactor* StartFit(grpc::CallbackServerContext* context,
                                     const v1::StartFitRequest* request,
                                     v1::Job* response) override;
  grpc::ServerUnaryReactor* StartEvaluate(grpc::CallbackServerContext* context,
                                          const v1::StartEvaluateRequest* request,
                                          v1::Job* response) override;
  grpc::ServerUnaryReactor* StartPredict(grpc::CallbackServerContext* context,
                                         const v1::StartPredictRequest* request,
                                         v1::Job* response) override;
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* context,
                                   const v1::GetJobRequest* request, v1::Job* response) override;
  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* context,
                                     const v1::ListJobsRequest* request,
                                     v1::ListJobsResponse* response) override;
  grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext* context,
                                      const v1::CancelJobRequest* request,
                                      v1::Job* response) override;
  grpc::ServerWriteReactor<v1::JobEvent>* WatchJob(grpc::CallbackServerContext* context,
                                                   const v1::WatchJobRequest* request) override;
  grpc::ServerUnaryReactor* ResumeJob(grpc::CallbackServerContext* context,
                                      const v1::ResumeJobRequest* request,
                                      v1::Job* response) override;
  grpc::ServerUnaryReactor* ListCheckpoints(grpc::CallbackServerContext* context,
                                            const v1::ListCheckpointsRequest* request,
                                            v1::ListCheckpointsResponse* response) override;
  grpc::ServerUnaryReactor* RestoreCheckpoint(grpc::CallbackServerContext* context,
                                              const v1::RestoreCheckpointRequest* request,
                                              v1::Checkpoint* response) override;
  grpc::ServerUnaryReactor* DeleteCheckpoint(grpc::CallbackServerContext* context,
                                             const v1::DeleteCheckpointRequest* request,
                                             v1::DeleteCheckpointResponse* response) override;

 private:
  const Backend backend_;
};

class CatalogueServiceImpl final : public v1::CatalogueService::CallbackService {
 public:
  explicit CatalogueServiceImpl(Backend backend) : backend_(backend) {}
  grpc::ServerUnaryReactor* DescribeCatalogue(grpc::CallbackServerContext* context,
                                              const v1::DescribeCatalogueRequest* request,
                                              v1::Catalogue* response) override;

 private:
  const Backend backend_;
};

class InferenceServiceImpl final : public v1::InferenceService::CallbackService {
 public:
  explicit InferenceServiceImpl(Backend backend) : backend_(backend) {}
  grpc::ServerUnaryReactor* Predict(grpc::CallbackServerContext* context,
                                    const v1::PredictRequest* request,
                                    v1::PredictResponse* response) override;

 private:
  const Backend backend_;
};

}  // namespace kiln::server

#endif  // KILN_SERVER_GRPC_SERVICES_H_
