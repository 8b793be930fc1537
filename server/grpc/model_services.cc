// SessionService, ModelService, CatalogueService and InferenceService: handlers that delegate
// to SessionManager, Session and the catalogue. Reads answer on the gRPC thread; changes (they
// write to the store) and computation run on the worker pool.
#include "core/base/status.h"
#include "core/catalogue/catalogue.h"
#include "server/grpc/grpc_status.h"
#include "server/grpc/services.h"

namespace kiln::server {

grpc::ServerUnaryReactor* SessionServiceImpl::CreateSession(grpc::CallbackServerContext* context,
                                                            const v1::CreateSessionRequest* request,
                                                            v1::Session* response) {
  return RespondFromPool(
      context, backend_, /*session_id=*/"",
      [sessions = backend_.sessions, request, response](const Caller& caller) -> absl::Status {
        KILN_RETURN_IF_ERROR(CheckRequestBounds(*request));
        KILN_ASSIGN_OR_RETURN(std::shared_ptr<Session> session, sessions->Create(caller, *request));
        *response = session->Describe(true);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* SessionServiceImpl::GetSession(grpc::CallbackServerContext* context,
                                                         const v1::GetSessionRequest* request,
                                                         v1::Session* response) {
  return Respond(context, backend_, [&](const Caller& caller) -> absl::Status {
    KILN_ASSIGN_OR_RETURN(*response, backend_.sessions->Describe(caller, request->session_id()));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* SessionServiceImpl::ListSessions(grpc::CallbackServerContext* context,
                                                           const v1::ListSessionsRequest*,
                                                           v1::ListSessionsResponse* response) {
  return Respond(context, backend_, [&](const Caller& caller) {
    *response = backend_.sessions->List(caller);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* SessionServiceImpl::DeleteSession(grpc::CallbackServerContext* context,
                                                            const v1::DeleteSessionRequest* request,
                                                            v1::DeleteSessionResponse*) {
  return RespondFromPool(context, backend_, request->session_id(),
                         [sessions = backend_.sessions, request](const Caller& caller) {
                           return sessions->Delete(caller, request->session_id());
                         });
}

grpc::ServerUnaryReactor* ModelServiceImpl::AddInput(grpc::CallbackServerContext* context,
                                                     const v1::AddInputRequest* request,
                                                     v1::TensorInfo* response) {
  return CallSessionFromPool(context, backend_, request, response, &Session::AddInput);
}

grpc::ServerUnaryReactor* ModelServiceImpl::AddLayer(grpc::CallbackServerContext* context,
                                                     const v1::AddLayerRequest* request,
                                                     v1::AddLayerResponse* response) {
  return CallSessionFromPool(context, backend_, request, response, &Session::AddLayer);
}

grpc::ServerUnaryReactor* ModelServiceImpl::CallLayer(grpc::CallbackServerContext* context,
                                                      const v1::CallLayerRequest* request,
                                                      v1::CallLayerResponse* response) {
  return CallSessionFromPool(context, backend_, request, response, &Session::CallLayer);
}

grpc::ServerUnaryReactor* ModelServiceImpl::GetLayer(grpc::CallbackServerContext* context,
                                                     const v1::GetLayerRequest* request,
                                                     v1::LayerInfo* response) {
  return CallSession(context, backend_, request, response, &Session::GetLayer);
}

grpc::ServerUnaryReactor* ModelServiceImpl::CreateModel(grpc::CallbackServerContext* context,
                                                        const v1::CreateModelRequest* request,
                                                        v1::ModelInfo* response) {
  return CallSessionFromPool(context, backend_, request, response, &Session::CreateModel);
}

grpc::ServerUnaryReactor* ModelServiceImpl::DefineModel(grpc::CallbackServerContext* context,
                                                        const v1::DefineModelRequest* request,
                                                        v1::ModelInfo* response) {
  return CallSessionFromPool(context, backend_, request, response, &Session::DefineModel);
}

grpc::ServerUnaryReactor* ModelServiceImpl::GetModel(grpc::CallbackServerContext* context,
                                                     const v1::GetModelRequest* request,
                                                     v1::ModelInfo* response) {
  return CallSession(context, backend_, request, response, &Session::GetModel);
}

grpc::ServerUnaryReactor* ModelServiceImpl::ListModels(grpc::CallbackServerContext* context,
                                                       const v1::ListModelsRequest* request,
                                                       v1::ListModelsResponse* response) {
  return Respond(context, backend_, [&](const Caller& caller) -> absl::Status {
    KILN_ASSIGN_OR_RETURN(std::shared_ptr<Session> session,
                          backend_.sessions->Get(caller, request->session_id()));
    *response = session->ListModels();
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ModelServiceImpl::DeleteModel(grpc::CallbackServerContext* context,
                                                        const v1::DeleteModelRequest* request,
                                                        v1::DeleteModelResponse* response) {
  return CallSessionFromPool(context, backend_, request, response, &Session::DeleteModel);
}

grpc::ServerUnaryReactor* ModelServiceImpl::Compile(grpc::CallbackServerContext* context,
                                                    const v1::CompileRequest* request,
                                                    v1::ModelInfo* response) {
  return CallSessionFromPool(context, backend_, request, response, &Session::Compile);
}

grpc::ServerUnaryReactor* ModelServiceImpl::GetWeights(grpc::CallbackServerContext* context,
                                                       const v1::GetWeightsRequest* request,
                                                       v1::GetWeightsResponse* response) {
  return CallSessionFromPool(context, backend_, request, response, &Session::GetWeights);
}

grpc::ServerUnaryReactor* ModelServiceImpl::SetWeights(grpc::CallbackServerContext* context,
                                                       const v1::SetWeightsRequest* request,
                                                       v1::SetWeightsResponse* response) {
  return CallSessionFromPool(context, backend_, request, response, &Session::SetWeights);
}

grpc::ServerUnaryReactor* CatalogueServiceImpl::DescribeCatalogue(
    grpc::CallbackServerContext* context, const v1::DescribeCatalogueRequest* request,
    v1::Catalogue* response) {
  return Respond(context, backend_, [&](const Caller&) -> absl::Status {
    KILN_ASSIGN_OR_RETURN(*response, FindInCatalogue(request->name()));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* InferenceServiceImpl::Predict(grpc::CallbackServerContext* context,
                                                        const v1::PredictRequest* request,
                                                        v1::PredictResponse* response) {
  return CallSessionFromPool(context, backend_, request, response, &Session::Predict);
}

}  // namespace kiln::server
