// Activation, ReLU and Softmax (keras.layers): one ActivationKernel over the input.
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "core/base/status.h"
#include "core/dnnl/memory.h"
#include "core/keras/args.h"
#include "core/layers/activation_kernel.h"
#include "core/layers/registry.h"

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
  using ActivationLayerBase::ActivationLayerBase;

  absl::Status Init() override {
    KILN_ASSIGN_OR_RETURN(activation_,
                          ParseActivation(args().String("activation"), FieldPath("activation")));
    return absl::OkStatus();
  }
};

class ReLULayer final : public ActivationLayerBase {
 public:
  using ActivationLayerBase::ActivationLayerBase;

  absl::Status Init() override {
    activation_ = GeneralizedRelu(
        args().Float("negative_slope"),
        args().OptionalFloat("max_value").value_or(std::numeric_limits<float>::infinity()),
        args().Float("threshold"));
    return absl::OkStatus();
  }
};

class SoftmaxLayer final : public ActivationLayerBase {
 public:
  using ActivationLayerBase::ActivationLayerBase;

  absl::Status Init() override {
    activation_.kind = ActivationKind::kSoftmax;
    activation_.name = "softmax";
    activation_.axis = args().Int("axis");
    return absl::OkStatus();
  }
};

KILN_REGISTER_LAYER(kActivation, ActivationLayer);
KILN_REGISTER_LAYER(kRelu, ReLULayer);
KILN_REGISTER_LAYER(kSoftmax, SoftmaxLayer);

}  // namespace
}  // namespace kiln
