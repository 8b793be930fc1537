// MemoryStore: the SessionStore of an --ephemeral server. Nothing is written anywhere and
// nothing survives the process; checkpoints are kept in memory so that ResumeJob and
// RestoreCheckpoint work while it lives.
#ifndef KILN_SERVER_STORE_MEMORY_STORE_H_
#define KILN_SERVER_STORE_MEMORY_STORE_H_

#include <map>
#include <tuple>

#include "absl/synchronization/mutex.h"
#include "server/store/session_store.h"

namespace kiln::store {

class MemoryStore final : public SessionStore {
 public:
  bool durable() const override { return false; }
  std::string location() const override { return "--ephemeral"; }
  absl::StatusOr<std::vector<StoredSession>> LoadSessions() override {
    return std::vector<StoredSession>();
  }
  absl::StatusOr<std::vector<NamedTensor>> ReadTensors(const std::string&,
                                                       const std::string& file) override;
  absl::Status CreateSession(const SessionRecord&) override { return absl::OkStatus(); }
  absl::Status UpdateSession(const SessionRecord&) override { return absl::OkStatus(); }
  absl::Status DeleteSession(const std::string& session_id) override;
  absl::Status AppendOp(const SessionRecord&, const OpRecord&) override { return absl::OkStatus(); }
  absl::Status PutModel(const SessionRecord&, const std::string&, const OpRecord&, bool,
                        const ModelWeights*) override {
    return absl::OkStatus();
  }
  absl::Status DeleteModel(const std::string&, const std::string&, bool) override {
    return absl::OkStatus();
  }
  absl::Status PutCompile(const std::string&, const std::string&, const OpRecord&) override {
    return absl::OkStatus();
  }
  absl::Status PutWeights(const std::string&, absl::Span<const LayerTensors>, const std::string&,
                          const std::vector<NamedTensor>*) override {
    return absl::OkStatus();
  }
  absl::Status PutDataset(const std::string&, const DatasetRecord&,
                          const std::vector<NamedTensor>*) override {
    return absl::OkStatus();
  }
  absl::Status DeleteDataset(const std::string&, const std::string&) override {
    return absl::OkStatus();
  }
  absl::Status PutJob(const SessionRecord&, const JobRecord&) override { return absl::OkStatus(); }
  absl::Status AppendEvent(const std::string&, const v1::JobEvent&) override {
    return absl::OkStatus();
  }
  absl::Status PutCheckpoint(const std::string& session_id, const CheckpointRecord& checkpoint,
                             absl::Span<const NamedTensor> tensors, int keep) override;
  absl::StatusOr<std::vector<NamedTensor>> ReadCheckpoint(const std::string& session_id,
                                                          const std::string& job_id,
                                                          int64_t number) override;
  absl::Status DeleteCheckpoint(const std::string& session_id, const std::string& job_id,
                                int64_t number) override;

 private:
  using Key = std::tuple<std::string, std::string, int64_t>;  // session, job, number
  absl::Mutex mu_;
  std::map<Key, std::vector<NamedTensor>> checkpoints_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kiln::store

#endif  // KILN_SERVER_STORE_MEMORY_STORE_H_
