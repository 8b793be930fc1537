// Add and Concatenate (keras.layers): merges of two or more tensors. Inputs may come in
// different layouts; oneDNN's sum and concat primitives read each as it is.
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
    auto op = std::make_unique<AddOp>();
    KILN_RETURN_IF_ERROR(op->Init(context));
    return op;
  }

 protected:
  absl::StatusOr<std::vector<Shape>> ComputeOutputShapes(
      absl::Span<const Shape> inputs) const override {
    for (size_t i = 1; i < inputs.size(); ++i) {
      if (inputs[i].rank() != inputs[0].rank() ||
          !std::equal(inputs[i].dims().begin() + 1, inputs[i].dims().end(),
                      inputs[0].dims().begin() + 1)) {
        return absl::InvalidArgumentError(
            absl::StrCat("Inputs have incompatible shapes. Received shapes ", inputs[0].ToString(),
                         " and ", inputs[i].ToString(), " (layer \"", name(), "\")"));
      }
    }
    return std::vector<Shape>{inputs[0]};
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
