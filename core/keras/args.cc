#include "core/keras/args.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/status.h"

namespace kiln {

absl::StatusOr<std::array<int, 2>> StandardizePair(const IntList& values, absl::string_view path,
                                                   absl::string_view arg_name, bool allow_zero,
                                                   const std::array<int, 2>* default_value) {
  if (values.empty()) {
    if (default_value != nullptr) return *default_value;
    return FieldError(path, absl::StrCat("Missing required argument `", arg_name,
                                         "`: a list of 1 or 2 integers."));
  }
  // Keras prints an int as itself and a list in brackets.
  const std::string received = values.size() == 1
                                   ? absl::StrCat(values[0])
                                   : absl::StrCat("[", absl::StrJoin(values, ", "), "]");
  std::string message =
      absl::StrCat("The `", arg_name, "` argument must be a tuple of 2 integers. ", "Received ",
                   arg_name, "=", received);
  if (values.size() > 2) return FieldError(path, message);
  std::array<int, 2> pair = {values[0], values[values.size() == 1 ? 0 : 1]};
  std::set<int> bad;
  for (int v : pair) {
    if (allow_zero ? v < 0 : v <= 0) bad.insert(v);
  }
  if (!bad.empty()) {
    absl::StrAppend(&message, ", including values {", absl::StrJoin(bad, ", "),
                    "} that do not satisfy `value ", allow_zero ? ">= 0" : "> 0", "`");
    return FieldError(path, message);
  }
  return pair;
}

Padding ParsePadding(absl::string_view validated) {
  return validated == "same" ? Padding::kSame : Padding::kValid;
}

DataFormat ParseDataFormat(absl::string_view validated) {
  return validated == "channels_first" ? DataFormat::kChannelsFirst : DataFormat::kChannelsLast;
}

absl::string_view PaddingName(Padding padding) {
  return padding == Padding::kValid ? "valid" : "same";
}

absl::string_view DataFormatName(DataFormat format) {
  return format == DataFormat::kChannelsLast ? "channels_last" : "channels_first";
}

int64_t ConvOutputLength(int64_t length, int kernel, int stride, int dilation, Padding padding) {
  if (padding == Padding::kSame) return (length + stride - 1) / stride;
  const int64_t effective = int64_t{dilation} * (kernel - 1) + 1;
  const int64_t span = length - effective;
  // Python floor division: a negative span gives a length <= 0, which callers reject.
  const int64_t q = span >= 0 ? span / stride : -((-span + stride - 1) / stride);
  return q + 1;
}

std::array<int64_t, 2> SamePadding(int64_t length, int kernel, int stride, int dilation,
                                   Padding padding) {
  if (padding == Padding::kValid) return {0, 0};
  const int64_t out = (length + stride - 1) / stride;
  const int64_t effective = int64_t{dilation} * (kernel - 1) + 1;
  const int64_t total = std::max<int64_t>((out - 1) * stride + effective - length, 0);
  return {total / 2, total - total / 2};
}

std::string PairRepr(const std::array<int, 2>& pair) {
  return absl::StrCat("(", pair[0], ", ", pair[1], ")");
}

}  // namespace kiln
