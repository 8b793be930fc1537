// DepthwiseConv2D 3x3 "same" through Kiln's layer, next to the bare oneDNN primitives, for the
// two shapes of the baseline report: A = N32 C64 56x56 stride 1, B = N64 C32 112x112 stride 2.
//
// "Kiln" runs the layer's Op the way an execution plan does in a network: its input arrives in
// the blocked layout a preceding layer produces (nChw16c), weights are refreshed from their
// Keras-layout master copy when they change (every training step), and gradients go back to
// Keras layout. "oneDNN" runs only the primitives, on preallocated memory in the formats they
// chose (format_tag::any). Threads follow OMP_NUM_THREADS.
//
//   OMP_NUM_THREADS=2 depthwise_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only
#include <benchmark/benchmark.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "core/dnnl/engine.h"
#include "core/dnnl/memory.h"
#include "core/layers/registry.h"
#include "google/protobuf/text_format.h"

namespace kiln {
namespace {

using dnnl::algorithm;
using dnnl::prop_kind;
using tag = memory::format_tag;
using dt = memory::data_type;

struct DwShape {
  int64_t n, c, h, w, stride;
};
const DwShape kShapes[] = {{32, 64, 56, 56, 1}, {64, 32, 112, 112, 2}};

enum class Pass { kForwardInference, kForwardTraining, kBackwardData, kBackwardWeights };

void FillRandom(const memory& m) {
  float* p = static_cast<float*>(m.get_data_handle());
  const size_t n = m.get_desc().get_size() / sizeof(float);
  uint32_t state = 12345;
  for (size_t i = 0; i < n; ++i) {
    state = state * 1664525u + 1013904223u;
    p[i] = float(state >> 8) / float(1 << 24) - 0.5f;
  }
}

// Kiln: one DepthwiseConv2D layer's op, as a plan runs it.
void BM_Kiln(benchmark::State& state, DwShape s, Pass pass) {
  const bool frozen = pass == Pass::kBackwardData;  // no weight gradients: data only
  const std::string text = absl::StrCat(
      "depthwise_conv2d { kernel_size: 3 padding: \"same\" use_bias: false strides: ", s.stride,
      frozen ? " trainable: false" : "", " }");
  v1::LayerSpec spec;
  google::protobuf::TextFormat::ParseFromString(text, &spec);
  std::unique_ptr<Layer> layer = *CreateLayer(spec, 1);
  const Shape keras_in{s.n, s.h, s.w, s.c};
  if (!layer->BuildIfNeeded({keras_in.WithBatch(kUnknownDim)}).ok()) std::abort();

  Arena arena;
  const memory::desc blocked({s.n, s.c, s.h, s.w}, dt::f32, tag::nChw16c);
  memory input = AllocateMemory(ChannelsBackView(blocked, 3), arena);
  FillRandom(input);
  OpContext ctx;
  ctx.training = pass != Pass::kForwardInference;
  ctx.backward = ctx.training;
  ctx.arena = &arena;
  ctx.inputs = {input};
  ctx.input_needs_grad = {pass == Pass::kBackwardData};
  std::unique_ptr<Op> op = *layer->CreateOp(ctx);
  memory diff_out, diff_in;
  if (ctx.backward) {
    diff_out = AllocateMemory(op->outputs()[0].get_desc(), arena);
    FillRandom(diff_out);
    if (pass == Pass::kBackwardData) diff_in = AllocateMemory(input.get_desc(), arena);
    if (!op->PrepareBackward({diff_out}, {diff_in}, false).ok()) std::abort();
  }
  Variable* kernel = layer->variable("kernel");
  dnnl::stream stream = NewStream();
  op->Forward(stream);
  for (auto _ : state) {
    if (pass == Pass::kForwardTraining) {
      kernel->MarkChanged();  // an optimizer step changed the weights
      op->Forward(stream);
    } else if (pass == Pass::kForwardInference) {
      op->Forward(stream);
    } else {
      op->Backward(stream);
    }
    stream.wait();
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2e-9 * s.n * s.c * (s.h / s.stride) * (s.w / s.stride) * 9,
                         benchmark::Counter::kIsIterationInvariantRate);
}

// oneDNN: the bare primitives in their preferred formats.
void BM_OneDnn(benchmark::State& state, DwShape s, Pass pass) {
  const int64_t oh = (s.h + s.stride - 1) / s.stride, ow = (s.w + s.stride - 1) / s.stride;
  const int64_t total = std::max<int64_t>((oh - 1) * s.stride + 3 - s.h, 0);
  const memory::dims strides = {s.stride, s.stride}, dil = {0, 0}, pad_l = {total / 2, total / 2},
                     pad_r = {total - total / 2, total - total / 2};
  const memory::desc src({s.n, s.c, s.h, s.w}, dt::f32, tag::any);
  const memory::desc wei({s.c, 1, 1, 3, 3}, dt::f32, tag::any);
  const memory::desc dst({s.n, s.c, oh, ow}, dt::f32, tag::any);
  const prop_kind prop =
      pass == Pass::kForwardInference ? prop_kind::forward_inference : prop_kind::forward_training;
  dnnl::convolution_forward::primitive_desc fwd(
      dnnl::convolution_forward::desc(prop, algorithm::convolution_direct, src, wei, dst, strides,
                                      dil, pad_l, pad_r),
      CpuEngine());
  Arena arena;
  dnnl::primitive primitive;
  std::unordered_map<int, memory> args;
  if (pass == Pass::kForwardInference || pass == Pass::kForwardTraining) {
    primitive = dnnl::convolution_forward(fwd);
    args = {{DNNL_ARG_SRC, AllocateMemory(fwd.src_desc(), arena)},
            {DNNL_ARG_WEIGHTS, AllocateMemory(fwd.weights_desc(), arena)},
            {DNNL_ARG_DST, AllocateMemory(fwd.dst_desc(), arena)}};
  } else if (pass == Pass::kBackwardData) {
    dnnl::convolution_backward_data::primitive_desc pd(
        dnnl::convolution_backward_data::desc(algorithm::convolution_direct, src, wei, dst, strides,
                                              dil, pad_l, pad_r),
        CpuEngine(), fwd);
    primitive = dnnl::convolution_backward_data(pd);
    args = {{DNNL_ARG_DIFF_DST, AllocateMemory(pd.diff_dst_desc(), arena)},
            {DNNL_ARG_WEIGHTS, AllocateMemory(pd.weights_desc(), arena)},
            {DNNL_ARG_DIFF_SRC, AllocateMemory(pd.diff_src_desc(), arena)}};
  } else {
    dnnl::convolution_backward_weights::primitive_desc pd(
        dnnl::convolution_backward_weights::desc(algorithm::convolution_direct, src, wei, dst,
                                                 strides, dil, pad_l, pad_r),
        CpuEngine(), fwd);
    primitive = dnnl::convolution_backward_weights(pd);
    args = {{DNNL_ARG_SRC, AllocateMemory(pd.src_desc(), arena)},
            {DNNL_ARG_DIFF_DST, AllocateMemory(pd.diff_dst_desc(), arena)},
            {DNNL_ARG_DIFF_WEIGHTS, AllocateMemory(pd.diff_weights_desc(), arena)}};
  }
  for (auto& [arg, m] : args) FillRandom(m);
  dnnl::stream stream = NewStream();
  primitive.execute(stream, args);
  for (auto _ : state) {
    primitive.execute(stream, args);
    stream.wait();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2e-9 * s.n * s.c * oh * ow * 9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

void RegisterAll() {
  const std::pair<Pass, const char*> passes[] = {{Pass::kForwardInference, "fwd_inference"},
                                                 {Pass::kForwardTraining, "fwd_training"},
                                                 {Pass::kBackwardData, "bwd_data"},
                                                 {Pass::kBackwardWeights, "bwd_weights"}};
  for (const DwShape& s : kShapes) {
    const std::string shape = s.stride == 1 ? "A_N32_C64_56x56_s1" : "B_N64_C32_112x112_s2";
    for (auto [pass, name] : passes) {
      benchmark::RegisterBenchmark(absl::StrCat("kiln/", shape, "/", name).c_str(), BM_Kiln, s,
                                   pass)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
      benchmark::RegisterBenchmark(absl::StrCat("onednn/", shape, "/", name).c_str(), BM_OneDnn, s,
                                   pass)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    }
  }
}

}  // namespace
}  // namespace kiln

int main(int argc, char** argv) {
  kiln::RegisterAll();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
