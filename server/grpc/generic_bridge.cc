#include "server/grpc/generic_bridge.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <vector>

#include "absl/cleanup/cleanup.h"

namespace kiln::server {
namespace {

std::string Flatten(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (!buffer.Dump(&slices).ok()) return bytes;
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return bytes;
}

// One call's completion queue, waited on by the calling thread: each operation is started and
// then waited for, so at most one is outstanding and any completion is the one asked for.
class CallQueue {
 public:
  ~CallQueue() {
    queue_.Shutdown();
    void* tag;
    bool ok;
    while (queue_.Next(&tag, &ok)) {
    }
  }
  grpc::CompletionQueue* get() { return &queue_; }

  // Waits for the operation started last. While it is pending, `on_idle` runs after each
  // `interval`; once it says no, the call is cancelled (and the operation then completes).
  bool Await(grpc::ClientContext& context, const RpcBridge::IdleCheck& on_idle,
             absl::Duration interval) {
    bool cancelled = false;
    for (;;) {
      void* tag;
      bool ok = false;
      const auto deadline =
          interval == absl::InfiniteDuration() || cancelled
              ? gpr_inf_future(GPR_CLOCK_REALTIME)
              : gpr_time_add(
                    gpr_now(GPR_CLOCK_REALTIME),
                    gpr_time_from_millis(absl::ToInt64Milliseconds(interval), GPR_TIMESPAN));
      switch (queue_.AsyncNext(&tag, &ok, deadline)) {
        case grpc::CompletionQueue::GOT_EVENT:
          return ok;
        case grpc::CompletionQueue::TIMEOUT:
          if (!on_idle()) {
            context.TryCancel();
            cancelled = true;
          }
          break;
        case grpc::CompletionQueue::SHUTDOWN:
          return false;
      }
    }
  }

 private:
  grpc::CompletionQueue queue_;
};

}  // namespace

GenericBridge::GenericBridge(std::shared_ptr<grpc::Channel> channel)
    : channel_(std::move(channel)) {}
GenericBridge::~GenericBridge() = default;

BridgeResult GenericBridge::Invoke(const BridgeCall& call, const MessageSink& on_message,
                                   const IdleCheck& on_idle, absl::Duration idle_interval) {
  grpc::ClientContext context;
  for (const auto& [key, value] : call.metadata) context.AddMetadata(key, value);
  if (call.timeout != absl::InfiniteDuration()) {
    context.set_deadline(absl::ToChronoTime(absl::Now() + call.timeout));
  }
  {
    absl::MutexLock lock(&mu_);
    if (closed_) {
      return BridgeResult{static_cast<int>(grpc::StatusCode::UNAVAILABLE),
                          "kiln-server is shutting down", ""};
    }
    calls_.insert(&context);
  }
  absl::Cleanup forget = [this, &context] {
    absl::MutexLock lock(&mu_);
    calls_.erase(&context);
  };
  grpc::GenericStub stub(channel_);
  CallQueue queue;
  void* const tag = &queue;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> stream =
      stub.PrepareCall(&context, call.method, queue.get());
  stream->StartCall(tag);
  const auto no_idle = [] { return true; };
  bool open = queue.Await(context, no_idle, absl::InfiniteDuration());
  for (const std::string& request : call.requests) {
    if (!open) break;
    grpc::Slice slice(request);
    grpc::ByteBuffer buffer(&slice, 1);
    stream->Write(buffer, tag);
    open = queue.Await(context, no_idle, absl::InfiniteDuration());
  }
  if (open) {
    stream->WritesDone(tag);
    queue.Await(context, no_idle, absl::InfiniteDuration());
  }
  bool reading = true;
  while (reading) {
    grpc::ByteBuffer buffer;
    stream->Read(&buffer, tag);
    if (!queue.Await(context, on_idle, idle_interval)) break;
    if (!on_message(Flatten(buffer))) {
      context.TryCancel();
      reading = false;
    }
  }
  grpc::Status status;
  stream->Finish(&status, tag);
  queue.Await(context, no_idle, absl::InfiniteDuration());
  return BridgeResult{static_cast<int>(status.error_code()), status.error_message(),
                      status.error_details()};
}

void GenericBridge::Close(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  const absl::Condition idle(
      +[](absl::flat_hash_set<grpc::ClientContext*>* calls) { return calls->empty(); }, &calls_);
  if (mu_.AwaitWithDeadline(idle, deadline)) return;
  for (grpc::ClientContext* context : calls_) context->TryCancel();
  mu_.Await(idle);
}

}  // namespace kiln::server
