// Op: one layer call inside an ExecutionPlan, specialised to fixed shapes (a batch size) and a
// mode (inference, or training with a backward pass). A Layer creates its Op from an
// OpContext; the op builds its oneDNN primitives and allocates its buffers from the plan's arena
// right then, so running it allocates nothing.
//
// Memory contract:
// - Every activation is a dnnl::memory over Keras-logical dims, in any layout
//   (see core/dnnl/memory.h). An op reads its inputs in whatever layout they come and reorders
//   them itself when its primitive wants another.
// - An op never writes into its inputs' memory. Its outputs are its own buffers, or - for pure
//   views such as Flatten of a plain tensor - its input's buffer with another descriptor.
// - Gradients of an output have the same descriptor as the output. The op writes each input's
//   gradient into the memory PrepareBackward gave it (same descriptor as the input), overwriting
//   it; the plan sums gradients of tensors with several consumers.
// - Weight gradients go to Variable::grad in Keras layout, overwritten or - when the plan says
//   so because the layer is shared - accumulated.
#ifndef KILN_CORE_EXEC_OP_H_
#define KILN_CORE_EXEC_OP_H_

#include <dnnl.hpp>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "core/keras/activations.h"
#include "core/exec/variable.h"
#include "core/tensor/arena.h"

namespace kiln {

// Work that follows an op in an inference plan and that the op computes itself, as oneDNN
// recommends for inference: a BatchNormalization folded into its weights and bias, and a
// pointwise activation run as a post-op. The plan builds it from the layers it absorbs.
struct Epilogue {
  struct Normalization {              // y = gamma * (x - mean) / sqrt(variance + epsilon) + beta
    const Variable* gamma = nullptr;  // null: scale=False (1)
    const Variable* beta = nullptr;   // null: center=False (0)
    const Variable* mean = nullptr;
    const Variable* variance = nullptr;
    float epsilon = 0;
  };
  std::optional<Normalization> normalization;
  std::optional<Activation> activation;
  bool empty() const { return !normalization.has_value() && !activation.has_value(); }
};

struct OpContext {
  // Keras's `training` flag: BatchNormalization uses batch statistics, Dropout drops.
  bool training = false;
  // The plan runs a backward pass: primitives are created for training propagation and keep
  // what their backward pass needs.
  bool backward = false;
  Arena* arena = nullptr;
  std::vector<dnnl::memory> inputs;
  // Per input: whether the plan wants its gradient (false for model inputs and for tensors that
  // no trainable weight depends on).
  std::vector<bool> input_needs_grad;
  uint64_t seed = 0;  // for ops that draw random numbers (Dropout)
  // The plan's training-forward count (PlanOptions::random_step): a random op draws from
  // (seed, *random_step), read when it runs.
  const uint64_t* random_step = nullptr;
  // Inference plans: what this op also computes for the layers the plan fused into it. Only
  // layers whose AcceptsEpilogue() is true get a non-empty one.
  Epilogue epilogue;
};

class Op {
 public:
  virtual ~Op() = default;

  const std::vector<dnnl::memory>& outputs() const { return outputs_; }

  virtual void Forward(dnnl::stream& stream) = 0;

  // Training plans only; called once after all forward buffers exist. diff_inputs[i] is an
  // empty memory when input i's gradient is not wanted. accumulate_weight_grads: add to
  // Variable::grad instead of overwriting it.
  virtual absl::Status PrepareBackward(const std::vector<dnnl::memory>& diff_outputs,
                                       const std::vector<dnnl::memory>& diff_inputs,
                                       bool accumulate_weight_grads) = 0;
  virtual void Backward(dnnl::stream& stream) = 0;

 protected:
  std::vector<dnnl::memory> outputs_;
};

}  // namespace kiln

#endif  // KILN_CORE_EXEC_OP_H_
