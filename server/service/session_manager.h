// SessionManager: the server's sessions by owner and id, their limits and expiry. A session id
// names a session only among its owner's (two tenants may each have an "s-1234..."); the
// store keys sessions by a store key that is unique across tenants. At start it
// restores every session the store kept; a session whose stored state is damaged is kept as a
// record that answers DATA_LOSS (naming the damage) until it is deleted. A background thread
// deletes sessions unused for longer than their TTL (a running job keeps its session alive)
// and stores when the others were last used; deleting a session cancels its jobs.
#ifndef KILN_SERVER_SERVICE_SESSION_MANAGER_H_
#define KILN_SERVER_SERVICE_SESSION_MANAGER_H_

#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "server/service/caller.h"
#include "server/service/session.h"

namespace kiln::server {

class SessionManager {
 public:
  explicit SessionManager(Runtime runtime);
  ~SessionManager();

  // Restores the stored sessions; `log` receives a line per damaged one. Call once, before
  // serving. Fails only when the store cannot be read at all.
  absl::Status Load(const std::function<void(const std::string&)>& log);
  // Restored sessions and damaged ones, as Load found them.
  int restored() const { return restored_; }
  int damaged() const { return damaged_count_; }

  // RESOURCE_EXHAUSTED past --max_sessions or --max_tenant_sessions; INVALID_ARGUMENT for a
  // negative TTL; the store's error when the session cannot be stored.
  absl::StatusOr<std::shared_ptr<Session>> Create(const Caller& caller,
                                                  const v1::CreateSessionRequest& request);
  // NOT_FOUND (field "session_id") for unknown or expired ids and for sessions of other
  // callers; INVALID_ARGUMENT for an empty id; DATA_LOSS for a damaged one. Marks the session
  // used.
  absl::StatusOr<std::shared_ptr<Session>> Get(const Caller& caller, const std::string& id);
  // GetSession: also describes a damaged session (with `damaged` set).
  absl::StatusOr<v1::Session> Describe(const Caller& caller, const std::string& id);
  v1::ListSessionsResponse List(const Caller& caller) const;
  absl::Status Delete(const Caller& caller, const std::string& id);
  // Deletes the sessions whose TTL has passed; the reaper calls it every few seconds.
  int DeleteExpired(absl::Time now);
  // Sessions held, of every tenant (damaged ones too).
  int size() const ABSL_LOCKS_EXCLUDED(mu_);
  // The jobs the sessions hold, by state.
  std::map<v1::JobState, int> JobStates() const ABSL_LOCKS_EXCLUDED(mu_);
  // Cancels every session's jobs and stops the reaper.
  void Shutdown();

 private:
  void ReaperLoop();
  absl::Status NotFound(const std::string& id) const;
  // Whether a session (of any tenant, being created too) has this store key.
  bool StoreKeyInUse(const std::string& key) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  struct Damaged {
    v1::Session description;
    std::string store_key;
    absl::Status status;
  };
  // (owner, id)
  using Key = std::pair<std::string, std::string>;

  const Runtime runtime_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<Key, std::shared_ptr<Session>> sessions_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<Key, Damaged> damaged_ ABSL_GUARDED_BY(mu_);
  int creating_ ABSL_GUARDED_BY(mu_) = 0;  // sessions being stored, not listed yet
  absl::flat_hash_map<std::string, int> creating_of_ ABSL_GUARDED_BY(mu_);    // by tenant
  absl::flat_hash_map<Key, std::string> creating_keys_ ABSL_GUARDED_BY(mu_);  // store keys
  int restored_ = 0, damaged_count_ = 0;
  absl::Notification stop_;
  std::thread reaper_;
};

}  // namespace kiln::server

#endif  // KILN_SERVER_SERVICE_SESSION_MANAGER_H_
