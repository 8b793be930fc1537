// Authenticator: decides who a request comes from. Tenants are named by bearer tokens (a file
// of `tenant:sha256-hex-of-token` lines, re-read on Reload) or, with mutual TLS, by the common
// name of the client certificate the transport verified. Tokens are compared by their SHA-256
// digest, so the file never holds a usable secret and nothing here logs or keeps a token.
//
// Thread-safety: Authenticate may run on any thread while Reload swaps the table.
#ifndef KILN_SERVER_SERVICE_AUTHENTICATOR_H_
#define KILN_SERVER_SERVICE_AUTHENTICATOR_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/service/caller.h"
#include "server/service/failed_auth_limiter.h"

namespace kiln::server {

// Lowercase hex SHA-256 of `token`.
std::string TokenDigest(absl::string_view token);
// The tokens-file line for `tenant` and `token`; INVALID_ARGUMENT for a tenant name that is not
// 1-64 of [A-Za-z0-9._-] or an empty token.
absl::StatusOr<std::string> TokenFileLine(absl::string_view tenant, absl::string_view token);

// A stream's hold on its credentials (Authenticator::WatchRevocation): `revoked` runs at most
// once, on the thread of the Reload that revoked them. Cancel() waits for a call in flight and
// makes sure none comes after it; the stream calls it before it goes away.
class RevocationWatch {
 public:
  RevocationWatch(std::optional<std::string> authorization, std::string tenant,
                  std::function<void()> revoked)
      : authorization_(std::move(authorization)),
        tenant_(std::move(tenant)),
        revoked_(std::move(revoked)) {}
  void Cancel() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  friend class Authenticator;
  const std::optional<std::string> authorization_;
  const std::string tenant_;
  absl::Mutex mu_;
  std::function<void()> revoked_ ABSL_GUARDED_BY(mu_);
};

class Authenticator {
 public:
  // `tokens_file`: "" for none. `certificates_name_tenants`: a verified client certificate's
  // common name is the tenant when no token file is given.
  Authenticator(std::string tokens_file, bool certificates_name_tenants);

  // Reads the tokens file again. On an error (naming the file and line) the table in use stays.
  absl::Status Reload() ABSL_LOCKS_EXCLUDED(mu_);
  // Whether requests must prove who they are.
  bool required() const { return !tokens_file_.empty() || certificates_name_tenants_; }
  // Tenants in the table in use.
  int tenants() const ABSL_LOCKS_EXCLUDED(mu_);

  // `authorization`: the request's authorization header, if any; `certificate_name`: the
  // common name of its verified client certificate ("" without one); `client`: its address
  // (ClientAddress; "" for calls from inside the server). UNAUTHENTICATED when a token is
  // required and missing or unknown; RESOURCE_EXHAUSTED, without looking at the token, when
  // `client` has failed too often lately (FailedAuthLimiter).
  absl::StatusOr<Caller> Authenticate(std::optional<absl::string_view> authorization,
                                      absl::string_view certificate_name,
                                      absl::string_view client = "") const ABSL_LOCKS_EXCLUDED(mu_);

  // A long stream (WatchJob, and so the HTTP door's event streams) opened with
  // `authorization` as `tenant` ends when a Reload stops that token naming that tenant: the
  // watch's `revoked` runs then. Null when tokens are not in use (nothing to revoke).
  std::shared_ptr<RevocationWatch> WatchRevocation(std::optional<std::string> authorization,
                                                   std::string tenant,
                                                   std::function<void()> revoked) const
      ABSL_LOCKS_EXCLUDED(watches_mu_);

 private:
  absl::StatusOr<Caller> Check(std::optional<absl::string_view> authorization,
                               absl::string_view certificate_name) const ABSL_LOCKS_EXCLUDED(mu_);

  const std::string tokens_file_;
  const bool certificates_name_tenants_;
  mutable FailedAuthLimiter failures_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::string> tenant_of_digest_ ABSL_GUARDED_BY(mu_);
  mutable absl::Mutex watches_mu_;
  mutable std::vector<std::weak_ptr<RevocationWatch>> watches_ ABSL_GUARDED_BY(watches_mu_);
};

}  // namespace kiln::server

#endif  // KILN_SERVER_SERVICE_AUTHENTICATOR_H_
