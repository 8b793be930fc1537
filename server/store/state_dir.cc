#include "server/store/state_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/store/io_error.h"

namespace kiln::store {
namespace {

// "process 1234 (kiln-server)", from the pid the holder wrote into the lock file.
std::string Holder(int fd) {
  char buffer[32] = {};
  const ssize_t n = ::pread(fd, buffer, sizeof(buffer) - 1, 0);
  std::string pid = n > 0 ? std::string(absl::StripAsciiWhitespace(buffer)) : "";
  if (pid.empty()) return "another process";
  std::ifstream comm(absl::StrCat("/proc/", pid, "/comm"));
  std::string name;
  std::getline(comm, name);
  return name.empty() ? absl::StrCat("process ", pid)
                      : absl::StrCat("process ", pid, " (", name, ")");
}

}  // namespace

absl::StatusOr<std::unique_ptr<StateDir>> StateDir::Open(const std::string& path) {
  std::error_code error;
  std::filesystem::create_directories(path + "/tensors", error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("cannot create the state directory ", path, ": ", error.message()));
  }
  const std::string lock_path = path + "/LOCK";
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return IoError(errno, absl::StrCat("opening ", lock_path));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int flock_error = errno;
    const std::string holder = Holder(fd);
    ::close(fd);
    if (flock_error == EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          absl::StrCat("the state directory ", path, " is in use by ", holder,
                       "; stop it, or give this server another --state_dir"));
    }
    return IoError(flock_error, absl::StrCat("locking ", lock_path));
  }
  const std::string pid = absl::StrCat(::getpid(), "\n");
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) != ssize_t(pid.size())) {
    const int write_error = errno;
    ::close(fd);
    return IoError(write_error, absl::StrCat("writing ", lock_path));
  }
  auto dir = std::unique_ptr<StateDir>(new StateDir(path, fd));
  dir->KeepReserve();
  return dir;
}

StateDir::~StateDir() { ::close(lock_fd_); }

namespace {

constexpr off_t kReserveBytes = off_t{8} << 20;

}  // namespace

bool StateDir::ReleaseReserve() { return ::unlink((path_ + "/RESERVE").c_str()) == 0; }

void StateDir::KeepReserve() {
  const std::string reserve = path_ + "/RESERVE";
  struct stat st;
  if (::stat(reserve.c_str(), &st) == 0 && st.st_size == kReserveBytes) return;
  const std::string temporary = reserve + ".tmp";
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return;
  // Blocks really allocated (a sparse file would free nothing).
  const bool kept = ::posix_fallocate(fd, 0, kReserveBytes) == 0 && ::fsync(fd) == 0;
  ::close(fd);
  if (!kept || ::rename(temporary.c_str(), reserve.c_str()) != 0) ::unlink(temporary.c_str());
}

}  // namespace kiln::store
