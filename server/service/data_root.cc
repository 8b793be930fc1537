#include "server/service/data_root.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/io/readers.h"

namespace kiln::server {
namespace {

absl::Status OutsideRoot(absl::string_view relative, absl::string_view why) {
  return absl::PermissionDeniedError(
      absl::StrCat("\"", relative, "\" is not a file below the server's data root: ", why));
}

// realpath(3), or nullopt with errno set.
std::optional<std::string> RealPath(const std::string& path) {
  char resolved[PATH_MAX];
  if (realpath(path.c_str(), resolved) == nullptr) return std::nullopt;
  return std::string(resolved);
}

}  // namespace

absl::StatusOr<int> DataRoot::Open(absl::string_view relative) const {
  if (!enabled()) {
    return absl::FailedPreconditionError(
        "this server reads no files: start kiln-server with --data_root");
  }
  if (relative.empty()) return absl::InvalidArgumentError("name a file below the data root");
  if (absl::StrContains(relative, absl::string_view("\0", 1))) {
    return OutsideRoot("(a path with a NUL byte)", "a path cannot hold a NUL byte");
  }
  if (relative.front() == '/') return OutsideRoot(relative, "the path is absolute");
  for (absl::string_view part : absl::StrSplit(relative, '/')) {
    if (part == "..") return OutsideRoot(relative, "the path goes up with \"..\"");
  }
  const std::optional<std::string> root = RealPath(root_);
  if (!root.has_value()) {
    return absl::FailedPreconditionError("the server's data root cannot be read");
  }
  const std::optional<std::string> full = RealPath(absl::StrCat(*root, "/", relative));
  if (!full.has_value()) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return absl::NotFoundError(absl::StrCat("no such file: ", relative));
    }
    return absl::PermissionDeniedError(absl::StrCat("cannot open ", relative));
  }
  // Whole components: a root of /srv/dr does not contain /srv/dr-secret.
  if (!absl::StartsWith(*full, absl::StrCat(*root, "/"))) {
    return OutsideRoot(relative, "it leads out through a symbolic link");
  }
  // O_NONBLOCK: opening a FIFO must not wait for a writer; O_NOFOLLOW: the last component
  // cannot have become a link since realpath looked.
  const int fd = open(full->c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
  if (fd < 0) return absl::PermissionDeniedError(absl::StrCat("cannot open ", relative));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat(relative, " is not a regular file"));
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

absl::StatusOr<std::string> DataRoot::Read(absl::string_view relative, size_t max_bytes) const {
  absl::StatusOr<int> fd = Open(relative);
  if (!fd.ok()) return fd.status();
  return ReadOpenFile(*fd, relative, max_bytes);
}

}  // namespace kiln::server
