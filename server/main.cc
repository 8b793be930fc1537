// kiln-server: serves the Kiln API over gRPC until SIGINT or SIGTERM, then shuts down
// gracefully (see KilnServer::Shutdown).
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "server/grpc/server.h"
#include "server/service/authenticator.h"
#include "server/service/server_flags.h"

namespace {

// Past --shutdown_grace, the time jobs get to write their last checkpoint and the store to
// close.
constexpr absl::Duration kShutdownSlack = absl::Seconds(3);

// The token comes from stdin, so that it stays out of the shell's history and `ps`.
int PrintTokenLine(const std::string& tenant) {
  std::string token;
  std::getline(std::cin, token);
  absl::StatusOr<std::string> line =
      kiln::server::TokenFileLine(tenant, absl::StripAsciiWhitespace(token));
  if (!line.ok()) {
    std::fprintf(stderr, "kiln-server: --hash_token: %s\n",
                 std::string(line.status().message()).c_str());
    return 2;
  }
  std::printf("%s\n", line->c_str());
  return 0;
}

}  // namespace

// `port` into STATE_DIR/port, whole or not at all.
absl::Status WritePortFile(const std::string& state_dir, int port) {
  const std::string port_file = absl::StrCat(state_dir, "/port");
  const std::string temporary = absl::StrCat(port_file, ".tmp");
  std::error_code error;
  std::filesystem::create_directories(state_dir, error);
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << port << "\n";
    out.flush();
    if (out.good() && std::rename(temporary.c_str(), port_file.c_str()) == 0) {
      return absl::OkStatus();
    }
  }
  const int cause = errno;
  std::filesystem::remove(temporary, error);
  return absl::UnavailableError(absl::StrCat("cannot write the port file ", port_file, ": ",
                                             std::strerror(cause),
                                             " (is the state directory's disk full?)"));
}

int main(int argc, char** argv) {
  absl::StatusOr<kiln::server::ServerCommandLine> command_line =
      kiln::server::ParseServerCommandLine(std::vector<std::string>(argv + 1, argv + argc),
                                           [](const char* name) { return std::getenv(name); });
  if (!command_line.ok()) {
    std::fprintf(stderr, "kiln-server: %s\n", std::string(command_line.status().message()).c_str());
    return 2;
  }
  using Action = kiln::server::ServerCommandLine::Action;
  switch (command_line->action) {
    case Action::kHelp:
      std::printf("%s", kiln::server::ServerFlagsHelp().c_str());
      return 0;
    case Action::kVersion:
      std::printf("kiln-server %s\n", KILN_VERSION);
      return 0;
    case Action::kFlagsMarkdown:
      std::printf("%s", kiln::server::ServerFlagsMarkdown().c_str());
      return 0;
    case Action::kHashToken:
      return PrintTokenLine(command_line->hash_token_tenant);
    case Action::kServe:
      break;
  }
  const kiln::server::ServerOptions& options = command_line->options;
  const bool state_dir_given = command_line->state_dir_given;

  // Signals are taken synchronously by a waiting thread, never by a handler.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  kiln::server::KilnServer server(options);
  if (absl::Status status = server.Start(); !status.ok()) {
    std::fprintf(stderr, "kiln-server: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  kiln::server::Logger& log = server.logger();
  log.Info(absl::StrCat("listening on port ", server.port(), "; ", server.security_summary(), "; ",
                        server.state_summary()));
  log.Info(server.compute_summary());
  log.Info(server.memory_summary());
  if (server.http_port() != 0) {
    log.Info(absl::StrCat("HTTP on port ", server.http_port(),
                          ": the API by Connect, job events, /metrics, /healthz, /readyz",
                          options.web_root.empty() ? "" : ", the card editor at /"));
  }
  if (!options.ephemeral || state_dir_given) {
    // Written then renamed, so that a watcher never reads a half-written port. A port that
    // cannot be written (a full disk) stops the server: whoever waits for the file would
    // otherwise read an empty one, or an old port.
    if (absl::Status written = WritePortFile(options.state_dir, server.port()); !written.ok()) {
      log.Error(std::string(written.message()));
      server.Shutdown(absl::ZeroDuration());
      return 1;
    }
  }

  int signal = 0;
  while (sigwait(&signals, &signal) == 0 && signal == SIGHUP) {
    if (absl::Status reloaded = server.ReloadTokens(); reloaded.ok()) {
      log.Info(absl::StrCat("SIGHUP, tokens re-read: ", server.security_summary()));
    } else {
      log.Warning(absl::StrCat("SIGHUP, tokens kept: ", reloaded.message()));
    }
  }
  log.Info(absl::StrCat(signal == SIGINT ? "SIGINT" : "SIGTERM", ", shutting down"));
  // Work that does not look at cancellation (a long weight initialisation) must not hold the
  // process past the grace: what answered OK is in the store already, so leaving is as safe as
  // a crash, which a restart recovers from.
  std::thread([grace = options.shutdown_grace, &log] {
    absl::SleepFor(grace + kShutdownSlack);
    log.Error(absl::StrCat("still busy ", absl::FormatDuration(grace + kShutdownSlack),
                           " after the signal; exiting now"));
    std::_Exit(1);
  }).detach();
  server.Shutdown(options.shutdown_grace);
  log.Info("stopped");
  return 0;
}
