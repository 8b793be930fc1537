#include "core/dnnl/memory.h"

#include "core/base/check.h"
#include "core/dnnl/engine.h"
#include "core/dnnl/primitive.h"

namespace kiln {

memory::dims ToDims(const Shape& shape) {
  return memory::dims(shape.dims().begin(), shape.dims().end());
}

Shape ShapeOf(const memory::desc& md) {
  memory::dims dims = md.dims();
  return Shape(std::vector<int64_t>(dims.begin(), dims.end()));
}

memory::desc PlainDesc(const Shape& shape) {
  const int rank = shape.rank();
  memory::dims strides(rank);
  int64_t stride = 1;
  for (int i = rank - 1; i >= 0; --i) {
    strides[i] = stride;
    stride *= shape[i];
  }
  return memory::desc(ToDims(shape), memory::data_type::f32, strides);
}

bool IsPlain(const memory::desc& md) { return md == PlainDesc(ShapeOf(md)); }

bool HasPadding(const memory::desc& md) {
  const dnnl_memory_desc_t& c = md.data;
  for (int i = 0; i < c.ndims; ++i) {
    if (c.padded_dims[i] != c.dims[i]) return true;
  }
  return false;
}

std::vector<int> AxisToSecondPermutation(int rank, int axis) {
  std::vector<int> perm(rank);
  for (int i = 0; i < rank; ++i) {
    if (i == 0) {
      perm[i] = 0;
    } else if (i < axis) {
      perm[i] = i + 1;
    } else if (i == axis) {
      perm[i] = 1;
    } else {
      perm[i] = i;
    }
  }
  return perm;
}

std::vector<int> InversePermutation(const std::vector<int>& permutation) {
  std::vector<int> inverse(permutation.size());
  for (size_t i = 0; i < permutation.size(); ++i) inverse[permutation[i]] = static_cast<int>(i);
  return inverse;
}

memory::desc ChannelsSecondView(const memory::desc& md, int channel_axis) {
  if (channel_axis == 1) return md;
  return md.permute_axes(AxisToSecondPermutation(md.data.ndims, channel_axis));
}

memory::desc ChannelsBackView(const memory::desc& md, int channel_axis) {
  if (channel_axis == 1) return md;
  return md.permute_axes(InversePermutation(AxisToSecondPermutation(md.data.ndims, channel_axis)));
}

memory AllocateMemory(const memory::desc& md, Arena& arena) {
  return memory(md, CpuEngine(), arena.Allocate(md.get_size()));
}

memory WrapMemory(const memory::desc& md, void* data) { return memory(md, CpuEngine(), data); }

memory WrapTensor(Tensor& tensor) {
  KILN_CHECK(tensor.dtype() == DType::kFloat32);
  return memory(PlainDesc(tensor.shape()), CpuEngine(), tensor.raw_data());
}

Reorder::Reorder(const memory& src, const memory& dst, bool accumulate) : src_(src), dst_(dst) {
  const bool same =
      src.get_desc() == dst.get_desc() && src.get_data_handle() == dst.get_data_handle();
  noop_ = same && !accumulate;
  if (noop_) return;
  dnnl::primitive_attr attr = WithUserScratchpad();
  if (accumulate) {
    dnnl::post_ops ops;
    ops.append_sum(1.0f);
    attr.set_post_ops(ops);
  }
  // A reorder outlives no plan of its own: its scratchpad (float reorders need none) is its own.
  primitive_ = Primitive::Create<dnnl::reorder>(dnnl::reorder::primitive_desc(src, dst, attr),
                                                /*arena=*/nullptr);
}

memory StageFrom(const memory& src, const memory::desc& want, Arena& arena, Reorder* reorder) {
  if (src.get_desc() == want) {
    *reorder = Reorder();
    return src;
  }
  memory staged = AllocateMemory(want, arena);
  *reorder = Reorder(src, staged);
  return staged;
}

memory StageTo(const memory& dst, const memory::desc& produced, Arena& arena, Reorder* reorder) {
  if (dst.get_desc() == produced) {
    *reorder = Reorder();
    return dst;
  }
  memory staged = AllocateMemory(produced, arena);
  *reorder = Reorder(staged, dst);
  return staged;
}

bool IsSlowImplementation(const std::string& impl_info) {
  return impl_info.rfind("ref", 0) == 0 || impl_info.find("gemm:") != std::string::npos;
}

memory View(const memory& m, const memory::desc& md) {
  return memory(md, CpuEngine(), m.get_data_handle());
}

void Reorder::Run(dnnl::stream& stream) const {
  if (noop_) return;
  primitive_.Execute(stream, {{DNNL_ARG_FROM, src_}, {DNNL_ARG_TO, dst_}});
}

}  // namespace kiln
