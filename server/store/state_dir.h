// StateDir: kiln-server's state directory - its layout, and the lock by which one server owns
// it:
//   LOCK                 flock()ed by the owning process, which writes its pid into it
//   kiln.db (-wal -shm)  the SQLite database (SqliteStore)
//   tensors/KEY/         the tensor files of a session, by its store key (tensor_file.h)
//   RESERVE              8 MiB kept free for a full disk: deleting a session (which writes to
//                        the database before it frees files) releases it and retries
// The lock is released when the owner exits, however it exits (a SIGKILL too).
#ifndef KILN_SERVER_STORE_STATE_DIR_H_
#define KILN_SERVER_STORE_STATE_DIR_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace kiln::store {

class StateDir {
 public:
  // Creates the directory and its layout where missing, then takes the lock.
  // FAILED_PRECONDITION naming the process that holds it; UNAVAILABLE when it cannot be
  // created or written.
  static absl::StatusOr<std::unique_ptr<StateDir>> Open(const std::string& path);
  ~StateDir();

  const std::string& path() const { return path_; }
  std::string database() const { return path_ + "/kiln.db"; }
  std::string tensors() const { return path_ + "/tensors"; }
  std::string SessionDir(const std::string& session_id) const {
    return tensors() + "/" + session_id;
  }

  // Frees the reserve; false when there was none to free.
  bool ReleaseReserve();
  // Writes the reserve again where it is missing, when the disk has room (else later).
  void KeepReserve();

 private:
  StateDir(std::string path, int lock_fd) : path_(std::move(path)), lock_fd_(lock_fd) {}
  std::string path_;
  int lock_fd_;
};

}  // namespace kiln::store

#endif  // KILN_SERVER_STORE_STATE_DIR_H_
