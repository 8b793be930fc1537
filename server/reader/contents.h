// A Keras file's unpacked contents (core/saving's KerasFileContents) as kiln-file-reader sends
// them back, and the reader's request. Both directions are checked: the server decodes the
// reader's answer as it would any message from outside (a reader that was subverted by its
// input can only send a wrong answer, never an unbounded one).
#ifndef KILN_SERVER_READER_CONTENTS_H_
#define KILN_SERVER_READER_CONTENTS_H_

#include "absl/status/statusor.h"
#include "core/saving/keras_files.h"
#include "server/reader/reader.pb.h"

namespace kiln::server {

reader::ReadRequest ToReadRequest(v1::KerasFormat format, const KerasReadOptions& options);
KerasReadOptions FromReadRequest(const reader::ReadRequest& request);

// `unpacked` (contents or the file's error) as the reader answers.
reader::ReadResult ToReadResult(const absl::StatusOr<KerasFileContents>& unpacked);
// The reader's answer: the contents, or the file's error with its code and path. Tensors are
// decoded within `options.max_elements` in all.
absl::StatusOr<KerasFileContents> FromReadResult(const reader::ReadResult& result,
                                                 const KerasReadOptions& options);

}  // namespace kiln::server

#endif  // KILN_SERVER_READER_CONTENTS_H_
