// .npy files <-> the API's TensorProto, for the commands that read or write arrays (predict,
// data read, weights get|set).
#ifndef KILN_CLIENT_CLI_NPY_FILES_H_
#define KILN_CLIENT_CLI_NPY_FILES_H_

#include <string>

#include "absl/status/statusor.h"
#include "kiln/v1/data.pb.h"

namespace kiln::cli {

// The array in `path` (float64 arrays become float32); a usage error naming the file when it
// cannot be read or is not an .npy array Kiln takes.
absl::StatusOr<v1::TensorProto> ReadNpyFile(const std::string& path);
// Writes `tensor` (raw data or float_values) as an .npy file of its dtype.
absl::Status WriteNpyFile(const std::string& path, const v1::TensorProto& tensor);

}  // namespace kiln::cli

#endif  // KILN_CLIENT_CLI_NPY_FILES_H_
