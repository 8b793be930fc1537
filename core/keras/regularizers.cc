#include "core/keras/regularizers.h"

#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/status.h"
#include "core/keras/keras_class.h"
#include "core/keras/spec_args.h"

namespace kiln {
namespace {

using Kind = v1::Regularizer::KindCase;

struct ElementwiseFactors {
  double l1 = 0, l2 = 0;
};

// `r` is resolved: its arguments are explicit.
ElementwiseFactors FactorsOf(const v1::Regularizer& r) {
  switch (r.kind_case()) {
    case Kind::kL1:
      return {r.l1().l1(), 0};
    case Kind::kL2:
      return {0, r.l2().l2()};
    case Kind::kL1L2:
      return {r.l1_l2().l1(), r.l1_l2().l2()};
    default:
      return {};
  }
}

// Rows (or columns) of a 2-D weight, L2-normalised as keras.ops.normalize does
// (x * min(rsqrt(sum x^2), 1/epsilon)).
struct Normalized {
  std::vector<double> u;      // size x len, row i at u[i*len]
  std::vector<double> inv;    // the factor applied to each vector
  std::vector<bool> clamped;  // true where the 1/epsilon bound applied
  int64_t size = 0, len = 0;
};

Normalized NormalizeVectors(absl::Span<const float> w, const Shape& shape, bool rows) {
  Normalized n;
  const int64_t r = shape[0], c = shape[1];
  n.size = rows ? r : c;
  n.len = rows ? c : r;
  n.u.resize(n.size * n.len);
  n.inv.resize(n.size);
  n.clamped.resize(n.size);
  for (int64_t i = 0; i < n.size; ++i) {
    double sq = 0;
    for (int64_t k = 0; k < n.len; ++k) {
      const double v = rows ? w[i * c + k] : w[k * c + i];
      sq += v * v;
    }
    const double inv = 1.0 / std::sqrt(sq);
    n.clamped[i] = !(inv < 1e7);
    n.inv[i] = n.clamped[i] ? 1e7 : inv;
    for (int64_t k = 0; k < n.len; ++k) {
      const double v = rows ? w[i * c + k] : w[k * c + i];
      n.u[i * n.len + k] = v * n.inv[i];
    }
  }
  return n;
}

double Dot(const Normalized& n, int64_t i, int64_t j) {
  double dot = 0;
  for (int64_t k = 0; k < n.len; ++k) dot += n.u[i * n.len + k] * n.u[j * n.len + k];
  return dot;
}

}  // namespace

absl::StatusOr<std::optional<v1::Regularizer>> ResolveRegularizer(const v1::Regularizer& spec,
                                                                  absl::string_view path) {
  v1::Regularizer out;
  if (spec.kind_case() == Kind::KIND_NOT_SET) return std::nullopt;
  if (spec.kind_case() == Kind::kName) {
    if (spec.name() == "l1_l2") {
      out.mutable_l1_l2()->set_l1(0.01f);  // Keras 2's deserialize special case
      out.mutable_l1_l2()->set_l2(0.01f);
    } else if (!SetKerasObjectClass(out, spec.name())) {
      return FieldError(path,
                        absl::StrCat("Could not interpret regularizer identifier: ", spec.name()));
    }
  } else {
    KILN_RETURN_IF_ERROR(SpecArgs(*KerasObjectClass(spec), KerasObjectPath(spec, path)).Validate());
    out = spec;
  }
  FillKerasDefaults(*MutableKerasObjectClass(out));
  return out;
}

absl::Status CheckRegularizerShape(const v1::Regularizer& resolved, const Shape& shape,
                                   absl::string_view path) {
  if (resolved.kind_case() == Kind::kOrthogonalRegularizer && shape.rank() != 2) {
    return FieldError(path, absl::StrCat("Inputs to OrthogonalRegularizer must have rank 2. "
                                         "Received: inputs.shape=",
                                         shape.ToString()));
  }
  return absl::OkStatus();
}

bool IsElementwiseRegularizer(const v1::Regularizer& resolved) {
  return resolved.kind_case() == Kind::kL1 || resolved.kind_case() == Kind::kL2 ||
         resolved.kind_case() == Kind::kL1L2;
}

double RegularizerPenalty(const v1::Regularizer& r, absl::Span<const float> w, const Shape& shape,
                          double scale) {
  if (IsElementwiseRegularizer(r)) {
    const ElementwiseFactors f = FactorsOf(r);
    double abs_sum = 0, sq_sum = 0;
    for (float v : w) {
      abs_sum += std::abs(v);
      sq_sum += double(v) * v;
    }
    return scale * (f.l1 * abs_sum + f.l2 * sq_sum);
  }
  const auto& o = r.orthogonal_regularizer();
  const Normalized n = NormalizeVectors(w, shape, o.mode() != "columns");
  if (n.size < 2) return 0.0;
  double sum = 0;
  for (int64_t i = 0; i < n.size; ++i) {
    for (int64_t j = 0; j < n.size; ++j) {
      if (i != j) sum += std::abs(Dot(n, i, j));
    }
  }
  const double pairs = n.size * (n.size - 1.0) / 2.0;
  return scale * o.factor() * 0.5 * sum / pairs;
}

void AddRegularizerGradient(const v1::Regularizer& r, absl::Span<const float> w, const Shape& shape,
                            double scale, absl::Span<float> grad) {
  if (IsElementwiseRegularizer(r)) {
    const ElementwiseFactors f = FactorsOf(r);
    const float a = float(scale * f.l1), b = float(2.0 * scale * f.l2);
    const int64_t count = static_cast<int64_t>(w.size());
    for (int64_t i = 0; i < count; ++i) {
      const float v = w[i];
      grad[i] += a * float((v > 0) - (v < 0)) + b * v;
    }
    return;
  }
  const auto& o = r.orthogonal_regularizer();
  const bool rows = o.mode() != "columns";
  const Normalized n = NormalizeVectors(w, shape, rows);
  if (n.size < 2) return;
  // penalty = c * sum_{i != j} |u_i . u_j|, so d/du_i = 2c * sum_{j != i} sign(u_i . u_j) u_j,
  // then back through u_i = x_i * inv_i (inv_i = 1/|x_i| unless clamped).
  const double c = scale * o.factor() * 0.5 / (n.size * (n.size - 1.0) / 2.0);
  const int64_t cols = shape[1];
  std::vector<double> du(n.len);
  for (int64_t i = 0; i < n.size; ++i) {
    std::fill(du.begin(), du.end(), 0.0);
    for (int64_t j = 0; j < n.size; ++j) {
      if (j == i) continue;
      const double d = Dot(n, i, j);
      const double s = 2.0 * c * ((d > 0) - (d < 0));
      for (int64_t k = 0; k < n.len; ++k) du[k] += s * n.u[j * n.len + k];
    }
    double proj = 0;  // u_i . du
    for (int64_t k = 0; k < n.len; ++k) proj += n.u[i * n.len + k] * du[k];
    for (int64_t k = 0; k < n.len; ++k) {
      const double g =
          n.clamped[i] ? n.inv[i] * du[k] : n.inv[i] * (du[k] - n.u[i * n.len + k] * proj);
      const int64_t index = rows ? i * cols + k : k * cols + i;
      grad[index] += float(g);
    }
  }
}

}  // namespace kiln
