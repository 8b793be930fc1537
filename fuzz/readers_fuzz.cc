// The array readers (NPY, IDX, CSV) on arbitrary bytes: a status, never a crash.
#include <cstdint>

#include "core/io/readers.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  kiln::ScopedMemoryAccount scope(kiln::fuzz::InputAccount());
  // The first byte picks the reader, the rest is the file.
  const absl::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    switch (data[0] % 3) {
      case 0:
        (void)kiln::ParseNpy(bytes, "input.npy");
        break;
      case 1:
        (void)kiln::ParseIdx(bytes, "input.idx");
        break;
      default:
        (void)kiln::ParseCsv(bytes, "input.csv");
        break;
    }
  } catch (const kiln::MemoryExhausted&) {  // a claim over the bound: refused, as the server does
  }
  return 0;
}
