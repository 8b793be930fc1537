#include "server/service/session_manager.h"

#include <malloc.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/base/random_id.h"
#include "core/base/status.h"
#include "google/protobuf/util/time_util.h"
#include "server/service/session_internal.h"

namespace kiln::server {

SessionManager::SessionManager(Runtime runtime) : runtime_(runtime) {}

SessionManager::~SessionManager() { Shutdown(); }

absl::Status SessionManager::Load(const std::function<void(const std::string&)>& log) {
  KILN_ASSIGN_OR_RETURN(std::vector<store::StoredSession> stored, runtime_.store->LoadSessions());
  absl::MutexLock lock(&mu_);
  for (const store::StoredSession& s : stored) {
    absl::StatusOr<std::shared_ptr<Session>> session = Session::Restore(s, runtime_);
    const Key key{s.record.owner(), s.record.id()};
    if (session.ok()) {
      sessions_[key] = *std::move(session);
      ++restored_;
      continue;
    }
    log(absl::StrCat("session ", s.record.id(),
                     " could not be restored: ", session.status().message()));
    Damaged d;
    d.store_key = store::StoreKey(s.record);
    d.status = absl::DataLossError(absl::StrCat(
        session.status().message(), "; DeleteSession removes it (the rest of the server is fine)"));
    d.description.set_id(s.record.id());
    d.description.set_name(s.record.name());
    d.description.set_owner(s.record.owner());
    *d.description.mutable_created() =
        internal::ToTimestamp(absl::FromUnixMicros(s.record.created_micros()));
    d.description.set_damaged(std::string(session.status().message()));
    damaged_[key] = std::move(d);
    ++damaged_count_;
  }
  reaper_ = std::thread([this] { ReaperLoop(); });
  return absl::OkStatus();
}

absl::Status SessionManager::NotFound(const std::string& id) const {
  if (id.empty()) {
    return FieldError("session_id", "is required: the id CreateSession answered");
  }
  return WithFieldPrefix(absl::NotFoundError(absl::StrCat(
                             "no session ", Quoted(id), " (it may have expired or been deleted)")),
                         "session_id");
}

namespace {

// What the server draws: "s-" and 128 bits in lowercase hex.
bool IsDrawnSessionId(absl::string_view id) {
  return id.size() == 34 && absl::StartsWith(id, "s-") &&
         std::all_of(id.begin() + 2, id.end(),
                     [](char c) { return absl::ascii_isdigit(c) || (c >= 'a' && c <= 'f'); });
}

}  // namespace

absl::StatusOr<std::shared_ptr<Session>> SessionManager::Create(
    const Caller& caller, const v1::CreateSessionRequest& request) {
  const ServerOptions& options = *runtime_.options;
  if (request.ttl_seconds() < 0) {
    return FieldError("ttl_seconds", "must not be negative (0 means the server's default)");
  }
  absl::Duration ttl =
      request.ttl_seconds() == 0 ? options.session_ttl : absl::Seconds(request.ttl_seconds());
  ttl = std::min(ttl, options.max_session_ttl);
  if (!request.session_id().empty() && !IsDrawnSessionId(request.session_id())) {
    return FieldError("session_id",
                      "must be \"s-\" and 32 lowercase hex digits (128 random bits the client "
                      "drew), or empty for one the server draws");
  }
  std::shared_ptr<Session> session;
  {
    absl::MutexLock lock(&mu_);
    if (static_cast<int>(sessions_.size() + damaged_.size()) + creating_ >= options.max_sessions) {
      return absl::ResourceExhaustedError(
          absl::StrCat("the server holds its maximum of ", options.max_sessions,
                       " sessions (--max_sessions); delete one, or wait for idle ones to expire"));
    }
    int held = creating_of_[caller.id];
    for (const auto& [key, s] : sessions_) held += key.first == caller.id;
    for (const auto& [key, d] : damaged_) held += key.first == caller.id;
    if (held >= options.max_tenant_sessions) {
      return absl::ResourceExhaustedError(absl::StrCat(
          TenantName(caller.id), " holds its maximum of ", options.max_tenant_sessions,
          " sessions (--max_tenant_sessions); delete one, or wait for idle ones to expire"));
    }
    // 128 bits from the kernel's CSPRNG, or from the client's: not guessable by others. A
    // client's id is checked among its own sessions only, so it learns nothing of others'. The
    // store keys the session by its id (tensors/ID/ names it for operators) unless another
    // tenant's session has that key; then by a fresh draw.
    std::string id = request.session_id();
    if (id.empty()) id = absl::StrCat("s-", RandomHex(16));
    const Key key{caller.id, id};
    if (sessions_.contains(key) || damaged_.contains(key) || creating_keys_.contains(key)) {
      return WithFieldPrefix(
          absl::AlreadyExistsError("you have a session with this id; draw another id"),
          "session_id");
    }
    std::string store_key = id;
    while (StoreKeyInUse(store_key)) store_key = absl::StrCat("s-", RandomHex(16));
    session = std::make_shared<Session>(id, store_key, caller, request, ttl, runtime_);
    creating_keys_[key] = store_key;
    ++creating_;  // holds its place under the limits while it is stored
    ++creating_of_[caller.id];
  }
  absl::Status stored = runtime_.store->CreateSession(session->Record());
  absl::MutexLock lock(&mu_);
  --creating_;
  --creating_of_[caller.id];
  creating_keys_.erase(Key{caller.id, session->id()});
  if (!stored.ok()) return stored;
  sessions_[{caller.id, session->id()}] = session;
  return session;
}

bool SessionManager::StoreKeyInUse(const std::string& key) const {
  for (const auto& [k, s] : sessions_) {
    if (s->store_key() == key) return true;
  }
  for (const auto& [k, d] : damaged_) {
    if (d.store_key == key) return true;
  }
  for (const auto& [k, creating] : creating_keys_) {
    if (creating == key) return true;
  }
  return false;
}

absl::StatusOr<std::shared_ptr<Session>> SessionManager::Get(const Caller& caller,
                                                             const std::string& id) {
  std::shared_ptr<Session> session;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(Key{caller.id, id});
    if (it == sessions_.end()) {
      auto damaged = damaged_.find(Key{caller.id, id});
      if (damaged != damaged_.end()) return WithFieldPrefix(damaged->second.status, "session_id");
      return NotFound(id);
    }
    session = it->second;
  }
  session->Touch();
  return session;
}

absl::StatusOr<v1::Session> SessionManager::Describe(const Caller& caller, const std::string& id) {
  {
    absl::MutexLock lock(&mu_);
    auto damaged = damaged_.find(Key{caller.id, id});
    if (damaged != damaged_.end()) return damaged->second.description;
  }
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<Session> session, Get(caller, id));
  return session->Describe(true);
}

v1::ListSessionsResponse SessionManager::List(const Caller& caller) const {
  std::vector<std::shared_ptr<Session>> sessions;
  v1::ListSessionsResponse response;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [key, s] : sessions_) {
      if (key.first == caller.id) sessions.push_back(s);
    }
    for (const auto& [key, d] : damaged_) {
      if (key.first == caller.id) *response.add_sessions() = d.description;
    }
  }
  for (const auto& s : sessions) *response.add_sessions() = s->Describe(false);
  std::sort(response.mutable_sessions()->begin(), response.mutable_sessions()->end(),
            [](const v1::Session& a, const v1::Session& b) {
              return google::protobuf::util::TimeUtil::TimestampToNanoseconds(a.created()) <
                     google::protobuf::util::TimeUtil::TimestampToNanoseconds(b.created());
            });
  return response;
}

namespace {

// glibc keeps what a deleted session's tensors freed in its arenas (RSS stayed at its peak
// after every session was gone); a session's memory is large and rarely freed, so giving it
// back to the system then costs little.
void ReturnFreedMemory() { malloc_trim(0); }

}  // namespace

absl::Status SessionManager::Delete(const Caller& caller, const std::string& id) {
  const Key key{caller.id, id};
  std::shared_ptr<Session> session;
  std::string store_key;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(key);
    auto damaged = damaged_.find(key);
    if (it != sessions_.end()) {
      session = it->second;
      store_key = session->store_key();
    } else if (damaged != damaged_.end()) {
      store_key = damaged->second.store_key;
    } else {
      return NotFound(id);
    }
  }
  // Stored first: a session that answered "deleted" does not come back after a restart.
  KILN_RETURN_IF_ERROR(runtime_.store->DeleteSession(store_key));
  {
    absl::MutexLock lock(&mu_);
    sessions_.erase(key);
    damaged_.erase(key);
  }
  if (session != nullptr) session->Close();
  session.reset();
  ReturnFreedMemory();
  return absl::OkStatus();
}

int SessionManager::size() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(sessions_.size() + damaged_.size());
}

std::map<v1::JobState, int> SessionManager::JobStates() const {
  std::vector<std::shared_ptr<Session>> sessions;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, session] : sessions_) sessions.push_back(session);
  }
  std::map<v1::JobState, int> by_state;
  for (const std::shared_ptr<Session>& session : sessions) session->CountJobs(by_state);
  return by_state;
}

int SessionManager::DeleteExpired(absl::Time now) {
  std::vector<std::shared_ptr<Session>> expired, live;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, session] : sessions_) {
      (session->Expired(now) ? expired : live).push_back(session);
    }
  }
  int deleted = 0;
  for (const auto& s : expired) {
    if (!runtime_.store->DeleteSession(s->store_key()).ok()) continue;  // tried again next time
    {
      absl::MutexLock lock(&mu_);
      sessions_.erase(Key{s->owner(), s->id()});
    }
    s->Close();
    ++deleted;
  }
  for (const auto& s : live) s->FlushLastUse().IgnoreError();  // best effort; retried
  expired.clear();
  if (deleted > 0) ReturnFreedMemory();
  return deleted;
}

void SessionManager::Shutdown() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (reaper_.joinable()) reaper_.join();
  std::vector<std::shared_ptr<Session>> sessions;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, s] : sessions_) sessions.push_back(s);
  }
  for (const auto& s : sessions) {
    s->FlushLastUse().IgnoreError();
    s->Close();
  }
}

void SessionManager::ReaperLoop() {
  while (!stop_.WaitForNotificationWithTimeout(runtime_.options->session_reap_interval)) {
    DeleteExpired(absl::Now());
  }
}

}  // namespace kiln::server
