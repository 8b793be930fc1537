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
};

InterruptState& State() {
  static InterruptState* const state = new InterruptState;  // never destroyed: the thread
  return *state;                                            // may outlive main()
}

void TakeSignals(sigset_t signals) {
  for (;;) {
    int signal = 0;
    if (sigwait(&signals, &signal) != 0) continue;
    std::function<void()> action;
    {
      InterruptState& state = State();
      absl::MutexLock lock(&state.mu);
      if (state.action && !state.interrupted) {
        state.interrupted = true;
        action = state.action;
      }
    }
    if (!action) {
      std::fflush(stdout);
      std::fputs("\n", stderr);
      _exit(130);
    }
    action();
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
}

bool OnInterrupt::interrupted() const {
  InterruptState& state = State();
  absl::MutexLock lock(&state.mu);
  return state.interrupted;
}

}  // namespace kiln::cli
