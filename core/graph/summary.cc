#include "core/graph/summary.h"

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace kiln {
namespace {

// 69834 -> "69,834"
std::string WithCommas(int64_t n) {
  std::string digits = absl::StrCat(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string ShapesText(const std::vector<Shape>& shapes, bool input) {
  if (input) return absl::StrCat("[", shapes[0].ToString(), "]");
  if (shapes.size() == 1) return shapes[0].ToString();
  return absl::StrCat("[", absl::StrJoin(shapes, ", ", [](std::string* out, const Shape& s) {
                        absl::StrAppend(out, s.ToString());
                      }), "]");
}

}  // namespace

std::vector<SummaryRow> SummaryRows(const Model& model) {
  std::vector<SummaryRow> rows;
  // Which row (layer call) produced each value, for "Connected to".
  absl::flat_hash_map<int, std::string> producer;  // value -> "name[node][tensor]"
  for (size_t i = 0; i < model.input_values().size(); ++i) {
    const int v = model.input_values()[i];
    SummaryRow row{model.input_names()[i], "InputLayer", {model.value_shapes()[v]}, 0, {}};
    producer[v] = absl::StrCat(row.name, "[0][0]");
    rows.push_back(std::move(row));
  }
  absl::flat_hash_map<const Layer*, int> calls;
  for (const Model::Node& node : model.nodes()) {
    SummaryRow row;
    row.name = node.layer->name();
    row.class_name = node.layer->class_name();
    row.params = node.layer->CountParams();
    for (int v : node.inputs) row.connected_to.push_back(producer[v]);
    const int call = calls[node.layer.get()]++;
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      row.output_shapes.push_back(model.value_shapes()[node.outputs[k]]);
      producer[node.outputs[k]] = absl::StrCat(row.name, "[", call, "][", k, "]");
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string ModelSummary(const Model& model) {
  const std::vector<SummaryRow> rows = SummaryRows(model);
  constexpr int kName = 31, kShape = 26, kParams = 12, kWidth = 110;
  const std::string rule(kWidth, '_'), double_rule(kWidth, '=');
  std::string out = absl::StrCat("Model: \"", model.name(), "\"\n", rule, "\n");
  absl::StrAppend(&out, absl::StrFormat(" %-*s %-*s %-*s %s\n", kName - 1, "Layer (type)", kShape,
                                        "Output Shape", kParams, "Param #", "Connected to"),
                  double_rule, "\n");
  for (size_t i = 0; i < rows.size(); ++i) {
    const SummaryRow& r = rows[i];
    const bool input = r.class_name == "InputLayer";
    const std::string connected =
        absl::StrCat("[", absl::StrJoin(r.connected_to, ", ", [](std::string* o, const std::string& s) {
                       absl::StrAppend(o, "'", s, "'");
                     }), "]");
    absl::StrAppend(&out, absl::StrFormat(" %-*s %-*s %-*s %s\n", kName - 1,
                                          absl::StrCat(r.name, " (", r.class_name, ")"), kShape,
                                          ShapesText(r.output_shapes, input), kParams,
                                          WithCommas(r.params), connected));
    absl::StrAppend(&out, i + 1 < rows.size() ? "\n" : "");
  }
  const int64_t total = model.CountParams(), trainable = model.CountTrainableParams();
  absl::StrAppend(&out, double_rule, "\nTotal params: ", WithCommas(total),
                  "\nTrainable params: ", WithCommas(trainable),
                  "\nNon-trainable params: ", WithCommas(total - trainable), "\n", rule, "\n");
  return out;
}

}  // namespace kiln
