#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "server/datasets.h"
#include "server/job_scheduler.h"
#include "server/services.h"
#include "server/session_manager.h"
#include "server/worker_pool.h"

namespace kiln::server {

KilnServer::KilnServer(ServerOptions options) : options_(std::move(options)) {}

KilnServer::~KilnServer() { Shutdown(absl::ZeroDuration()); }

absl::Status KilnServer::Start() {
  if (absl::Status valid = ValidateOptions(options_); !valid.ok()) return valid;
  const int threads = options_.compute_threads > 0
                          ? options_.compute_threads
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  builtins_ = std::make_unique<BuiltinDatasets>();
  scheduler_ = std::make_unique<JobScheduler>(options_.max_concurrent_jobs, threads);
  rpc_workers_ = std::make_unique<WorkerPool>(options_.rpc_worker_threads, threads);
  sessions_ = std::make_unique<SessionManager>(
      Runtime{&options_, scheduler_.get(), builtins_.get(), &job_counter_});
  session_service_ = std::make_unique<SessionServiceImpl>(sessions_.get());
  model_service_ = std::make_unique<ModelServiceImpl>(sessions_.get(), rpc_workers_.get());
  data_service_ = std::make_unique<DataServiceImpl>(sessions_.get(), rpc_workers_.get());
  job_service_ = std::make_unique<JobServiceImpl>(sessions_.get(), rpc_workers_.get());
  inference_service_ = std::make_unique<InferenceServiceImpl>(sessions_.get(), rpc_workers_.get());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // Without SO_REUSEPORT a second server on a port in use fails to start, instead of silently
  // sharing the port's traffic with the first.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(options_.listen, grpc::InsecureServerCredentials(), &port_);
  builder.SetMaxReceiveMessageSize(static_cast<int>(options_.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(options_.max_message_bytes));
  builder.RegisterService(session_service_.get());
  builder.RegisterService(model_service_.get());
  builder.RegisterService(data_service_.get());
  builder.RegisterService(job_service_.get());
  builder.RegisterService(inference_service_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    server_.reset();
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", options_.listen,
        ": the address is in use (is another kiln-server running there?) or is not an address "
        "of this machine; choose another with --listen=HOST:PORT (port 0 picks a free one)"));
  }
  // Health by service name too ("kiln.v1.ModelService"), as grpc_health_probe -service asks.
  const google::protobuf::FileDescriptor* api = v1::Session::descriptor()->file();
  for (int i = 0; i < api->service_count(); ++i) {
    server_->GetHealthCheckService()->SetServingStatus(api->service(i)->full_name(), true);
  }
  return absl::OkStatus();
}

void KilnServer::Shutdown(absl::Duration deadline) {
  if (server_ == nullptr) return;
  if (auto* health = server_->GetHealthCheckService()) health->SetServingStatus(false);
  scheduler_->Shutdown();  // jobs end INTERRUPTED; their watchers get the final event
  server_->Shutdown(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(deadline));
  sessions_->Shutdown();
  server_->Wait();
  server_.reset();
  rpc_workers_.reset();
}

void KilnServer::Wait() {
  if (server_ != nullptr) server_->Wait();
}

}  // namespace kiln::server
