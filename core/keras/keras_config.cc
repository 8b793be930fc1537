#include "core/keras/keras_config.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "absl/strings/str_cat.h"
#include "core/base/status.h"
#include "core/keras/constraints.h"
#include "core/keras/initializers.h"
#include "core/keras/keras_class.h"
#include "core/keras/regularizers.h"
#include "core/keras/spec_args.h"
#include "kiln/v1/layers.pb.h"

namespace kiln {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

bool IsKerasObject(const Descriptor* type) {
  return type != nullptr && type->FindOneofByName("kind") != nullptr &&
         type->FindFieldByName("name") != nullptr;
}

// "initializer", "regularizer", ... for messages.
std::string ObjectKind(const Descriptor* type) {
  std::string kind = type->name();
  kind[0] = static_cast<char>(std::tolower(kind[0]));
  return kind;
}

absl::StatusOr<int64_t> Integer(const Json& value, const std::string& path) {
  const Json* v = &value;
  // Keras 2 writes BatchNormalization's axis as [3] once built.
  if (v->is_array() && v->size() == 1) v = &(*v)[0];
  if (v->is_number_integer()) return v->get<int64_t>();
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::abs(d) < 9.0e15) return int64_t(d);
  }
  return FieldError(path, absl::StrCat("expected an integer, got ", value.dump()));
}

absl::Status SetNumber(Message& message, const FieldDescriptor* field, const Json& value,
                       const std::string& path) {
  const Reflection* r = message.GetReflection();
  const bool repeated = field->is_repeated();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64: {
      KILN_ASSIGN_OR_RETURN(const int64_t v, Integer(value, path));
      if (field->cpp_type() == FieldDescriptor::CPPTYPE_INT32) {
        if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
          return FieldError(path, absl::StrCat("out of range: ", v));
        }
        repeated ? r->AddInt32(&message, field, int32_t(v))
                 : r->SetInt32(&message, field, int32_t(v));
      } else {
        repeated ? r->AddInt64(&message, field, v) : r->SetInt64(&message, field, v);
      }
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_FLOAT:
    case FieldDescriptor::CPPTYPE_DOUBLE: {
      if (!value.is_number()) {
        return FieldError(path, absl::StrCat("expected a number, got ", value.dump()));
      }
      const double v = value.get<double>();
      if (field->cpp_type() == FieldDescriptor::CPPTYPE_FLOAT) {
        repeated ? r->AddFloat(&message, field, float(v)) : r->SetFloat(&message, field, float(v));
      } else {
        repeated ? r->AddDouble(&message, field, v) : r->SetDouble(&message, field, v);
      }
      return absl::OkStatus();
    }
    default:
      return absl::InternalError(absl::StrCat(field->full_name(), " is not a number"));
  }
}

// The entries of a (nested) list, in order; None entries become -1.
absl::Status AddRepeated(Message& message, const FieldDescriptor* field, const Json& value,
                         const std::string& path) {
  if (value.is_null()) return SetNumber(message, field, Json(-1), path);
  if (!value.is_array()) return SetNumber(message, field, value, path);
  for (size_t i = 0; i < value.size(); ++i) {
    KILN_RETURN_IF_ERROR(AddRepeated(message, field, value[i], JsonPath(path, i)));
  }
  return absl::OkStatus();
}

absl::Status SetField(Message& message, const FieldDescriptor* field, const Json& value,
                      const std::string& path) {
  const Reflection* r = message.GetReflection();
  r->ClearField(&message, field);
  if (value.is_null()) return absl::OkStatus();  // Keras's None: the default
  if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    if (!IsKerasObject(field->message_type())) {
      return absl::InternalError(absl::StrCat(field->full_name(), " is no Keras object"));
    }
    return KerasObjectFromJson(value, path, *r->MutableMessage(&message, field));
  }
  if (field->is_repeated()) {
    if (value.is_array()) {
      for (size_t i = 0; i < value.size(); ++i) {
        KILN_RETURN_IF_ERROR(AddRepeated(message, field, value[i], JsonPath(path, i)));
      }
      return absl::OkStatus();
    }
    return AddRepeated(message, field, value, path);
  }
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_BOOL:
      if (!value.is_boolean()) {
        return FieldError(path, absl::StrCat("expected true or false, got ", value.dump()));
      }
      r->SetBool(&message, field, value.get<bool>());
      return absl::OkStatus();
    case FieldDescriptor::CPPTYPE_STRING: {
      const Json* v = &value;
      // Keras >= 3.4 writes dtype as a DTypePolicy: {"class_name": ..., "config": {"name"}}.
      if (field->name() == "dtype" && v->is_object() && v->contains("config") &&
          (*v)["config"].is_object() && (*v)["config"].contains("name")) {
        v = &(*v)["config"]["name"];
      }
      if (!v->is_string()) {
        return FieldError(path, absl::StrCat("expected a string, got ", value.dump()));
      }
      r->SetString(&message, field, v->get<std::string>());
      return absl::OkStatus();
    }
    default:
      return SetNumber(message, field, value, path);
  }
}

// A float32 as the shortest decimal that reads back to it ("0.99", not 0.9900000095367432).
Json FloatJson(double value, bool single) {
  if (!single) return value;
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), static_cast<float>(value));
  return std::strtod(std::string(buffer, result.ptr).c_str(), nullptr);
}

Json NumberJson(const Message& m, const FieldDescriptor* f, int index) {
  const Reflection* r = m.GetReflection();
  const bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f);
    case FieldDescriptor::CPPTYPE_INT64:
      return rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f);
    case FieldDescriptor::CPPTYPE_FLOAT:
      return FloatJson(rep ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f), true);
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return rep ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f);
    default:
      return nullptr;
  }
}

// A resolved copy of a Keras object field's value (or of its default); nullopt when unset
// without a default.
std::optional<v1::Initializer> ResolvedInitializer(const v1::Initializer& given,
                                                   const FieldDescriptor* field) {
  const Json fallback = KerasDefault(field);
  absl::StatusOr<v1::Initializer> resolved =
      ResolveInitializer(given, fallback.is_string() ? fallback.get<std::string>() : "zeros", "");
  if (!resolved.ok()) return std::nullopt;
  return *resolved;
}

Json ObjectFieldJson(const Message& m, const FieldDescriptor* f) {
  const Message& value = m.GetReflection()->GetMessage(m, f);
  if (f->message_type() == v1::Initializer::descriptor()) {
    const auto resolved = ResolvedInitializer(static_cast<const v1::Initializer&>(value), f);
    return resolved ? KerasObjectJson(*resolved) : Json(nullptr);
  }
  if (f->message_type() == v1::Regularizer::descriptor()) {
    auto resolved = ResolveRegularizer(static_cast<const v1::Regularizer&>(value), "");
    return resolved.ok() && resolved->has_value() ? KerasObjectJson(**resolved) : Json(nullptr);
  }
  if (f->message_type() == v1::Constraint::descriptor()) {
    auto resolved = ResolveConstraint(static_cast<const v1::Constraint&>(value), "");
    return resolved.ok() && resolved->has_value() ? KerasObjectJson(**resolved) : Json(nullptr);
  }
  return nullptr;
}

Json RepeatedJson(const Message& m, const FieldDescriptor* f) {
  const v1::KerasArg& arg = KerasArgOf(f);
  const Json fallback = KerasDefault(f);
  const int n = m.GetReflection()->FieldSize(m, f);
  if (n == 0) return fallback;
  std::vector<Json> values;
  for (int i = 0; i < n; ++i) {
    Json v = NumberJson(m, f, i);
    if (arg.none_is_minus_one() && v == Json(-1)) v = nullptr;
    values.push_back(std::move(v));
  }
  if (arg.tuple() > 0) {  // standardize_tuple: always every axis
    Json out = Json::array();
    for (int i = 0; i < arg.tuple(); ++i) out.push_back(values[n == 1 ? 0 : i]);
    return out;
  }
  // A default of pairs ((top, bottom), (left, right)): 1, 2 or 4 values written as pairs.
  if (fallback.is_array() && !fallback.empty() && fallback[0].is_array()) {
    if (n == 1) return Json::array({{values[0], values[0]}, {values[0], values[0]}});
    if (n == 2) return Json::array({{values[0], values[0]}, {values[1], values[1]}});
    if (n == 4) return Json::array({{values[0], values[1]}, {values[2], values[3]}});
  }
  // A scalar default (MaxNorm's axis=0): one value is written as a scalar.
  if (fallback.is_number() && n == 1) return values[0];
  return Json(values);
}

Json FieldJson(const Message& m, const FieldDescriptor* f) {
  if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) return ObjectFieldJson(m, f);
  if (f->is_repeated()) return RepeatedJson(m, f);
  const SpecArgs args(m, "");
  if (f->name() == "dtype") {
    return Json{{"module", "keras"},
                {"class_name", "DTypePolicy"},
                {"config", {{"name", args.String("dtype")}}},
                {"registered_name", nullptr}};
  }
  const bool given = args.Has(f->name());
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_BOOL:
      return args.Bool(f->name());
    case FieldDescriptor::CPPTYPE_STRING:
      return args.String(f->name());
    default:
      break;
  }
  if (given) return NumberJson(m, f, 0);
  const Json fallback = KerasDefault(f);
  if (!fallback.is_number()) return fallback;  // null: Keras's None
  return f->cpp_type() == FieldDescriptor::CPPTYPE_FLOAT ? FloatJson(fallback.get<double>(), true)
                                                         : fallback;
}

}  // namespace

std::string JsonPath(const std::string& path, const std::string& key) {
  return path.empty() ? key : absl::StrCat(path, ".", key);
}

std::string JsonPath(const std::string& path, size_t index) {
  return absl::StrCat(path, "[", index, "]");
}

absl::Status MessageFromKerasConfig(const Json& config, const std::string& path, Message& message) {
  if (!config.is_object()) {
    return FieldError(path, absl::StrCat("expected a JSON object, got ", config.dump()));
  }
  const Descriptor* descriptor = message.GetDescriptor();
  const v1::KerasClass& keras = KerasClassOf(descriptor);
  for (const auto& [key, value] : config.items()) {
    const std::string at = JsonPath(path, key);
    if (const FieldDescriptor* field = descriptor->FindFieldByName(key)) {
      KILN_RETURN_IF_ERROR(SetField(message, field, value, at));
      continue;
    }
    if (const std::optional<std::string> accepted = AcceptedKeyValue(descriptor, key)) {
      if (*accepted == "*" || Json::parse(*accepted) == value) continue;
      return FieldError(at, absl::StrCat("Kiln's ", keras.class_name(), " has no argument `", key,
                                         "`: it accepts it only as ", *accepted,
                                         " (Keras's default). Received: ", key, "=",
                                         value.dump()));
    }
    return FieldError(at, absl::StrCat("Unrecognized keyword arguments passed to ",
                                       keras.class_name(), ": {'", key, "': ", value.dump(), "}"));
  }
  return absl::OkStatus();
}

absl::Status KerasObjectFromJson(const Json& value, const std::string& path, Message& object) {
  const Descriptor* descriptor = object.GetDescriptor();
  object.Clear();
  if (value.is_null()) return absl::OkStatus();
  if (value.is_string()) {
    object.GetReflection()->SetString(&object, descriptor->FindFieldByName("name"),
                                      value.get<std::string>());
    return absl::OkStatus();
  }
  const std::string kind = ObjectKind(descriptor);
  if (!value.is_object() || !value.contains("class_name") || !value["class_name"].is_string()) {
    return FieldError(path, absl::StrCat("expected a Keras ", kind,
                                         ": an identifier or {\"class_name\": ..., \"config\": "
                                         "{...}}, got ",
                                         value.dump()));
  }
  for (const auto& [key, ignored] : value.items()) {
    if (key != "class_name" && key != "config" && key != "module" && key != "registered_name" &&
        key != "shared_object_id") {
      return FieldError(JsonPath(path, key),
                        absl::StrCat("unexpected key \"", key, "\" in a Keras ", kind));
    }
  }
  const std::string class_name = value["class_name"].get<std::string>();
  const FieldDescriptor* field = FindKerasClass(descriptor->FindOneofByName("kind"), class_name);
  if (field == nullptr) {
    return FieldError(JsonPath(path, "class_name"),
                      absl::StrCat("Kiln has no ", kind, " class \"", class_name,
                                   "\" yet (`kiln catalogue` lists those it has)"));
  }
  Message* held = object.GetReflection()->MutableMessage(&object, field);
  if (!value.contains("config") || value["config"].is_null()) return absl::OkStatus();
  return MessageFromKerasConfig(value["config"], JsonPath(path, "config"), *held);
}

Json KerasConfigOf(const Message& message) {
  const Descriptor* descriptor = message.GetDescriptor();
  Json config = Json::object();
  for (const char* base : {"name", "trainable", "dtype"}) {
    if (const FieldDescriptor* f = descriptor->FindFieldByName(base)) {
      config[base] = FieldJson(message, f);
    }
  }
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* f = descriptor->field(i);
    if (config.contains(f->name())) continue;
    config[f->name()] = FieldJson(message, f);
  }
  return config;
}

Json KerasObjectJson(const Message& object) {
  const Message* held = KerasObjectClass(object);
  if (held == nullptr) return nullptr;
  const v1::KerasClass& keras = KerasClassOf(held->GetDescriptor());
  return Json{{"module", keras.module()},
              {"class_name", keras.class_name()},
              {"config", KerasConfigOf(*held)},
              {"registered_name", nullptr}};
}

}  // namespace kiln
