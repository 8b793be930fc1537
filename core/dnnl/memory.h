// Helpers for oneDNN memory descriptors as Kiln uses them.
//
// Convention: every activation in an execution plan is described over its *Keras* logical dims
// (N, H, W, C for a channels_last image) in whatever physical layout the producing primitive
// chose. Ops whose primitives want oneDNN's (N, C, spatial...) logical order view the same bytes
// through ChannelsSecondView, which permutes axes without moving data. Reorders happen only
// where two layouts really differ.
#ifndef KILN_CORE_DNNL_MEMORY_H_
#define KILN_CORE_DNNL_MEMORY_H_

#include <dnnl.hpp>
#include <string>
#include <vector>

#include "core/dnnl/primitive.h"
#include "core/tensor/arena.h"
#include "core/tensor/shape.h"
#include "core/tensor/tensor.h"

namespace kiln {

using dnnl::memory;

memory::dims ToDims(const Shape& shape);
Shape ShapeOf(const memory::desc& md);

// Dense row-major float32 layout over `shape` (Keras's own array layout).
memory::desc PlainDesc(const Shape& shape);
// True when `md` is exactly the dense row-major layout of its dims.
bool IsPlain(const memory::desc& md);
// True when the layout allocates more elements than its dims hold (blocked with a partial block).
bool HasPadding(const memory::desc& md);

// The permutation that moves logical axis `axis` to position 1 and keeps the order of the
// others, in the form memory::desc::permute_axes takes. Applying it to a (N, H, W, C) desc with
// axis 3 gives the (N, C, H, W) view.
std::vector<int> AxisToSecondPermutation(int rank, int axis);
std::vector<int> InversePermutation(const std::vector<int>& permutation);

// View of `md` with logical axis `channel_axis` moved to position 1 (oneDNN's channel position).
memory::desc ChannelsSecondView(const memory::desc& md, int channel_axis);
// The inverse: view of a (N, C, ...) desc with C moved back to `channel_axis`.
memory::desc ChannelsBackView(const memory::desc& md, int channel_axis);

// A memory object over a zero-filled buffer carved from `arena`.
memory AllocateMemory(const memory::desc& md, Arena& arena);
// A memory object over an existing buffer (not owned).
memory WrapMemory(const memory::desc& md, void* data);
// A plain memory object over a float32 tensor's buffer (the tensor must outlive it).
memory WrapTensor(Tensor& tensor);

// A prebuilt reorder between two memories of the same logical dims, with its own scratchpad
// (primitive.h says why). With accumulate, the
// destination keeps its contents and receives dst += src. A reorder between identical
// layouts of the same buffer is a no-op.
class Reorder {
 public:
  Reorder() = default;
  Reorder(const memory& src, const memory& dst, bool accumulate = false);
  void Run(dnnl::stream& stream) const;
  bool is_noop() const { return noop_; }

 private:
  Primitive primitive_;
  memory src_, dst_;
  bool noop_ = true;
};

// Read side: `src` itself when it already has layout `want`, else a new buffer of `want` from
// `arena` and, in *reorder, the reorder that fills it from `src`.
memory StageFrom(const memory& src, const memory::desc& want, Arena& arena, Reorder* reorder);
// Write side: `dst` itself when a primitive that produces `produced` can write it directly,
// else a new buffer of `produced` and, in *reorder, the reorder that copies it into `dst`.
memory StageTo(const memory& dst, const memory::desc& produced, Arena& arena, Reorder* reorder);

// Whether oneDNN picked a slow general-purpose implementation ("ref:...", or im2col "gemm:...")
// for a primitive descriptor, judged by its impl_info_str().
bool IsSlowImplementation(const std::string& impl_info);

// Builds the first primitive descriptor, of `attempts` candidates (make(0), make(1), ...), that
// oneDNN implements with a fast kernel; the last candidate is taken whatever its kernel. Callers
// order candidates from "the layouts the data already has" (no reorders) to format_tag::any.
template <typename PrimitiveDesc, typename MakeFn>
PrimitiveDesc ChoosePrimitiveDesc(const MakeFn& make, int attempts) {
  for (int i = 0; i + 1 < attempts; ++i) {
    try {
      PrimitiveDesc pd = make(i);
      if (!IsSlowImplementation(pd.impl_info_str())) return pd;
    } catch (const dnnl::error&) {
      // No implementation for this candidate.
    }
  }
  return make(attempts - 1);
}

// The same buffer as `m`, described by `md` (a view: permuted axes or reshaped dims).
memory View(const memory& m, const memory::desc& md);

}  // namespace kiln

#endif  // KILN_CORE_DNNL_MEMORY_H_
