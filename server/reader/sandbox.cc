#include "server/reader/sandbox.h"

#include <seccomp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define KILN_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define KILN_SANITIZED 1
#endif
#endif

namespace kiln::server {
namespace {

std::string Failed(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

bool SetLimit(int resource, rlim_t value) {
  const rlimit limit{value, value};
  return setrlimit(resource, &limit) == 0;
}

}  // namespace

std::string LimitProcess(const SandboxLimits& limits) {
  if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0) {
    for (int fd = 3; fd < 1024; ++fd) close(fd);  // kernels before 5.9
  }
#ifndef KILN_SANITIZED
  if (limits.memory_bytes > 0 && !SetLimit(RLIMIT_AS, rlim_t(limits.memory_bytes))) {
    return Failed("RLIMIT_AS");
  }
#endif
  if (limits.cpu_seconds > 0 && !SetLimit(RLIMIT_CPU, rlim_t(limits.cpu_seconds))) {
    return Failed("RLIMIT_CPU");
  }
  if (!SetLimit(RLIMIT_FSIZE, 0) || !SetLimit(RLIMIT_CORE, 0) || !SetLimit(RLIMIT_NOFILE, 8)) {
    return Failed("setrlimit");
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return Failed("PR_SET_NO_NEW_PRIVS");
  // HDF5 asks for the working directory (to name the file it reads from memory): "/" tells
  // nothing of the server's.
  if (chdir("/") != 0) return Failed("chdir");
  return "";
}

bool SandboxIsEnforced() {
#ifdef KILN_SANITIZED
  return false;
#else
  return true;
#endif
}

std::string EnterSandbox() {
#ifdef KILN_SANITIZED
  return "";
#else
  // Anything not named below fails with EPERM: a call glibc or libhdf5 makes on a path the
  // tests never took fails like a refused permission rather than killing a valid import.
  scmp_filter_ctx filter = seccomp_init(SCMP_ACT_ERRNO(EPERM));
  if (filter == nullptr) return "seccomp_init failed";
  const auto add = [&](uint32_t action, int call, unsigned args = 0, scmp_arg_cmp arg = {}) {
    return args == 0 ? seccomp_rule_add(filter, action, call, 0)
                     : seccomp_rule_add(filter, action, call, 1, arg);
  };
  int failed = 0;
  // What reading memory with libzip and libhdf5 and writing protobuf to a pipe needs; glibc's
  // allocator, abort() and C++ exceptions included.
  for (int call : {SCMP_SYS(read),          SCMP_SYS(write),
                   SCMP_SYS(writev),        SCMP_SYS(close),
                   SCMP_SYS(fstat),         SCMP_SYS(newfstatat),
                   SCMP_SYS(lseek),         SCMP_SYS(mmap),
                   SCMP_SYS(munmap),        SCMP_SYS(mremap),
                   SCMP_SYS(brk),           SCMP_SYS(madvise),
                   SCMP_SYS(mprotect),      SCMP_SYS(futex),
                   SCMP_SYS(clock_gettime), SCMP_SYS(gettimeofday),
                   SCMP_SYS(getrandom),     SCMP_SYS(getpid),
                   SCMP_SYS(gettid),        SCMP_SYS(rt_sigprocmask),
                   SCMP_SYS(rt_sigaction),  SCMP_SYS(rt_sigreturn),
                   SCMP_SYS(getcwd),        SCMP_SYS(exit),
                   SCMP_SYS(exit_group)}) {
    failed |= add(SCMP_ACT_ALLOW, call);
  }
  // abort() signals itself; no other process may be signalled (the server is one).
  failed |= add(SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1, SCMP_A0(SCMP_CMP_EQ, uint64_t(getpid())));
  // HDF5 looks for the file by name even when it opens an image in memory: it finds none.
  for (int call : {SCMP_SYS(open), SCMP_SYS(openat), SCMP_SYS(access), SCMP_SYS(faccessat),
                   SCMP_SYS(stat), SCMP_SYS(lstat), SCMP_SYS(statx)}) {
    failed |= add(SCMP_ACT_ERRNO(ENOENT), call);
  }
  // What only a subverted reader would try ends it at once.
  for (int call : {SCMP_SYS(execve), SCMP_SYS(execveat), SCMP_SYS(fork), SCMP_SYS(vfork),
                   SCMP_SYS(clone), SCMP_SYS(clone3), SCMP_SYS(socket), SCMP_SYS(connect),
                   SCMP_SYS(ptrace), SCMP_SYS(kill), SCMP_SYS(process_vm_writev)}) {
    failed |= add(SCMP_ACT_KILL_PROCESS, call);
  }
  if (failed != 0) {
    seccomp_release(filter);
    return "seccomp_rule_add failed";
  }
  const int loaded = seccomp_load(filter);
  seccomp_release(filter);
  if (loaded != 0) return std::string("seccomp_load: ") + std::strerror(-loaded);
  return "";
#endif
}

}  // namespace kiln::server
