#include "server/session_manager.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/base/status.h"
#include "google/protobuf/util/time_util.h"

namespace kiln::server {
namespace {

// 16 random hex digits: ids are not guessable from each other.
std::string NewSessionId() {
  static std::mt19937_64 gen(std::random_device{}());
  static absl::Mutex mu(absl::kConstInit);
  absl::MutexLock lock(&mu);
  return absl::StrFormat("s-%016x", gen());
}

}  // namespace

SessionManager::SessionManager(Runtime runtime) : runtime_(runtime) {
  reaper_ = std::thread([this] { ReaperLoop(); });
}

SessionManager::~SessionManager() { Shutdown(); }

absl::StatusOr<std::shared_ptr<Session>> SessionManager::Create(
    const v1::CreateSessionRequest& request) {
  const ServerOptions& options = *runtime_.options;
  if (request.ttl_seconds() < 0) {
    return FieldError("ttl_seconds", "must not be negative (0 means the server's default)");
  }
  absl::Duration ttl =
      request.ttl_seconds() == 0 ? options.session_ttl : absl::Seconds(request.ttl_seconds());
  ttl = std::min(ttl, options.max_session_ttl);
  absl::MutexLock lock(&mu_);
  if (static_cast<int>(sessions_.size()) >= options.max_sessions) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the server holds its maximum of ", options.max_sessions,
                     " sessions; delete one, or wait for idle ones to expire"));
  }
  std::string id;
  do {
    id = NewSessionId();
  } while (sessions_.contains(id));
  auto session = std::make_shared<Session>(
      id, request.name(), ttl,
      request.has_seed() ? std::optional<int64_t>(request.seed()) : std::nullopt, runtime_);
  sessions_[id] = session;
  return session;
}

absl::StatusOr<std::shared_ptr<Session>> SessionManager::Get(const std::string& id) {
  std::shared_ptr<Session> session;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) {
      return WithFieldPrefix(absl::NotFoundError(absl::StrCat(
                                 "no session \"", id, "\" (it may have expired or been deleted)")),
                             "session_id");
    }
    session = it->second;
  }
  session->Touch();
  return session;
}

v1::ListSessionsResponse SessionManager::List() const {
  std::vector<std::shared_ptr<Session>> sessions;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, s] : sessions_) sessions.push_back(s);
  }
  v1::ListSessionsResponse response;
  for (const auto& s : sessions) *response.add_sessions() = s->Describe(false);
  std::sort(response.mutable_sessions()->begin(), response.mutable_sessions()->end(),
            [](const v1::Session& a, const v1::Session& b) {
              return google::protobuf::util::TimeUtil::TimestampToNanoseconds(a.created()) <
                     google::protobuf::util::TimeUtil::TimestampToNanoseconds(b.created());
            });
  return response;
}

absl::Status SessionManager::Delete(const std::string& id) {
  std::shared_ptr<Session> session;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) {
      return WithFieldPrefix(absl::NotFoundError(absl::StrCat("no session \"", id, "\"")),
                             "session_id");
    }
    session = it->second;
    sessions_.erase(it);
  }
  session->Close();
  return absl::OkStatus();
}

int SessionManager::DeleteExpired(absl::Time now) {
  std::vector<std::shared_ptr<Session>> expired;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if (it->second->Expired(now)) {
        expired.push_back(it->second);
        sessions_.erase(it++);
      } else {
        ++it;
      }
    }
  }
  for (const auto& s : expired) s->Close();
  return static_cast<int>(expired.size());
}

void SessionManager::Shutdown() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (reaper_.joinable()) reaper_.join();
  std::vector<std::shared_ptr<Session>> sessions;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, s] : sessions_) sessions.push_back(s);
  }
  for (const auto& s : sessions) s->Close();
}

void SessionManager::ReaperLoop() {
  while (!stop_.WaitForNotificationWithTimeout(runtime_.options->session_reap_interval)) {
    DeleteExpired(absl::Now());
  }
}

}  // namespace kiln::server
