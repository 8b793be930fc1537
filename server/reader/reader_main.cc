// kiln-file-reader: unpacks one Keras file (.keras zip, .weights.h5) for kiln-server, which
// runs it per import so that libzip's and libhdf5's handling of hostile bytes can crash, hang
// or allocate only inside a process that is confined (sandbox.h) and thrown away.
//
//   kiln-file-reader REQUEST_HEX  < file  > reader.ReadResult
//
// Exit 0: the answer was written (it may be the file's error); 2: a bad request; 3: out of
// memory. A signal (SIGSEGV, SIGXCPU, SIGSYS, SIGKILL) means the file crashed or exhausted
// the reader. The server reads nothing else from it.
#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <new>
#include <string>

#include "absl/strings/escaping.h"
#include "server/reader/contents.h"
#include "server/reader/sandbox.h"

namespace {

constexpr int kBadRequest = 2;
constexpr int kOutOfMemory = 3;

bool ReadAll(int fd, std::string& out) {
  struct stat st;
  if (fstat(fd, &st) == 0 && st.st_size > 0) out.reserve(size_t(st.st_size));
  char chunk[1 << 16];
  for (;;) {
    const ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0) return false;
    if (n == 0) return true;
    out.append(chunk, size_t(n));
  }
}

bool WriteAll(int fd, const std::string& data) {
  for (size_t done = 0; done < data.size();) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n <= 0) return false;
    done += size_t(n);
  }
  return true;
}

int Run(int argc, char** argv) {
  kiln::reader::ReadRequest request;
  if (argc != 2 || !request.ParseFromString(absl::HexStringToBytes(argv[1]))) {
    std::fprintf(stderr, "usage: kiln-file-reader REQUEST_HEX < file (run by kiln-server)\n");
    return kBadRequest;
  }
  const std::string limited = kiln::server::LimitProcess(
      {.memory_bytes = request.memory_bytes(), .cpu_seconds = request.cpu_seconds()});
  if (!limited.empty()) {
    std::fprintf(stderr, "kiln-file-reader: %s\n", limited.c_str());
    return kBadRequest;
  }
  std::string bytes;
  if (!ReadAll(STDIN_FILENO, bytes)) return kBadRequest;
  // HDF5 sets itself up (environment, atexit) before the filter forbids what that needs.
  H5open();
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  if (const std::string confined = kiln::server::EnterSandbox(); !confined.empty()) {
    std::fprintf(stderr, "kiln-file-reader: not confined by seccomp: %s\n", confined.c_str());
  }
  const kiln::reader::ReadResult result = kiln::server::ToReadResult(
      kiln::UnpackKerasFile(bytes, static_cast<kiln::v1::KerasFormat>(request.format()),
                            kiln::server::FromReadRequest(request)));
  std::string answer;
  if (!result.SerializeToString(&answer) || !WriteAll(STDOUT_FILENO, answer)) return kBadRequest;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::bad_alloc&) {
    return kOutOfMemory;
  }
}
