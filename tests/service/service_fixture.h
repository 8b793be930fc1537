// An in-process kiln server on a free port and a real gRPC channel to it, with helpers for the
// service tests.
#ifndef KILN_TESTS_SERVICE_SERVICE_FIXTURE_H_
#define KILN_TESTS_SERVICE_SERVICE_FIXTURE_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kiln/v1/service.grpc.pb.h"
#include "server/grpc/server.h"

namespace kiln::testing {

// Stubs of every Kiln service on one channel.
struct Stubs {
  explicit Stubs(const std::shared_ptr<grpc::Channel>& channel);
  std::unique_ptr<v1::SessionService::Stub> sessions;
  std::unique_ptr<v1::ModelService::Stub> models;
  std::unique_ptr<v1::DataService::Stub> data;
  std::unique_ptr<v1::JobService::Stub> jobs;
  std::unique_ptr<v1::InferenceService::Stub> inference;
};

// The helpers call through the fixture's channel, or through `via` (another client's).
class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  // Tests adjust options_ here, before the server starts. The server keeps its state in a
  // directory of the test's own, removed at the end.
  virtual void Configure(server::ServerOptions&) {}
  // Where the server's log lines go; null: stderr.
  virtual std::function<void(const std::string&)> LogSink() { return nullptr; }
  // Stops the server as SIGTERM does and starts a new one on the same state and options (on
  // another port), with new stubs.
  void RestartServer();
  // Starts a server on options_ (after SetUp's was stopped and reset), with new stubs.
  void StartServer();

  std::unique_ptr<grpc::ClientContext> Context(int seconds = 60);

  std::string CreateSession(Stubs* via = nullptr);
  v1::TensorInfo AddInput(const std::string& session, std::vector<int64_t> shape,
                          const std::string& name = "", Stubs* via = nullptr);
  // `spec` in protobuf text format.
  v1::AddLayerResponse AddLayer(const std::string& session, const std::string& spec,
                                std::vector<int64_t> inputs, Stubs* via = nullptr);
  // input (8, 8, 1) -> Conv2D 4 -> BatchNormalization -> ReLU -> DepthwiseConv2D ->
  // GlobalAveragePooling2D -> Dense 3 softmax; returns the model's name.
  std::string BuildSmallModel(const std::string& session, const std::string& name = "small",
                              Stubs* via = nullptr);
  void CompileSmallModel(const std::string& session, const std::string& name = "small",
                         Stubs* via = nullptr);
  // Random (n, 8, 8, 1) images and labels in [0, 3), inline.
  v1::DataRef InlineData(int64_t n, uint64_t seed = 1);

  // Watches a job to its end (or until `max_events`) from `from_sequence`.
  std::vector<v1::JobEvent> Watch(const std::string& session, const std::string& job,
                                  int64_t from_sequence = 0, int max_events = -1,
                                  grpc::Status* status = nullptr, Stubs* via = nullptr);
  v1::Job GetJob(const std::string& session, const std::string& job);

  server::ServerOptions options_;
  std::string data_root_;
  std::unique_ptr<server::KilnServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<Stubs> stubs_;
  // stubs_'s, for short.
  v1::SessionService::Stub* sessions_ = nullptr;
  v1::ModelService::Stub* models_ = nullptr;
  v1::DataService::Stub* data_ = nullptr;
  v1::JobService::Stub* jobs_ = nullptr;
  v1::InferenceService::Stub* inference_ = nullptr;

 private:
  Stubs& Use(Stubs* via) { return via != nullptr ? *via : *stubs_; }
};

// The field path of a google.rpc.BadRequest detail, or "" when there is none.
std::string BadRequestField(const grpc::Status& status);

// EXPECT: the status has `code`, its message contains `message_part`, and - when `field` is
// not empty - a BadRequest detail names `field`.
void ExpectError(const grpc::Status& status, grpc::StatusCode code, const std::string& field,
                 const std::string& message_part);

}  // namespace kiln::testing

#endif  // KILN_TESTS_SERVICE_SERVICE_FIXTURE_H_
