// Activation, ReLU and Softmax (keras.layers): one ActivationKernel over the input.
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "core/base/status.h"
#include "core/dnnl/memory.h"
#include "core/keras/args.h"
#include "core/layers/activation_kernel.h"
#include "core/layers/factories.h"

namespace kiln {
namespace {

class ActivationOp final : public Op {
 public:
  absl::Status Init(OpContext& ctx, const Activation& activation) {
    arena_ = ctx.arena;
    input_needs_grad_ = ctx.input_needs_grad[0];
    const memory::desc md = ctx.inputs[0].get_desc();
    memory output = AllocateMemory(md, *arena_);
    outputs_ = {output};
    KILN_ASSIGN_OR_RETURN(kernel_, ActivationKernel::Create(activation, ctx.inputs[0], output,
                                                            ctx.backward, *arena_));
    return absl::OkStatus();
  }

  void Forward(dnnl::stream& stream) override { kernel_->Forward(stream); }

  absl::Status PrepareBackward(const std::vector<memory>& diff_outputs,
                               const std::vector<memory>& diff_inputs, bool) override {
    if (!input_needs_grad_ || !diff_inputs[0]) return absl::OkStatus();
    run_backward_ = true;
    return kernel_->PrepareBackward(diff_outputs[0], diff_inputs[0]);
  }

  void Backward(dnnl::stream& stream) override {
    if (run_backward_) kernel_->Backward(stream);
  }

 private:
  Arena* arena_ = nullptr;
  bool input_needs_grad_ = false, run_backward_ = false;
  std::unique_ptr<ActivationKernel> kernel_;
};

// Base of the three layers: they differ only in how the spec gives the activation.
class ActivationLayerBase : public Layer {
 public:
  using Layer::Layer;

  absl::StatusOr<std::unique_ptr<Op>> CreateOp(OpContext& context) override {
    auto op = std::make_unique<ActivationOp>();
    KILN_RETURN_IF_ERROR(op->Init(context, activation_));
    return op;
  }

  std::optional<Activation> AsFusedActivation() const override {
    if (!ActivationKernel::FusablePostOp(activation_, /*training=*/false).has_value()) {
      return std::nullopt;
    }
    return activation_;
  }

 protected:
  absl::StatusOr<std::vector<Shape>> ComputeOutputShapes(
      absl::Span<const Shape> inputs) const override {
    const Shape& in = inputs[0];
    if (!activation_.is_pointwise()) {
      KILN_RETURN_IF_ERROR(CheckMinRank(in, 0, 2));
      if (activation_.axis >= in.rank() || activation_.axis < -in.rank()) {
        return absl::InvalidArgumentError(
            absl::StrCat("Layer \"", name(), "\": axis ", activation_.axis,
                         " is out of bounds for an input of shape ", in.ToString()));
      }
    }
    return std::vector<Shape>{in};
  }

  Activation activation_;
};

class ActivationLayer final : public ActivationLayerBase {
 public:
  ActivationLayer(const v1::LayerSpec& spec, uint64_t seed)
      : ActivationLayerBase(spec, "Activation", "activation", "activation",
                            spec.activation().name(), TrainableOf(spec.activation()), seed) {}

  absl::Status Init() {
    const auto& s = spec().activation();
    if (s.activation().empty()) {
      return FieldError(FieldPath("activation"),
                        "Missing required argument `activation`: a Keras activation name.");
    }
    KILN_ASSIGN_OR_RETURN(activation_, ParseActivation(s.activation(), FieldPath("activation")));
    return CheckDType(s.dtype(), FieldPath("dtype"));
  }
};

class ReLULayer final : public ActivationLayerBase {
 public:
  ReLULayer(const v1::LayerSpec& spec, uint64_t seed)
      : ActivationLayerBase(spec, "ReLU", "re_lu", "relu", spec.relu().name(),
                            TrainableOf(spec.relu()), seed) {}

  absl::Status Init() {
    const auto& s = spec().relu();
    if (s.has_max_value() && !(s.max_value() >= 0)) {
      return FieldError(FieldPath("max_value"),
                        absl::StrCat("max_value of a ReLU layer cannot be a negative value. "
                                     "Received: max_value=",
                                     s.max_value()));
    }
    if (!(s.negative_slope() >= 0)) {
      return FieldError(FieldPath("negative_slope"),
                        absl::StrCat("negative_slope of a ReLU layer cannot be a negative value. "
                                     "Received: negative_slope=",
                                     s.negative_slope()));
    }
    if (!(s.threshold() >= 0)) {
      return FieldError(FieldPath("threshold"),
                        absl::StrCat("threshold of a ReLU layer cannot be a negative value. "
                                     "Received: threshold=",
                                     s.threshold()));
    }
    activation_ = GeneralizedRelu(
        s.negative_slope(),
        s.has_max_value() ? s.max_value() : std::numeric_limits<float>::infinity(), s.threshold());
    return CheckDType(s.dtype(), FieldPath("dtype"));
  }
};

class SoftmaxLayer final : public ActivationLayerBase {
 public:
  SoftmaxLayer(const v1::LayerSpec& spec, uint64_t seed)
      : ActivationLayerBase(spec, "Softmax", "softmax", "softmax", spec.softmax().name(),
                            TrainableOf(spec.softmax()), seed) {}

  absl::Status Init() {
    const auto& s = spec().softmax();
    activation_.kind = ActivationKind::kSoftmax;
    activation_.name = "softmax";
    activation_.axis = s.has_axis() ? s.axis() : -1;
    return CheckDType(s.dtype(), FieldPath("dtype"));
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<Layer>> CreateActivation(const v1::LayerSpec& spec, uint64_t seed) {
  return MakeLayer<ActivationLayer>(spec, seed);
}
absl::StatusOr<std::unique_ptr<Layer>> CreateReLU(const v1::LayerSpec& spec, uint64_t seed) {
  return MakeLayer<ReLULayer>(spec, seed);
}
absl::StatusOr<std::unique_ptr<Layer>> CreateSoftmax(const v1::LayerSpec& spec, uint64_t seed) {
  return MakeLayer<SoftmaxLayer>(spec, seed);
}

}  // namespace kiln
