#include "core/saving/keras_contents.h"

#include "absl/strings/str_cat.h"
#include "core/base/status.h"
#include "core/saving/keras_archive.h"

namespace kiln {

absl::Status InMember(const absl::Status& status, absl::string_view member) {
  return WithFieldPath(status, absl::StrCat(member, ":", FieldPathOf(status).value_or("")));
}

v1::KerasFormat DetectKerasFormat(absl::string_view bytes) {
  if (IsZip(bytes)) return v1::KERAS_FORMAT_KERAS;
  if (IsHdf5(bytes)) return v1::KERAS_FORMAT_WEIGHTS;
  return v1::KERAS_FORMAT_JSON;
}

absl::StatusOr<KerasFileContents> UnpackKerasFile(absl::string_view bytes, v1::KerasFormat format,
                                                  const KerasReadOptions& options) {
  KerasFileContents contents;
  contents.format = format == v1::KERAS_FORMAT_UNSPECIFIED ? DetectKerasFormat(bytes) : format;
  switch (contents.format) {
    case v1::KERAS_FORMAT_JSON:
      contents.config_json = std::string(bytes);
      return contents;
    case v1::KERAS_FORMAT_KERAS: {
      ArchiveLimits limits;
      limits.max_members = options.max_archive_members;
      limits.max_total_bytes = options.max_bytes;
      limits.max_ratio = options.max_compression_ratio;
      KILN_ASSIGN_OR_RETURN(KerasArchive archive, ReadKerasArchive(bytes, limits));
      contents.config_json = std::move(archive.config_json);
      absl::StatusOr<WeightsFile> weights =
          ReadWeightsFile(archive.weights_h5, options.max_elements);
      if (!weights.ok()) return InMember(weights.status(), "model.weights.h5");
      contents.weights = *std::move(weights);
      return contents;
    }
    case v1::KERAS_FORMAT_WEIGHTS: {
      KILN_ASSIGN_OR_RETURN(contents.weights, ReadWeightsFile(bytes, options.max_elements));
      return contents;
    }
    default:
      return FieldError("format", "unknown Keras file format");
  }
}

}  // namespace kiln
