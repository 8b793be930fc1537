#include "core/io/builtin_datasets.h"

#include "absl/strings/str_cat.h"
#include "core/base/status.h"
#include "core/io/readers.h"

namespace kiln {

absl::StatusOr<Dataset> LoadFashionMnist(const std::string& split, const std::string& directory) {
  if (split != "train" && split != "test") {
    return FieldError("split", absl::StrCat("must be \"train\" or \"test\". Received: ", split));
  }
  const std::string prefix = split == "train" ? "train" : "t10k";
  const std::string images_path = absl::StrCat(directory, "/", prefix, "-images-idx3-ubyte.gz");
  const std::string labels_path = absl::StrCat(directory, "/", prefix, "-labels-idx1-ubyte.gz");
  absl::StatusOr<std::string> image_bytes = ReadFile(images_path);
  if (absl::IsNotFound(image_bytes.status())) {
    return absl::NotFoundError(absl::StrCat(image_bytes.status().message(),
                                            " (install the Debian package dataset-fashion-mnist)"));
  }
  KILN_RETURN_IF_ERROR(image_bytes.status());
  KILN_ASSIGN_OR_RETURN(Tensor images, ParseIdx(*image_bytes, images_path));
  KILN_ASSIGN_OR_RETURN(std::string label_bytes, ReadFile(labels_path));
  KILN_ASSIGN_OR_RETURN(Tensor labels, ParseIdx(label_bytes, labels_path));
  if (images.rank() != 3 || labels.rank() != 1 || images.shape()[0] != labels.shape()[0]) {
    return absl::InvalidArgumentError(absl::StrCat("unexpected Fashion-MNIST shapes ",
                                                   images.shape().ToString(), " and ",
                                                   labels.shape().ToString()));
  }
  Dataset data;
  const Shape& s = images.shape();
  data.x.push_back(ToFloat32(images, 1.0f / 255.0f).Reshaped(Shape{s[0], s[1], s[2], 1}));
  data.y = ToFloat32(labels);
  return data;
}

}  // namespace kiln
