// DiskUsage: the bytes each session and each tenant keeps in a state directory - its tensor
// files as the file system sizes them and its database rows as their stored records' lengths -
// and the per-tenant quota (--max_tenant_disk_bytes) that a change needing more is refused by.
//
// SqliteStore keeps it: counted from the directory and the database when the store opens,
// then moved by each change as it commits. A refused change writes nothing. Records and job
// events count but are never refused (a running fit is not stopped by its own progress log);
// tensor files - weights, optimizer state, datasets, checkpoints - are checked before they are
// written. Thread-safe.
#ifndef KILN_SERVER_STORE_DISK_USAGE_H_
#define KILN_SERVER_STORE_DISK_USAGE_H_

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace kiln::store {

class DiskUsage {
 public:
  // `tenant_quota`: bytes a tenant may keep across its sessions; 0: no quota.
  explicit DiskUsage(int64_t tenant_quota) : tenant_quota_(tenant_quota) {}

  // A session's bytes count for `owner` from now on; RemoveSession forgets them.
  void AddSession(const std::string& key, const std::string& owner) ABSL_LOCKS_EXCLUDED(mu_);
  void RemoveSession(const std::string& key) ABSL_LOCKS_EXCLUDED(mu_);
  // Bytes the session keeps more (or, negative, fewer); ignored for an unknown session.
  void Add(const std::string& key, int64_t bytes) ABSL_LOCKS_EXCLUDED(mu_);
  // RESOURCE_EXHAUSTED when `more` bytes would take the session's tenant past its quota.
  absl::Status Check(const std::string& key, int64_t more) const ABSL_LOCKS_EXCLUDED(mu_);

  int64_t session_bytes(const std::string& key) const ABSL_LOCKS_EXCLUDED(mu_);
  int64_t tenant_bytes(const std::string& owner) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Held {
    std::string owner;
    int64_t bytes = 0;
  };
  const int64_t tenant_quota_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Held> sessions_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int64_t> tenants_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kiln::store

#endif  // KILN_SERVER_STORE_DISK_USAGE_H_
