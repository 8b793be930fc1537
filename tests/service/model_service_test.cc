// SessionService and ModelService over a real channel: sessions, health and reflection, card by
// card building, DefineModel from JSON, summaries, weights, and error paths.
#include <grpcpp/generic/generic_stub.h>

#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"
#include "tests/service/service_fixture.h"
#include "tests/unit/test_util.h"

namespace kiln::testing {
namespace {

using grpc::StatusCode;

class ModelServiceTest : public ServiceTest {};

// Calls a method through GenericStub with raw request bytes (no generated code needed).
grpc::Status GenericCall(grpc::Channel* channel, const std::string& method,
                         const std::string& request, std::string* response) {
  grpc::GenericStub stub(channel->shared_from_this());
  grpc::ClientContext context;
  grpc::ByteBuffer request_buffer, response_buffer;
  grpc::Slice slice(request);
  request_buffer = grpc::ByteBuffer(&slice, 1);
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status result;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request_buffer, &response_buffer,
                 [&](grpc::Status s) {
                   std::lock_guard<std::mutex> lock(mu);
                   result = s;
                   done = true;
                   cv.notify_one();
                 });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
  std::vector<grpc::Slice> slices;
  if (result.ok() && response_buffer.Dump(&slices).ok()) {
    for (const auto& s : slices)
      response->append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return result;
}

TEST_F(ModelServiceTest, HealthServing) {
  std::string response;
  ASSERT_TRUE(GenericCall(channel_.get(), "/grpc.health.v1.Health/Check", "", &response).ok());
  EXPECT_EQ(response, std::string("\x08\x01", 2));  // status: SERVING
}

TEST_F(ModelServiceTest, HealthByServiceName) {
  // HealthCheckRequest{service: NAME} is field 1 (tag 0x0a), length, bytes.
  auto request_for = [](const std::string& service) {
    return "\x0a" + std::string(1, char(service.size())) + service;
  };
  const google::protobuf::FileDescriptor* api = v1::Session::descriptor()->file();
  ASSERT_GT(api->service_count(), 0);
  for (int i = 0; i < api->service_count(); ++i) {
    std::string response;
    const grpc::Status status = GenericCall(channel_.get(), "/grpc.health.v1.Health/Check",
                                            request_for(api->service(i)->full_name()), &response);
    ASSERT_TRUE(status.ok()) << api->service(i)->full_name() << ": " << status.error_message();
    EXPECT_EQ(response, std::string("\x08\x01", 2)) << api->service(i)->full_name();
  }
  std::string response;
  EXPECT_EQ(GenericCall(channel_.get(), "/grpc.health.v1.Health/Check",
                        request_for("kiln.v1.NoSuchService"), &response)
                .error_code(),
            StatusCode::NOT_FOUND);
}

TEST_F(ModelServiceTest, ASecondServerOnTheSamePortDoesNotStart) {
  server::ServerOptions options = options_;
  options.listen = "127.0.0.1:" + std::to_string(server_->port());
  options.ephemeral = true;  // the state directory is the first one's
  server::KilnServer second(options);
  const absl::Status status = second.Start();
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
  EXPECT_NE(status.message().find("in use"), absl::string_view::npos) << status;
  // The first one still answers, alone.
  std::string response;
  EXPECT_TRUE(GenericCall(channel_.get(), "/grpc.health.v1.Health/Check", "", &response).ok());
}

TEST_F(ModelServiceTest, TensorIdsAppearInJsonEvenWhenZero) {
  const std::string s = CreateSession();
  const v1::TensorInfo first = AddInput(s, {4});
  ASSERT_EQ(first.id(), 0);
  std::string json;
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(first, &json).ok());
  EXPECT_NE(json.find("\"id\":\"0\""), std::string::npos) << json;
}

TEST_F(ModelServiceTest, ReflectionListsKilnServices) {
  grpc::GenericStub stub(channel_);
  grpc::ClientContext context;
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  void* tag;
  bool ok;
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  // ServerReflectionRequest { list_services: "" } = field 7, empty string.
  grpc::Slice slice(std::string("\x3a\x00", 2));
  grpc::ByteBuffer request(&slice, 1);
  call->Write(request, reinterpret_cast<void*>(2));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(3));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  for (const char* service :
       {"kiln.v1.SessionService", "kiln.v1.ModelService", "kiln.v1.DataService",
        "kiln.v1.JobService", "kiln.v1.InferenceService", "grpc.health.v1.Health"}) {
    EXPECT_NE(bytes.find(service), std::string::npos) << service;
  }
  context.TryCancel();
  grpc::Status finished;
  call->Finish(&finished, reinterpret_cast<void*>(4));
  while (cq.Next(&tag, &ok)) {
    if (tag == reinterpret_cast<void*>(4)) break;
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

// A client may draw the session's id, so that x-kiln-session routes its create too; the id
// must look like one the server draws, and one in use is refused.
TEST_F(ModelServiceTest, AClientMayDrawTheSessionId) {
  v1::CreateSessionRequest create;
  create.set_session_id("s-0123456789abcdef0123456789abcdef");
  v1::Session session;
  ASSERT_TRUE(sessions_->CreateSession(Context().get(), create, &session).ok());
  EXPECT_EQ(session.id(), create.session_id());
  ExpectError(sessions_->CreateSession(Context().get(), create, &session),
              grpc::StatusCode::ALREADY_EXISTS, "session_id", "draw another id");
  for (const char* bad : {"s-0123", "s-0123456789ABCDEF0123456789ABCDEF", "mine",
                          "s-0123456789abcdef0123456789abcdeg"}) {
    create.set_session_id(bad);
    ExpectError(sessions_->CreateSession(Context().get(), create, &session),
                grpc::StatusCode::INVALID_ARGUMENT, "session_id", "32 lowercase hex digits");
  }
  v1::ListSessionsResponse list;
  ASSERT_TRUE(sessions_->ListSessions(Context().get(), {}, &list).ok());
  EXPECT_EQ(list.sessions_size(), 1);  // the refused ones made nothing
}

TEST_F(ModelServiceTest, SessionLifecycle) {
  v1::CreateSessionRequest create;
  create.set_name("mine");
  create.set_ttl_seconds(120);
  v1::Session session;
  ASSERT_TRUE(sessions_->CreateSession(Context().get(), create, &session).ok());
  EXPECT_EQ(session.name(), "mine");
  EXPECT_EQ(session.ttl_seconds(), 120);
  EXPECT_THAT(session.id(), ::testing::MatchesRegex("s-[0-9a-f]{32}"));  // 128 random bits
  v1::ListSessionsResponse list;
  ASSERT_TRUE(sessions_->ListSessions(Context().get(), {}, &list).ok());
  ASSERT_EQ(list.sessions_size(), 1);
  v1::DeleteSessionRequest del;
  del.set_session_id(session.id());
  v1::DeleteSessionResponse deleted;
  ASSERT_TRUE(sessions_->DeleteSession(Context().get(), del, &deleted).ok());
  v1::GetSessionRequest get;
  get.set_session_id(session.id());
  ExpectError(sessions_->GetSession(Context().get(), get, &session), StatusCode::NOT_FOUND,
              "session_id", "no session");
  create.set_ttl_seconds(-1);
  ExpectError(sessions_->CreateSession(Context().get(), create, &session),
              StatusCode::INVALID_ARGUMENT, "ttl_seconds", "must not be negative");
}

TEST_F(ModelServiceTest, CardByCardWithSharedLayer) {
  const std::string s = CreateSession();
  const v1::TensorInfo x = AddInput(s, {32, 32, 3}, "image");
  EXPECT_EQ(x.producer(), "image");
  EXPECT_EQ(std::vector<int64_t>(x.shape().begin(), x.shape().end()),
            (std::vector<int64_t>{-1, 32, 32, 3}));
  // A DepthwiseConv2D card: its "Layer instance" and "Output" sockets.
  v1::AddLayerResponse dw = AddLayer(
      s, "depthwise_conv2d { kernel_size: 3 strides: 2 padding: \"same\" depth_multiplier: 2 }",
      {x.id()});
  EXPECT_EQ(dw.layer().name(), "depthwise_conv2d");
  EXPECT_EQ(dw.layer().class_name(), "DepthwiseConv2D");
  EXPECT_EQ(dw.layer().params(), 3 * 3 * 3 * 2 + 6);
  ASSERT_EQ(dw.layer().weights_size(), 2);
  EXPECT_EQ(dw.layer().weights(0).name(), "kernel");
  ASSERT_EQ(dw.outputs_size(), 1);
  EXPECT_EQ(std::vector<int64_t>(dw.outputs(0).shape().begin(), dw.outputs(0).shape().end()),
            (std::vector<int64_t>{-1, 16, 16, 6}));
  // The same layer on a second input: new output, same weights.
  const v1::TensorInfo x2 = AddInput(s, {8, 8, 3}, "small");
  v1::CallLayerRequest call;
  call.set_session_id(s);
  call.set_layer("depthwise_conv2d");
  call.add_inputs(x2.id());
  v1::CallLayerResponse called;
  ASSERT_TRUE(models_->CallLayer(Context().get(), call, &called).ok());
  EXPECT_EQ(called.outputs(0).shape(2), 4);
  const v1::AddLayerResponse pool =
      AddLayer(s, "global_average_pooling2d {}", {dw.outputs(0).id()});
  const v1::AddLayerResponse dense =
      AddLayer(s, "dense { units: 5 activation: \"softmax\" }", {pool.outputs(0).id()});
  v1::CreateModelRequest create;
  create.set_session_id(s);
  create.add_inputs(x.id());
  create.add_outputs(dense.outputs(0).id());
  v1::ModelInfo model;
  ASSERT_TRUE(models_->CreateModel(Context().get(), create, &model).ok());
  EXPECT_EQ(model.name(), "model");
  EXPECT_EQ(model.total_params(), 60 + 6 * 5 + 5);
  EXPECT_EQ(model.layers_size(), 4);  // input + 3 layers
  EXPECT_NE(model.summary().find("depthwise_conv2d (DepthwiseConv2D)"), std::string::npos)
      << model.summary();
  EXPECT_NE(model.summary().find("Total params: 95"), std::string::npos) << model.summary();
  EXPECT_FALSE(model.compiled());
  v1::GetSessionRequest get;
  get.set_session_id(s);
  v1::Session session;
  ASSERT_TRUE(sessions_->GetSession(Context().get(), get, &session).ok());
  EXPECT_EQ(session.layers_size(), 3);
  EXPECT_EQ(session.models_size(), 1);
}

TEST_F(ModelServiceTest, InvalidCardsNameTheFieldAndChangeNothing) {
  const std::string s = CreateSession();
  const v1::TensorInfo x = AddInput(s, {16, 16, 3});
  v1::GetSessionRequest get;
  get.set_session_id(s);
  v1::Session before;
  ASSERT_TRUE(sessions_->GetSession(Context().get(), get, &before).ok());

  v1::AddLayerRequest request;
  request.set_session_id(s);
  request.add_inputs(x.id());
  v1::AddLayerResponse response;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      "depthwise_conv2d { kernel_size: 3 strides: [1, 2, 3] }", request.mutable_spec()));
  ExpectError(models_->AddLayer(Context().get(), request, &response), StatusCode::INVALID_ARGUMENT,
              "spec.depthwise_conv2d.strides",
              "spec.depthwise_conv2d.strides: The `strides` argument must be a tuple of 2 "
              "integers. Received strides=[1, 2, 3]");
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      "depthwise_conv2d { kernel_size: 3 activation: \"relu7\" }", request.mutable_spec()));
  ExpectError(models_->AddLayer(Context().get(), request, &response), StatusCode::INVALID_ARGUMENT,
              "spec.depthwise_conv2d.activation",
              "Could not interpret activation function identifier: relu7");
  // A layer applied to a tensor of the wrong rank: the message names the layer.
  const v1::TensorInfo flat = AddInput(s, {10});
  request.clear_inputs();
  request.add_inputs(flat.id());
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      "depthwise_conv2d { kernel_size: 3 name: \"dw\" }", request.mutable_spec()));
  ExpectError(models_->AddLayer(Context().get(), request, &response), StatusCode::INVALID_ARGUMENT,
              "inputs[0]",
              "Input 0 of layer \"dw\" is incompatible with the layer: expected ndim=4");
  request.clear_inputs();
  request.add_inputs(999);
  ExpectError(models_->AddLayer(Context().get(), request, &response), StatusCode::NOT_FOUND,
              "inputs[0]", "tensor 999 does not exist");
  v1::CallLayerRequest call;
  call.set_session_id(s);
  call.set_layer("nope");
  v1::CallLayerResponse called;
  ExpectError(models_->CallLayer(Context().get(), call, &called), StatusCode::NOT_FOUND, "layer",
              "no layer \"nope\"");
  // The session is as it was, apart from the second input.
  v1::Session after;
  ASSERT_TRUE(sessions_->GetSession(Context().get(), get, &after).ok());
  EXPECT_EQ(after.layers_size(), before.layers_size());
  EXPECT_EQ(after.tensors_size(), before.tensors_size() + 1);
  // A channel count other than the one the layer was built with.
  AddLayer(s, "depthwise_conv2d { kernel_size: 3 name: \"shared\" }", {x.id()});
  const v1::TensorInfo other = AddInput(s, {16, 16, 4});
  call.set_layer("shared");
  call.add_inputs(other.id());
  ExpectError(models_->CallLayer(Context().get(), call, &called), StatusCode::INVALID_ARGUMENT,
              "inputs[0]", "expected axis -1 of input shape to have value 3");
  // A name already taken, and tensors that do not fit together.
  request.clear_inputs();
  request.add_inputs(x.id());
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      "depthwise_conv2d { kernel_size: 3 name: \"shared\" }", request.mutable_spec()));
  ExpectError(models_->AddLayer(Context().get(), request, &response), StatusCode::ALREADY_EXISTS,
              "spec.depthwise_conv2d.name", "The name \"shared\" is already used");
  request.add_inputs(other.id());
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString("add {}", request.mutable_spec()));
  ExpectError(models_->AddLayer(Context().get(), request, &response), StatusCode::INVALID_ARGUMENT,
              "inputs", "");
}

v1::ModelDefinition LoadDefinition() {
  std::ifstream file(FixturePath("mobilenet_fashion_mnist.json"));
  std::stringstream text;
  text << file.rdbuf();
  v1::ModelDefinition definition;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(text.str(), &definition).ok());
  return definition;
}

TEST_F(ModelServiceTest, DefineModelFromJsonAndReplace) {
  const std::string s = CreateSession();
  v1::DefineModelRequest request;
  request.set_session_id(s);
  *request.mutable_definition() = LoadDefinition();
  v1::ModelInfo model;
  grpc::Status status = models_->DefineModel(Context().get(), request, &model);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(model.name(), "mobilenet");
  EXPECT_TRUE(model.compiled());
  EXPECT_EQ(model.layers_size(), 25);
  EXPECT_EQ(model.layers(1).name(), "stem");  // layers are named after their nodes
  EXPECT_EQ(model.outputs(0).shape(1), 10);
  ExpectError(models_->DefineModel(Context().get(), request, &model), StatusCode::ALREADY_EXISTS,
              "definition.name", "already exists");
  request.set_replace(true);
  EXPECT_TRUE(models_->DefineModel(Context().get(), request, &model).ok());
  // A broken node is reported with its path.
  request.mutable_definition()
      ->mutable_nodes(4)
      ->mutable_layer()
      ->mutable_depthwise_conv2d()
      ->set_depth_multiplier(0);
  ExpectError(models_->DefineModel(Context().get(), request, &model), StatusCode::INVALID_ARGUMENT,
              "definition.nodes[4].layer.depthwise_conv2d.depth_multiplier",
              "Invalid value for argument `depth_multiplier`");
  request.mutable_definition()->mutable_nodes(4)->add_inputs("missing");
  request.mutable_definition()
      ->mutable_nodes(4)
      ->mutable_layer()
      ->mutable_depthwise_conv2d()
      ->set_depth_multiplier(1);
  ExpectError(models_->DefineModel(Context().get(), request, &model), StatusCode::INVALID_ARGUMENT,
              "definition.nodes[4].inputs[1]", "unknown node \"missing\"");
  // GetModel and the layer of a defined model.
  v1::GetLayerRequest layer;
  layer.set_session_id(s);
  layer.set_model("mobilenet");
  layer.set_layer("dw1");
  v1::LayerInfo info;
  ASSERT_TRUE(models_->GetLayer(Context().get(), layer, &info).ok());
  EXPECT_EQ(info.class_name(), "DepthwiseConv2D");
}

TEST_F(ModelServiceTest, WeightsRoundTripInKerasLayout) {
  const std::string s = CreateSession();
  const v1::TensorInfo x = AddInput(s, {5, 5, 2});
  AddLayer(s, "depthwise_conv2d { kernel_size: 3 depth_multiplier: 2 name: \"dw\" }", {x.id()});
  v1::GetWeightsRequest get;
  get.set_session_id(s);
  get.set_layer("dw");
  v1::GetWeightsResponse weights;
  ASSERT_TRUE(models_->GetWeights(Context().get(), get, &weights).ok());
  ASSERT_EQ(weights.weights_size(), 2);
  EXPECT_EQ(weights.weights(0).name(), "kernel");
  EXPECT_EQ(std::vector<int64_t>(weights.weights(0).tensor().shape().begin(),
                                 weights.weights(0).tensor().shape().end()),
            (std::vector<int64_t>{3, 3, 2, 2}));
  // Set the kernel by its Keras 2 name, with float_values (the JSON-friendly form).
  v1::SetWeightsRequest set;
  set.set_session_id(s);
  set.set_layer("dw");
  v1::NamedTensor* w = set.add_weights();
  w->set_name("depthwise_kernel");
  w->mutable_tensor()->set_dtype(v1::FLOAT32);
  for (int64_t d : {3, 3, 2, 2}) w->mutable_tensor()->add_shape(d);
  for (int i = 0; i < 36; ++i) w->mutable_tensor()->add_float_values(float(i));
  v1::SetWeightsResponse done;
  ASSERT_TRUE(models_->SetWeights(Context().get(), set, &done).ok());
  ASSERT_TRUE(models_->GetWeights(Context().get(), get, &weights).ok());
  const std::string& bytes = weights.weights(0).tensor().data();
  ASSERT_EQ(bytes.size(), 36 * sizeof(float));
  EXPECT_EQ(reinterpret_cast<const float*>(bytes.data())[35], 35.0f);
  // Wrong shape: rejected, nothing written.
  w->mutable_tensor()->set_shape(3, 1);
  w->mutable_tensor()->mutable_float_values()->Truncate(18);
  ExpectError(models_->SetWeights(Context().get(), set, &done), StatusCode::INVALID_ARGUMENT,
              "weights[0].tensor",
              "weight shape (3, 3, 2, 2) is not compatible with provided "
              "weight shape (3, 3, 2, 1)");
  w->set_name("gamma");
  ExpectError(models_->SetWeights(Context().get(), set, &done), StatusCode::NOT_FOUND,
              "weights[0].name", "has no weight named \"gamma\"");
  w->mutable_tensor()->clear_float_values();
  w->mutable_tensor()->set_data("abc");
  w->set_name("kernel");
  ExpectError(models_->SetWeights(Context().get(), set, &done), StatusCode::INVALID_ARGUMENT,
              "weights[0].tensor.data", "needs 72 bytes, received 3");
}

TEST_F(ModelServiceTest, CompileErrors) {
  const std::string s = CreateSession();
  BuildSmallModel(s);
  v1::CompileRequest request;
  request.set_session_id(s);
  request.set_model("small");
  request.mutable_config()->mutable_optimizer()->set_name("rmsprop");
  request.mutable_config()->mutable_loss()->set_name("mse");
  v1::ModelInfo info;
  ExpectError(models_->Compile(Context().get(), request, &info), StatusCode::INVALID_ARGUMENT,
              "config.optimizer.name", "Could not interpret optimizer identifier: rmsprop");
  request.mutable_config()->mutable_optimizer()->mutable_sgd()->set_momentum(2);
  ExpectError(models_->Compile(Context().get(), request, &info), StatusCode::INVALID_ARGUMENT,
              "config.optimizer.sgd.momentum", "`momentum` must be a float between [0, 1].");
  request.set_model("other");
  ExpectError(models_->Compile(Context().get(), request, &info), StatusCode::NOT_FOUND, "model",
              "no model \"other\"");
}

}  // namespace
}  // namespace kiln::testing
