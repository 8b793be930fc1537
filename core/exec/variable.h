// Variable: one layer weight. Its value is the master copy in Keras layout (what get_weights
// returns, what optimizers, regularizers and constraints act on); ops keep their own copies in
// the layout their primitives want and refresh them when `version` changes.
#ifndef KILN_CORE_EXEC_VARIABLE_H_
#define KILN_CORE_EXEC_VARIABLE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "core/tensor/tensor.h"
#include "kiln/v1/layers.pb.h"

namespace kiln {

struct Variable {
  std::string name;  // Keras weight name: "kernel", "bias", "gamma", "moving_mean", ...
  // float32, Keras layout. The buffer is fixed for the life of the variable (ops hold views of
  // it): writers copy into it and call MarkChanged, never replace it.
  Tensor value;
  Tensor grad;  // same shape; written by the backward pass (trainable variables only)
  // False for statistics a layer updates itself (BatchNormalization's moving mean/variance).
  bool trainable = true;
  std::optional<v1::Regularizer> regularizer;
  std::optional<v1::Constraint> constraint;
  // Incremented by every writer of `value`, so cached reorders of it know they are stale.
  uint64_t version = 0;

  void MarkChanged() { ++version; }
};

}  // namespace kiln

#endif  // KILN_CORE_EXEC_VARIABLE_H_
