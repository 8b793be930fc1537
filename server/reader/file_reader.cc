#include "server/reader/file_reader.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/base/status.h"
#include "server/reader/contents.h"

namespace kiln::server {
namespace {

constexpr int kOutOfMemory = 3;  // reader_main.cc's exit codes
constexpr absl::string_view kDamaged = "the file is damaged or not a Keras file";

absl::Status CannotRun(absl::string_view what) {
  return absl::InternalError(absl::StrCat("kiln-file-reader cannot be run (", what, ": ",
                                          std::strerror(errno),
                                          "); it is installed beside kiln-server"));
}

std::string SignalName(int signal) {
  const char* name = sigabbrev_np(signal);
  return name == nullptr ? absl::StrCat("signal ", signal) : absl::StrCat("SIG", name);
}

bool WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(size_t(n));
  }
  return true;
}

// A descriptor closed when it goes out of scope.
struct Fd {
  int fd = -1;
  ~Fd() { Close(); }
  void Close() {
    if (fd >= 0) close(fd);
    fd = -1;
  }
};

}  // namespace

std::string DefaultFileReaderPath() {
  char self[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return "kiln-file-reader";
  std::string path(self, size_t(n));
  return absl::StrCat(path.substr(0, path.rfind('/') + 1), "kiln-file-reader");
}

absl::StatusOr<KerasFileContents> UnpackInReader(absl::string_view bytes, v1::KerasFormat format,
                                                 const KerasReadOptions& read,
                                                 const FileReaderOptions& options,
                                                 const std::function<bool()>& cancelled) {
  // The file: a sealed in-memory file the reader reads as its standard input.
  Fd input{memfd_create("kiln-keras-file", MFD_CLOEXEC)};
  if (input.fd < 0) return CannotRun("memfd_create");
  if (!WriteAll(input.fd, bytes) || lseek(input.fd, 0, SEEK_SET) != 0) {
    return absl::ResourceExhaustedError("the server could not hold the file for its reader");
  }
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return CannotRun("pipe2");
  Fd out{out_pipe[0]}, out_child{out_pipe[1]};
  if (pipe2(err_pipe, O_CLOEXEC) != 0) return CannotRun("pipe2");
  Fd err{err_pipe[0]}, err_child{err_pipe[1]};

  reader::ReadRequest request = ToReadRequest(format, read);
  request.set_memory_bytes(options.memory_bytes);
  request.set_cpu_seconds(std::max<int64_t>(1, absl::ToInt64Seconds(options.timeout)));
  std::string argument = absl::BytesToHexString(request.SerializeAsString());
  std::string path = options.path;
  // Sanitizer builds of the reader take their memory bound here (they cannot limit their
  // address space); a plain build ignores these.
  const int64_t megabytes = std::max<int64_t>(64, options.memory_bytes >> 20);
  std::string asan =
      absl::StrCat("ASAN_OPTIONS=hard_rss_limit_mb=", megabytes, ":malloc_limit_mb=", megabytes,
                   ":allocator_may_return_null=1:detect_leaks=0");
  char* argv[] = {path.data(), argument.data(), nullptr};
  char* envp[] = {asan.data(), nullptr};  // nothing of the server's environment

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, input.fd, STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out_child.fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_child.fd, STDERR_FILENO);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setsigdefault(&attributes, &all);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  const int spawned = posix_spawn(&pid, path.c_str(), &actions, &attributes, argv, envp);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (spawned != 0) {
    errno = spawned;
    return CannotRun(path);
  }
  input.Close();
  out_child.Close();
  err_child.Close();

  // The answer holds at most the file's unpacked bytes and its weights, encoded.
  const int64_t max_answer = read.max_bytes + 4 * read.max_elements + (int64_t{16} << 20);
  std::string answer, diagnostics;
  enum class Stop { kNone, kTimeout, kCancelled, kTooLarge } stop = Stop::kNone;
  const absl::Time deadline = absl::Now() + options.timeout;
  std::vector<char> chunk(1 << 16);
  while (out.fd >= 0 || err.fd >= 0) {
    if (stop == Stop::kNone) {
      if (cancelled && cancelled()) stop = Stop::kCancelled;
      if (absl::Now() > deadline) stop = Stop::kTimeout;
      if (int64_t(answer.size()) > max_answer) stop = Stop::kTooLarge;
      if (stop != Stop::kNone) kill(pid, SIGKILL);
    }
    pollfd fds[2] = {{out.fd, POLLIN, 0}, {err.fd, POLLIN, 0}};
    if (poll(fds, 2, 50) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = ::read(fds[i].fd, chunk.data(), chunk.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        (i == 0 ? out : err).Close();
      } else if (i == 0) {
        answer.append(chunk.data(), size_t(n));
      } else if (diagnostics.size() < 4096) {
        diagnostics.append(chunk.data(), size_t(n));
      }
    }
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }

  switch (stop) {
    case Stop::kCancelled:
      return absl::CancelledError("the call was cancelled while its file was read");
    case Stop::kTimeout:
      return absl::InvalidArgumentError(
          absl::StrCat("reading the file took longer than --file_reader_timeout (",
                       absl::FormatDuration(options.timeout), "); ", kDamaged));
    case Stop::kTooLarge:
      return absl::ResourceExhaustedError(
          "the file unpacks to more than the server's limits allow (--max_model_parameters)");
    case Stop::kNone:
      break;
  }
  if (WIFSIGNALED(status)) {
    const int signal = WTERMSIG(status);
    if (signal == SIGXCPU || signal == SIGKILL) {
      return absl::InvalidArgumentError(
          absl::StrCat("reading the file took more than --file_reader_timeout (",
                       absl::FormatDuration(options.timeout), ") of CPU time; ", kDamaged));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("the file could not be read: its parser ",
                     signal == SIGSYS ? "tried something its sandbox forbids"
                                      : absl::StrCat("crashed (", SignalName(signal), ")"),
                     "; ", kDamaged));
  }
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code == kOutOfMemory) {
    return absl::ResourceExhaustedError(
        absl::StrCat("reading the file needs more memory than --file_reader_memory (",
                     options.memory_bytes, " bytes)"));
  }
  reader::ReadResult result;
  if (code != 0 || !result.ParseFromString(answer)) {
    return absl::InvalidArgumentError(absl::StrCat("the file could not be read: its parser ",
                                                   "stopped (exit ", code, "); ", kDamaged));
  }
  return FromReadResult(result, read);
}

absl::StatusOr<KerasFile> ReadUntrustedKerasFile(absl::string_view bytes, v1::KerasFormat format,
                                                 const KerasReadOptions& read,
                                                 const FileReaderOptions& options,
                                                 const std::function<bool()>& cancelled) {
  if (format == v1::KERAS_FORMAT_UNSPECIFIED) format = DetectKerasFormat(bytes);
  if (format == v1::KERAS_FORMAT_JSON) return ReadKerasFile(bytes, format, read);
  KILN_ASSIGN_OR_RETURN(KerasFileContents contents,
                        UnpackInReader(bytes, format, read, options, cancelled));
  return InterpretKerasFile(std::move(contents), read);
}

}  // namespace kiln::server
