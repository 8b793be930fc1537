// Keras 3 optimizers (SGD with momentum/nesterov, Adam/AMSGrad) with their exact update rules,
// gradient clipping (clipnorm, clipvalue, global_clipnorm) and decoupled weight decay. After
// each update the variables' constraints are applied, as Keras's apply() does.
#ifndef KILN_CORE_TRAIN_OPTIMIZER_H_
#define KILN_CORE_TRAIN_OPTIMIZER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/exec/variable.h"
#include "kiln/v1/training.pb.h"

namespace kiln {

class Optimizer {
 public:
  static absl::StatusOr<std::unique_ptr<Optimizer>> Create(const v1::Optimizer& spec,
                                                           absl::string_view path);
  virtual ~Optimizer() = default;

  // One step: clip each variable's grad, decay, update, constrain. Grads must already include
  // the regularizer terms.
  void Apply(absl::Span<Variable* const> variables);

  int64_t iterations() const { return iterations_; }

  // The optimizer's state for `variables`, in their order: its iteration count, and each
  // variable's slots (SGD's momentum; Adam's m, v and, with amsgrad, v_hat) as float32
  // tensors of the variable's shape. A checkpoint saves it; ImportState puts it back.
  struct State {
    int64_t iterations = 0;
    std::vector<std::vector<Tensor>> slots;  // [variable][slot]
  };
  State ExportState(absl::Span<Variable* const> variables);
  // INVALID_ARGUMENT when `state` does not fit `variables` (count, slots or shapes).
  absl::Status ImportState(const State& state, absl::Span<Variable* const> variables);
  // Slots per variable.
  virtual int slot_count() const = 0;
  float learning_rate() const { return learning_rate_; }
  // The resolved spec (class with defaults filled in), for configs.
  const v1::Optimizer& config() const { return config_; }

  // Gradient clipping and decay settings shared by every optimizer (0 = off).
  struct Clipping {
    float clipnorm = 0, clipvalue = 0, global_clipnorm = 0;
    float weight_decay = 0;
  };

 protected:
  Optimizer(v1::Optimizer config, float learning_rate, Clipping clipping)
      : config_(std::move(config)), learning_rate_(learning_rate), clipping_(clipping) {}

  // Updates one variable from its (clipped) gradient.
  virtual void Update(Variable& variable, const float* grad) = 0;
  // Per-variable state, created zeroed on first use.
  std::vector<float>& Slot(const Variable* variable, int index);

  v1::Optimizer config_;
  float learning_rate_;
  Clipping clipping_;
  int64_t iterations_ = 0;

 private:
  absl::flat_hash_map<std::pair<const Variable*, int>, std::vector<float>> slots_;
  std::vector<float> clipped_;
};

}  // namespace kiln

#endif  // KILN_CORE_TRAIN_OPTIMIZER_H_
