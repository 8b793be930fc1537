#include "core/layers/conv_args.h"

#include "absl/strings/str_cat.h"
#include "core/base/status.h"

namespace kiln {

absl::StatusOr<ConvolutionConfig> ParseConvGeometry(const SpecArgs& args) {
  ConvolutionConfig c;
  c.kernel_size = *args.Pair("kernel_size");
  c.strides = *args.Pair("strides");
  c.dilation_rate = *args.Pair("dilation_rate");
  c.padding = ParsePadding(args.String("padding"));
  c.data_format = ParseDataFormat(args.String("data_format"));
  // Keras 2.12-3.14 reject this pair (earlier versions gave wrong shapes, keras#16930); the
  // card documents the two as incompatible, so Kiln rejects it too.
  if (std::max(c.strides[0], c.strides[1]) > 1 &&
      std::max(c.dilation_rate[0], c.dilation_rate[1]) > 1) {
    return FieldError(
        args.Path("strides"),
        absl::StrCat("`strides > 1` not supported in conjunction with "
                     "`dilation_rate > 1`. Received: strides=",
                     PairRepr(c.strides), " and dilation_rate=", PairRepr(c.dilation_rate)));
  }
  KILN_ASSIGN_OR_RETURN(c.activation,
                        ParseActivation(args.String("activation"), args.Path("activation")));
  return c;
}

absl::StatusOr<Shape> ConvOutputShape(const Shape& input, const ConvolutionConfig& c,
                                      int64_t out_channels, const Shape& keras_kernel_shape) {
  const bool last = c.data_format == DataFormat::kChannelsLast;
  const int h_axis = last ? 1 : 2;
  int64_t spatial[2];
  for (int i = 0; i < 2; ++i) {
    spatial[i] = ConvOutputLength(input[h_axis + i], c.kernel_size[i], c.strides[i],
                                  c.dilation_rate[i], c.padding);
    if (spatial[i] <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Computed output size would be zero or negative. Received `inputs shape=",
          input.ToString(), "`, `kernel shape=", keras_kernel_shape.ToString(),
          "`, `dilation_rate=", PairRepr(c.dilation_rate), "`, `strides=", PairRepr(c.strides),
          "`, `padding=", PaddingName(c.padding), "`."));
    }
  }
  return last ? Shape{input[0], spatial[0], spatial[1], out_channels}
              : Shape{input[0], out_channels, spatial[0], spatial[1]};
}

}  // namespace kiln
