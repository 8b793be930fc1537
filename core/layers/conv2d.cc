// Conv2D (keras.layers.Conv2D), including grouped convolution (`groups`).
#include "absl/strings/str_cat.h"
#include "core/base/status.h"
#include "core/keras/constraints.h"
#include "core/keras/initializers.h"
#include "core/keras/regularizers.h"
#include "core/layers/conv_args.h"
#include "core/layers/factories.h"

namespace kiln {
namespace {

constexpr char kField[] = "conv2d";

class Conv2DLayer final : public Layer {
 public:
  Conv2DLayer(const v1::LayerSpec& spec, uint64_t seed)
      : Layer(spec, "Conv2D", "conv2d", kField, spec.conv2d().name(), TrainableOf(spec.conv2d()),
              seed) {}

  absl::Status Init() {
    const v1::Conv2D& s = spec().conv2d();
    filters_ = s.filters();
    if (filters_ <= 0) {
      return FieldError(FieldPath("filters"),
                        absl::StrCat("Invalid value for argument `filters`. Expected a strictly "
                                     "positive value. Received filters=",
                                     filters_, "."));
    }
    groups_ = s.has_groups() ? s.groups() : 1;
    if (groups_ <= 0) {
      return FieldError(FieldPath("groups"),
                        absl::StrCat("The number of groups must be a positive integer. "
                                     "Received: groups=",
                                     groups_, "."));
    }
    if (filters_ % groups_ != 0) {
      return FieldError(FieldPath("groups"),
                        absl::StrCat("The number of filters must be evenly divisible by the "
                                     "number of groups. Received: groups=",
                                     groups_, ", filters=", filters_, "."));
    }
    KILN_ASSIGN_OR_RETURN(
        config_, ParseConvGeometry(s.kernel_size(), s.strides(), s.dilation_rate(), s.padding(),
                                   s.data_format(), s.activation(), kField));
    use_bias_ = s.has_use_bias() ? s.use_bias() : true;
    KILN_ASSIGN_OR_RETURN(kernel_,
                          ResolveWeightSpec("kernel", s.kernel_initializer(), "glorot_uniform",
                                            &s.kernel_regularizer(), &s.kernel_constraint()));
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
    config.groups = groups_;
    config.grouped_kernel_shape = variable("kernel")->value.shape();
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
    KILN_RETURN_IF_ERROR(AddWeight("kernel", KernelShape(channels), kernel_).status());
    if (use_bias_) KILN_RETURN_IF_ERROR(AddWeight("bias", Shape{filters_}, bias_).status());
    return absl::OkStatus();
  }

 private:
  Shape KernelShape(int64_t channels) const {
    return Shape{config_.kernel_size[0], config_.kernel_size[1], channels / groups_, filters_};
  }

  ConvolutionConfig config_;
  int64_t filters_ = 0, groups_ = 1;
  bool use_bias_ = true;
  WeightSpec kernel_, bias_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Layer>> CreateConv2D(const v1::LayerSpec& spec, uint64_t seed) {
  return MakeLayer<Conv2DLayer>(spec, seed);
}

}  // namespace kiln
