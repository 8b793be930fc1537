// Trains a MobileNet-style classifier (Conv2D stem, DepthwiseConv2D + BatchNormalization + ReLU
// blocks with pointwise Conv2D, GlobalAveragePooling2D, Dense) on Fashion-MNIST through the
// engine directly, printing Keras-style epoch logs, throughput and test accuracy.
//
//   train_fashion_mnist --epochs=3 --batch_size=64 --train_samples=60000
#include <omp.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/graph/graph.h"
#include "core/graph/model.h"
#include "core/io/builtin_datasets.h"
#include "core/layers/registry.h"
#include "core/train/trainer.h"
#include "google/protobuf/text_format.h"

ABSL_FLAG(int, epochs, 3, "training epochs");
ABSL_FLAG(int, batch_size, 64, "batch size");
ABSL_FLAG(int64_t, train_samples, 60000, "training images to use (from the start of the set)");
ABSL_FLAG(int, threads, 0, "OpenMP threads (0: the default)");
ABSL_FLAG(double, learning_rate, 0.002, "Adam learning rate");
ABSL_FLAG(int64_t, seed, 1, "seed for weights, shuffling and dropout");

namespace {

// The layer cards of the model, in protobuf text format, applied one after another.
const char* const kLayers[] = {
    R"(conv2d { filters: 32 kernel_size: 3 padding: "same" use_bias: false })",
    R"(batch_normalization {})",
    R"(relu {})",
    R"(depthwise_conv2d { kernel_size: 3 padding: "same" use_bias: false })",
    R"(batch_normalization {})",
    R"(relu {})",
    R"(conv2d { filters: 64 kernel_size: 1 use_bias: false })",
    R"(batch_normalization {})",
    R"(relu {})",
    R"(depthwise_conv2d { kernel_size: 3 strides: 2 padding: "same" use_bias: false })",
    R"(batch_normalization {})",
    R"(relu {})",
    R"(conv2d { filters: 128 kernel_size: 1 use_bias: false })",
    R"(batch_normalization {})",
    R"(relu {})",
    R"(depthwise_conv2d { kernel_size: 3 strides: 2 padding: "same" use_bias: false })",
    R"(batch_normalization {})",
    R"(relu {})",
    R"(conv2d { filters: 128 kernel_size: 1 use_bias: false })",
    R"(batch_normalization {})",
    R"(relu {})",
    R"(global_average_pooling2d {})",
    R"(dropout { rate: 0.2 })",
    R"(dense { units: 10 activation: "softmax" })",
};

class PrintProgress : public kiln::TrainingCallback {
 public:
  void OnEpochEnd(int epoch, const kiln::Logs& logs) override {
    std::string line = absl::StrCat("epoch ", epoch + 1, ":");
    for (const auto& [name, value] : logs) absl::StrAppend(&line, " ", name, "=", value);
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  }
};

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "error: %s\n", std::string(status.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_threads) > 0) omp_set_num_threads(absl::GetFlag(FLAGS_threads));
  const uint64_t seed = absl::GetFlag(FLAGS_seed);

  auto train = kiln::LoadFashionMnist("train");
  if (!train.ok()) return Fail(train.status());
  auto test = kiln::LoadFashionMnist("test");
  if (!test.ok()) return Fail(test.status());
  const int64_t n = std::min<int64_t>(absl::GetFlag(FLAGS_train_samples), train->size());
  kiln::Dataset train_data = train->Slice(0, n);

  kiln::Graph graph;
  auto input = graph.AddInput(kiln::Shape{28, 28, 1}, "image");
  if (!input.ok()) return Fail(input.status());
  kiln::TensorId x = *input;
  for (size_t i = 0; i < std::size(kLayers); ++i) {
    kiln::v1::LayerSpec spec;
    if (!google::protobuf::TextFormat::ParseFromString(kLayers[i], &spec)) {
      return Fail(absl::InternalError(absl::StrCat("bad layer text: ", kLayers[i])));
    }
    auto layer = kiln::CreateLayer(spec, seed * 1000 + i);
    if (!layer.ok()) return Fail(layer.status());
    auto added = graph.AddLayer(std::move(*layer));
    if (!added.ok()) return Fail(added.status());
    auto out = graph.Call(*added, {x});
    if (!out.ok()) return Fail(out.status());
    x = (*out)[0];
  }
  auto model = kiln::Model::Create(graph, {*input}, {x}, "tiny_mobilenet");
  if (!model.ok()) return Fail(model.status());
  std::printf("model: %zu layers, %lld parameters; training on %lld images\n",
              (*model)->layers().size(), (long long)(*model)->CountParams(), (long long)n);

  kiln::Trainer trainer(model->get());
  kiln::v1::CompileConfig compile;
  compile.mutable_optimizer()->mutable_adam()->set_learning_rate(
      float(absl::GetFlag(FLAGS_learning_rate)));
  compile.mutable_loss()->set_name("sparse_categorical_crossentropy");
  compile.add_metrics("accuracy");
  if (absl::Status s = trainer.Compile(compile); !s.ok()) return Fail(s);

  kiln::v1::FitConfig fit;
  fit.set_epochs(absl::GetFlag(FLAGS_epochs));
  fit.set_batch_size(absl::GetFlag(FLAGS_batch_size));
  fit.set_seed(int64_t(seed));
  PrintProgress progress;
  const absl::Time start = absl::Now();
  auto history = trainer.Fit(train_data, fit, &progress);
  if (!history.ok()) return Fail(history.status());
  const double train_seconds = absl::ToDoubleSeconds(absl::Now() - start);

  kiln::v1::EvaluateConfig evaluate;
  evaluate.set_batch_size(256);
  const absl::Time eval_start = absl::Now();
  auto logs = trainer.Evaluate(*test, evaluate);
  if (!logs.ok()) return Fail(logs.status());
  const double eval_seconds = absl::ToDoubleSeconds(absl::Now() - eval_start);
  std::printf("training: %.1f s, %.0f images/s\n", train_seconds,
              double(n) * fit.epochs() / train_seconds);
  std::printf("test (10000 images, %.1f s): loss=%.4f accuracy=%.4f\n", eval_seconds,
              (*logs)[0].second, (*logs)[1].second);
  return 0;
}
