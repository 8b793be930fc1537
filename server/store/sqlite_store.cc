#include "server/store/sqlite_store.h"

#include <unistd.h>

#include <filesystem>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/base/random_id.h"
#include "core/base/status.h"
#include "server/store/failpoint.h"
#include "server/store/io_error.h"

namespace kiln::store {
namespace {

// Migrations[i] takes the schema from version i to i + 1.
constexpr const char* kMigrations[] = {
    R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sessions(id TEXT PRIMARY KEY, record BLOB NOT NULL);
CREATE TABLE ops(id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL,
                 model TEXT NOT NULL, kind TEXT NOT NULL, record BLOB NOT NULL);
CREATE INDEX ops_by_session ON ops(session_id, id);
CREATE TABLE weights(session_id TEXT NOT NULL, scope TEXT NOT NULL, layer TEXT NOT NULL,
                     file TEXT NOT NULL, PRIMARY KEY(session_id, scope, layer));
CREATE TABLE optimizers(session_id TEXT NOT NULL, model TEXT NOT NULL, file TEXT NOT NULL,
                        PRIMARY KEY(session_id, model));
CREATE TABLE datasets(session_id TEXT NOT NULL, name TEXT NOT NULL, record BLOB NOT NULL,
                      file TEXT NOT NULL, PRIMARY KEY(session_id, name));
CREATE TABLE jobs(id TEXT PRIMARY KEY, session_id TEXT NOT NULL, record BLOB NOT NULL);
CREATE INDEX jobs_by_session ON jobs(session_id);
CREATE TABLE events(job_id TEXT NOT NULL, seq INTEGER NOT NULL, event BLOB NOT NULL,
                    PRIMARY KEY(job_id, seq)) WITHOUT ROWID;
CREATE TABLE checkpoints(job_id TEXT NOT NULL, number INTEGER NOT NULL, session_id TEXT NOT NULL,
                         record BLOB NOT NULL, file TEXT NOT NULL,
                         PRIMARY KEY(job_id, number));
CREATE INDEX checkpoints_by_session ON checkpoints(session_id);
)sql",
    // 2: sessions.id and every session_id column hold the session's store key
    // (SessionRecord.store_key), so that session ids are scoped by tenant. A version 1 row's
    // key is its session id, which was unique across tenants: no row changes, but a version 1
    // kiln-server would misread a version 2 database.
    "SELECT 1;",
};
static_assert(std::size(kMigrations) == SqliteStore::kSchemaVersion);

// The tables with a file column, which the orphan collector and DeleteSession read.
constexpr const char* kFileTables[] = {"weights", "optimizers", "datasets", "checkpoints"};

// A table's columns that DeleteRows reads: the file a row names and its record's length,
// which count towards what the session keeps.
struct RowColumns {
  const char* file;
  const char* record_length;
};
RowColumns ColumnsOf(absl::string_view table) {
  if (table == "weights" || table == "optimizers") return {"file", "0"};
  if (table == "datasets" || table == "checkpoints") return {"file", "length(record)"};
  if (table == "events") return {"''", "length(event)"};
  return {"''", "length(record)"};  // sessions, ops, jobs
}

// The size of a file, 0 when it cannot be read.
int64_t FileBytes(const std::string& path) {
  std::error_code error;
  const uintmax_t size = std::filesystem::file_size(path, error);
  return error ? 0 : static_cast<int64_t>(size);
}

absl::Status SessionGone(const std::string& session_id) {
  return absl::NotFoundError(absl::StrCat("session \"", session_id, "\" was deleted"));
}

template <typename Message>
absl::Status Parse(const std::string& bytes, Message& message, absl::string_view what) {
  if (!message.ParseFromString(bytes)) return Damaged(what, "its row cannot be read");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(std::unique_ptr<StateDir> dir,
                                                               int64_t tenant_disk_quota) {
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<SqliteDb> db, SqliteDb::Open(dir->database()));
  std::unique_ptr<SqliteStore> store(
      new SqliteStore(std::move(dir), std::move(db), tenant_disk_quota));
  absl::MutexLock lock(&store->mu_);
  // auto_vacuum only takes effect before the first table exists; WAL with FULL sync makes
  // every commit durable before it returns.
  KILN_RETURN_IF_ERROR(store->db_->Exec(
      "PRAGMA auto_vacuum=INCREMENTAL; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"));
  KILN_RETURN_IF_ERROR(store->Migrate());
  KILN_RETURN_IF_ERROR(store->CollectOrphans());
  KILN_RETURN_IF_ERROR(store->CountUsage());
  return store;
}

absl::StatusOr<SqliteTransaction> SqliteStore::BeginChange() {
  pending_row_bytes_ = 0;
  return SqliteTransaction::Begin(*db_);
}

absl::Status SqliteStore::CountUsage() {
  {
    KILN_ASSIGN_OR_RETURN(SqliteStatement query,
                          db_->Prepare("SELECT id, record, length(record) FROM sessions"));
    for (;;) {
      KILN_ASSIGN_OR_RETURN(bool row, query.Step());
      if (!row) break;
      SessionRecord record;
      record.ParseFromString(query.Blob(1));  // a damaged one counts for no tenant's quota
      usage_.AddSession(query.Text(0), record.owner());
      usage_.Add(query.Text(0), query.Int64(2));
    }
  }
  const char* const kRowBytes[] = {
      "SELECT session_id, SUM(length(record)) FROM ops GROUP BY session_id",
      "SELECT session_id, SUM(length(record)) FROM datasets GROUP BY session_id",
      "SELECT session_id, SUM(length(record)) FROM jobs GROUP BY session_id",
      "SELECT session_id, SUM(length(record)) FROM checkpoints GROUP BY session_id",
      "SELECT jobs.session_id, SUM(length(events.event)) FROM events JOIN jobs ON "
      "events.job_id = jobs.id GROUP BY jobs.session_id",
  };
  for (const char* sql : kRowBytes) {
    KILN_ASSIGN_OR_RETURN(SqliteStatement query, db_->Prepare(sql));
    for (;;) {
      KILN_ASSIGN_OR_RETURN(bool row, query.Step());
      if (!row) break;
      usage_.Add(query.Text(0), query.Int64(1));
    }
  }
  std::error_code error;
  for (const auto& session_dir : std::filesystem::directory_iterator(dir_->tensors(), error)) {
    const std::string session = session_dir.path().filename().string();
    for (const auto& file : std::filesystem::directory_iterator(session_dir.path(), error)) {
      usage_.Add(session, FileBytes(file.path().string()));
    }
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::Migrate() {
  int version = 0;
  {
    KILN_ASSIGN_OR_RETURN(
        SqliteStatement has_meta,
        db_->Prepare("SELECT count(*) FROM sqlite_master WHERE type='table' AND name='meta'"));
    KILN_ASSIGN_OR_RETURN(bool row, has_meta.Step());
    if (row && has_meta.Int64(0) > 0) {
      KILN_ASSIGN_OR_RETURN(SqliteStatement get,
                            db_->Prepare("SELECT value FROM meta WHERE key='schema_version'"));
      KILN_ASSIGN_OR_RETURN(bool found, get.Step());
      if (!found || !absl::SimpleAtoi(get.Text(0), &version)) {
        return absl::DataLossError(
            absl::StrCat(db_->path(), " has no readable schema version; it is damaged"));
      }
    }
  }
  if (version > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        db_->path(), " has schema version ", version, ", newer than this kiln-server's (",
        kSchemaVersion, "): run the kiln-server that wrote it, or another --state_dir"));
  }
  for (; version < kSchemaVersion; ++version) {
    KILN_ASSIGN_OR_RETURN(SqliteTransaction transaction, BeginChange());
    KILN_RETURN_IF_ERROR(db_->Exec(kMigrations[version]));
    KILN_ASSIGN_OR_RETURN(
        SqliteStatement set,
        db_->Prepare("INSERT OR REPLACE INTO meta(key, value) VALUES('schema_version', ?1)"));
    KILN_RETURN_IF_ERROR(set.BindText(1, absl::StrCat(version + 1)).Run());
    KILN_RETURN_IF_ERROR(transaction.Commit());
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::CollectOrphans() {
  // Rows of sessions that are gone (a change racing the session's deletion, which the
  // transactions refuse; kept as a second line of defence).
  KILN_RETURN_IF_ERROR(
      db_->Exec("DELETE FROM events WHERE job_id NOT IN (SELECT id FROM jobs WHERE session_id IN "
                "(SELECT id FROM sessions))"));
  for (const char* table : {"ops", "weights", "optimizers", "datasets", "jobs", "checkpoints"}) {
    KILN_RETURN_IF_ERROR(db_->Exec(
        absl::StrCat("DELETE FROM ", table, " WHERE session_id NOT IN (SELECT id FROM sessions)")));
  }
  absl::flat_hash_set<std::string> sessions, files;
  {
    KILN_ASSIGN_OR_RETURN(SqliteStatement query, db_->Prepare("SELECT id FROM sessions"));
    for (;;) {
      KILN_ASSIGN_OR_RETURN(bool row, query.Step());
      if (!row) break;
      sessions.insert(query.Text(0));
    }
  }
  for (const char* table : kFileTables) {
    KILN_ASSIGN_OR_RETURN(
        SqliteStatement query,
        db_->Prepare(absl::StrCat("SELECT session_id, file FROM ", table, " WHERE file != ''")));
    for (;;) {
      KILN_ASSIGN_OR_RETURN(bool row, query.Step());
      if (!row) break;
      files.insert(FilePath(query.Text(0), query.Text(1)));
    }
  }
  std::error_code error;
  for (const auto& session_dir : std::filesystem::directory_iterator(dir_->tensors(), error)) {
    const std::string session = session_dir.path().filename().string();
    if (!sessions.contains(session)) {
      orphans_removed_ += int(std::filesystem::remove_all(session_dir.path(), error));
      continue;
    }
    for (const auto& file : std::filesystem::directory_iterator(session_dir.path(), error)) {
      if (!files.contains(file.path().string())) {
        std::filesystem::remove(file.path(), error);
        ++orphans_removed_;
      }
    }
  }
  return absl::OkStatus();
}

std::string SqliteStore::FilePath(const std::string& session_id, const std::string& file) const {
  return absl::StrCat(dir_->SessionDir(session_id), "/", file);
}

absl::StatusOr<std::string> SqliteStore::WriteFile(const std::string& session_id,
                                                   absl::Span<const NamedTensor> tensors,
                                                   absl::string_view kind) {
  KILN_RETURN_IF_ERROR(usage_.Check(session_id, TensorFileSize(tensors)));
  std::error_code error;
  std::filesystem::create_directories(dir_->SessionDir(session_id), error);
  if (error) {
    return IoError(error.value(), absl::StrCat("creating ", dir_->SessionDir(session_id)));
  }
  const std::string name = absl::StrCat(kind, "-", RandomHex(12), ".kt");
  const std::string path = FilePath(session_id, name);
  KILN_RETURN_IF_ERROR(WriteTensorFile(path, tensors, kind));
  usage_.Add(session_id, FileBytes(path));
  return name;
}

void SqliteStore::RemoveFiles(const std::string& session_id,
                              const std::vector<std::string>& files) {
  for (const std::string& file : files) {
    const std::string path = FilePath(session_id, file);
    const int64_t bytes = FileBytes(path);
    if (::unlink(path.c_str()) == 0) usage_.Add(session_id, -bytes);
  }
}

absl::Status SqliteStore::Commit(SqliteTransaction& transaction, absl::string_view kind,
                                 const std::string& session_id,
                                 const std::vector<std::string>& new_files) {
  absl::Status status = Failpoint(absl::StrCat(kind, ".commit"));
  if (status.ok()) status = transaction.Commit();
  if (!status.ok()) {
    RemoveFiles(session_id, new_files);
    return status;
  }
  usage_.Add(session_id, pending_row_bytes_);
  pending_row_bytes_ = 0;
  return Failpoint(absl::StrCat(kind, ".after_commit"));
}

absl::Status SqliteStore::WriteSession(const SessionRecord& session) {
  KILN_ASSIGN_OR_RETURN(SqliteStatement put,
                        db_->Prepare("UPDATE sessions SET record=?2 WHERE id=?1"));
  KILN_RETURN_IF_ERROR(
      put.BindText(1, StoreKey(session)).BindBlob(2, session.SerializeAsString()).Run());
  if (db_->changes() == 0) return SessionGone(StoreKey(session));
  return absl::OkStatus();
}

absl::Status SqliteStore::RequireSession(const std::string& session_id) {
  KILN_ASSIGN_OR_RETURN(SqliteStatement query, db_->Prepare("SELECT 1 FROM sessions WHERE id=?1"));
  KILN_ASSIGN_OR_RETURN(bool found, query.BindText(1, session_id).Step());
  if (!found) return SessionGone(session_id);
  return absl::OkStatus();
}

absl::Status SqliteStore::InsertOp(const std::string& session_id, const std::string& model,
                                   absl::string_view kind, const OpRecord& op) {
  KILN_ASSIGN_OR_RETURN(
      SqliteStatement insert,
      db_->Prepare("INSERT INTO ops(session_id, model, kind, record) VALUES(?1, ?2, ?3, ?4)"));
  const std::string record = op.SerializeAsString();
  KILN_RETURN_IF_ERROR(insert.BindText(1, session_id)
                           .BindText(2, model)
                           .BindText(3, kind)
                           .BindBlob(4, record)
                           .Run());
  pending_row_bytes_ += record.size();
  return absl::OkStatus();
}

absl::Status SqliteStore::DeleteRows(absl::string_view table, absl::string_view where,
                                     const std::string& session_id, const std::string& key,
                                     std::vector<std::string>* files, int64_t number) {
  const RowColumns columns = ColumnsOf(table);
  KILN_ASSIGN_OR_RETURN(
      SqliteStatement select,
      db_->Prepare(absl::StrCat("SELECT ", columns.file, ", ", columns.record_length, " FROM ",
                                table, " WHERE ", where)));
  select.BindText(1, session_id).BindText(2, key).Bind(3, number);
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool row, select.Step());
    if (!row) break;
    if (files != nullptr && !select.Text(0).empty()) files->push_back(select.Text(0));
    pending_row_bytes_ -= select.Int64(1);
  }
  KILN_ASSIGN_OR_RETURN(SqliteStatement remove,
                        db_->Prepare(absl::StrCat("DELETE FROM ", table, " WHERE ", where)));
  return remove.BindText(1, session_id).BindText(2, key).Bind(3, number).Run();
}

absl::Status SqliteStore::LoadSessionRows(StoredSession& s) {
  const std::string& id = StoreKey(s.record);
  const std::string what = absl::StrCat("session ", s.record.id());
  auto keep_first = [&s](absl::Status status) {
    if (s.damage.ok()) s.damage = std::move(status);
  };
  {
    KILN_ASSIGN_OR_RETURN(SqliteStatement q,
                          db_->Prepare("SELECT record FROM ops WHERE session_id=?1 ORDER BY id"));
    q.BindText(1, id);
    for (;;) {
      KILN_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      OpRecord op;
      keep_first(Parse(q.Blob(0), op, absl::StrCat(what, ": a change to its graph")));
      s.ops.push_back(std::move(op));
    }
  }
  {
    KILN_ASSIGN_OR_RETURN(
        SqliteStatement q,
        db_->Prepare("SELECT scope, layer, file FROM weights WHERE session_id=?1"));
    q.BindText(1, id);
    for (;;) {
      KILN_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      s.weights.push_back({q.Text(0), q.Text(1), q.Text(2)});
    }
  }
  {
    KILN_ASSIGN_OR_RETURN(SqliteStatement q,
                          db_->Prepare("SELECT model, file FROM optimizers WHERE session_id=?1"));
    q.BindText(1, id);
    for (;;) {
      KILN_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      s.optimizers.push_back({q.Text(0), q.Text(1)});
    }
  }
  {
    KILN_ASSIGN_OR_RETURN(
        SqliteStatement q,
        db_->Prepare("SELECT name, record, file FROM datasets WHERE session_id=?1 ORDER BY rowid"));
    q.BindText(1, id);
    for (;;) {
      KILN_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      StoredSession::Dataset d;
      keep_first(Parse(q.Blob(1), d.record, absl::StrCat(what, ": dataset \"", q.Text(0), "\"")));
      d.file = q.Text(2);
      s.datasets.push_back(std::move(d));
    }
  }
  KILN_ASSIGN_OR_RETURN(
      SqliteStatement jobs,
      db_->Prepare("SELECT id, record FROM jobs WHERE session_id=?1 ORDER BY rowid"));
  jobs.BindText(1, id);
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool row, jobs.Step());
    if (!row) break;
    StoredSession::Job job;
    const std::string job_id = jobs.Text(0);
    const std::string job_what = absl::StrCat(what, ": job ", job_id);
    keep_first(Parse(jobs.Blob(1), job.record, job_what));
    KILN_ASSIGN_OR_RETURN(
        SqliteStatement events,
        db_->Prepare("SELECT seq, event FROM events WHERE job_id=?1 ORDER BY seq"));
    events.BindText(1, job_id);
    for (;;) {
      KILN_ASSIGN_OR_RETURN(bool event_row, events.Step());
      if (!event_row) break;
      v1::JobEvent event;
      keep_first(Parse(events.Blob(1), event, absl::StrCat(job_what, ": event ", events.Int64(0))));
      job.events.push_back(std::move(event));
    }
    KILN_ASSIGN_OR_RETURN(
        SqliteStatement checkpoints,
        db_->Prepare("SELECT number, record FROM checkpoints WHERE job_id=?1 ORDER BY number"));
    checkpoints.BindText(1, job_id);
    for (;;) {
      KILN_ASSIGN_OR_RETURN(bool checkpoint_row, checkpoints.Step());
      if (!checkpoint_row) break;
      CheckpointRecord checkpoint;
      keep_first(Parse(checkpoints.Blob(1), checkpoint,
                       absl::StrCat(job_what, ": checkpoint ", checkpoints.Int64(0))));
      job.checkpoints.push_back(std::move(checkpoint));
    }
    s.jobs.push_back(std::move(job));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<StoredSession>> SqliteStore::LoadSessions() {
  absl::MutexLock lock(&mu_);
  std::vector<StoredSession> sessions;
  KILN_ASSIGN_OR_RETURN(SqliteStatement query,
                        db_->Prepare("SELECT id, record FROM sessions ORDER BY rowid"));
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool row, query.Step());
    if (!row) break;
    StoredSession s;
    s.damage = Parse(query.Blob(1), s.record, absl::StrCat("session ", query.Text(0)));
    s.record.set_store_key(query.Text(0));
    if (s.record.id().empty()) s.record.set_id(query.Text(0));
    KILN_RETURN_IF_ERROR(LoadSessionRows(s));
    sessions.push_back(std::move(s));
  }
  return sessions;
}

absl::StatusOr<std::vector<NamedTensor>> SqliteStore::ReadTensors(const std::string& session_id,
                                                                  const std::string& file) {
  return ReadTensorFile(FilePath(session_id, file));
}

absl::StatusOr<std::vector<NamedTensor>> SqliteStore::ReadCheckpoint(const std::string& session_id,
                                                                     const std::string& job_id,
                                                                     int64_t number) {
  std::string file;
  {
    absl::MutexLock lock(&mu_);
    KILN_ASSIGN_OR_RETURN(
        SqliteStatement get,
        db_->Prepare("SELECT file FROM checkpoints WHERE job_id=?1 AND number=?2"));
    get.BindText(1, job_id).Bind(2, number);
    KILN_ASSIGN_OR_RETURN(bool found, get.Step());
    if (!found) {
      return absl::NotFoundError(absl::StrCat("job ", job_id, " has no checkpoint ", number));
    }
    file = get.Text(0);
  }
  return ReadTensorFile(FilePath(session_id, file));
}

}  // namespace kiln::store
