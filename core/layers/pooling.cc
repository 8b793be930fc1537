// MaxPooling2D, AveragePooling2D and GlobalAveragePooling2D (keras.layers). "same" padding is
// split TF-style; padded pixels never win a max and are not counted in an average, as in Keras.
#include "absl/strings/str_cat.h"
#include "core/base/status.h"
#include "core/dnnl/engine.h"
#include "core/dnnl/memory.h"
#include "core/dnnl/primitive.h"
#include "core/keras/args.h"
#include "core/layers/conv_args.h"
#include "core/layers/registry.h"

namespace kiln {
namespace {

using dnnl::algorithm;
using dnnl::prop_kind;
using tag = memory::format_tag;
using dt = memory::data_type;

// The layer's arguments (set from its spec).
struct PoolConfig {
  algorithm alg = algorithm::pooling_max;
  std::array<int, 2> pool_size = {};
  std::array<int, 2> strides = {};
  Padding padding = Padding::kValid;
  DataFormat data_format = DataFormat::kChannelsLast;
  bool global = false;    // GlobalAveragePooling2D: the window is the whole image
  bool keepdims = false;  // GlobalAveragePooling2D only
};

class PoolingOp final : public Op {
 public:
  absl::Status Init(OpContext& ctx, const PoolConfig& config) {
    arena_ = ctx.arena;
    input_needs_grad_ = ctx.input_needs_grad[0];
    channel_axis_ = ChannelAxisOf(config.data_format);
    src_ = View(ctx.inputs[0], ChannelsSecondView(ctx.inputs[0].get_desc(), channel_axis_));
    const memory::dims in = src_.get_desc().dims();
    memory::dims out = {in[0], in[1], 1, 1};
    kernel_ = {in[2], in[3]};
    strides_ = {1, 1};
    pad_l_ = {0, 0};
    pad_r_ = {0, 0};
    if (!config.global) {
      for (int i = 0; i < 2; ++i) {
        kernel_[i] = config.pool_size[i];
        strides_[i] = config.strides[i];
        out[2 + i] =
            ConvOutputLength(in[2 + i], config.pool_size[i], config.strides[i], 1, config.padding);
        const auto pads =
            SamePadding(in[2 + i], config.pool_size[i], config.strides[i], 1, config.padding);
        pad_l_[i] = pads[0];
        pad_r_[i] = pads[1];
      }
    }
    alg_ = config.alg;
    global_ = config.global;
    dst_any_ = memory::desc(out, dt::f32, tag::any);
    const prop_kind prop =
        ctx.backward ? prop_kind::forward_training : prop_kind::forward_inference;
    fwd_pd_ = dnnl::pooling_forward::primitive_desc(
        dnnl::pooling_forward::desc(prop, alg_, src_.get_desc(), dst_any_, strides_, kernel_,
                                    pad_l_, pad_r_),
        WithUserScratchpad(), CpuEngine());
    fwd_ = Primitive::Create<dnnl::pooling_forward>(fwd_pd_, arena_);
    dst_ = AllocateMemory(fwd_pd_.dst_desc(), *arena_);
    if (ctx.backward && alg_ == algorithm::pooling_max) {
      workspace_ = AllocateMemory(fwd_pd_.workspace_desc(), *arena_);
    }
    if (config.global) {
      // (N, C, 1, 1) in any layout -> the Keras output, plain (N, C) or (N, 1, 1, C)/(N, C, 1, 1).
      const int64_t n = in[0], c = in[1];
      const Shape keras_out = !config.keepdims                                  ? Shape{n, c}
                              : config.data_format == DataFormat::kChannelsLast ? Shape{n, 1, 1, c}
                                                                                : Shape{n, c, 1, 1};
      memory output = AllocateMemory(PlainDesc(keras_out), *arena_);
      // Plain (N, C, 1, 1) has the same bytes as every one of those shapes.
      to_output_ = Reorder(dst_, View(output, memory::desc(out, dt::f32, tag::abcd)));
      outputs_ = {output};
    } else {
      outputs_ = {View(dst_, ChannelsBackView(fwd_pd_.dst_desc(), channel_axis_))};
    }
    return absl::OkStatus();
  }

  void Forward(dnnl::stream& stream) override {
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src_}, {DNNL_ARG_DST, dst_}};
    if (workspace_) args[DNNL_ARG_WORKSPACE] = workspace_;
    fwd_.Execute(stream, std::move(args));
    to_output_.Run(stream);
  }

  absl::Status PrepareBackward(const std::vector<memory>& diff_outputs,
                               const std::vector<memory>& diff_inputs, bool) override {
    if (!input_needs_grad_ || !diff_inputs[0]) return absl::OkStatus();
    memory diff_in_view =
        View(diff_inputs[0], ChannelsSecondView(diff_inputs[0].get_desc(), channel_axis_));
    dnnl::pooling_backward::primitive_desc pd(
        dnnl::pooling_backward::desc(alg_, diff_in_view.get_desc(), dst_any_, strides_, kernel_,
                                     pad_l_, pad_r_),
        WithUserScratchpad(), CpuEngine(), fwd_pd_);
    bwd_ = Primitive::Create<dnnl::pooling_backward>(pd, arena_);
    // The gradient arrives over the Keras output dims; global pooling's output is the plain
    // (N, C, 1, 1) bytes.
    memory diff_out_view =
        global_
            ? View(diff_outputs[0], memory::desc(dst_.get_desc().dims(), dt::f32, tag::abcd))
            : View(diff_outputs[0], ChannelsSecondView(diff_outputs[0].get_desc(), channel_axis_));
    diff_dst_ = StageFrom(diff_out_view, pd.diff_dst_desc(), *arena_, &diff_dst_reorder_);
    diff_src_ = StageTo(diff_in_view, pd.diff_src_desc(), *arena_, &diff_src_reorder_);
    return absl::OkStatus();
  }

  void Backward(dnnl::stream& stream) override {
    if (!bwd_) return;
    diff_dst_reorder_.Run(stream);
    std::unordered_map<int, memory> args = {{DNNL_ARG_DIFF_DST, diff_dst_},
                                            {DNNL_ARG_DIFF_SRC, diff_src_}};
    if (workspace_) args[DNNL_ARG_WORKSPACE] = workspace_;
    bwd_.Execute(stream, std::move(args));
    diff_src_reorder_.Run(stream);
  }

 private:
  Arena* arena_ = nullptr;
  bool input_needs_grad_ = false;
  bool global_ = false;
  int channel_axis_ = 3;
  algorithm alg_ = algorithm::pooling_max;
  memory::dims kernel_, strides_, pad_l_, pad_r_;
  memory::desc dst_any_;
  dnnl::pooling_forward::primitive_desc fwd_pd_;
  Primitive fwd_;
  memory src_, dst_, workspace_;
  Reorder to_output_;
  Primitive bwd_;
  memory diff_dst_, diff_src_;
  Reorder diff_dst_reorder_, diff_src_reorder_;
};

// MaxPooling2D, AveragePooling2D and GlobalAveragePooling2D: one class, told apart by the
// spec's case.
class PoolingLayer final : public Layer {
 public:
  using Layer::Layer;

  absl::Status Init() override {
    config_.data_format = ParseDataFormat(args().String("data_format"));
    switch (spec().layer_case()) {
      case v1::LayerSpec::kMaxPooling2D:
        config_.alg = algorithm::pooling_max;
        break;
      case v1::LayerSpec::kAveragePooling2D:
        config_.alg = algorithm::pooling_avg_exclude_padding;
        break;
      default:  // kGlobalAveragePooling2D
        config_.alg = algorithm::pooling_avg_exclude_padding;
        config_.global = true;
        config_.keepdims = args().Bool("keepdims");
        return absl::OkStatus();
    }
    config_.pool_size = *args().Pair("pool_size");
    config_.strides = args().Pair("strides").value_or(config_.pool_size);
    config_.padding = ParsePadding(args().String("padding"));
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<Op>> CreateOp(OpContext& context) override {
    auto op = std::make_unique<PoolingOp>();
    KILN_RETURN_IF_ERROR(op->Init(context, config_));
    return op;
  }

 protected:
  absl::StatusOr<std::vector<Shape>> ComputeOutputShapes(
      absl::Span<const Shape> inputs) const override {
    const Shape& input = inputs[0];
    KILN_RETURN_IF_ERROR(CheckRank(input, 0, 4));
    const bool last = config_.data_format == DataFormat::kChannelsLast;
    const int64_t channels = input[last ? 3 : 1];
    if (config_.global) {
      if (!config_.keepdims) return std::vector<Shape>{Shape{input[0], channels}};
      return std::vector<Shape>{last ? Shape{input[0], 1, 1, channels}
                                     : Shape{input[0], channels, 1, 1}};
    }
    const int h_axis = last ? 1 : 2;
    int64_t spatial[2];
    for (int i = 0; i < 2; ++i) {
      spatial[i] = ConvOutputLength(input[h_axis + i], config_.pool_size[i], config_.strides[i], 1,
                                    config_.padding);
      if (spatial[i] <= 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "Computed output size would be negative. Received: `inputs.shape=", input.ToString(),
            "` and `pool_size=", PairRepr(config_.pool_size), "`. (layer \"", name(), "\")"));
      }
    }
    return std::vector<Shape>{last ? Shape{input[0], spatial[0], spatial[1], channels}
                                   : Shape{input[0], channels, spatial[0], spatial[1]}};
  }

 private:
  PoolConfig config_;
};

KILN_REGISTER_LAYER(kMaxPooling2D, PoolingLayer);
KILN_REGISTER_LAYER(kAveragePooling2D, PoolingLayer);
KILN_REGISTER_LAYER(kGlobalAveragePooling2D, PoolingLayer);

}  // namespace
}  // namespace kiln
