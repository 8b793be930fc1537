#include "core/keras/constraints.h"

#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/status.h"
#include "core/keras/keras_class.h"
#include "core/keras/spec_args.h"

namespace kiln {
namespace {

using Kind = v1::Constraint::KindCase;
constexpr double kEpsilon = 1e-7;

// `axis` of a resolved constraint: its defaults are filled in.
std::vector<int> AxesOf(const google::protobuf::RepeatedField<int32_t>& axis) {
  return std::vector<int>(axis.begin(), axis.end());
}

std::vector<int> ConstraintAxes(const v1::Constraint& c) {
  switch (c.kind_case()) {
    case Kind::kMaxNorm:
      return AxesOf(c.max_norm().axis());
    case Kind::kMinMaxNorm:
      return AxesOf(c.min_max_norm().axis());
    case Kind::kUnitNorm:
      return AxesOf(c.unit_norm().axis());
    default:
      return {};
  }
}

// sqrt(sum(w^2, axes, keepdims)) for every element: returns per-element group ids and the
// per-group norms.
void GroupNorms(const Tensor& w, const std::vector<int>& axes, std::vector<int64_t>& group,
                std::vector<double>& norms) {
  const Shape& shape = w.shape();
  const int rank = shape.rank();
  std::vector<bool> reduced(rank, false);
  for (int a : axes) reduced[NormalizeAxis(a, rank)] = true;
  // Strides of the kept axes, to number the groups.
  std::vector<int64_t> group_stride(rank, 0);
  int64_t groups = 1;
  for (int i = rank - 1; i >= 0; --i) {
    if (!reduced[i]) {
      group_stride[i] = groups;
      groups *= shape[i];
    }
  }
  const int64_t n = w.num_elements();
  group.assign(n, 0);
  norms.assign(groups, 0.0);
  std::vector<int64_t> index(rank, 0);
  const float* v = w.data<float>();
  for (int64_t e = 0; e < n; ++e) {
    int64_t g = 0;
    for (int i = 0; i < rank; ++i) g += index[i] * group_stride[i];
    group[e] = g;
    norms[g] += double(v[e]) * v[e];
    for (int i = rank - 1; i >= 0; --i) {
      if (++index[i] < shape[i]) break;
      index[i] = 0;
    }
  }
  for (double& x : norms) x = std::sqrt(x);
}

// Keras 2 RadialConstraint on one (k, k) slice: rebuilt ring by ring from the diagonal values,
// exactly as keras/constraints.py's _kernel_constraint does (including its choice of
// kernel[start-1, start-1] for the centre of odd sizes).
void RadialSlice(std::vector<float>& kernel, int k) {
  const int start = k / 2;
  auto at = [&](int r, int c) { return kernel[r * k + c]; };
  std::vector<float> out(k * k);
  int size, index;
  if (k % 2 == 1) {
    size = 1;
    index = 0;
  } else {
    size = 2;
    index = 1;
  }
  // Current (size x size) core, centred in the k x k output.
  int offset = (k - size) / 2;
  for (int r = 0; r < size; ++r) {
    for (int c = 0; c < size; ++c) out[(offset + r) * k + offset + c] = at(start - 1, start - 1);
  }
  for (int i = index; i < start; ++i) {
    const float ring = at(start + i, start + i);
    offset -= 1;
    size += 2;
    for (int r = 0; r < size; ++r) {
      for (int c = 0; c < size; ++c) {
        if (r == 0 || c == 0 || r == size - 1 || c == size - 1) {
          out[(offset + r) * k + offset + c] = ring;
        }
      }
    }
  }
  kernel = out;
}

}  // namespace

absl::StatusOr<std::optional<v1::Constraint>> ResolveConstraint(const v1::Constraint& spec,
                                                                absl::string_view path) {
  v1::Constraint out;
  if (spec.kind_case() == Kind::KIND_NOT_SET) return std::nullopt;
  if (spec.kind_case() == Kind::kName) {
    if (!SetKerasObjectClass(out, spec.name())) {
      return FieldError(path,
                        absl::StrCat("Could not interpret constraint identifier: ", spec.name()));
    }
  } else {
    KILN_RETURN_IF_ERROR(SpecArgs(*KerasObjectClass(spec), KerasObjectPath(spec, path)).Validate());
    out = spec;
  }
  FillKerasDefaults(*MutableKerasObjectClass(out));
  if (out.kind_case() == Kind::kMinMaxNorm) {
    const auto& m = out.min_max_norm();
    if (!(m.min_value() >= 0) || !(m.min_value() <= m.max_value())) {
      return FieldError(absl::StrCat(path, ".min_max_norm"),
                        absl::StrCat("Expected 0 <= min_value <= max_value. Received: "
                                     "min_value=",
                                     m.min_value(), ", max_value=", m.max_value()));
    }
  }
  return out;
}

absl::Status CheckConstraintShape(const v1::Constraint& c, const Shape& shape,
                                  absl::string_view path) {
  for (int axis : ConstraintAxes(c)) {
    if (axis < -shape.rank() || axis >= shape.rank()) {
      return FieldError(path, absl::StrCat("axis ", axis,
                                           " is out of bounds for a weight of "
                                           "shape ",
                                           shape.ToString()));
    }
  }
  if (c.kind_case() == Kind::kRadialConstraint) {
    if (shape.rank() != 4) {
      return FieldError(path, absl::StrCat("The weight tensor must have rank 4. Received weight "
                                           "tensor with shape: ",
                                           shape.ToString()));
    }
    if (shape[0] != shape[1] || shape[0] < 2) {
      return FieldError(path, absl::StrCat("RadialConstraint needs a square kernel of at least "
                                           "2x2. Received weight tensor with shape: ",
                                           shape.ToString()));
    }
  }
  return absl::OkStatus();
}

void ApplyConstraint(const v1::Constraint& c, Tensor& w) {
  float* v = w.data<float>();
  const int64_t n = w.num_elements();
  switch (c.kind_case()) {
    case Kind::kNonNeg:
      for (int64_t i = 0; i < n; ++i) v[i] = v[i] >= 0 ? v[i] : 0.0f;
      return;
    case Kind::kRadialConstraint: {
      const Shape& s = w.shape();
      const int k = int(s[0]);
      const int64_t depth = s[2] * s[3];
      std::vector<float> slice(k * k);
      for (int64_t d = 0; d < depth; ++d) {
        for (int i = 0; i < k * k; ++i) slice[i] = v[i * depth + d];
        RadialSlice(slice, k);
        for (int i = 0; i < k * k; ++i) v[i * depth + d] = slice[i];
      }
      return;
    }
    case Kind::kMaxNorm:
    case Kind::kMinMaxNorm:
    case Kind::kUnitNorm: {
      std::vector<int64_t> group;
      std::vector<double> norms;
      GroupNorms(w, ConstraintAxes(c), group, norms);
      std::vector<double> factor(norms.size());
      for (size_t g = 0; g < norms.size(); ++g) {
        const double norm = norms[g];
        double desired = 1.0;
        if (c.kind_case() == Kind::kMaxNorm) {
          desired = std::clamp(norm, 0.0, double(c.max_norm().max_value()));
        } else if (c.kind_case() == Kind::kMinMaxNorm) {
          const auto& m = c.min_max_norm();
          const double rate = m.rate();
          desired = rate * std::clamp(norm, double(m.min_value()), double(m.max_value())) +
                    (1 - rate) * norm;
        }
        factor[g] = desired / (kEpsilon + norm);
      }
      for (int64_t i = 0; i < n; ++i) v[i] = float(v[i] * factor[group[i]]);
      return;
    }
    default:
      return;
  }
}

}  // namespace kiln
