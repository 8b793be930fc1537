// KilnServer: the whole service - gRPC server (callback API) with Kiln's services, the
// standard grpc.health.v1 health service and server reflection, the session manager and the
// job scheduler. kiln-server runs one; tests run one in-process on a free port.
#ifndef KILN_SERVER_SERVER_H_
#define KILN_SERVER_SERVER_H_

#include <memory>

#include "absl/status/status.h"
#include "server/options.h"

namespace grpc {
class Server;
}

namespace kiln::server {

class SessionManager;
class JobScheduler;
class WorkerPool;
class BuiltinDatasets;
class SessionServiceImpl;
class ModelServiceImpl;
class DataServiceImpl;
class JobServiceImpl;
class InferenceServiceImpl;

class KilnServer {
 public:
  explicit KilnServer(ServerOptions options);
  ~KilnServer();

  // Binds and starts serving. UNAVAILABLE if the address cannot be bound.
  absl::Status Start();
  // The port bound (useful with port 0).
  int port() const { return port_; }
  // Graceful stop: health turns NOT_SERVING, new jobs are refused, queued and running jobs end
  // INTERRUPTED (running ones at their next batch), watch streams get the final events and
  // close, then in-flight RPCs get until `deadline` to finish.
  void Shutdown(absl::Duration deadline = absl::Seconds(10));
  // Blocks until Shutdown has completed.
  void Wait();

 private:
  ServerOptions options_;
  int port_ = 0;
  std::atomic<int64_t> job_counter_{0};
  std::unique_ptr<BuiltinDatasets> builtins_;
  std::unique_ptr<JobScheduler> scheduler_;
  std::unique_ptr<WorkerPool> rpc_workers_;  // outlives server_: in-flight RPCs need it
  std::unique_ptr<SessionManager> sessions_;
  std::unique_ptr<SessionServiceImpl> session_service_;
  std::unique_ptr<ModelServiceImpl> model_service_;
  std::unique_ptr<DataServiceImpl> data_service_;
  std::unique_ptr<JobServiceImpl> job_service_;
  std::unique_ptr<InferenceServiceImpl> inference_service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace kiln::server

#endif  // KILN_SERVER_SERVER_H_
