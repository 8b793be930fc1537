// Keras's argument standardisation (keras/src/utils/argument_validation.py) with Keras 3's
// error wording, and the shape arithmetic of its convolution and pooling windows.
#ifndef KILN_CORE_KERAS_ARGS_H_
#define KILN_CORE_KERAS_ARGS_H_

#include <array>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/repeated_field.h"

namespace kiln {

enum class Padding { kValid, kSame };
enum class DataFormat { kChannelsLast, kChannelsFirst };

using IntList = google::protobuf::RepeatedField<int32_t>;

// Keras standardize_tuple for a spatial-2D argument: one value (repeated) or two values.
// An empty field gives `default_value`, or an error when the argument is required
// (default_value absent). allow_zero admits 0 (never negative values).
absl::StatusOr<std::array<int, 2>> StandardizePair(const IntList& values, absl::string_view path,
                                                   absl::string_view arg_name, bool allow_zero,
                                                   const std::array<int, 2>* default_value);

// A `padding` or `data_format` argument that SpecArgs validated (lower case, one of the
// allowed values).
Padding ParsePadding(absl::string_view validated);
DataFormat ParseDataFormat(absl::string_view validated);

absl::string_view PaddingName(Padding padding);
absl::string_view DataFormatName(DataFormat format);

// Output length of a convolution or pooling window along one axis, Keras's formula
// (compute_conv_output_shape): valid floor((L - d*(k-1) - 1)/s) + 1, same ceil(L/s).
int64_t ConvOutputLength(int64_t length, int kernel, int stride, int dilation, Padding padding);

// TF-style "same" padding split: (before, after) with the odd pixel after. Zero for valid.
std::array<int64_t, 2> SamePadding(int64_t length, int kernel, int stride, int dilation,
                                   Padding padding);

// Python's repr of a 2-tuple: "(3, 3)".
std::string PairRepr(const std::array<int, 2>& pair);

}  // namespace kiln

#endif  // KILN_CORE_KERAS_ARGS_H_
