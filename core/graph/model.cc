#include "core/graph/model.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "core/base/status.h"
#include "core/graph/plan.h"

namespace kiln {
namespace {
constexpr size_t kMaxCachedPlans = 4;
}  // namespace

Model::~Model() = default;

absl::StatusOr<std::unique_ptr<Model>> Model::Create(const Graph& graph,
                                                     absl::Span<const TensorId> inputs,
                                                     absl::Span<const TensorId> outputs,
                                                     std::string name) {
  if (inputs.empty()) return FieldError("inputs", "a model needs at least one input tensor");
  if (outputs.empty()) return FieldError("outputs", "a model needs at least one output tensor");
  absl::flat_hash_set<TensorId> input_set;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const SymbolicTensor* t = graph.tensor(inputs[i]);
    const std::string path = absl::StrCat("inputs[", i, "]");
    if (t == nullptr) {
      return WithFieldPrefix(
          absl::NotFoundError(absl::StrCat("tensor ", inputs[i], " does not exist")), path);
    }
    const GraphNode& producer = graph.nodes()[t->node];
    if (producer.layer != nullptr) {
      return FieldError(
          path, absl::StrCat("tensor ", inputs[i], " is the output of layer \"",
                             producer.layer->name(), "\"; a model's inputs must be input tensors"));
    }
    if (!input_set.insert(inputs[i]).second) {
      return FieldError(path, absl::StrCat("tensor ", inputs[i], " is listed twice"));
    }
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (graph.tensor(outputs[i]) == nullptr) {
      return WithFieldPrefix(
          absl::NotFoundError(absl::StrCat("tensor ", outputs[i], " does not exist")),
          absl::StrCat("outputs[", i, "]"));
    }
  }

  // Walk back from the outputs to find the nodes the model needs.
  std::vector<bool> needed(graph.nodes().size(), false);
  std::vector<std::pair<TensorId, int>> stack;  // (tensor, consuming node or -1)
  for (TensorId t : outputs) stack.emplace_back(t, -1);
  while (!stack.empty()) {
    auto [t, consumer] = stack.back();
    stack.pop_back();
    const int n = graph.tensor(t)->node;
    const GraphNode& node = graph.nodes()[n];
    if (node.layer == nullptr && !input_set.contains(t)) {
      const std::string at =
          consumer < 0 ? "the model's outputs"
                       : absl::StrCat("layer \"", graph.nodes()[consumer].layer->name(), "\"");
      return FieldError("inputs", absl::StrCat("Graph disconnected: cannot obtain value for "
                                               "input \"",
                                               node.input_name, "\" (tensor ", t, ") at ", at,
                                               ". Add it to the model's inputs."));
    }
    if (needed[n]) continue;
    needed[n] = true;
    for (TensorId in : node.inputs) stack.emplace_back(in, n);
  }

  auto model = absl::WrapUnique(new Model());
  model->name_ = std::move(name);
  absl::flat_hash_map<TensorId, int> value_of;
  auto add_value = [&](TensorId t) {
    const int v = static_cast<int>(model->value_shapes_.size());
    value_of[t] = v;
    model->value_shapes_.push_back(graph.tensor(t)->shape);
    model->value_tensor_ids_.push_back(t);
    return v;
  };
  for (TensorId t : inputs) {
    model->input_values_.push_back(add_value(t));
    model->input_names_.push_back(graph.nodes()[graph.tensor(t)->node].input_name);
  }
  // Graph order is a topological order: a call's inputs exist before it.
  for (size_t n = 0; n < graph.nodes().size(); ++n) {
    const GraphNode& g = graph.nodes()[n];
    if (!needed[n] || g.layer == nullptr) continue;
    Node node;
    node.layer = g.layer;
    for (TensorId t : g.inputs) node.inputs.push_back(value_of.at(t));
    for (TensorId t : g.outputs) node.outputs.push_back(add_value(t));
    model->nodes_.push_back(std::move(node));
  }
  for (TensorId t : outputs) model->output_values_.push_back(value_of.at(t));
  return model;
}

std::vector<Layer*> Model::layers() const {
  std::vector<Layer*> out;
  for (const Node& node : nodes_) {
    if (std::find(out.begin(), out.end(), node.layer.get()) == out.end()) {
      out.push_back(node.layer.get());
    }
  }
  return out;
}

int64_t Model::CountParams() const {
  int64_t n = 0;
  for (Layer* layer : layers()) n += layer->CountParams();
  return n;
}

int64_t Model::CountTrainableParams() const {
  int64_t n = 0;
  for (Layer* layer : layers()) {
    for (const auto& v : layer->variables()) {
      if (v->trainable) n += v->value.num_elements();
    }
  }
  return n;
}

void Model::SetRandomState(RandomState state) {
  seed_ = state.seed;
  random_step_ = state.step;
  plans_.remove_if([](const CachedPlan& p) { return p.training; });
}

absl::StatusOr<ExecutionPlan*> Model::GetPlan(int64_t batch, bool training) {
  for (auto it = plans_.begin(); it != plans_.end(); ++it) {
    if (it->batch == batch && it->training == training) {
      plans_.splice(plans_.begin(), plans_, it);
      return plans_.front().plan.get();
    }
  }
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<ExecutionPlan> plan,
                        ExecutionPlan::Create(*this, batch,
                                              PlanOptions{.training = training,
                                                          .backward = training,
                                                          .seed = seed_,
                                                          .random_step = &random_step_}));
  plans_.push_front(CachedPlan{batch, training, std::move(plan)});
  if (plans_.size() > kMaxCachedPlans) plans_.pop_back();
  return plans_.front().plan.get();
}

}  // namespace kiln
