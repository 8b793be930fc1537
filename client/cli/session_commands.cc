// kiln health; kiln session create|list|show|delete.
#include <cstdio>

#include "absl/flags/flag.h"
#include "client/cli/commands.h"
#include "client/cli/common.h"
#include "client/cli/flags.h"

namespace kiln::cli {

absl::Status Health(client::Client& c, const Args&) {
  KILN_RETURN_IF_ERROR(c.Health(absl::GetFlag(FLAGS_service), absl::GetFlag(FLAGS_wait)));
  std::printf("SERVING\n");
  return absl::OkStatus();
}

absl::Status SessionCreate(client::Client& c, const Args&) {
  v1::CreateSessionRequest request;
  request.set_name(absl::GetFlag(FLAGS_name));
  request.set_ttl_seconds(absl::GetFlag(FLAGS_ttl));
  request.set_session_id(client::DrawSessionId());  // routable from the create on
  KILN_ASSIGN_OR_RETURN(const std::optional<int64_t> seed, SeedFlag());
  if (seed.has_value()) request.set_seed(*seed);
  KILN_ASSIGN_OR_RETURN(v1::Session s,
                        c.Call(&v1::SessionService::Stub::CreateSession, c.sessions(), request));
  if (absl::GetFlag(FLAGS_json)) return PrintJson(s);
  std::printf("%s\n", s.id().c_str());
  return absl::OkStatus();
}

absl::Status SessionList(client::Client& c, const Args&) {
  KILN_ASSIGN_OR_RETURN(
      v1::ListSessionsResponse r,
      c.Call(&v1::SessionService::Stub::ListSessions, c.sessions(), v1::ListSessionsRequest()));
  if (absl::GetFlag(FLAGS_json)) return PrintJson(r);
  for (const v1::Session& s : r.sessions()) {
    std::printf("%s  %-16s models=%d datasets=%d jobs=%d\n", s.id().c_str(), s.name().c_str(),
                s.models_size(), s.datasets_size(), s.jobs_size());
  }
  return absl::OkStatus();
}

absl::Status SessionShow(client::Client& c, const Args&) {
  v1::GetSessionRequest request;
  KILN_ASSIGN_OR_RETURN(*request.mutable_session_id(), RequireSession());
  KILN_ASSIGN_OR_RETURN(v1::Session s,
                        c.Call(&v1::SessionService::Stub::GetSession, c.sessions(), request));
  return PrintJson(s);
}

absl::Status SessionDelete(client::Client& c, const Args&) {
  v1::DeleteSessionRequest request;
  KILN_ASSIGN_OR_RETURN(*request.mutable_session_id(), RequireSession());
  KILN_RETURN_IF_ERROR(
      c.Call(&v1::SessionService::Stub::DeleteSession, c.sessions(), request).status());
  std::printf("deleted %s\n", request.session_id().c_str());
  return absl::OkStatus();
}

}  // namespace kiln::cli
