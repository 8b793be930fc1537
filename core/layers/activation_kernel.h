// ActivationKernel: runs one Keras activation (core/keras/activations.h) forward and backward
// over memory in any layout. It uses oneDNN's eltwise and softmax primitives where oneDNN 2.6
// has the function, and Kiln's own loops for the rest (selu, hard_sigmoid, softsign and relu
// with a threshold or with both a slope and a ceiling). Its own loops run on a dense copy when
// the layout is padded, so the zero padding of blocked layouts stays zero.
#ifndef KILN_CORE_LAYERS_ACTIVATION_KERNEL_H_
#define KILN_CORE_LAYERS_ACTIVATION_KERNEL_H_

#include <dnnl.hpp>
#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "core/dnnl/memory.h"
#include "core/keras/activations.h"
#include "core/tensor/arena.h"

namespace kiln {

class ActivationKernel {
 public:
  // `src` and `dst` share one descriptor (Keras-logical dims). They may be the same memory
  // (in place) only when !BackwardNeedsSrc(activation).
  static absl::StatusOr<std::unique_ptr<ActivationKernel>> Create(const Activation& activation,
                                                                  const memory& src,
                                                                  const memory& dst, bool training,
                                                                  Arena& arena);

  // Whether the backward pass reads the forward input (else it reads the forward output).
  static bool BackwardNeedsSrc(const Activation& activation);

  // The oneDNN eltwise post-op that computes `activation` inside a producing primitive
  // (convolution, inner product), when there is one: in inference any eltwise activation, in
  // training only those whose backward needs just the output. The kernel created for such an
  // activation in training is then used for its backward pass only.
  struct PostOp {
    dnnl::algorithm algorithm;
    float alpha, beta;
  };
  static std::optional<PostOp> FusablePostOp(const Activation& activation, bool training);

  void Forward(dnnl::stream& stream);
  // diff_dst and diff_src have the data's descriptor and may be the same memory.
  absl::Status PrepareBackward(const memory& diff_dst, const memory& diff_src);
  void Backward(dnnl::stream& stream);

  ~ActivationKernel();

 private:
  struct Impl;
  explicit ActivationKernel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln

#endif  // KILN_CORE_LAYERS_ACTIVATION_KERNEL_H_
