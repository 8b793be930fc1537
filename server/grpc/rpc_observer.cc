#include "server/grpc/rpc_observer.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/grpc/grpc_status.h"

namespace kiln::server {

constexpr char kRequests[] = "kiln_rpc_requests_total";
constexpr char kDuration[] = "kiln_rpc_duration_seconds";

class RpcObserver : public grpc::experimental::Interceptor {
 public:
  RpcObserver(const RpcObserverFactory& factory, grpc::experimental::ServerRpcInfo* info)
      : factory_(factory), info_(info), start_(absl::Now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      Observe(methods->GetSendStatus());
    }
    methods->Proceed();
  }

 private:
  void Observe(const grpc::Status& status) {
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start_);
    const std::string method = info_->method();
    const std::string code =
        absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code()));
    factory_.metrics_->Add(kRequests, {{"method", method}, {"code", code}});
    factory_.metrics_->Observe(kDuration, {{"method", method}}, seconds);
    if (factory_.log_ == LogRpcs::kNone || (factory_.log_ == LogRpcs::kErrors && status.ok())) {
      return;
    }
    LogFields fields;
    fields.rpc = method;
    fields.code = code;
    fields.duration_ms = seconds * 1e3;
    const grpc::ServerContextBase& context = *info_->server_context();
    if (absl::StatusOr<Caller> caller = CallerOf(context, *factory_.auth_); caller.ok()) {
      fields.tenant = caller->id;
    }
    const auto& metadata = context.client_metadata();
    if (auto it = metadata.find(kSessionMetadata); it != metadata.end()) {
      // Bounded, as ids echoed in errors are: the header is the client's to fill.
      fields.session.assign(it->second.data(), std::min<size_t>(it->second.size(), 64));
    }
    LogLevel level = LogLevel::kInfo;
    switch (status.error_code()) {
      case grpc::StatusCode::OK:
        break;
      case grpc::StatusCode::INTERNAL:
      case grpc::StatusCode::UNKNOWN:
      case grpc::StatusCode::DATA_LOSS:
        level = LogLevel::kError;  // the server's fault
        break;
      default:
        level = LogLevel::kWarning;
    }
    factory_.logger_->Log(level, status.ok() ? "rpc" : status.error_message(), fields);
  }

  const RpcObserverFactory& factory_;
  grpc::experimental::ServerRpcInfo* const info_;
  const absl::Time start_;
};

RpcObserverFactory::RpcObserverFactory(Metrics* metrics, Logger* logger, const Authenticator* auth,
                                       LogRpcs log)
    : metrics_(metrics), logger_(logger), auth_(auth), log_(log) {
  metrics_->DefineCounter(kRequests, "RPCs answered, by method and status code.");
  metrics_->DefineHistogram(kDuration, "Time from an RPC's start to its status, by method.",
                            Metrics::LatencyBuckets());
}

grpc::experimental::Interceptor* RpcObserverFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new RpcObserver(*this, info);
}

}  // namespace kiln::server
