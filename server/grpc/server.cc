#include "server/grpc/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "server/grpc/services.h"
#include "server/service/compute_shares.h"
#include "server/service/datasets.h"
#include "server/service/job_scheduler.h"
#include "server/service/session_manager.h"
#include "server/service/worker_pool.h"
#include "server/store/failpoint.h"
#include "server/store/memory_store.h"
#include "server/store/sqlite_store.h"

namespace kiln::server {

KilnServer::KilnServer(ServerOptions options, std::function<void(const std::string&)> log)
    : options_(std::move(options)), log_(std::move(log)) {
  if (!log_) {
    log_ = [](const std::string& line) {
      std::fprintf(stderr, "kiln-server: %s\n", line.c_str());
      std::fflush(stderr);
    };
  }
}

KilnServer::~KilnServer() { Shutdown(absl::ZeroDuration()); }

absl::Status KilnServer::OpenStore() {
  if (store::FailpointsArmed()) log_("KILN_FAILPOINTS is set: failpoints are armed (tests only)");
  if (options_.ephemeral) {
    store_ = std::make_unique<store::MemoryStore>();
    state_summary_ = "state: none kept (--ephemeral)";
    return absl::OkStatus();
  }
  absl::StatusOr<std::unique_ptr<store::StateDir>> dir = store::StateDir::Open(options_.state_dir);
  if (!dir.ok()) return dir.status();
  absl::StatusOr<std::unique_ptr<store::SqliteStore>> sqlite =
      store::SqliteStore::Open(*std::move(dir));
  if (!sqlite.ok()) {
    return absl::Status(sqlite.status().code(),
                        absl::StrCat("cannot open the state in ", options_.state_dir, ": ",
                                     sqlite.status().message()));
  }
  const int orphans = (*sqlite)->orphans_removed();
  store_ = *std::move(sqlite);
  state_summary_ = absl::StrCat("state: ", options_.state_dir);
  if (orphans > 0) absl::StrAppend(&state_summary_, ", ", orphans, " unreferenced files removed");
  return absl::OkStatus();
}

absl::Status KilnServer::Start() {
  if (absl::Status valid = ValidateOptions(options_); !valid.ok()) return valid;
  if (absl::Status opened = OpenStore(); !opened.ok()) return opened;
  job_compute_ = std::make_unique<ComputeShares>(options_.compute_threads);
  rpc_compute_ = std::make_unique<ComputeShares>(options_.compute_threads);
  builtins_ = std::make_unique<BuiltinDatasets>();
  scheduler_ = std::make_unique<JobScheduler>(options_.max_concurrent_jobs, job_compute_.get());
  rpc_workers_ = std::make_unique<WorkerPool>(options_.rpc_worker_threads, options_.max_queued_rpcs,
                                              rpc_compute_.get());
  sessions_ = std::make_unique<SessionManager>(
      Runtime{&options_, scheduler_.get(), builtins_.get(), store_.get()});
  if (absl::Status loaded = sessions_->Load(log_); !loaded.ok()) {
    return absl::Status(loaded.code(), absl::StrCat("cannot read the state in ", options_.state_dir,
                                                    ": ", loaded.message()));
  }
  if (store_->durable()) {
    absl::StrAppend(&state_summary_, " (", sessions_->restored(), " sessions restored");
    if (sessions_->damaged() > 0)
      absl::StrAppend(&state_summary_, ", ", sessions_->damaged(), " damaged");
    absl::StrAppend(&state_summary_, ")");
  }
  session_service_ = std::make_unique<SessionServiceImpl>(sessions_.get(), rpc_workers_.get());
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
