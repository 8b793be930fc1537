// Add and Concatenate (keras.layers): merges of two or more tensors. Inputs may come in
// different layouts; oneDNN's sum and concat primitives read each as it is. Add broadcasts as
// Keras 3 does: the non-batch dims, aligned from the right, may be 1 where another input's are
// not ((4, 4, 3) + (1, 1, 3), or + (3,)).
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/status.h"
#include "core/dnnl/engine.h"
#include "core/dnnl/memory.h"
#include "core/dnnl/primitive.h"
#include "core/keras/args.h"
#include "core/layers/registry.h"

namespace kiln {
namespace {

std::string ShapesRepr(absl::Span<const Shape> shapes) {
  return absl::StrCat(
      "[",
      absl::StrJoin(shapes, ", ",
                    [](std::string* out, const Shape& s) { absl::StrAppend(out, s.ToString()); }),
      "]");
}

class AddOp final : public Op {
 public:
  absl::Status Init(OpContext& ctx) {
    needs_grad_ = ctx.input_needs_grad;
    std::vector<memory::desc> srcs;
    for (const memory& m : ctx.inputs) srcs.push_back(m.get_desc());
    const std::vector<float> scales(srcs.size(), 1.0f);
    // The first input's layout for the result, so the common residual pattern needs no reorder.
    dnnl::sum::primitive_desc pd(srcs[0], scales, srcs, CpuEngine(), WithUserScratchpad());
    sum_ = Primitive::Create<dnnl::sum>(pd, ctx.arena);
    memory output = AllocateMemory(pd.dst_desc(), *ctx.arena);
    outputs_ = {output};
    args_[DNNL_ARG_DST] = output;
    for (size_t i = 0; i < ctx.inputs.size(); ++i) {
      args_[DNNL_ARG_MULTIPLE_SRC + int(i)] = ctx.inputs[i];
    }
    return absl::OkStatus();
  }

  void Forward(dnnl::stream& stream) override { sum_.Execute(stream, args_); }

  absl::Status PrepareBackward(const std::vector<memory>& diff_outputs,
                               const std::vector<memory>& diff_inputs, bool) override {
    for (size_t i = 0; i < diff_inputs.size(); ++i) {
      if (needs_grad_[i] && diff_inputs[i]) {
        to_diff_inputs_.emplace_back(diff_outputs[0], diff_inputs[i]);
      }
    }
    return absl::OkStatus();
  }

  void Backward(dnnl::stream& stream) override {
    for (const Reorder& r : to_diff_inputs_) r.Run(stream);
  }

 private:
  std::vector<bool> needs_grad_;
  Primitive sum_;
  std::unordered_map<int, memory> args_;
  std::vector<Reorder> to_diff_inputs_;
};

// The dims an input takes at the output's rank: 1s inserted after the batch, as Keras's Merge
// expands a lower-rank input at axis 1.
memory::dims ExpandedDims(const memory::dims& dims, size_t rank) {
  memory::dims expanded = {dims[0]};
  expanded.insert(expanded.end(), rank - dims.size(), 1);
  expanded.insert(expanded.end(), dims.begin() + 1, dims.end());
  return expanded;
}

Shape ShapeOfDims(const memory::dims& dims) { return Shape(std::vector<int64_t>(dims)); }

// Add of inputs whose dims differ. Each input is read in plain layout at the output's rank and
// added into the output by oneDNN's binary add, which broadcasts its second source; an input's
// gradient is the output's gradient summed over the dims it was broadcast along.
class BroadcastAddOp final : public Op {
 public:
  absl::Status Init(OpContext& ctx) {
    arena_ = ctx.arena;
    needs_grad_ = ctx.input_needs_grad;
    size_t rank = 0;
    for (const memory& m : ctx.inputs) rank = std::max(rank, m.get_desc().dims().size());
    out_dims_ = memory::dims(rank, 1);
    for (const memory& m : ctx.inputs) {
      const memory::dims expanded = ExpandedDims(m.get_desc().dims(), rank);
      for (size_t d = 0; d < rank; ++d) out_dims_[d] = std::max(out_dims_[d], expanded[d]);
      expanded_.push_back(expanded);
    }
    const memory::desc out_md = PlainDesc(ShapeOfDims(out_dims_));
    output_ = AllocateMemory(out_md, *arena_);
    outputs_ = {output_};
    to_plain_.resize(ctx.inputs.size());
    for (size_t i = 0; i < ctx.inputs.size(); ++i) {
      const memory::desc own = PlainDesc(ShapeOf(ctx.inputs[i].get_desc()));
      const memory plain = StageFrom(ctx.inputs[i], own, *arena_, &to_plain_[i]);
      const memory::desc expanded_md = PlainDesc(ShapeOfDims(expanded_[i]));
      dnnl::binary::primitive_desc pd(
          dnnl::binary::desc(dnnl::algorithm::binary_add, out_md, expanded_md, out_md),
          WithUserScratchpad(), CpuEngine());
      adds_.push_back(Primitive::Create<dnnl::binary>(pd, arena_));
      sources_.push_back(View(plain, expanded_md));
    }
    return absl::OkStatus();
  }

  void Forward(dnnl::stream& stream) override {
    for (const Reorder& r : to_plain_) r.Run(stream);
    stream.wait();
    std::fill_n(static_cast<float*>(output_.get_data_handle()), Elements(out_dims_), 0.0f);
    for (size_t i = 0; i < adds_.size(); ++i) {
      adds_[i].Execute(
          stream,
          {{DNNL_ARG_SRC_0, output_}, {DNNL_ARG_SRC_1, sources_[i]}, {DNNL_ARG_DST, output_}});
    }
  }

  absl::Status PrepareBackward(const std::vector<memory>& diff_outputs,
                               const std::vector<memory>& diff_inputs, bool) override {
    const memory::desc out_md = PlainDesc(ShapeOfDims(out_dims_));
    plain_diff_ = StageFrom(diff_outputs[0], out_md, *arena_, &diff_to_plain_);
    for (size_t i = 0; i < diff_inputs.size(); ++i) {
      if (!needs_grad_[i] || !diff_inputs[i]) continue;
      const memory::desc own = PlainDesc(ShapeOf(diff_inputs[i].get_desc()));
      memory summed = plain_diff_;
      if (expanded_[i] != out_dims_) {
        const memory::desc reduced_md = PlainDesc(ShapeOfDims(expanded_[i]));
        dnnl::reduction::primitive_desc pd(
            dnnl::reduction::desc(dnnl::algorithm::reduction_sum, out_md, reduced_md, 0, 0),
            WithUserScratchpad(), CpuEngine());
        summed = AllocateMemory(reduced_md, *arena_);
        reductions_.push_back({Primitive::Create<dnnl::reduction>(pd, arena_), summed});
      }
      to_diff_inputs_.emplace_back(View(summed, own), diff_inputs[i]);
    }
    return absl::OkStatus();
  }

  void Backward(dnnl::stream& stream) override {
    diff_to_plain_.Run(stream);
    for (Reduction& r : reductions_) {
      r.primitive.Execute(stream, {{DNNL_ARG_SRC, plain_diff_}, {DNNL_ARG_DST, r.dst}});
    }
    for (const Reorder& r : to_diff_inputs_) r.Run(stream);
  }

 private:
  static int64_t Elements(const memory::dims& dims) {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    return n;
  }
  struct Reduction {
    Primitive primitive;
    memory dst;
  };

  Arena* arena_ = nullptr;
  std::vector<bool> needs_grad_;
  memory::dims out_dims_;
  std::vector<memory::dims> expanded_;
  memory output_;
  std::vector<Reorder> to_plain_;
  std::vector<Primitive> adds_;
  std::vector<memory> sources_;
  memory plain_diff_;
  Reorder diff_to_plain_;
  std::vector<Reduction> reductions_;
  std::vector<Reorder> to_diff_inputs_;
};

class ConcatOp final : public Op {
 public:
  absl::Status Init(OpContext& ctx, int axis) {
    arena_ = ctx.arena;
    axis_ = axis;
    needs_grad_ = ctx.input_needs_grad;
    std::vector<memory::desc> srcs;
    for (const memory& m : ctx.inputs) {
      srcs.push_back(m.get_desc());
      extents_.push_back(m.get_desc().dims()[axis]);
    }
    dnnl::concat::primitive_desc pd(axis, srcs, CpuEngine(), WithUserScratchpad());
    concat_ = Primitive::Create<dnnl::concat>(pd, ctx.arena);
    memory output = AllocateMemory(pd.dst_desc(), *ctx.arena);
    outputs_ = {output};
    args_[DNNL_ARG_DST] = output;
    for (size_t i = 0; i < ctx.inputs.size(); ++i) {
      args_[DNNL_ARG_MULTIPLE_SRC + int(i)] = ctx.inputs[i];
    }
    return absl::OkStatus();
  }

  void Forward(dnnl::stream& stream) override { concat_.Execute(stream, args_); }

  absl::Status PrepareBackward(const std::vector<memory>& diff_outputs,
                               const std::vector<memory>& diff_inputs, bool) override {
    // Slices of a blocked layout along its blocked axis are not addressable, so the gradient
    // is sliced from a plain copy.
    const memory::desc plain_md = PlainDesc(ShapeOf(diff_outputs[0].get_desc()));
    plain_diff_ = StageFrom(diff_outputs[0], plain_md, *arena_, &to_plain_);
    int64_t offset = 0;
    for (size_t i = 0; i < diff_inputs.size(); ++i) {
      if (needs_grad_[i] && diff_inputs[i]) {
        memory::dims sub_dims = plain_md.dims();
        sub_dims[axis_] = extents_[i];
        memory::dims offsets(sub_dims.size(), 0);
        offsets[axis_] = offset;
        to_diff_inputs_.emplace_back(View(plain_diff_, plain_md.submemory_desc(sub_dims, offsets)),
                                     diff_inputs[i]);
      }
      offset += extents_[i];
    }
    return absl::OkStatus();
  }

  void Backward(dnnl::stream& stream) override {
    to_plain_.Run(stream);
    for (const Reorder& r : to_diff_inputs_) r.Run(stream);
  }

 private:
  Arena* arena_ = nullptr;
  int axis_ = 0;
  std::vector<int64_t> extents_;
  std::vector<bool> needs_grad_;
  Primitive concat_;
  std::unordered_map<int, memory> args_;
  memory plain_diff_;
  Reorder to_plain_;
  std::vector<Reorder> to_diff_inputs_;
};

class AddLayer final : public Layer {
 public:
  using Layer::Layer;

  absl::StatusOr<std::unique_ptr<Op>> CreateOp(OpContext& context) override {
    bool same = true;
    for (const memory& m : context.inputs) {
      same = same && m.get_desc().dims() == context.inputs[0].get_desc().dims();
    }
    if (!same) {
      auto op = std::make_unique<BroadcastAddOp>();
      KILN_RETURN_IF_ERROR(op->Init(context));
      return op;
    }
    auto op = std::make_unique<AddOp>();
    KILN_RETURN_IF_ERROR(op->Init(context));
    return op;
  }

 protected:
  // Keras 3's Merge._compute_elemwise_op_output_shape over the non-batch dims, input by input.
  absl::StatusOr<std::vector<Shape>> ComputeOutputShapes(
      absl::Span<const Shape> inputs) const override {
    std::vector<int64_t> out(inputs[0].dims().begin() + 1, inputs[0].dims().end());
    for (size_t i = 1; i < inputs.size(); ++i) {
      std::vector<int64_t> other(inputs[i].dims().begin() + 1, inputs[i].dims().end());
      std::vector<int64_t>& longer = out.size() >= other.size() ? out : other;
      const std::vector<int64_t>& shorter = out.size() >= other.size() ? other : out;
      std::vector<int64_t> merged(longer.begin(), longer.end() - shorter.size());
      for (size_t d = 0; d < shorter.size(); ++d) {
        const int64_t a = longer[longer.size() - shorter.size() + d], b = shorter[d];
        if (a != b && a != 1 && b != 1) {
          return absl::InvalidArgumentError(absl::StrCat(
              "Inputs have incompatible shapes. Received shapes ",
              Shape(std::vector<int64_t>(out)).ToString(), " and ",
              Shape(std::vector<int64_t>(other)).ToString(), " (layer \"", name(), "\")"));
        }
        merged.push_back(a == 1 ? b : a);
      }
      out = std::move(merged);
    }
    std::vector<int64_t> with_batch = {inputs[0][0]};
    with_batch.insert(with_batch.end(), out.begin(), out.end());
    return std::vector<Shape>{Shape(std::move(with_batch))};
  }
};

class ConcatenateLayer final : public Layer {
 public:
  using Layer::Layer;

  absl::Status Init() override {
    axis_ = args().Int("axis");
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<Op>> CreateOp(OpContext& context) override {
    auto op = std::make_unique<ConcatOp>();
    KILN_RETURN_IF_ERROR(
        op->Init(context, NormalizeAxis(axis_, context.inputs[0].get_desc().data.ndims)));
    return op;
  }

 protected:
  absl::StatusOr<std::vector<Shape>> ComputeOutputShapes(
      absl::Span<const Shape> inputs) const override {
    const int rank = inputs[0].rank();
    if (axis_ >= rank || axis_ < -rank || NormalizeAxis(axis_, rank) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Invalid axis for layer \"", name(), "\": axis=", axis_, " for inputs of shape ",
          ShapesRepr(inputs), " (the batch axis cannot be concatenated)."));
    }
    const int axis = NormalizeAxis(axis_, rank);
    Shape out = inputs[0];
    for (size_t i = 1; i < inputs.size(); ++i) {
      bool ok = inputs[i].rank() == rank;
      for (int d = 1; ok && d < rank; ++d) ok = d == axis || inputs[i][d] == inputs[0][d];
      if (!ok) {
        return absl::InvalidArgumentError(absl::StrCat(
            "A `Concatenate` layer requires inputs with matching shapes except for the "
            "concatenation axis. Received: input_shape=",
            ShapesRepr(inputs), " (layer \"", name(), "\")"));
      }
      out[axis] += inputs[i][axis];
    }
    return std::vector<Shape>{out};
  }

 private:
  int axis_ = 0;
};

KILN_REGISTER_LAYER(kAdd, AddLayer);
KILN_REGISTER_LAYER(kConcatenate, ConcatenateLayer);

}  // namespace
}  // namespace kiln
