// Tenants: what each tenant (a Caller id; "" for the anonymous one) holds across its sessions,
// against the per-tenant limits: bytes (a MemoryAccount that every session account of the
// tenant charges too, inside the server's) and jobs queued or running. Sessions per tenant are
// counted by the SessionManager, which knows them.
//
// Thread-safety: every method may be called from any thread.
#ifndef KILN_SERVER_SERVICE_TENANTS_H_
#define KILN_SERVER_SERVICE_TENANTS_H_

#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/tensor/memory_account.h"
#include "server/service/options.h"

namespace kiln::server {

class Tenants {
 public:
  // `server_bytes`: what all tenants hold together (--max_server_bytes, resolved).
  Tenants(const ServerOptions* options, int64_t server_bytes)
      : options_(options),
        server_(std::make_shared<MemoryAccount>("the server", "--max_server_bytes", server_bytes)) {
  }

  // The account of `tenant`'s bytes, made on first use.
  std::shared_ptr<MemoryAccount> Memory(const std::string& tenant) ABSL_LOCKS_EXCLUDED(mu_);
  // A new session account of `tenant` (--max_session_bytes, within the tenant's).
  std::shared_ptr<MemoryAccount> NewSessionAccount(const std::string& tenant);

  // A slot for one more job of `tenant`, held until the job has run (or will not run):
  // RESOURCE_EXHAUSTED past --max_tenant_jobs.
  absl::StatusOr<std::shared_ptr<void>> AcquireJob(const std::string& tenant)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Bytes every tenant's sessions hold together.
  int64_t BytesHeld() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct State {
    std::shared_ptr<MemoryAccount> memory;
    int jobs = 0;
  };
  State& StateOf(const std::string& tenant) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ServerOptions* const options_;
  const std::shared_ptr<MemoryAccount> server_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, State> tenants_ ABSL_GUARDED_BY(mu_);
};

// How messages name a tenant: `tenant "alice"`, or "the anonymous tenant".
std::string TenantName(const std::string& tenant);

}  // namespace kiln::server

#endif  // KILN_SERVER_SERVICE_TENANTS_H_
