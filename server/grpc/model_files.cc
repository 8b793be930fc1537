// ModelService's Keras file RPCs: ImportModel (unary), ImportModelStream (the request, then
// the file in chunks) and ExportModel (the file in chunks). Parsing, building and writing run
// on the worker pool; the streams only move bytes.
#include "absl/strings/str_cat.h"
#include "core/base/status.h"
#include "server/grpc/collect_reactor.h"
#include "server/grpc/grpc_status.h"
#include "server/grpc/services.h"

namespace kiln::server {
namespace {

// Chunks of an exported file: small enough for any client's message limit.
constexpr size_t kChunkBytes = size_t{1} << 20;

// ImportModelStream: the first message is the request (without a source), the rest are the
// file's bytes; the model is imported when the client closes its side.
class ImportReactor : public CollectReactor<v1::ImportModelChunk, v1::ModelInfo> {
 public:
  ImportReactor(grpc::CallbackServerContext* context, const Backend& backend,
                v1::ModelInfo* response)
      : CollectReactor(context, backend, response), sessions_(backend.sessions) {
    Start();
  }

 private:
  absl::Status Consume(const Caller& caller, const v1::ImportModelChunk& chunk) override {
    if (session_ == nullptr) {
      if (!chunk.has_request()) {
        return FieldError("request", "the first message of an import must be its request");
      }
      if (chunk.request().source_case() != v1::ImportModelRequest::SOURCE_NOT_SET) {
        return FieldError("request.data", "send the file in the messages after the request");
      }
      KILN_ASSIGN_OR_RETURN(session_, sessions_->Get(caller, chunk.request().session_id()));
      request_ = chunk.request();
      request_.mutable_data();  // the source is `data`, even for an empty file
      max_bytes_ = session_->ModelFileLimits().max_bytes;
      return absl::OkStatus();
    }
    if (chunk.has_request()) return FieldError("request", "only the first message is the request");
    if (int64_t(request_.data().size() + chunk.data().size()) > max_bytes_) {
      return absl::ResourceExhaustedError(absl::StrCat("the file is larger than the ", max_bytes_,
                                                       " bytes a model file may have here"));
    }
    request_.mutable_data()->append(chunk.data());
    return absl::OkStatus();
  }

  absl::Status Complete(const Caller&, v1::ModelInfo* response) override {
    if (session_ == nullptr) return FieldError("request", "the import sent no request");
    KILN_RETURN_IF_ERROR(WithFieldPrefix(CheckRequestBounds(request_), "request"));
    KILN_ASSIGN_OR_RETURN(*response,
                          session_->Charged([&] { return session_->ImportModel(request_); }));
    return absl::OkStatus();
  }

  void Abort() override { request_.clear_data(); }

  std::string session_id() const override { return session_ ? session_->id() : ""; }

  SessionManager* sessions_;
  v1::ImportModelRequest request_;
  std::shared_ptr<Session> session_;  // set by the request
  int64_t max_bytes_ = 0;
};

// ExportModel: the file is made on the pool, then written a chunk at a time.
class ExportReactor : public grpc::ServerWriteReactor<v1::ExportModelChunk> {
 public:
  ExportReactor(grpc::CallbackServerContext* context, const Backend& backend,
                const v1::ExportModelRequest* request) {
    absl::StatusOr<Caller> caller = CallerOf(*context, *backend.auth);
    if (!caller.ok()) {
      Finish(ToGrpcStatus(caller.status()));
      return;
    }
    const WorkerPool::Lane lane{caller->id, request->session_id()};
    absl::Status scheduled = backend.pool->Schedule(
        lane, [this, context, sessions = backend.sessions, request, caller = *caller] {
          if (context->IsCancelled()) {
            Finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
            return;
          }
          absl::StatusOr<std::shared_ptr<Session>> session =
              sessions->Get(caller, request->session_id());
          absl::StatusOr<KerasExport> file =
              session.ok() ? (*session)->Charged([&] { return (*session)->ExportModel(*request); })
                           : absl::StatusOr<KerasExport>(session.status());
          if (!file.ok()) {
            Finish(ToGrpcStatus(file.status()));
            return;
          }
          file_ = *std::move(file);
          WriteNext();
        });
    if (!scheduled.ok()) Finish(ToGrpcStatus(scheduled));
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
      return;
    }
    WriteNext();
  }

  void OnDone() override { delete this; }

 private:
  // Writes the next chunk (an empty file still gets one), or finishes.
  void WriteNext() {
    if (offset_ >= file_.bytes.size() && offset_ > 0) {
      Finish(grpc::Status::OK);
      return;
    }
    const size_t size = std::min(kChunkBytes, file_.bytes.size() - offset_);
    chunk_.set_data(file_.bytes.substr(offset_, size));
    chunk_.set_total_bytes(static_cast<int64_t>(file_.bytes.size()));
    chunk_.set_file_name(file_.file_name);
    offset_ += std::max<size_t>(size, 1);
    StartWrite(&chunk_);
  }

  KerasExport file_;
  size_t offset_ = 0;
  v1::ExportModelChunk chunk_;
};

}  // namespace

grpc::ServerUnaryReactor* ModelServiceImpl::ImportModel(grpc::CallbackServerContext* context,
                                                        const v1::ImportModelRequest* request,
                                                        v1::ModelInfo* response) {
  return CallSessionFromPool(context, backend_, request, response, &Session::ImportModel);
}

grpc::ServerReadReactor<v1::ImportModelChunk>* ModelServiceImpl::ImportModelStream(
    grpc::CallbackServerContext* context, v1::ModelInfo* response) {
  return new ImportReactor(context, backend_, response);
}

grpc::ServerWriteReactor<v1::ExportModelChunk>* ModelServiceImpl::ExportModel(
    grpc::CallbackServerContext* context, const v1::ExportModelRequest* request) {
  return new ExportReactor(context, backend_, request);
}

}  // namespace kiln::server
