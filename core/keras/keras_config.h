// Keras configs (what get_config() returns, as model.to_json() and .keras files hold them) to
// and from Kiln's API messages, through the descriptors: a config key is the argument of the
// same name, and the KerasArg options give defaults and forms. One converter serves every
// layer, initializer, regularizer, constraint and optimizer message, so a new layer message
// imports and exports with no code here.
//
// Import is as lenient as Keras 3's own loader: a Keras object may be an identifier string or
// {"class_name", "config"} with or without "module" and "registered_name"; dtype may be a
// string or a DTypePolicy; keys a class's KerasClass option lists under accepted_keys (Keras 2's
// `"groups": 1` on DepthwiseConv2D) are accepted with the value it gives. Every other unknown
// key is INVALID_ARGUMENT in Keras's wording, at the key's JSON path.
#ifndef KILN_CORE_KERAS_KERAS_CONFIG_H_
#define KILN_CORE_KERAS_KERAS_CONFIG_H_

#include <string>

#include "absl/status/status.h"
#include "google/protobuf/message.h"
#include "nlohmann/json.hpp"

namespace kiln {

using Json = nlohmann::ordered_json;

// Fills `message` (of a Keras class) from its Keras `config` dict. `path` is the config's JSON
// path, for errors ("config.layers[2].config").
absl::Status MessageFromKerasConfig(const Json& config, const std::string& path,
                                    google::protobuf::Message& message);

// Sets a Keras object message (Initializer, Regularizer, Constraint, Optimizer) from an
// identifier string or a {"class_name", "config"} object.
absl::Status KerasObjectFromJson(const Json& value, const std::string& path,
                                 google::protobuf::Message& object);

// The Keras 3 config of `message`: every argument, given or defaulted, in field order with
// name, trainable and dtype first, in the forms Keras writes (tuples as lists, dtype as a
// DTypePolicy, initializers as objects, unset regularizers as null). Objects are resolved:
// defaults written out.
Json KerasConfigOf(const google::protobuf::Message& message);

// {"module", "class_name", "config", "registered_name"} of a Keras object message; null for
// an unset one. `object` must be resolved to a class (not a bare name).
Json KerasObjectJson(const google::protobuf::Message& object);

// A JSON path's next step: "a" + "b" = "a.b", "a" + 3 = "a[3]".
std::string JsonPath(const std::string& path, const std::string& key);
std::string JsonPath(const std::string& path, size_t index);

}  // namespace kiln

#endif  // KILN_CORE_KERAS_KERAS_CONFIG_H_
