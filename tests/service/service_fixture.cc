#include "tests/service/service_fixture.h"

#include <filesystem>
#include <random>

#include "google/protobuf/text_format.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace kiln::testing {

Stubs::Stubs(const std::shared_ptr<grpc::Channel>& channel)
    : sessions(v1::SessionService::NewStub(channel)),
      models(v1::ModelService::NewStub(channel)),
      data(v1::DataService::NewStub(channel)),
      jobs(v1::JobService::NewStub(channel)),
      inference(v1::InferenceService::NewStub(channel)) {}

void ServiceTest::SetUp() {
  data_root_ =
      (std::filesystem::temp_directory_path() / ("kiln_service_test_" + std::to_string(::getpid())))
          .string();
  std::filesystem::create_directories(data_root_);
  options_.listen = "127.0.0.1:0";
  options_.data_root = data_root_;
  options_.state_dir = data_root_ + "/state";
  options_.compute_threads = 2;
  options_.file_reader = KILN_FILE_READER;
  Configure(options_);
  StartServer();
}

void ServiceTest::StartServer() {
  server_ = std::make_unique<server::KilnServer>(options_, LogSink());
  absl::Status started = server_->Start();
  ASSERT_TRUE(started.ok()) << started;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(256 << 20);
  args.SetMaxSendMessageSize(256 << 20);
  channel_ = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(server_->port()),
                                       grpc::InsecureChannelCredentials(), args);
  stubs_ = std::make_unique<Stubs>(channel_);
  sessions_ = stubs_->sessions.get();
  models_ = stubs_->models.get();
  data_ = stubs_->data.get();
  jobs_ = stubs_->jobs.get();
  inference_ = stubs_->inference.get();
}

void ServiceTest::RestartServer() {
  stubs_.reset();
  channel_.reset();
  server_->Shutdown(absl::Seconds(5));
  server_.reset();
  StartServer();
}

void ServiceTest::TearDown() {
  if (server_) server_->Shutdown(absl::Seconds(5));
  std::filesystem::remove_all(data_root_);
}

std::unique_ptr<grpc::ClientContext> ServiceTest::Context(int seconds) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return context;
}

std::string ServiceTest::CreateSession(Stubs* via) {
  v1::CreateSessionRequest request;
  request.set_name("test");
  v1::Session session;
  grpc::Status status = Use(via).sessions->CreateSession(Context().get(), request, &session);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return session.id();
}

v1::TensorInfo ServiceTest::AddInput(const std::string& session, std::vector<int64_t> shape,
                                     const std::string& name, Stubs* via) {
  v1::AddInputRequest request;
  request.set_session_id(session);
  for (int64_t d : shape) request.mutable_input()->add_shape(d);
  request.mutable_input()->set_name(name);
  v1::TensorInfo info;
  grpc::Status status = Use(via).models->AddInput(Context().get(), request, &info);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return info;
}

v1::AddLayerResponse ServiceTest::AddLayer(const std::string& session, const std::string& spec,
                                           std::vector<int64_t> inputs, Stubs* via) {
  v1::AddLayerRequest request;
  request.set_session_id(session);
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(spec, request.mutable_spec()));
  for (int64_t t : inputs) request.add_inputs(t);
  v1::AddLayerResponse response;
  grpc::Status status = Use(via).models->AddLayer(Context().get(), request, &response);
  EXPECT_TRUE(status.ok()) << spec << ": " << status.error_message();
  return response;
}

std::string ServiceTest::BuildSmallModel(const std::string& session, const std::string& name,
                                         Stubs* via) {
  const int64_t input = AddInput(session, {8, 8, 1}, "", via).id();
  int64_t t = input;
  for (const char* spec :
       {"conv2d { filters: 4 kernel_size: 3 padding: \"same\" }", "batch_normalization {}",
        "relu {}", "depthwise_conv2d { kernel_size: 3 }", "global_average_pooling2d {}",
        "dense { units: 3 activation: \"softmax\" }"}) {
    t = AddLayer(session, spec, {t}, via).outputs(0).id();
  }
  v1::CreateModelRequest request;
  request.set_session_id(session);
  request.set_name(name);
  request.add_inputs(input);
  request.add_outputs(t);
  v1::ModelInfo model;
  grpc::Status status = Use(via).models->CreateModel(Context().get(), request, &model);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return model.name();
}

void ServiceTest::CompileSmallModel(const std::string& session, const std::string& name,
                                    Stubs* via) {
  v1::CompileRequest request;
  request.set_session_id(session);
  request.set_model(name);
  request.mutable_config()->mutable_optimizer()->mutable_adam()->set_learning_rate(0.01f);
  request.mutable_config()->mutable_loss()->set_name("sparse_categorical_crossentropy");
  request.mutable_config()->add_metrics("accuracy");
  v1::ModelInfo info;
  grpc::Status status = Use(via).models->Compile(Context().get(), request, &info);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(info.compiled());
}

v1::DataRef ServiceTest::InlineData(int64_t n, uint64_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  v1::DataRef ref;
  v1::TensorProto* x = ref.mutable_inline_()->add_x();
  x->set_dtype(v1::FLOAT32);
  for (int64_t d : {n, int64_t{8}, int64_t{8}, int64_t{1}}) x->add_shape(d);
  std::vector<float> values(n * 64);
  std::vector<float> labels(n);
  for (int64_t i = 0; i < n; ++i) {
    labels[i] = float(gen() % 3);
    // Class c brightens one band of rows, so the task is learnable.
    for (int j = 0; j < 64; ++j) {
      values[i * 64 + j] = uniform(gen) * 0.5f + ((j / 8) % 3 == int(labels[i]) ? 0.5f : 0.0f);
    }
  }
  x->set_data(values.data(), values.size() * sizeof(float));
  v1::TensorProto* y = ref.mutable_inline_()->mutable_y();
  y->set_dtype(v1::FLOAT32);
  y->add_shape(n);
  y->set_data(labels.data(), labels.size() * sizeof(float));
  return ref;
}

std::vector<v1::JobEvent> ServiceTest::Watch(const std::string& session, const std::string& job,
                                             int64_t from_sequence, int max_events,
                                             grpc::Status* status, Stubs* via) {
  v1::WatchJobRequest request;
  request.set_session_id(session);
  request.set_job_id(job);
  request.set_from_sequence(from_sequence);
  auto context = Context(300);
  auto reader = Use(via).jobs->WatchJob(context.get(), request);
  std::vector<v1::JobEvent> events;
  v1::JobEvent event;
  while ((max_events < 0 || static_cast<int>(events.size()) < max_events) && reader->Read(&event)) {
    events.push_back(event);
  }
  if (max_events >= 0 && static_cast<int>(events.size()) == max_events) context->TryCancel();
  grpc::Status s = reader->Finish();
  if (status != nullptr) *status = s;
  return events;
}

v1::Job ServiceTest::GetJob(const std::string& session, const std::string& job) {
  v1::GetJobRequest request;
  request.set_session_id(session);
  request.set_job_id(job);
  v1::Job response;
  EXPECT_TRUE(jobs_->GetJob(Context().get(), request, &response).ok());
  return response;
}

std::string BadRequestField(const grpc::Status& status) {
  google::rpc::Status details;
  if (!details.ParseFromString(status.error_details())) return "";
  for (const auto& any : details.details()) {
    google::rpc::BadRequest bad;
    if (any.UnpackTo(&bad) && bad.field_violations_size() > 0) {
      return bad.field_violations(0).field();
    }
  }
  return "";
}

void ExpectError(const grpc::Status& status, grpc::StatusCode code, const std::string& field,
                 const std::string& message_part) {
  EXPECT_EQ(status.error_code(), code) << status.error_message();
  EXPECT_NE(status.error_message().find(message_part), std::string::npos)
      << "message: " << status.error_message() << "\nexpected to contain: " << message_part;
  if (!field.empty()) {
    EXPECT_EQ(BadRequestField(status), field) << status.error_message();
  }
}

}  // namespace kiln::testing
