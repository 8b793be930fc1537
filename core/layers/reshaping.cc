// Flatten, Reshape and ZeroPadding2D (keras.layers). Flatten and Reshape are views of the
// input's row-major bytes (Keras order), so a plain input costs nothing; a blocked one is
// reordered to plain first. Flatten with data_format="channels_first" moves the channel axis
// last before flattening, as Keras does.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/status.h"
#include "core/dnnl/memory.h"
#include "core/keras/args.h"
#include "core/layers/registry.h"

namespace kiln {
namespace {

// Gives the input's elements, in Keras row-major order of `view_perm`-permuted axes, a new
// shape.
class ReshapeOp final : public Op {
 public:
  // `channels_last_first`: move axis 1 to the end before reshaping (Flatten channels_first).
  absl::Status Init(OpContext& ctx, const Shape& out_shape, bool move_channels_last) {
    arena_ = ctx.arena;
    input_needs_grad_ = ctx.input_needs_grad[0];
    memory input = ctx.inputs[0];
    const int rank = input.get_desc().data.ndims;
    if (move_channels_last && rank > 2) {
      perm_ = InversePermutation(AxisToSecondPermutation(rank, rank - 1));
      input = View(input, input.get_desc().permute_axes(perm_));
    }
    plain_ = StageFrom(input, PlainDesc(ShapeOf(input.get_desc())), *arena_, &to_plain_);
    outputs_ = {View(plain_, PlainDesc(out_shape))};
    return absl::OkStatus();
  }

  void Forward(dnnl::stream& stream) override { to_plain_.Run(stream); }

  absl::Status PrepareBackward(const std::vector<memory>& diff_outputs,
                               const std::vector<memory>& diff_inputs, bool) override {
    if (!input_needs_grad_ || !diff_inputs[0]) return absl::OkStatus();
    memory diff_in = diff_inputs[0];
    if (!perm_.empty()) diff_in = View(diff_in, diff_in.get_desc().permute_axes(perm_));
    to_diff_input_ = Reorder(View(diff_outputs[0], plain_.get_desc()), diff_in);
    return absl::OkStatus();
  }

  void Backward(dnnl::stream& stream) override { to_diff_input_.Run(stream); }

 private:
  Arena* arena_ = nullptr;
  bool input_needs_grad_ = false;
  std::vector<int> perm_;
  memory plain_;
  Reorder to_plain_, to_diff_input_;
};

class FlattenLayer final : public Layer {
 public:
  using Layer::Layer;

  absl::Status Init() override {
    format_ = ParseDataFormat(args().String("data_format"));
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<Op>> CreateOp(OpContext& context) override {
    const Shape in = ShapeOf(context.inputs[0].get_desc());
    auto op = std::make_unique<ReshapeOp>();
    KILN_RETURN_IF_ERROR(op->Init(context, Shape{in[0], in.num_elements() / in[0]},
                                  format_ == DataFormat::kChannelsFirst));
    return op;
  }

 protected:
  absl::StatusOr<std::vector<Shape>> ComputeOutputShapes(
      absl::Span<const Shape> inputs) const override {
    const Shape& in = inputs[0];
    KILN_RETURN_IF_ERROR(CheckMinRank(in, 0, 1));
    int64_t features = 1;
    for (int i = 1; i < in.rank(); ++i) features *= in[i];
    return std::vector<Shape>{Shape{in[0], features}};
  }

 private:
  DataFormat format_ = DataFormat::kChannelsLast;
};

class ReshapeLayer final : public Layer {
 public:
  using Layer::Layer;

  absl::Status Init() override {
    const auto& target = spec().reshape().target_shape();
    int unknown = 0;
    for (int64_t d : target) {
      if (d == -1) ++unknown;
      if (d == 0 || d < -1) {
        return FieldError(FieldPath("target_shape"),
                          absl::StrCat("Reshape target_shape values must be positive, or -1 for "
                                       "the one dimension to infer. Received: target_shape=(",
                                       absl::StrJoin(target, ", "), ")"));
      }
    }
    if (unknown > 1) {
      return FieldError(FieldPath("target_shape"),
                        absl::StrCat("There must be at most one unknown dimension in "
                                     "output_shape. Received: output_shape=(",
                                     absl::StrJoin(target, ", "), ")."));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<Op>> CreateOp(OpContext& context) override {
    KILN_ASSIGN_OR_RETURN(std::vector<Shape> out,
                          ComputeOutputShapes({ShapeOf(context.inputs[0].get_desc())}));
    auto op = std::make_unique<ReshapeOp>();
    KILN_RETURN_IF_ERROR(op->Init(context, out[0], false));
    return op;
  }

 protected:
  absl::StatusOr<std::vector<Shape>> ComputeOutputShapes(
      absl::Span<const Shape> inputs) const override {
    const Shape& in = inputs[0];
    const auto& target = spec().reshape().target_shape();
    int64_t in_size = 1;
    for (int i = 1; i < in.rank(); ++i) in_size *= in[i];
    std::vector<int64_t> known_dims;
    int unknown_axis = -1;
    for (int i = 0; i < target.size(); ++i) {
      if (target[i] == -1) {
        unknown_axis = i;
      } else {
        known_dims.push_back(target[i]);
      }
    }
    // Overflow-safe: a product above the input's size is a mismatch anyway.
    int64_t known = CheckedProduct(known_dims, in_size).value_or(-1);
    std::vector<int64_t> dims = {in[0]};
    dims.insert(dims.end(), target.begin(), target.end());
    if (unknown_axis >= 0 && known > 0 && in_size % known == 0) {
      dims[unknown_axis + 1] = in_size / known;
      known = in_size;
    }
    if (known != in_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("total size of the new array must be unchanged, input_shape = ",
                       in.WithoutBatch().ToString(), ", output_shape = (",
                       absl::StrJoin(target, ", "), ") (layer \"", name(), "\")"));
    }
    return std::vector<Shape>{Shape(dims)};
  }
};

class ZeroPaddingOp final : public Op {
 public:
  absl::Status Init(OpContext& ctx, const Shape& out_shape, const memory::dims& offsets) {
    input_needs_grad_ = ctx.input_needs_grad[0];
    const memory::desc in_md = ctx.inputs[0].get_desc();
    // The arena zero-fills the output once; the border is never written after that.
    memory output = AllocateMemory(PlainDesc(out_shape), *ctx.arena);
    outputs_ = {output};
    interior_ = PlainDesc(out_shape).submemory_desc(in_md.dims(), offsets);
    to_interior_ = Reorder(ctx.inputs[0], View(output, interior_));
    return absl::OkStatus();
  }

  void Forward(dnnl::stream& stream) override { to_interior_.Run(stream); }

  absl::Status PrepareBackward(const std::vector<memory>& diff_outputs,
                               const std::vector<memory>& diff_inputs, bool) override {
    if (!input_needs_grad_ || !diff_inputs[0]) return absl::OkStatus();
    from_interior_ = Reorder(View(diff_outputs[0], interior_), diff_inputs[0]);
    return absl::OkStatus();
  }

  void Backward(dnnl::stream& stream) override { from_interior_.Run(stream); }

 private:
  bool input_needs_grad_ = false;
  memory::desc interior_;
  Reorder to_interior_, from_interior_;
};

class ZeroPadding2DLayer final : public Layer {
 public:
  using Layer::Layer;

  absl::Status Init() override {
    const std::vector<int64_t> p = args().Ints("padding");  // validated: >= 0
    if (p.size() == 1) {
      padding_ = {p[0], p[0], p[0], p[0]};
    } else if (p.size() == 2) {
      padding_ = {p[0], p[0], p[1], p[1]};
    } else if (p.size() == 4) {
      padding_ = {p[0], p[1], p[2], p[3]};
    } else {
      return FieldError(FieldPath("padding"),
                        absl::StrCat("`padding` should be either an int, a tuple of 2 ints "
                                     "(symmetric_height_pad, symmetric_width_pad), or a tuple of "
                                     "2 tuples of 2 ints ((top_pad, bottom_pad), (left_pad, "
                                     "right_pad)), given here as 1, 2 or 4 integers. Received: "
                                     "padding=[",
                                     absl::StrJoin(p, ", "), "]."));
    }
    format_ = ParseDataFormat(args().String("data_format"));
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<Op>> CreateOp(OpContext& context) override {
    const Shape in = ShapeOf(context.inputs[0].get_desc());
    KILN_ASSIGN_OR_RETURN(std::vector<Shape> out, ComputeOutputShapes({in}));
    const bool last = format_ == DataFormat::kChannelsLast;
    const memory::dims offsets = last ? memory::dims{0, padding_[0], padding_[2], 0}
                                      : memory::dims{0, 0, padding_[0], padding_[2]};
    auto op = std::make_unique<ZeroPaddingOp>();
    KILN_RETURN_IF_ERROR(op->Init(context, out[0], offsets));
    return op;
  }

 protected:
  absl::StatusOr<std::vector<Shape>> ComputeOutputShapes(
      absl::Span<const Shape> inputs) const override {
    Shape out = inputs[0];
    KILN_RETURN_IF_ERROR(CheckRank(out, 0, 4));
    const int h = format_ == DataFormat::kChannelsLast ? 1 : 2;
    out[h] += padding_[0] + padding_[1];
    out[h + 1] += padding_[2] + padding_[3];
    return std::vector<Shape>{out};
  }

 private:
  std::array<int64_t, 4> padding_ = {};  // top, bottom, left, right
  DataFormat format_ = DataFormat::kChannelsLast;
};

KILN_REGISTER_LAYER(kFlatten, FlattenLayer);
KILN_REGISTER_LAYER(kReshape, ReshapeLayer);
KILN_REGISTER_LAYER(kZeroPadding2D, ZeroPadding2DLayer);

}  // namespace
}  // namespace kiln
