#include "core/dnnl/primitive.h"

#include "core/dnnl/engine.h"

namespace kiln {

dnnl::primitive_attr WithUserScratchpad(dnnl::primitive_attr attr) {
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

Primitive::Primitive(dnnl::primitive primitive, const dnnl::memory::desc& scratchpad, Arena& arena)
    : primitive_(std::move(primitive)) {
  if (scratchpad.get_size() > 0) {
    scratchpad_ = dnnl::memory(scratchpad, CpuEngine(), arena.Allocate(scratchpad.get_size()));
  }
}

void Primitive::Execute(dnnl::stream& stream, std::unordered_map<int, dnnl::memory> args) const {
  if (scratchpad_) args[DNNL_ARG_SCRATCHPAD] = scratchpad_;
  primitive_.execute(stream, args);
}

}  // namespace kiln
