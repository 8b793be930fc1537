// BatchNormalization (keras.layers.BatchNormalization), Keras 3 semantics: in training, normalise
// with the batch's mean and biased variance and update
//   moving = moving * momentum + batch_stat * (1 - momentum);
// in inference - or when the layer is not trainable - normalise with the moving statistics.
#include "absl/strings/str_cat.h"
#include "core/base/status.h"
#include "core/dnnl/engine.h"
#include "core/dnnl/memory.h"
#include "core/dnnl/primitive.h"
#include "core/keras/args.h"
#include "core/keras/constraints.h"
#include "core/keras/initializers.h"
#include "core/keras/regularizers.h"
#include "core/layers/registry.h"

namespace kiln {
namespace {

using dnnl::normalization_flags;
using dnnl::prop_kind;
using tag = memory::format_tag;
using dt = memory::data_type;

// The layer's arguments (set from its spec).
struct BatchNormConfig {
  int axis = 0;
  float momentum = 0;
  float epsilon = 0;
};

class BatchNormOp final : public Op {
 public:
  absl::Status Init(OpContext& ctx, const BatchNormConfig& config, Variable* gamma, Variable* beta,
                    Variable* moving_mean, Variable* moving_variance, bool use_batch_stats) {
    arena_ = ctx.arena;
    gamma_ = gamma;
    beta_ = beta;
    moving_mean_ = moving_mean;
    moving_variance_ = moving_variance;
    momentum_ = config.momentum;
    use_batch_stats_ = use_batch_stats;
    epsilon_ = config.epsilon;
    input_needs_grad_ = ctx.input_needs_grad[0];

    const memory::desc in_md = ctx.inputs[0].get_desc();
    axis_ = NormalizeAxis(config.axis, in_md.data.ndims);
    src_ = View(ctx.inputs[0], ChannelsSecondView(in_md, axis_));
    flags_ = normalization_flags::none;
    if (gamma) flags_ |= normalization_flags::use_scale;
    if (beta) flags_ |= normalization_flags::use_shift;
    if (!use_batch_stats) flags_ |= normalization_flags::use_global_stats;
    // Batch statistics need forward_training: forward_inference does not output them.
    const prop_kind prop = ctx.backward || use_batch_stats ? prop_kind::forward_training
                                                           : prop_kind::forward_inference;
    fwd_pd_ = dnnl::batch_normalization_forward::primitive_desc(
        dnnl::batch_normalization_forward::desc(prop, src_.get_desc(), epsilon_, flags_),
        WithUserScratchpad(), CpuEngine());
    fwd_ = Primitive::Create<dnnl::batch_normalization_forward>(fwd_pd_, arena_);

    const memory::desc stat_md({ShapeOf(src_.get_desc())[1]}, dt::f32, tag::a);
    if (use_batch_stats) {
      mean_ = AllocateMemory(stat_md, *arena_);
      variance_ = AllocateMemory(stat_md, *arena_);
    } else {
      mean_ = WrapMemory(stat_md, moving_mean->value.raw_data());
      variance_ = WrapMemory(stat_md, moving_variance->value.raw_data());
    }
    if (gamma) scale_ = WrapMemory(stat_md, gamma->value.raw_data());
    if (beta) shift_ = WrapMemory(stat_md, beta->value.raw_data());
    memory dst = AllocateMemory(fwd_pd_.dst_desc(), *arena_);
    dst_ = dst;
    outputs_ = {View(dst, ChannelsBackView(fwd_pd_.dst_desc(), axis_))};
    return absl::OkStatus();
  }

  void Forward(dnnl::stream& stream) override {
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src_},
                                            {DNNL_ARG_DST, dst_},
                                            {DNNL_ARG_MEAN, mean_},
                                            {DNNL_ARG_VARIANCE, variance_}};
    if (gamma_) args[DNNL_ARG_SCALE] = scale_;
    if (beta_) args[DNNL_ARG_SHIFT] = shift_;
    fwd_.Execute(stream, std::move(args));
    if (use_batch_stats_) {
      stream.wait();
      UpdateMovingStatistics();
    }
  }

  absl::Status PrepareBackward(const std::vector<memory>& diff_outputs,
                               const std::vector<memory>& diff_inputs, bool accumulate) override {
    const bool weight_grads = (gamma_ && gamma_->trainable) || (beta_ && beta_->trainable);
    const bool data_grad = input_needs_grad_ && diff_inputs[0];
    if (!weight_grads && !data_grad) return absl::OkStatus();
    diff_dst_ = View(diff_outputs[0], ChannelsSecondView(diff_outputs[0].get_desc(), axis_));
    // oneDNN's backward_data takes no scale or shift: a frozen layer with gamma or beta (Keras
    // passes the gradient through it in fit) runs the full backward, its weight gradients
    // going to scratch buffers.
    const prop_kind prop =
        weight_grads || gamma_ || beta_ ? prop_kind::backward : prop_kind::backward_data;
    dnnl::batch_normalization_backward::primitive_desc pd(
        dnnl::batch_normalization_backward::desc(prop, diff_dst_.get_desc(), src_.get_desc(),
                                                 epsilon_, flags_),
        WithUserScratchpad(), CpuEngine(), fwd_pd_);
    bwd_ = Primitive::Create<dnnl::batch_normalization_backward>(pd, arena_);
    if (data_grad) {
      memory view = View(diff_inputs[0], ChannelsSecondView(diff_inputs[0].get_desc(), axis_));
      diff_src_ = StageTo(view, pd.diff_src_desc(), *arena_, &diff_src_reorder_);
    } else {
      diff_src_ = AllocateMemory(pd.diff_src_desc(), *arena_);  // computed anyway, unused
    }
    const memory::desc stat_md = mean_.get_desc();
    if (gamma_ && prop == prop_kind::backward) {
      diff_scale_ = AllocateMemory(stat_md, *arena_);
      if (gamma_->trainable) {
        to_gamma_grad_ =
            Reorder(diff_scale_, WrapMemory(stat_md, gamma_->grad.raw_data()), accumulate);
      }
    }
    if (beta_ && prop == prop_kind::backward) {
      diff_shift_ = AllocateMemory(stat_md, *arena_);
      if (beta_->trainable) {
        to_beta_grad_ =
            Reorder(diff_shift_, WrapMemory(stat_md, beta_->grad.raw_data()), accumulate);
      }
    }
    return absl::OkStatus();
  }

  void Backward(dnnl::stream& stream) override {
    if (!bwd_) return;
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src_},
                                            {DNNL_ARG_MEAN, mean_},
                                            {DNNL_ARG_VARIANCE, variance_},
                                            {DNNL_ARG_DIFF_DST, diff_dst_},
                                            {DNNL_ARG_DIFF_SRC, diff_src_}};
    if (gamma_) args[DNNL_ARG_SCALE] = scale_;
    if (beta_) args[DNNL_ARG_SHIFT] = shift_;
    if (diff_scale_) args[DNNL_ARG_DIFF_SCALE] = diff_scale_;
    if (diff_shift_) args[DNNL_ARG_DIFF_SHIFT] = diff_shift_;
    bwd_.Execute(stream, std::move(args));
    diff_src_reorder_.Run(stream);
    to_gamma_grad_.Run(stream);
    to_beta_grad_.Run(stream);
  }

 private:
  void UpdateMovingStatistics() {
    const float* mean = static_cast<const float*>(mean_.get_data_handle());
    const float* variance = static_cast<const float*>(variance_.get_data_handle());
    float* moving_mean = moving_mean_->value.data<float>();
    float* moving_variance = moving_variance_->value.data<float>();
    const int64_t n = moving_mean_->value.num_elements();
    for (int64_t i = 0; i < n; ++i) {
      moving_mean[i] = moving_mean[i] * momentum_ + mean[i] * (1.0f - momentum_);
      moving_variance[i] = moving_variance[i] * momentum_ + variance[i] * (1.0f - momentum_);
    }
    moving_mean_->MarkChanged();
    moving_variance_->MarkChanged();
  }

  Arena* arena_ = nullptr;
  Variable *gamma_ = nullptr, *beta_ = nullptr, *moving_mean_ = nullptr,
           *moving_variance_ = nullptr;
  float momentum_ = 0, epsilon_ = 0;
  bool use_batch_stats_ = false, input_needs_grad_ = false;
  int axis_ = 1;
  normalization_flags flags_ = normalization_flags::none;
  dnnl::batch_normalization_forward::primitive_desc fwd_pd_;
  Primitive fwd_;
  memory src_, dst_, mean_, variance_, scale_, shift_;
  Primitive bwd_;
  memory diff_dst_, diff_src_, diff_scale_, diff_shift_;
  Reorder diff_src_reorder_, to_gamma_grad_, to_beta_grad_;
};

class BatchNormalizationLayer final : public Layer {
 public:
  using Layer::Layer;

  absl::Status Init() override {
    config_.axis = args().Int("axis");
    config_.momentum = args().Float("momentum");
    config_.epsilon = args().Float("epsilon");
    center_ = args().Bool("center");
    scale_ = args().Bool("scale");
    KILN_ASSIGN_OR_RETURN(beta_, WeightArgs("beta"));
    KILN_ASSIGN_OR_RETURN(gamma_, WeightArgs("gamma"));
    KILN_ASSIGN_OR_RETURN(moving_mean_, WeightArgs("moving_mean"));
    KILN_ASSIGN_OR_RETURN(moving_variance_, WeightArgs("moving_variance"));
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<Op>> CreateOp(OpContext& context) override {
    auto op = std::make_unique<BatchNormOp>();
    // Keras 3: a non-trainable BatchNormalization runs in inference mode even during fit.
    const bool use_batch_stats = context.training && trainable();
    KILN_RETURN_IF_ERROR(op->Init(context, config_, variable("gamma"), variable("beta"),
                                  variable("moving_mean"), variable("moving_variance"),
                                  use_batch_stats));
    return op;
  }

  std::optional<Epilogue::Normalization> AsFoldedNormalization(int channel_axis,
                                                               bool training) const override {
    // Only inference-mode normalization is an affine map of fixed statistics.
    if ((training && trainable()) || !built()) return std::nullopt;
    const int rank = built_input_shapes()[0].rank();
    if (NormalizeAxis(config_.axis, rank) != channel_axis) return std::nullopt;
    return Epilogue::Normalization{variable("gamma"), variable("beta"), variable("moving_mean"),
                                   variable("moving_variance"), config_.epsilon};
  }

 protected:
  absl::StatusOr<std::vector<Shape>> ComputeOutputShapes(
      absl::Span<const Shape> inputs) const override {
    const Shape& input = inputs[0];
    const int rank = input.rank();
    if (config_.axis >= rank || config_.axis < -rank || NormalizeAxis(config_.axis, rank) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Invalid axis for layer \"", name(), "\": axis=", config_.axis, " for an input of shape ",
          input.ToString(), " (the batch axis cannot be normalised over)."));
    }
    if (rank < 2 || rank > 5) {
      return absl::InvalidArgumentError(absl::StrCat("Layer \"", name(),
                                                     "\" supports inputs of rank 2 to 5. Received "
                                                     "input with shape ",
                                                     input.ToString()));
    }
    if (built()) {
      // Keras's InputSpec fixes the rank as well as the size of the normalised axis.
      const Shape& built_shape = built_input_shapes()[0];
      KILN_RETURN_IF_ERROR(CheckRank(input, 0, built_shape.rank()));
      KILN_RETURN_IF_ERROR(
          CheckAxisValue(input, 0, config_.axis, built_shape[NormalizeAxis(config_.axis, rank)]));
    }
    return std::vector<Shape>{input};
  }

  absl::Status Build(absl::Span<const Shape> inputs) override {
    const Shape param{inputs[0][NormalizeAxis(config_.axis, inputs[0].rank())]};
    if (scale_) KILN_RETURN_IF_ERROR(AddWeight("gamma", param, gamma_).status());
    if (center_) KILN_RETURN_IF_ERROR(AddWeight("beta", param, beta_).status());
    KILN_RETURN_IF_ERROR(AddWeight("moving_mean", param, moving_mean_, false).status());
    return AddWeight("moving_variance", param, moving_variance_, false).status();
  }

 private:
  BatchNormConfig config_;
  bool center_ = true, scale_ = true;
  WeightSpec beta_, gamma_, moving_mean_, moving_variance_;
};

KILN_REGISTER_LAYER(kBatchNormalization, BatchNormalizationLayer);

}  // namespace
}  // namespace kiln
