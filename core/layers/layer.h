// Layer: one Keras layer instance - its validated spec, its weights, and how to compute it.
//
// A layer is created from a LayerSpec (registry.h). The base reads what every layer message
// shares - its Keras class (the message's KerasClass option), name, trainable, dtype and
// activity_regularizer - and validates every argument against its KerasArg option before the
// layer's own Init runs; layers read their arguments through args(), with Keras's defaults.
//
// A layer is built lazily: the first call fixes the input shapes and creates the weights. Calling
// the same instance on other tensors shares those weights, and every later call must match the
// shapes it was built for. Calls are validated first (OutputShapes) and applied after, so a call
// that fails leaves the layer unchanged.
//
// Execution happens in Ops (core/exec/op.h) that CreateOp makes for an execution plan.
#ifndef KILN_CORE_LAYERS_LAYER_H_
#define KILN_CORE_LAYERS_LAYER_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/exec/op.h"
#include "core/exec/variable.h"
#include "core/keras/spec_args.h"
#include "core/tensor/shape.h"
#include "kiln/v1/layers.pb.h"

namespace kiln {

// The most elements one weight may have (1 GiB of float32).
inline constexpr int64_t kMaxWeightElements = int64_t{1} << 28;

// How one weight is initialised, regularised and constrained: resolved from the spec fields
// "<prefix>_initializer", "<prefix>_regularizer" and "<prefix>_constraint".
struct WeightSpec {
  std::string prefix;  // "kernel", "depthwise", "bias", "gamma", ...
  v1::Initializer initializer;
  std::optional<v1::Regularizer> regularizer;
  std::optional<v1::Constraint> constraint;
};

// The kernel and bias of the layers that have them (Conv2D, DepthwiseConv2D, Dense).
struct KernelAndBias {
  WeightSpec kernel, bias;
  bool use_bias = true;
};

class Layer {
 public:
  // `spec` holds one layer message; `seed` seeds the weights whose initializers have none.
  // Layers are made by CreateLayer (registry.h), which validates them.
  Layer(const v1::LayerSpec& spec, uint64_t seed);
  virtual ~Layer() = default;
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  const std::string& name() const { return name_; }
  // Renames an unnamed layer (the graph gives Keras-style unique names). Updates spec().
  void set_name(std::string name);
  // Keras class name: "DepthwiseConv2D".
  const std::string& class_name() const { return class_name_; }
  // Keras auto-name stem: "depthwise_conv2d".
  const std::string& base_name() const { return base_name_; }
  bool trainable() const { return trainable_; }
  // The spec this layer was created from, with its final name.
  const v1::LayerSpec& spec() const { return spec_; }

  // How many input tensors a call takes (the message's KerasClass option).
  int min_inputs() const;
  int max_inputs() const;

  // Shapes of the outputs of a call on tensors of `inputs` shapes (the batch dimension may be
  // unknown). Checks arity, ranks, and - for a built layer - that the axes its weights depend
  // on (the channel axis of a convolution, the last axis of Dense) match. Changes nothing.
  absl::StatusOr<std::vector<Shape>> OutputShapes(absl::Span<const Shape> inputs) const;

  // Creates the weights on the first call; later calls do nothing. On error the layer is left
  // unbuilt.
  absl::Status BuildIfNeeded(absl::Span<const Shape> inputs);
  bool built() const { return built_; }
  // The seed its initializers draw from (CreateLayer's).
  uint64_t seed() const { return seed_; }
  // Takes the weights of `twin`: a built layer created from this layer's spec and seed, whose
  // weights are therefore those this layer's first call would create. Callers use it to
  // initialise weights without holding the locks that guard this layer. FAILED_PRECONDITION
  // when this layer is already built, `twin` is not, or it is another class.
  absl::Status AdoptWeights(Layer& twin);

  const std::vector<std::unique_ptr<Variable>>& variables() const { return variables_; }
  Variable* variable(absl::string_view name) const;
  int64_t CountParams() const;

  // Keras set_weights: one float32 tensor per variable, in variables() order and Keras layout.
  // All shapes are checked before anything is written.
  absl::Status SetWeights(absl::Span<const Tensor> weights);
  // Sets one weight by name; "depthwise_kernel" (Keras 2's name) also finds "kernel".
  absl::Status SetWeight(absl::string_view name, const Tensor& value);

  const std::optional<v1::Regularizer>& activity_regularizer() const {
    return activity_regularizer_;
  }

  // The op that computes one call of this layer on inputs of the given memories.
  virtual absl::StatusOr<std::unique_ptr<Op>> CreateOp(OpContext& context) = 0;

  // Inference fusion (see Epilogue): whether this layer's op can compute a following
  // normalization and activation itself...
  virtual bool AcceptsEpilogue() const { return false; }
  // ...whether this layer, run in inference mode on a tensor whose channels are on
  // `channel_axis`, is a normalization that folds into the producer's weights...
  virtual std::optional<Epilogue::Normalization> AsFoldedNormalization(int /*channel_axis*/,
                                                                       bool /*training*/) const {
    return std::nullopt;
  }
  // ...and whether it is a pointwise activation oneDNN can run as a post-op.
  virtual std::optional<Activation> AsFusedActivation() const { return std::nullopt; }
  // For a producer: the axis of its output that holds channels.
  virtual int ChannelAxis() const { return -1; }

  // "depthwise_conv2d.<field>": where a field of this layer's spec is, for error paths.
  std::string FieldPath(absl::string_view field) const;

 protected:
  // The layer's own checks and set-up, after the base validated every argument.
  virtual absl::Status Init() { return absl::OkStatus(); }
  // The layer message's arguments, with Keras's defaults.
  const SpecArgs& args() const { return args_; }

  virtual absl::StatusOr<std::vector<Shape>> ComputeOutputShapes(
      absl::Span<const Shape> inputs) const = 0;
  virtual absl::Status Build(absl::Span<const Shape> inputs);

  // Resolves the weight spec fields "<prefix>_initializer" (default: its option's),
  // "<prefix>_regularizer" and "<prefix>_constraint" - those of them the message has.
  absl::StatusOr<WeightSpec> WeightArgs(absl::string_view prefix) const;
  // The kernel ("<kernel_prefix>_*"), bias ("bias_*") and use_bias arguments.
  absl::StatusOr<KernelAndBias> KernelAndBiasArgs(absl::string_view kernel_prefix) const;

  // Adds a weight of `shape` initialised per `spec`. Its regularizer and constraint are checked
  // against the shape; errors name the spec's fields. RESOURCE_EXHAUSTED past
  // kMaxWeightElements.
  absl::StatusOr<Variable*> AddWeight(std::string name, Shape shape, const WeightSpec& spec,
                                      bool trainable = true);

  // Keras's InputSpec errors, at field path "inputs[index]" (the call's input):
  // 'Input 0 of layer "x" is incompatible with the layer: expected ndim=4, found ndim=3. ...'
  absl::Status CheckRank(const Shape& input, int index, int rank) const;
  absl::Status CheckMinRank(const Shape& input, int index, int min_rank) const;
  // 'Input 0 of layer "x" is incompatible with the layer: expected axis -1 of input shape to
  // have value 3, but received input with shape (None, 32, 32, 4)'
  absl::Status CheckAxisValue(const Shape& input, int index, int axis, int64_t value) const;

  // "inputs[index]".
  static std::string InputPath(int index);

  const std::vector<Shape>& built_input_shapes() const { return built_input_shapes_; }
  std::optional<v1::Regularizer> activity_regularizer_;

 private:
  friend absl::StatusOr<std::unique_ptr<Layer>> CreateLayer(const v1::LayerSpec&, uint64_t);
  // Validates the arguments and reads those every layer shares, then runs Init().
  absl::Status Initialize();

  v1::LayerSpec spec_;
  const google::protobuf::FieldDescriptor* spec_field_;  // the LayerSpec oneof case
  SpecArgs args_;                                        // over spec_'s layer message
  std::string class_name_, base_name_, name_;
  bool trainable_ = true;
  uint64_t seed_ = 0;
  bool built_ = false;
  std::vector<Shape> built_input_shapes_;
  std::vector<std::unique_ptr<Variable>> variables_;
};

}  // namespace kiln

#endif  // KILN_CORE_LAYERS_LAYER_H_
