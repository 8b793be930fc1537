#include "core/keras/keras_class.h"

#include <algorithm>
#include <cctype>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "kiln/v1/layers.pb.h"
#include "kiln/v1/training.pb.h"

namespace kiln {

const v1::KerasClass& KerasClassOf(const google::protobuf::Descriptor* message) {
  return message->options().GetExtension(v1::keras_class);
}

namespace {

// The message stating the arguments the classes of `message`'s module share, or null.
const google::protobuf::Descriptor* SharedArgumentsOf(const google::protobuf::Descriptor* message) {
  const std::string& module = KerasClassOf(message).module();
  const google::protobuf::Descriptor* shared = nullptr;
  if (module == "keras.layers") shared = v1::CommonLayerArguments::descriptor();
  if (module == "keras.optimizers") shared = v1::CommonOptimizerArguments::descriptor();
  return shared == message ? nullptr : shared;
}

}  // namespace

const v1::KerasArg& KerasArgOf(const google::protobuf::FieldDescriptor* field) {
  const google::protobuf::FieldOptions& options = field->options();
  if (options.HasExtension(v1::arg)) return options.GetExtension(v1::arg);
  if (const auto* shared = SharedArgumentsOf(field->containing_type())) {
    const google::protobuf::FieldDescriptor* same = shared->FindFieldByName(field->name());
    if (same != nullptr && same->type() == field->type() &&
        same->is_repeated() == field->is_repeated() &&
        same->message_type() == field->message_type()) {
      return same->options().GetExtension(v1::arg);
    }
  }
  return options.GetExtension(v1::arg);
}

std::optional<std::string> AcceptedKeyValue(const google::protobuf::Descriptor* message,
                                            const std::string& key) {
  for (const google::protobuf::Descriptor* d : {message, SharedArgumentsOf(message)}) {
    if (d == nullptr) continue;
    const auto& accepted = KerasClassOf(d).accepted_keys();
    if (auto it = accepted.find(key); it != accepted.end()) return it->second;
  }
  return std::nullopt;
}

CallArity CallArityOf(const google::protobuf::Descriptor* message) {
  const v1::KerasClass& keras = KerasClassOf(message);
  const int min = std::max(1, keras.min_inputs());
  const int max = keras.max_inputs() < 0 ? kAnyNumberOfInputs : std::max(keras.max_inputs(), min);
  return {min, max};
}

std::string KerasSnakeCase(absl::string_view name) {
  // Keras: re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name), then re.sub("([a-z])([A-Z])", r"\1_\2"),
  // then lower(). Both passes are written out on characters.
  auto upper = [](char c) { return std::isupper(static_cast<unsigned char>(c)) != 0; };
  auto lower = [](char c) { return std::islower(static_cast<unsigned char>(c)) != 0; };
  std::string first;
  for (size_t i = 0; i < name.size(); ++i) {
    // An uppercase letter followed by a lowercase one starts a word, unless it comes first.
    if (i > 0 && upper(name[i]) && i + 1 < name.size() && lower(name[i + 1])) first += '_';
    first += name[i];
  }
  std::string out;
  for (size_t i = 0; i < first.size(); ++i) {
    if (i > 0 && lower(first[i - 1]) && upper(first[i])) out += '_';
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(first[i])));
  }
  return out;
}

std::vector<std::string> KerasIdentifiers(const google::protobuf::Descriptor* message) {
  const v1::KerasClass& keras = KerasClassOf(message);
  std::vector<std::string> out = {keras.class_name(), KerasSnakeCase(keras.class_name())};
  out.insert(out.end(), keras.aliases().begin(), keras.aliases().end());
  return out;
}

const google::protobuf::FieldDescriptor* FindKerasClass(
    const google::protobuf::OneofDescriptor* oneof, absl::string_view identifier) {
  for (int i = 0; i < oneof->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* field = oneof->field(i);
    if (field->message_type() == nullptr) continue;
    for (const std::string& id : KerasIdentifiers(field->message_type())) {
      if (id == identifier) return field;
    }
  }
  return nullptr;
}

namespace {

const google::protobuf::OneofDescriptor* KindOf(const google::protobuf::Message& object) {
  const auto* kind = object.GetDescriptor()->FindOneofByName("kind");
  KILN_CHECK(kind != nullptr) << object.GetDescriptor()->full_name() << " is no Keras object";
  return kind;
}

}  // namespace

const google::protobuf::Message* KerasObjectClass(const google::protobuf::Message& object) {
  const auto* field = object.GetReflection()->GetOneofFieldDescriptor(object, KindOf(object));
  if (field == nullptr || field->message_type() == nullptr) return nullptr;
  return &object.GetReflection()->GetMessage(object, field);
}

google::protobuf::Message* MutableKerasObjectClass(google::protobuf::Message& object) {
  const auto* field = object.GetReflection()->GetOneofFieldDescriptor(object, KindOf(object));
  if (field == nullptr || field->message_type() == nullptr) return nullptr;
  return object.GetReflection()->MutableMessage(&object, field);
}

std::string KerasObjectPath(const google::protobuf::Message& object, absl::string_view path) {
  const auto* field = object.GetReflection()->GetOneofFieldDescriptor(object, KindOf(object));
  return field == nullptr ? std::string(path) : absl::StrCat(path, ".", field->name());
}

bool SetKerasObjectClass(google::protobuf::Message& object, absl::string_view identifier) {
  const auto* field = FindKerasClass(KindOf(object), identifier);
  if (field == nullptr) return false;
  object.GetReflection()->MutableMessage(&object, field);
  return true;
}

}  // namespace kiln
