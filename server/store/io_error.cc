#include "server/store/io_error.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace kiln::store {

absl::Status IoError(int error, absl::string_view what) {
  const std::string detail = absl::StrCat(what, ": ", std::strerror(error));
  if (error == ENOSPC || error == EDQUOT) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the state directory is full; nothing was changed (", detail, ")"));
  }
  if (error == EACCES || error == EPERM || error == EROFS) {
    return absl::UnavailableError(
        absl::StrCat("the state directory is not writable; nothing was changed (", detail, ")"));
  }
  return absl::UnavailableError(
      absl::StrCat("the state directory failed; nothing was changed (", detail, ")"));
}

absl::Status Damaged(absl::string_view what, absl::string_view why) {
  return absl::DataLossError(absl::StrCat(what, " is damaged: ", why));
}

}  // namespace kiln::store
