// Readers for the array formats Kiln accepts: IDX (the MNIST family), NPY (numpy.save) and
// numeric CSV. Each parses bytes already in memory, so uploads and files share one parser;
// ReadFile loads a file, inflating it transparently when it is gzip-compressed.
//
// Errors: NOT_FOUND for missing files, INVALID_ARGUMENT naming the file (or "upload") and what
// is wrong with its contents. Nothing here crashes on malformed input.
#ifndef KILN_CORE_IO_READERS_H_
#define KILN_CORE_IO_READERS_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/tensor/tensor.h"

namespace kiln {

// The whole file, gunzipped if it starts with the gzip magic. `max_bytes` bounds the result.
absl::StatusOr<std::string> ReadFile(const std::string& path, size_t max_bytes = size_t{4} << 30);
// Likewise for a file opened already (closed before it returns); errors name `name`.
absl::StatusOr<std::string> ReadOpenFile(int fd, absl::string_view name,
                                         size_t max_bytes = size_t{4} << 30);

// IDX: big-endian header (0, 0, type, rank), rank big-endian int32 dims, then the data.
// uint8 and int8 become uint8 / int32 tensors, int16/int32 int32, float/double float32.
absl::StatusOr<Tensor> ParseIdx(absl::string_view bytes, absl::string_view source);

// NPY v1-v3, C order, little-endian or byte-sized types: f4, f8 (to float32), i1, i2, i4
// (to int32), i8, u1, b1 (to uint8).
absl::StatusOr<Tensor> ParseNpy(absl::string_view bytes, absl::string_view source);

// Numeric CSV, comma-separated. A first row that is not all numbers is taken as a header when
// header is unset. Returns float32 (rows, columns).
absl::StatusOr<Tensor> ParseCsv(absl::string_view text, absl::string_view source,
                                std::optional<bool> header = std::nullopt);

// The format from a file name: ".idx"/"-ubyte" (IDX), ".npy", ".csv", each optionally ".gz".
absl::StatusOr<Tensor> ReadArrayFile(const std::string& path);
// ReadArrayFile's parsing: the format from `name`, which errors name.
absl::StatusOr<Tensor> ParseArrayFile(absl::string_view bytes, absl::string_view name);

}  // namespace kiln

#endif  // KILN_CORE_IO_READERS_H_
