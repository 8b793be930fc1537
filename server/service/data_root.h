// DataRoot: the directory below which OpenDataset (and every later import or export) may
// touch files. It promises that a request reaches nothing outside it, even while someone
// renames directories or swaps them for symbolic links below the root: paths are resolved by
// the kernel from a descriptor of the root (openat2 with RESOLVE_BENEATH and
// RESOLVE_NO_SYMLINKS), or, on kernels without openat2, one component at a time with
// O_NOFOLLOW from that descriptor. Absolute paths, ".." components, NUL bytes and symbolic
// links anywhere below the root are PERMISSION_DENIED, and only regular files are opened (a
// FIFO or a device never blocks a thread). Every message names the path as the client gave
// it, never where it lies on the server. The root itself may be a link (the operator's).
#ifndef KILN_SERVER_SERVICE_DATA_ROOT_H_
#define KILN_SERVER_SERVICE_DATA_ROOT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kiln::server {

class DataRoot {
 public:
  // How paths are resolved: kAuto uses openat2 where the kernel has it; kWalk forces the
  // component-by-component walk (tests prove both).
  enum class Resolver { kAuto, kWalk };

  // `root`: "" for a server that reads no files.
  explicit DataRoot(std::string root, Resolver resolver = Resolver::kAuto)
      : root_(std::move(root)), resolver_(resolver) {}

  bool enabled() const { return !root_.empty(); }
  // The contents of `relative`, gunzipped when gzip-compressed, at most `max_bytes`.
  absl::StatusOr<std::string> Read(absl::string_view relative, size_t max_bytes) const;

 private:
  // An open descriptor of the regular file `relative` names below the root.
  absl::StatusOr<int> Open(absl::string_view relative) const;

  const std::string root_;
  const Resolver resolver_;
};

}  // namespace kiln::server

#endif  // KILN_SERVER_SERVICE_DATA_ROOT_H_
