// The writing side of NPY (numpy.save's format, v1.0): what the CLI saves predictions, dataset
// arrays and weights as, and what tests build uploads from. ParseNpy (core/io/readers.h) reads the
// result back.
#ifndef KILN_CORE_IO_NPY_WRITER_H_
#define KILN_CORE_IO_NPY_WRITER_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/tensor/dtype.h"

namespace kiln {

// An .npy file's bytes for little-endian `data` of `dtype` (C order) and `shape`.
std::string FormatNpy(DType dtype, absl::Span<const int64_t> shape, absl::string_view data);

}  // namespace kiln

#endif  // KILN_CORE_IO_NPY_WRITER_H_
