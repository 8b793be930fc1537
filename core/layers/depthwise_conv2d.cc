// DepthwiseConv2D (keras.layers.DepthwiseConv2D): each input channel c convolved with its own
// depth_multiplier filters kernel[:, :, c, m], giving output channel c*M + m.
#include "absl/strings/str_cat.h"
#include "core/base/status.h"
#include "core/keras/constraints.h"
#include "core/keras/initializers.h"
#include "core/keras/regularizers.h"
#include "core/layers/conv_args.h"
#include "core/layers/factories.h"

namespace kiln {
namespace {

constexpr char kField[] = "depthwise_conv2d";

class DepthwiseConv2DLayer final : public Layer {
 public:
  DepthwiseConv2DLayer(const v1::LayerSpec& spec, uint64_t seed)
      : Layer(spec, "DepthwiseConv2D", "depthwise_conv2d", kField, spec.depthwise_conv2d().name(),
              spec.depthwise_conv2d().has_trainable()
                  ? std::optional<bool>(spec.depthwise_conv2d().trainable())
                  : std::nullopt,
              seed) {}

  absl::Status Init() {
    const v1::DepthwiseConv2D& s = spec().depthwise_conv2d();
    const std::string prefix = kField;
    KILN_ASSIGN_OR_RETURN(
        config_, ParseConvGeometry(s.kernel_size(), s.strides(), s.dilation_rate(), s.padding(),
                                   s.data_format(), s.activation(), prefix));
    depth_multiplier_ = s.has_depth_multiplier() ? s.depth_multiplier() : 1;
    if (depth_multiplier_ <= 0) {
      return FieldError(FieldPath("depth_multiplier"),
                        absl::StrCat("Invalid value for argument `depth_multiplier`. Expected a "
                                     "strictly positive value. Received depth_multiplier=",
                                     depth_multiplier_, "."));
    }
    use_bias_ = s.has_use_bias() ? s.use_bias() : true;
    KILN_ASSIGN_OR_RETURN(kernel_init_,
                          ResolveInitializer(s.depthwise_initializer(), "glorot_uniform",
                                             FieldPath("depthwise_initializer")));
    KILN_ASSIGN_OR_RETURN(bias_init_, ResolveInitializer(s.bias_initializer(), "zeros",
                                                         FieldPath("bias_initializer")));
    KILN_ASSIGN_OR_RETURN(kernel_reg_, ResolveRegularizer(s.depthwise_regularizer(),
                                                          FieldPath("depthwise_regularizer")));
    KILN_ASSIGN_OR_RETURN(bias_reg_,
                          ResolveRegularizer(s.bias_regularizer(), FieldPath("bias_regularizer")));
    KILN_ASSIGN_OR_RETURN(
        activity_regularizer_,
        ResolveRegularizer(s.activity_regularizer(), FieldPath("activity_regularizer")));
    KILN_ASSIGN_OR_RETURN(kernel_constraint_, ResolveConstraint(s.depthwise_constraint(),
                                                                FieldPath("depthwise_constraint")));
    KILN_ASSIGN_OR_RETURN(bias_constraint_,
                          ResolveConstraint(s.bias_constraint(), FieldPath("bias_constraint")));
    return CheckDType(s.dtype(), FieldPath("dtype"));
  }

  absl::StatusOr<std::unique_ptr<Op>> CreateOp(OpContext& context) override {
    ConvolutionConfig config = config_;
    const Shape& k = variable("kernel")->value.shape();  // kh, kw, C, M
    config.groups = k[2];
    config.grouped_kernel_shape = Shape{k[0], k[1], 1, k[2] * k[3]};
    return CreateConvolutionOp(context, config, variable("kernel"),
                               use_bias_ ? variable("bias") : nullptr);
  }

 protected:
  absl::StatusOr<std::vector<Shape>> ComputeOutputShapes(
      absl::Span<const Shape> inputs) const override {
    const Shape& input = inputs[0];
    KILN_RETURN_IF_ERROR(CheckRank(input, 0, 4));
    const int axis = ChannelAxisOf(config_.data_format);
    if (built()) {
      KILN_RETURN_IF_ERROR(
          CheckAxisValue(input, 0, axis == 3 ? -1 : 1, built_input_shapes()[0][axis]));
    }
    const int64_t channels = input[axis];
    KILN_ASSIGN_OR_RETURN(Shape out, ConvOutputShape(input, config_, channels * depth_multiplier_,
                                                     KernelShape(channels)));
    return std::vector<Shape>{out};
  }

  absl::Status Build(absl::Span<const Shape> inputs) override {
    const int64_t channels = inputs[0][ChannelAxisOf(config_.data_format)];
    KILN_RETURN_IF_ERROR(AddWeight("kernel", KernelShape(channels), kernel_init_,
                                   "depthwise_initializer", kernel_reg_, "depthwise_regularizer",
                                   kernel_constraint_, "depthwise_constraint")
                             .status());
    if (use_bias_) {
      KILN_RETURN_IF_ERROR(AddWeight("bias", Shape{channels * depth_multiplier_}, bias_init_,
                                     "bias_initializer", bias_reg_, "bias_regularizer",
                                     bias_constraint_, "bias_constraint")
                               .status());
    }
    return absl::OkStatus();
  }

 private:
  Shape KernelShape(int64_t channels) const {
    return Shape{config_.kernel_size[0], config_.kernel_size[1], channels, depth_multiplier_};
  }

  ConvolutionConfig config_;
  int64_t depth_multiplier_ = 1;
  bool use_bias_ = true;
  v1::Initializer kernel_init_, bias_init_;
  std::optional<v1::Regularizer> kernel_reg_, bias_reg_;
  std::optional<v1::Constraint> kernel_constraint_, bias_constraint_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Layer>> CreateDepthwiseConv2D(const v1::LayerSpec& spec,
                                                             uint64_t seed) {
  auto layer = std::make_unique<DepthwiseConv2DLayer>(spec, seed);
  KILN_RETURN_IF_ERROR(layer->Init());
  return layer;
}

}  // namespace kiln
