// Engine-level throughput of TinyMobileNet - the workload of ../shared/peers/torch_bench.py:
// 32x32x3 input, Conv2D 3x3 to 32 + BN + ReLU, then [DepthwiseConv2D 3x3 + BN + ReLU +
// Conv2D 1x1 + BN + ReLU] x4 (strides 1,2,1,2; channels 64,128,128,256), GlobalAveragePooling2D,
// Dense(10) logits; SGD(0.01, momentum 0.9), sparse categorical cross-entropy from logits;
// batch 64. Prints median training-step and inference times over `--steps` after warm-up.
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/dnnl/engine.h"
#include "core/graph/graph.h"
#include "core/graph/model.h"
#include "core/graph/plan.h"
#include "core/layers/registry.h"
#include "core/train/loss.h"
#include "core/train/optimizer.h"
#include "google/protobuf/text_format.h"

ABSL_FLAG(int, threads, 0, "OpenMP threads (0: default)");
ABSL_FLAG(int, steps, 25, "timed steps");
ABSL_FLAG(int, warmup, 5, "untimed steps first");
ABSL_FLAG(int, batch, 64, "batch size");

namespace kiln {
namespace {

std::unique_ptr<Model> BuildTinyMobileNet(Graph& graph) {
  auto input = *graph.AddInput(Shape{32, 32, 3}, "image");
  TensorId x = input;
  auto apply = [&](const std::string& text) {
    v1::LayerSpec spec;
    google::protobuf::TextFormat::ParseFromString(text, &spec);
    auto layer = *graph.AddLayer(*CreateLayer(spec, 1));
    x = (*graph.Call(layer, {x}))[0];
  };
  apply("conv2d { filters: 32 kernel_size: 3 padding: \"same\" use_bias: false }");
  apply("batch_normalization { epsilon: 1e-5 momentum: 0.9 }");
  apply("relu {}");
  for (auto [cout, stride] :
       std::vector<std::pair<int, int>>{{64, 1}, {128, 2}, {128, 1}, {256, 2}}) {
    apply(
        absl::StrCat("depthwise_conv2d { kernel_size: 3 padding: \"same\" use_bias: false "
                     "strides: ",
                     stride, " }"));
    apply("batch_normalization { epsilon: 1e-5 momentum: 0.9 }");
    apply("relu {}");
    apply(absl::StrCat("conv2d { filters: ", cout, " kernel_size: 1 use_bias: false }"));
    apply("batch_normalization { epsilon: 1e-5 momentum: 0.9 }");
    apply("relu {}");
  }
  apply("global_average_pooling2d {}");
  apply("dense { units: 10 }");
  return *Model::Create(graph, {input}, {x}, "tiny_mobilenet");
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace
}  // namespace kiln

int main(int argc, char** argv) {
  using namespace kiln;
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_threads) > 0) omp_set_num_threads(absl::GetFlag(FLAGS_threads));
  const int batch = absl::GetFlag(FLAGS_batch);
  Graph graph;
  std::unique_ptr<Model> model = BuildTinyMobileNet(graph);
  v1::Loss loss_spec;
  loss_spec.set_name("sparse_categorical_crossentropy");
  loss_spec.set_from_logits(true);
  const LossFunction loss = *ResolveLoss(loss_spec, "loss");
  v1::Optimizer opt_spec;
  opt_spec.mutable_sgd()->set_learning_rate(0.01f);
  opt_spec.mutable_sgd()->set_momentum(0.9f);
  std::unique_ptr<Optimizer> optimizer = *Optimizer::Create(opt_spec, "optimizer");
  std::vector<Variable*> variables;
  for (Layer* layer : model->layers()) {
    for (const auto& v : layer->variables()) {
      if (v->trainable) variables.push_back(v.get());
    }
  }
  std::mt19937 gen(0);
  std::normal_distribution<float> normal;
  std::vector<float> labels(batch);
  for (float& l : labels) l = float(gen() % 10);
  dnnl::stream stream = NewStream();

  ExecutionPlan* train = *model->GetPlan(batch, true);
  for (int i = 0; i < batch * 32 * 32 * 3; ++i) train->input_data(0)[i] = normal(gen);
  std::vector<double> train_ms;
  for (int step = 0; step < absl::GetFlag(FLAGS_warmup) + absl::GetFlag(FLAGS_steps); ++step) {
    const absl::Time start = absl::Now();
    train->Forward(stream);
    loss.Compute(train->output_data(0), labels.data(), train->output_shape(0),
                 train->output_grad_data(0));
    train->Backward(stream);
    optimizer->Apply(variables);
    if (step >= absl::GetFlag(FLAGS_warmup)) {
      train_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
    }
  }
  ExecutionPlan* infer = *model->GetPlan(batch, false);
  std::copy_n(train->input_data(0), batch * 32 * 32 * 3, infer->input_data(0));
  std::vector<double> infer_ms;
  for (int step = 0; step < absl::GetFlag(FLAGS_warmup) + absl::GetFlag(FLAGS_steps); ++step) {
    const absl::Time start = absl::Now();
    infer->Forward(stream);
    if (step >= absl::GetFlag(FLAGS_warmup)) {
      infer_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
    }
  }
  const double t = Median(train_ms), i = Median(infer_ms);
  std::printf(
      "{\"params\": %lld, \"threads\": %d, \"batch\": %d, \"train_step_ms\": %.3f, "
      "\"train_img_s\": %.1f, \"infer_ms\": %.3f, \"infer_img_s\": %.1f}\n",
      (long long)model->CountParams(), omp_get_max_threads(), batch, t, batch / t * 1e3, i,
      batch / i * 1e3);
  return 0;
}
