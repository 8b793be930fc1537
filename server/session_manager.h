// SessionManager: the server's sessions by id, their limits, and their expiry. A background
// thread deletes sessions unused for longer than their TTL (a running job keeps its session
// alive); deleting a session cancels its jobs.
#ifndef KILN_SERVER_SESSION_MANAGER_H_
#define KILN_SERVER_SESSION_MANAGER_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "server/session.h"

namespace kiln::server {

class SessionManager {
 public:
  explicit SessionManager(Runtime runtime);
  ~SessionManager();

  // RESOURCE_EXHAUSTED past --max_sessions; INVALID_ARGUMENT for a negative TTL.
  absl::StatusOr<std::shared_ptr<Session>> Create(const v1::CreateSessionRequest& request);
  // NOT_FOUND (field "session_id") for unknown or expired ids. Marks the session used.
  absl::StatusOr<std::shared_ptr<Session>> Get(const std::string& id);
  v1::ListSessionsResponse List() const;
  absl::Status Delete(const std::string& id);
  // Deletes the sessions whose TTL has passed; the reaper calls it every few seconds.
  int DeleteExpired(absl::Time now);
  // Cancels every session's jobs and stops the reaper.
  void Shutdown();

 private:
  void ReaperLoop();

  const Runtime runtime_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Session>> sessions_ ABSL_GUARDED_BY(mu_);
  absl::Notification stop_;
  std::thread reaper_;
};

}  // namespace kiln::server

#endif  // KILN_SERVER_SESSION_MANAGER_H_
