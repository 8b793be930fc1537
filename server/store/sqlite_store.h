// SqliteStore: the SessionStore of a state directory (StateDir). Metadata, specs (as the API's
// protobuf messages) and job event logs live in one SQLite database in WAL mode with
// synchronous=FULL; weights, optimizer state, dataset arrays and checkpoints live in tensor
// files that rows of the database name.
//
// A change that writes tensors writes its new files first (each atomically), then commits the
// rows that name them, then removes the files the rows named before: a crash at any point
// leaves the old state or the new one, plus files no row names, which Open removes.
//
// The database records its schema version; Open migrates an older schema in place and refuses
// a newer one. Sessions are keyed by their store key (StoreKey: unique across tenants, while a
// session id is unique only within its owner's sessions).
//
// It counts what each tenant keeps (DiskUsage) and refuses a tensor file that would take the
// tenant past its quota, before writing it.
#ifndef KILN_SERVER_STORE_SQLITE_STORE_H_
#define KILN_SERVER_STORE_SQLITE_STORE_H_

#include <memory>

#include "absl/synchronization/mutex.h"
#include "server/store/disk_usage.h"
#include "server/store/session_store.h"
#include "server/store/sqlite.h"
#include "server/store/state_dir.h"

namespace kiln::store {

class SqliteStore final : public SessionStore {
 public:
  // The schema this build writes.
  static constexpr int kSchemaVersion = 2;

  // Opens (creating or migrating) the database of `dir`, removes files no row names and
  // counts what each session keeps. DATA_LOSS when the database file is not a database;
  // FAILED_PRECONDITION for a schema newer than this build's. `tenant_disk_quota`: the bytes
  // a tenant may keep (0: no quota).
  static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(std::unique_ptr<StateDir> dir,
                                                           int64_t tenant_disk_quota = 0);

  // What each session and tenant keeps.
  const DiskUsage& usage() const { return usage_; }

  // What Open removed: temporary files and files no row named.
  int orphans_removed() const { return orphans_removed_; }

  bool durable() const override { return true; }
  std::string location() const override { return dir_->path(); }
  absl::StatusOr<std::vector<StoredSession>> LoadSessions() override;
  absl::StatusOr<std::vector<NamedTensor>> ReadTensors(const std::string& session_id,
                                                       const std::string& file) override;
  absl::Status CreateSession(const SessionRecord& session) override;
  absl::Status UpdateSession(const SessionRecord& session) override;
  absl::Status DeleteSession(const std::string& session_id) override;
  // DeleteSession's transaction.
  absl::Status DeleteSessionRows(const std::string& session_id) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status AppendOp(const SessionRecord& session, const OpRecord& op) override;
  absl::Status PutModel(const SessionRecord& session, const std::string& model, const OpRecord& op,
                        bool own_scope, const ModelWeights* weights) override;
  absl::Status DeleteModel(const std::string& session_id, const std::string& model,
                           bool own_scope) override;
  absl::Status PutCompile(const std::string& session_id, const std::string& model,
                          const OpRecord& op) override;
  absl::Status PutWeights(const std::string& session_id, absl::Span<const LayerTensors> layers,
                          const std::string& model,
                          const std::vector<NamedTensor>* optimizer) override;
  absl::Status PutDataset(const std::string& session_id, const DatasetRecord& dataset,
                          const std::vector<NamedTensor>* arrays) override;
  absl::Status DeleteDataset(const std::string& session_id, const std::string& name) override;
  absl::Status PutJob(const SessionRecord& session, const JobRecord& job) override;
  absl::Status AppendEvent(const std::string& session_id, const v1::JobEvent& event) override;
  absl::Status PutCheckpoint(const std::string& session_id, const CheckpointRecord& checkpoint,
                             absl::Span<const NamedTensor> tensors, int keep) override;
  absl::StatusOr<std::vector<NamedTensor>> ReadCheckpoint(const std::string& session_id,
                                                          const std::string& job_id,
                                                          int64_t number) override;
  absl::Status DeleteCheckpoint(const std::string& session_id, const std::string& job_id,
                                int64_t number) override;

 private:
  // The tensor files of `layers` and `optimizer` (may be null), in that order; none is left
  // behind on error.
  absl::StatusOr<std::vector<std::string>> WriteWeightFiles(
      const std::string& session_id, absl::Span<const LayerTensors> layers,
      const std::vector<NamedTensor>* optimizer);
  // Rows naming `files` (as WriteWeightFiles made them) in the open transaction; the files
  // they replace are added to `old_files`.
  absl::Status PutWeightRows(const std::string& session_id, absl::Span<const LayerTensors> layers,
                             const std::string& model, bool optimizer,
                             const std::vector<std::string>& files,
                             std::vector<std::string>& old_files)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  SqliteStore(std::unique_ptr<StateDir> dir, std::unique_ptr<SqliteDb> db,
              int64_t tenant_disk_quota)
      : dir_(std::move(dir)), usage_(tenant_disk_quota), db_(std::move(db)) {}

  absl::Status Migrate() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CollectOrphans() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Counts every session's files and rows into usage_.
  absl::Status CountUsage() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Begins a change's transaction: the row bytes it adds or removes are counted when Commit
  // succeeds.
  absl::StatusOr<SqliteTransaction> BeginChange() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string FilePath(const std::string& session_id, const std::string& file) const;
  // Writes `tensors` to a new file of the session; returns its name.
  absl::StatusOr<std::string> WriteFile(const std::string& session_id,
                                        absl::Span<const NamedTensor> tensors,
                                        absl::string_view kind);
  // Best effort, after a commit made them unreferenced (Open collects what is left).
  void RemoveFiles(const std::string& session_id, const std::vector<std::string>& files);
  // Commits `transaction`; on failure removes `new_files`, which no row names then. Failpoints:
  // KIND.commit (the commit fails) and KIND.after_commit (after it succeeded).
  absl::Status Commit(SqliteTransaction& transaction, absl::string_view kind,
                      const std::string& session_id, const std::vector<std::string>& new_files)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Updates the session's row; NOT_FOUND when it was deleted.
  absl::Status WriteSession(const SessionRecord& session) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // NOT_FOUND when the session has no row (it was deleted while the change was under way).
  absl::Status RequireSession(const std::string& session_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status InsertOp(const std::string& session_id, const std::string& model,
                        absl::string_view kind, const OpRecord& op)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Deletes rows selected by `where` (in which ?1 is the session id, ?2 `key` and ?3 `number`)
  // from `table`, adding the files they named to `files` when given; their records' bytes
  // count as freed when the change commits.
  absl::Status DeleteRows(absl::string_view table, absl::string_view where,
                          const std::string& session_id, const std::string& key,
                          std::vector<std::string>* files, int64_t number = 0)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status LoadSessionRows(StoredSession& session) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::unique_ptr<StateDir> dir_;
  DiskUsage usage_;
  absl::Mutex mu_;
  const std::unique_ptr<SqliteDb> db_ ABSL_PT_GUARDED_BY(mu_);
  // Record bytes the open change adds (negative: frees).
  int64_t pending_row_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int orphans_removed_ = 0;
};

}  // namespace kiln::store

#endif  // KILN_SERVER_STORE_SQLITE_STORE_H_
