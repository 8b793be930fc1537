#include "client/cli/interrupt.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <thread>

#include "absl/synchronization/mutex.h"

namespace kiln::cli {
namespace {

struct InterruptState {
  absl::Mutex mu;
  std::function<void()> action ABSL_GUARDED_BY(mu);
  bool interrupted ABSL_GUARDED_BY(mu) = false;
  bool running ABSL_GUARDED_BY(mu) = false;  // the action, on a thread of its own
};

InterruptState& State() {
  static InterruptState* const state = new InterruptState;  // never destroyed: the thread
  return *state;                                            // may outlive main()
}

void TakeSignals(sigset_t signals) {
  for (;;) {
    int signal = 0;
    if (sigwait(&signals, &signal) != 0) continue;
    InterruptState& state = State();
    absl::MutexLock lock(&state.mu);
    if (!state.action || state.interrupted) {
      std::fflush(stdout);
      std::fputs("\n", stderr);
      _exit(130);
    }
    state.interrupted = true;
    state.running = true;
    // Not on this thread: a second Ctrl-C must be taken even while the action waits.
    std::thread([&state, action = state.action] {
      action();
      absl::MutexLock lock(&state.mu);
      state.running = false;
    }).detach();
  }
}

}  // namespace

void InstallInterruptHandler() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::thread(TakeSignals, signals).detach();
}

OnInterrupt::OnInterrupt(std::function<void()> action) {
  InterruptState& state = State();
  absl::MutexLock lock(&state.mu);
  state.action = std::move(action);
  state.interrupted = false;
}

OnInterrupt::~OnInterrupt() {
  InterruptState& state = State();
  absl::MutexLock lock(&state.mu);
  state.action = nullptr;
  // What the action uses may go with this object's owner.
  state.mu.Await(absl::Condition(
      +[](InterruptState* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu) { return !s->running; }, &state));
}

bool OnInterrupt::interrupted() const {
  InterruptState& state = State();
  absl::MutexLock lock(&state.mu);
  return state.interrupted;
}

}  // namespace kiln::cli
