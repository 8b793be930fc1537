// kiln catalogue [NAME]: what the server supports, as a palette (every class and name) or as
// one class's card (its arguments with types, defaults, ranges and docs).
#include <cstdio>
#include <map>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/cli/commands.h"
#include "client/cli/common.h"
#include "client/cli/flags.h"

namespace kiln::cli {
namespace {

std::string TypeName(const v1::ArgumentInfo& arg) {
  switch (arg.type()) {
    case v1::ARGUMENT_TYPE_INT:
      return "int";
    case v1::ARGUMENT_TYPE_FLOAT:
      return "float";
    case v1::ARGUMENT_TYPE_BOOL:
      return "bool";
    case v1::ARGUMENT_TYPE_STRING:
      return "string";
    case v1::ARGUMENT_TYPE_INT_LIST:
      return arg.tuple() > 0 ? absl::StrCat("int or ", arg.tuple(), " ints") : "int list";
    case v1::ARGUMENT_TYPE_ACTIVATION:
      return "activation";
    case v1::ARGUMENT_TYPE_INITIALIZER:
      return "initializer";
    case v1::ARGUMENT_TYPE_REGULARIZER:
      return "regularizer";
    case v1::ARGUMENT_TYPE_CONSTRAINT:
      return "constraint";
    default:
      return "?";
  }
}

// "> 0", "in [0, 1)", "one of valid, same".
std::string Constraints(const v1::ArgumentInfo& arg) {
  if (!arg.allowed().empty()) return absl::StrCat("one of ", absl::StrJoin(arg.allowed(), ", "));
  if (arg.has_minimum() && arg.has_maximum()) {
    return absl::StrCat("in ", arg.exclusive_minimum() ? "(" : "[", arg.minimum(), ", ",
                        arg.maximum(), arg.exclusive_maximum() ? ")" : "]");
  }
  if (arg.has_minimum()) return absl::StrCat(arg.exclusive_minimum() ? "> " : ">= ", arg.minimum());
  if (arg.has_maximum()) return absl::StrCat(arg.exclusive_maximum() ? "< " : "<= ", arg.maximum());
  return "";
}

void PrintClass(const v1::ClassInfo& info, absl::string_view kind) {
  std::printf("%s (%s, %s %s)\n  %s\n", info.class_name().c_str(), info.module().c_str(),
              info.category().c_str(), std::string(kind).c_str(), info.doc().c_str());
  std::printf("  API: %s%s\n", info.message().c_str(),
              info.field().empty() ? "" : absl::StrCat(", field `", info.field(), "`").c_str());
  std::printf("  Keras names: %s\n", absl::StrJoin(info.identifiers(), ", ").c_str());
  if (info.has_sockets()) {
    const v1::Sockets& s = info.sockets();
    const std::string inputs = s.max_inputs() < 0 ? absl::StrCat(s.min_inputs(), " or more")
                               : s.max_inputs() == s.min_inputs()
                                   ? absl::StrCat(s.min_inputs())
                                   : absl::StrCat(s.min_inputs(), "-", s.max_inputs());
    std::printf("  Sockets: %s input tensor(s); outputs %d tensor(s)%s\n", inputs.c_str(),
                s.outputs(), kind == "layer" ? " and the layer instance" : "");
  }
  if (info.arguments().empty()) return;
  std::printf("  Arguments:\n");
  for (const v1::ArgumentInfo& arg : info.arguments()) {
    const std::string fallback = arg.required() ? "required" : arg.default_json();
    std::printf("    %-28s %-13s %-18s %s", arg.name().c_str(), TypeName(arg).c_str(),
                fallback.c_str(), arg.doc().c_str());
    const std::string limits = Constraints(arg);
    if (!limits.empty()) std::printf(" (%s)", limits.c_str());
    std::printf("\n");
  }
}

void PrintPalette(const std::string& title,
                  const google::protobuf::RepeatedPtrField<v1::ClassInfo>& classes) {
  if (classes.empty()) return;
  std::map<std::string, std::vector<std::string>> by_category;
  for (const v1::ClassInfo& c : classes) by_category[c.category()].push_back(c.class_name());
  std::printf("%s (%d):\n", title.c_str(), classes.size());
  for (const auto& [category, names] : by_category) {
    std::printf("  %-18s %s\n", category.c_str(), absl::StrJoin(names, ", ").c_str());
  }
}

void PrintNames(const std::string& title,
                const google::protobuf::RepeatedPtrField<v1::NamedEntry>& entries) {
  if (entries.empty()) return;
  std::vector<std::string> names;
  for (const v1::NamedEntry& e : entries) {
    names.push_back(e.aliases().empty()
                        ? e.name()
                        : absl::StrCat(e.name(), " (", absl::StrJoin(e.aliases(), ", "), ")"));
  }
  std::printf("%s (%d): %s\n", title.c_str(), entries.size(), absl::StrJoin(names, ", ").c_str());
}

void PrintEntries(const google::protobuf::RepeatedPtrField<v1::NamedEntry>& entries,
                  absl::string_view kind) {
  for (const v1::NamedEntry& e : entries) {
    std::printf("%s (%s)%s\n  %s\n", e.name().c_str(), std::string(kind).c_str(),
                e.aliases().empty()
                    ? ""
                    : absl::StrCat(" - also ", absl::StrJoin(e.aliases(), ", ")).c_str(),
                e.doc().c_str());
  }
}

}  // namespace

absl::Status Catalogue(client::Client& c, const Args& args) {
  v1::DescribeCatalogueRequest request;
  if (!args.empty()) request.set_name(args[0]);
  KILN_ASSIGN_OR_RETURN(
      v1::Catalogue catalogue,
      c.Call(&v1::CatalogueService::Stub::DescribeCatalogue, c.catalogue(), request));
  if (absl::GetFlag(FLAGS_json)) return PrintJson(catalogue);
  if (args.empty()) {
    std::printf("Input: %s - %s\n", catalogue.input().class_name().c_str(),
                catalogue.input().doc().c_str());
    PrintPalette("Layers", catalogue.layers());
    PrintPalette("Initializers", catalogue.initializers());
    PrintPalette("Regularizers", catalogue.regularizers());
    PrintPalette("Constraints", catalogue.constraints());
    PrintPalette("Optimizers", catalogue.optimizers());
    PrintNames("Activations", catalogue.activations());
    PrintNames("Losses", catalogue.losses());
    PrintNames("Metrics", catalogue.metrics());
    std::printf("`kiln catalogue NAME` shows one class's arguments.\n");
    return absl::OkStatus();
  }
  if (catalogue.has_input()) PrintClass(catalogue.input(), "input");
  for (const auto& info : catalogue.layers()) PrintClass(info, "layer");
  for (const auto& info : catalogue.initializers()) PrintClass(info, "initializer");
  for (const auto& info : catalogue.regularizers()) PrintClass(info, "regularizer");
  for (const auto& info : catalogue.constraints()) PrintClass(info, "constraint");
  for (const auto& info : catalogue.optimizers()) PrintClass(info, "optimizer");
  PrintEntries(catalogue.activations(), "activation");
  PrintEntries(catalogue.losses(), "loss");
  PrintEntries(catalogue.metrics(), "metric");
  return absl::OkStatus();
}

}  // namespace kiln::cli
