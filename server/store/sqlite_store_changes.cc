// SqliteStore's changes: every mutating call of the SessionStore interface, each one
// transaction (tensor files written before it, replaced files removed after it).
#include <filesystem>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "core/base/status.h"
#include "server/store/failpoint.h"
#include "server/store/sqlite_store.h"

namespace kiln::store {

absl::Status SqliteStore::CreateSession(const SessionRecord& session) {
  absl::MutexLock lock(&mu_);
  KILN_ASSIGN_OR_RETURN(SqliteStatement put,
                        db_->Prepare("INSERT INTO sessions(id, record) VALUES(?1, ?2)"));
  const std::string record = session.SerializeAsString();
  KILN_RETURN_IF_ERROR(put.BindText(1, StoreKey(session)).BindBlob(2, record).Run());
  usage_.AddSession(StoreKey(session), session.owner());
  usage_.Add(StoreKey(session), record.size());
  return Failpoint("session.after_commit");
}

absl::Status SqliteStore::UpdateSession(const SessionRecord& session) {
  absl::MutexLock lock(&mu_);
  return WriteSession(session);
}

absl::Status SqliteStore::DeleteSession(const std::string& session_id) {
  absl::Status deleted = DeleteSessionRows(session_id);
  // A full disk cannot take the deletion's own writes: the reserve makes room for them, and
  // the session's files, once gone, give more back.
  if (!deleted.ok() && dir_->ReleaseReserve()) deleted = DeleteSessionRows(session_id);
  if (!deleted.ok()) return deleted;
  std::error_code error;
  std::filesystem::remove_all(dir_->SessionDir(session_id), error);
  usage_.RemoveSession(session_id);
  dir_->KeepReserve();
  return absl::OkStatus();
}

absl::Status SqliteStore::DeleteSessionRows(const std::string& session_id) {
  absl::MutexLock lock(&mu_);
  KILN_ASSIGN_OR_RETURN(SqliteTransaction transaction, BeginChange());
  KILN_RETURN_IF_ERROR(DeleteRows("events", "job_id IN (SELECT id FROM jobs WHERE session_id=?1)",
                                  session_id, "", nullptr));
  for (const char* table : {"ops", "weights", "optimizers", "datasets", "jobs", "checkpoints"}) {
    KILN_RETURN_IF_ERROR(DeleteRows(table, "session_id=?1", session_id, "", nullptr));
  }
  KILN_RETURN_IF_ERROR(DeleteRows("sessions", "id=?1", session_id, "", nullptr));
  KILN_RETURN_IF_ERROR(Commit(transaction, "delete_session", session_id, {}));
  // Free the pages the rows held, so deleting a session gives its disk space back.
  db_->Exec("PRAGMA incremental_vacuum").IgnoreError();
  return absl::OkStatus();
}

absl::Status SqliteStore::AppendOp(const SessionRecord& session, const OpRecord& op) {
  absl::MutexLock lock(&mu_);
  KILN_ASSIGN_OR_RETURN(SqliteTransaction transaction, BeginChange());
  KILN_RETURN_IF_ERROR(WriteSession(session));
  KILN_RETURN_IF_ERROR(InsertOp(StoreKey(session), "", "graph", op));
  return Commit(transaction, "op", StoreKey(session), {});
}

absl::Status SqliteStore::PutModel(const SessionRecord& session, const std::string& model,
                                   const OpRecord& op, bool own_scope,
                                   const ModelWeights* weights) {
  std::vector<std::string> new_files;
  absl::Cleanup remove_new = [&] { RemoveFiles(StoreKey(session), new_files); };
  const std::vector<NamedTensor>* optimizer =
      weights != nullptr && !weights->optimizer.empty() ? &weights->optimizer : nullptr;
  if (weights != nullptr) {
    KILN_ASSIGN_OR_RETURN(new_files,
                          WriteWeightFiles(StoreKey(session), weights->layers, optimizer));
  }
  std::vector<std::string> old_files;
  {
    absl::MutexLock lock(&mu_);
    KILN_ASSIGN_OR_RETURN(SqliteTransaction transaction, BeginChange());
    KILN_RETURN_IF_ERROR(WriteSession(session));
    KILN_RETURN_IF_ERROR(
        DeleteRows("ops", "session_id=?1 AND model=?2", StoreKey(session), model, nullptr));
    KILN_RETURN_IF_ERROR(DeleteRows("optimizers", "session_id=?1 AND model=?2", StoreKey(session),
                                    model, &old_files));
    if (own_scope) {
      KILN_RETURN_IF_ERROR(DeleteRows("weights", "session_id=?1 AND scope=?2", StoreKey(session),
                                      model, &old_files));
    }
    KILN_RETURN_IF_ERROR(InsertOp(StoreKey(session), model, "model", op));
    if (weights != nullptr) {
      KILN_RETURN_IF_ERROR(PutWeightRows(StoreKey(session), weights->layers, model,
                                         optimizer != nullptr, new_files, old_files));
    }
    std::move(remove_new).Cancel();
    KILN_RETURN_IF_ERROR(Commit(transaction, "model", StoreKey(session), new_files));
  }
  RemoveFiles(StoreKey(session), old_files);
  return absl::OkStatus();
}

absl::Status SqliteStore::DeleteModel(const std::string& session_id, const std::string& model,
                                      bool own_scope) {
  std::vector<std::string> old_files;
  {
    absl::MutexLock lock(&mu_);
    KILN_ASSIGN_OR_RETURN(SqliteTransaction transaction, BeginChange());
    KILN_RETURN_IF_ERROR(RequireSession(session_id));
    KILN_RETURN_IF_ERROR(
        DeleteRows("ops", "session_id=?1 AND model=?2", session_id, model, nullptr));
    KILN_RETURN_IF_ERROR(
        DeleteRows("optimizers", "session_id=?1 AND model=?2", session_id, model, &old_files));
    if (own_scope) {
      KILN_RETURN_IF_ERROR(
          DeleteRows("weights", "session_id=?1 AND scope=?2", session_id, model, &old_files));
    }
    KILN_RETURN_IF_ERROR(Commit(transaction, "delete_model", session_id, {}));
  }
  RemoveFiles(session_id, old_files);
  return absl::OkStatus();
}

absl::Status SqliteStore::PutCompile(const std::string& session_id, const std::string& model,
                                     const OpRecord& op) {
  std::vector<std::string> old_files;
  {
    absl::MutexLock lock(&mu_);
    KILN_ASSIGN_OR_RETURN(SqliteTransaction transaction, BeginChange());
    KILN_RETURN_IF_ERROR(RequireSession(session_id));
    KILN_RETURN_IF_ERROR(DeleteRows("ops", "session_id=?1 AND model=?2 AND kind='compile'",
                                    session_id, model, nullptr));
    KILN_RETURN_IF_ERROR(
        DeleteRows("optimizers", "session_id=?1 AND model=?2", session_id, model, &old_files));
    KILN_RETURN_IF_ERROR(InsertOp(session_id, model, "compile", op));
    KILN_RETURN_IF_ERROR(Commit(transaction, "compile", session_id, {}));
  }
  RemoveFiles(session_id, old_files);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> SqliteStore::WriteWeightFiles(
    const std::string& session_id, absl::Span<const LayerTensors> layers,
    const std::vector<NamedTensor>* optimizer) {
  std::vector<std::string> files;
  absl::Cleanup remove = [&] { RemoveFiles(session_id, files); };
  for (const LayerTensors& layer : layers) {
    KILN_ASSIGN_OR_RETURN(std::string file, WriteFile(session_id, layer.tensors, "weights"));
    files.push_back(std::move(file));
  }
  if (optimizer != nullptr) {
    KILN_ASSIGN_OR_RETURN(std::string file, WriteFile(session_id, *optimizer, "weights"));
    files.push_back(std::move(file));
  }
  std::move(remove).Cancel();
  return files;
}

absl::Status SqliteStore::PutWeightRows(const std::string& session_id,
                                        absl::Span<const LayerTensors> layers,
                                        const std::string& model, bool optimizer,
                                        const std::vector<std::string>& files,
                                        std::vector<std::string>& old_files) {
  for (size_t i = 0; i < layers.size(); ++i) {
    KILN_ASSIGN_OR_RETURN(
        SqliteStatement old,
        db_->Prepare("SELECT file FROM weights WHERE session_id=?1 AND scope=?2 AND layer=?3"));
    old.BindText(1, session_id).BindText(2, layers[i].scope).BindText(3, layers[i].layer);
    KILN_ASSIGN_OR_RETURN(bool found, old.Step());
    if (found) old_files.push_back(old.Text(0));
    KILN_ASSIGN_OR_RETURN(SqliteStatement put,
                          db_->Prepare("INSERT OR REPLACE INTO weights(session_id, scope, "
                                       "layer, file) VALUES(?1, ?2, ?3, ?4)"));
    KILN_RETURN_IF_ERROR(put.BindText(1, session_id)
                             .BindText(2, layers[i].scope)
                             .BindText(3, layers[i].layer)
                             .BindText(4, files[i])
                             .Run());
  }
  if (optimizer) {
    KILN_RETURN_IF_ERROR(
        DeleteRows("optimizers", "session_id=?1 AND model=?2", session_id, model, &old_files));
    KILN_ASSIGN_OR_RETURN(
        SqliteStatement put,
        db_->Prepare("INSERT INTO optimizers(session_id, model, file) VALUES(?1, ?2, ?3)"));
    KILN_RETURN_IF_ERROR(
        put.BindText(1, session_id).BindText(2, model).BindText(3, files.back()).Run());
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::PutWeights(const std::string& session_id,
                                     absl::Span<const LayerTensors> layers,
                                     const std::string& model,
                                     const std::vector<NamedTensor>* optimizer) {
  // The files first, outside the lock: they may be large, and other sessions go on meanwhile.
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> new_files,
                        WriteWeightFiles(session_id, layers, optimizer));
  absl::Cleanup remove_new = [&] { RemoveFiles(session_id, new_files); };
  std::vector<std::string> old_files;
  {
    absl::MutexLock lock(&mu_);
    KILN_ASSIGN_OR_RETURN(SqliteTransaction transaction, BeginChange());
    KILN_RETURN_IF_ERROR(RequireSession(session_id));
    KILN_RETURN_IF_ERROR(
        PutWeightRows(session_id, layers, model, optimizer != nullptr, new_files, old_files));
    std::move(remove_new).Cancel();
    KILN_RETURN_IF_ERROR(Commit(transaction, "weights", session_id, new_files));
  }
  RemoveFiles(session_id, old_files);
  return absl::OkStatus();
}

absl::Status SqliteStore::PutDataset(const std::string& session_id, const DatasetRecord& dataset,
                                     const std::vector<NamedTensor>* arrays) {
  std::string file;
  if (arrays != nullptr) {
    KILN_ASSIGN_OR_RETURN(file, WriteFile(session_id, *arrays, "dataset"));
  }
  absl::MutexLock lock(&mu_);
  KILN_ASSIGN_OR_RETURN(SqliteTransaction transaction, BeginChange());
  KILN_ASSIGN_OR_RETURN(
      SqliteStatement put,
      db_->Prepare("INSERT INTO datasets(session_id, name, record, file) VALUES(?1, ?2, ?3, ?4)"));
  const std::string record = dataset.SerializeAsString();
  absl::Status inserted = RequireSession(session_id);
  if (inserted.ok())
    inserted = put.BindText(1, session_id)
                   .BindText(2, dataset.info().name())
                   .BindBlob(3, record)
                   .BindText(4, file)
                   .Run();
  if (!inserted.ok()) {
    RemoveFiles(session_id, {file});
    return inserted;
  }
  pending_row_bytes_ += record.size();
  return Commit(transaction, "dataset", session_id, {file});
}

absl::Status SqliteStore::DeleteDataset(const std::string& session_id, const std::string& name) {
  std::vector<std::string> old_files;
  {
    absl::MutexLock lock(&mu_);
    KILN_ASSIGN_OR_RETURN(SqliteTransaction transaction, BeginChange());
    KILN_RETURN_IF_ERROR(
        DeleteRows("datasets", "session_id=?1 AND name=?2", session_id, name, &old_files));
    KILN_RETURN_IF_ERROR(Commit(transaction, "delete_dataset", session_id, {}));
  }
  RemoveFiles(session_id, old_files);
  return absl::OkStatus();
}

absl::Status SqliteStore::PutJob(const SessionRecord& session, const JobRecord& job) {
  absl::MutexLock lock(&mu_);
  KILN_ASSIGN_OR_RETURN(SqliteTransaction transaction, BeginChange());
  KILN_RETURN_IF_ERROR(WriteSession(session));
  // The job's earlier record (a resumed job's), counted out.
  KILN_RETURN_IF_ERROR(DeleteRows("jobs", "id=?2", StoreKey(session), job.plan().id(), nullptr));
  KILN_ASSIGN_OR_RETURN(
      SqliteStatement put,
      db_->Prepare("INSERT INTO jobs(id, session_id, record) VALUES(?1, ?2, ?3)"));
  const std::string record = job.SerializeAsString();
  KILN_RETURN_IF_ERROR(
      put.BindText(1, job.plan().id()).BindText(2, StoreKey(session)).BindBlob(3, record).Run());
  pending_row_bytes_ += record.size();
  return Commit(transaction, "job", StoreKey(session), {});
}

absl::Status SqliteStore::AppendEvent(const std::string& session_id, const v1::JobEvent& event) {
  absl::MutexLock lock(&mu_);
  KILN_RETURN_IF_ERROR(Failpoint("event.commit"));
  KILN_RETURN_IF_ERROR(RequireSession(session_id));
  KILN_ASSIGN_OR_RETURN(SqliteStatement put,
                        db_->Prepare("INSERT INTO events(job_id, seq, event) VALUES(?1, ?2, ?3)"));
  const std::string record = event.SerializeAsString();
  KILN_RETURN_IF_ERROR(
      put.BindText(1, event.job_id()).Bind(2, event.sequence()).BindBlob(3, record).Run());
  usage_.Add(session_id, record.size());
  return Failpoint("event.after_commit");
}

absl::Status SqliteStore::PutCheckpoint(const std::string& session_id,
                                        const CheckpointRecord& checkpoint,
                                        absl::Span<const NamedTensor> tensors, int keep) {
  KILN_ASSIGN_OR_RETURN(std::string file, WriteFile(session_id, tensors, "checkpoint"));
  std::vector<std::string> old_files;
  {
    absl::MutexLock lock(&mu_);
    KILN_ASSIGN_OR_RETURN(SqliteTransaction transaction, BeginChange());
    KILN_ASSIGN_OR_RETURN(SqliteStatement put,
                          db_->Prepare("INSERT INTO checkpoints(job_id, number, session_id, "
                                       "record, file) VALUES(?1, ?2, ?3, ?4, ?5)"));
    const std::string record = checkpoint.SerializeAsString();
    absl::Status inserted = RequireSession(session_id);
    if (inserted.ok())
      inserted = put.BindText(1, checkpoint.info().job_id())
                     .Bind(2, checkpoint.info().number())
                     .BindText(3, session_id)
                     .BindBlob(4, record)
                     .BindText(5, file)
                     .Run();
    if (!inserted.ok()) {
      RemoveFiles(session_id, {file});
      return inserted;
    }
    pending_row_bytes_ += record.size();
    // All but the newest `keep`.
    KILN_ASSIGN_OR_RETURN(SqliteStatement oldest,
                          db_->Prepare("SELECT number FROM checkpoints WHERE job_id=?1 ORDER BY "
                                       "number DESC LIMIT -1 OFFSET ?2"));
    oldest.BindText(1, checkpoint.info().job_id()).Bind(2, keep);
    std::vector<int64_t> drop;
    for (;;) {
      KILN_ASSIGN_OR_RETURN(bool row, oldest.Step());
      if (!row) break;
      drop.push_back(oldest.Int64(0));
    }
    for (int64_t number : drop) {
      KILN_RETURN_IF_ERROR(DeleteRows("checkpoints", "job_id=?2 AND number=?3", session_id,
                                      checkpoint.info().job_id(), &old_files, number));
    }
    KILN_RETURN_IF_ERROR(Commit(transaction, "checkpoint", session_id, {file}));
  }
  RemoveFiles(session_id, old_files);
  return absl::OkStatus();
}

absl::Status SqliteStore::DeleteCheckpoint(const std::string& session_id, const std::string& job_id,
                                           int64_t number) {
  std::vector<std::string> old_files;
  {
    absl::MutexLock lock(&mu_);
    KILN_ASSIGN_OR_RETURN(SqliteTransaction transaction, BeginChange());
    KILN_RETURN_IF_ERROR(DeleteRows("checkpoints", "job_id=?2 AND number=?3", session_id, job_id,
                                    &old_files, number));
    KILN_RETURN_IF_ERROR(Commit(transaction, "delete_checkpoint", session_id, {}));
  }
  RemoveFiles(session_id, old_files);
  return absl::OkStatus();
}

}  // namespace kiln::store
