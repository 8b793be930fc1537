// Keras model files: the fixture corpus (tests/fixtures/keras, written by hand from Keras 2 and
// Keras 3's formats) imports with Keras's parameter counts; Kiln -> Keras JSON / .keras -> Kiln
// gives the same graph and bit-identical predictions; bad files get errors at their JSON path.
#include "core/saving/keras_files.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zip.h>

#include <fstream>
#include <random>
#include <sstream>

#include "core/base/status.h"
#include "core/graph/definition.h"
#include "core/graph/summary.h"
#include "core/saving/keras_archive.h"
#include "google/protobuf/util/message_differencer.h"
#include "tests/unit/test_util.h"

namespace kiln {
namespace {

using ::testing::HasSubstr;

std::string ReadFixture(const std::string& name) {
  std::ifstream in(testing::FixturePath(absl::StrCat("keras/", name)), std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

struct Built {
  Graph graph;
  std::unique_ptr<Model> model;
  KerasModel keras;
};

std::unique_ptr<Built> Build(absl::string_view json, uint64_t seed = 3) {
  auto built = std::make_unique<Built>();
  absl::StatusOr<KerasModel> keras = ParseKerasModel(json, true);
  EXPECT_TRUE(keras.ok()) << keras.status();
  if (!keras.ok()) return nullptr;
  built->keras = *keras;
  absl::StatusOr<std::unique_ptr<Model>> model =
      BuildModel(built->keras.definition, built->graph, seed);
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return nullptr;
  built->model = *std::move(model);
  return built;
}

struct Counts {
  const char* file;
  int64_t total, trainable;
  int layers;  // distinct layers, inputs excluded
};

// Keras's figures for the fixtures (tests/fixtures/keras/README.md shows the arithmetic).
class KerasFixture : public ::testing::TestWithParam<Counts> {};

TEST_P(KerasFixture, ImportsWithKerasParameterCounts) {
  const Counts& c = GetParam();
  auto built = Build(ReadFixture(c.file));
  ASSERT_NE(built, nullptr);
  EXPECT_EQ(built->model->CountParams(), c.total);
  EXPECT_EQ(built->model->CountTrainableParams(), c.trainable);
  EXPECT_EQ(static_cast<int>(built->model->layers().size()), c.layers);
}

// Kiln -> Keras 3 JSON -> Kiln: the same layers (specs), calls and connections.
TEST_P(KerasFixture, JsonRoundTripKeepsTheGraph) {
  auto first = Build(ReadFixture(GetParam().file));
  ASSERT_NE(first, nullptr);
  const std::string exported = KerasModelJson(*first->model, nullptr).dump();
  auto second = Build(exported);
  ASSERT_NE(second, nullptr);
  const auto a = first->model->layers(), b = second->model->layers();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equivalent(a[i]->spec(), b[i]->spec()))
        << a[i]->spec().DebugString() << " vs " << b[i]->spec().DebugString();
  }
  const auto rows_a = SummaryRows(*first->model), rows_b = SummaryRows(*second->model);
  ASSERT_EQ(rows_a.size(), rows_b.size());
  for (size_t i = 0; i < rows_a.size(); ++i) {
    EXPECT_EQ(rows_a[i].name, rows_b[i].name);
    EXPECT_EQ(rows_a[i].class_name, rows_b[i].class_name);
    EXPECT_EQ(rows_a[i].connected_to, rows_b[i].connected_to);
    EXPECT_EQ(rows_a[i].output_shapes, rows_b[i].output_shapes);
    EXPECT_EQ(rows_a[i].params, rows_b[i].params);
  }
  // And exporting again gives the same document.
  EXPECT_EQ(KerasModelJson(*second->model, nullptr).dump(), exported);
}

std::vector<Tensor> Inputs(const Model& model, uint64_t seed) {
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < model.input_values().size(); ++i) {
    inputs.push_back(testing::RandomTensor(
        model.value_shapes()[model.input_values()[i]].WithBatch(5), seed + i));
  }
  return inputs;
}

// Kiln -> .keras -> Kiln (another seed, so other initial weights): bit-identical predictions.
TEST_P(KerasFixture, ArchiveRoundTripPredictsBitForBit) {
  auto first = Build(ReadFixture(GetParam().file), 3);
  ASSERT_NE(first, nullptr);
  absl::StatusOr<KerasExport> file =
      WriteKerasFile(*first->model, v1::KERAS_FORMAT_KERAS, nullptr, nullptr, nullptr);
  ASSERT_TRUE(file.ok()) << file.status();
  absl::StatusOr<KerasFile> read = ReadKerasFile(file->bytes, v1::KERAS_FORMAT_UNSPECIFIED, {});
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->format, v1::KERAS_FORMAT_KERAS);
  Built second;
  auto model = BuildModel(read->model->definition, second.graph, 99);
  ASSERT_TRUE(model.ok()) << model.status();
  auto weights = MatchKerasWeights(*read->weights, read->model->weight_groups, **model, "");
  ASSERT_TRUE(weights.ok()) << weights.status();
  for (MatchedWeights& w : *weights) ASSERT_TRUE(w.layer->SetWeights(w.values).ok());
  const std::vector<Tensor> x = Inputs(*first->model, 11);
  const auto expected = testing::Run(*first->model, x, false).outputs;
  const auto actual = testing::Run(**model, x, false).outputs;
  ASSERT_EQ(expected.size(), actual.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    ASSERT_EQ(expected[i].shape(), actual[i].shape());
    EXPECT_EQ(std::memcmp(expected[i].raw_data(), actual[i].raw_data(), expected[i].byte_size()), 0)
        << "output " << i << " differs";
  }
}

INSTANTIATE_TEST_SUITE_P(Corpus, KerasFixture,
                         ::testing::Values(Counts{"keras2_mobilenet.json", 2666, 2538, 14},
                                           Counts{"keras3_shared_two_inputs.json", 239, 239, 6},
                                           Counts{"keras3_regularized_depthwise.json", 1363, 1347,
                                                  7},
                                           Counts{"keras2_sequential.json", 13610, 13610, 4}),
                         [](const auto& info) {
                           std::string name = info.param.file;
                           return name.substr(0, name.find('.'));
                         });

TEST(KerasFilesTest, Keras2LegacyFormsAreReadLeniently) {
  auto built = Build(ReadFixture("keras2_mobilenet.json"));
  ASSERT_NE(built, nullptr);
  // "groups": 1 on DepthwiseConv2D accepted; "axis": [3] on BatchNormalization read as 3.
  const auto layers = built->model->layers();
  bool saw_depthwise = false, saw_bn = false;
  for (const Layer* layer : layers) {
    if (layer->class_name() == "DepthwiseConv2D") saw_depthwise = true;
    if (layer->class_name() == "BatchNormalization") {
      saw_bn = true;
      EXPECT_EQ(layer->spec().batch_normalization().axis(), 3);
    }
  }
  EXPECT_TRUE(saw_depthwise && saw_bn);
}

// Keras 3 Sequential built with model.build(shape): no InputLayer, the shape at the top.
TEST(KerasFilesTest, SequentialWithBuildInputShape) {
  auto built = Build(R"({"module": "keras", "class_name": "Sequential", "config": {
      "name": "seq", "trainable": true, "dtype": "float32",
      "layers": [{"module": "keras.layers", "class_name": "Dense",
                  "config": {"name": "dense", "units": 3, "activation": "relu"},
                  "registered_name": null}],
      "build_input_shape": [null, 5]}, "registered_name": null})");
  ASSERT_NE(built, nullptr);
  EXPECT_EQ(built->model->CountParams(), 18);
  EXPECT_EQ(built->keras.weight_groups.size(), 1u);  // Sequential lists no InputLayer
}

TEST(KerasFilesTest, SharedLayerHasOneLayerAndTwoCalls) {
  auto built = Build(ReadFixture("keras3_shared_two_inputs.json"));
  ASSERT_NE(built, nullptr);
  EXPECT_EQ(built->model->input_values().size(), 2u);
  EXPECT_EQ(built->model->output_values().size(), 2u);
  int calls = 0;
  for (const Model::Node& node : built->model->nodes()) {
    calls += node.layer->name() == "shared_dw" ? 1 : 0;
  }
  EXPECT_EQ(calls, 2);
}

TEST(KerasFilesTest, CompileConfigAndRegularizersImport) {
  auto built = Build(ReadFixture("keras3_regularized_depthwise.json"));
  ASSERT_NE(built, nullptr);
  const v1::ModelDefinition& d = built->keras.definition;
  ASSERT_TRUE(d.has_compile());
  EXPECT_TRUE(d.compile().optimizer().has_adam());
  EXPECT_EQ(d.compile().loss().name(), "sparse_categorical_crossentropy");
  EXPECT_THAT(d.compile().metrics(), ::testing::ElementsAre("accuracy"));
  const Layer* dw = nullptr;
  for (const Layer* layer : built->model->layers()) {
    if (layer->class_name() == "DepthwiseConv2D") dw = layer;
  }
  ASSERT_NE(dw, nullptr);
  EXPECT_TRUE(dw->activity_regularizer().has_value());
  EXPECT_TRUE(dw->variable("kernel")->regularizer.has_value());
  EXPECT_TRUE(dw->variable("kernel")->constraint.has_value());
  EXPECT_TRUE(dw->variable("bias")->constraint->has_non_neg());
}

// Keras's own paths: layers/<snake_case class>[_n], inputs included for Functional models.
TEST(KerasFilesTest, WeightGroupsFollowKerasPaths) {
  auto built = Build(ReadFixture("keras2_mobilenet.json"));
  ASSERT_NE(built, nullptr);
  std::vector<std::string> paths;
  for (const auto& [name, path] : KerasWeightGroups(*built->model)) paths.push_back(path);
  EXPECT_THAT(paths, ::testing::ElementsAre(
                         "layers/input_layer", "layers/conv2d", "layers/batch_normalization",
                         "layers/re_lu", "layers/depthwise_conv2d", "layers/batch_normalization_1",
                         "layers/re_lu_1", "layers/conv2d_1", "layers/batch_normalization_2",
                         "layers/re_lu_2", "layers/zero_padding2d", "layers/depthwise_conv2d_1",
                         "layers/global_average_pooling2d", "layers/dropout", "layers/dense"));
}

std::string ImportError(const std::string& json) {
  absl::StatusOr<KerasModel> keras = ParseKerasModel(json, true);
  if (!keras.ok())
    return absl::StrCat(FieldPathOf(keras.status()).value_or("?"), " | ", keras.status().message());
  Graph graph;
  absl::StatusOr<std::unique_ptr<Model>> model = BuildModel(keras->definition, graph, 1);
  if (!model.ok()) {
    return absl::StrCat(keras->JsonPathOf(FieldPathOf(model.status()).value_or("")), " | ",
                        model.status().message());
  }
  return "ok";
}

// A two-layer Functional model in Keras 2 form, with `layer2` as its second layer.
std::string TinyModel(const std::string& layer2, const std::string& outputs = "[[\"d\", 0, 0]]") {
  return absl::StrCat(
      R"({"class_name": "Functional", "config": {"name": "m", "layers": [)",
      R"({"class_name": "InputLayer", "config": {"batch_input_shape": [null, 4], "dtype": "float32", "name": "x"}, "name": "x", "inbound_nodes": []},)",
      layer2, R"(], "input_layers": [["x", 0, 0]], "output_layers": )", outputs, "}}");
}

TEST(KerasFilesTest, ErrorsNameTheirJsonPath) {
  EXPECT_EQ(
      ImportError(TinyModel(
          R"({"class_name": "Dense", "config": {"name": "d", "units": 3}, "name": "d", "inbound_nodes": [[["x", 0, 0, {}]]]})")),
      "ok");
  EXPECT_THAT(ImportError("{\"class_name\": \"Functional\",\n \"config\": {,}}"),
              HasSubstr("not valid JSON: at line 2, column 13"));
  // Unknown argument, in Keras's words.
  EXPECT_THAT(
      ImportError(TinyModel(
          R"({"class_name": "Dense", "config": {"name": "d", "units": 3, "kernel_size": 2}, "name": "d", "inbound_nodes": [[["x", 0, 0, {}]]]})")),
      HasSubstr("config.layers[1].config.kernel_size | config.layers[1].config.kernel_size: "
                "Unrecognized keyword arguments passed to Dense: {'kernel_size': 2}"));
  // Unknown class, naming the layer.
  EXPECT_THAT(
      ImportError(TinyModel(
          R"({"class_name": "LSTM", "config": {"name": "d"}, "name": "d", "inbound_nodes": [[["x", 0, 0, {}]]]})")),
      HasSubstr("config.layers[1].class_name | config.layers[1].class_name: Kiln has no "
                "layer class \"LSTM\" yet (layer \"d\")"));
  // A value out of range, in the engine's words, at the file's path.
  EXPECT_THAT(
      ImportError(TinyModel(
          R"({"class_name": "Dense", "config": {"name": "d", "units": 0}, "name": "d", "inbound_nodes": [[["x", 0, 0, {}]]]})")),
      HasSubstr("config.layers[1].config.units | "));
  // Dangling references.
  EXPECT_THAT(
      ImportError(TinyModel(
          R"({"class_name": "Dense", "config": {"name": "d", "units": 3}, "name": "d", "inbound_nodes": [[["y", 0, 0, {}]]]})")),
      HasSubstr("config.layers[1].inbound_nodes[0][0] | config.layers[1].inbound_nodes[0][0]: "
                "no layer named \"y\""));
  EXPECT_THAT(
      ImportError(TinyModel(
          R"({"class_name": "Dense", "config": {"name": "d", "units": 3}, "name": "d", "inbound_nodes": [[["x", 1, 0, {}]]]})")),
      HasSubstr("there is no node 1"));
  EXPECT_THAT(
      ImportError(TinyModel(
          R"({"class_name": "Dense", "config": {"name": "d", "units": 3}, "name": "d", "inbound_nodes": [[["x", 0, 0, {}]]]})",
          R"([["d", 0, 2]])")),
      HasSubstr("config.output_layers[0] | config.output_layers[0]: layer \"d\" has one "
                "output"));
  // Duplicate names.
  EXPECT_THAT(
      ImportError(TinyModel(
          R"({"class_name": "Dense", "config": {"name": "x", "units": 3}, "name": "x", "inbound_nodes": [[["x", 0, 0, {}]]]})",
          R"([["x", 0, 0]])")),
      HasSubstr("config.layers[1].name | config.layers[1].name: The name \"x\" is used by "
                "layers[0] and layers[1]"));
  // A cycle: a reads b, b reads a.
  EXPECT_THAT(
      ImportError(TinyModel(
          R"({"class_name": "Add", "config": {"name": "a"}, "name": "a", "inbound_nodes": [[["x", 0, 0, {}], ["b", 0, 0, {}]]]},
                     {"class_name": "Add", "config": {"name": "b"}, "name": "b", "inbound_nodes": [[["x", 0, 0, {}], ["a", 0, 0, {}]]]})",
          R"([["b", 0, 0]])")),
      HasSubstr("config.layers[1].inbound_nodes[0] | config.layers[1].inbound_nodes[0]: "
                "the model's graph has a cycle"));
  // A shape error of a call, at the call.
  EXPECT_THAT(
      ImportError(TinyModel(
          R"({"class_name": "Conv2D", "config": {"name": "d", "filters": 2, "kernel_size": 3}, "name": "d", "inbound_nodes": [[["x", 0, 0, {}]]]})")),
      HasSubstr("expected ndim=4"));
}

TEST(KerasFilesTest, WeightShapesThatDoNotMatchAreRefusedWithTheirPath) {
  auto built = Build(ReadFixture("keras2_sequential.json"));
  ASSERT_NE(built, nullptr);
  auto file = WriteKerasFile(*built->model, v1::KERAS_FORMAT_WEIGHTS, nullptr, nullptr, nullptr);
  ASSERT_TRUE(file.ok());
  absl::StatusOr<WeightsFile> weights = ReadWeightsFile(file->bytes, 1 << 24);
  ASSERT_TRUE(weights.ok()) << weights.status();
  ASSERT_TRUE(weights->groups.count("layers/dense"));
  weights->groups["layers/dense"].values[1] = Tensor(DType::kFloat32, Shape{11});
  auto matched = MatchKerasWeights(*weights, built->keras.weight_groups, *built->model, "");
  EXPECT_EQ(FieldPathOf(matched.status()), "layers/dense/vars/1");
  EXPECT_THAT(std::string(matched.status().message()),
              HasSubstr("variable.shape=(10,), Received: value.shape=(11,)"));
  weights->groups["layers/dense"].values.pop_back();
  matched = MatchKerasWeights(*weights, built->keras.weight_groups, *built->model, "");
  EXPECT_THAT(std::string(matched.status().message()),
              HasSubstr("Layer 'dense' expected 2 variables, but received 1 variables during "
                        "loading. Expected: ['kernel', 'bias']"));
  // Too many elements for the bound: refused before allocating.
  EXPECT_EQ(ReadWeightsFile(file->bytes, 1000).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(KerasFilesTest, ArchiveHoldsKerasMembersInOrderUncompressed) {
  KerasArchive archive{"{\"keras_version\": \"3\"}", "{}", std::string(1000, 'w')};
  auto bytes = WriteKerasArchive(archive);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  // Stored members: their bytes appear as they are, in Keras's order.
  const size_t meta = bytes->find("metadata.json"), config = bytes->find("config.json"),
               weights = bytes->find("model.weights.h5");
  EXPECT_LT(meta, config);
  EXPECT_LT(config, weights);
  EXPECT_NE(bytes->find(std::string(1000, 'w')), std::string::npos);
  auto read = ReadKerasArchive(*bytes, ArchiveLimits{});
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->weights_h5, archive.weights_h5);
  EXPECT_EQ(ReadKerasArchive(*bytes, ArchiveLimits{.max_total_bytes = 100}).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(ReadKerasArchive("PK\x03\x04 damaged", ArchiveLimits{}).ok());
  // The same model gives the same archive, byte for byte.
  EXPECT_EQ(*WriteKerasArchive(archive), *bytes);
}

std::string RandomBytes(std::size_t size) {
  std::mt19937 random(7);
  std::string bytes(size, '\0');
  for (char& c : bytes) c = char(random());
  return bytes;
}

// An archive of `members` (name, bytes), deflated, as a zip tool would write a bomb.
std::string DeflatedArchive(const std::vector<std::pair<std::string, std::string>>& members) {
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* buffer = zip_source_buffer_create(nullptr, 0, 0, &error);
  zip_source_keep(buffer);
  zip_t* zip = zip_open_from_source(buffer, ZIP_TRUNCATE, &error);
  for (const auto& [name, data] : members) {
    zip_source_t* source = zip_source_buffer(zip, data.data(), data.size(), 0);
    const zip_int64_t index = zip_file_add(zip, name.c_str(), source, ZIP_FL_ENC_UTF_8);
    zip_set_file_compression(zip, zip_uint64_t(index), ZIP_CM_DEFLATE, 9);
  }
  EXPECT_EQ(zip_close(zip), 0);
  zip_stat_t stat;
  zip_stat_init(&stat);
  zip_source_stat(buffer, &stat);
  zip_source_open(buffer);
  std::string bytes(stat.size, '\0');
  zip_source_read(buffer, bytes.data(), bytes.size());
  zip_source_close(buffer);
  zip_source_free(buffer);
  return bytes;
}

// A zip bomb: 1.5 MB that inflate to 1.7 GB drove the server to 5 GB. Now inflating stops
// at the first limit it meets: the compression ratio, the bytes the archive may hold, the
// number of members.
TEST(KerasFilesTest, ArchiveLimitsStopAZipBombWhileItInflates) {
  const std::string zeros(std::size_t{64} << 20, '\0');
  const std::string bomb = DeflatedArchive({{"config.json", "{}"}, {"model.weights.h5", zeros}});
  ASSERT_LT(bomb.size(), std::size_t{1} << 20);
  absl::StatusOr<KerasArchive> read = ReadKerasArchive(bomb, ArchiveLimits{});
  EXPECT_EQ(read.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(
      std::string(read.status().message()),
      HasSubstr("model.weights.h5 is 67108864 bytes uncompressed, more than 100 times its "));
  // Within the ratio, the archive's total bound.
  const std::string random = RandomBytes(std::size_t{3} << 20);
  const std::string big = DeflatedArchive({{"config.json", "{}"}, {"model.weights.h5", random}});
  read = ReadKerasArchive(big, ArchiveLimits{.max_total_bytes = 2 << 20});
  EXPECT_EQ(read.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(read.status().message()), HasSubstr("the archive may hold"));
  EXPECT_TRUE(ReadKerasArchive(big, ArchiveLimits{}).ok());
  // Members.
  std::vector<std::pair<std::string, std::string>> many = {{"config.json", "{}"},
                                                           {"model.weights.h5", "w"}};
  for (int i = 0; i < 70; ++i) many.emplace_back(absl::StrCat("assets/", i), "a");
  read = ReadKerasArchive(DeflatedArchive(many), ArchiveLimits{});
  EXPECT_EQ(read.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(read.status().message()), HasSubstr("72 members, more than the 64"));
}

}  // namespace
}  // namespace kiln
