#include "core/keras/spec_args.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "core/base/check.h"
#include "core/base/status.h"
#include "core/keras/args.h"
#include "core/keras/keras_class.h"
#include "google/protobuf/reflection.h"

namespace kiln {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

bool IsNumber(const FieldDescriptor* field) {
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
    case FieldDescriptor::CPPTYPE_FLOAT:
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return true;
    default:
      return false;
  }
}

double NumberAt(const Message& m, const FieldDescriptor* f, int index) {
  const Reflection* r = m.GetReflection();
  const bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f);
    case FieldDescriptor::CPPTYPE_INT64:
      return double(rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f));
    case FieldDescriptor::CPPTYPE_UINT32:
      return rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f);
    case FieldDescriptor::CPPTYPE_UINT64:
      return double(rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f));
    case FieldDescriptor::CPPTYPE_FLOAT:
      return rep ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f);
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return rep ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f);
    default:
      KILN_CHECK(false) << f->full_name() << " is not a number";
      return 0;
  }
}

// An integer field's value, exactly (NumberAt's double would round 64-bit seeds).
int64_t IntegerAt(const Message& m, const FieldDescriptor* f) {
  const Reflection* r = m.GetReflection();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return r->GetInt32(m, f);
    case FieldDescriptor::CPPTYPE_INT64:
      return r->GetInt64(m, f);
    case FieldDescriptor::CPPTYPE_UINT32:
      return r->GetUInt32(m, f);
    case FieldDescriptor::CPPTYPE_UINT64:
      return static_cast<int64_t>(r->GetUInt64(m, f));
    default:
      return static_cast<int64_t>(NumberAt(m, f, 0));
  }
}

// How Keras's messages print a value: numbers as absl prints them, lists in brackets.
std::string ValueText(const Message& m, const FieldDescriptor* f) {
  if (f->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
    return absl::AsciiStrToLower(m.GetReflection()->GetString(m, f));
  }
  auto one = [&](int i) {
    const double v = NumberAt(m, f, i);
    return f->cpp_type() == FieldDescriptor::CPPTYPE_FLOAT ? absl::StrCat(static_cast<float>(v))
                                                           : absl::StrCat(v);
  };
  if (!f->is_repeated()) return one(0);
  std::vector<std::string> items;
  for (int i = 0; i < m.GetReflection()->FieldSize(m, f); ++i) items.push_back(one(i));
  return absl::StrCat("[", absl::StrJoin(items, ", "), "]");
}

std::string RangeText(const v1::KerasArg& arg) {
  std::vector<std::string> parts;
  if (arg.has_minimum()) {
    parts.push_back(absl::StrCat(arg.exclusive_minimum() ? "> " : ">= ", arg.minimum()));
  }
  if (arg.has_maximum()) {
    parts.push_back(absl::StrCat(arg.exclusive_maximum() ? "< " : "<= ", arg.maximum()));
  }
  return absl::StrJoin(parts, " and ");
}

bool InRange(const v1::KerasArg& arg, double v) {
  if (!std::isfinite(v)) return false;
  if (arg.has_minimum() && (arg.exclusive_minimum() ? v <= arg.minimum() : v < arg.minimum())) {
    return false;
  }
  if (arg.has_maximum() && (arg.exclusive_maximum() ? v >= arg.maximum() : v > arg.maximum())) {
    return false;
  }
  return true;
}

// The numbers of a (nested) JSON list, in order: [[1, 1], [2, 2]] -> 1, 1, 2, 2.
void AppendInts(const nlohmann::json& value, std::vector<int64_t>& out) {
  if (value.is_number()) out.push_back(value.get<int64_t>());
  if (value.is_array()) {
    for (const auto& item : value) AppendInts(item, out);
  }
}

}  // namespace

nlohmann::json KerasDefault(const FieldDescriptor* field) {
  const std::string& text = KerasArgOf(field).default_();
  if (text.empty()) return nullptr;
  nlohmann::json parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  KILN_CHECK(!parsed.is_discarded()) << field->full_name() << ": bad default " << text;
  return parsed;
}

void FillKerasDefaults(Message& message) {
  const auto* descriptor = message.GetDescriptor();
  const Reflection* r = message.GetReflection();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* f = descriptor->field(i);
    const nlohmann::json fallback = KerasDefault(f);
    if (fallback.is_null() || f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (f->is_repeated()) {
      if (r->FieldSize(message, f) > 0 || !IsNumber(f)) continue;
      std::vector<int64_t> values;
      AppendInts(fallback, values);
      for (int64_t v : values) {
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_INT32) r->AddInt32(&message, f, int32_t(v));
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_INT64) r->AddInt64(&message, f, v);
      }
      continue;
    }
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_STRING && !f->has_presence()) {
      std::string value = r->GetString(message, f);
      if (value.empty()) value = fallback.get<std::string>();
      if (KerasArgOf(f).allowed_size() > 0) absl::AsciiStrToLower(&value);
      r->SetString(&message, f, value);
      continue;
    }
    if (!f->has_presence() || r->HasField(message, f)) continue;
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        r->SetInt32(&message, f, fallback.get<int32_t>());
        break;
      case FieldDescriptor::CPPTYPE_INT64:
        r->SetInt64(&message, f, fallback.get<int64_t>());
        break;
      case FieldDescriptor::CPPTYPE_FLOAT:
        r->SetFloat(&message, f, fallback.get<float>());
        break;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        r->SetDouble(&message, f, fallback.get<double>());
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        r->SetBool(&message, f, fallback.get<bool>());
        break;
      case FieldDescriptor::CPPTYPE_STRING:
        r->SetString(&message, f, fallback.get<std::string>());
        break;
      default:
        break;
    }
  }
}

SpecArgs::SpecArgs(const Message& message, std::string path)
    : message_(message), path_(std::move(path)) {}

const FieldDescriptor* SpecArgs::Field(absl::string_view name) const {
  const FieldDescriptor* field = message_.GetDescriptor()->FindFieldByName(std::string(name));
  KILN_CHECK(field != nullptr) << message_.GetDescriptor()->full_name() << " has no field " << name;
  return field;
}

std::string SpecArgs::Path(absl::string_view field) const {
  return path_.empty() ? std::string(field) : absl::StrCat(path_, ".", field);
}

bool SpecArgs::HasValue(const FieldDescriptor* field) const {
  const Reflection* r = message_.GetReflection();
  if (field->is_repeated()) return r->FieldSize(message_, field) > 0;
  if (field->has_presence()) return r->HasField(message_, field);
  if (field->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
    return !r->GetString(message_, field).empty();
  }
  if (field->cpp_type() == FieldDescriptor::CPPTYPE_BOOL) return r->GetBool(message_, field);
  return NumberAt(message_, field, 0) != 0;
}

bool SpecArgs::Has(absl::string_view field) const { return HasValue(Field(field)); }

absl::Status SpecArgs::Validate() const {
  const auto* descriptor = message_.GetDescriptor();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    KILN_RETURN_IF_ERROR(CheckField(descriptor->field(i)));
  }
  return absl::OkStatus();
}

absl::Status SpecArgs::CheckField(const FieldDescriptor* field) const {
  const v1::KerasArg& arg = KerasArgOf(field);
  const std::string path = Path(field->name());
  // A message or plain number without presence cannot be missing: proto3 reads it as zero,
  // which the range check below judges.
  const bool can_be_missing = field->is_repeated() || field->has_presence() ||
                              field->cpp_type() == FieldDescriptor::CPPTYPE_STRING;
  if (arg.tuple() > 0) {
    KILN_CHECK(field->cpp_type() == FieldDescriptor::CPPTYPE_INT32 && field->is_repeated());
    static constexpr std::array<int, 2> kAny = {1, 1};
    google::protobuf::RepeatedField<int32_t> values;
    for (int32_t v : message_.GetReflection()->GetRepeatedFieldRef<int32_t>(message_, field)) {
      values.Add(v);
    }
    const bool allow_zero = arg.has_minimum() && arg.minimum() == 0;
    return StandardizePair(values, path, field->name(), allow_zero,
                           arg.required() ? nullptr : &kAny)
        .status();
  }
  const bool present = HasValue(field);
  if (arg.required() && can_be_missing && !present) {
    return FieldError(path, absl::StrCat("Missing required argument `", field->name(), "`."));
  }
  if (!present && can_be_missing) return absl::OkStatus();
  auto fail = [&](std::string generic) {
    const std::string value = ValueText(message_, field);
    if (!arg.error().empty()) {
      return FieldError(path, absl::StrReplaceAll(arg.error(), {{"{value}", value}}));
    }
    return FieldError(path, absl::StrCat(generic, " Received: ", field->name(), "=", value));
  };
  if (field->cpp_type() == FieldDescriptor::CPPTYPE_STRING && arg.allowed_size() > 0) {
    const std::string value =
        absl::AsciiStrToLower(message_.GetReflection()->GetString(message_, field));
    for (const std::string& allowed : arg.allowed()) {
      if (value == allowed) return absl::OkStatus();
    }
    return fail(absl::StrCat("`", field->name(), "` must be one of {'",
                             absl::StrJoin(arg.allowed(), "', '"), "'}."));
  }
  if (IsNumber(field) && (arg.has_minimum() || arg.has_maximum() ||
                          field->cpp_type() == FieldDescriptor::CPPTYPE_FLOAT ||
                          field->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE)) {
    const int n = field->is_repeated() ? message_.GetReflection()->FieldSize(message_, field) : 1;
    for (int i = 0; i < n; ++i) {
      if (!InRange(arg, NumberAt(message_, field, i))) {
        const std::string range = RangeText(arg);
        return fail(range.empty() ? absl::StrCat("`", field->name(), "` must be finite.")
                                  : absl::StrCat("`", field->name(), "` must be ", range, "."));
      }
    }
  }
  return absl::OkStatus();
}

int64_t SpecArgs::Int(absl::string_view name) const {
  const FieldDescriptor* field = Field(name);
  KILN_CHECK(!field->is_repeated() && IsNumber(field)) << field->full_name();
  if (HasValue(field) || !KerasDefault(field).is_number()) return IntegerAt(message_, field);
  return KerasDefault(field).get<int64_t>();
}

double SpecArgs::Float(absl::string_view name) const {
  const FieldDescriptor* field = Field(name);
  KILN_CHECK(!field->is_repeated() && IsNumber(field)) << field->full_name();
  if (HasValue(field) || !KerasDefault(field).is_number()) return NumberAt(message_, field, 0);
  return KerasDefault(field).get<double>();
}

std::optional<double> SpecArgs::OptionalFloat(absl::string_view name) const {
  const FieldDescriptor* field = Field(name);
  KILN_CHECK(!field->is_repeated() && IsNumber(field)) << field->full_name();
  if (HasValue(field)) return NumberAt(message_, field, 0);
  const nlohmann::json fallback = KerasDefault(field);
  if (fallback.is_number()) return fallback.get<double>();
  return std::nullopt;
}

bool SpecArgs::Bool(absl::string_view name) const {
  const FieldDescriptor* field = Field(name);
  KILN_CHECK(field->cpp_type() == FieldDescriptor::CPPTYPE_BOOL && !field->is_repeated())
      << field->full_name();
  if (HasValue(field)) return message_.GetReflection()->GetBool(message_, field);
  const nlohmann::json fallback = KerasDefault(field);
  return fallback.is_boolean() && fallback.get<bool>();
}

std::string SpecArgs::String(absl::string_view name) const {
  const FieldDescriptor* field = Field(name);
  KILN_CHECK(field->cpp_type() == FieldDescriptor::CPPTYPE_STRING && !field->is_repeated())
      << field->full_name();
  std::string value;
  if (HasValue(field)) {
    value = message_.GetReflection()->GetString(message_, field);
  } else if (const nlohmann::json fallback = KerasDefault(field); fallback.is_string()) {
    value = fallback.get<std::string>();
  }
  if (KerasArgOf(field).allowed_size() > 0) absl::AsciiStrToLower(&value);
  return value;
}

std::vector<int64_t> SpecArgs::Ints(absl::string_view name) const {
  const FieldDescriptor* field = Field(name);
  KILN_CHECK(field->is_repeated() && IsNumber(field)) << field->full_name();
  std::vector<int64_t> out;
  const int n = message_.GetReflection()->FieldSize(message_, field);
  if (n > 0) {
    for (int i = 0; i < n; ++i) out.push_back(static_cast<int64_t>(NumberAt(message_, field, i)));
    return out;
  }
  AppendInts(KerasDefault(field), out);
  return out;
}

std::optional<std::array<int, 2>> SpecArgs::Pair(absl::string_view name) const {
  const FieldDescriptor* field = Field(name);
  KILN_CHECK(KerasArgOf(field).tuple() == 2) << field->full_name();
  const std::vector<int64_t> values = Ints(name);
  if (values.empty()) return std::nullopt;
  return std::array<int, 2>{static_cast<int>(values[0]),
                            static_cast<int>(values[values.size() == 1 ? 0 : 1])};
}

}  // namespace kiln
