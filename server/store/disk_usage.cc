#include "server/store/disk_usage.h"

#include "absl/strings/str_cat.h"

namespace kiln::store {

void DiskUsage::AddSession(const std::string& key, const std::string& owner) {
  absl::MutexLock lock(&mu_);
  Held& held = sessions_[key];
  if (held.owner != owner) {
    tenants_[held.owner] -= held.bytes;
    tenants_[owner] += held.bytes;
    held.owner = owner;
  }
}

void DiskUsage::RemoveSession(const std::string& key) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return;
  tenants_[it->second.owner] -= it->second.bytes;
  sessions_.erase(it);
}

void DiskUsage::Add(const std::string& key, int64_t bytes) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return;
  it->second.bytes += bytes;
  tenants_[it->second.owner] += bytes;
}

absl::Status DiskUsage::Check(const std::string& key, int64_t more) const {
  if (tenant_quota_ <= 0) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  auto session = sessions_.find(key);
  if (session == sessions_.end()) return absl::OkStatus();  // deleted: the change fails anyway
  const std::string& owner = session->second.owner;
  const int64_t kept = tenants_.at(owner);
  if (kept + more <= tenant_quota_) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      owner.empty() ? "the anonymous tenant" : absl::StrCat("tenant \"", owner, "\""),
      " would keep ", kept + more, " bytes in the state directory, over its quota of ",
      tenant_quota_, " (--max_tenant_disk_bytes); it keeps ", kept,
      " and this change needs ", more,
      " more. Delete sessions, datasets or checkpoints it no longer needs"));
}

int64_t DiskUsage::session_bytes(const std::string& key) const {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(key);
  return it == sessions_.end() ? 0 : it->second.bytes;
}

int64_t DiskUsage::tenant_bytes(const std::string& owner) const {
  absl::MutexLock lock(&mu_);
  auto it = tenants_.find(owner);
  return it == tenants_.end() ? 0 : it->second;
}

}  // namespace kiln::store
