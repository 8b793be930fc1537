#include "server/http/job_events.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>

#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "kiln/v1/jobs.pb.h"
#include "kiln/v1/service.pb.h"
#include "server/http/connect_protocol.h"

namespace kiln::server {
namespace {

// The RPC path of JobService's method `name`, from the API's descriptors.
std::string JobMethod(const std::string& name) {
  const google::protobuf::ServiceDescriptor* service =
      v1::WatchJobRequest::descriptor()->file()->FindServiceByName("JobService");
  return absl::StrCat("/", service->full_name(), "/", service->FindMethodByName(name)->name());
}

// Where the stream resumes: after Last-Event-ID (an EventSource reconnecting), else after
// the `from_sequence` parameter, else from the start.
absl::StatusOr<int64_t> FromSequence(const httplib::Request& request) {
  for (const auto& [source, value] :
       {std::pair<std::string, std::string>{"Last-Event-ID",
                                            request.get_header_value("Last-Event-ID")},
        {"from_sequence", request.get_param_value("from_sequence")}}) {
    if (value.empty()) continue;
    int64_t sequence = 0;
    if (!absl::SimpleAtoi(value, &sequence) || sequence < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": expected an event's sequence number, got '", value, "'"));
    }
    return sequence;
  }
  return 0;
}

std::string EventMessage(const v1::JobEvent& event) {
  std::string json;
  // A parsed JobEvent always prints.
  (void)google::protobuf::util::MessageToJsonString(event, &json);
  return absl::StrCat("id: ", event.sequence(), "\ndata: ", json, "\n\n");
}

// Writes the watch's events to `sink` as they come, until the job ends (`event: end`), the
// watch fails (`event: failed`), the client goes or --http_max_stream_time passes. A stream
// cut short (time up, shutdown) or ended by an INTERRUPTED job, which a resume continues, ends
// without a word: the EventSource reconnects and resumes.
void StreamEvents(const Gateway& gateway, const BridgeCall& call, httplib::DataSink& sink) {
  const absl::Time ends = absl::Now() + gateway.max_stream_time;
  auto send = [&sink](const std::string& text) { return sink.write(text.data(), text.size()); };
  // Reconnect after a second (EventSource's default is 3).
  bool open = send("retry: 1000\n\n");
  std::shared_ptr<RpcBridge> bridge = gateway.bridge->Get();
  if (!open || bridge == nullptr) return;
  bool interrupted = false;  // the last event ended the job INTERRUPTED: it may be resumed
  const BridgeResult result = bridge->Invoke(
      call,
      [&](const std::string& message) {
        v1::JobEvent event;
        if (!event.ParseFromString(message)) return false;
        interrupted = event.has_finished() && event.finished().state() == v1::INTERRUPTED;
        open = send(EventMessage(event));
        return open && absl::Now() < ends;
      },
      [&] {
        open = send(": keepalive\n\n");
        return open && absl::Now() < ends;
      },
      gateway.keepalive);
  if (!open || absl::Now() >= ends) return;
  // An interrupted job goes on after a ResumeJob (after a restart, too): the EventSource
  // reconnects rather than close, whether the watch ended OK or the server shut it down.
  if (interrupted) return;
  if (result.code == 0) {
    send("event: end\ndata: {}\n\n");
  } else if (result.code != static_cast<int>(absl::StatusCode::kCancelled) &&
             result.code != static_cast<int>(absl::StatusCode::kUnavailable)) {
    send(absl::StrCat("event: failed\ndata: ", connect::ErrorJson(result), "\n\n"));
  }
}

void ServeEvents(const std::shared_ptr<const Gateway>& gateway, const httplib::Request& request,
                 httplib::Response& response) {
  std::shared_ptr<RpcBridge> bridge = gateway->bridge->Get();
  if (bridge == nullptr) {
    return SendError(NotServingYet(), response);
  }
  const std::optional<std::string> authorization = Authorization(request);
  const std::vector<std::pair<std::string, std::string>> metadata =
      ForwardedMetadata(request, authorization);
  v1::WatchJobRequest watch;
  watch.set_session_id(request.get_param_value("session_id"));
  watch.set_job_id(request.matches[1]);
  absl::StatusOr<int64_t> from = FromSequence(request);
  if (!from.ok()) return SendError(from.status(), response);
  watch.set_from_sequence(*from);

  // The job is looked up first, so that a wrong id or token is an HTTP error (which ends an
  // EventSource) rather than a stream that fails.
  v1::GetJobRequest get;
  get.set_session_id(watch.session_id());
  get.set_job_id(watch.job_id());
  const BridgeResult found = bridge->Invoke(
      BridgeCall{JobMethod("GetJob"), metadata, absl::Seconds(30), {get.SerializeAsString()}},
      [](const std::string&) { return true; }, [] { return true; }, absl::InfiniteDuration());
  if (found.code != 0) return SendError(found, response);

  absl::StatusOr<std::unique_ptr<StreamLimits::Lease>> acquired =
      gateway->streams->Acquire(StreamOwner(*gateway, request));
  if (!acquired.ok()) return SendError(acquired.status(), response);
  std::shared_ptr<StreamLimits::Lease> lease = *std::move(acquired);

  response.set_header("Cache-Control", "no-cache");
  response.set_header("X-Accel-Buffering", "no");  // proxies pass each event on at once
  auto call = std::make_shared<BridgeCall>(BridgeCall{
      JobMethod("WatchJob"), metadata, absl::InfiniteDuration(), {watch.SerializeAsString()}});
  response.set_chunked_content_provider("text/event-stream",
                                        [gateway, call, lease](size_t, httplib::DataSink& sink) {
                                          // An exception must not leave a provider: it would end
                                          // the process (cpp-httplib). The stream then ends without
                                          // a word, and the EventSource resumes it.
                                          try {
                                            StreamEvents(*gateway, *call, sink);
                                          } catch (const std::exception&) {
                                          }
                                          sink.done();
                                          return true;
                                        });
}

}  // namespace

void InstallJobEventRoutes(std::shared_ptr<const Gateway> gateway, httplib::Server& server) {
  server.Get(R"(/v1/jobs/([A-Za-z0-9_.-]+)/events)",
             [gateway](const httplib::Request& request, httplib::Response& response) {
               ServeEvents(gateway, request, response);
             });
}

}  // namespace kiln::server
