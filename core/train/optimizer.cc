#include "core/train/optimizer.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/base/status.h"
#include "core/keras/constraints.h"
#include "core/keras/keras_class.h"
#include "core/keras/spec_args.h"

namespace kiln {
namespace {

class Sgd final : public Optimizer {
 public:
  Sgd(v1::Optimizer config, float lr, Clipping clipping)
      : Optimizer(std::move(config), lr, clipping),
        momentum_(config_.sgd().momentum()),
        nesterov_(config_.sgd().nesterov()) {}
  int slot_count() const override { return momentum_ == 0 ? 0 : 1; }

 protected:
  void Update(Variable& variable, const float* g) override {
    float* w = variable.value.data<float>();
    const int64_t n = variable.value.num_elements();
    const float lr = learning_rate_;
    if (momentum_ == 0) {
      for (int64_t i = 0; i < n; ++i) w[i] -= lr * g[i];
      return;
    }
    float* m = Slot(&variable, 0).data();
    const float mu = momentum_;
    for (int64_t i = 0; i < n; ++i) {
      m[i] = m[i] * mu - g[i] * lr;
      w[i] += nesterov_ ? m[i] * mu - g[i] * lr : m[i];
    }
  }

 private:
  float momentum_;
  bool nesterov_;
};

class Adam final : public Optimizer {
 public:
  Adam(v1::Optimizer config, float lr, Clipping clipping)
      : Optimizer(std::move(config), lr, clipping) {
    const v1::Adam& a = config_.adam();  // resolved: every argument explicit
    beta_1_ = a.beta_1();
    beta_2_ = a.beta_2();
    epsilon_ = a.epsilon();
    amsgrad_ = a.amsgrad();
  }
  int slot_count() const override { return amsgrad_ ? 3 : 2; }

 protected:
  void Update(Variable& variable, const float* g) override {
    float* w = variable.value.data<float>();
    const int64_t n = variable.value.num_elements();
    const double step = double(iterations_ + 1);
    const double alpha =
        learning_rate_ * std::sqrt(1.0 - std::pow(beta_2_, step)) / (1.0 - std::pow(beta_1_, step));
    float* m = Slot(&variable, 0).data();
    float* v = Slot(&variable, 1).data();
    float* v_hat = amsgrad_ ? Slot(&variable, 2).data() : nullptr;
    const float a = float(alpha);
    for (int64_t i = 0; i < n; ++i) {
      m[i] += (g[i] - m[i]) * (1.0f - beta_1_);
      v[i] += (g[i] * g[i] - v[i]) * (1.0f - beta_2_);
      float vi = v[i];
      if (v_hat != nullptr) {
        v_hat[i] = std::max(v_hat[i], v[i]);
        vi = v_hat[i];
      }
      w[i] -= m[i] * a / (std::sqrt(vi) + epsilon_);
    }
  }

 private:
  float beta_1_, beta_2_, epsilon_;
  bool amsgrad_;
};

// The arguments SGD and Adam share, from a resolved (validated, defaults filled) message.
template <typename Spec>
absl::StatusOr<std::pair<float, Optimizer::Clipping>> CommonArgs(const Spec& s,
                                                                 const std::string& path) {
  Optimizer::Clipping c;
  if (s.has_clipnorm() + s.has_clipvalue() + s.has_global_clipnorm() > 1) {
    return FieldError(path,
                      "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be "
                      "set. Received: more than one.");
  }
  c.clipnorm = s.clipnorm();
  c.clipvalue = s.clipvalue();
  c.global_clipnorm = s.global_clipnorm();
  c.weight_decay = s.weight_decay();
  return std::make_pair(s.learning_rate(), c);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Optimizer>> Optimizer::Create(const v1::Optimizer& spec,
                                                             absl::string_view path) {
  v1::Optimizer resolved;
  if (spec.kind_case() == v1::Optimizer::KIND_NOT_SET) {
    return FieldError(path, "an optimizer is required: \"sgd\", \"adam\" or a configured one");
  }
  if (spec.kind_case() == v1::Optimizer::kName) {
    if (!SetKerasObjectClass(resolved, spec.name())) {
      return FieldError(absl::StrCat(path, ".name"),
                        absl::StrCat("Could not interpret optimizer identifier: ", spec.name(),
                                     ". Supported: sgd, adam"));
    }
  } else {
    KILN_RETURN_IF_ERROR(
        SpecArgs(*KerasObjectClass(spec), KerasObjectPath(spec, std::string(path))).Validate());
    resolved = spec;
  }
  FillKerasDefaults(*MutableKerasObjectClass(resolved));
  const std::string p = KerasObjectPath(resolved, std::string(path));
  if (resolved.has_sgd()) {
    KILN_ASSIGN_OR_RETURN(auto args, CommonArgs(resolved.sgd(), p));
    return std::unique_ptr<Optimizer>(new Sgd(resolved, args.first, args.second));
  }
  KILN_ASSIGN_OR_RETURN(auto args, CommonArgs(resolved.adam(), p));
  return std::unique_ptr<Optimizer>(new Adam(resolved, args.first, args.second));
}

std::vector<float>& Optimizer::Slot(const Variable* variable, int index) {
  std::vector<float>& slot = slots_[{variable, index}];
  if (slot.empty()) slot.assign(variable->value.num_elements(), 0.0f);
  return slot;
}

Optimizer::State Optimizer::ExportState(absl::Span<Variable* const> variables) {
  State state;
  state.iterations = iterations_;
  for (const Variable* v : variables) {
    std::vector<Tensor>& slots = state.slots.emplace_back();
    for (int i = 0; i < slot_count(); ++i) {
      const std::vector<float>& slot = Slot(v, i);
      slots.push_back(Tensor::FromVector(v->value.shape(), slot));
    }
  }
  return state;
}

absl::Status Optimizer::ImportState(const State& state, absl::Span<Variable* const> variables) {
  if (state.slots.size() != variables.size()) {
    return absl::InvalidArgumentError(absl::StrCat("the optimizer state has slots for ",
                                                   state.slots.size(), " variables, not ",
                                                   variables.size()));
  }
  for (size_t i = 0; i < variables.size(); ++i) {
    if (int(state.slots[i].size()) != slot_count()) {
      return absl::InvalidArgumentError(absl::StrCat("the optimizer state has ",
                                                     state.slots[i].size(), " slots for weight ",
                                                     variables[i]->name, ", not ", slot_count()));
    }
    for (const Tensor& slot : state.slots[i]) {
      if (slot.dtype() != DType::kFloat32 || slot.shape() != variables[i]->value.shape()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "an optimizer slot of shape ", slot.shape().ToString(), " does not fit weight ",
            variables[i]->name, " of shape ", variables[i]->value.shape().ToString()));
      }
    }
  }
  for (size_t i = 0; i < variables.size(); ++i) {
    for (int k = 0; k < slot_count(); ++k) {
      const absl::Span<const float> values = state.slots[i][k].values<float>();
      Slot(variables[i], k).assign(values.begin(), values.end());
    }
  }
  iterations_ = state.iterations;
  return absl::OkStatus();
}

void Optimizer::Apply(absl::Span<Variable* const> variables) {
  double global_scale = 1.0;
  if (clipping_.global_clipnorm > 0) {
    double sq = 0;
    for (const Variable* v : variables) {
      for (float g : v->grad.values<float>()) sq += double(g) * g;
    }
    const double norm = std::sqrt(sq);
    if (norm > clipping_.global_clipnorm) global_scale = clipping_.global_clipnorm / norm;
  }
  for (Variable* v : variables) {
    const int64_t n = v->value.num_elements();
    const float* g = v->grad.data<float>();
    if (clipping_.clipnorm > 0 || clipping_.clipvalue > 0 || global_scale != 1.0) {
      clipped_.assign(g, g + n);
      double scale = global_scale;
      if (clipping_.clipnorm > 0) {
        double sq = 0;
        for (float x : clipped_) sq += double(x) * x;
        const double norm = std::sqrt(sq);
        if (norm > clipping_.clipnorm) scale = clipping_.clipnorm / norm;
      }
      for (float& x : clipped_) {
        x = float(x * scale);
        if (clipping_.clipvalue > 0) x = std::clamp(x, -clipping_.clipvalue, clipping_.clipvalue);
      }
      g = clipped_.data();
    }
    if (clipping_.weight_decay > 0) {
      float* w = v->value.data<float>();
      const float decay = clipping_.weight_decay * learning_rate_;
      for (int64_t i = 0; i < n; ++i) w[i] -= w[i] * decay;
    }
    Update(*v, g);
    if (v->constraint.has_value()) ApplyConstraint(*v->constraint, v->value);
    v->MarkChanged();
  }
  ++iterations_;
}

}  // namespace kiln
