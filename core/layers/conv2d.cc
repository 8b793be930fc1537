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
      : Layer(spec, "Conv2D", "conv2d", kField, spec.conv2d().name(),
              spec.conv2d().has_trainable() ? std::optional<bool>(spec.conv2d().trainable())
                                            : std::nullopt,
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
    KILN_ASSIGN_OR_RETURN(kernel_init_, ResolveInitializer(s.kernel_initializer(), "glorot_uniform",
                                                           FieldPath("kernel_initializer")));
    KILN_ASSIGN_OR_RETURN(bias_init_, ResolveInitializer(s.bias_initializer(), "zeros",
                                                         FieldPath("bias_initializer")));
    KILN_ASSIGN_OR_RETURN(
        kernel_reg_, ResolveRegularizer(s.kernel_regularizer(), FieldPath("kernel_regularizer")));
    KILN_ASSIGN_OR_RETURN(bias_reg_,
                          ResolveRegularizer(s.bias_regularizer(), FieldPath("bias_regularizer")));
    KILN_ASSIGN_OR_RETURN(
        activity_regularizer_,
        ResolveRegularizer(s.activity_regularizer(), FieldPath("activity_regularizer")));
    KILN_ASSIGN_OR_RETURN(kernel_constraint_,
                          ResolveConstraint(s.kernel_constraint(), FieldPath("kernel_constraint")));
    KILN_ASSIGN_OR_RETURN(bias_constraint_,
                          ResolveConstraint(s.bias_constraint(), FieldPath("bias_constraint")));
    return CheckDType(s.dtype(), FieldPath("dtype"));
  }

  absl::StatusOr<std::unique_ptr<Op>> CreateOp(OpContext& context) override {
    ConvolutionConfig config = config_;
    config.groups = groups_;
    config.grouped_kernel_shape = variable("kernel")->value.shape();
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
    KILN_RETURN_IF_ERROR(AddWeight("kernel", KernelShape(channels), kernel_init_,
                                   "kernel_initializer", kernel_reg_, "kernel_regularizer",
                                   kernel_constraint_, "kernel_constraint")
                             .status());
    if (use_bias_) {
      KILN_RETURN_IF_ERROR(AddWeight("bias", Shape{filters_}, bias_init_, "bias_initializer",
                                     bias_reg_, "bias_regularizer", bias_constraint_,
                                     "bias_constraint")
                               .status());
    }
    return absl::OkStatus();
  }

 private:
  Shape KernelShape(int64_t channels) const {
    return Shape{config_.kernel_size[0], config_.kernel_size[1], channels / groups_, filters_};
  }

  ConvolutionConfig config_;
  int64_t filters_ = 0, groups_ = 1;
  bool use_bias_ = true;
  v1::Initializer kernel_init_, bias_init_;
  std::optional<v1::Regularizer> kernel_reg_, bias_reg_;
  std::optional<v1::Constraint> kernel_constraint_, bias_constraint_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Layer>> CreateConv2D(const v1::LayerSpec& spec, uint64_t seed) {
  auto layer = std::make_unique<Conv2DLayer>(spec, seed);
  KILN_RETURN_IF_ERROR(layer->Init());
  return layer;
}

}  // namespace kiln
