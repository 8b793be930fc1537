// Conv2D (keras.layers.Conv2D), including grouped convolution (`groups`).
#include "absl/strings/str_cat.h"
#include "core/base/status.h"
#include "core/layers/conv_args.h"
#include "core/layers/registry.h"

namespace kiln {
namespace {

class Conv2DLayer final : public Layer {
 public:
  using Layer::Layer;

  absl::Status Init() override {
    filters_ = args().Int("filters");
    groups_ = args().Int("groups");
    if (filters_ % groups_ != 0) {
      return FieldError(FieldPath("groups"),
                        absl::StrCat("The number of filters must be evenly divisible by the "
                                     "number of groups. Received: groups=",
                                     groups_, ", filters=", filters_, "."));
    }
    KILN_ASSIGN_OR_RETURN(config_, ParseConvGeometry(args()));
    KILN_ASSIGN_OR_RETURN(weights_, KernelAndBiasArgs("kernel"));
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<Op>> CreateOp(OpContext& context) override {
    ConvolutionConfig config = config_;
    config.epilogue = context.epilogue;
    config.groups = groups_;
    config.grouped_kernel_shape = variable("kernel")->value.shape();
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
    if (channels % groups_ != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "The number of input channels must be evenly divisible by the number of groups. "
          "Received groups=",
          groups_, ", but the input has ", channels, " channels (full input shape is ",
          input.ToString(), ")."));
    }
    KILN_ASSIGN_OR_RETURN(Shape out,
                          ConvOutputShape(input, config_, filters_, KernelShape(channels)));
    return std::vector<Shape>{out};
  }

  absl::Status Build(absl::Span<const Shape> inputs) override {
    const int64_t channels = inputs[0][ChannelAxisOf(config_.data_format)];
    KILN_RETURN_IF_ERROR(AddWeight("kernel", KernelShape(channels), weights_.kernel).status());
    if (weights_.use_bias) {
      KILN_RETURN_IF_ERROR(AddWeight("bias", Shape{filters_}, weights_.bias).status());
    }
    return absl::OkStatus();
  }

 private:
  Shape KernelShape(int64_t channels) const {
    return Shape{config_.kernel_size[0], config_.kernel_size[1], channels / groups_, filters_};
  }

  ConvolutionConfig config_;
  int64_t filters_ = 0, groups_ = 1;
  KernelAndBias weights_;
};

KILN_REGISTER_LAYER(kConv2D, Conv2DLayer);

}  // namespace
}  // namespace kiln
