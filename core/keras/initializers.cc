#include "core/keras/initializers.h"

#include <cmath>
#include <random>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/base/status.h"

namespace kiln {
namespace {

using Kind = v1::Initializer::KindCase;

// Keras 3's lookup table: class names, their snake_case forms and the extra aliases.
Kind KindForName(absl::string_view name) {
  static const auto* table = new absl::flat_hash_map<std::string, Kind>{
      {"Zeros", Kind::kZeros},
      {"zeros", Kind::kZeros},
      {"zero", Kind::kZeros},
      {"Ones", Kind::kOnes},
      {"ones", Kind::kOnes},
      {"one", Kind::kOnes},
      {"Constant", Kind::kConstant},
      {"constant", Kind::kConstant},
      {"RandomNormal", Kind::kRandomNormal},
      {"random_normal", Kind::kRandomNormal},
      {"normal", Kind::kRandomNormal},
      {"RandomUniform", Kind::kRandomUniform},
      {"random_uniform", Kind::kRandomUniform},
      {"uniform", Kind::kRandomUniform},
      {"TruncatedNormal", Kind::kTruncatedNormal},
      {"truncated_normal", Kind::kTruncatedNormal},
      {"VarianceScaling", Kind::kVarianceScaling},
      {"variance_scaling", Kind::kVarianceScaling},
      {"GlorotNormal", Kind::kGlorotNormal},
      {"glorot_normal", Kind::kGlorotNormal},
      {"GlorotUniform", Kind::kGlorotUniform},
      {"glorot_uniform", Kind::kGlorotUniform},
      {"HeNormal", Kind::kHeNormal},
      {"he_normal", Kind::kHeNormal},
      {"HeUniform", Kind::kHeUniform},
      {"he_uniform", Kind::kHeUniform},
      {"LecunNormal", Kind::kLecunNormal},
      {"lecun_normal", Kind::kLecunNormal},
      {"LecunUniform", Kind::kLecunUniform},
      {"lecun_uniform", Kind::kLecunUniform},
      {"Orthogonal", Kind::kOrthogonal},
      {"orthogonal", Kind::kOrthogonal},
      {"OrthogonalInitializer", Kind::kOrthogonal},
      {"Identity", Kind::kIdentity},
      {"identity", Kind::kIdentity},
      {"IdentityInitializer", Kind::kIdentity},
  };
  auto it = table->find(name);
  return it == table->end() ? Kind::KIND_NOT_SET : it->second;
}

v1::Initializer FromKind(Kind kind) {
  v1::Initializer out;
  switch (kind) {
    case Kind::kZeros:
      out.mutable_zeros();
      break;
    case Kind::kOnes:
      out.mutable_ones();
      break;
    case Kind::kConstant:
      out.mutable_constant();
      break;
    case Kind::kRandomNormal:
      out.mutable_random_normal();
      break;
    case Kind::kRandomUniform:
      out.mutable_random_uniform();
      break;
    case Kind::kTruncatedNormal:
      out.mutable_truncated_normal();
      break;
    case Kind::kVarianceScaling:
      out.mutable_variance_scaling();
      break;
    case Kind::kGlorotNormal:
      out.mutable_glorot_normal();
      break;
    case Kind::kGlorotUniform:
      out.mutable_glorot_uniform();
      break;
    case Kind::kHeNormal:
      out.mutable_he_normal();
      break;
    case Kind::kHeUniform:
      out.mutable_he_uniform();
      break;
    case Kind::kLecunNormal:
      out.mutable_lecun_normal();
      break;
    case Kind::kLecunUniform:
      out.mutable_lecun_uniform();
      break;
    case Kind::kOrthogonal:
      out.mutable_orthogonal();
      break;
    case Kind::kIdentity:
      out.mutable_identity();
      break;
    case Kind::kName:
    case Kind::KIND_NOT_SET:
      break;
  }
  return out;
}

// VarianceScaling after defaults: scale, mode and distribution as Keras normalises them.
struct VarianceScalingParams {
  double scale;
  std::string mode;
  std::string distribution;
  std::optional<int64_t> seed;
};

std::optional<VarianceScalingParams> AsVarianceScaling(const v1::Initializer& init) {
  auto seed_of = [](const auto& m) {
    return m.has_seed() ? std::optional<int64_t>(m.seed()) : std::nullopt;
  };
  switch (init.kind_case()) {
    case Kind::kVarianceScaling: {
      const auto& vs = init.variance_scaling();
      std::string mode = vs.mode().empty() ? "fan_in" : vs.mode();
      std::string dist =
          vs.distribution().empty() ? "truncated_normal" : absl::AsciiStrToLower(vs.distribution());
      if (dist == "normal") dist = "truncated_normal";
      return VarianceScalingParams{vs.has_scale() ? vs.scale() : 1.0, mode, dist, seed_of(vs)};
    }
    case Kind::kGlorotNormal:
      return VarianceScalingParams{1.0, "fan_avg", "truncated_normal",
                                   seed_of(init.glorot_normal())};
    case Kind::kGlorotUniform:
      return VarianceScalingParams{1.0, "fan_avg", "uniform", seed_of(init.glorot_uniform())};
    case Kind::kHeNormal:
      return VarianceScalingParams{2.0, "fan_in", "truncated_normal", seed_of(init.he_normal())};
    case Kind::kHeUniform:
      return VarianceScalingParams{2.0, "fan_in", "uniform", seed_of(init.he_uniform())};
    case Kind::kLecunNormal:
      return VarianceScalingParams{1.0, "fan_in", "truncated_normal", seed_of(init.lecun_normal())};
    case Kind::kLecunUniform:
      return VarianceScalingParams{1.0, "fan_in", "uniform", seed_of(init.lecun_uniform())};
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
void FillOrthogonal(double gain, uint64_t seed, Tensor& out) {
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
}

}  // namespace

absl::StatusOr<v1::Initializer> ResolveInitializer(const v1::Initializer& spec,
                                                   absl::string_view default_name,
                                                   absl::string_view path) {
  if (spec.kind_case() == Kind::KIND_NOT_SET) return FromKind(KindForName(default_name));
  if (spec.kind_case() == Kind::kName) {
    const Kind kind = KindForName(spec.name());
    if (kind == Kind::KIND_NOT_SET) {
      return FieldError(path,
                        absl::StrCat("Could not interpret initializer identifier: ", spec.name()));
    }
    return FromKind(kind);
  }
  if (spec.kind_case() == Kind::kVarianceScaling) {
    const auto& vs = spec.variance_scaling();
    if (vs.has_scale() && !(vs.scale() > 0)) {
      return FieldError(
          absl::StrCat(path, ".variance_scaling.scale"),
          absl::StrCat("Argument `scale` must be positive float. Received: scale=", vs.scale()));
    }
    const std::optional<VarianceScalingParams> p = AsVarianceScaling(spec);
    if (p->mode != "fan_in" && p->mode != "fan_out" && p->mode != "fan_avg") {
      return FieldError(absl::StrCat(path, ".variance_scaling.mode"),
                        absl::StrCat("Invalid `mode` argument: ", p->mode,
                                     ". Please use one of {'fan_in', 'fan_out', 'fan_avg'}"));
    }
    if (p->distribution != "uniform" && p->distribution != "truncated_normal" &&
        p->distribution != "untruncated_normal") {
      return FieldError(
          absl::StrCat(path, ".variance_scaling.distribution"),
          absl::StrCat("Invalid `distribution` argument: ", p->distribution,
                       ".Please use one of {'uniform', 'truncated_normal', 'untruncated_normal'}"));
    }
  }
  return spec;
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

void RunInitializer(const v1::Initializer& init, uint64_t fallback_seed, Tensor& out) {
  auto seed_or = [&](const auto& m) -> uint64_t {
    return m.has_seed() ? static_cast<uint64_t>(m.seed()) : fallback_seed;
  };
  auto values = out.values<float>();
  switch (init.kind_case()) {
    case Kind::kZeros:
    case Kind::KIND_NOT_SET:
    case Kind::kName:
      std::fill(values.begin(), values.end(), 0.0f);
      return;
    case Kind::kOnes:
      std::fill(values.begin(), values.end(), 1.0f);
      return;
    case Kind::kConstant:
      std::fill(values.begin(), values.end(), init.constant().value());
      return;
    case Kind::kRandomNormal: {
      const auto& m = init.random_normal();
      FillNormal(m.has_mean() ? m.mean() : 0.0, m.has_stddev() ? m.stddev() : 0.05, false,
                 seed_or(m), out);
      return;
    }
    case Kind::kTruncatedNormal: {
      const auto& m = init.truncated_normal();
      FillNormal(m.has_mean() ? m.mean() : 0.0, m.has_stddev() ? m.stddev() : 0.05, true,
                 seed_or(m), out);
      return;
    }
    case Kind::kRandomUniform: {
      const auto& m = init.random_uniform();
      FillUniform(m.has_minval() ? m.minval() : -0.05, m.has_maxval() ? m.maxval() : 0.05,
                  seed_or(m), out);
      return;
    }
    case Kind::kOrthogonal: {
      const auto& m = init.orthogonal();
      FillOrthogonal(m.has_gain() ? m.gain() : 1.0, seed_or(m), out);
      return;
    }
    case Kind::kIdentity: {
      const double gain = init.identity().has_gain() ? init.identity().gain() : 1.0;
      const int64_t rows = out.shape()[0], cols = out.shape()[1];
      std::fill(values.begin(), values.end(), 0.0f);
      for (int64_t i = 0; i < std::min(rows, cols); ++i) values[i * cols + i] = float(gain);
      return;
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
  const uint64_t seed = p.seed.has_value() ? static_cast<uint64_t>(*p.seed) : fallback_seed;
  if (p.distribution == "truncated_normal") {
    // 0.8796... is the stddev of a unit normal truncated to [-2, 2].
    FillNormal(0.0, std::sqrt(scale) / 0.87962566103423978, true, seed, out);
  } else if (p.distribution == "untruncated_normal") {
    FillNormal(0.0, std::sqrt(scale), false, seed, out);
  } else {
    const double limit = std::sqrt(3.0 * scale);
    FillUniform(-limit, limit, seed, out);
  }
}

absl::string_view InitializerClassName(const v1::Initializer& init) {
  switch (init.kind_case()) {
    case Kind::kZeros:
      return "Zeros";
    case Kind::kOnes:
      return "Ones";
    case Kind::kConstant:
      return "Constant";
    case Kind::kRandomNormal:
      return "RandomNormal";
    case Kind::kRandomUniform:
      return "RandomUniform";
    case Kind::kTruncatedNormal:
      return "TruncatedNormal";
    case Kind::kVarianceScaling:
      return "VarianceScaling";
    case Kind::kGlorotNormal:
      return "GlorotNormal";
    case Kind::kGlorotUniform:
      return "GlorotUniform";
    case Kind::kHeNormal:
      return "HeNormal";
    case Kind::kHeUniform:
      return "HeUniform";
    case Kind::kLecunNormal:
      return "LecunNormal";
    case Kind::kLecunUniform:
      return "LecunUniform";
    case Kind::kOrthogonal:
      return "Orthogonal";
    case Kind::kIdentity:
      return "Identity";
    case Kind::kName:
    case Kind::KIND_NOT_SET:
      break;
  }
  return "";
}

}  // namespace kiln
