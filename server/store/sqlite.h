// A thin RAII layer over SQLite's C API: a connection, prepared statements with typed binds
// and columns, and errors as absl::Status naming the database. Not thread-safe: SqliteStore
// serialises its use.
#ifndef KILN_SERVER_STORE_SQLITE_H_
#define KILN_SERVER_STORE_SQLITE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct sqlite3;
struct sqlite3_stmt;

namespace kiln::store {

class SqliteStatement {
 public:
  SqliteStatement(SqliteStatement&& other) noexcept;
  ~SqliteStatement();

  // Binds parameter ?index; an index the statement does not use is ignored.
  SqliteStatement& Bind(int index, int64_t value);
  SqliteStatement& BindText(int index, absl::string_view value);
  SqliteStatement& BindBlob(int index, absl::string_view value);
  // True while a row is available; false once done.
  absl::StatusOr<bool> Step();
  // Runs a statement that returns no rows.
  absl::Status Run();

  int64_t Int64(int column) const;
  std::string Text(int column) const;
  std::string Blob(int column) const;

 private:
  friend class SqliteDb;
  SqliteStatement(sqlite3_stmt* statement, const std::string* path)
      : statement_(statement), path_(path) {}
  sqlite3_stmt* statement_;
  const std::string* path_;
};

class SqliteDb {
 public:
  // Opens (creating) the database at `path`. DATA_LOSS when it is not a database.
  static absl::StatusOr<std::unique_ptr<SqliteDb>> Open(const std::string& path);
  ~SqliteDb();

  // Runs one or more statements that return no rows.
  absl::Status Exec(const std::string& sql);
  absl::StatusOr<SqliteStatement> Prepare(absl::string_view sql);
  const std::string& path() const { return path_; }
  // Rows changed by the last statement.
  int64_t changes() const;

  // The status for SQLite result `code` on this database.
  absl::Status Error(int code, absl::string_view what) const;

 private:
  SqliteDb(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  std::string path_;
};

// BEGIN IMMEDIATE on construction; ROLLBACK unless Commit succeeded.
class SqliteTransaction {
 public:
  static absl::StatusOr<SqliteTransaction> Begin(SqliteDb& db);
  SqliteTransaction(SqliteTransaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  ~SqliteTransaction();
  absl::Status Commit();

 private:
  explicit SqliteTransaction(SqliteDb* db) : db_(db) {}
  SqliteDb* db_;
};

}  // namespace kiln::store

#endif  // KILN_SERVER_STORE_SQLITE_H_
