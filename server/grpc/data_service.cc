// DataService: dataset uploads (a client stream, or unary chunks), files, built-ins, reads.
#include "core/base/status.h"
#include "server/grpc/collect_reactor.h"
#include "server/grpc/grpc_status.h"
#include "server/grpc/services.h"

namespace kiln::server {
namespace {

// UploadDataset: the first message is the header, the rest are chunks; the dataset is created
// when the client closes its side of the stream.
class UploadReactor : public CollectReactor<v1::UploadDatasetRequest, v1::DatasetInfo> {
 public:
  UploadReactor(grpc::CallbackServerContext* context, const Backend& backend,
                v1::DatasetInfo* response)
      : CollectReactor(context, backend, response), sessions_(backend.sessions) {
    Start();
  }

 private:
  absl::Status Consume(const Caller& caller, const v1::UploadDatasetRequest& request) override {
    if (session_ == nullptr) {
      if (!request.has_header()) {
        return FieldError("header", "the first message of an upload must be its header");
      }
      KILN_RETURN_IF_ERROR(CheckRequestBounds(request));
      absl::StatusOr<std::shared_ptr<Session>> session =
          sessions_->Get(caller, request.header().session_id());
      if (!session.ok()) return WithFieldPrefix(session.status(), "header");
      KILN_ASSIGN_OR_RETURN(upload_id_, (*session)->BeginUpload(request.header()));
      session_ = *std::move(session);
      return absl::OkStatus();
    }
    if (!request.has_chunk()) return FieldError("chunk", "only the first message is a header");
    return session_->AppendToUpload(upload_id_, request.chunk(), /*offset=*/-1).status();
  }

  absl::Status Complete(const Caller&, v1::DatasetInfo* response) override {
    if (session_ == nullptr) return FieldError("header", "the upload sent no header");
    v1::FinishUploadRequest finish;
    finish.set_upload_id(upload_id_);
    KILN_ASSIGN_OR_RETURN(*response,
                          session_->Charged([&] { return session_->FinishUpload(finish); }));
    return absl::OkStatus();
  }

  void Abort() override {
    if (session_ != nullptr) session_->AbortUpload(upload_id_);
  }

  std::string session_id() const override { return session_ ? session_->id() : ""; }

  SessionManager* sessions_;
  std::shared_ptr<Session> session_;  // set once the header has begun the upload
  std::string upload_id_;
};

}  // namespace

grpc::ServerReadReactor<v1::UploadDatasetRequest>* DataServiceImpl::UploadDataset(
    grpc::CallbackServerContext* context, v1::DatasetInfo* response) {
  return new UploadReactor(context, backend_, response);
}

grpc::ServerUnaryReactor* DataServiceImpl::BeginUpload(grpc::CallbackServerContext* context,
                                                       const v1::BeginUploadRequest* request,
                                                       v1::BeginUploadResponse* response) {
  return Respond(context, backend_, [&](const Caller& caller) -> absl::Status {
    KILN_RETURN_IF_ERROR(CheckRequestBounds(*request));
    absl::StatusOr<std::shared_ptr<Session>> session =
        backend_.sessions->Get(caller, request->header().session_id());
    if (!session.ok()) return WithFieldPrefix(session.status(), "header");
    absl::StatusOr<std::string> id = (*session)->BeginUpload(request->header());
    if (!id.ok()) return id.status();
    response->set_upload_id(*id);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* DataServiceImpl::AppendUploadChunk(
    grpc::CallbackServerContext* context, const v1::AppendUploadChunkRequest* request,
    v1::AppendUploadChunkResponse* response) {
  return Respond(context, backend_, [&](const Caller& caller) -> absl::Status {
    KILN_ASSIGN_OR_RETURN(std::shared_ptr<Session> session,
                          backend_.sessions->Get(caller, request->session_id()));
    KILN_ASSIGN_OR_RETURN(int64_t received, session->AppendUploadChunk(*request));
    response->set_received(received);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* DataServiceImpl::FinishUpload(grpc::CallbackServerContext* context,
                                                        const v1::FinishUploadRequest* request,
                                                        v1::DatasetInfo* response) {
  return CallSessionFromPool(context, backend_, request, response, &Session::FinishUpload);
}

grpc::ServerUnaryReactor* DataServiceImpl::OpenDataset(grpc::CallbackServerContext* context,
                                                       const v1::OpenDatasetRequest* request,
                                                       v1::DatasetInfo* response) {
  return CallSessionFromPool(context, backend_, request, response, &Session::OpenDataset);
}

grpc::ServerUnaryReactor* DataServiceImpl::GetDataset(grpc::CallbackServerContext* context,
                                                      const v1::GetDatasetRequest* request,
                                                      v1::DatasetInfo* response) {
  return CallSession(context, backend_, request, response, &Session::GetDataset);
}

grpc::ServerUnaryReactor* DataServiceImpl::ListDatasets(grpc::CallbackServerContext* context,
                                                        const v1::ListDatasetsRequest* request,
                                                        v1::ListDatasetsResponse* response) {
  return Respond(context, backend_, [&](const Caller& caller) -> absl::Status {
    KILN_ASSIGN_OR_RETURN(std::shared_ptr<Session> session,
                          backend_.sessions->Get(caller, request->session_id()));
    *response = session->ListDatasets();
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* DataServiceImpl::DeleteDataset(grpc::CallbackServerContext* context,
                                                         const v1::DeleteDatasetRequest* request,
                                                         v1::DeleteDatasetResponse* response) {
  return CallSessionFromPool(context, backend_, request, response, &Session::DeleteDataset);
}

grpc::ServerUnaryReactor* DataServiceImpl::ReadDataset(grpc::CallbackServerContext* context,
                                                       const v1::ReadDatasetRequest* request,
                                                       v1::TensorProto* response) {
  return CallSession(context, backend_, request, response, &Session::ReadDataset);
}

}  // namespace kiln::server
