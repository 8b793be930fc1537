#include "core/dnnl/engine.h"

namespace kiln {

const dnnl::engine& CpuEngine() {
  static const dnnl::engine* engine = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

dnnl::stream NewStream() { return dnnl::stream(CpuEngine()); }

}  // namespace kiln
