// Dense (keras.layers.Dense): activation(x @ kernel + bias) over the last axis. Inputs of rank
// above 2 are treated as (prod(leading dims), features) in plain layout, as Keras's matmul does.
#include "absl/strings/str_cat.h"
#include "core/base/status.h"
#include "core/dnnl/engine.h"
#include "core/dnnl/memory.h"
#include "core/dnnl/primitive.h"
#include "core/keras/args.h"
#include "core/layers/activation_kernel.h"
#include "core/layers/registry.h"

namespace kiln {
namespace {

using dnnl::prop_kind;
using tag = memory::format_tag;
using dt = memory::data_type;

class DenseOp final : public Op {
 public:
  absl::Status Init(OpContext& ctx, const Activation& activation, Variable* kernel,
                    Variable* bias) {
    arena_ = ctx.arena;
    kernel_ = kernel;
    bias_ = bias;
    input_needs_grad_ = ctx.input_needs_grad[0];
    const Shape in_shape = ShapeOf(ctx.inputs[0].get_desc());
    const int64_t features = in_shape[in_shape.rank() - 1];
    const int64_t rows = in_shape.num_elements() / features;
    const int64_t units = kernel->value.shape()[1];
    Shape out_shape = in_shape;
    out_shape[out_shape.rank() - 1] = units;

    input_plain_ = StageFrom(ctx.inputs[0], PlainDesc(in_shape), *arena_, &input_reorder_);
    src_ = View(input_plain_, memory::desc({rows, features}, dt::f32, tag::ab));
    keras_weights_md_ = memory::desc({units, features}, dt::f32, tag::ba);
    weights_any_ = memory::desc({units, features}, dt::f32, tag::any);
    dst_md_ = memory::desc({rows, units}, dt::f32, tag::ab);
    const memory::desc bias_md = bias ? memory::desc({units}, dt::f32, tag::a) : memory::desc();

    dnnl::primitive_attr attr = WithUserScratchpad();
    auto post_op = ActivationKernel::FusablePostOp(activation, ctx.backward);
    if (post_op.has_value()) {
      dnnl::post_ops ops;
      ops.append_eltwise(1.0f, post_op->algorithm, post_op->alpha, post_op->beta);
      attr.set_post_ops(ops);
    }
    const prop_kind prop =
        ctx.backward ? prop_kind::forward_training : prop_kind::forward_inference;
    const auto desc =
        bias ? dnnl::inner_product_forward::desc(prop, src_.get_desc(), weights_any_, bias_md,
                                                 dst_md_)
             : dnnl::inner_product_forward::desc(prop, src_.get_desc(), weights_any_, dst_md_);
    fwd_pd_ = dnnl::inner_product_forward::primitive_desc(desc, attr, CpuEngine());
    fwd_ = Primitive::Create<dnnl::inner_product_forward>(fwd_pd_, arena_);
    weights_ = AllocateMemory(fwd_pd_.weights_desc(), *arena_);
    weights_reorder_ = Reorder(WrapMemory(keras_weights_md_, kernel->value.raw_data()), weights_);
    if (bias) bias_mem_ = WrapMemory(bias_md, bias->value.raw_data());

    memory output = AllocateMemory(PlainDesc(out_shape), *arena_);
    outputs_ = {output};
    const bool fused = post_op.has_value();
    if (activation.is_linear() || fused) {
      dst_ = View(output, dst_md_);
      if (fused && ctx.backward) {
        KILN_ASSIGN_OR_RETURN(activation_,
                              ActivationKernel::Create(activation, output, output, true, *arena_));
      }
    } else {
      dst_ = AllocateMemory(dst_md_, *arena_);
      KILN_ASSIGN_OR_RETURN(
          activation_, ActivationKernel::Create(activation, View(dst_, output.get_desc()), output,
                                                ctx.backward, *arena_));
      run_activation_forward_ = true;
    }
    return absl::OkStatus();
  }

  void Forward(dnnl::stream& stream) override {
    if (weights_version_ != kernel_->version) {
      weights_reorder_.Run(stream);
      weights_version_ = kernel_->version;
    }
    input_reorder_.Run(stream);
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, src_}, {DNNL_ARG_WEIGHTS, weights_}, {DNNL_ARG_DST, dst_}};
    if (bias_) args[DNNL_ARG_BIAS] = bias_mem_;
    fwd_.Execute(stream, std::move(args));
    if (run_activation_forward_) activation_->Forward(stream);
  }

  absl::Status PrepareBackward(const std::vector<memory>& diff_outputs,
                               const std::vector<memory>& diff_inputs, bool accumulate) override {
    memory diff_out = diff_outputs[0];
    if (activation_) {
      memory diff_pre = AllocateMemory(diff_out.get_desc(), *arena_);
      KILN_RETURN_IF_ERROR(activation_->PrepareBackward(diff_out, diff_pre));
      diff_out = diff_pre;
    }
    diff_dst_ = View(diff_out, dst_md_);
    compute_weight_grads_ = kernel_->trainable;
    if (compute_weight_grads_) {
      const memory::desc diff_bias_md =
          bias_ ? memory::desc({dst_md_.dims()[1]}, dt::f32, tag::a) : memory::desc();
      const auto desc = bias_ ? dnnl::inner_product_backward_weights::desc(
                                    src_.get_desc(), weights_any_, diff_bias_md, dst_md_)
                              : dnnl::inner_product_backward_weights::desc(src_.get_desc(),
                                                                           weights_any_, dst_md_);
      dnnl::inner_product_backward_weights::primitive_desc pd(desc, WithUserScratchpad(),
                                                              CpuEngine(), fwd_pd_);
      bwd_weights_ = Primitive::Create<dnnl::inner_product_backward_weights>(pd, arena_);
      diff_weights_ = AllocateMemory(pd.diff_weights_desc(), *arena_);
      to_kernel_grad_ = Reorder(
          diff_weights_, WrapMemory(keras_weights_md_, kernel_->grad.raw_data()), accumulate);
      if (bias_) {
        diff_bias_ = AllocateMemory(diff_bias_md, *arena_);
        to_bias_grad_ =
            Reorder(diff_bias_, WrapMemory(diff_bias_md, bias_->grad.raw_data()), accumulate);
      }
    }
    if (input_needs_grad_ && diff_inputs[0]) {
      dnnl::inner_product_backward_data::primitive_desc pd(
          dnnl::inner_product_backward_data::desc(src_.get_desc(), weights_any_, dst_md_),
          WithUserScratchpad(), CpuEngine(), fwd_pd_);
      bwd_data_ = Primitive::Create<dnnl::inner_product_backward_data>(pd, arena_);
      bd_weights_ = StageFrom(weights_, pd.weights_desc(), *arena_, &bd_weights_reorder_);
      const Shape in_shape = ShapeOf(diff_inputs[0].get_desc());
      memory diff_in_plain =
          StageTo(diff_inputs[0], PlainDesc(in_shape), *arena_, &diff_src_reorder_);
      diff_src_ = View(diff_in_plain, src_.get_desc());
    }
    return absl::OkStatus();
  }

  void Backward(dnnl::stream& stream) override {
    if (activation_) activation_->Backward(stream);
    if (compute_weight_grads_) {
      std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src_},
                                              {DNNL_ARG_DIFF_DST, diff_dst_},
                                              {DNNL_ARG_DIFF_WEIGHTS, diff_weights_}};
      if (bias_) args[DNNL_ARG_DIFF_BIAS] = diff_bias_;
      bwd_weights_.Execute(stream, std::move(args));
      to_kernel_grad_.Run(stream);
      if (bias_) to_bias_grad_.Run(stream);
    }
    if (bwd_data_) {
      bd_weights_reorder_.Run(stream);
      bwd_data_.Execute(stream, {{DNNL_ARG_DIFF_DST, diff_dst_},
                                 {DNNL_ARG_WEIGHTS, bd_weights_},
                                 {DNNL_ARG_DIFF_SRC, diff_src_}});
      diff_src_reorder_.Run(stream);
    }
  }

 private:
  Arena* arena_ = nullptr;
  Variable* kernel_ = nullptr;
  Variable* bias_ = nullptr;
  bool input_needs_grad_ = false;
  uint64_t weights_version_ = ~uint64_t{0};
  memory::desc keras_weights_md_, weights_any_, dst_md_;
  dnnl::inner_product_forward::primitive_desc fwd_pd_;
  Primitive fwd_;
  memory input_plain_, src_, weights_, bias_mem_, dst_;
  Reorder input_reorder_, weights_reorder_;
  std::unique_ptr<ActivationKernel> activation_;
  bool run_activation_forward_ = false;

  bool compute_weight_grads_ = false;
  memory diff_dst_, diff_weights_, diff_bias_, bd_weights_, diff_src_;
  Primitive bwd_weights_, bwd_data_;
  Reorder to_kernel_grad_, to_bias_grad_, bd_weights_reorder_, diff_src_reorder_;
};

class DenseLayer final : public Layer {
 public:
  using Layer::Layer;

  absl::Status Init() override {
    units_ = args().Int("units");
    KILN_ASSIGN_OR_RETURN(activation_,
                          ParseActivation(args().String("activation"), FieldPath("activation")));
    KILN_ASSIGN_OR_RETURN(weights_, KernelAndBiasArgs("kernel"));
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<Op>> CreateOp(OpContext& context) override {
    auto op = std::make_unique<DenseOp>();
    KILN_RETURN_IF_ERROR(op->Init(context, activation_, variable("kernel"),
                                  weights_.use_bias ? variable("bias") : nullptr));
    return op;
  }

 protected:
  absl::StatusOr<std::vector<Shape>> ComputeOutputShapes(
      absl::Span<const Shape> inputs) const override {
    const Shape& input = inputs[0];
    KILN_RETURN_IF_ERROR(CheckMinRank(input, 0, 2));
    if (built()) {
      const Shape& b = built_input_shapes()[0];
      KILN_RETURN_IF_ERROR(CheckAxisValue(input, 0, -1, b[b.rank() - 1]));
    }
    Shape out = input;
    out[out.rank() - 1] = units_;
    return std::vector<Shape>{out};
  }

  absl::Status Build(absl::Span<const Shape> inputs) override {
    const int64_t features = inputs[0][inputs[0].rank() - 1];
    KILN_RETURN_IF_ERROR(AddWeight("kernel", Shape{features, units_}, weights_.kernel).status());
    if (weights_.use_bias) {
      KILN_RETURN_IF_ERROR(AddWeight("bias", Shape{units_}, weights_.bias).status());
    }
    return absl::OkStatus();
  }

 private:
  int64_t units_ = 0;
  Activation activation_;
  KernelAndBias weights_;
};

KILN_REGISTER_LAYER(kDense, DenseLayer);

}  // namespace
}  // namespace kiln
