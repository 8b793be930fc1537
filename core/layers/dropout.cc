// Dropout (keras.layers.Dropout): in training, each element is kept with probability 1 - rate
// and scaled by 1 / (1 - rate); in inference it is the identity (a view of its input).
// noise_shape broadcasts one draw over the axes where it is 1.
//
// The mask comes from a counter-based hash of (seed, step, element), where step counts the
// model's training forwards (PlanOptions::random_step): it needs no state shared between
// threads, the same seed replays the same masks, and a fit restored from a checkpoint draws
// the masks it would have drawn.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/status.h"
#include "core/dnnl/memory.h"
#include "core/keras/args.h"
#include "core/layers/registry.h"

namespace kiln {
namespace {

uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

class DropoutOp final : public Op {
 public:
  absl::Status Init(OpContext& ctx, float rate, const std::vector<int64_t>& noise_shape) {
    arena_ = ctx.arena;
    input_needs_grad_ = ctx.input_needs_grad[0];
    training_ = ctx.training && rate > 0;
    if (!training_) {
      outputs_ = {ctx.inputs[0]};  // identity
      return absl::OkStatus();
    }
    rate_ = rate;
    seed_ = ctx.seed;
    random_step_ = ctx.random_step;
    const memory::desc in_md = ctx.inputs[0].get_desc();
    shape_ = ShapeOf(in_md);
    noise_shape_ = noise_shape;
    // Elementwise on the physical buffer is exact for any layout (padding stays 0); broadcast
    // masks need logical positions, so they work on a plain copy.
    memory::desc md = noise_shape.empty() ? in_md : PlainDesc(shape_);
    input_ = StageFrom(ctx.inputs[0], md, *ctx.arena, &to_input_);
    mask_ = static_cast<float*>(ctx.arena->Allocate(md.get_size()));
    memory output = AllocateMemory(md, *ctx.arena);
    outputs_ = {output};
    count_ = int64_t(md.get_size() / sizeof(float));
    return absl::OkStatus();
  }

  void Forward(dnnl::stream& stream) override {
    if (!training_) return;
    to_input_.Run(stream);
    stream.wait();
    FillMask();
    const float* x = static_cast<const float*>(input_.get_data_handle());
    float* y = static_cast<float*>(outputs_[0].get_data_handle());
    const int64_t n = count_;
    const float* m = mask_;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * m[i];
  }

  absl::Status PrepareBackward(const std::vector<memory>& diff_outputs,
                               const std::vector<memory>& diff_inputs, bool) override {
    if (!input_needs_grad_ || !diff_inputs[0]) return absl::OkStatus();
    run_backward_ = true;
    diff_out_ = diff_outputs[0];
    if (training_) {
      diff_in_ = StageTo(diff_inputs[0], diff_out_.get_desc(), *arena_, &to_diff_input_);
    } else {
      to_diff_input_ = Reorder(diff_out_, diff_inputs[0]);  // identity's gradient
    }
    return absl::OkStatus();
  }

  void Backward(dnnl::stream& stream) override {
    if (!run_backward_) return;
    if (training_) {
      const float* dy = static_cast<const float*>(diff_out_.get_data_handle());
      float* dx = static_cast<float*>(diff_in_.get_data_handle());
      const int64_t n = count_;
      const float* m = mask_;
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * m[i];
    }
    to_diff_input_.Run(stream);
  }

 private:
  // mask = 1/(1-rate) where kept, else 0; one draw per noise_shape cell.
  void FillMask() {
    const float keep = 1.0f - rate_;
    const float scale = 1.0f / keep;
    const uint64_t stream_seed = SplitMix64(seed_ ^ SplitMix64(*random_step_));
    if (noise_shape_.empty()) {
      float* m = mask_;
      const int64_t n = count_;
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < n; ++i) {
        const double u = double(SplitMix64(stream_seed + uint64_t(i)) >> 11) * 0x1.0p-53;
        m[i] = u < keep ? scale : 0.0f;
      }
      return;
    }
    const int rank = shape_.rank();
    std::vector<int64_t> index(rank, 0);
    for (int64_t e = 0; e < count_; ++e) {
      int64_t cell = 0;
      for (int d = 0; d < rank; ++d) {
        const int64_t extent = noise_shape_[d] == 1 ? 1 : shape_[d];
        cell = cell * extent + (noise_shape_[d] == 1 ? 0 : index[d]);
      }
      const double u = double(SplitMix64(stream_seed + uint64_t(cell)) >> 11) * 0x1.0p-53;
      mask_[e] = u < keep ? scale : 0.0f;
      for (int d = rank - 1; d >= 0; --d) {
        if (++index[d] < shape_[d]) break;
        index[d] = 0;
      }
    }
  }

  Arena* arena_ = nullptr;
  bool training_ = false, input_needs_grad_ = false, run_backward_ = false;
  float rate_ = 0;
  uint64_t seed_ = 0;
  const uint64_t* random_step_ = nullptr;
  Shape shape_;
  std::vector<int64_t> noise_shape_;
  memory input_, diff_out_, diff_in_;
  Reorder to_input_, to_diff_input_;
  float* mask_ = nullptr;
  int64_t count_ = 0;
};

class DropoutLayer final : public Layer {
 public:
  using Layer::Layer;

  absl::Status Init() override {
    for (int64_t d : args().Ints("noise_shape")) {
      if (d == 0 || d < -1) {
        return FieldError(FieldPath("noise_shape"),
                          absl::StrCat("noise_shape values must be positive, or -1 for the "
                                       "input's size. Received: noise_shape=(",
                                       absl::StrJoin(args().Ints("noise_shape"), ", "), ")"));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<Op>> CreateOp(OpContext& context) override {
    const auto& s = spec().dropout();
    std::vector<int64_t> noise;
    if (!s.noise_shape().empty()) {
      const Shape in = ShapeOf(context.inputs[0].get_desc());
      for (int d = 0; d < in.rank(); ++d) {
        noise.push_back(s.noise_shape(d) == -1 ? in[d] : s.noise_shape(d));
      }
    }
    auto op = std::make_unique<DropoutOp>();
    if (s.has_seed()) context.seed = static_cast<uint64_t>(s.seed());
    KILN_RETURN_IF_ERROR(op->Init(context, s.rate(), noise));
    return op;
  }

 protected:
  absl::StatusOr<std::vector<Shape>> ComputeOutputShapes(
      absl::Span<const Shape> inputs) const override {
    const auto& noise = spec().dropout().noise_shape();
    const Shape& in = inputs[0];
    if (!noise.empty()) {
      bool ok = noise.size() == in.rank();
      for (int d = 1; ok && d < in.rank(); ++d) {
        ok = noise[d] == 1 || noise[d] == -1 || noise[d] == in[d];
      }
      if (!ok || (noise[0] != 1 && noise[0] != -1)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "Layer \"", name(), "\": noise_shape (", absl::StrJoin(noise, ", "),
            ") must have the input's rank, with each entry 1, -1 or the input's size; input shape ",
            in.ToString(), " (the batch entry must be 1 or -1)"));
      }
    }
    return std::vector<Shape>{in};
  }
};

KILN_REGISTER_LAYER(kDropout, DropoutLayer);

}  // namespace
}  // namespace kiln
