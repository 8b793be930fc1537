#include "core/dnnl/primitive.h"

#include "core/dnnl/engine.h"

namespace kiln {

dnnl::primitive_attr WithUserScratchpad(dnnl::primitive_attr attr) {
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

Primitive::Primitive(dnnl::primitive primitive, const dnnl::memory::desc& scratchpad, Arena* arena)
    : primitive_(std::move(primitive)) {
  const size_t bytes = scratchpad.get_size();
  if (bytes == 0) return;
  void* buffer;
  if (arena != nullptr) {
    buffer = arena->Allocate(bytes);
  } else {
    own_scratchpad_ = std::shared_ptr<char[]>(new char[bytes]);
    buffer = own_scratchpad_.get();
  }
  scratchpad_ = dnnl::memory(scratchpad, CpuEngine(), buffer);
}

void Primitive::Execute(dnnl::stream& stream, Args& args) const {
  if (scratchpad_) args[DNNL_ARG_SCRATCHPAD] = scratchpad_;
  primitive_.execute(stream, args);
}

}  // namespace kiln
