// ExecutionPlan: one model specialised to a batch size and a mode. Building it creates every
// op's primitives and allocates every activation, gradient and workspace buffer from one arena;
// running it (Forward, Backward) allocates nothing.
//
// Model inputs and outputs are plain row-major float32 in Keras layout: the caller writes input
// rows before Forward and reads outputs after it. In training plans the caller also writes the
// loss gradient for each output before Backward, which leaves each trainable variable's
// gradient in Variable::grad (weight regularizer gradients excluded: optimizers add those).
//
// Gradient bookkeeping lives here, not in ops: a tensor used by several calls gets one buffer
// per use and the plan sums them; a layer called several times overwrites its weight gradients
// in its last call (first in backward order) and accumulates in the others.
#ifndef KILN_CORE_GRAPH_PLAN_H_
#define KILN_CORE_GRAPH_PLAN_H_

#include <dnnl.hpp>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "core/dnnl/memory.h"
#include "core/exec/op.h"
#include "core/tensor/arena.h"
#include "kiln/v1/layers.pb.h"

namespace kiln {

class Model;

struct PlanOptions {
  bool training = false;         // Keras's training flag for the forward pass
  bool backward = false;         // build the backward pass
  bool input_gradients = false;  // with backward: also dLoss/dInput for every model input
  uint64_t seed = 0;             // random ops (Dropout)
  // Training forwards so far: random ops draw from (seed, *random_step), and each training
  // Forward advances it. Plans of one model share the model's counter, so a fit's random
  // stream does not depend on which plans were cached. Null: the plan counts for itself.
  uint64_t* random_step = nullptr;
  // Refuse plans estimated to need more memory than this (RESOURCE_EXHAUSTED); 0 means half
  // of the machine's physical memory.
  int64_t max_bytes = 0;
};

class ExecutionPlan {
 public:
  static absl::StatusOr<std::unique_ptr<ExecutionPlan>> Create(const Model& model, int64_t batch,
                                                               const PlanOptions& options);
  ~ExecutionPlan();

  int64_t batch_size() const { return batch_; }
  bool training() const { return options_.training; }

  int num_inputs() const { return static_cast<int>(inputs_.size()); }
  int num_outputs() const { return static_cast<int>(outputs_.size()); }
  const Shape& input_shape(int i) const { return input_shapes_[i]; }
  const Shape& output_shape(int i) const { return output_shapes_[i]; }
  float* input_data(int i) { return static_cast<float*>(inputs_[i].get_data_handle()); }
  const float* output_data(int i) const {
    return static_cast<const float*>(outputs_[i].plain.get_data_handle());
  }
  // Training plans: dLoss/dOutput, plain, written by the caller before Backward.
  float* output_grad_data(int i) {
    return static_cast<float*>(outputs_[i].plain_grad.get_data_handle());
  }

  // Plans made with input_gradients: dLoss/dInput i after Backward, plain.
  const float* input_grad_data(int i) const {
    return static_cast<const float*>(input_grads_[i].get_data_handle());
  }

  void Forward(dnnl::stream& stream);
  void Backward(dnnl::stream& stream);

  // Sum of the activity regularizers' penalties in the last Forward, each divided by the batch
  // size as Keras does.
  double activity_penalty() const { return activity_penalty_; }
  size_t bytes() const { return arena_.bytes_allocated(); }
  // Ops the forward pass runs (fewer than the model's layer calls when some were fused).
  int num_ops() const;

 private:
  ExecutionPlan() = default;
  uint64_t own_random_step_ = 0;
  uint64_t* random_step_ = &own_random_step_;
  // Checks tensor sizes and a rough upper bound of the plan's memory before allocating any.
  static absl::Status CheckSize(const Model& model, int64_t batch, const PlanOptions& options);
  // Building is a sequence of passes:
  absl::Status Build(const Model& model);
  // 1. the model inputs' buffers (plain, written by the caller);
  void BindInputs(const Model& model);
  // 2. which nodes compute the layers after them (inference fusion), and with which epilogue;
  struct Fusion {
    bool absorbed = false;     // computed by an earlier node's op
    Epilogue epilogue;         // what this node's op also computes
    std::vector<int> outputs;  // the values its op produces (the last absorbed node's)
  };
  std::vector<Fusion> MatchFusions(const Model& model) const;
  // 3. one op per node that is not absorbed, each allocating its outputs and workspaces;
  absl::Status CreateOps(const Model& model, const std::vector<Fusion>& fusions);
  // 4. the outputs' plain copies the caller reads;
  void BindOutputs(const Model& model);
  // 5. training plans: gradient buffers, their sums, and each op's backward pass.
  absl::Status BuildBackward(const Model& model);

  struct Value {
    dnnl::memory mem;
    dnnl::memory diff;
    bool requires_grad = false;
    // Gradient assembly before the producer's backward: sum of per-use buffers, or a copy.
    Primitive sum;
    std::unordered_map<int, dnnl::memory> sum_args;
    Reorder copy_in;
  };
  struct OutputEdge {
    int value;
    dnnl::memory plain;  // Keras layout copy of the output
    Reorder to_plain;
    dnnl::memory plain_grad;  // training: the caller's dLoss/dOutput
  };
  struct ActivityTerm {
    int node;
    int value;
    const v1::Regularizer* regularizer;
  };

  int64_t batch_ = 0;
  PlanOptions options_;
  Arena arena_;
  std::vector<Value> values_;
  std::vector<std::unique_ptr<Op>> ops_;
  std::vector<std::vector<int>> op_outputs_;  // value indices per op
  std::vector<bool> run_backward_;
  std::vector<dnnl::memory> inputs_, input_grads_;
  std::vector<int> input_values_;
  std::vector<Shape> input_shapes_, output_shapes_;
  std::vector<OutputEdge> outputs_;
  std::vector<ActivityTerm> activity_terms_;
  double activity_penalty_ = 0;
};

}  // namespace kiln

#endif  // KILN_CORE_GRAPH_PLAN_H_
