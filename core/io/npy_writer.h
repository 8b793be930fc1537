// The writing side of NPY (numpy.save's format, v1.0): what the CLI saves predictions as and
// what tests build uploads from. ParseNpy (core/io/readers.h) reads the result back.
#ifndef KILN_CORE_IO_NPY_WRITER_H_
#define KILN_CORE_IO_NPY_WRITER_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace kiln {

// An .npy file's bytes for little-endian float32 `data` (C order) of `shape`.
std::string FormatNpyFloat32(absl::Span<const int64_t> shape, absl::string_view data);

}  // namespace kiln

#endif  // KILN_CORE_IO_NPY_WRITER_H_
