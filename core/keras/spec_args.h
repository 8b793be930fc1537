// SpecArgs: the Keras arguments of one API message (a layer, initializer, regularizer,
// constraint or optimizer message), read with their Keras defaults and checked against the
// facts their KerasArg options state (kiln/v1/options.proto). The defaults, ranges and
// allowed values are written once, in the proto; no caller repeats them.
//
// Readers take the argument's field name; asking for a field the message does not have, or
// with the wrong type, is a programming error (KILN_CHECK). Values are those the client set,
// else the option's default; Validate() first, so that readers see only valid values.
#ifndef KILN_CORE_KERAS_SPEC_ARGS_H_
#define KILN_CORE_KERAS_SPEC_ARGS_H_

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "nlohmann/json.hpp"

namespace kiln {

class SpecArgs {
 public:
  // `path` is where the message is in the request, for errors ("depthwise_conv2d"); the
  // message must outlive this object.
  SpecArgs(const google::protobuf::Message& message, std::string path);

  // Every field against its option: required ones present, strings among `allowed`, numbers
  // finite and in range, tuples of 1 or `tuple` positive (or non-negative) values. Errors are
  // INVALID_ARGUMENT at the field's path, in Keras's wording where the option gives it.
  absl::Status Validate() const;

  // Whether the client gave a value (a set optional or message field, a non-empty string or
  // repeated field, a non-zero plain number).
  bool Has(absl::string_view field) const;

  int64_t Int(absl::string_view field) const;
  double Float(absl::string_view field) const;
  bool Bool(absl::string_view field) const;
  // Lower-cased for fields with allowed values (Keras compares them case-insensitively).
  std::string String(absl::string_view field) const;
  // A number whose Keras default is None: unset gives nullopt.
  std::optional<double> OptionalFloat(absl::string_view field) const;
  // A repeated number field, or its default; empty for a null default.
  std::vector<int64_t> Ints(absl::string_view field) const;
  // A tuple field (option `tuple: 2`) standardised to two values; nullopt for an unset field
  // whose Keras default is None.
  std::optional<std::array<int, 2>> Pair(absl::string_view field) const;

  // "depthwise_conv2d.strides".
  std::string Path(absl::string_view field) const;
  const google::protobuf::Message& message() const { return message_; }

 private:
  const google::protobuf::FieldDescriptor* Field(absl::string_view name) const;
  bool HasValue(const google::protobuf::FieldDescriptor* field) const;
  absl::Status CheckField(const google::protobuf::FieldDescriptor* field) const;

  const google::protobuf::Message& message_;
  const std::string path_;
};

// The Keras default of `field` (its KerasArg option's JSON); null when it has none.
nlohmann::json KerasDefault(const google::protobuf::FieldDescriptor* field);

// Sets every unset field of `message` whose Keras default is a value (not null) to that value,
// so that readers of the result need no defaults: numbers, strings and repeated numbers
// (message fields are left alone); and lower-cases strings with allowed values. For a
// validated message.
void FillKerasDefaults(google::protobuf::Message& message);

}  // namespace kiln

#endif  // KILN_CORE_KERAS_SPEC_ARGS_H_
