// Model summaries as Keras prints them (model.summary(), Keras 2's plain-text table with a
// "Connected to" column), and the per-call rows behind them.
#ifndef KILN_CORE_GRAPH_SUMMARY_H_
#define KILN_CORE_GRAPH_SUMMARY_H_

#include <string>
#include <vector>

#include "core/graph/model.h"

namespace kiln {

struct SummaryRow {
  std::string name;        // layer (or input) name
  std::string class_name;  // "Conv2D", "InputLayer"
  std::vector<Shape> output_shapes;
  int64_t params = 0;
  std::vector<std::string> connected_to;  // "layer[node][tensor]"
};

// One row per model input and per layer call, in graph order.
std::vector<SummaryRow> SummaryRows(const Model& model);

// The table, followed by total, trainable and non-trainable parameter counts.
std::string ModelSummary(const Model& model);

}  // namespace kiln

#endif  // KILN_CORE_GRAPH_SUMMARY_H_
