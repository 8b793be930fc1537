// Argument handling shared by the convolution layers (Conv2D, DepthwiseConv2D): the geometry
// arguments with Keras 3's validation, and the output shape with Keras's formula and error.
#ifndef KILN_CORE_LAYERS_CONV_ARGS_H_
#define KILN_CORE_LAYERS_CONV_ARGS_H_

#include <string>

#include "absl/status/statusor.h"
#include "core/keras/args.h"
#include "core/keras/spec_args.h"
#include "core/layers/convolution_op.h"
#include "core/tensor/shape.h"

namespace kiln {

// Fills kernel_size, strides, dilation_rate, padding, data_format and activation of a
// ConvolutionConfig from a convolution layer's (validated) arguments, and rejects what Keras
// rejects across them.
absl::StatusOr<ConvolutionConfig> ParseConvGeometry(const SpecArgs& args);

// Channel axis of a rank-4 input in `format`.
inline int ChannelAxisOf(DataFormat format) { return format == DataFormat::kChannelsLast ? 3 : 1; }

// Output shape of a 2-D convolution producing `out_channels` channels, or Keras's "Computed
// output size would be zero or negative" error for `valid` padding.
absl::StatusOr<Shape> ConvOutputShape(const Shape& input, const ConvolutionConfig& config,
                                      int64_t out_channels, const Shape& keras_kernel_shape);

}  // namespace kiln

#endif  // KILN_CORE_LAYERS_CONV_ARGS_H_
