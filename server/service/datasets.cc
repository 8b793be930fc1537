#include "server/service/datasets.h"

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/status.h"
#include "core/io/builtin_datasets.h"
#include "core/io/readers.h"
#include "core/io/tensor_proto.h"
#include "server/store/io_error.h"

namespace kiln::server {
namespace {

constexpr char kBuiltinNames[] = "fashion_mnist:train, fashion_mnist:test";

// "x" / "x0" -> 0, "x1" -> 1, ...; "y" -> -1; otherwise nullopt.
std::optional<int> ArrayIndex(const std::string& array) {
  if (array == "y") return -1;
  if (array == "x" || array == "x0") return 0;
  if (array.size() >= 2 && array[0] == 'x') {
    int i = 0;
    if (absl::SimpleAtoi(array.substr(1), &i) && i >= 0) return i;
  }
  return std::nullopt;
}

absl::StatusOr<Tensor> ParseArray(const v1::ArraySpec& spec, const std::string& bytes,
                                  const std::string& path) {
  const std::string& format = spec.format();
  if (format == "npy") return ParseNpy(bytes, path);
  if (format == "idx") return ParseIdx(bytes, path);
  if (format == "csv") return ParseCsv(bytes, path);
  if (format == "raw" || format.empty()) {
    v1::TensorProto proto;
    proto.set_dtype(spec.dtype());
    *proto.mutable_shape() = spec.shape();
    proto.set_data(bytes);
    return DecodeTensor(proto, path);
  }
  return FieldError(absl::StrCat(path, ".format"),
                    absl::StrCat("unknown format \"", format, "\"; use npy, idx, csv or raw"));
}

}  // namespace

bool BuiltinDatasets::IsBuiltin(const std::string& name) {
  return name == "fashion_mnist:train" || name == "fashion_mnist:test";
}

absl::StatusOr<std::shared_ptr<const Dataset>> BuiltinDatasets::Get(const std::string& name) {
  if (!IsBuiltin(name)) {
    return absl::NotFoundError(absl::StrCat("no dataset \"", name,
                                            "\" in this session, and no "
                                            "built-in of that name (built-ins: ",
                                            kBuiltinNames, ")"));
  }
  absl::MutexLock lock(&mu_);  // held while loading: one load per name
  auto it = loaded_.find(name);
  if (it != loaded_.end()) return it->second;
  // Shared by every session and loaded once: charged to none of them.
  ScopedMemoryAccount server_wide(nullptr);
  KILN_ASSIGN_OR_RETURN(Dataset data, LoadFashionMnist(name.substr(name.find(':') + 1)));
  auto shared = std::make_shared<const Dataset>(std::move(data));
  loaded_[name] = shared;
  return shared;
}

absl::Status ApplyTransform(const v1::FeatureTransform& transform, Dataset& data,
                            absl::string_view path) {
  for (size_t i = 0; i < data.x.size(); ++i) {
    Tensor& x = data.x[i];
    if (transform.has_scale() && transform.scale() != 1.0f) x = ToFloat32(x, transform.scale());
    if (transform.sample_shape_size() > 0) {
      std::vector<int64_t> dims = {x.shape()[0]};
      dims.insert(dims.end(), transform.sample_shape().begin(), transform.sample_shape().end());
      const std::optional<int64_t> n = CheckedProduct(dims);
      if (!n.has_value() || *n != x.num_elements()) {
        return FieldError(absl::StrCat(path, ".sample_shape"),
                          absl::StrCat("cannot reshape x", i, " of shape ", x.shape().ToString(),
                                       " into samples of shape ",
                                       Shape(std::vector<int64_t>(transform.sample_shape().begin(),
                                                                  transform.sample_shape().end()))
                                           .ToString()));
      }
      x = x.Reshaped(Shape(dims));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Dataset> LoadFiles(const DataRoot& root, const v1::FileSource& files,
                                  const v1::FeatureTransform& transform, int64_t max_bytes) {
  auto read = [&](const std::string& relative, const std::string& path) -> absl::StatusOr<Tensor> {
    absl::StatusOr<std::string> bytes = root.Read(relative, static_cast<size_t>(max_bytes));
    if (!bytes.ok()) return WithFieldPrefix(bytes.status(), path);
    absl::StatusOr<Tensor> t = ParseArrayFile(*bytes, relative);
    if (!t.ok()) return WithFieldPrefix(t.status(), path);
    return t;
  };
  if (files.x_size() == 0) return FieldError("files.x", "name at least one feature file");
  std::vector<Tensor> x;
  for (int i = 0; i < files.x_size(); ++i) {
    const std::string path = absl::StrCat("files.x[", i, "]");
    KILN_ASSIGN_OR_RETURN(Tensor t, read(files.x(i), path));
    x.push_back(std::move(t));
  }
  Tensor y;
  if (files.has_label_column()) {
    // The label is one column of a 2-D x: split it off.
    const Tensor table = ToFloat32(x[0]);
    if (table.rank() != 2) {
      return FieldError("files.label_column", "label_column needs a 2-D (CSV) feature file");
    }
    const int64_t rows = table.shape()[0], cols = table.shape()[1];
    int64_t c = files.label_column() < 0 ? cols + files.label_column() : files.label_column();
    if (c < 0 || c >= cols || cols < 2) {
      return FieldError(
          "files.label_column",
          absl::StrCat("column ", files.label_column(), " does not exist in ", cols, " columns"));
    }
    Tensor features(DType::kFloat32, Shape{rows, cols - 1});
    y = Tensor(DType::kFloat32, Shape{rows});
    for (int64_t r = 0; r < rows; ++r) {
      int64_t k = 0;
      for (int64_t j = 0; j < cols; ++j) {
        const float v = table.data<float>()[r * cols + j];
        if (j == c) {
          y.data<float>()[r] = v;
        } else {
          features.data<float>()[r * (cols - 1) + k++] = v;
        }
      }
    }
    x[0] = features;
  } else if (!files.y().empty()) {
    KILN_ASSIGN_OR_RETURN(y, read(files.y(), "files.y"));
  }
  KILN_ASSIGN_OR_RETURN(Dataset data, MakeDataset(std::move(x), std::move(y), "files"));
  KILN_RETURN_IF_ERROR(ApplyTransform(transform, data, "transform"));
  return data;
}

absl::StatusOr<std::unique_ptr<UploadBuilder>> UploadBuilder::Create(
    const v1::UploadHeader& header, std::shared_ptr<MemoryAccount> account) {
  if (header.name().empty()) return FieldError("header.name", "a dataset needs a name");
  if (header.x_size() == 0) {
    return FieldError("header.x", "declare at least one feature array (its format)");
  }
  return absl::WrapUnique(new UploadBuilder(header, std::move(account)));
}

UploadBuilder::~UploadBuilder() { account_->Release(total_); }

absl::StatusOr<int64_t> UploadBuilder::Append(const v1::UploadChunk& chunk, int64_t offset) {
  const std::optional<int> index = ArrayIndex(chunk.array());
  if (!index.has_value() || *index >= header_.x_size() || (*index < 0 && !header_.has_y())) {
    return FieldError("chunk.array",
                      absl::StrCat("\"", chunk.array(),
                                   "\" is not an array of this upload; the "
                                   "header declares x0..x",
                                   header_.x_size() - 1, header_.has_y() ? " and y" : ""));
  }
  const std::string key = *index < 0 ? "y" : absl::StrCat("x", *index);
  std::string& bytes = arrays_[key];
  if (offset >= 0 && offset != static_cast<int64_t>(bytes.size())) {
    return absl::FailedPreconditionError(
        absl::StrCat("chunk.offset: ", offset, " does not continue array ", key, ", which has ",
                     bytes.size(), " bytes; send from offset ", bytes.size()));
  }
  KILN_RETURN_IF_ERROR(account_->Charge(static_cast<int64_t>(chunk.data().size())));
  bytes.append(chunk.data());
  total_ += static_cast<int64_t>(chunk.data().size());
  return static_cast<int64_t>(bytes.size());
}

absl::StatusOr<Dataset> UploadBuilder::Finish() {
  account_->Release(total_);
  total_ = 0;
  std::vector<Tensor> x;
  for (int i = 0; i < header_.x_size(); ++i) {
    auto it = arrays_.find(absl::StrCat("x", i));
    const std::string path = absl::StrCat("header.x[", i, "]");
    if (it == arrays_.end()) {
      return absl::FailedPreconditionError(absl::StrCat("no bytes were sent for array x", i));
    }
    KILN_ASSIGN_OR_RETURN(Tensor t, ParseArray(header_.x(i), it->second, path));
    x.push_back(std::move(t));
  }
  Tensor y;
  if (header_.has_y()) {
    auto it = arrays_.find("y");
    if (it == arrays_.end()) {
      return absl::FailedPreconditionError("no bytes were sent for array y");
    }
    KILN_ASSIGN_OR_RETURN(y, ParseArray(header_.y(), it->second, "header.y"));
  }
  KILN_ASSIGN_OR_RETURN(Dataset data, MakeDataset(std::move(x), std::move(y), "upload"));
  KILN_RETURN_IF_ERROR(ApplyTransform(header_.transform(), data, "header.transform"));
  return data;
}

std::vector<store::NamedTensor> DatasetArrays(const Dataset& data) {
  std::vector<store::NamedTensor> arrays;
  for (size_t i = 0; i < data.x.size(); ++i) arrays.push_back({absl::StrCat("x", i), data.x[i]});
  if (!data.y.empty()) arrays.push_back({"y", data.y});
  return arrays;
}

absl::StatusOr<Dataset> DatasetFromArrays(std::vector<store::NamedTensor> arrays,
                                          absl::string_view what) {
  Dataset data;
  for (store::NamedTensor& a : arrays) {
    if (a.name == "y") {
      data.y = std::move(a.tensor);
    } else if (a.name == absl::StrCat("x", data.x.size())) {
      data.x.push_back(std::move(a.tensor));
    } else {
      return store::Damaged(what, absl::StrCat("it holds an unexpected array \"", a.name, "\""));
    }
  }
  if (absl::Status valid = data.Validate(); !valid.ok()) {
    return store::Damaged(what, valid.message());
  }
  return data;
}

}  // namespace kiln::server
