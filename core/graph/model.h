// Model: a functional model - the layer calls that lead from its input tensors to its output
// tensors, copied out of a Graph so that later additions to the graph do not change it. Layers
// (and so weights) stay shared with the graph and with other models that use them, as in Keras.
//
// A Model also caches its execution plans, one per (batch size, training) pair in use.
// Not thread-safe: callers serialise access to a model and to models sharing its layers.
#ifndef KILN_CORE_GRAPH_MODEL_H_
#define KILN_CORE_GRAPH_MODEL_H_

#include <list>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/graph/graph.h"

namespace kiln {

class ExecutionPlan;

class Model {
 public:
  struct Node {
    std::shared_ptr<Layer> layer;
    std::vector<int> inputs;   // value indices
    std::vector<int> outputs;  // value indices
  };

  // Errors: NOT_FOUND for unknown tensors; INVALID_ARGUMENT when an input is not a model input
  // tensor, when the outputs need an input that is not listed ("Graph disconnected"), or when
  // the lists are empty.
  static absl::StatusOr<std::unique_ptr<Model>> Create(const Graph& graph,
                                                       absl::Span<const TensorId> inputs,
                                                       absl::Span<const TensorId> outputs,
                                                       std::string name);
  ~Model();

  const std::string& name() const { return name_; }
  const std::vector<Node>& nodes() const { return nodes_; }
  // Shape of each value (the batch dimension unknown).
  const std::vector<Shape>& value_shapes() const { return value_shapes_; }
  const std::vector<int>& input_values() const { return input_values_; }
  const std::vector<int>& output_values() const { return output_values_; }
  const std::vector<std::string>& input_names() const { return input_names_; }
  // The graph tensor id of each value, for mapping back to a session's references.
  const std::vector<TensorId>& value_tensor_ids() const { return value_tensor_ids_; }

  // Distinct layers in the order of their first call.
  std::vector<Layer*> layers() const;
  int64_t CountParams() const;
  int64_t CountTrainableParams() const;

  // The plan for `batch` rows in training or inference mode, built on first use. The model
  // keeps the few most recently used plans.
  absl::StatusOr<ExecutionPlan*> GetPlan(int64_t batch, bool training);
  // Restarts random ops (Dropout) from `seed`, at step 0. Cached training plans, whose ops
  // carry the seed, are dropped and rebuilt on next use.
  void Reseed(uint64_t seed) { SetRandomState({seed, 0}); }
  // The random ops' state: their seed and the training forwards run since (a checkpoint
  // saves it; setting it back replays the same dropout masks from there).
  struct RandomState {
    uint64_t seed = 0;
    uint64_t step = 0;
  };
  RandomState random_state() const { return {seed_, random_step_}; }
  void SetRandomState(RandomState state);

 private:
  Model() = default;

  std::string name_;
  std::vector<Node> nodes_;
  std::vector<Shape> value_shapes_;
  std::vector<TensorId> value_tensor_ids_;
  std::vector<int> input_values_, output_values_;
  std::vector<std::string> input_names_;
  uint64_t seed_ = 0;
  uint64_t random_step_ = 0;  // shared by the training plans (PlanOptions::random_step)

  struct CachedPlan {
    int64_t batch;
    bool training;
    std::unique_ptr<ExecutionPlan> plan;
  };
  std::list<CachedPlan> plans_;  // most recently used first
};

}  // namespace kiln

#endif  // KILN_CORE_GRAPH_MODEL_H_
