#include "server/service/authenticator.h"

#include <openssl/sha.h>

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "core/base/status.h"

namespace kiln::server {
namespace {

bool ValidTenant(absl::string_view tenant) {
  if (tenant.empty() || tenant.size() > 64) return false;
  for (char c : tenant) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

bool ValidDigest(absl::string_view digest) {
  if (digest.size() != 2 * SHA256_DIGEST_LENGTH) return false;
  for (char c : digest) {
    if (!absl::ascii_isxdigit(c)) return false;
  }
  return true;
}

constexpr char kTenantRule[] = "1 to 64 letters, digits, '.', '_' or '-'";

}  // namespace

std::string TokenDigest(absl::string_view token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

absl::StatusOr<std::string> TokenFileLine(absl::string_view tenant, absl::string_view token) {
  if (!ValidTenant(tenant)) {
    return absl::InvalidArgumentError(absl::StrCat("a tenant name is ", kTenantRule));
  }
  if (token.empty()) return absl::InvalidArgumentError("the token is empty");
  return absl::StrCat(tenant, ":", TokenDigest(token));
}

Authenticator::Authenticator(std::string tokens_file, bool certificates_name_tenants)
    : tokens_file_(std::move(tokens_file)), certificates_name_tenants_(certificates_name_tenants) {}

void RevocationWatch::Cancel() {
  absl::MutexLock lock(&mu_);
  revoked_ = nullptr;
}

std::shared_ptr<RevocationWatch> Authenticator::WatchRevocation(
    std::optional<std::string> authorization, std::string tenant,
    std::function<void()> revoked) const {
  if (tokens_file_.empty()) return nullptr;
  auto watch = std::make_shared<RevocationWatch>(std::move(authorization), std::move(tenant),
                                                 std::move(revoked));
  absl::MutexLock lock(&watches_mu_);
  watches_.push_back(watch);
  return watch;
}

absl::Status Authenticator::Reload() {
  if (tokens_file_.empty()) return absl::OkStatus();
  std::ifstream in(tokens_file_);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read the tokens file ", tokens_file_));
  absl::flat_hash_map<std::string, std::string> table;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    absl::string_view text = absl::StripAsciiWhitespace(line);
    if (text.empty() || absl::StartsWith(text, "#")) continue;
    const auto where = [&] { return absl::StrCat(tokens_file_, " line ", number, ": "); };
    const size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), "expected tenant:sha256-hex-of-token (kiln-server --hash_token)"));
    }
    const absl::string_view tenant = text.substr(0, colon);
    const std::string digest = absl::AsciiStrToLower(text.substr(colon + 1));
    if (!ValidTenant(tenant)) {
      return absl::InvalidArgumentError(absl::StrCat(where(), "a tenant name is ", kTenantRule));
    }
    if (!ValidDigest(digest)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), "the digest must be 64 hex digits (SHA-256 of the token)"));
    }
    if (!table.emplace(digest, std::string(tenant)).second) {
      return absl::InvalidArgumentError(absl::StrCat(where(), "the same token appears twice"));
    }
  }
  {
    absl::MutexLock lock(&mu_);
    tenant_of_digest_ = std::move(table);
  }
  // Streams opened with a token that no longer names their tenant end now.
  std::vector<std::shared_ptr<RevocationWatch>> live;
  {
    absl::MutexLock lock(&watches_mu_);
    std::vector<std::weak_ptr<RevocationWatch>> kept;
    for (const std::weak_ptr<RevocationWatch>& weak : watches_) {
      if (std::shared_ptr<RevocationWatch> watch = weak.lock()) {
        live.push_back(watch);
        kept.push_back(weak);
      }
    }
    watches_ = std::move(kept);
  }
  for (const std::shared_ptr<RevocationWatch>& watch : live) {
    absl::StatusOr<Caller> caller = Authenticate(watch->authorization_, "");
    if (caller.ok() && caller->id == watch->tenant_) continue;
    absl::MutexLock lock(&watch->mu_);
    if (watch->revoked_) {
      std::function<void()> revoked = std::move(watch->revoked_);
      watch->revoked_ = nullptr;
      revoked();
    }
  }
  return absl::OkStatus();
}

int Authenticator::tenants() const {
  absl::MutexLock lock(&mu_);
  absl::flat_hash_map<std::string, bool> names;
  for (const auto& [digest, tenant] : tenant_of_digest_) names[tenant] = true;
  return static_cast<int>(names.size());
}

absl::StatusOr<Caller> Authenticator::Authenticate(std::optional<absl::string_view> authorization,
                                                   absl::string_view certificate_name,
                                                   absl::string_view client) const {
  if (tokens_file_.empty() || client.empty()) return Check(authorization, certificate_name);
  const absl::Time now = absl::Now();
  KILN_RETURN_IF_ERROR(failures_.Admit(client, now));
  absl::StatusOr<Caller> caller = Check(authorization, certificate_name);
  if (!caller.ok()) failures_.Failed(client, now);
  return caller;
}

absl::StatusOr<Caller> Authenticator::Check(std::optional<absl::string_view> authorization,
                                            absl::string_view certificate_name) const {
  if (tokens_file_.empty()) {
    if (!certificates_name_tenants_) return Caller{};
    // The transport refuses connections without a verified certificate; this is a guard.
    if (certificate_name.empty()) {
      return absl::UnauthenticatedError("a client certificate with a common name is required");
    }
    return Caller{std::string(certificate_name)};
  }
  if (!authorization.has_value()) {
    return absl::UnauthenticatedError(
        "this server requires a token: send 'authorization: Bearer <token>' (kiln --token, "
        "KILN_TOKEN)");
  }
  absl::string_view token = *authorization;
  if (!absl::ConsumePrefix(&token, "Bearer ") && !absl::ConsumePrefix(&token, "bearer ")) {
    return absl::UnauthenticatedError("the authorization header must be 'Bearer <token>'");
  }
  const std::string digest = TokenDigest(absl::StripAsciiWhitespace(token));
  absl::MutexLock lock(&mu_);
  auto it = tenant_of_digest_.find(digest);
  if (it == tenant_of_digest_.end()) return absl::UnauthenticatedError("the token is not valid");
  return Caller{it->second};
}

}  // namespace kiln::server
