// Loading stored state: a tensor file with any contents (truncated, flipped, forged headers)
// is read back or answers DATA_LOSS; a stored op record with any contents parses or not.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_util.h"
#include "server/store/records.pb.h"
#include "server/store/tensor_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = absl::StrCat("/tmp/kiln-fuzz-state-", getpid(), ".kt");
  kiln::ScopedMemoryAccount scope(kiln::fuzz::InputAccount());
  try {
    FILE* file = std::fopen(path.c_str(), "wb");
    if (file == nullptr) return 0;
    std::fwrite(data, 1, size, file);
    std::fclose(file);
    absl::StatusOr<std::vector<kiln::store::NamedTensor>> tensors =
        kiln::store::ReadTensorFile(path);
    if (!tensors.ok() && tensors.status().code() != absl::StatusCode::kDataLoss) __builtin_trap();
    kiln::store::OpRecord op;
    (void)op.ParseFromArray(data, static_cast<int>(size));
    kiln::store::SessionRecord session;
    (void)session.ParseFromArray(data, static_cast<int>(size));
  } catch (const kiln::MemoryExhausted&) {
  }
  return 0;
}
