// Keras 3's weights files (.weights.h5, and model.weights.h5 inside a .keras archive), read and
// written in memory with HDF5 (Debian libhdf5). The layout is saving_lib's H5IOStore:
//
//   /vars                                attrs {name: <model>}       (empty)
//   /layers/<snake_case class>[_n]/vars  attrs {name: <layer>}       datasets "0", "1", ...
//   /optimizer/vars                      attrs {name: "adam"}        0 iteration, 1 learning
//                                                                    rate, then the slots
//
// Groups are named after the class and its rank among layers of that class in model.layers,
// not after the layer; datasets are numbered in the layer's variable order (kernel, bias;
// gamma, beta, moving_mean, moving_variance). Keras matches groups by path on load.
#ifndef KILN_CORE_SAVING_KERAS_WEIGHTS_H_
#define KILN_CORE_SAVING_KERAS_WEIGHTS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/tensor/tensor.h"

namespace kiln {

// One group's variables ("layers/dense/vars" is group "layers/dense").
struct WeightGroup {
  std::string name;            // its `name` attribute (Keras >= 3.6); empty when absent
  std::vector<Tensor> values;  // datasets "0", "1", ...: float32 (int64 for iteration counts)
};

struct WeightsFile {
  std::string model_name;                     // /vars's name attribute
  std::map<std::string, WeightGroup> groups;  // by group path, the optimizer's included
};

// The file's bytes. Every group gets its vars subgroup, as Keras writes them (a layer without
// weights an empty one).
absl::StatusOr<std::string> WriteWeightsFile(const WeightsFile& file);

// Reads every group that has a vars subgroup: the root's, layers/*, optimizer. Tensors of more
// than `max_elements` elements in all are refused (RESOURCE_EXHAUSTED), so that a small file
// cannot make the server allocate without bound. Errors name the HDF5 path.
absl::StatusOr<WeightsFile> ReadWeightsFile(absl::string_view bytes, int64_t max_elements);

// Whether `bytes` start with HDF5's signature.
bool IsHdf5(absl::string_view bytes);

}  // namespace kiln

#endif  // KILN_CORE_SAVING_KERAS_WEIGHTS_H_
