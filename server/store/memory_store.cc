#include "server/store/memory_store.h"

#include "absl/strings/str_cat.h"

namespace kiln::store {

absl::StatusOr<std::vector<NamedTensor>> MemoryStore::ReadTensors(const std::string&,
                                                                  const std::string& file) {
  return absl::NotFoundError(absl::StrCat("no tensor file \"", file, "\" (--ephemeral)"));
}

absl::Status MemoryStore::DeleteSession(const std::string& session_id) {
  absl::MutexLock lock(&mu_);
  for (auto it = checkpoints_.lower_bound(Key(session_id, "", 0));
       it != checkpoints_.end() && std::get<0>(it->first) == session_id;) {
    it = checkpoints_.erase(it);
  }
  return absl::OkStatus();
}

absl::Status MemoryStore::PutCheckpoint(const std::string& session_id,
                                        const CheckpointRecord& checkpoint,
                                        absl::Span<const NamedTensor> tensors, int keep) {
  const std::string& job = checkpoint.info().job_id();
  std::vector<NamedTensor> copies;
  for (const NamedTensor& t : tensors) copies.push_back(NamedTensor{t.name, t.tensor.Clone()});
  absl::MutexLock lock(&mu_);
  checkpoints_[Key(session_id, job, checkpoint.info().number())] = std::move(copies);
  // The job's checkpoints, oldest first; drop all but the newest `keep`.
  std::vector<std::map<Key, std::vector<NamedTensor>>::iterator> of_job;
  for (auto it = checkpoints_.lower_bound(Key(session_id, job, 0));
       it != checkpoints_.end() && std::get<0>(it->first) == session_id &&
       std::get<1>(it->first) == job;
       ++it) {
    of_job.push_back(it);
  }
  for (size_t i = 0; i + size_t(keep) < of_job.size(); ++i) checkpoints_.erase(of_job[i]);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<NamedTensor>> MemoryStore::ReadCheckpoint(const std::string& session_id,
                                                                     const std::string& job_id,
                                                                     int64_t number) {
  absl::MutexLock lock(&mu_);
  auto it = checkpoints_.find(Key(session_id, job_id, number));
  if (it == checkpoints_.end()) {
    return absl::NotFoundError(absl::StrCat("job ", job_id, " has no checkpoint ", number));
  }
  return it->second;  // tensors are shared handles; checkpoints are never written in place
}

absl::Status MemoryStore::DeleteCheckpoint(const std::string& session_id, const std::string& job_id,
                                           int64_t number) {
  absl::MutexLock lock(&mu_);
  checkpoints_.erase(Key(session_id, job_id, number));
  return absl::OkStatus();
}

}  // namespace kiln::store
