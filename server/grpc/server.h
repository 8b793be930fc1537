// KilnServer: the whole service - gRPC server (callback API) with Kiln's services, the
// standard grpc.health.v1 health service and server reflection, over the session manager, the
// job scheduler and the store (the state directory, or memory with --ephemeral); with
// --http_listen also the HTTP listener of /metrics, /healthz and /readyz, and the web door
// (the API by the Connect protocol through the in-process channel, job events, the editor). It
// sizes its compute threads from the CPUs the process may use (CpuBudget) unless told. kiln-server
// runs one; tests run one in-process on a free port.
#ifndef KILN_SERVER_GRPC_SERVER_H_
#define KILN_SERVER_GRPC_SERVER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "server/service/cpu_budget.h"
#include "server/service/logger.h"
#include "server/service/memory_budget.h"
#include "server/service/metrics.h"
#include "server/service/options.h"

namespace grpc {
class Server;
}

namespace kiln::store {
class SessionStore;
}

namespace kiln::server {

class SessionManager;
class JobScheduler;
class WorkerPool;
class BuiltinDatasets;
class ComputeShares;
class Authenticator;
class Tenants;
class SessionServiceImpl;
class ModelServiceImpl;
class DataServiceImpl;
class JobServiceImpl;
class InferenceServiceImpl;
class CatalogueServiceImpl;
class HttpListener;
class BridgeSlot;
class GenericBridge;

class KilnServer {
 public:
  // `log` receives the server's log lines (--log_format; damaged sessions, armed failpoints,
  // RPCs as --log_rpcs says, jobs that end); stderr if null.
  explicit KilnServer(ServerOptions options, std::function<void(const std::string&)> log = nullptr);
  ~KilnServer();

  // Opens the state directory (FAILED_PRECONDITION when another server holds it), restores
  // its sessions, binds and starts serving. UNAVAILABLE if the address cannot be bound.
  absl::Status Start();
  // The port bound (useful with port 0).
  int port() const { return port_; }
  // The HTTP listener's port; 0 without --http_listen.
  int http_port() const;
  // One line on the compute threads and where their number comes from.
  std::string compute_summary() const;
  // "sessions may hold N MiB together (...)": the server-wide memory bound and its source.
  std::string memory_summary() const;
  // Whether the server takes calls: started, not draining (/readyz).
  bool ready() const { return ready_.load(); }
  Logger& logger() { return *logger_; }
  // Everything /metrics shows.
  std::string RenderMetrics() const { return metrics_->Render(); }
  // Re-reads --auth_tokens_file (SIGHUP); on an error the tokens in use stay.
  absl::Status ReloadTokens();
  // One line on transport security and authentication.
  std::string security_summary() const;
  // One line on the state Start found: where, and what it restored.
  const std::string& state_summary() const { return state_summary_; }
  // Graceful stop: health turns NOT_SERVING, new jobs are refused, queued and running jobs end
  // INTERRUPTED (running ones at their next batch, after a checkpoint), watch streams get the
  // final events and close, then in-flight RPCs get until `deadline` to finish.
  void Shutdown(absl::Duration deadline = absl::Seconds(10));
  // Blocks until Shutdown has completed.
  void Wait();

 private:
  absl::Status OpenStore();
  absl::Status StartHttp();
  void DefineGauges();

  ServerOptions options_;
  std::unique_ptr<Logger> logger_;
  std::unique_ptr<Metrics> metrics_;
  CpuBudget cpu_budget_;
  MemoryBudget memory_budget_;
  int64_t server_bytes_ = 0;  // --max_server_bytes, resolved
  int port_ = 0;
  std::atomic<bool> ready_{false};
  std::string state_summary_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<store::SessionStore> store_;
  std::unique_ptr<Tenants> tenants_;  // outlives the jobs and sessions that count against it
  std::unique_ptr<ComputeShares> job_compute_, rpc_compute_;
  std::unique_ptr<BuiltinDatasets> builtins_;
  std::unique_ptr<JobScheduler> scheduler_;
  std::unique_ptr<WorkerPool> rpc_workers_;  // outlives server_: in-flight RPCs need it
  std::unique_ptr<SessionManager> sessions_;
  std::unique_ptr<SessionServiceImpl> session_service_;
  std::unique_ptr<ModelServiceImpl> model_service_;
  std::unique_ptr<DataServiceImpl> data_service_;
  std::unique_ptr<JobServiceImpl> job_service_;
  std::unique_ptr<InferenceServiceImpl> inference_service_;
  std::unique_ptr<CatalogueServiceImpl> catalogue_service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<BridgeSlot> bridge_;             // the HTTP door's way to server_
  std::shared_ptr<GenericBridge> generic_bridge_;  // the same, to close before server_ stops
  std::unique_ptr<HttpListener> http_;             // first to go: its gauges read the members above
};

}  // namespace kiln::server

#endif  // KILN_SERVER_GRPC_SERVER_H_
