#include "server/service/tenants.h"

#include "absl/strings/str_cat.h"

namespace kiln::server {

std::string TenantName(const std::string& tenant) {
  return tenant.empty() ? "the anonymous tenant" : absl::StrCat("tenant \"", tenant, "\"");
}

Tenants::State& Tenants::StateOf(const std::string& tenant) {
  State& state = tenants_[tenant];
  if (state.memory == nullptr) {
    state.memory = std::make_shared<MemoryAccount>(TenantName(tenant), "--max_tenant_bytes",
                                                   options_->max_tenant_bytes, server_);
  }
  return state;
}

std::shared_ptr<MemoryAccount> Tenants::Memory(const std::string& tenant) {
  absl::MutexLock lock(&mu_);
  return StateOf(tenant).memory;
}

int64_t Tenants::BytesHeld() const {
  absl::MutexLock lock(&mu_);
  int64_t bytes = 0;
  for (const auto& [tenant, state] : tenants_) bytes += state.memory->used();
  return bytes;
}

std::shared_ptr<MemoryAccount> Tenants::NewSessionAccount(const std::string& tenant) {
  return std::make_shared<MemoryAccount>("the session", "--max_session_bytes",
                                         options_->max_session_bytes, Memory(tenant));
}

absl::StatusOr<std::shared_ptr<void>> Tenants::AcquireJob(const std::string& tenant) {
  absl::MutexLock lock(&mu_);
  State& state = StateOf(tenant);
  if (state.jobs >= options_->max_tenant_jobs) {
    return absl::ResourceExhaustedError(absl::StrCat(
        TenantName(tenant), " has its maximum of ", options_->max_tenant_jobs,
        " jobs queued or running (--max_tenant_jobs); wait for one to finish or cancel one"));
  }
  ++state.jobs;
  // Tenants are never removed, and outlive every job.
  return std::shared_ptr<void>(nullptr, [this, tenant](void*) {
    absl::MutexLock lock(&mu_);
    --tenants_[tenant].jobs;
  });
}

}  // namespace kiln::server
