// The process-wide oneDNN CPU engine and the streams that run primitives on it.
//
// Primitive caching: oneDNN keeps its own cache of compiled primitives keyed by primitive
// descriptor (shapes, layouts, attributes), so creating the same primitive twice - for a second
// plan of the same model, or the same layer shape in another model - is a cache hit. Kiln relies
// on that cache rather than keeping one of its own (its capacity: ONEDNN_PRIMITIVE_CACHE_CAPACITY,
// default 1024).
#ifndef KILN_CORE_DNNL_ENGINE_H_
#define KILN_CORE_DNNL_ENGINE_H_

#include <dnnl.hpp>

namespace kiln {

const dnnl::engine& CpuEngine();

// A new in-order stream on CpuEngine(). Streams are cheap; each executing thread uses its own.
dnnl::stream NewStream();

}  // namespace kiln

#endif  // KILN_CORE_DNNL_ENGINE_H_
