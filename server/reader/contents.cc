#include "server/reader/contents.h"

#include <cstring>
#include <vector>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "core/base/status.h"
#include "core/io/tensor_proto.h"

namespace kiln::server {
namespace {

// A weight as the reader encoded it (EncodeTensor): any rank, scalars and empty tensors
// included (DecodeTensor takes only the API's batch-first tensors). At most `budget` elements.
absl::StatusOr<Tensor> DecodeWeight(const v1::TensorProto& proto, const std::string& path,
                                    int64_t budget) {
  KILN_ASSIGN_OR_RETURN(DType dtype, FromProtoDType(proto.dtype(), path));
  if (proto.shape_size() > 8) return FieldError(path, "the weight has more than 8 dimensions");
  int64_t elements = 1;
  for (int64_t d : proto.shape()) {
    if (d < 0 || (d > 0 && elements > budget / d)) {
      return absl::ResourceExhaustedError(
          absl::StrCat(path, ": the file's weights are larger than allowed"));
    }
    elements *= d;
  }
  if (elements > budget) {
    return absl::ResourceExhaustedError(
        absl::StrCat(path, ": the file's weights are larger than allowed"));
  }
  if (proto.data().size() != size_t(elements) * SizeOf(dtype)) {
    return FieldError(path, "the reader's answer is damaged");
  }
  Tensor out(dtype, Shape(std::vector<int64_t>(proto.shape().begin(), proto.shape().end())));
  if (elements > 0) std::memcpy(out.raw_data(), proto.data().data(), proto.data().size());
  return out;
}

}  // namespace

reader::ReadRequest ToReadRequest(v1::KerasFormat format, const KerasReadOptions& options) {
  reader::ReadRequest request;
  request.set_format(format);
  request.set_max_bytes(options.max_bytes);
  request.set_max_elements(options.max_elements);
  request.set_max_archive_members(options.max_archive_members);
  request.set_max_compression_ratio(options.max_compression_ratio);
  return request;
}

KerasReadOptions FromReadRequest(const reader::ReadRequest& request) {
  KerasReadOptions options;
  options.max_bytes = request.max_bytes();
  options.max_elements = request.max_elements();
  options.max_archive_members = request.max_archive_members();
  options.max_compression_ratio = request.max_compression_ratio();
  return options;
}

reader::ReadResult ToReadResult(const absl::StatusOr<KerasFileContents>& unpacked) {
  reader::ReadResult result;
  if (!unpacked.ok()) {
    result.set_error_code(static_cast<int>(unpacked.status().code()));
    result.set_error_message(std::string(unpacked.status().message()));
    if (std::optional<std::string> path = FieldPathOf(unpacked.status())) {
      result.set_error_path(*path);
    }
    return result;
  }
  result.set_format(unpacked->format);
  result.set_config_json(unpacked->config_json);
  if (unpacked->weights.has_value()) {
    result.set_has_weights(true);
    result.set_model_name(unpacked->weights->model_name);
    for (const auto& [path, group] : unpacked->weights->groups) {
      reader::WeightGroup& out = *result.add_groups();
      out.set_path(path);
      out.set_name(group.name);
      for (const Tensor& value : group.values) *out.add_values() = EncodeTensor(value);
    }
  }
  return result;
}

absl::StatusOr<KerasFileContents> FromReadResult(const reader::ReadResult& result,
                                                 const KerasReadOptions& options) {
  if (result.error_code() != 0) {
    // The file's fault, or a limit it met; nothing else is the server's to report.
    const auto code = static_cast<absl::StatusCode>(result.error_code());
    absl::Status error(
        code == absl::StatusCode::kResourceExhausted ? code : absl::StatusCode::kInvalidArgument,
        result.error_message());
    // FieldError's form: the message already starts with the path.
    if (result.has_error_path())
      error.SetPayload(kFieldPathPayloadUrl, absl::Cord(result.error_path()));
    return error;
  }
  if (!v1::KerasFormat_IsValid(result.format())) {
    return absl::InternalError("kiln-file-reader answered an unknown format");
  }
  KerasFileContents contents;
  contents.format = static_cast<v1::KerasFormat>(result.format());
  contents.config_json = result.config_json();
  if (result.has_weights()) {
    WeightsFile& weights = contents.weights.emplace();
    weights.model_name = result.model_name();
    int64_t budget = options.max_elements;
    for (const reader::WeightGroup& group : result.groups()) {
      WeightGroup& out = weights.groups[group.path()];
      out.name = group.name();
      for (int i = 0; i < group.values_size(); ++i) {
        const std::string path = absl::StrCat(group.path(), "/vars/", i);
        KILN_ASSIGN_OR_RETURN(Tensor value, DecodeWeight(group.values(i), path, budget));
        budget -= value.shape().num_elements();
        out.values.push_back(std::move(value));
      }
    }
  }
  return contents;
}

}  // namespace kiln::server
