#include "server/grpc/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/base/status.h"
#include "server/grpc/generic_bridge.h"
#include "server/grpc/rpc_observer.h"
#include "server/grpc/services.h"
#include "server/http/http_listener.h"
#include "server/service/authenticator.h"
#include "server/service/compute_shares.h"
#include "server/service/datasets.h"
#include "server/service/job_scheduler.h"
#include "server/service/service_metrics.h"
#include "server/service/session_manager.h"
#include "server/service/tenants.h"
#include "server/service/worker_pool.h"
#include "server/store/failpoint.h"
#include "server/store/memory_store.h"
#include "server/store/sqlite_store.h"

namespace kiln::server {

KilnServer::KilnServer(ServerOptions options, std::function<void(const std::string&)> log)
    : options_(std::move(options)),
      // An unknown format is refused by Start (ValidateOptions); until then, text.
      logger_(std::make_unique<Logger>(
          ParseLogFormat(options_.log_format).value_or(LogFormat::kText), std::move(log))),
      metrics_(std::make_unique<Metrics>()) {}

KilnServer::~KilnServer() { Shutdown(absl::ZeroDuration()); }

namespace {

int64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

absl::StatusOr<std::string> ReadPem(const std::string& path, absl::string_view flag) {
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) {
    return absl::NotFoundError(absl::StrCat("--", flag, ": cannot read ", path));
  }
  if (text.find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": ", path, " is not a PEM file (or cannot be read)"));
  }
  return text;
}

// Plaintext, TLS, or TLS that requires a client certificate signed by --tls_client_ca.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(const ServerOptions& options) {
  if (options.tls_cert.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions ssl;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  KILN_ASSIGN_OR_RETURN(pair.cert_chain, ReadPem(options.tls_cert, "tls_cert"));
  KILN_ASSIGN_OR_RETURN(pair.private_key, ReadPem(options.tls_key, "tls_key"));
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!options.tls_client_ca.empty()) {
    KILN_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPem(options.tls_client_ca, "tls_client_ca"));
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

absl::Status KilnServer::ReloadTokens() {
  if (auth_ == nullptr) return absl::FailedPreconditionError("the server has not started");
  return auth_->Reload();
}

std::string KilnServer::security_summary() const {
  std::string summary = options_.tls_cert.empty() ? "plaintext" : "TLS";
  if (!options_.tls_client_ca.empty()) absl::StrAppend(&summary, ", client certificates required");
  if (!options_.auth_tokens_file.empty()) {
    absl::StrAppend(&summary, ", tokens of ", auth_->tenants(), " tenants from ",
                    options_.auth_tokens_file);
  } else if (options_.tls_client_ca.empty()) {
    absl::StrAppend(&summary, ", no authentication");
  }
  return summary;
}

absl::Status KilnServer::OpenStore() {
  if (store::FailpointsArmed()) {
    logger_->Warning("KILN_FAILPOINTS is set: failpoints are armed (tests only)");
  }
  if (options_.ephemeral) {
    store_ = std::make_unique<store::MemoryStore>();
    state_summary_ = "state: none kept (--ephemeral)";
    return absl::OkStatus();
  }
  absl::StatusOr<std::unique_ptr<store::StateDir>> dir = store::StateDir::Open(options_.state_dir);
  if (!dir.ok()) return dir.status();
  absl::StatusOr<std::unique_ptr<store::SqliteStore>> sqlite =
      store::SqliteStore::Open(*std::move(dir), options_.max_tenant_disk_bytes);
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
  auth_ =
      std::make_unique<Authenticator>(options_.auth_tokens_file, !options_.tls_client_ca.empty());
  if (absl::Status tokens = auth_->Reload(); !tokens.ok()) return tokens;
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials = Credentials(options_);
  if (!credentials.ok()) return credentials.status();
  // Before the state loads, so that /readyz says "not ready" while it does.
  if (absl::Status http = StartHttp(); !http.ok()) return http;
  if (absl::Status opened = OpenStore(); !opened.ok()) return opened;
  cpu_budget_ = ReadCpuBudget();
  const int compute_threads =
      options_.compute_threads > 0 ? options_.compute_threads : cpu_budget_.cpus;
  job_compute_ = std::make_unique<ComputeShares>(compute_threads);
  rpc_compute_ = std::make_unique<ComputeShares>(compute_threads);
  builtins_ = std::make_unique<BuiltinDatasets>();
  memory_budget_ = ReadMemoryBudget();
  server_bytes_ = options_.max_server_bytes > 0 ? options_.max_server_bytes
                                                : DefaultServerBytes(memory_budget_);
  tenants_ = std::make_unique<Tenants>(&options_, server_bytes_);
  scheduler_ = std::make_unique<JobScheduler>(options_.max_concurrent_jobs, job_compute_.get());
  rpc_workers_ = std::make_unique<WorkerPool>(options_.rpc_worker_threads, options_.max_queued_rpcs,
                                              rpc_compute_.get());
  DefineServiceMetrics(*metrics_);
  sessions_ = std::make_unique<SessionManager>(Runtime{&options_, scheduler_.get(), builtins_.get(),
                                                       store_.get(), tenants_.get(), metrics_.get(),
                                                       logger_.get()});
  if (absl::Status loaded =
          sessions_->Load([this](const std::string& line) { logger_->Warning(line); });
      !loaded.ok()) {
    return absl::Status(loaded.code(), absl::StrCat("cannot read the state in ", options_.state_dir,
                                                    ": ", loaded.message()));
  }
  if (store_->durable()) {
    absl::StrAppend(&state_summary_, " (", sessions_->restored(), " sessions restored");
    if (sessions_->damaged() > 0)
      absl::StrAppend(&state_summary_, ", ", sessions_->damaged(), " damaged");
    absl::StrAppend(&state_summary_, ")");
  }
  const Backend backend{sessions_.get(), rpc_workers_.get(), auth_.get()};
  session_service_ = std::make_unique<SessionServiceImpl>(backend);
  model_service_ = std::make_unique<ModelServiceImpl>(backend);
  data_service_ = std::make_unique<DataServiceImpl>(backend);
  job_service_ = std::make_unique<JobServiceImpl>(backend);
  inference_service_ = std::make_unique<InferenceServiceImpl>(backend);
  catalogue_service_ = std::make_unique<CatalogueServiceImpl>(backend);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> observers;
  observers.push_back(std::make_unique<RpcObserverFactory>(
      metrics_.get(), logger_.get(), auth_.get(), *ParseLogRpcs(options_.log_rpcs)));
  builder.experimental().SetInterceptorCreators(std::move(observers));
  // Without SO_REUSEPORT a second server on a port in use fails to start, instead of silently
  // sharing the port's traffic with the first.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(options_.listen, *credentials, &port_);
  builder.SetMaxReceiveMessageSize(static_cast<int>(options_.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(options_.max_message_bytes));
  builder.RegisterService(session_service_.get());
  builder.RegisterService(model_service_.get());
  builder.RegisterService(data_service_.get());
  builder.RegisterService(job_service_.get());
  builder.RegisterService(inference_service_.get());
  builder.RegisterService(catalogue_service_.get());
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
  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(static_cast<int>(options_.max_message_bytes));
  channel_args.SetMaxSendMessageSize(static_cast<int>(options_.max_message_bytes));
  generic_bridge_ = std::make_shared<GenericBridge>(server_->InProcessChannel(channel_args));
  bridge_->Set(generic_bridge_);
  DefineGauges();
  ready_ = true;
  return absl::OkStatus();
}

absl::Status KilnServer::StartHttp() {
  bridge_ = std::make_unique<BridgeSlot>();
  if (options_.http_listen.empty()) return absl::OkStatus();
  HttpListener::Options http;
  http.address = options_.http_listen;
  http.threads = options_.http_threads;
  http.max_threads = options_.http_max_connections;
  http.max_connections_per_client = options_.http_max_connections_per_client;
  http.read_timeout = options_.http_read_timeout;
  http.tls_cert = options_.tls_cert;
  http.tls_key = options_.tls_key;
  http.tls_client_ca = options_.tls_client_ca;
  // JSON spells bytes in base64: a request at the gRPC limit is a third larger.
  http.max_body_bytes = options_.max_message_bytes / 3 * 4 + 4096;
  const google::protobuf::FileDescriptor* api = v1::Session::descriptor()->file();
  for (int i = 0; i < api->service_count(); ++i) http.services.push_back(api->service(i));
  http.gateway.bridge = bridge_.get();
  http.gateway.keepalive = options_.http_keepalive;
  http.gateway.max_stream_time = options_.http_max_stream_time;
  http.gateway.tenant_of = [this](std::optional<absl::string_view> authorization,
                                  absl::string_view client) -> absl::StatusOr<std::string> {
    absl::StatusOr<Caller> caller = auth_->Authenticate(authorization, "", client);
    if (!caller.ok()) return caller.status();
    return caller->id;
  };
  http.gateway.authentication_required = auth_->required();
  http.gateway.loopback_hosts_only = !auth_->required() && IsLoopbackAddress(options_.http_listen);
  http.max_streams_per_tenant = options_.http_max_streams_per_tenant;
  for (absl::string_view origin : absl::StrSplit(options_.http_cors_origins, ',')) {
    origin = absl::StripAsciiWhitespace(origin);
    if (!origin.empty()) http.cors_origins.emplace_back(origin);
  }
  http.web_root = options_.web_root;
  HttpListener::Handlers handlers;
  handlers.metrics = [this] { return metrics_->Render(); };
  handlers.ready = [this] { return ready_.load(); };
  absl::StatusOr<std::unique_ptr<HttpListener>> listener =
      HttpListener::Start(std::move(http), std::move(handlers));
  if (!listener.ok()) return listener.status();
  http_ = *std::move(listener);
  return absl::OkStatus();
}

// Gauges read their owners when scraped; defined once those exist.
void KilnServer::DefineGauges() {
  using Samples = std::vector<std::pair<Metrics::Labels, double>>;
  metrics_->DefineGauge("kiln_sessions", "Sessions held.", [this] {
    return Samples{{{}, double(sessions_->size())}};
  });
  metrics_->DefineGauge("kiln_jobs", "Jobs held by sessions, by state.", [this] {
    Samples samples;
    for (const auto& [state, count] : sessions_->JobStates()) {
      samples.push_back({{{"state", v1::JobState_Name(state)}}, double(count)});
    }
    return samples;
  });
  metrics_->DefineGauge(
      "kiln_bytes_held",
      "Bytes sessions hold: weights, gradients, optimizer state, plans, datasets, uploads.",
      [this] {
        return Samples{{{}, double(tenants_->BytesHeld())}};
      });
  metrics_->DefineGauge("kiln_compute_threads", "Compute threads shared by running work.", [this] {
    return Samples{{{}, double(job_compute_->threads())}};
  });
  metrics_->DefineGauge("process_resident_memory_bytes", "Resident memory of kiln-server.", [] {
    return Samples{{{}, double(ResidentBytes())}};
  });
}

int KilnServer::http_port() const { return http_ == nullptr ? 0 : http_->port(); }

std::string KilnServer::compute_summary() const {
  const int threads = job_compute_ == nullptr ? 0 : job_compute_->threads();
  return absl::StrCat(
      threads, threads == 1 ? " compute thread" : " compute threads",
      options_.compute_threads > 0
          ? " (--worker_threads)"
          : absl::StrCat(", one per CPU the process may use: ", cpu_budget_.Describe()));
}

std::string KilnServer::memory_summary() const {
  return absl::StrCat("sessions may hold ", server_bytes_ >> 20, " MiB together",
                      options_.max_server_bytes > 0
                          ? " (--max_server_bytes)"
                          : absl::StrCat(" (three quarters of ", memory_budget_.bytes >> 20,
                                         " MiB, ", memory_budget_.source, ")"));
}

void KilnServer::Shutdown(absl::Duration deadline) {
  ready_ = false;
  if (server_ == nullptr) {
    http_.reset();
    return;
  }
  if (auto* health = server_->GetHealthCheckService()) health->SetServingStatus(false);
  scheduler_->Shutdown();  // jobs end INTERRUPTED; their watchers get the final event
  const absl::Time grace_ends = absl::Now() + deadline;
  // HTTP calls in flight get the grace too, and end before the in-process channel closes.
  if (generic_bridge_ != nullptr) generic_bridge_->Close(grace_ends);
  server_->Shutdown(absl::ToChronoTime(grace_ends));
  sessions_->Shutdown();
  server_->Wait();
  // The HTTP door's calls have ended with the server's; none may start on a channel to a
  // server that is gone.
  bridge_->Set(nullptr);
  http_.reset();
  server_.reset();
  rpc_workers_.reset();
}

void KilnServer::Wait() {
  if (server_ != nullptr) server_->Wait();
}

}  // namespace kiln::server
