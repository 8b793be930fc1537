// The confinement kiln-file-reader puts itself in before it reads a byte of the file: every
// descriptor but its standard three closed, resource limits (address space, CPU time, no file
// writes, no core dumps, few descriptors), no new privileges, and a seccomp filter that lets it
// read its input, write its answer, manage memory, signal itself and exit: opening files finds
// none, starting programs or processes, sockets and signalling others kill it (SIGSYS), and
// anything else fails with EPERM.
// Sanitizer builds keep their shadow memory and reports: they skip the address-space limit and
// the filter (the server bounds their memory through ASAN_OPTIONS).
#ifndef KILN_SERVER_READER_SANDBOX_H_
#define KILN_SERVER_READER_SANDBOX_H_

#include <cstdint>
#include <string>

namespace kiln::server {

struct SandboxLimits {
  int64_t memory_bytes = 0;  // address space; 0: unlimited
  int64_t cpu_seconds = 0;   // 0: unlimited
};

// Closes descriptors above 2 and applies the limits; the filter comes with EnterSandbox.
// Returns "" or what failed.
std::string LimitProcess(const SandboxLimits& limits);

// The seccomp filter; from here on the process can only compute, read and write its open
// descriptors, and exit. Returns "" or what failed (a kernel without seccomp).
std::string EnterSandbox();

// False in sanitizer builds, where EnterSandbox installs no filter and LimitProcess sets no
// address-space limit (the sanitizers reserve terabytes of address space).
bool SandboxIsEnforced();

}  // namespace kiln::server

#endif  // KILN_SERVER_READER_SANDBOX_H_
