#include "core/keras/initializers.h"

#include <cmath>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/cancellation.h"
#include "core/base/check.h"
#include "core/base/status.h"
#include "core/keras/keras_class.h"
#include "core/keras/spec_args.h"

namespace kiln {
namespace {

using Kind = v1::Initializer::KindCase;

// VarianceScaling after defaults: scale, mode and distribution as Keras normalises them.
struct VarianceScalingParams {
  double scale;
  std::string mode;
  std::string distribution;
  std::optional<int64_t> seed;
};

std::optional<int64_t> SeedOf(const google::protobuf::Message& m) {
  if (m.GetDescriptor()->FindFieldByName("seed") == nullptr) return std::nullopt;
  SpecArgs args(m, "");
  if (!args.Has("seed")) return std::nullopt;
  return args.Int("seed");
}

std::optional<VarianceScalingParams> AsVarianceScaling(const v1::Initializer& init) {
  switch (init.kind_case()) {
    case Kind::kVarianceScaling: {
      const SpecArgs args(init.variance_scaling(), "");
      std::string dist = args.String("distribution");
      if (dist == "normal") dist = "truncated_normal";
      return VarianceScalingParams{args.Float("scale"), args.String("mode"), dist,
                                   SeedOf(init.variance_scaling())};
    }
    case Kind::kGlorotNormal:
      return VarianceScalingParams{1.0, "fan_avg", "truncated_normal",
                                   SeedOf(init.glorot_normal())};
    case Kind::kGlorotUniform:
      return VarianceScalingParams{1.0, "fan_avg", "uniform", SeedOf(init.glorot_uniform())};
    case Kind::kHeNormal:
      return VarianceScalingParams{2.0, "fan_in", "truncated_normal", SeedOf(init.he_normal())};
    case Kind::kHeUniform:
      return VarianceScalingParams{2.0, "fan_in", "uniform", SeedOf(init.he_uniform())};
    case Kind::kLecunNormal:
      return VarianceScalingParams{1.0, "fan_in", "truncated_normal", SeedOf(init.lecun_normal())};
    case Kind::kLecunUniform:
      return VarianceScalingParams{1.0, "fan_in", "uniform", SeedOf(init.lecun_uniform())};
    default:
      return std::nullopt;
  }
}

// Standard normal values with |z| <= 2, re-drawing the rest (TF/Keras truncated_normal).
double TruncatedStandardNormal(std::mt19937_64& gen) {
  std::normal_distribution<double> normal(0.0, 1.0);
  for (;;) {
    const double z = normal(gen);
    if (std::abs(z) <= 2.0) return z;
  }
}

void FillNormal(double mean, double stddev, bool truncated, uint64_t seed, Tensor& out) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (float& v : out.values<float>()) {
    const double z = truncated ? TruncatedStandardNormal(gen) : normal(gen);
    v = static_cast<float>(mean + stddev * z);
  }
}

void FillUniform(double low, double high, uint64_t seed, Tensor& out) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> uniform(low, high);
  for (float& v : out.values<float>()) v = static_cast<float>(uniform(gen));
}

// Keras Orthogonal: QR of a (max, min) normal sample with Q's columns sign-fixed so R has a
// positive diagonal (modified Gram-Schmidt yields exactly that Q), transposed for wide shapes.
// A 4096x4096 kernel takes tens of seconds: the work stops when its call is cancelled.
absl::Status FillOrthogonal(double gain, uint64_t seed, Tensor& out) {
  const Shape& shape = out.shape();
  int64_t rows = 1;
  for (int i = 0; i + 1 < shape.rank(); ++i) rows *= shape[i];
  const int64_t cols = shape[shape.rank() - 1];
  const int64_t m = std::max(rows, cols), n = std::min(rows, cols);
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> a(m * n);  // column-major: column j at a[j*m]
  for (double& v : a) v = normal(gen);
  for (int64_t j = 0; j < n; ++j) {
    if (j % 16 == 0 && ScopedCancellation::Requested()) return ScopedCancellation::Stopped();
    double* qj = &a[j * m];
    for (int64_t i = 0; i < j; ++i) {
      const double* qi = &a[i * m];
      double dot = 0;
      for (int64_t k = 0; k < m; ++k) dot += qi[k] * qj[k];
      for (int64_t k = 0; k < m; ++k) qj[k] -= dot * qi[k];
    }
    double norm = 0;
    for (int64_t k = 0; k < m; ++k) norm += qj[k] * qj[k];
    norm = std::sqrt(norm);
    for (int64_t k = 0; k < m; ++k) qj[k] /= norm;
  }
  // q is (m, n); the weight is q reshaped to (rows, cols), or q^T when rows < cols.
  float* w = out.data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const double q = rows >= cols ? a[c * m + r] : a[r * m + c];
      w[r * cols + c] = static_cast<float>(gain * q);
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::Initializer> ResolveInitializer(const v1::Initializer& spec,
                                                   absl::string_view default_name,
                                                   absl::string_view path) {
  v1::Initializer out;
  if (spec.kind_case() == Kind::KIND_NOT_SET) {
    KILN_CHECK(SetKerasObjectClass(out, default_name)) << default_name;
    FillKerasDefaults(*MutableKerasObjectClass(out));
    return out;
  }
  if (spec.kind_case() == Kind::kName) {
    if (!SetKerasObjectClass(out, spec.name())) {
      return FieldError(path,
                        absl::StrCat("Could not interpret initializer identifier: ", spec.name()));
    }
    FillKerasDefaults(*MutableKerasObjectClass(out));
    return out;
  }
  KILN_RETURN_IF_ERROR(SpecArgs(*KerasObjectClass(spec), KerasObjectPath(spec, path)).Validate());
  out = spec;
  FillKerasDefaults(*MutableKerasObjectClass(out));
  return out;
}

std::pair<double, double> ComputeFans(const Shape& shape) {
  const int rank = shape.rank();
  if (rank == 0) return {1.0, 1.0};
  if (rank == 1) return {double(shape[0]), double(shape[0])};
  if (rank == 2) return {double(shape[0]), double(shape[1])};
  double receptive = 1;
  for (int i = 0; i < rank - 2; ++i) receptive *= shape[i];
  return {shape[rank - 2] * receptive, shape[rank - 1] * receptive};
}

absl::Status CheckInitializerShape(const v1::Initializer& resolved, const Shape& shape,
                                   absl::string_view path) {
  if (resolved.kind_case() == Kind::kIdentity && shape.rank() != 2) {
    return FieldError(path, absl::StrCat("Identity matrix initializer can only be used for 2D "
                                         "matrices. Received: shape=",
                                         shape.ToString(), " of rank ", shape.rank(), "."));
  }
  if (resolved.kind_case() == Kind::kOrthogonal && shape.rank() < 2) {
    return FieldError(path, absl::StrCat("The tensor to initialize must be at least "
                                         "two-dimensional. Received: shape=",
                                         shape.ToString(), " of rank ", shape.rank(), "."));
  }
  return absl::OkStatus();
}

absl::Status RunInitializer(const v1::Initializer& init, uint64_t fallback_seed, Tensor& out) {
  auto values = out.values<float>();
  const google::protobuf::Message* held = KerasObjectClass(init);
  const SpecArgs args(held != nullptr ? *held : init, "");
  const uint64_t seed = held != nullptr && SeedOf(*held).has_value()
                            ? static_cast<uint64_t>(*SeedOf(*held))
                            : fallback_seed;
  switch (init.kind_case()) {
    case Kind::kZeros:
    case Kind::KIND_NOT_SET:
    case Kind::kName:
      std::fill(values.begin(), values.end(), 0.0f);
      return absl::OkStatus();
    case Kind::kOnes:
      std::fill(values.begin(), values.end(), 1.0f);
      return absl::OkStatus();
    case Kind::kConstant:
      std::fill(values.begin(), values.end(), float(args.Float("value")));
      return absl::OkStatus();
    case Kind::kRandomNormal:
    case Kind::kTruncatedNormal:
      FillNormal(args.Float("mean"), args.Float("stddev"),
                 init.kind_case() == Kind::kTruncatedNormal, seed, out);
      return absl::OkStatus();
    case Kind::kRandomUniform:
      FillUniform(args.Float("minval"), args.Float("maxval"), seed, out);
      return absl::OkStatus();
    case Kind::kOrthogonal:
      return FillOrthogonal(args.Float("gain"), seed, out);
    case Kind::kIdentity: {
      const double gain = args.Float("gain");
      const int64_t rows = out.shape()[0], cols = out.shape()[1];
      std::fill(values.begin(), values.end(), 0.0f);
      for (int64_t i = 0; i < std::min(rows, cols); ++i) values[i * cols + i] = float(gain);
      return absl::OkStatus();
    }
    default:
      break;
  }
  const VarianceScalingParams p = *AsVarianceScaling(init);
  const auto [fan_in, fan_out] = ComputeFans(out.shape());
  double scale = p.scale;
  if (p.mode == "fan_in") {
    scale /= std::max(1.0, fan_in);
  } else if (p.mode == "fan_out") {
    scale /= std::max(1.0, fan_out);
  } else {
    scale /= std::max(1.0, (fan_in + fan_out) / 2.0);
  }
  if (p.distribution == "truncated_normal") {
    // 0.8796... is the stddev of a unit normal truncated to [-2, 2].
    FillNormal(0.0, std::sqrt(scale) / 0.87962566103423978, true, seed, out);
  } else if (p.distribution == "untruncated_normal") {
    FillNormal(0.0, std::sqrt(scale), false, seed, out);
  } else {
    const double limit = std::sqrt(3.0 * scale);
    FillUniform(-limit, limit, seed, out);
  }
  return absl::OkStatus();
}

absl::string_view InitializerClassName(const v1::Initializer& init) {
  const google::protobuf::Message* held = KerasObjectClass(init);
  return held == nullptr ? "" : KerasClassOf(held->GetDescriptor()).class_name();
}

}  // namespace kiln
