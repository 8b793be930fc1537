// CollectReactor: the shape every client-streaming Kiln RPC has (UploadDataset,
// ImportModelStream). Each message is taken in as it arrives, on gRPC's thread (cheap work:
// checks and appending bytes); once the client closes its side, the result is made on the
// worker pool, in the lane of the caller and session; a cancelled stream, or one that fails,
// is aborted and never made into anything.
#ifndef KILN_SERVER_GRPC_COLLECT_REACTOR_H_
#define KILN_SERVER_GRPC_COLLECT_REACTOR_H_

#include <grpcpp/grpcpp.h>

#include <string>

#include "absl/status/status.h"
#include "server/grpc/grpc_status.h"

namespace kiln::server {

template <typename Request, typename Response>
class CollectReactor : public grpc::ServerReadReactor<Request> {
 public:
  void OnReadDone(bool ok) override {
    if (!ok) {
      if (context_->IsCancelled()) {
        Cancelled();
        return;
      }
      const WorkerPool::Lane lane{caller_->id, session_id()};
      absl::Status scheduled = pool_->Schedule(lane, [this] {
        if (context_->IsCancelled()) {
          Cancelled();
          return;
        }
        absl::Status status = Complete(*caller_, response_);
        if (!status.ok()) Abort();
        this->Finish(ToGrpcStatus(status));
      });
      if (!scheduled.ok()) {
        Abort();
        this->Finish(ToGrpcStatus(scheduled));
      }
      return;
    }
    absl::Status status = Consume(*caller_, request_);
    if (!status.ok()) {
      // Released before the client hears of the failure, so that its next try has the room.
      Abort();
      this->Finish(ToGrpcStatus(status));
      return;
    }
    this->StartRead(&request_);
  }

  void OnDone() override {
    Abort();  // a cancelled stream leaves nothing behind
    delete this;
  }

 protected:
  CollectReactor(grpc::CallbackServerContext* context, const Backend& backend, Response* response)
      : context_(context),
        caller_(CallerOf(*context, *backend.auth)),
        pool_(backend.pool),
        response_(response) {}

  // Call last in the derived constructor: starts reading, or refuses an unauthenticated call.
  void Start() {
    if (!caller_.ok()) {
      this->Finish(ToGrpcStatus(caller_.status()));
      return;
    }
    this->StartRead(&request_);
  }

  // Takes in one message (gRPC's thread).
  virtual absl::Status Consume(const Caller& caller, const Request& request) = 0;
  // Makes the result once the client closed its side (the pool).
  virtual absl::Status Complete(const Caller& caller, Response* response) = 0;
  // Drops what was taken in; may run more than once.
  virtual void Abort() {}
  // The session the stream works on, once known ("" before), for the pool's lane.
  virtual std::string session_id() const = 0;

 private:
  void Cancelled() {
    Abort();
    this->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
  }

  grpc::CallbackServerContext* const context_;
  const absl::StatusOr<Caller> caller_;
  WorkerPool* const pool_;
  Response* const response_;
  Request request_;
};

}  // namespace kiln::server

#endif  // KILN_SERVER_GRPC_COLLECT_REACTOR_H_
