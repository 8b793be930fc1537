// Where session datasets come from: the built-in ones (read once and shared), files under the
// server's data root, and uploads assembled from chunks.
#ifndef KILN_SERVER_SERVICE_DATASETS_H_
#define KILN_SERVER_SERVICE_DATASETS_H_

#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/io/dataset.h"
#include "core/tensor/memory_account.h"
#include "kiln/v1/service.pb.h"
#include "server/service/data_root.h"
#include "server/store/tensor_file.h"

namespace kiln::server {

// Built-in datasets by name ("fashion_mnist:train", "fashion_mnist:test"), loaded on first use
// and shared read-only by every session.
class BuiltinDatasets {
 public:
  // NOT_FOUND for unknown names (listing the known ones) and missing packages.
  absl::StatusOr<std::shared_ptr<const Dataset>> Get(const std::string& name);
  static bool IsBuiltin(const std::string& name);

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<const Dataset>> loaded_ ABSL_GUARDED_BY(mu_);
};

// Reads a FileSource below `root` (which it may not leave), each file at most `max_bytes`,
// and applies `transform`.
absl::StatusOr<Dataset> LoadFiles(const DataRoot& root, const v1::FileSource& files,
                                  const v1::FeatureTransform& transform, int64_t max_bytes);

// A dataset's arrays as the store keeps them ("x0", "x1", ..., "y") and back; DATA_LOSS naming
// `what` for arrays that do not make a dataset.
std::vector<store::NamedTensor> DatasetArrays(const Dataset& data);
absl::StatusOr<Dataset> DatasetFromArrays(std::vector<store::NamedTensor> arrays,
                                          absl::string_view what);

// Applies a FeatureTransform (scale, per-sample reshape) to every x tensor.
absl::Status ApplyTransform(const v1::FeatureTransform& transform, Dataset& data,
                            absl::string_view path);

// An upload in progress: the header, then bytes per array, until Finish parses them.
class UploadBuilder {
 public:
  // INVALID_ARGUMENT for a malformed header (paths under "header"). The bytes received are
  // charged to `account` until the builder is destroyed.
  static absl::StatusOr<std::unique_ptr<UploadBuilder>> Create(
      const v1::UploadHeader& header, std::shared_ptr<MemoryAccount> account);
  ~UploadBuilder();

  // Appends a chunk: RESOURCE_EXHAUSTED when the account refuses its bytes. `offset`, when not
  // negative, must equal the bytes of that array received so far. Returns that count after
  // the chunk.
  absl::StatusOr<int64_t> Append(const v1::UploadChunk& chunk, int64_t offset);
  // Parses the arrays into a dataset. The bytes received stop counting first: while they are
  // parsed, the session briefly holds them twice.
  absl::StatusOr<Dataset> Finish();

  const v1::UploadHeader& header() const { return header_; }
  int64_t bytes() const { return total_; }

 private:
  UploadBuilder(v1::UploadHeader header, std::shared_ptr<MemoryAccount> account)
      : header_(std::move(header)), account_(std::move(account)) {}
  v1::UploadHeader header_;
  const std::shared_ptr<MemoryAccount> account_;
  absl::flat_hash_map<std::string, std::string> arrays_;  // "x0".., "y" -> bytes
  int64_t total_ = 0;
};

}  // namespace kiln::server

#endif  // KILN_SERVER_SERVICE_DATASETS_H_
