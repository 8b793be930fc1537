// Tensor files: named tensors (weights, optimizer slots, dataset arrays) in one file that is
// either complete or absent. The database records which files exist; it never holds tensor
// bytes itself.
//
// WriteTensorFile writes a temporary file beside the target, fsyncs it, renames it into place
// and fsyncs the directory, so a crash leaves either no file or the whole file (and at most a
// "*.tmp" that the store collects at start). ReadTensorFile checks the magic, the header's and
// every tensor's CRC-32 and the file's length: a truncated or damaged file is DATA_LOSS naming
// the file, never a crash or wrong numbers.
//
// Layout: "KILNTF01", u64 header length, u32 header CRC, the header (TensorFileHeader), then
// each tensor's raw little-endian bytes at the 64-byte aligned offset the header gives.
#ifndef KILN_SERVER_STORE_TENSOR_FILE_H_
#define KILN_SERVER_STORE_TENSOR_FILE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/tensor/tensor.h"

namespace kiln::store {

struct NamedTensor {
  std::string name;
  Tensor tensor;
};

// Errors: IoError's (RESOURCE_EXHAUSTED when the disk is full, else UNAVAILABLE); on error no
// file is left at `path` or beside it. `kind` ("weights", "checkpoint", "dataset") names the
// failpoints on the way: KIND.write (the write fails), KIND.half_written (part of the data is
// in the temporary file), KIND.after_temp_write and KIND.after_rename.
absl::Status WriteTensorFile(const std::string& path, absl::Span<const NamedTensor> tensors,
                             absl::string_view kind);

// DATA_LOSS for a missing, truncated or damaged file.
absl::StatusOr<std::vector<NamedTensor>> ReadTensorFile(const std::string& path);

// The bytes WriteTensorFile would write for these tensors.
int64_t TensorFileSize(absl::Span<const NamedTensor> tensors);

// fsync of a directory, after an entry in it was created, renamed or removed.
absl::Status SyncDirectory(const std::string& dir);

}  // namespace kiln::store

#endif  // KILN_SERVER_STORE_TENSOR_FILE_H_
