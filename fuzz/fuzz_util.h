// What the fuzz targets share: a memory account that bounds what one input may allocate (a
// spec may ask for gigabytes; the server refuses that through the same account).
#ifndef KILN_FUZZ_FUZZ_UTIL_H_
#define KILN_FUZZ_FUZZ_UTIL_H_

#include <memory>

#include "core/tensor/memory_account.h"

namespace kiln::fuzz {

inline std::shared_ptr<MemoryAccount> InputAccount() {
  return std::make_shared<MemoryAccount>("the fuzz input", "the fuzz target", int64_t{64} << 20);
}

}  // namespace kiln::fuzz

#endif  // KILN_FUZZ_FUZZ_UTIL_H_
