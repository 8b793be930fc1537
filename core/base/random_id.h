// Identifiers that cannot be guessed: bytes from the kernel's cryptographic random source
// (getrandom(2)), as lowercase hex.
#ifndef KILN_CORE_BASE_RANDOM_ID_H_
#define KILN_CORE_BASE_RANDOM_ID_H_

#include <string>

namespace kiln {

// 2 * `bytes` hex digits.
std::string RandomHex(int bytes);

}  // namespace kiln

#endif  // KILN_CORE_BASE_RANDOM_ID_H_
