#include "core/io/npy_writer.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace kiln {
namespace {

absl::string_view NpyDescr(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "<f4";
    case DType::kInt32:
      return "<i4";
    case DType::kInt64:
      return "<i8";
    case DType::kUInt8:
      return "|u1";
  }
  return "";
}

}  // namespace

std::string FormatNpy(DType dtype, absl::Span<const int64_t> shape, absl::string_view data) {
  // numpy writes a 1-tuple as "(n,)".
  const std::string dims = absl::StrCat(absl::StrJoin(shape, ", "), shape.size() == 1 ? "," : "");
  std::string header = absl::StrCat("{'descr': '", NpyDescr(dtype),
                                    "', 'fortran_order': False, 'shape': (", dims, "), }");
  // The magic, version and header length take 10 bytes; the header ends in '\n' and pads the
  // whole preamble to a multiple of 64.
  const size_t padded = (10 + header.size() + 1 + 63) / 64 * 64 - 10;
  header.resize(padded - 1, ' ');
  header.push_back('\n');
  const char preamble[10] = {'\x93',
                             'N',
                             'U',
                             'M',
                             'P',
                             'Y',
                             1,
                             0,
                             static_cast<char>(header.size() & 0xff),
                             static_cast<char>(header.size() >> 8)};
  return absl::StrCat(absl::string_view(preamble, sizeof(preamble)), header, data);
}

}  // namespace kiln
