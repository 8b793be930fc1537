#include "core/catalogue/catalogue.h"

#include "absl/algorithm/container.h"
#include "absl/strings/str_cat.h"
#include "core/base/closest_match.h"
#include "core/base/status.h"
#include "core/keras/activations.h"
#include "core/keras/keras_class.h"
#include "core/train/loss.h"
#include "core/train/metrics.h"
#include "kiln/v1/layers.pb.h"
#include "kiln/v1/training.pb.h"

namespace kiln {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

v1::ArgumentType TypeOf(const FieldDescriptor* field) {
  const v1::KerasArg& arg = KerasArgOf(field);
  if (field->is_repeated()) return v1::ARGUMENT_TYPE_INT_LIST;
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
      return v1::ARGUMENT_TYPE_INT;
    case FieldDescriptor::CPPTYPE_FLOAT:
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return v1::ARGUMENT_TYPE_FLOAT;
    case FieldDescriptor::CPPTYPE_BOOL:
      return v1::ARGUMENT_TYPE_BOOL;
    case FieldDescriptor::CPPTYPE_STRING:
      return arg.activation() ? v1::ARGUMENT_TYPE_ACTIVATION : v1::ARGUMENT_TYPE_STRING;
    case FieldDescriptor::CPPTYPE_MESSAGE:
      if (field->message_type() == v1::Initializer::descriptor()) {
        return v1::ARGUMENT_TYPE_INITIALIZER;
      }
      if (field->message_type() == v1::Regularizer::descriptor()) {
        return v1::ARGUMENT_TYPE_REGULARIZER;
      }
      if (field->message_type() == v1::Constraint::descriptor()) {
        return v1::ARGUMENT_TYPE_CONSTRAINT;
      }
      break;
    default:
      break;
  }
  return v1::ARGUMENT_TYPE_UNSPECIFIED;
}

v1::ArgumentInfo ArgumentOf(const FieldDescriptor* field) {
  const v1::KerasArg& arg = KerasArgOf(field);
  v1::ArgumentInfo info;
  info.set_name(field->name());
  info.set_json_name(field->json_name());
  info.set_type(TypeOf(field));
  info.set_default_json(arg.default_());
  info.set_required(arg.required());
  info.set_doc(arg.doc());
  *info.mutable_allowed() = arg.allowed();
  if (arg.has_minimum()) info.set_minimum(arg.minimum());
  if (arg.has_maximum()) info.set_maximum(arg.maximum());
  info.set_exclusive_minimum(arg.exclusive_minimum());
  info.set_exclusive_maximum(arg.exclusive_maximum());
  info.set_tuple(arg.tuple());
  return info;
}

// `field` selects the class in its oneof (null for Input).
v1::ClassInfo ClassOf(const Descriptor* message, const FieldDescriptor* field) {
  const v1::KerasClass& keras = KerasClassOf(message);
  v1::ClassInfo info;
  info.set_class_name(keras.class_name());
  info.set_module(keras.module());
  info.set_category(keras.category());
  info.set_doc(keras.doc());
  if (field != nullptr) info.set_field(field->name());
  info.set_message(message->full_name());
  for (std::string& id : KerasIdentifiers(message)) {
    if (!absl::c_linear_search(info.identifiers(), id)) info.add_identifiers(std::move(id));
  }
  for (int i = 0; i < message->field_count(); ++i) {
    *info.add_arguments() = ArgumentOf(message->field(i));
  }
  return info;
}

void AddSockets(v1::ClassInfo& info, const Descriptor* message) {
  const CallArity arity = CallArityOf(message);
  v1::Sockets* sockets = info.mutable_sockets();
  sockets->set_min_inputs(arity.min_inputs);
  sockets->set_max_inputs(arity.max_inputs == kAnyNumberOfInputs ? -1 : arity.max_inputs);
  sockets->set_outputs(1);
}

// Every class message of the oneof `oneof_name` of `holder`.
template <typename Add>
void ForEachClass(const Descriptor* holder, const char* oneof_name, Add add) {
  const auto* oneof = holder->FindOneofByName(oneof_name);
  for (int i = 0; i < oneof->field_count(); ++i) {
    const FieldDescriptor* field = oneof->field(i);
    if (field->message_type() != nullptr) add(ClassOf(field->message_type(), field), field);
  }
}

void AddNames(const std::vector<KerasName>& names,
              google::protobuf::RepeatedPtrField<v1::NamedEntry>* out) {
  for (const KerasName& name : names) {
    v1::NamedEntry* entry = out->Add();
    entry->set_name(name.name);
    for (const std::string& alias : name.aliases) entry->add_aliases(alias);
    entry->set_doc(name.doc);
  }
}

v1::Catalogue Build() {
  v1::Catalogue catalogue;
  *catalogue.mutable_input() = ClassOf(v1::Input::descriptor(), nullptr);
  catalogue.mutable_input()->mutable_sockets()->set_outputs(1);
  ForEachClass(v1::LayerSpec::descriptor(), "layer",
               [&](v1::ClassInfo info, const FieldDescriptor* field) {
                 AddSockets(info, field->message_type());
                 *catalogue.add_layers() = std::move(info);
               });
  ForEachClass(v1::Initializer::descriptor(), "kind",
               [&](v1::ClassInfo info, auto*) { *catalogue.add_initializers() = std::move(info); });
  ForEachClass(v1::Regularizer::descriptor(), "kind",
               [&](v1::ClassInfo info, auto*) { *catalogue.add_regularizers() = std::move(info); });
  ForEachClass(v1::Constraint::descriptor(), "kind",
               [&](v1::ClassInfo info, auto*) { *catalogue.add_constraints() = std::move(info); });
  ForEachClass(v1::Optimizer::descriptor(), "kind",
               [&](v1::ClassInfo info, auto*) { *catalogue.add_optimizers() = std::move(info); });
  AddNames(ActivationNames(), catalogue.mutable_activations());
  AddNames(LossNames(), catalogue.mutable_losses());
  AddNames(MetricNames(), catalogue.mutable_metrics());
  return catalogue;
}

bool Names(const v1::ClassInfo& info, absl::string_view name) {
  return absl::c_linear_search(info.identifiers(), name) || info.field() == name;
}

bool Names(const v1::NamedEntry& entry, absl::string_view name) {
  return entry.name() == name || absl::c_linear_search(entry.aliases(), name);
}

template <typename T>
void CopyMatches(const google::protobuf::RepeatedPtrField<T>& from, absl::string_view name,
                 google::protobuf::RepeatedPtrField<T>* to) {
  for (const T& item : from) {
    if (Names(item, name)) *to->Add() = item;
  }
}

}  // namespace

const v1::Catalogue& FullCatalogue() {
  static const auto* catalogue = new v1::Catalogue(Build());
  return *catalogue;
}

absl::StatusOr<v1::Catalogue> FindInCatalogue(absl::string_view name) {
  const v1::Catalogue& all = FullCatalogue();
  if (name.empty()) return all;
  v1::Catalogue found;
  if (Names(all.input(), name)) *found.mutable_input() = all.input();
  CopyMatches(all.layers(), name, found.mutable_layers());
  CopyMatches(all.initializers(), name, found.mutable_initializers());
  CopyMatches(all.regularizers(), name, found.mutable_regularizers());
  CopyMatches(all.constraints(), name, found.mutable_constraints());
  CopyMatches(all.optimizers(), name, found.mutable_optimizers());
  CopyMatches(all.activations(), name, found.mutable_activations());
  CopyMatches(all.losses(), name, found.mutable_losses());
  CopyMatches(all.metrics(), name, found.mutable_metrics());
  if (found.ByteSizeLong() == 0) {
    std::vector<std::string> names(all.input().identifiers().begin(),
                                   all.input().identifiers().end());
    const auto add_classes = [&names](const auto& classes) {
      for (const v1::ClassInfo& c : classes)
        names.insert(names.end(), c.identifiers().begin(), c.identifiers().end());
    };
    const auto add_entries = [&names](const auto& entries) {
      for (const v1::NamedEntry& e : entries) {
        names.push_back(e.name());
        names.insert(names.end(), e.aliases().begin(), e.aliases().end());
      }
    };
    add_classes(all.layers());
    add_classes(all.initializers());
    add_classes(all.regularizers());
    add_classes(all.constraints());
    add_classes(all.optimizers());
    add_entries(all.activations());
    add_entries(all.losses());
    add_entries(all.metrics());
    const std::optional<std::string> closest = ClosestMatch(name, names);
    return WithFieldPrefix(
        absl::NotFoundError(
            absl::StrCat("Kiln has nothing named ", Quoted(name),
                         closest.has_value() ? absl::StrCat("; did you mean ", *closest, "?") : "",
                         " (`kiln catalogue` lists every class and name)")),
        "name");
  }
  return found;
}

}  // namespace kiln
