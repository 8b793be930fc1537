// UnpackInReader: a Keras file's container (.keras zip, .weights.h5 HDF5) unpacked by a fresh
// kiln-file-reader process rather than inside kiln-server. The reader is confined
// (sandbox.h: address space, CPU time, no files, a seccomp filter) and bounded from here by a
// wall-clock deadline, the call's cancellation and the size of its answer, so a file that
// crashes libhdf5, loops in it or makes it allocate without bound costs that one call an
// error and no server a thread, a lock or memory it cannot get back. JSON files need no
// reader: they are interpreted in the server (bounded, fuzzed).
#ifndef KILN_SERVER_READER_FILE_READER_H_
#define KILN_SERVER_READER_FILE_READER_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/saving/keras_files.h"

namespace kiln::server {

struct FileReaderOptions {
  std::string path;                            // the kiln-file-reader binary
  int64_t memory_bytes = int64_t{2} << 30;     // --file_reader_memory: its address space
  absl::Duration timeout = absl::Seconds(60);  // --file_reader_timeout: wall and CPU time
};

// The reader beside the running executable (kiln-server's directory), as installed.
std::string DefaultFileReaderPath();

// Errors, all naming no server path: the file's own, with its place in the file
// (INVALID_ARGUMENT, or RESOURCE_EXHAUSTED for a limit of `read`); a reader that crashed, was
// killed by its sandbox or gave a damaged answer: INVALID_ARGUMENT (the file is damaged or
// not a Keras file); past the timeout: INVALID_ARGUMENT naming --file_reader_timeout; out of
// memory: RESOURCE_EXHAUSTED naming --file_reader_memory; `cancelled()` true: CANCELLED; a
// reader that cannot be started: INTERNAL.
absl::StatusOr<KerasFileContents> UnpackInReader(absl::string_view bytes, v1::KerasFormat format,
                                                 const KerasReadOptions& read,
                                                 const FileReaderOptions& options,
                                                 const std::function<bool()>& cancelled);

// A Keras file from a client, as ImportModel reads it: JSON interpreted here (no container to
// unpack), a .keras archive or .weights.h5 file unpacked by UnpackInReader first.
absl::StatusOr<KerasFile> ReadUntrustedKerasFile(absl::string_view bytes, v1::KerasFormat format,
                                                 const KerasReadOptions& read,
                                                 const FileReaderOptions& options,
                                                 const std::function<bool()>& cancelled);

}  // namespace kiln::server

#endif  // KILN_SERVER_READER_FILE_READER_H_
