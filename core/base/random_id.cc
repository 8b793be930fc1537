#include "core/base/random_id.h"

#include <sys/random.h>

#include <cerrno>
#include <vector>

#include "absl/strings/escaping.h"
#include "core/base/check.h"

namespace kiln {

std::string RandomHex(int bytes) {
  std::vector<unsigned char> buffer(bytes);
  size_t filled = 0;
  while (filled < buffer.size()) {
    const ssize_t n = getrandom(buffer.data() + filled, buffer.size() - filled, 0);
    if (n < 0 && errno == EINTR) continue;
    KILN_CHECK(n > 0) << "getrandom failed";
    filled += size_t(n);
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(buffer.data()), buffer.size()));
}

}  // namespace kiln
