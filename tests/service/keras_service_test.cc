// The catalogue and Keras files over gRPC: DescribeCatalogue, ImportModel (unary, streamed and
// from the data root), ExportModel, weights-only import, errors at the file's paths, failed
// imports changing nothing, and imports surviving a restart.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/io/tensor_proto.h"
#include "core/saving/keras_files.h"
#include "gmock/gmock.h"
#include "tests/service/service_fixture.h"
#include "tests/unit/test_util.h"

namespace kiln::testing {
namespace {

using grpc::StatusCode;
using ::testing::HasSubstr;

std::string Fixture(const std::string& name) {
  std::ifstream in(FixturePath(absl::StrCat("keras/", name)), std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class KerasServiceTest : public ServiceTest {
 protected:
  grpc::Status Import(const v1::ImportModelRequest& request, v1::ModelInfo* info) {
    return models_->ImportModel(Context().get(), request, info);
  }

  v1::ImportModelRequest ImportRequest(const std::string& session, const std::string& data,
                                       const std::string& name = "") {
    v1::ImportModelRequest request;
    request.set_session_id(session);
    request.set_data(data);
    request.set_name(name);
    return request;
  }

  // ExportModel's chunks, joined; checks total_bytes.
  std::string Export(const std::string& session, const std::string& model, v1::KerasFormat format,
                     grpc::Status* status = nullptr) {
    v1::ExportModelRequest request;
    request.set_session_id(session);
    request.set_model(model);
    request.set_format(format);
    auto context = Context();
    auto reader = models_->ExportModel(context.get(), request);
    std::string bytes;
    v1::ExportModelChunk chunk;
    int chunks = 0;
    while (reader->Read(&chunk)) {
      bytes += chunk.data();
      ++chunks;
      EXPECT_FALSE(chunk.file_name().empty());
    }
    grpc::Status finished = reader->Finish();
    if (status != nullptr) *status = finished;
    if (finished.ok()) {
      EXPECT_EQ(int64_t(bytes.size()), chunk.total_bytes());
      EXPECT_EQ(chunks, int((bytes.size() + (1 << 20) - 1) >> 20));
    }
    return bytes;
  }

  // The model's predictions for fixed random inputs of its input shapes.
  std::vector<std::string> Predictions(const std::string& session, const std::string& model,
                                       const v1::ModelInfo& info) {
    v1::PredictRequest request;
    request.set_session_id(session);
    request.set_model(model);
    for (int i = 0; i < info.inputs_size(); ++i) {
      std::vector<int64_t> dims = {4};
      for (int d = 1; d < info.inputs(i).shape_size(); ++d) dims.push_back(info.inputs(i).shape(d));
      *request.add_inputs() = EncodeTensor(RandomTensor(Shape(dims), 20 + i));
    }
    v1::PredictResponse response;
    grpc::Status status = inference_->Predict(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::vector<std::string> out;
    for (const auto& t : response.outputs()) out.push_back(t.data());
    return out;
  }

  std::vector<std::string> ModelNames(const std::string& session) {
    v1::ListModelsRequest request;
    request.set_session_id(session);
    v1::ListModelsResponse response;
    EXPECT_TRUE(models_->ListModels(Context().get(), request, &response).ok());
    std::vector<std::string> names;
    for (const auto& m : response.models()) names.push_back(m.name());
    return names;
  }
};

TEST_F(KerasServiceTest, DescribeCatalogue) {
  auto catalogue = v1::CatalogueService::NewStub(channel_);
  v1::Catalogue all;
  ASSERT_TRUE(catalogue->DescribeCatalogue(Context().get(), {}, &all).ok());
  EXPECT_EQ(all.layers_size(),
            v1::LayerSpec::descriptor()->FindOneofByName("layer")->field_count());
  v1::DescribeCatalogueRequest request;
  request.set_name("depthwise_conv2d");
  v1::Catalogue one;
  ASSERT_TRUE(catalogue->DescribeCatalogue(Context().get(), request, &one).ok());
  ASSERT_EQ(one.layers_size(), 1);
  EXPECT_EQ(one.layers(0).class_name(), "DepthwiseConv2D");
  request.set_name("Conv3D");
  ExpectError(catalogue->DescribeCatalogue(Context().get(), request, &one), StatusCode::NOT_FOUND,
              "name", "Kiln has nothing named \"Conv3D\"");
}

TEST_F(KerasServiceTest, ImportsKerasJsonOfBothVersions) {
  const std::string s = CreateSession();
  v1::ModelInfo info;
  ASSERT_TRUE(Import(ImportRequest(s, Fixture("keras2_mobilenet.json")), &info).ok());
  EXPECT_EQ(info.name(), "model");  // the file's name
  EXPECT_EQ(info.total_params(), 2666);
  EXPECT_EQ(info.non_trainable_params(), 128);
  EXPECT_FALSE(info.compiled());
  ASSERT_TRUE(
      Import(ImportRequest(s, Fixture("keras3_regularized_depthwise.json"), "reg"), &info).ok());
  EXPECT_EQ(info.name(), "reg");
  EXPECT_TRUE(info.compiled());  // its compile_config
  EXPECT_EQ(info.compile().loss().name(), "sparse_categorical_crossentropy");
  auto skip = ImportRequest(s, Fixture("keras3_regularized_depthwise.json"), "plain");
  skip.set_skip_compile(true);
  ASSERT_TRUE(Import(skip, &info).ok());
  EXPECT_FALSE(info.compiled());
  ASSERT_TRUE(
      Import(ImportRequest(s, Fixture("keras3_shared_two_inputs.json"), "two"), &info).ok());
  EXPECT_EQ(info.inputs_size(), 2);
  EXPECT_EQ(info.outputs_size(), 2);
  EXPECT_EQ(Predictions(s, "two", info).size(), 2u);
}

TEST_F(KerasServiceTest, ExportedArchiveImportsBackWithIdenticalPredictions) {
  const std::string s = CreateSession();
  v1::ModelInfo info;
  ASSERT_TRUE(Import(ImportRequest(s, Fixture("keras2_mobilenet.json"), "first"), &info).ok());
  const auto expected = Predictions(s, "first", info);
  const std::string archive = Export(s, "first", v1::KERAS_FORMAT_KERAS);
  ASSERT_EQ(archive.substr(0, 4), "PK\x03\x04");
  // Streamed in chunks, as the CLI sends it.
  {
    auto context = Context();
    v1::ModelInfo second;
    auto writer = models_->ImportModelStream(context.get(), &second);
    v1::ImportModelChunk chunk;
    chunk.mutable_request()->set_session_id(s);
    chunk.mutable_request()->set_name("second");
    ASSERT_TRUE(writer->Write(chunk));
    for (size_t offset = 0; offset < archive.size(); offset += 1000) {
      v1::ImportModelChunk data;
      data.set_data(archive.substr(offset, 1000));
      ASSERT_TRUE(writer->Write(data));
    }
    writer->WritesDone();
    grpc::Status status = writer->Finish();
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(second.total_params(), info.total_params());
  }
  EXPECT_EQ(Predictions(s, "second", info), expected);
  // JSON alone: the same graph with fresh weights.
  const std::string json = Export(s, "first", v1::KERAS_FORMAT_JSON);
  ASSERT_TRUE(Import(ImportRequest(s, json, "third"), &info).ok());
  EXPECT_NE(Predictions(s, "third", info), expected);
  // ...and a .weights.h5 file makes them equal.
  const std::string weights = Export(s, "first", v1::KERAS_FORMAT_WEIGHTS);
  ASSERT_TRUE(Import(ImportRequest(s, weights, "third"), &info).ok());
  EXPECT_EQ(Predictions(s, "third", info), expected);
}

TEST_F(KerasServiceTest, AnImportedModelsDefinitionDefinesItAgain) {
  const std::string s = CreateSession();
  v1::ModelInfo imported;
  ASSERT_TRUE(
      Import(ImportRequest(s, Fixture("keras3_shared_two_inputs.json"), "two"), &imported).ok());
  ASSERT_TRUE(
      Import(ImportRequest(s, Fixture("keras3_regularized_depthwise.json"), "reg"), &imported)
          .ok());
  for (const std::string model : {"two", "reg"}) {
    SCOPED_TRACE(model);
    v1::GetModelRequest get;
    get.set_session_id(s);
    get.set_name(model);
    v1::ModelInfo plain, with;
    ASSERT_TRUE(models_->GetModel(Context().get(), get, &plain).ok());
    EXPECT_FALSE(plain.has_definition());  // only when asked
    get.set_include_definition(true);
    ASSERT_TRUE(models_->GetModel(Context().get(), get, &with).ok());
    ASSERT_TRUE(with.has_definition());
    EXPECT_EQ(with.definition().name(), model);
    EXPECT_EQ(with.definition().has_compile(), with.compiled());

    v1::DefineModelRequest define;
    define.set_session_id(s);
    *define.mutable_definition() = with.definition();
    define.mutable_definition()->set_name(model + "_again");
    v1::ModelInfo again;
    grpc::Status status = models_->DefineModel(Context().get(), define, &again);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(again.total_params(), with.total_params());
    EXPECT_EQ(again.trainable_params(), with.trainable_params());
    EXPECT_EQ(again.compiled(), with.compiled());
    ASSERT_EQ(again.layers_size(), with.layers_size());
    for (int i = 0; i < again.layers_size(); ++i) {
      EXPECT_EQ(again.layers(i).name(), with.layers(i).name());
      EXPECT_EQ(again.layers(i).class_name(), with.layers(i).class_name());
      EXPECT_EQ(again.layers(i).params(), with.layers(i).params());
    }
  }
}

TEST_F(KerasServiceTest, ImportsFromTheDataRoot) {
  const std::string s = CreateSession();
  std::ofstream(data_root_ + "/model.json") << Fixture("keras2_sequential.json");
  v1::ImportModelRequest request;
  request.set_session_id(s);
  request.set_path("model.json");
  v1::ModelInfo info;
  ASSERT_TRUE(Import(request, &info).ok());
  EXPECT_EQ(info.total_params(), 13610);
  request.set_path("../outside.json");
  ExpectError(Import(request, &info), StatusCode::PERMISSION_DENIED, "path", "");
}

TEST_F(KerasServiceTest, ErrorsNameTheRequestFieldAndThePlaceInTheFile) {
  const std::string s = CreateSession();
  v1::ModelInfo info;
  ExpectError(Import(ImportRequest(s, "{\"class_name\": \"Functional\", \"config\": {"), &info),
              StatusCode::INVALID_ARGUMENT, "data", "not valid JSON: at line 1");
  std::string json = Fixture("keras2_sequential.json");
  const std::string dense = "\"units\": 10";
  ASSERT_NE(json.find(dense), std::string::npos);
  std::string bad = json;
  bad.replace(bad.find(dense), dense.size(), "\"units\": -1");
  ExpectError(Import(ImportRequest(s, bad), &info), StatusCode::INVALID_ARGUMENT,
              "data.config.layers[4].config.units", "expected a positive integer");
  bad = json;
  bad.replace(bad.find(dense), dense.size(), "\"units\": 10, \"kernel_size\": 3");
  ExpectError(Import(ImportRequest(s, bad), &info), StatusCode::INVALID_ARGUMENT,
              "data.config.layers[4].config.kernel_size",
              "Unrecognized keyword arguments passed to Dense: {'kernel_size': 3}");
  EXPECT_TRUE(ModelNames(s).empty());  // nothing of the failed imports
  ASSERT_TRUE(Import(ImportRequest(s, json, "m"), &info).ok());
  ExpectError(Import(ImportRequest(s, json, "m"), &info), StatusCode::ALREADY_EXISTS, "name",
              "set `replace`");
  // A weights file that does not fit the model: refused, the model unchanged.
  const auto before = Predictions(s, "m", info);
  ASSERT_TRUE(Import(ImportRequest(s, Fixture("keras2_mobilenet.json"), "other"), &info).ok());
  const std::string other = Export(s, "other", v1::KERAS_FORMAT_WEIGHTS);
  ExpectError(Import(ImportRequest(s, other, "m"), &info), StatusCode::INVALID_ARGUMENT,
              "data.layers/conv2d/vars",
              "Layer 'conv2d' expected 2 variables, but received 1 variables during loading.");
  ASSERT_TRUE(models_
                  ->GetModel(
                      Context().get(),
                      [&] {
                        v1::GetModelRequest r;
                        r.set_session_id(s);
                        r.set_name("m");
                        return r;
                      }(),
                      &info)
                  .ok());
  EXPECT_EQ(Predictions(s, "m", info), before);
  grpc::Status status;
  Export(s, "nothing", v1::KERAS_FORMAT_KERAS, &status);
  ExpectError(status, StatusCode::NOT_FOUND, "model", "no model \"nothing\"");
}

// A trained model's optimizer state goes out with it (Keras's optimizer/vars) and comes back in.
TEST_F(KerasServiceTest, OptimizerStateRoundTrips) {
  const std::string s = CreateSession();
  BuildSmallModel(s);
  CompileSmallModel(s);
  v1::StartFitRequest fit;
  fit.set_session_id(s);
  fit.set_model("small");
  *fit.mutable_data() = InlineData(48);
  fit.mutable_config()->set_epochs(2);
  fit.mutable_config()->set_batch_size(16);
  v1::Job job;
  ASSERT_TRUE(jobs_->StartFit(Context().get(), fit, &job).ok());
  Watch(s, job.id());
  const std::string archive = Export(s, "small", v1::KERAS_FORMAT_KERAS);
  v1::ModelInfo info;
  ASSERT_TRUE(Import(ImportRequest(s, archive, "copy"), &info).ok());
  ASSERT_TRUE(info.compiled());
  auto optimizer_of = [&](const std::string& model) {
    auto read =
        ReadKerasFile(Export(s, model, v1::KERAS_FORMAT_KERAS), v1::KERAS_FORMAT_UNSPECIFIED, {});
    EXPECT_TRUE(read.ok()) << read.status();
    return read->weights->groups.at("optimizer");
  };
  const WeightGroup original = optimizer_of("small"), copied = optimizer_of("copy");
  ASSERT_EQ(original.values.size(), copied.values.size());
  EXPECT_EQ(*original.values[0].data<int64_t>(), 6);  // 2 epochs of 3 steps
  for (size_t i = 0; i < original.values.size(); ++i) {
    ASSERT_EQ(original.values[i].byte_size(), copied.values[i].byte_size());
    EXPECT_EQ(std::memcmp(original.values[i].raw_data(), copied.values[i].raw_data(),
                          original.values[i].byte_size()),
              0)
        << "optimizer variable " << i;
  }
}

TEST_F(KerasServiceTest, ImportedWeightsSurviveARestart) {
  const std::string s = CreateSession();
  v1::ModelInfo info;
  ASSERT_TRUE(
      Import(ImportRequest(s, Fixture("keras3_regularized_depthwise.json"), "a"), &info).ok());
  const std::string archive = Export(s, "a", v1::KERAS_FORMAT_KERAS);
  ASSERT_TRUE(Import(ImportRequest(s, archive, "b"), &info).ok());
  const auto expected = Predictions(s, "a", info);
  RestartServer();
  EXPECT_EQ(Predictions(s, "b", info), expected);
  EXPECT_EQ(Predictions(s, "a", info), expected);
}

// Hostile files (tests/fixtures/keras/hostile: mutated Kiln exports that a fuzzer found) were
// read inside the server, and one crashed it for every tenant (SIGSEGV in libhdf5's H5HG_read
// from H5Aread), another looped in libhdf5 holding its process-wide lock. Now each costs its
// own call an INVALID_ARGUMENT at `data`, and the server answers the next call.
class HostileKerasFilesTest : public KerasServiceTest {
 protected:
  void Configure(server::ServerOptions& options) override {
    options.file_reader_timeout = absl::Seconds(5);
  }
};

TEST_F(HostileKerasFilesTest, AFileThatCrashesLibhdf5CostsOnlyItsCall) {
  const std::string s = CreateSession();
  v1::ModelInfo info;
  ASSERT_TRUE(Import(ImportRequest(s, Fixture("keras2_sequential.json"), "m"), &info).ok());
  const std::string weights = Export(s, "m", v1::KERAS_FORMAT_WEIGHTS);
  for (const char* file :
       {"hostile/crashes_libhdf5.weights.h5", "hostile/exhausts_libhdf5.weights.h5"}) {
    const grpc::Status status = Import(ImportRequest(s, Fixture(file), "m"), &info);
    EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT) << file;
    EXPECT_EQ(BadRequestField(status), "data") << file;
    EXPECT_THAT(status.error_message(), HasSubstr("the file is damaged or not a Keras file"))
        << file;
  }
  // The server lives on, and the model is as it was: a valid file still loads into it.
  EXPECT_TRUE(Import(ImportRequest(s, weights, "m"), &info).ok());
}

TEST_F(HostileKerasFilesTest, TheReadersMemoryIsReservedFromTheSession) {
  options_.max_session_bytes = int64_t{1} << 30;  // less than --file_reader_memory's 2 GiB
  RestartServer();
  const std::string s = CreateSession();
  v1::ModelInfo info;
  ASSERT_TRUE(Import(ImportRequest(s, Fixture("keras2_sequential.json"), "m"), &info).ok());
  const grpc::Status status =
      Import(ImportRequest(s, Export(s, "m", v1::KERAS_FORMAT_WEIGHTS), "m"), &info);
  EXPECT_EQ(status.error_code(), StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("--file_reader_memory"));
}

}  // namespace
}  // namespace kiln::testing
