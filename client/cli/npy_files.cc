#include "client/cli/npy_files.h"

#include "absl/strings/str_cat.h"
#include "client/cli/common.h"
#include "core/io/npy_writer.h"
#include "core/io/readers.h"
#include "core/io/tensor_proto.h"

namespace kiln::cli {

absl::StatusOr<v1::TensorProto> ReadNpyFile(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(const std::string bytes, ReadFile(path));
  absl::StatusOr<Tensor> array = ParseNpy(bytes, path);
  if (!array.ok()) return UsageError(array.status().message());
  return EncodeTensor(*array);
}

absl::Status WriteNpyFile(const std::string& path, const v1::TensorProto& tensor) {
  KILN_ASSIGN_OR_RETURN(const Tensor array, DecodeTensor(tensor, "response"));
  return WriteFile(path, FormatNpy(array.dtype(), array.shape().dims(),
                                   absl::string_view(static_cast<const char*>(array.raw_data()),
                                                     array.byte_size())));
}

}  // namespace kiln::cli
