#include "core/graph/plan.h"

#include <unistd.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "core/base/status.h"
#include "core/dnnl/engine.h"
#include "core/graph/model.h"
#include "core/keras/regularizers.h"
#include "core/tensor/memory_account.h"

namespace kiln {

ExecutionPlan::~ExecutionPlan() = default;

absl::StatusOr<std::unique_ptr<ExecutionPlan>> ExecutionPlan::Create(const Model& model,
                                                                     int64_t batch,
                                                                     const PlanOptions& options) {
  if (batch <= 0) return absl::InvalidArgumentError("batch size must be positive");
  KILN_RETURN_IF_ERROR(CheckSize(model, batch, options));
  auto plan = absl::WrapUnique(new ExecutionPlan());
  plan->batch_ = batch;
  plan->options_ = options;
  plan->options_.input_gradients = options.backward && options.input_gradients;
  if (options.random_step != nullptr) plan->random_step_ = options.random_step;
  try {
    KILN_RETURN_IF_ERROR(plan->Build(model));
    if (options.backward) KILN_RETURN_IF_ERROR(plan->BuildBackward(model));
  } catch (const dnnl::error& e) {
    return absl::InternalError(absl::StrCat("oneDNN could not build the plan: ", e.what()));
  }
  return plan;
}

absl::Status ExecutionPlan::CheckSize(const Model& model, int64_t batch,
                                      const PlanOptions& options) {
  int64_t max_bytes = options.max_bytes;
  if (max_bytes <= 0) max_bytes = int64_t(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGE_SIZE) / 2;
  // Per value: the activation, a reordered copy at most, and in training its gradient and a
  // per-use gradient - an upper bound that ignores in-place views.
  const int64_t copies = options.backward ? 4 : 2;
  int64_t estimate = 0;
  for (const Shape& shape : model.value_shapes()) {
    std::vector<int64_t> dims = shape.WithoutBatch().dims();
    dims.push_back(batch);
    const std::optional<int64_t> elements = CheckedProduct(dims);
    if (!elements.has_value()) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "a batch of ", batch, " would make a tensor of shape ", shape.WithBatch(batch).ToString(),
          ", more than ", kMaxTensorElements, " elements; use a smaller batch_size"));
    }
    estimate += *elements * int64_t(sizeof(float)) * copies;
  }
  const std::string plan =
      absl::StrCat(options.backward ? "a training" : "an inference", " plan for batch size ", batch,
                   " of model \"", model.name(), "\" needs");
  if (estimate > max_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(plan, " about ", estimate >> 20,
                                                     " MiB, more than the ", max_bytes >> 20,
                                                     " MiB allowed; use a smaller batch_size"));
  }
  // Refused from its shapes before its arena is allocated, not part way through building it -
  // but only when even the least it must hold cannot fit: each value once, and in training its
  // gradient once (the estimate above is an upper bound; a plan below it may well fit, as a
  // MobileNet predict of batch 500 in a 2 GiB session does).
  if (const std::shared_ptr<MemoryAccount>& account = ScopedMemoryAccount::Current();
      account != nullptr) {
    const int64_t least = estimate / copies * (options.backward ? 2 : 1);
    const MemoryAccount::Headroom room = account->Available();
    if (least > room.bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          plan, " at least ", least >> 20, " MiB, more than the ", room.bytes >> 20, " MiB ",
          room.holder, " may still hold (", room.limit_flag, "); use a smaller batch_size"));
    }
  }
  return absl::OkStatus();
}

absl::Status ExecutionPlan::Build(const Model& model) {
  BindInputs(model);
  const std::vector<Fusion> fusions = MatchFusions(model);
  KILN_RETURN_IF_ERROR(CreateOps(model, fusions));
  BindOutputs(model);
  return absl::OkStatus();
}

void ExecutionPlan::BindInputs(const Model& model) {
  const auto& shapes = model.value_shapes();
  values_.resize(shapes.size());
  for (int v : model.input_values()) {
    const Shape shape = shapes[v].WithBatch(batch_);
    values_[v].mem = AllocateMemory(PlainDesc(shape), arena_);
    values_[v].requires_grad = options_.input_gradients;
    inputs_.push_back(values_[v].mem);
    input_values_.push_back(v);
    input_shapes_.push_back(shape);
  }
}

std::vector<ExecutionPlan::Fusion> ExecutionPlan::MatchFusions(const Model& model) const {
  const auto& nodes = model.nodes();
  std::vector<Fusion> fusions(nodes.size());
  for (size_t n = 0; n < nodes.size(); ++n) fusions[n].outputs = nodes[n].outputs;
  // Inference only: a backward pass needs every layer's own output.
  if (options_.backward) return fusions;
  // A layer that accepts an epilogue absorbs a following inference-mode normalization and/or
  // activation when it is their sole input and no one else reads the intermediate tensors.
  std::vector<int> consumer_count(values_.size(), 0), consumer_node(values_.size(), -1);
  for (size_t n = 0; n < nodes.size(); ++n) {
    for (int v : nodes[n].inputs) {
      ++consumer_count[v];
      consumer_node[v] = static_cast<int>(n);
    }
  }
  for (int v : model.output_values()) consumer_count[v] += 2;  // outputs stay materialised
  auto sole_consumer = [&](int v) { return consumer_count[v] == 1 ? consumer_node[v] : -1; };
  for (size_t n = 0; n < nodes.size(); ++n) {
    const Layer& layer = *nodes[n].layer;
    if (fusions[n].absorbed || !layer.AcceptsEpilogue() || nodes[n].outputs.size() != 1) continue;
    Fusion& fusion = fusions[n];
    int next = sole_consumer(nodes[n].outputs[0]);
    if (next >= 0) {
      if (auto fold =
              nodes[next].layer->AsFoldedNormalization(layer.ChannelAxis(), options_.training)) {
        fusion.epilogue.normalization = fold;
        fusions[next].absorbed = true;
        fusion.outputs = nodes[next].outputs;
        next = sole_consumer(fusion.outputs[0]);
      }
    }
    if (next >= 0) {
      if (auto activation = nodes[next].layer->AsFusedActivation()) {
        fusion.epilogue.activation = activation;
        fusions[next].absorbed = true;
        fusion.outputs = nodes[next].outputs;
      }
    }
  }
  return fusions;
}

absl::Status ExecutionPlan::CreateOps(const Model& model, const std::vector<Fusion>& fusions) {
  const auto& shapes = model.value_shapes();
  const auto& nodes = model.nodes();
  for (size_t n = 0; n < nodes.size(); ++n) {
    const Model::Node& node = nodes[n];
    op_outputs_.push_back(node.outputs);
    if (fusions[n].absorbed) {  // computed by the op it was fused into
      ops_.push_back(nullptr);
      continue;
    }
    bool has_trainable = false;
    for (const auto& variable : node.layer->variables()) has_trainable |= variable->trainable;
    OpContext context;
    context.training = options_.training;
    context.backward = options_.backward;
    context.arena = &arena_;
    context.seed = options_.seed ^ (0x9E3779B97F4A7C15ull * (n + 1));
    context.random_step = random_step_;
    context.epilogue = fusions[n].epilogue;
    bool requires_grad = has_trainable;
    for (int v : node.inputs) {
      context.inputs.push_back(values_[v].mem);
      context.input_needs_grad.push_back(options_.backward && values_[v].requires_grad);
      requires_grad |= values_[v].requires_grad;
    }
    const std::vector<int>& out_values = fusions[n].outputs;
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<Op> op, node.layer->CreateOp(context));
    if (op->outputs().size() != out_values.size()) {
      return absl::InternalError(absl::StrCat("layer \"", node.layer->name(), "\" produced ",
                                              op->outputs().size(), " outputs, expected ",
                                              node.outputs.size()));
    }
    for (size_t k = 0; k < out_values.size(); ++k) {
      const int v = out_values[k];
      const Shape expected = shapes[v].WithBatch(batch_);
      if (ShapeOf(op->outputs()[k].get_desc()) != expected) {
        return absl::InternalError(absl::StrCat(
            "layer \"", node.layer->name(), "\" produced shape ",
            ShapeOf(op->outputs()[k].get_desc()).ToString(), ", expected ", expected.ToString()));
      }
      values_[v].mem = op->outputs()[k];
      values_[v].requires_grad = options_.backward && requires_grad;
      if (node.layer->activity_regularizer().has_value()) {
        const v1::Regularizer* r = &*node.layer->activity_regularizer();
        // Layer::OutputShapes admits OrthogonalRegularizer on rank-2 outputs only; those are
        // plain in every op, which the penalty's row/column indexing relies on.
        if (!IsElementwiseRegularizer(*r) && !IsPlain(values_[v].mem.get_desc())) {
          return absl::InternalError(absl::StrCat("layer \"", node.layer->name(),
                                                  "\": rank-2 output in a non-plain layout"));
        }
        activity_terms_.push_back(ActivityTerm{static_cast<int>(n), v, r});
      }
    }
    ops_.push_back(std::move(op));
  }
  return absl::OkStatus();
}

void ExecutionPlan::BindOutputs(const Model& model) {
  for (int v : model.output_values()) {
    OutputEdge edge;
    edge.value = v;
    const Shape shape = model.value_shapes()[v].WithBatch(batch_);
    edge.plain = StageFrom(values_[v].mem, PlainDesc(shape), arena_, &edge.to_plain);
    output_shapes_.push_back(shape);
    outputs_.push_back(std::move(edge));
  }
}

absl::Status ExecutionPlan::BuildBackward(const Model& model) {
  const auto& nodes = model.nodes();
  // Every use of a value that needs a gradient: (node, input slot). Model outputs count once
  // more, for the loss.
  std::vector<int> uses(values_.size(), 0);
  for (const Model::Node& node : nodes) {
    for (int v : node.inputs) uses[v] += values_[v].requires_grad ? 1 : 0;
  }
  std::vector<int> output_count(values_.size(), 0);
  for (const OutputEdge& e : outputs_) ++output_count[e.value];

  std::vector<std::vector<dnnl::memory>> sources(values_.size());
  for (size_t v = 0; v < values_.size(); ++v) {
    if (values_[v].requires_grad) {
      values_[v].diff = AllocateMemory(values_[v].mem.get_desc(), arena_);
    }
  }
  for (int v : model.input_values()) {
    if (values_[v].requires_grad) input_grads_.push_back(values_[v].diff);
  }
  // The loss's gradient for each output.
  for (OutputEdge& e : outputs_) {
    Value& value = values_[e.value];
    if (!value.requires_grad) {
      e.plain_grad = AllocateMemory(e.plain.get_desc(), arena_);  // written, never read
      continue;
    }
    if (uses[e.value] == 0 && output_count[e.value] == 1 && IsPlain(value.mem.get_desc())) {
      e.plain_grad = value.diff;  // the caller writes the value's gradient directly
    } else {
      e.plain_grad = AllocateMemory(e.plain.get_desc(), arena_);
      sources[e.value].push_back(e.plain_grad);
    }
  }
  // One gradient target per use; a value with a single use and no loss term gets its gradient
  // written in place.
  std::vector<std::vector<dnnl::memory>> diff_inputs(nodes.size());
  for (size_t n = 0; n < nodes.size(); ++n) {
    for (int v : nodes[n].inputs) {
      if (!values_[v].requires_grad) {
        diff_inputs[n].emplace_back();
      } else if (uses[v] == 1 && output_count[v] == 0) {
        diff_inputs[n].push_back(values_[v].diff);
      } else {
        dnnl::memory target = AllocateMemory(values_[v].mem.get_desc(), arena_);
        diff_inputs[n].push_back(target);
        sources[v].push_back(target);
      }
    }
  }
  for (size_t v = 0; v < values_.size(); ++v) {
    Value& value = values_[v];
    if (sources[v].size() == 1) {
      value.copy_in = Reorder(sources[v][0], value.diff);
    } else if (sources[v].size() > 1) {
      std::vector<dnnl::memory::desc> descs;
      for (const auto& m : sources[v]) descs.push_back(m.get_desc());
      dnnl::sum::primitive_desc pd(value.diff.get_desc(), std::vector<float>(descs.size(), 1.0f),
                                   descs, CpuEngine(), WithUserScratchpad());
      value.sum = Primitive::Create<dnnl::sum>(pd, &arena_);
      value.sum_args[DNNL_ARG_DST] = value.diff;
      for (size_t i = 0; i < sources[v].size(); ++i) {
        value.sum_args[DNNL_ARG_MULTIPLE_SRC + int(i)] = sources[v][i];
      }
    }
  }
  // Ops in backward order; a shared layer overwrites its gradients on its first visit.
  absl::flat_hash_set<const Layer*> seen;
  run_backward_.assign(nodes.size(), false);
  for (int n = static_cast<int>(nodes.size()) - 1; n >= 0; --n) {
    bool any = false;
    std::vector<dnnl::memory> diff_outputs;
    for (int v : nodes[n].outputs) {
      any |= values_[v].requires_grad;
      diff_outputs.push_back(values_[v].diff);
    }
    if (!any) continue;
    const bool accumulate = !seen.insert(nodes[n].layer.get()).second;
    KILN_RETURN_IF_ERROR(ops_[n]->PrepareBackward(diff_outputs, diff_inputs[n], accumulate));
    run_backward_[n] = true;
  }
  return absl::OkStatus();
}

int ExecutionPlan::num_ops() const {
  int n = 0;
  for (const auto& op : ops_) n += op != nullptr;
  return n;
}

void ExecutionPlan::Forward(dnnl::stream& stream) {
  for (auto& op : ops_) {
    if (op) op->Forward(stream);
  }
  for (OutputEdge& e : outputs_) e.to_plain.Run(stream);
  stream.wait();
  if (options_.training) ++*random_step_;
  activity_penalty_ = 0;
  for (const ActivityTerm& term : activity_terms_) {
    const dnnl::memory& m = values_[term.value].mem;
    const auto* data = static_cast<const float*>(m.get_data_handle());
    const size_t n = m.get_desc().get_size() / sizeof(float);
    activity_penalty_ += RegularizerPenalty(*term.regularizer, absl::MakeConstSpan(data, n),
                                            ShapeOf(m.get_desc()), 1.0 / double(batch_));
  }
}

void ExecutionPlan::Backward(dnnl::stream& stream) {
  size_t next_term = activity_terms_.size();
  for (int n = static_cast<int>(ops_.size()) - 1; n >= 0; --n) {
    if (!run_backward_[n]) continue;
    for (int v : op_outputs_[n]) {
      Value& value = values_[v];
      if (value.sum) value.sum.Execute(stream, value.sum_args);
      value.copy_in.Run(stream);
    }
    // Activity regularizer gradients join the output's gradient before the op's backward.
    while (next_term > 0 && activity_terms_[next_term - 1].node >= n) {
      const ActivityTerm& term = activity_terms_[--next_term];
      if (term.node != n || !values_[term.value].requires_grad) continue;
      stream.wait();
      const dnnl::memory& m = values_[term.value].mem;
      const size_t count = m.get_desc().get_size() / sizeof(float);
      AddRegularizerGradient(
          *term.regularizer,
          absl::MakeConstSpan(static_cast<const float*>(m.get_data_handle()), count),
          ShapeOf(m.get_desc()), 1.0 / double(batch_),
          absl::MakeSpan(static_cast<float*>(values_[term.value].diff.get_data_handle()), count));
    }
    ops_[n]->Backward(stream);
  }
  // Model inputs have no producing op: their gradients are assembled last.
  for (int v : input_values_) {
    Value& value = values_[v];
    if (value.sum) value.sum.Execute(stream, value.sum_args);
    value.copy_in.Run(stream);
  }
  stream.wait();
}

}  // namespace kiln
