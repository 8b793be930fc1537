// Primitive: a oneDNN primitive with the scratchpad it computes in, which Kiln provides.
//
// oneDNN's default ("library") scratchpad is per thread: a primitive must then run on the thread
// that created it, and destroying one on another thread frees that thread's scratchpad under the
// primitives still using it. Kiln builds a plan on one thread and runs it on others (job and RPC
// workers; a Predict on a worker pool thread evicted a cached plan and crashed the server), so
// every primitive is created with WithUserScratchpad and gets its scratchpad here: from the
// arena of the plan it belongs to (which keeps that allocation out of training steps), or, for
// one that lives outside a plan, from a buffer of its own.
#ifndef KILN_CORE_DNNL_PRIMITIVE_H_
#define KILN_CORE_DNNL_PRIMITIVE_H_

#include <dnnl.hpp>
#include <memory>
#include <unordered_map>

#include "core/tensor/arena.h"

namespace kiln {

// `attr` with a user-provided scratchpad: the attribute every Kiln primitive descriptor takes.
dnnl::primitive_attr WithUserScratchpad(dnnl::primitive_attr attr = dnnl::primitive_attr());

class Primitive {
 public:
  using Args = std::unordered_map<int, dnnl::memory>;

  Primitive() = default;
  // The primitive of `pd` (made with WithUserScratchpad). Its scratchpad is carved from `arena`,
  // or, with no arena, allocated for it alone.
  template <typename P>
  static Primitive Create(const typename P::primitive_desc& pd, Arena* arena) {
    return Primitive(P(pd), pd.scratchpad_desc(), arena);
  }

  explicit operator bool() const { return static_cast<bool>(primitive_); }
  // Runs it on `stream` with `args`, to which its scratchpad is added.
  void Execute(dnnl::stream& stream, Args& args) const;
  void Execute(dnnl::stream& stream, Args&& args) const { Execute(stream, args); }

 private:
  Primitive(dnnl::primitive primitive, const dnnl::memory::desc& scratchpad, Arena* arena);

  dnnl::primitive primitive_;
  dnnl::memory scratchpad_;                 // empty when the primitive needs none
  std::shared_ptr<char[]> own_scratchpad_;  // its buffer, when there is no arena
};

}  // namespace kiln

#endif  // KILN_CORE_DNNL_PRIMITIVE_H_
