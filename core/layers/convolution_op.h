// The op behind Conv2D and DepthwiseConv2D: a 2-D grouped convolution on oneDNN.
//
// The Keras kernel (kh, kw, in_channels / groups, out_channels) is read in place through a
// strided descriptor and reordered once per weight change into the layout the primitive chose
// (format_tag::any). A depthwise kernel (kh, kw, C, M) has exactly the bytes of the grouped
// kernel (kh, kw, 1, C*M) with groups = C, and output channel c*M + m - Keras's order.
// Activations stay in the primitive's preferred (blocked) layout; the activation function is
// fused as a post-op where oneDNN allows it.
#ifndef KILN_CORE_LAYERS_CONVOLUTION_OP_H_
#define KILN_CORE_LAYERS_CONVOLUTION_OP_H_

#include <array>
#include <memory>

#include "absl/status/statusor.h"
#include "core/exec/op.h"
#include "core/exec/variable.h"
#include "core/keras/activations.h"
#include "core/keras/args.h"
#include "core/tensor/shape.h"

namespace kiln {

struct ConvolutionConfig {
  int64_t groups = 1;
  // The kernel as a grouped kernel: (kh, kw, in_channels / groups, out_channels).
  Shape grouped_kernel_shape;
  std::array<int, 2> kernel_size = {1, 1};
  std::array<int, 2> strides = {1, 1};
  std::array<int, 2> dilation_rate = {1, 1};
  Padding padding = Padding::kValid;
  DataFormat data_format = DataFormat::kChannelsLast;
  Activation activation;
  // Inference plans: a folded BatchNormalization and/or fused activation (replaces
  // `activation`, which is then linear).
  Epilogue epilogue;
};

// `kernel` holds config.grouped_kernel_shape's elements in Keras order; `bias` may be null.
absl::StatusOr<std::unique_ptr<Op>> CreateConvolutionOp(OpContext& context,
                                                        const ConvolutionConfig& config,
                                                        Variable* kernel, Variable* bias);

// The Keras kernel layout as a oneDNN weights descriptor: dims (O, I, KH, KW), or
// (G, O/G, I/G, KH, KW) when groups > 1, over the (kh, kw, I/G, O) array.
dnnl::memory::desc KerasKernelDesc(const Shape& kernel_shape, int64_t groups);

}  // namespace kiln

#endif  // KILN_CORE_LAYERS_CONVOLUTION_OP_H_
