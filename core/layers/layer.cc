#include "core/layers/layer.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "core/base/status.h"
#include "core/keras/constraints.h"
#include "core/keras/initializers.h"
#include "core/keras/keras_class.h"
#include "core/keras/regularizers.h"
#include "core/layers/parameter_budget.h"

namespace kiln {
namespace {

// The layer message `spec` holds; its oneof case must be set (CreateLayer checks).
const google::protobuf::FieldDescriptor* LayerField(const v1::LayerSpec& spec) {
  const auto* oneof = v1::LayerSpec::descriptor()->FindOneofByName("layer");
  return spec.GetReflection()->GetOneofFieldDescriptor(spec, oneof);
}

const google::protobuf::Message& LayerMessage(const v1::LayerSpec& spec) {
  return spec.GetReflection()->GetMessage(spec, LayerField(spec));
}

}  // namespace

Layer::Layer(const v1::LayerSpec& spec, uint64_t seed)
    : spec_(spec),
      spec_field_(LayerField(spec_)),
      args_(LayerMessage(spec_), spec_field_->name()),
      class_name_(KerasClassOf(spec_field_->message_type()).class_name()),
      base_name_(KerasSnakeCase(class_name_)),
      name_(args_.String("name")),
      trainable_(args_.Bool("trainable")),
      seed_(seed) {}

absl::Status Layer::Initialize() {
  KILN_RETURN_IF_ERROR(args_.Validate());
  if (spec_field_->message_type()->FindFieldByName("activity_regularizer") != nullptr) {
    const auto& message = args_.message();
    const auto* field = message.GetDescriptor()->FindFieldByName("activity_regularizer");
    KILN_ASSIGN_OR_RETURN(
        activity_regularizer_,
        ResolveRegularizer(static_cast<const v1::Regularizer&>(
                               message.GetReflection()->GetMessage(message, field)),
                           FieldPath("activity_regularizer")));
  }
  return Init();
}

void Layer::set_name(std::string name) {
  name_ = std::move(name);
  auto* message = spec_.GetReflection()->MutableMessage(&spec_, spec_field_);
  message->GetReflection()->SetString(message, message->GetDescriptor()->FindFieldByName("name"),
                                      name_);
}

int Layer::min_inputs() const { return CallArityOf(spec_field_->message_type()).min_inputs; }

int Layer::max_inputs() const { return CallArityOf(spec_field_->message_type()).max_inputs; }

absl::StatusOr<std::vector<Shape>> Layer::OutputShapes(absl::Span<const Shape> inputs) const {
  const int n = static_cast<int>(inputs.size());
  if (n < min_inputs() || n > max_inputs()) {
    if (max_inputs() == 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Layer \"", name_, "\" expects 1 input, but it received ", n, " input tensors."));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("A merge layer should be called on a list of at least ", min_inputs(),
                     " inputs. Got ", n, " inputs. (layer \"", name_, "\")"));
  }
  KILN_ASSIGN_OR_RETURN(std::vector<Shape> outputs, ComputeOutputShapes(inputs));
  for (const Shape& out : outputs) {
    if (!CheckedProduct(out.WithoutBatch().dims()).has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer \"", name_, "\" would produce a tensor of shape ", out.ToString(),
                       ", more than ", kMaxTensorElements, " elements per sample"));
    }
    if (activity_regularizer_.has_value()) {
      KILN_RETURN_IF_ERROR(
          CheckRegularizerShape(*activity_regularizer_, out, FieldPath("activity_regularizer")));
    }
  }
  return outputs;
}

absl::Status Layer::BuildIfNeeded(absl::Span<const Shape> inputs) {
  if (built_) return absl::OkStatus();
  absl::Status status = Build(inputs);
  if (!status.ok()) {
    variables_.clear();
    return status;
  }
  built_input_shapes_.assign(inputs.begin(), inputs.end());
  built_ = true;
  return absl::OkStatus();
}

absl::Status Layer::Build(absl::Span<const Shape>) { return absl::OkStatus(); }

absl::Status Layer::AdoptWeights(Layer& twin) {
  if (built_ || !twin.built_ || twin.class_name_ != class_name_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "layer \"", name_, "\" cannot take the weights of layer \"", twin.name_, "\""));
  }
  variables_ = std::move(twin.variables_);
  built_input_shapes_ = std::move(twin.built_input_shapes_);
  built_ = true;
  twin.variables_.clear();
  twin.built_ = false;
  return absl::OkStatus();
}

Variable* Layer::variable(absl::string_view name) const {
  for (const auto& v : variables_) {
    if (v->name == name) return v.get();
  }
  return nullptr;
}

namespace {

absl::Status CheckWeightShape(const std::string& layer, const Variable& v, const Tensor& value) {
  if (value.dtype() != DType::kFloat32) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Layer ", layer, " weight ", v.name, " must be float32, got ", DTypeName(value.dtype())));
  }
  if (value.shape() != v.value.shape()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Layer ", layer, " weight shape ", v.value.shape().ToString(),
                     " is not compatible with provided weight shape ", value.shape().ToString(),
                     " (weight \"", v.name, "\")."));
  }
  return absl::OkStatus();
}

void CopyInto(Variable& v, const Tensor& value) {
  std::copy_n(value.data<float>(), value.num_elements(), v.value.data<float>());
  v.MarkChanged();
}

}  // namespace

absl::Status Layer::SetWeights(absl::Span<const Tensor> weights) {
  if (weights.size() != variables_.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "You called `set_weights(weights)` on layer \"", name_,
        "\" with a weight list of "
        "length ",
        weights.size(), ", but the layer was expecting ", variables_.size(), " weights."));
  }
  for (size_t i = 0; i < weights.size(); ++i) {
    KILN_RETURN_IF_ERROR(CheckWeightShape(name_, *variables_[i], weights[i]));
  }
  for (size_t i = 0; i < weights.size(); ++i) CopyInto(*variables_[i], weights[i]);
  return absl::OkStatus();
}

absl::Status Layer::SetWeight(absl::string_view name, const Tensor& value) {
  Variable* v = variable(name == "depthwise_kernel" ? "kernel" : name);
  if (v == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("layer \"", name_, "\" has no weight named \"", name, "\""));
  }
  KILN_RETURN_IF_ERROR(CheckWeightShape(name_, *v, value));
  CopyInto(*v, value);
  return absl::OkStatus();
}

int64_t Layer::CountParams() const {
  int64_t n = 0;
  for (const auto& v : variables_) n += v->value.num_elements();
  return n;
}

absl::StatusOr<WeightSpec> Layer::WeightArgs(absl::string_view prefix) const {
  const google::protobuf::Message& message = args_.message();
  const auto* descriptor = message.GetDescriptor();
  const auto* reflection = message.GetReflection();
  auto field = [&](absl::string_view suffix) {
    return descriptor->FindFieldByName(absl::StrCat(prefix, "_", suffix));
  };
  WeightSpec spec;
  spec.prefix = std::string(prefix);
  const auto* initializer = field("initializer");
  KILN_CHECK(initializer != nullptr)
      << descriptor->full_name() << " has no " << prefix << "_initializer";
  KILN_ASSIGN_OR_RETURN(
      spec.initializer,
      ResolveInitializer(
          static_cast<const v1::Initializer&>(reflection->GetMessage(message, initializer)),
          KerasDefault(initializer).get<std::string>(), FieldPath(initializer->name())));
  if (const auto* regularizer = field("regularizer")) {
    KILN_ASSIGN_OR_RETURN(spec.regularizer,
                          ResolveRegularizer(static_cast<const v1::Regularizer&>(
                                                 reflection->GetMessage(message, regularizer)),
                                             FieldPath(regularizer->name())));
  }
  if (const auto* constraint = field("constraint")) {
    KILN_ASSIGN_OR_RETURN(spec.constraint,
                          ResolveConstraint(static_cast<const v1::Constraint&>(
                                                reflection->GetMessage(message, constraint)),
                                            FieldPath(constraint->name())));
  }
  return spec;
}

absl::StatusOr<KernelAndBias> Layer::KernelAndBiasArgs(absl::string_view kernel_prefix) const {
  KernelAndBias out;
  KILN_ASSIGN_OR_RETURN(out.kernel, WeightArgs(kernel_prefix));
  KILN_ASSIGN_OR_RETURN(out.bias, WeightArgs("bias"));
  out.use_bias = args_.Bool("use_bias");
  return out;
}

absl::StatusOr<Variable*> Layer::AddWeight(std::string name, Shape shape, const WeightSpec& spec,
                                           bool trainable) {
  const std::optional<int64_t> elements = CheckedProduct(shape.dims(), kMaxWeightElements);
  if (!elements.has_value()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("weight \"", name, "\" of layer \"", name_, "\" would have shape ",
                     shape.ToString(), ", more than ", kMaxWeightElements, " elements"));
  }
  KILN_RETURN_IF_ERROR(ScopedParameterBudget::Take(
      *elements, absl::StrCat("weight \"", name, "\" of layer \"", name_, "\" (shape ",
                              shape.ToString(), ")")));
  KILN_RETURN_IF_ERROR(CheckInitializerShape(spec.initializer, shape,
                                             FieldPath(absl::StrCat(spec.prefix, "_initializer"))));
  if (spec.regularizer.has_value()) {
    KILN_RETURN_IF_ERROR(CheckRegularizerShape(
        *spec.regularizer, shape, FieldPath(absl::StrCat(spec.prefix, "_regularizer"))));
  }
  if (spec.constraint.has_value()) {
    KILN_RETURN_IF_ERROR(CheckConstraintShape(*spec.constraint, shape,
                                              FieldPath(absl::StrCat(spec.prefix, "_constraint"))));
  }
  auto variable = std::make_unique<Variable>();
  variable->name = std::move(name);
  variable->value = Tensor(DType::kFloat32, shape);
  // Each weight without an explicit seed gets its own stream from the layer's seed.
  KILN_RETURN_IF_ERROR(RunInitializer(
      spec.initializer, seed_ + 0x9E3779B97F4A7C15ull * (variables_.size() + 1), variable->value));
  variable->trainable = trainable && trainable_;
  if (variable->trainable) variable->grad = Tensor(DType::kFloat32, shape);
  variable->regularizer = spec.regularizer;
  variable->constraint = spec.constraint;
  variables_.push_back(std::move(variable));
  return variables_.back().get();
}

absl::Status Layer::CheckRank(const Shape& input, int index, int rank) const {
  if (input.rank() == rank) return absl::OkStatus();
  return FieldError(
      InputPath(index),
      absl::StrCat("Input ", index, " of layer \"", name_,
                   "\" is incompatible with the layer: expected ndim=", rank,
                   ", found ndim=", input.rank(), ". Full shape received: ", input.ToString()));
}

absl::Status Layer::CheckMinRank(const Shape& input, int index, int min_rank) const {
  if (input.rank() >= min_rank) return absl::OkStatus();
  return FieldError(
      InputPath(index),
      absl::StrCat("Input ", index, " of layer \"", name_,
                   "\" is incompatible with the layer: expected min_ndim=", min_rank,
                   ", found ndim=", input.rank(), ". Full shape received: ", input.ToString()));
}

absl::Status Layer::CheckAxisValue(const Shape& input, int index, int axis, int64_t value) const {
  const int a = NormalizeAxis(axis, input.rank());
  if (input[a] == value) return absl::OkStatus();
  return FieldError(InputPath(index),
                    absl::StrCat("Input ", index, " of layer \"", name_,
                                 "\" is incompatible with the layer: expected axis ", axis,
                                 " of input shape to have value ", value,
                                 ", but received input with shape ", input.ToString()));
}

std::string Layer::InputPath(int index) { return absl::StrCat("inputs[", index, "]"); }

std::string Layer::FieldPath(absl::string_view field) const { return args_.Path(field); }

}  // namespace kiln
