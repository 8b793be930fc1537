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
              TrainableOf(spec.depthwise_conv2d()), seed) {}

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
    KILN_ASSIGN_OR_RETURN(
        kernel_, ResolveWeightSpec("depthwise", s.depthwise_initializer(), "glorot_uniform",
                                   &s.depthwise_regularizer(), &s.depthwise_constraint()));
    KILN_ASSIGN_OR_RETURN(bias_, ResolveWeightSpec("bias", s.bias_initializer(), "zeros",
                                                   &s.bias_regularizer(), &s.bias_constraint()));
    KILN_ASSIGN_OR_RETURN(
        activity_regularizer_,
        ResolveRegularizer(s.activity_regularizer(), FieldPath("activity_regularizer")));
    return CheckDType(s.dtype(), FieldPath("dtype"));
  }

  absl::StatusOr<std::unique_ptr<Op>> CreateOp(OpContext& context) override {
    ConvolutionConfig config = config_;
    config.epilogue = context.epilogue;
    const Shape& k = variable("kernel")->value.shape();  // kh, kw, C, M
    config.groups = k[2];
    config.grouped_kernel_shape = Shape{k[0], k[1], 1, k[2] * k[3]};
    return CreateConvolutionOp(context, config, variable("kernel"),
                               use_bias_ ? variable("bias") : nullptr);
  }

  bool AcceptsEpilogue() const override {
    return config_.activation.is_linear() && !activity_regularizer_.has_value();
  }
  int ChannelAxis() const override { return ChannelAxisOf(config_.data_format); }

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
    KILN_RETURN_IF_ERROR(AddWeight("kernel", KernelShape(channels), kernel_).status());
    if (use_bias_) {
      KILN_RETURN_IF_ERROR(AddWeight("bias", Shape{channels * depth_multiplier_}, bias_).status());
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
  WeightSpec kernel_, bias_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Layer>> CreateDepthwiseConv2D(const v1::LayerSpec& spec,
                                                             uint64_t seed) {
  return MakeLayer<DepthwiseConv2DLayer>(spec, seed);
}

}  // namespace kiln
