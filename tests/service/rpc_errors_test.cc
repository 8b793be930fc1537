// Every RPC's answer to an unknown session and to unknown names, with the field at fault; and
// the model and dataset calls that the other service tests only use for setup.
#include "core/io/npy_writer.h"
#include "gmock/gmock.h"
#include "tests/service/service_fixture.h"

namespace kiln::testing {
namespace {

using grpc::StatusCode;

class RpcErrorsTest : public ServiceTest {
 protected:
  // A unary call's status.
  template <typename Stub, typename Request, typename Response>
  grpc::Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                    Stub& stub, const Request& request) {
    Response response;
    return (stub.*method)(Context().get(), request, &response);
  }

  template <typename Request>
  static Request For(const std::string& session) {
    Request request;
    request.set_session_id(session);
    return request;
  }

  grpc::Status Watch(const v1::WatchJobRequest& request) {
    auto context = Context();
    auto reader = jobs_->WatchJob(context.get(), request);
    v1::JobEvent event;
    while (reader->Read(&event)) {
    }
    return reader->Finish();
  }

  // Uploads x = 0, 1, 2, ... as (rows, 2) and y = row index % 3 through the unary calls.
  void UploadUnary(const std::string& session, const std::string& name, int rows) {
    std::vector<float> x(rows * 2), y(rows);
    for (size_t i = 0; i < x.size(); ++i) x[i] = float(i);
    for (int i = 0; i < rows; ++i) y[i] = float(i % 3);
    v1::BeginUploadRequest begin;
    begin.mutable_header()->set_session_id(session);
    begin.mutable_header()->set_name(name);
    begin.mutable_header()->add_x()->set_format("npy");
    begin.mutable_header()->mutable_y()->set_format("npy");
    v1::BeginUploadResponse upload;
    ASSERT_TRUE(data_->BeginUpload(Context().get(), begin, &upload).ok());
    for (const auto& [array, values, shape] :
         {std::tuple<std::string, std::vector<float>, std::vector<int64_t>>{"x", x, {rows, 2}},
          {"y", y, {rows}}}) {
      v1::AppendUploadChunkRequest append = For<v1::AppendUploadChunkRequest>(session);
      append.set_upload_id(upload.upload_id());
      append.mutable_chunk()->set_array(array);
      append.mutable_chunk()->set_data(
          FormatNpy(DType::kFloat32, shape,
                    absl::string_view(reinterpret_cast<const char*>(values.data()),
                                      values.size() * sizeof(float))));
      ASSERT_TRUE(Call(&v1::DataService::Stub::AppendUploadChunk, *data_, append).ok());
    }
    v1::FinishUploadRequest finish = For<v1::FinishUploadRequest>(session);
    finish.set_upload_id(upload.upload_id());
    ASSERT_TRUE(Call(&v1::DataService::Stub::FinishUpload, *data_, finish).ok());
  }
};

TEST_F(RpcErrorsTest, AnUnknownSessionIsNotFoundInEveryRpc) {
  const std::string s = "s-0000000000000000";
  auto expect = [](const grpc::Status& status, const char* rpc,
                   const std::string& field = "session_id") {
    SCOPED_TRACE(rpc);
    ExpectError(status, StatusCode::NOT_FOUND, field, "no session \"s-0000000000000000\"");
  };
  using SS = v1::SessionService::Stub;
  using MS = v1::ModelService::Stub;
  using DS = v1::DataService::Stub;
  using JS = v1::JobService::Stub;
  expect(Call(&SS::GetSession, *sessions_, For<v1::GetSessionRequest>(s)), "GetSession");
  expect(Call(&SS::DeleteSession, *sessions_, For<v1::DeleteSessionRequest>(s)), "DeleteSession");
  expect(Call(&MS::AddInput, *models_, For<v1::AddInputRequest>(s)), "AddInput");
  expect(Call(&MS::AddLayer, *models_, For<v1::AddLayerRequest>(s)), "AddLayer");
  expect(Call(&MS::CallLayer, *models_, For<v1::CallLayerRequest>(s)), "CallLayer");
  expect(Call(&MS::GetLayer, *models_, For<v1::GetLayerRequest>(s)), "GetLayer");
  expect(Call(&MS::CreateModel, *models_, For<v1::CreateModelRequest>(s)), "CreateModel");
  expect(Call(&MS::DefineModel, *models_, For<v1::DefineModelRequest>(s)), "DefineModel");
  expect(Call(&MS::GetModel, *models_, For<v1::GetModelRequest>(s)), "GetModel");
  expect(Call(&MS::ListModels, *models_, For<v1::ListModelsRequest>(s)), "ListModels");
  expect(Call(&MS::DeleteModel, *models_, For<v1::DeleteModelRequest>(s)), "DeleteModel");
  expect(Call(&MS::Compile, *models_, For<v1::CompileRequest>(s)), "Compile");
  expect(Call(&MS::GetWeights, *models_, For<v1::GetWeightsRequest>(s)), "GetWeights");
  expect(Call(&MS::SetWeights, *models_, For<v1::SetWeightsRequest>(s)), "SetWeights");
  v1::BeginUploadRequest begin;
  begin.mutable_header()->set_session_id(s);
  expect(Call(&DS::BeginUpload, *data_, begin), "BeginUpload", "header.session_id");
  expect(Call(&DS::AppendUploadChunk, *data_, For<v1::AppendUploadChunkRequest>(s)),
         "AppendUploadChunk");
  expect(Call(&DS::FinishUpload, *data_, For<v1::FinishUploadRequest>(s)), "FinishUpload");
  expect(Call(&DS::OpenDataset, *data_, For<v1::OpenDatasetRequest>(s)), "OpenDataset");
  expect(Call(&DS::GetDataset, *data_, For<v1::GetDatasetRequest>(s)), "GetDataset");
  expect(Call(&DS::ListDatasets, *data_, For<v1::ListDatasetsRequest>(s)), "ListDatasets");
  expect(Call(&DS::DeleteDataset, *data_, For<v1::DeleteDatasetRequest>(s)), "DeleteDataset");
  expect(Call(&DS::ReadDataset, *data_, For<v1::ReadDatasetRequest>(s)), "ReadDataset");
  {
    auto context = Context();
    v1::DatasetInfo info;
    auto writer = data_->UploadDataset(context.get(), &info);
    v1::UploadDatasetRequest header;
    *header.mutable_header() = begin.header();
    writer->Write(header);
    writer->WritesDone();
    expect(writer->Finish(), "UploadDataset", "header.session_id");
  }
  expect(Call(&JS::StartFit, *jobs_, For<v1::StartFitRequest>(s)), "StartFit");
  expect(Call(&JS::StartEvaluate, *jobs_, For<v1::StartEvaluateRequest>(s)), "StartEvaluate");
  expect(Call(&JS::StartPredict, *jobs_, For<v1::StartPredictRequest>(s)), "StartPredict");
  expect(Call(&JS::GetJob, *jobs_, For<v1::GetJobRequest>(s)), "GetJob");
  expect(Call(&JS::ListJobs, *jobs_, For<v1::ListJobsRequest>(s)), "ListJobs");
  expect(Call(&JS::CancelJob, *jobs_, For<v1::CancelJobRequest>(s)), "CancelJob");
  expect(Watch(For<v1::WatchJobRequest>(s)), "WatchJob");
  expect(Call(&v1::InferenceService::Stub::Predict, *inference_, For<v1::PredictRequest>(s)),
         "Predict");
}

// A missing session id said `no session ""`; it is a required field.
TEST_F(RpcErrorsTest, AMissingSessionIdIsRequired) {
  auto expect = [](const grpc::Status& status, const char* rpc) {
    SCOPED_TRACE(rpc);
    ExpectError(status, StatusCode::INVALID_ARGUMENT, "session_id", "is required");
  };
  using SS = v1::SessionService::Stub;
  using MS = v1::ModelService::Stub;
  using JS = v1::JobService::Stub;
  expect(Call(&SS::GetSession, *sessions_, For<v1::GetSessionRequest>("")), "GetSession");
  expect(Call(&SS::DeleteSession, *sessions_, For<v1::DeleteSessionRequest>("")), "DeleteSession");
  expect(Call(&MS::AddLayer, *models_, For<v1::AddLayerRequest>("")), "AddLayer");
  expect(Call(&JS::StartFit, *jobs_, For<v1::StartFitRequest>("")), "StartFit");
  expect(Watch(For<v1::WatchJobRequest>("")), "WatchJob");
}

TEST_F(RpcErrorsTest, UnknownNamesAreNotFoundAtTheirField) {
  const std::string s = CreateSession();
  BuildSmallModel(s);
  CompileSmallModel(s);
  auto expect = [](const grpc::Status& status, const char* rpc, const std::string& field,
                   const std::string& message) {
    SCOPED_TRACE(rpc);
    ExpectError(status, StatusCode::NOT_FOUND, field, message);
  };
  using MS = v1::ModelService::Stub;
  using DS = v1::DataService::Stub;
  using JS = v1::JobService::Stub;

  auto get_model = For<v1::GetModelRequest>(s);
  get_model.set_name("nope");
  expect(Call(&MS::GetModel, *models_, get_model), "GetModel", "name", "no model \"nope\"");
  auto delete_model = For<v1::DeleteModelRequest>(s);
  delete_model.set_name("nope");
  expect(Call(&MS::DeleteModel, *models_, delete_model), "DeleteModel", "name", "no model");
  auto compile = For<v1::CompileRequest>(s);
  compile.set_model("nope");
  expect(Call(&MS::Compile, *models_, compile), "Compile", "model", "no model \"nope\"");
  auto get_layer = For<v1::GetLayerRequest>(s);
  get_layer.set_layer("nope");
  expect(Call(&MS::GetLayer, *models_, get_layer), "GetLayer", "layer", "no layer \"nope\"");
  auto get_weights = For<v1::GetWeightsRequest>(s);
  get_weights.set_layer("nope");
  expect(Call(&MS::GetWeights, *models_, get_weights), "GetWeights", "layer", "no layer");
  get_weights.set_model("other");
  expect(Call(&MS::GetWeights, *models_, get_weights), "GetWeights", "model", "no model \"other\"");
  get_weights.set_model("small");
  // The names that exist come with it, so that a typo is easy to correct.
  expect(Call(&MS::GetWeights, *models_, get_weights), "GetWeights", "layer",
         "model \"small\" has no layer \"nope\"; its layers: \"conv2d\", ");
  auto set_weights = For<v1::SetWeightsRequest>(s);
  set_weights.set_layer("nope");
  expect(Call(&MS::SetWeights, *models_, set_weights), "SetWeights", "layer", "no layer");
  auto create_model = For<v1::CreateModelRequest>(s);
  create_model.add_inputs(0);
  create_model.add_outputs(999);
  expect(Call(&MS::CreateModel, *models_, create_model), "CreateModel", "outputs[0]",
         "tensor 999 does not exist");

  auto get_dataset = For<v1::GetDatasetRequest>(s);
  get_dataset.set_name("nope");
  expect(Call(&DS::GetDataset, *data_, get_dataset), "GetDataset", "name", "no dataset \"nope\"");
  auto delete_dataset = For<v1::DeleteDatasetRequest>(s);
  delete_dataset.set_name("nope");
  expect(Call(&DS::DeleteDataset, *data_, delete_dataset), "DeleteDataset", "name", "no dataset");
  auto read = For<v1::ReadDatasetRequest>(s);
  read.set_name("nope");
  expect(Call(&DS::ReadDataset, *data_, read), "ReadDataset", "name", "no dataset \"nope\"");
  auto append = For<v1::AppendUploadChunkRequest>(s);
  append.set_upload_id("upload-9");
  expect(Call(&DS::AppendUploadChunk, *data_, append), "AppendUploadChunk", "upload_id",
         "no upload \"upload-9\"");
  auto finish = For<v1::FinishUploadRequest>(s);
  finish.set_upload_id("upload-9");
  expect(Call(&DS::FinishUpload, *data_, finish), "FinishUpload", "upload_id", "no upload");

  auto evaluate = For<v1::StartEvaluateRequest>(s);
  evaluate.set_model("nope");
  *evaluate.mutable_data() = InlineData(8);
  expect(Call(&JS::StartEvaluate, *jobs_, evaluate), "StartEvaluate", "model", "no model");
  evaluate.set_model("small");
  evaluate.mutable_data()->set_dataset("nope");
  expect(Call(&JS::StartEvaluate, *jobs_, evaluate), "StartEvaluate", "data.dataset",
         "no dataset \"nope\"");
  auto predict = For<v1::StartPredictRequest>(s);
  predict.set_model("nope");
  *predict.mutable_data() = InlineData(8);
  expect(Call(&JS::StartPredict, *jobs_, predict), "StartPredict", "model", "no model");
  auto unary = For<v1::PredictRequest>(s);
  unary.set_model("nope");
  *unary.add_inputs() = InlineData(2).inline_().x(0);
  expect(Call(&v1::InferenceService::Stub::Predict, *inference_, unary), "Predict", "model",
         "no model \"nope\"");
  auto cancel = For<v1::CancelJobRequest>(s);
  cancel.set_job_id("job-404");
  expect(Call(&JS::CancelJob, *jobs_, cancel), "CancelJob", "job_id", "no job \"job-404\"");
  auto watch = For<v1::WatchJobRequest>(s);
  watch.set_job_id("job-404");
  expect(Watch(watch), "WatchJob", "job_id", "no job \"job-404\"");
  watch.set_from_sequence(-1);
  ExpectError(Watch(watch), StatusCode::INVALID_ARGUMENT, "from_sequence", "must not be negative");

  // None of this left anything behind.
  v1::ListJobsResponse jobs;
  ASSERT_TRUE(jobs_->ListJobs(Context().get(), For<v1::ListJobsRequest>(s), &jobs).ok());
  EXPECT_EQ(jobs.jobs_size(), 0);
  v1::ListModelsResponse models;
  ASSERT_TRUE(models_->ListModels(Context().get(), For<v1::ListModelsRequest>(s), &models).ok());
  EXPECT_EQ(models.models_size(), 1);
}

// A name of 100,000 characters echoed whole made the trailers too large to send: the client
// saw RESOURCE_EXHAUSTED ("received initial metadata size exceeds limit") instead of the
// error. Every error now fits, with its real code and field.
TEST_F(RpcErrorsTest, ErrorsAboutHugeValuesKeepTheirCode) {
  const std::string s = CreateSession();
  const std::string huge(100000, 'n');
  using MS = v1::ModelService::Stub;
  auto get_layer = For<v1::GetLayerRequest>(s);
  get_layer.set_layer(huge);
  auto get_weights = For<v1::GetWeightsRequest>(s);
  get_weights.set_model(huge);
  auto compile = For<v1::CompileRequest>(s);
  compile.set_model(huge);
  auto add = For<v1::AddLayerRequest>(s);
  add.mutable_spec()->mutable_activation()->set_activation(huge);
  for (const auto& [status, field] : std::vector<std::pair<grpc::Status, std::string>>{
           {Call(&MS::GetLayer, *models_, get_layer), "layer"},
           {Call(&MS::GetWeights, *models_, get_weights), "model"},
           {Call(&MS::Compile, *models_, compile), "model"},
           {Call(&MS::AddLayer, *models_, add), "spec.activation.activation"},
           {Call(&v1::SessionService::Stub::GetSession, *sessions_,
                 For<v1::GetSessionRequest>(huge)),
            ""}}) {
    EXPECT_NE(status.error_code(), StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
    EXPECT_LT(status.error_message().size(), 1024u);
    if (!field.empty()) {
      EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT) << status.error_message();
      EXPECT_EQ(BadRequestField(status), field);
      EXPECT_THAT(status.error_message(), ::testing::HasSubstr("(100000 characters)"));
    }
  }
}

// A 1 MB session name and a 100,000-character layer name were stored; a compile config took a
// million metrics. Names now have at most 256 bytes, metrics lists 32 entries.
TEST_F(RpcErrorsTest, NamesAndMetricsListsAreBounded) {
  v1::CreateSessionRequest create;
  create.set_name(std::string(1 << 20, 's'));
  v1::Session session;
  grpc::Status status = sessions_->CreateSession(Context().get(), create, &session);
  ExpectError(status, StatusCode::INVALID_ARGUMENT, "name", "a name may have at most 256 bytes");
  const std::string s = CreateSession();
  const int64_t input = AddInput(s, {4}).id();
  auto add = For<v1::AddLayerRequest>(s);
  add.add_inputs(input);
  add.mutable_spec()->mutable_dense()->set_units(2);
  add.mutable_spec()->mutable_dense()->set_name(std::string(257, 'n'));
  ExpectError(Call(&v1::ModelService::Stub::AddLayer, *models_, add), StatusCode::INVALID_ARGUMENT,
              "spec.dense.name", "a name may have at most 256 bytes");
  add.mutable_spec()->mutable_dense()->set_name(std::string(256, 'n'));
  EXPECT_TRUE(Call(&v1::ModelService::Stub::AddLayer, *models_, add).ok());
  auto compile = For<v1::CompileRequest>(s);
  compile.set_model("m");
  for (int i = 0; i < 1000; ++i) compile.mutable_config()->add_metrics("accuracy");
  ExpectError(Call(&v1::ModelService::Stub::Compile, *models_, compile),
              StatusCode::INVALID_ARGUMENT, "config.metrics", "at most 32 metrics");
}

TEST_F(RpcErrorsTest, InvalidInputCards) {
  const std::string s = CreateSession();
  auto request = For<v1::AddInputRequest>(s);
  request.mutable_input()->add_shape(8);
  request.mutable_input()->add_shape(0);
  ExpectError(Call(&v1::ModelService::Stub::AddInput, *models_, request),
              StatusCode::INVALID_ARGUMENT, "input.shape",
              "every dimension of an input's shape must be a positive integer");
  request.mutable_input()->set_shape(1, 8);
  request.mutable_input()->set_batch_size(32);
  ExpectError(Call(&v1::ModelService::Stub::AddInput, *models_, request),
              StatusCode::INVALID_ARGUMENT, "input.batch_size", "any batch size");
  request.mutable_input()->clear_batch_size();
  request.mutable_input()->set_name("pixels");
  ASSERT_TRUE(Call(&v1::ModelService::Stub::AddInput, *models_, request).ok());
  ExpectError(Call(&v1::ModelService::Stub::AddInput, *models_, request),
              StatusCode::ALREADY_EXISTS, "input.name", "The name \"pixels\" is already used");
}

TEST_F(RpcErrorsTest, ModelsCanBeSummarisedListedAndDeleted) {
  const std::string s = CreateSession();
  BuildSmallModel(s);
  auto get = For<v1::GetModelRequest>(s);
  get.set_name("small");
  v1::ModelInfo model;
  ASSERT_TRUE(models_->GetModel(Context().get(), get, &model).ok());
  EXPECT_EQ(model.name(), "small");
  EXPECT_EQ(model.layers_size(), 7);  // the input and six layers, as Keras lists them
  EXPECT_GT(model.total_params(), 0);
  EXPECT_EQ(model.total_params(), model.trainable_params() + model.non_trainable_params());
  EXPECT_NE(model.summary().find("Model: \"small\""), std::string::npos) << model.summary();
  EXPECT_NE(model.summary().find("Total params"), std::string::npos);
  EXPECT_FALSE(model.compiled());

  v1::ListModelsResponse list;
  ASSERT_TRUE(models_->ListModels(Context().get(), For<v1::ListModelsRequest>(s), &list).ok());
  ASSERT_EQ(list.models_size(), 1);
  EXPECT_EQ(list.models(0).name(), "small");
  EXPECT_EQ(list.models(0).total_params(), model.total_params());

  auto del = For<v1::DeleteModelRequest>(s);
  del.set_name("small");
  ASSERT_TRUE(Call(&v1::ModelService::Stub::DeleteModel, *models_, del).ok());
  ASSERT_TRUE(models_->ListModels(Context().get(), For<v1::ListModelsRequest>(s), &list).ok());
  EXPECT_EQ(list.models_size(), 0);
  ExpectError(models_->GetModel(Context().get(), get, &model), StatusCode::NOT_FOUND, "name",
              "no model \"small\"");
}

TEST_F(RpcErrorsTest, DatasetsCanBeListedReadAndDeleted) {
  const std::string s = CreateSession();
  UploadUnary(s, "points", 10);
  v1::ListDatasetsResponse list;
  ASSERT_TRUE(data_->ListDatasets(Context().get(), For<v1::ListDatasetsRequest>(s), &list).ok());
  ASSERT_EQ(list.datasets_size(), 1);
  EXPECT_EQ(list.datasets(0).name(), "points");
  auto get = For<v1::GetDatasetRequest>(s);
  get.set_name("points");
  v1::DatasetInfo info;
  ASSERT_TRUE(data_->GetDataset(Context().get(), get, &info).ok());
  EXPECT_EQ(info.samples(), 10);

  auto read = For<v1::ReadDatasetRequest>(s);
  read.set_name("points");
  read.set_offset(3);
  read.set_limit(4);
  v1::TensorProto rows;
  ASSERT_TRUE(data_->ReadDataset(Context().get(), read, &rows).ok());
  ASSERT_EQ(rows.shape_size(), 2);
  EXPECT_EQ(rows.shape(0), 4);
  EXPECT_EQ(rows.shape(1), 2);
  ASSERT_EQ(rows.data().size(), 8 * sizeof(float));
  const float* values = reinterpret_cast<const float*>(rows.data().data());
  for (int i = 0; i < 8; ++i) EXPECT_EQ(values[i], float(6 + i));
  read.set_array("y");
  read.set_offset(8);
  read.set_limit(0);  // the rest
  ASSERT_TRUE(data_->ReadDataset(Context().get(), read, &rows).ok());
  EXPECT_EQ(rows.shape(0), 2);

  read.set_array("z");
  ExpectError(data_->ReadDataset(Context().get(), read, &rows), StatusCode::INVALID_ARGUMENT,
              "array", "has no array \"z\" (it has x0..x0 and y)");
  read.set_array("x");
  read.set_offset(11);
  ExpectError(data_->ReadDataset(Context().get(), read, &rows), StatusCode::INVALID_ARGUMENT,
              "offset", "must be in [0, 10]");
  read.set_offset(0);
  read.set_limit(-1);
  ExpectError(data_->ReadDataset(Context().get(), read, &rows), StatusCode::INVALID_ARGUMENT,
              "limit", "must not be negative");

  auto del = For<v1::DeleteDatasetRequest>(s);
  del.set_name("points");
  ASSERT_TRUE(Call(&v1::DataService::Stub::DeleteDataset, *data_, del).ok());
  ExpectError(data_->GetDataset(Context().get(), get, &info), StatusCode::NOT_FOUND, "name",
              "no dataset \"points\"");
  ASSERT_TRUE(data_->ListDatasets(Context().get(), For<v1::ListDatasetsRequest>(s), &list).ok());
  EXPECT_EQ(list.datasets_size(), 0);
}

}  // namespace
}  // namespace kiln::testing
