#include "core/layers/convolution_op.h"

#include <cmath>

#include "core/base/status.h"
#include "core/dnnl/engine.h"
#include "core/dnnl/memory.h"
#include "core/dnnl/primitive.h"
#include "core/layers/activation_kernel.h"

namespace kiln {
namespace {

using dnnl::algorithm;
using dnnl::prop_kind;
using tag = memory::format_tag;
using dt = memory::data_type;

int ChannelAxis(DataFormat format) { return format == DataFormat::kChannelsLast ? 3 : 1; }

class ConvolutionOp : public Op {
 public:
  absl::Status Init(OpContext& ctx, const ConvolutionConfig& config, Variable* kernel,
                    Variable* bias);
  void Forward(dnnl::stream& stream) override;
  absl::Status PrepareBackward(const std::vector<memory>& diff_outputs,
                               const std::vector<memory>& diff_inputs,
                               bool accumulate_weight_grads) override;
  void Backward(dnnl::stream& stream) override;

 private:
  void RefreshWeights(dnnl::stream& stream);
  // The sum of the versions of every variable the primitive's weights derive from.
  uint64_t SourceVersion() const;
  // folded_kernel_/folded_bias_ = kernel/bias with the epilogue's normalization applied.
  void FoldNormalization();

  Arena* arena_ = nullptr;
  int channel_axis_ = 3;
  Variable* kernel_ = nullptr;
  Variable* bias_ = nullptr;
  std::optional<Epilogue::Normalization> fold_;
  Tensor folded_kernel_, folded_bias_;  // Keras layout, when fold_ is set
  uint64_t weights_version_ = ~uint64_t{0};
  bool input_needs_grad_ = false;

  memory::desc src_any_, weights_any_, dst_any_;
  memory::dims strides_, dilates_, pad_l_, pad_r_;

  dnnl::convolution_forward::primitive_desc fwd_pd_;
  Primitive fwd_;
  memory keras_weights_;  // view of kernel_->value
  memory weights_;        // fwd_pd_'s layout
  Reorder weights_reorder_;
  memory bias_mem_;
  memory input_view_;  // (N, C, H, W) view of the input
  memory src_;         // input in fwd_pd_'s layout
  Reorder src_reorder_;
  memory conv_dst_;  // what the primitive writes: pre-activation, or the output when fused
  Activation activation_;
  std::unique_ptr<ActivationKernel> activation_kernel_;
  bool activation_fused_ = false;

  // Backward.
  memory diff_conv_dst_;  // gradient at the primitive's output (after activation backward)
  Primitive bwd_weights_;
  memory bw_src_, bw_diff_dst_, diff_weights_, diff_bias_;
  Reorder bw_src_reorder_, bw_diff_dst_reorder_, diff_weights_to_grad_, diff_bias_to_grad_;
  Primitive bwd_data_;
  memory bd_weights_, bd_diff_dst_, bd_diff_src_;
  Reorder bd_weights_reorder_, bd_diff_dst_reorder_, bd_diff_src_reorder_;
  bool compute_weight_grads_ = false;
};

absl::Status ConvolutionOp::Init(OpContext& ctx, const ConvolutionConfig& config, Variable* kernel,
                                 Variable* bias) {
  arena_ = ctx.arena;
  kernel_ = kernel;
  bias_ = bias;
  channel_axis_ = ChannelAxis(config.data_format);
  activation_ = config.epilogue.activation.value_or(config.activation);
  fold_ = config.epilogue.normalization;
  input_needs_grad_ = ctx.input_needs_grad[0];

  const memory& input = ctx.inputs[0];
  input_view_ = View(input, ChannelsSecondView(input.get_desc(), channel_axis_));
  const memory::dims in = input_view_.get_desc().dims();  // N, C, H, W
  const Shape& ks = config.grouped_kernel_shape;          // kh, kw, C/G, O
  const int64_t out_channels = ks[3];
  memory::dims out = {in[0], out_channels, 0, 0};
  pad_l_ = {0, 0};
  pad_r_ = {0, 0};
  for (int i = 0; i < 2; ++i) {
    out[2 + i] = ConvOutputLength(in[2 + i], config.kernel_size[i], config.strides[i],
                                  config.dilation_rate[i], config.padding);
    const auto pads = SamePadding(in[2 + i], config.kernel_size[i], config.strides[i],
                                  config.dilation_rate[i], config.padding);
    pad_l_[i] = pads[0];
    pad_r_[i] = pads[1];
  }
  strides_ = {config.strides[0], config.strides[1]};
  dilates_ = {config.dilation_rate[0] - 1, config.dilation_rate[1] - 1};  // oneDNN: 0 = dense

  const memory::desc keras_weights_md = KerasKernelDesc(ks, config.groups);
  src_any_ = memory::desc(in, dt::f32, tag::any);
  weights_any_ = memory::desc(keras_weights_md.dims(), dt::f32, tag::any);
  dst_any_ = memory::desc(out, dt::f32, tag::any);
  const bool has_bias = bias != nullptr || fold_.has_value();
  const memory::desc bias_md =
      has_bias ? memory::desc({out_channels}, dt::f32, tag::a) : memory::desc();

  const prop_kind prop = ctx.backward ? prop_kind::forward_training : prop_kind::forward_inference;
  dnnl::primitive_attr attr = WithUserScratchpad();
  std::optional<ActivationKernel::PostOp> post_op =
      ActivationKernel::FusablePostOp(activation_, ctx.backward);
  if (post_op.has_value()) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.0f, post_op->algorithm, post_op->alpha, post_op->beta);
    attr.set_post_ops(ops);
    activation_fused_ = true;
  }
  // Candidates: the layout the input already has (no reorder per step), first as asked, then
  // as forward_training - oneDNN 2.6 has its blocked depthwise kernel only for that prop kind,
  // which for a convolution computes the same without any workspace; finally format_tag::any.
  // Plain NCHW input skips to the last: oneDNN has only im2col for it.
  const memory::desc input_md = input_view_.get_desc();
  const bool try_input_layout = input_md != memory::desc(in, dt::f32, tag::nchw);
  fwd_pd_ = ChoosePrimitiveDesc<dnnl::convolution_forward::primitive_desc>(
      [&](int attempt) {
        const bool last = attempt == 2 || !try_input_layout;
        const memory::desc& src = last ? src_any_ : input_md;
        const prop_kind p = attempt == 1 ? prop_kind::forward_training : prop;
        const auto desc = has_bias ? dnnl::convolution_forward::desc(
                                         p, algorithm::convolution_direct, src, weights_any_,
                                         bias_md, dst_any_, strides_, dilates_, pad_l_, pad_r_)
                                   : dnnl::convolution_forward::desc(
                                         p, algorithm::convolution_direct, src, weights_any_,
                                         dst_any_, strides_, dilates_, pad_l_, pad_r_);
        return dnnl::convolution_forward::primitive_desc(desc, attr, CpuEngine());
      },
      try_input_layout ? 3 : 1);
  fwd_ = Primitive::Create<dnnl::convolution_forward>(fwd_pd_, arena_);

  if (fold_.has_value()) {
    folded_kernel_ = Tensor(DType::kFloat32, kernel->value.shape());
    folded_bias_ = Tensor(DType::kFloat32, Shape{out_channels});
    keras_weights_ = WrapMemory(keras_weights_md, folded_kernel_.raw_data());
    bias_mem_ = WrapMemory(bias_md, folded_bias_.raw_data());
  } else {
    keras_weights_ = WrapMemory(keras_weights_md, kernel->value.raw_data());
    if (bias) bias_mem_ = WrapMemory(bias_md, bias->value.raw_data());
  }
  weights_ = AllocateMemory(fwd_pd_.weights_desc(), *arena_);
  weights_reorder_ = Reorder(keras_weights_, weights_);
  src_ = StageFrom(input_view_, fwd_pd_.src_desc(), *arena_, &src_reorder_);

  // Output in the primitive's layout, presented over Keras dims.
  const memory::desc dst_md = fwd_pd_.dst_desc();
  memory output = AllocateMemory(dst_md, *arena_);
  outputs_ = {View(output, ChannelsBackView(dst_md, channel_axis_))};
  if (activation_.is_linear() || activation_fused_) {
    conv_dst_ = output;
    if (activation_fused_ && ctx.backward) {
      // Backward-only kernel: the post-op already applied the function; its derivative is
      // computed from the output.
      KILN_ASSIGN_OR_RETURN(
          activation_kernel_,
          ActivationKernel::Create(activation_, outputs_[0], outputs_[0], true, *arena_));
    }
  } else {
    conv_dst_ = AllocateMemory(dst_md, *arena_);
    const memory pre = View(conv_dst_, outputs_[0].get_desc());
    KILN_ASSIGN_OR_RETURN(
        activation_kernel_,
        ActivationKernel::Create(activation_, pre, outputs_[0], ctx.backward, *arena_));
  }
  return absl::OkStatus();
}

uint64_t ConvolutionOp::SourceVersion() const {
  uint64_t version = kernel_->version + (bias_ ? bias_->version : 0);
  if (fold_.has_value()) {
    for (const Variable* v : {fold_->gamma, fold_->beta, fold_->mean, fold_->variance}) {
      if (v != nullptr) version += v->version;
    }
  }
  return version;
}

void ConvolutionOp::FoldNormalization() {
  const int64_t out = folded_bias_.num_elements();
  std::vector<float> scale(out);
  for (int64_t o = 0; o < out; ++o) {
    const float gamma = fold_->gamma ? fold_->gamma->value.data<float>()[o] : 1.0f;
    scale[o] = gamma / std::sqrt(fold_->variance->value.data<float>()[o] + fold_->epsilon);
    const float bias = bias_ ? bias_->value.data<float>()[o] : 0.0f;
    const float beta = fold_->beta ? fold_->beta->value.data<float>()[o] : 0.0f;
    folded_bias_.data<float>()[o] = (bias - fold_->mean->value.data<float>()[o]) * scale[o] + beta;
  }
  // Keras kernels keep the output channel last.
  const float* k = kernel_->value.data<float>();
  float* f = folded_kernel_.data<float>();
  const int64_t n = folded_kernel_.num_elements();
  for (int64_t i = 0; i < n; ++i) f[i] = k[i] * scale[i % out];
}

void ConvolutionOp::RefreshWeights(dnnl::stream& stream) {
  const uint64_t version = SourceVersion();
  if (weights_version_ == version) return;
  if (fold_.has_value()) FoldNormalization();
  weights_reorder_.Run(stream);
  weights_version_ = version;
}

void ConvolutionOp::Forward(dnnl::stream& stream) {
  RefreshWeights(stream);
  src_reorder_.Run(stream);
  std::unordered_map<int, memory> args = {
      {DNNL_ARG_SRC, src_}, {DNNL_ARG_WEIGHTS, weights_}, {DNNL_ARG_DST, conv_dst_}};
  if (bias_mem_) args[DNNL_ARG_BIAS] = bias_mem_;
  fwd_.Execute(stream, std::move(args));
  if (activation_kernel_ && !activation_fused_) activation_kernel_->Forward(stream);
}

absl::Status ConvolutionOp::PrepareBackward(const std::vector<memory>& diff_outputs,
                                            const std::vector<memory>& diff_inputs,
                                            bool accumulate_weight_grads) {
  const memory& diff_out = diff_outputs[0];  // Keras dims, output's layout
  if (activation_kernel_) {
    memory diff_pre = View(AllocateMemory(fwd_pd_.dst_desc(), *arena_), diff_out.get_desc());
    KILN_RETURN_IF_ERROR(activation_kernel_->PrepareBackward(diff_out, diff_pre));
    diff_conv_dst_ = View(diff_pre, fwd_pd_.dst_desc());
  } else {
    diff_conv_dst_ = View(diff_out, ChannelsSecondView(diff_out.get_desc(), channel_axis_));
  }

  compute_weight_grads_ = kernel_->trainable;
  if (compute_weight_grads_) {
    const memory::desc diff_bias_any =
        bias_ ? memory::desc({dst_any_.dims()[1]}, dt::f32, tag::a) : memory::desc();
    // The layouts the forward pass left its data in, if oneDNN computes well from them.
    const auto pd = ChoosePrimitiveDesc<dnnl::convolution_backward_weights::primitive_desc>(
        [&](int attempt) {
          const bool preferred = attempt == 0;
          const memory::desc src = preferred ? src_.get_desc() : src_any_;
          const memory::desc diff_dst = preferred ? diff_conv_dst_.get_desc() : dst_any_;
          const auto desc = bias_ ? dnnl::convolution_backward_weights::desc(
                                        algorithm::convolution_direct, src, weights_any_,
                                        diff_bias_any, diff_dst, strides_, dilates_, pad_l_, pad_r_)
                                  : dnnl::convolution_backward_weights::desc(
                                        algorithm::convolution_direct, src, weights_any_, diff_dst,
                                        strides_, dilates_, pad_l_, pad_r_);
          return dnnl::convolution_backward_weights::primitive_desc(desc, WithUserScratchpad(),
                                                                    CpuEngine(), fwd_pd_);
        },
        2);
    bwd_weights_ = Primitive::Create<dnnl::convolution_backward_weights>(pd, arena_);
    bw_src_ = StageFrom(src_, pd.src_desc(), *arena_, &bw_src_reorder_);
    bw_diff_dst_ = StageFrom(diff_conv_dst_, pd.diff_dst_desc(), *arena_, &bw_diff_dst_reorder_);
    diff_weights_ = AllocateMemory(pd.diff_weights_desc(), *arena_);
    diff_weights_to_grad_ =
        Reorder(diff_weights_, WrapMemory(keras_weights_.get_desc(), kernel_->grad.raw_data()),
                accumulate_weight_grads);
    if (bias_) {
      diff_bias_ = AllocateMemory(pd.diff_bias_desc(), *arena_);
      diff_bias_to_grad_ =
          Reorder(diff_bias_, WrapMemory(diff_bias_.get_desc(), bias_->grad.raw_data()),
                  accumulate_weight_grads);
    }
  }

  if (input_needs_grad_ && diff_inputs[0]) {
    const memory diff_in_view =
        View(diff_inputs[0], ChannelsSecondView(diff_inputs[0].get_desc(), channel_axis_));
    const auto pd = ChoosePrimitiveDesc<dnnl::convolution_backward_data::primitive_desc>(
        [&](int attempt) {
          const bool preferred = attempt == 0;
          const memory::desc diff_src = preferred ? diff_in_view.get_desc() : src_any_;
          const memory::desc diff_dst = preferred ? diff_conv_dst_.get_desc() : dst_any_;
          return dnnl::convolution_backward_data::primitive_desc(
              dnnl::convolution_backward_data::desc(algorithm::convolution_direct, diff_src,
                                                    weights_any_, diff_dst, strides_, dilates_,
                                                    pad_l_, pad_r_),
              WithUserScratchpad(), CpuEngine(), fwd_pd_);
        },
        2);
    bwd_data_ = Primitive::Create<dnnl::convolution_backward_data>(pd, arena_);
    bd_weights_ = StageFrom(weights_, pd.weights_desc(), *arena_, &bd_weights_reorder_);
    if (bw_diff_dst_ && bw_diff_dst_.get_desc() == pd.diff_dst_desc()) {
      bd_diff_dst_ = bw_diff_dst_;  // already staged for the weights pass
    } else {
      bd_diff_dst_ = StageFrom(diff_conv_dst_, pd.diff_dst_desc(), *arena_, &bd_diff_dst_reorder_);
    }
    bd_diff_src_ = StageTo(diff_in_view, pd.diff_src_desc(), *arena_, &bd_diff_src_reorder_);
  }
  return absl::OkStatus();
}

void ConvolutionOp::Backward(dnnl::stream& stream) {
  if (activation_kernel_) activation_kernel_->Backward(stream);
  if (compute_weight_grads_) {
    bw_src_reorder_.Run(stream);
    bw_diff_dst_reorder_.Run(stream);
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, bw_src_},
                                            {DNNL_ARG_DIFF_DST, bw_diff_dst_},
                                            {DNNL_ARG_DIFF_WEIGHTS, diff_weights_}};
    if (bias_) args[DNNL_ARG_DIFF_BIAS] = diff_bias_;
    bwd_weights_.Execute(stream, std::move(args));
    diff_weights_to_grad_.Run(stream);
    if (bias_) diff_bias_to_grad_.Run(stream);
  }
  if (bwd_data_) {
    bd_weights_reorder_.Run(stream);
    bd_diff_dst_reorder_.Run(stream);
    bwd_data_.Execute(stream, {{DNNL_ARG_DIFF_DST, bd_diff_dst_},
                               {DNNL_ARG_WEIGHTS, bd_weights_},
                               {DNNL_ARG_DIFF_SRC, bd_diff_src_}});
    bd_diff_src_reorder_.Run(stream);
  }
}

}  // namespace

memory::desc KerasKernelDesc(const Shape& ks, int64_t groups) {
  const int64_t kh = ks[0], kw = ks[1], in_per_group = ks[2], out = ks[3];
  if (groups == 1) {
    return memory::desc({out, in_per_group, kh, kw}, dt::f32,
                        memory::dims{1, out, kw * in_per_group * out, in_per_group * out});
  }
  const int64_t out_per_group = out / groups;
  return memory::desc(
      {groups, out_per_group, in_per_group, kh, kw}, dt::f32,
      memory::dims{out_per_group, 1, out, kw * in_per_group * out, in_per_group * out});
}

absl::StatusOr<std::unique_ptr<Op>> CreateConvolutionOp(OpContext& context,
                                                        const ConvolutionConfig& config,
                                                        Variable* kernel, Variable* bias) {
  auto op = std::make_unique<ConvolutionOp>();
  KILN_RETURN_IF_ERROR(op->Init(context, config, kernel, bias));
  return op;
}

}  // namespace kiln
