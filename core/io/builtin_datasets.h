// Data sets Kiln can load by name from files Debian ships.
//
// "fashion_mnist": Zalando's Fashion-MNIST from the dataset-fashion-mnist package
// (/usr/share/datasets/fashion-mnist): 60,000 training and 10,000 test 28x28 grey images in 10
// classes. Images come as float32 (N, 28, 28, 1) scaled to [0, 1], labels as float32 (N,).
#ifndef KILN_CORE_IO_BUILTIN_DATASETS_H_
#define KILN_CORE_IO_BUILTIN_DATASETS_H_

#include <string>

#include "absl/status/statusor.h"
#include "core/io/dataset.h"

namespace kiln {

inline constexpr char kFashionMnistDir[] = "/usr/share/datasets/fashion-mnist";

// split: "train" or "test". NOT_FOUND (with the package to install) when the files are absent.
absl::StatusOr<Dataset> LoadFashionMnist(const std::string& split,
                                         const std::string& directory = kFashionMnistDir);

}  // namespace kiln

#endif  // KILN_CORE_IO_BUILTIN_DATASETS_H_
