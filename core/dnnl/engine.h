// The process-wide oneDNN CPU engine and the streams that run primitives on it.
//
// Primitive caching: oneDNN keeps its own cache of compiled primitives keyed by primitive
// descriptor (shapes, layouts, attributes), so creating the same primitive twice - for a second
// plan of the same model, or the same layer shape in another model - is a cache hit. Kiln relies
// on that cache rather than keeping one of its own; ConfigurePrimitiveCache sizes it.
#ifndef KILN_CORE_DNNL_ENGINE_H_
#define KILN_CORE_DNNL_ENGINE_H_

#include <dnnl.hpp>

namespace kiln {

const dnnl::engine& CpuEngine();

// A new in-order stream on CpuEngine(). Streams are cheap; each executing thread uses its own.
dnnl::stream NewStream();

// Sets the capacity of oneDNN's primitive cache (number of primitives kept).
void ConfigurePrimitiveCache(int capacity);

}  // namespace kiln

#endif  // KILN_CORE_DNNL_ENGINE_H_
