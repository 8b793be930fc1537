// Session: datasets - built-ins, files, uploads - and resolving a job's data.
#include <algorithm>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/random_id.h"
#include "core/base/status.h"
#include "core/io/tensor_proto.h"
#include "server/service/session.h"
#include "server/service/session_internal.h"

namespace kiln::server {
namespace {

int64_t BytesOf(const Dataset& data) {
  int64_t bytes = data.y.empty() ? 0 : int64_t(data.y.byte_size());
  for (const Tensor& t : data.x) bytes += int64_t(t.byte_size());
  return bytes;
}

v1::DatasetInfo InfoOf(const std::string& name, const Dataset& data, const std::string& source) {
  v1::DatasetInfo info;
  info.set_name(name);
  info.set_samples(data.size());
  for (const Tensor& t : data.x) *info.add_x() = SpecOf(t);
  if (!data.y.empty()) *info.mutable_y() = SpecOf(data.y);
  info.set_source(source);
  info.set_bytes(BytesOf(data));
  return info;
}

absl::Status UploadNotFound(const std::string& upload_id) {
  return WithFieldPrefix(
      absl::NotFoundError(absl::StrCat("no upload ", Quoted(upload_id), " in this session")),
      "upload_id");
}

}  // namespace

absl::StatusOr<v1::DatasetInfo> Session::AddDataset(const std::string& name, Dataset data,
                                                    const std::string& source,
                                                    const v1::OpenDatasetRequest* reopen) {
  if (name.empty()) return FieldError("name", "a dataset needs a name");
  // Its tensors were charged to the session as they were made.
  {
    absl::MutexLock lock(&mu_);
    if (datasets_.contains(name) || pending_datasets_.contains(name)) {
      return WithFieldPrefix(
          absl::AlreadyExistsError(absl::StrCat("a dataset \"", name,
                                                "\" already exists in this session (delete it "
                                                "first)")),
          "name");
    }
    pending_datasets_.insert(name);  // taken while it is stored
  }
  absl::Cleanup release = [&] {
    absl::MutexLock lock(&mu_);
    pending_datasets_.erase(name);
  };
  v1::DatasetInfo info = InfoOf(name, data, source);
  store::DatasetRecord record;
  *record.mutable_info() = info;
  if (reopen != nullptr) *record.mutable_reopen() = *reopen;
  const std::vector<store::NamedTensor> arrays = DatasetArrays(data);
  KILN_RETURN_IF_ERROR(
      runtime_.store->PutDataset(store_key_, record, reopen != nullptr ? nullptr : &arrays));
  absl::MutexLock lock(&mu_);
  datasets_[name] = DatasetEntry{std::make_shared<const Dataset>(std::move(data)), info};
  return info;
}

absl::StatusOr<v1::DatasetInfo> Session::OpenDataset(const v1::OpenDatasetRequest& request) {
  if (request.name().empty()) return FieldError("name", "a dataset needs a name");
  switch (request.source_case()) {
    case v1::OpenDatasetRequest::kBuiltin: {
      absl::StatusOr<std::shared_ptr<const Dataset>> builtin =
          runtime_.builtins->Get(request.builtin());
      if (!builtin.ok()) return WithFieldPrefix(builtin.status(), "builtin");
      Dataset data = **builtin;  // tensors are shared handles: no copy of the data
      const std::string source = absl::StrCat("builtin:", request.builtin());
      KILN_RETURN_IF_ERROR(ApplyTransform(request.transform(), data, "transform"));
      // Built-ins ship with the server: the store keeps how to open them, not their bytes.
      return AddDataset(request.name(), std::move(data), source, &request);
    }
    case v1::OpenDatasetRequest::kFiles: {
      KILN_ASSIGN_OR_RETURN(Dataset data,
                            LoadFiles(DataRoot(runtime_.options->data_root), request.files(),
                                      request.transform(), runtime_.options->max_session_bytes));
      const std::string source =
          absl::StrCat("files:", absl::StrJoin(request.files().x(), ","),
                       request.files().y().empty() ? "" : ";" + request.files().y());
      // Files below the data root may change or go; the session keeps a copy.
      return AddDataset(request.name(), std::move(data), source, nullptr);
    }
    case v1::OpenDatasetRequest::SOURCE_NOT_SET:
      break;
  }
  return FieldError("source", "give a built-in name or files");
}

absl::StatusOr<std::string> Session::BeginUpload(const v1::UploadHeader& header) {
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<UploadBuilder> upload,
                        UploadBuilder::Create(header, memory_));
  absl::MutexLock lock(&mu_);
  if (datasets_.contains(header.name())) {
    return WithFieldPrefix(absl::AlreadyExistsError(absl::StrCat(
                               "a dataset \"", header.name(), "\" already exists in this session")),
                           "header.name");
  }
  const std::string id = absl::StrCat("upload-", RandomHex(16));
  uploads_[id] = std::move(upload);
  return id;
}

absl::StatusOr<int64_t> Session::AppendUploadChunk(const v1::AppendUploadChunkRequest& request) {
  return AppendToUpload(request.upload_id(), request.chunk(), request.offset());
}

absl::StatusOr<int64_t> Session::AppendToUpload(const std::string& upload_id,
                                                const v1::UploadChunk& chunk, int64_t offset) {
  absl::MutexLock lock(&mu_);
  auto it = uploads_.find(upload_id);
  if (it == uploads_.end()) {
    return UploadNotFound(upload_id);
  }
  // Every upload in progress counts for the session, so parallel ones cannot each take all of
  // its bytes.
  return it->second->Append(chunk, offset);
}

void Session::AbortUpload(const std::string& upload_id) {
  absl::MutexLock lock(&mu_);
  uploads_.erase(upload_id);
}

absl::StatusOr<v1::DatasetInfo> Session::FinishUpload(const v1::FinishUploadRequest& request) {
  std::unique_ptr<UploadBuilder> upload;
  {
    absl::MutexLock lock(&mu_);
    auto it = uploads_.find(request.upload_id());
    if (it == uploads_.end()) {
      return UploadNotFound(request.upload_id());
    }
    upload = std::move(it->second);
    uploads_.erase(it);
  }
  KILN_ASSIGN_OR_RETURN(Dataset data, upload->Finish());  // parsing runs outside the lock
  return AddDataset(upload->header().name(), std::move(data), "upload", nullptr);
}

absl::StatusOr<v1::DatasetInfo> Session::GetDataset(const v1::GetDatasetRequest& request) const {
  absl::MutexLock lock(&mu_);
  auto it = datasets_.find(request.name());
  if (it == datasets_.end()) {
    return WithFieldPrefix(absl::NotFoundError(absl::StrCat("no dataset ", Quoted(request.name()),
                                                            " in this session")),
                           "name");
  }
  return it->second.info;
}

v1::ListDatasetsResponse Session::ListDatasets() const {
  absl::MutexLock lock(&mu_);
  v1::ListDatasetsResponse response;
  for (const auto& [name, entry] : datasets_) *response.add_datasets() = entry.info;
  std::sort(response.mutable_datasets()->begin(), response.mutable_datasets()->end(),
            [](const v1::DatasetInfo& a, const v1::DatasetInfo& b) { return a.name() < b.name(); });
  return response;
}

absl::Status Session::DeleteDataset(const v1::DeleteDatasetRequest& request) {
  absl::MutexLock writer(&writer_mu_);
  {
    absl::ReaderMutexLock lock(&mu_);
    if (!datasets_.contains(request.name())) {
      return WithFieldPrefix(absl::NotFoundError(absl::StrCat("no dataset ", Quoted(request.name()),
                                                              " in this session")),
                             "name");
    }
  }
  KILN_RETURN_IF_ERROR(runtime_.store->DeleteDataset(store_key_, request.name()));
  absl::MutexLock lock(&mu_);
  datasets_.erase(request.name());  // a job that reads it keeps it alive until it ends
  return absl::OkStatus();
}

absl::StatusOr<v1::TensorProto> Session::ReadDataset(const v1::ReadDatasetRequest& request) const {
  std::shared_ptr<const Dataset> data;
  {
    absl::MutexLock lock(&mu_);
    auto it = datasets_.find(request.name());
    if (it == datasets_.end()) {
      return WithFieldPrefix(absl::NotFoundError(absl::StrCat("no dataset ", Quoted(request.name()),
                                                              " in this session")),
                             "name");
    }
    data = it->second.data;
  }
  const Tensor* tensor = nullptr;
  if (request.array() == "y") {
    tensor = data->y.empty() ? nullptr : &data->y;
  } else if (request.array() == "x" || request.array().empty()) {
    tensor = &data->x[0];
  } else if (request.array().size() > 1 && request.array()[0] == 'x') {
    int i = -1;
    if (absl::SimpleAtoi(request.array().substr(1), &i) && i >= 0 && i < int(data->x.size())) {
      tensor = &data->x[i];
    }
  }
  if (tensor == nullptr) {
    return FieldError("array", absl::StrCat("dataset \"", request.name(), "\" has no array \"",
                                            request.array(), "\" (it has x0..x", data->x.size() - 1,
                                            data->y.empty() ? "" : " and y", ")"));
  }
  const int64_t rows = tensor->shape()[0];
  if (request.offset() < 0 || request.offset() > rows) {
    return FieldError("offset", absl::StrCat("must be in [0, ", rows, "]"));
  }
  if (request.limit() < 0) return FieldError("limit", "must not be negative");
  const int64_t row_bytes = int64_t(tensor->byte_size()) / std::max<int64_t>(rows, 1);
  // Leave room for the message's framing under the server's message size limit.
  const int64_t max_rows = std::max<int64_t>(
      1, (runtime_.options->max_message_bytes - 1024) / std::max<int64_t>(1, row_bytes));
  const int64_t left = rows - request.offset();
  int64_t end = request.offset() +
                (request.limit() == 0 ? left : std::min(left, request.limit()));  // no overflow
  end = std::min(end, request.offset() + max_rows);
  return EncodeRows(*tensor, request.offset(), end);
}

absl::StatusOr<std::shared_ptr<const Dataset>> Session::ResolveData(
    const v1::DataRef& ref, absl::string_view path, absl::string_view default_split) {
  switch (ref.source_case()) {
    case v1::DataRef::kDataset: {
      std::string name = ref.dataset();
      {
        absl::MutexLock lock(&mu_);
        auto it = datasets_.find(name);
        if (it != datasets_.end()) return it->second.data;
      }
      if (name == "fashion_mnist") name = absl::StrCat(name, ":", default_split);
      absl::StatusOr<std::shared_ptr<const Dataset>> builtin = runtime_.builtins->Get(name);
      if (!builtin.ok()) return WithFieldPrefix(builtin.status(), absl::StrCat(path, ".dataset"));
      return builtin;
    }
    case v1::DataRef::kInline: {
      std::vector<Tensor> x;
      for (int i = 0; i < ref.inline_().x_size(); ++i) {
        KILN_ASSIGN_OR_RETURN(
            Tensor t, internal::DecodeRequestTensor(ref.inline_().x(i),
                                                    absl::StrCat(path, ".inline.x[", i, "]"),
                                                    runtime_.options->max_request_elements));
        x.push_back(std::move(t));
      }
      Tensor y;
      if (ref.inline_().has_y()) {
        KILN_ASSIGN_OR_RETURN(
            y, internal::DecodeRequestTensor(ref.inline_().y(), absl::StrCat(path, ".inline.y"),
                                             runtime_.options->max_request_elements));
      }
      KILN_ASSIGN_OR_RETURN(Dataset data,
                            MakeDataset(std::move(x), std::move(y), absl::StrCat(path, ".inline")));
      return std::make_shared<const Dataset>(std::move(data));
    }
    case v1::DataRef::SOURCE_NOT_SET:
      return FieldError(path, "give a dataset name or inline tensors");
  }
  return FieldError(path, "unknown data source");
}

}  // namespace kiln::server
