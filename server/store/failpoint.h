// Failpoints, as etcd and TiKV use them: named places in the store's write path where a test
// makes kiln-server fail on purpose, to prove that a crash or an I/O error there loses nothing
// that was confirmed and leaves nothing half-written.
//
// KILN_FAILPOINTS="name=action;name=action" (read once, at the first failpoint reached) arms
// them. Actions:
//   abort          the process aborts at once (SIGABRT), as a crash there would stop it
//   enospc, eio    the operation fails as if the disk were full / failing
//   abort@N        aborts the Nth time the point is reached (N >= 1)
// Unarmed failpoints cost one relaxed atomic load.
#ifndef KILN_SERVER_STORE_FAILPOINT_H_
#define KILN_SERVER_STORE_FAILPOINT_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace kiln::store {

// OK unless the failpoint `name` is armed: then it aborts the process or returns the error
// its action names (errno-style, see IoError).
absl::Status Failpoint(absl::string_view name);

// Whether any failpoint is armed (the server logs it at start: they are for tests only).
bool FailpointsArmed();

// Arms failpoints as KILN_FAILPOINTS would (replacing any armed before): for in-process tests
// of error actions.
void ArmFailpoints(absl::string_view spec);

}  // namespace kiln::store

#endif  // KILN_SERVER_STORE_FAILPOINT_H_
