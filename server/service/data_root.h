// DataRoot: the directory below which OpenDataset (and every later import or export) may
// touch files. It promises that a request reaches nothing outside it: absolute paths, ".."
// components, NUL bytes and symlinks that lead out are PERMISSION_DENIED, and only regular
// files are opened (a FIFO or a device never blocks a thread). Every message names the path
// as the client gave it, never where it lies on the server.
#ifndef KILN_SERVER_SERVICE_DATA_ROOT_H_
#define KILN_SERVER_SERVICE_DATA_ROOT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kiln::server {

class DataRoot {
 public:
  // `root`: "" for a server that reads no files.
  explicit DataRoot(std::string root) : root_(std::move(root)) {}

  bool enabled() const { return !root_.empty(); }
  // The contents of `relative`, gunzipped when gzip-compressed, at most `max_bytes`.
  absl::StatusOr<std::string> Read(absl::string_view relative, size_t max_bytes) const;

 private:
  // An open descriptor of the regular file `relative` names below the root.
  absl::StatusOr<int> Open(absl::string_view relative) const;

  const std::string root_;
};

}  // namespace kiln::server

#endif  // KILN_SERVER_SERVICE_DATA_ROOT_H_
