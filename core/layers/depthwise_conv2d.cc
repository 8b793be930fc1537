// DepthwiseConv2D (keras.layers.DepthwiseConv2D): each input channel c convolved with its own
// depth_multiplier filters kernel[:, :, c, m], giving output channel c*M + m.
#include "core/base/status.h"
#include "core/layers/conv_args.h"
#include "core/layers/registry.h"

namespace kiln {
namespace {

class DepthwiseConv2DLayer final : public Layer {
 public:
  using Layer::Layer;

  absl::Status Init() override {
    KILN_ASSIGN_OR_RETURN(config_, ParseConvGeometry(args()));
    depth_multiplier_ = args().Int("depth_multiplier");
    KILN_ASSIGN_OR_RETURN(weights_, KernelAndBiasArgs("depthwise"));
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<Op>> CreateOp(OpContext& context) override {
    ConvolutionConfig config = config_;
    config.epilogue = context.epilogue;
    const Shape& k = variable("kernel")->value.shape();  // kh, kw, C, M
    config.groups = k[2];
    config.grouped_kernel_shape = Shape{k[0], k[1], 1, k[2] * k[3]};
    return CreateConvolutionOp(context, config, variable("kernel"),
                               weights_.use_bias ? variable("bias") : nullptr);
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
    KILN_RETURN_IF_ERROR(AddWeight("kernel", KernelShape(channels), weights_.kernel).status());
    if (weights_.use_bias) {
      KILN_RETURN_IF_ERROR(
          AddWeight("bias", Shape{channels * depth_multiplier_}, weights_.bias).status());
    }
    return absl::OkStatus();
  }

 private:
  Shape KernelShape(int64_t channels) const {
    return Shape{config_.kernel_size[0], config_.kernel_size[1], channels, depth_multiplier_};
  }

  ConvolutionConfig config_;
  int64_t depth_multiplier_ = 1;
  KernelAndBias weights_;
};

KILN_REGISTER_LAYER(kDepthwiseConv2D, DepthwiseConv2DLayer);

}  // namespace
}  // namespace kiln
