// Primitive: a oneDNN primitive with the scratchpad it computes in, which Kiln provides.
//
// oneDNN's default ("library") scratchpad is per thread: a primitive must then run on the thread
// that created it, and destroying one on another thread frees that thread's scratchpad under the
// primitives still using it. Kiln builds a plan on one thread and runs it on others (job and RPC
// workers; a Predict on a worker pool thread evicted a cached plan and crashed the server), so
// every primitive is created with WithUserScratchpad and gets its scratchpad from the arena of
// the plan it belongs to - which also keeps that allocation out of training steps.
#ifndef KILN_CORE_DNNL_PRIMITIVE_H_
#define KILN_CORE_DNNL_PRIMITIVE_H_

#include <dnnl.hpp>
#include <unordered_map>

#include "core/tensor/arena.h"

namespace kiln {

// `attr` with a user-provided scratchpad: the attribute every Kiln primitive descriptor takes.
dnnl::primitive_attr WithUserScratchpad(dnnl::primitive_attr attr = dnnl::primitive_attr());

class Primitive {
 public:
  Primitive() = default;
  // The primitive of `pd` (made with WithUserScratchpad), its scratchpad carved from `arena`.
  template <typename P>
  static Primitive Create(const typename P::primitive_desc& pd, Arena& arena) {
    return Primitive(P(pd), pd.scratchpad_desc(), arena);
  }

  explicit operator bool() const { return static_cast<bool>(primitive_); }
  // Runs it on `stream` with `args` and its scratchpad.
  void Execute(dnnl::stream& stream, std::unordered_map<int, dnnl::memory> args) const;

 private:
  Primitive(dnnl::primitive primitive, const dnnl::memory::desc& scratchpad, Arena& arena);

  dnnl::primitive primitive_;
  dnnl::memory scratchpad_;  // empty when the primitive needs none
};

}  // namespace kiln

#endif  // KILN_CORE_DNNL_PRIMITIVE_H_
