// The Keras facts the API's messages state as options (kiln/v1/options.proto), read through
// the descriptors: which Keras class a message stands for, the identifiers Keras accepts for
// it, and each argument's KerasArg. Everything that needs a class name, a default or an
// identifier table (layers, initializers, regularizers, constraints, the catalogue, Keras
// import and export) asks here instead of writing the fact again.
#ifndef KILN_CORE_KERAS_KERAS_CLASS_H_
#define KILN_CORE_KERAS_KERAS_CLASS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "kiln/v1/options.pb.h"

namespace kiln {

// A name Kiln accepts where Keras takes a string (an activation, a loss, a metric), with the
// other names Keras accepts for the same thing and a one-line doc: a catalogue entry.
struct KerasName {
  std::string name;
  std::vector<std::string> aliases;
  std::string doc;
};

// The message's KerasClass option (empty when it has none).
const v1::KerasClass& KerasClassOf(const google::protobuf::Descriptor* message);
// The field's KerasArg option; for a field without one, the option of the field of the same
// name and type in its module's message of shared arguments (CommonLayerArguments for
// keras.layers, CommonOptimizerArguments for keras.optimizers); else an empty one.
const v1::KerasArg& KerasArgOf(const google::protobuf::FieldDescriptor* field);

// The value (JSON, "*": any) that a config key Kiln has no argument for may take on import
// (KerasClass.accepted_keys, the class's own or its module's shared ones); nullopt for a key
// that is not accepted.
std::optional<std::string> AcceptedKeyValue(const google::protobuf::Descriptor* message,
                                            const std::string& key);

// How many tensors a call of the layer class `message` takes (its KerasClass option: 0 means 1;
// max -1, "any number", is kAnyNumberOfInputs).
inline constexpr int kAnyNumberOfInputs = 1 << 20;
struct CallArity {
  int min_inputs, max_inputs;
};
CallArity CallArityOf(const google::protobuf::Descriptor* message);

// Keras's to_snake_case: "DepthwiseConv2D" -> "depthwise_conv2d", "ReLU" -> "re_lu",
// "GlorotUniform" -> "glorot_uniform". Keras's automatic layer names and identifier aliases.
std::string KerasSnakeCase(absl::string_view class_name);

// The identifiers Keras accepts for a class: its class name, that name in snake_case, and the
// option's aliases.
std::vector<std::string> KerasIdentifiers(const google::protobuf::Descriptor* message);

// The field of `oneof` whose message is the Keras class that `identifier` names (exactly, as
// Keras's lookup tables are case-sensitive); null when none does.
const google::protobuf::FieldDescriptor* FindKerasClass(
    const google::protobuf::OneofDescriptor* oneof, absl::string_view identifier);

// Keras objects (Initializer, Regularizer, Constraint, Optimizer): a message whose oneof
// `kind` holds either an identifier (`name`) or one class message.

// The class message `object` holds; null when it holds a name or nothing.
const google::protobuf::Message* KerasObjectClass(const google::protobuf::Message& object);
google::protobuf::Message* MutableKerasObjectClass(google::protobuf::Message& object);
// "<path>.<the oneof field set>" ("dense.kernel_initializer.variance_scaling"), for errors.
std::string KerasObjectPath(const google::protobuf::Message& object, absl::string_view path);
// Sets `object` to the class `identifier` names, with the class defaults; false (and nothing
// changed) when no class has that identifier.
bool SetKerasObjectClass(google::protobuf::Message& object, absl::string_view identifier);

}  // namespace kiln

#endif  // KILN_CORE_KERAS_KERAS_CLASS_H_
