// Ctrl-C in the kiln CLI. SIGINT is taken by a thread of its own (sigwait), never by a signal
// handler, so that what it does may call the server. While an OnInterrupt is alive (a command
// follows a job), the first Ctrl-C runs its action (cancel the job) and a second one exits at
// once with status 130; at any other time Ctrl-C exits at once with 130, as it would anyway.
#ifndef KILN_CLIENT_CLI_INTERRUPT_H_
#define KILN_CLIENT_CLI_INTERRUPT_H_

#include <functional>

namespace kiln::cli {

// Blocks SIGINT and starts the thread that takes it. Must run before any other thread starts
// (gRPC's included), so that every thread inherits the blocked signal.
void InstallInterruptHandler();

class OnInterrupt {
 public:
  // `action` runs, on a thread of its own, at the first Ctrl-C while this object lives; a second
  // Ctrl-C exits at once even while it runs.
  explicit OnInterrupt(std::function<void()> action);
  // Waits for a running action to end.
  ~OnInterrupt();
  OnInterrupt(const OnInterrupt&) = delete;
  OnInterrupt& operator=(const OnInterrupt&) = delete;

  // Whether Ctrl-C was pressed while this object lived.
  bool interrupted() const;
};

}  // namespace kiln::cli

#endif  // KILN_CLIENT_CLI_INTERRUPT_H_
