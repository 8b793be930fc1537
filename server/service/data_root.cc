#include "server/service/data_root.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <optional>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/base/status.h"
#include "core/io/readers.h"

namespace kiln::server {
namespace {

// `shown`: the path as the client gave it, quoted.
absl::Status OutsideRoot(absl::string_view shown, absl::string_view why) {
  return absl::PermissionDeniedError(
      absl::StrCat(shown, " is not a file below the server's data root: ", why));
}

absl::Status ThroughLink(absl::string_view relative) {
  return OutsideRoot(Quoted(relative),
                     "it passes through a symbolic link (links below the data root are not "
                     "followed)");
}

// Set once openat2 answered that this kernel (or a seccomp profile) lacks it.
std::atomic<bool> no_openat2{false};

// The errno of one open, or the descriptor.
struct Opened {
  int fd = -1;
  int error = 0;
};

constexpr int kFileFlags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW;

// The kernel resolves `relative` below `root`, refusing every link and every way out
// (RESOLVE_BENEATH: "..", absolute paths; RESOLVE_NO_SYMLINKS: links of any kind). nullopt
// when the kernel has no openat2.
std::optional<Opened> OpenBeneath(int root, const std::string& relative) {
  if (no_openat2.load(std::memory_order_relaxed)) return std::nullopt;
  open_how how{};
  how.flags = kFileFlags;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  for (int attempt = 0;; ++attempt) {
    const long fd = syscall(SYS_openat2, root, relative.c_str(), &how, sizeof(how));
    if (fd >= 0) return Opened{int(fd), 0};
    // EAGAIN: a rename below the root raced the lookup; the kernel asks for a retry.
    if (errno == EAGAIN && attempt < 16) continue;
    if (errno == ENOSYS || errno == EPERM) {  // EPERM: a seccomp profile that predates it
      no_openat2.store(true, std::memory_order_relaxed);
      return std::nullopt;
    }
    return Opened{-1, errno};
  }
}

// The same without openat2: one component at a time from `root`, never following a link.
Opened WalkBeneath(int root, absl::string_view relative) {
  std::vector<std::string> parts;
  for (absl::string_view part : absl::StrSplit(relative, '/', absl::SkipEmpty())) {
    if (part != ".") parts.emplace_back(part);
  }
  if (parts.empty()) return Opened{-1, EISDIR};
  int dir = root;
  for (size_t i = 0; i < parts.size(); ++i) {
    const bool last = i + 1 == parts.size();
    const int fd = openat(dir, parts[i].c_str(),
                          last ? kFileFlags : O_RDONLY | O_CLOEXEC | O_DIRECTORY | O_NOFOLLOW);
    int error = errno;
    if (fd < 0 && error == ENOTDIR) {
      // A link with O_DIRECTORY | O_NOFOLLOW may answer ENOTDIR rather than ELOOP.
      struct stat st;
      if (fstatat(dir, parts[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
        error = ELOOP;
      }
    }
    if (dir != root) close(dir);
    if (fd < 0) return Opened{-1, error};
    dir = fd;
  }
  return Opened{dir, 0};
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
  if (relative.front() == '/') return OutsideRoot(Quoted(relative), "the path is absolute");
  for (absl::string_view part : absl::StrSplit(relative, '/')) {
    if (part == "..") return OutsideRoot(Quoted(relative), "the path goes up with \"..\"");
  }
  // The root is the operator's: it may itself be a link.
  const int root = open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return absl::FailedPreconditionError("the server's data root cannot be read");
  const std::string path(relative);
  std::optional<Opened> opened;
  if (resolver_ == Resolver::kAuto) opened = OpenBeneath(root, path);
  if (!opened.has_value()) opened = WalkBeneath(root, path);
  close(root);
  switch (opened->error) {
    case 0:
      break;
    case ELOOP:
      return ThroughLink(relative);
    case EXDEV:
      return OutsideRoot(Quoted(relative), "it leads out of the root");
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(absl::StrCat("no such file: ", Quoted(relative)));
    case EISDIR:
      return absl::InvalidArgumentError(absl::StrCat(Quoted(relative), " is not a regular file"));
    default:
      return absl::PermissionDeniedError(absl::StrCat("cannot open ", Quoted(relative)));
  }
  const int fd = opened->fd;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat(Quoted(relative), " is not a regular file"));
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
