#include "core/saving/keras_weights.h"

#include <hdf5.h>

#include <functional>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "core/base/status.h"

namespace kiln {
namespace {

constexpr absl::string_view kSignature("\x89HDF\r\n\x1a\n", 8);

// HDF5 keeps global state; one file operation at a time keeps error handling simple.
absl::Mutex hdf5_mu;

// An hid_t closed by `close` when it goes out of scope.
class Handle {
 public:
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() {
    if (id_ >= 0) close_(id_);
  }
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

absl::Status Failed(absl::string_view what, absl::string_view path) {
  return FieldError(path, absl::StrCat("HDF5 could not ", what,
                                       " (the file is damaged, or not a "
                                       "Keras 3 weights file)"));
}

absl::Status WriteNameAttribute(hid_t group, const std::string& value) {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);  // as h5py writes a Python str
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attribute(H5Acreate2(group, "name", type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                   H5Aclose);
  const char* text = value.c_str();
  if (!attribute.ok() || H5Awrite(attribute.get(), type.get(), &text) < 0) {
    return absl::InternalError("HDF5 could not write a name attribute");
  }
  return absl::OkStatus();
}

// "layers/dense" -> creates layers, layers/dense and layers/dense/vars; returns vars.
hid_t CreateVars(hid_t file, const std::string& path) {
  std::string at;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    absl::StrAppend(&at, at.empty() ? "" : "/", part);
    if (H5Lexists(file, at.c_str(), H5P_DEFAULT) <= 0) {
      hid_t group = H5Gcreate2(file, at.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      if (group < 0) return group;
      H5Gclose(group);
    }
  }
  const std::string vars = at.empty() ? "vars" : absl::StrCat(at, "/vars");
  return H5Gcreate2(file, vars.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
}

absl::Status WriteDataset(hid_t vars, const std::string& name, const Tensor& value) {
  std::vector<hsize_t> dims(value.shape().dims().begin(), value.shape().dims().end());
  Handle space(dims.empty() ? H5Screate(H5S_SCALAR)
                            : H5Screate_simple(int(dims.size()), dims.data(), nullptr),
               H5Sclose);
  const bool integer = value.dtype() == DType::kInt64;
  const hid_t file_type = integer ? H5T_STD_I64LE : H5T_IEEE_F32LE;
  const hid_t memory_type = integer ? H5T_NATIVE_INT64 : H5T_NATIVE_FLOAT;
  Handle dataset(
      H5Dcreate2(vars, name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
      H5Dclose);
  if (!dataset.ok() ||
      H5Dwrite(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, value.raw_data()) < 0) {
    return absl::InternalError(absl::StrCat("HDF5 could not write dataset ", name));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadNameAttribute(hid_t group) {
  if (H5Aexists(group, "name") <= 0) return std::string();
  Handle attribute(H5Aopen(group, "name", H5P_DEFAULT), H5Aclose);
  Handle type(H5Aget_type(attribute.get()), H5Tclose);
  if (!attribute.ok() || !type.ok() || H5Tget_class(type.get()) != H5T_STRING) return std::string();
  if (H5Tis_variable_str(type.get()) > 0) {
    Handle memory(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(memory.get(), H5T_VARIABLE);
    H5Tset_cset(memory.get(), H5Tget_cset(type.get()));
    char* text = nullptr;
    if (H5Aread(attribute.get(), memory.get(), &text) < 0 || text == nullptr) return std::string();
    std::string out(text);
    H5free_memory(text);
    return out;
  }
  const size_t size = H5Tget_size(type.get());
  if (size > 4096) return std::string();
  std::string out(size, '\0');
  if (H5Aread(attribute.get(), type.get(), out.data()) < 0) return std::string();
  return std::string(out.c_str());
}

// The datasets "0", "1", ... of one vars group.
absl::Status ReadVars(hid_t vars, const std::string& path, int64_t& budget, WeightGroup& group) {
  KILN_ASSIGN_OR_RETURN(group.name, ReadNameAttribute(vars));
  H5G_info_t info;
  if (H5Gget_info(vars, &info) < 0) return Failed("list the group", path);
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const std::string name = absl::StrCat(i);
    const std::string at = absl::StrCat(path, "/", name);
    if (H5Lexists(vars, name.c_str(), H5P_DEFAULT) <= 0) {
      return FieldError(at, absl::StrCat("the group holds ", info.nlinks,
                                         " entries, but no dataset \"", name, "\""));
    }
    Handle dataset(H5Dopen2(vars, name.c_str(), H5P_DEFAULT), H5Dclose);
    if (!dataset.ok()) return Failed("open the dataset", at);
    Handle space(H5Dget_space(dataset.get()), H5Sclose);
    const int rank = H5Sget_simple_extent_ndims(space.get());
    if (rank < 0 || rank > 8) return Failed("read the dataset's shape", at);
    std::vector<hsize_t> dims(rank);
    H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    std::vector<int64_t> shape;
    int64_t elements = 1;
    for (hsize_t d : dims) {
      shape.push_back(static_cast<int64_t>(d));
      if (d > 0 && elements > budget / int64_t(d)) {
        return absl::ResourceExhaustedError(
            absl::StrCat(at, ": the file's weights are larger than allowed"));
      }
      elements *= int64_t(d);
    }
    budget -= elements;
    Handle type(H5Dget_type(dataset.get()), H5Tclose);
    const H5T_class_t type_class = H5Tget_class(type.get());
    if (type_class != H5T_FLOAT && type_class != H5T_INTEGER) {
      return FieldError(at, "Kiln reads numeric weights only");
    }
    const bool integer = type_class == H5T_INTEGER;
    Tensor value(integer ? DType::kInt64 : DType::kFloat32, Shape(std::move(shape)));
    if (H5Dread(dataset.get(), integer ? H5T_NATIVE_INT64 : H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL,
                H5P_DEFAULT, value.raw_data()) < 0) {
      return Failed("read the dataset", at);
    }
    group.values.push_back(std::move(value));
  }
  return absl::OkStatus();
}

// Calls `visit(path)` for every group under `root` that has a vars subgroup, depth first.
absl::Status VisitGroups(hid_t file, const std::string& root,
                         const std::function<absl::Status(const std::string&)>& visit, int depth) {
  if (depth > 8) return Failed("walk groups nested this deep", root);
  Handle group(H5Gopen2(file, root.c_str(), H5P_DEFAULT), H5Gclose);
  if (!group.ok()) return absl::OkStatus();
  H5G_info_t info;
  if (H5Gget_info(group.get(), &info) < 0) return Failed("list the group", root);
  if (info.nlinks > 100000) return Failed("list a group this large", root);
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t size = H5Lget_name_by_idx(group.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i,
                                            nullptr, 0, H5P_DEFAULT);
    if (size <= 0 || size > 1024) continue;
    std::string name(size_t(size) + 1, '\0');
    H5Lget_name_by_idx(group.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(),
                       H5P_DEFAULT);
    name.resize(size_t(size));
    if (name == "vars") continue;
    H5L_info_t link;
    if (H5Lget_info(group.get(), name.c_str(), &link, H5P_DEFAULT) < 0 ||
        link.type != H5L_TYPE_HARD) {
      continue;  // Keras refuses soft and external links too
    }
    const std::string child = root == "/" ? name : absl::StrCat(root, "/", name);
    H5O_info_t object;
    if (H5Oget_info_by_name2(file, child.c_str(), &object, H5O_INFO_BASIC, H5P_DEFAULT) < 0 ||
        object.type != H5O_TYPE_GROUP) {
      continue;
    }
    if (H5Lexists(file, absl::StrCat(child, "/vars").c_str(), H5P_DEFAULT) > 0) {
      KILN_RETURN_IF_ERROR(visit(child));
    }
    KILN_RETURN_IF_ERROR(VisitGroups(file, child, visit, depth + 1));
  }
  return absl::OkStatus();
}

}  // namespace

bool IsHdf5(absl::string_view bytes) { return absl::StartsWith(bytes, kSignature); }

absl::StatusOr<std::string> WriteWeightsFile(const WeightsFile& weights) {
  absl::MutexLock lock(&hdf5_mu);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  Handle access(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  // In memory only: the core driver without a backing store.
  H5Pset_fapl_core(access.get(), 1 << 20, /*backing_store=*/0);
  Handle file(H5Fcreate("kiln-weights.h5", H5F_ACC_TRUNC, H5P_DEFAULT, access.get()), H5Fclose);
  if (!file.ok()) return absl::InternalError("HDF5 could not create a file in memory");
  {
    Handle vars(CreateVars(file.get(), ""), H5Gclose);
    if (!vars.ok()) return absl::InternalError("HDF5 could not create /vars");
    KILN_RETURN_IF_ERROR(WriteNameAttribute(vars.get(), weights.model_name));
  }
  for (const auto& [path, group] : weights.groups) {
    Handle vars(CreateVars(file.get(), path), H5Gclose);
    if (!vars.ok()) return absl::InternalError(absl::StrCat("HDF5 could not create ", path));
    KILN_RETURN_IF_ERROR(WriteNameAttribute(vars.get(), group.name));
    for (size_t i = 0; i < group.values.size(); ++i) {
      KILN_RETURN_IF_ERROR(WriteDataset(vars.get(), absl::StrCat(i), group.values[i]));
    }
  }
  if (H5Fflush(file.get(), H5F_SCOPE_GLOBAL) < 0) {
    return absl::InternalError("HDF5 could not flush the file");
  }
  const ssize_t size = H5Fget_file_image(file.get(), nullptr, 0);
  if (size < 0) return absl::InternalError("HDF5 could not measure the file");
  std::string bytes(size_t(size), '\0');
  if (H5Fget_file_image(file.get(), bytes.data(), bytes.size()) != size) {
    return absl::InternalError("HDF5 could not copy the file");
  }
  return bytes;
}

absl::StatusOr<WeightsFile> ReadWeightsFile(absl::string_view bytes, int64_t max_elements) {
  if (!IsHdf5(bytes)) return FieldError("", "not an HDF5 file (a Keras .weights.h5 file is one)");
  absl::MutexLock lock(&hdf5_mu);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  Handle access(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  H5Pset_fapl_core(access.get(), 1 << 20, /*backing_store=*/0);
  // HDF5 copies the image; its read-only open never writes to it.
  std::string image(bytes);
  if (H5Pset_file_image(access.get(), image.data(), image.size()) < 0) {
    return absl::InternalError("HDF5 could not take the file's bytes");
  }
  Handle file(H5Fopen("kiln-weights.h5", H5F_ACC_RDONLY, access.get()), H5Fclose);
  if (!file.ok()) return Failed("open the file", "");
  if (H5Lexists(file.get(), "model_weights", H5P_DEFAULT) > 0 ||
      H5Lexists(file.get(), "layer_names", H5P_DEFAULT) > 0) {
    return FieldError("",
                      "this is a Keras 2 .h5 file (model_weights/...); Kiln reads Keras 3's "
                      ".weights.h5 and .keras files");
  }
  WeightsFile weights;
  int64_t budget = max_elements;
  if (H5Lexists(file.get(), "vars", H5P_DEFAULT) > 0) {
    Handle vars(H5Gopen2(file.get(), "vars", H5P_DEFAULT), H5Gclose);
    if (vars.ok()) {
      KILN_ASSIGN_OR_RETURN(weights.model_name, ReadNameAttribute(vars.get()));
    }
  }
  KILN_RETURN_IF_ERROR(VisitGroups(
      file.get(), "/",
      [&](const std::string& path) -> absl::Status {
        Handle vars(H5Gopen2(file.get(), absl::StrCat(path, "/vars").c_str(), H5P_DEFAULT),
                    H5Gclose);
        if (!vars.ok()) return Failed("open the group", absl::StrCat(path, "/vars"));
        return ReadVars(vars.get(), absl::StrCat(path, "/vars"), budget, weights.groups[path]);
      },
      0));
  return weights;
}

}  // namespace kiln
