// The status a failed write or read of the state directory answers with: the caller learns
// what failed and why, in words an operator can act on.
#ifndef KILN_SERVER_STORE_IO_ERROR_H_
#define KILN_SERVER_STORE_IO_ERROR_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace kiln::store {

// `error` is an errno value, `what` the operation ("writing /var/lib/kiln/tensors/x.kt").
// ENOSPC and EDQUOT: RESOURCE_EXHAUSTED ("the state directory is full"); anything else:
// UNAVAILABLE (the state directory is not writable or failing; reads still work).
absl::Status IoError(int error, absl::string_view what);

// DATA_LOSS naming the damaged `what` ("tensor file .../x.kt: truncated").
absl::Status Damaged(absl::string_view what, absl::string_view why);

}  // namespace kiln::store

#endif  // KILN_SERVER_STORE_IO_ERROR_H_
