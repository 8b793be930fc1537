// Keras initializers: lookup, validation, fans, and the statistics and bounds of the values.
#include "core/keras/initializers.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/base/status.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace kiln {
namespace {

v1::Initializer Resolve(const std::string& text, const std::string& default_name = "zeros") {
  v1::Initializer spec;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &spec)) << text;
  absl::StatusOr<v1::Initializer> r = ResolveInitializer(spec, default_name, "init");
  EXPECT_TRUE(r.ok()) << r.status();
  return *r;
}

Tensor Fill(const v1::Initializer& init, const Shape& shape, uint64_t seed = 42) {
  Tensor t(DType::kFloat32, shape);
  EXPECT_TRUE(RunInitializer(init, seed, t).ok());
  return t;
}

struct Stats {
  double mean = 0, stddev = 0, min = 1e30, max = -1e30;
};
Stats StatsOf(const Tensor& t) {
  Stats s;
  const auto v = t.values<float>();
  for (float x : v) {
    s.mean += x;
    s.min = std::min<double>(s.min, x);
    s.max = std::max<double>(s.max, x);
  }
  s.mean /= double(v.size());
  for (float x : v) s.stddev += (x - s.mean) * (x - s.mean);
  s.stddev = std::sqrt(s.stddev / double(v.size()));
  return s;
}

TEST(InitializersTest, NamesResolveToClasses) {
  for (const auto& [name, expected] :
       std::vector<std::pair<std::string, std::string>>{{"glorot_uniform", "GlorotUniform"},
                                                        {"GlorotUniform", "GlorotUniform"},
                                                        {"he_normal", "HeNormal"},
                                                        {"normal", "RandomNormal"},
                                                        {"uniform", "RandomUniform"},
                                                        {"one", "Ones"},
                                                        {"zero", "Zeros"},
                                                        {"OrthogonalInitializer", "Orthogonal"},
                                                        {"lecun_uniform", "LecunUniform"},
                                                        {"variance_scaling", "VarianceScaling"},
                                                        {"truncated_normal", "TruncatedNormal"}}) {
    EXPECT_EQ(InitializerClassName(Resolve(absl::StrCat("name: \"", name, "\""))), expected)
        << name;
  }
  EXPECT_EQ(InitializerClassName(Resolve("", "glorot_uniform")), "GlorotUniform");
}

TEST(InitializersTest, UnknownNameAndBadVarianceScaling) {
  v1::Initializer spec;
  spec.set_name("glorot");
  EXPECT_EQ(ResolveInitializer(spec, "zeros", "dense.kernel_initializer").status().message(),
            "dense.kernel_initializer: Could not interpret initializer identifier: glorot");
  spec.mutable_variance_scaling()->set_scale(-1);
  auto bad = ResolveInitializer(spec, "zeros", "k");
  EXPECT_EQ(FieldPathOf(bad.status()), "k.variance_scaling.scale");
  spec.mutable_variance_scaling()->set_scale(1);
  spec.mutable_variance_scaling()->set_mode("fan_max");
  EXPECT_EQ(FieldPathOf(ResolveInitializer(spec, "zeros", "k").status()),
            "k.variance_scaling.mode");
  spec.mutable_variance_scaling()->set_mode("fan_in");
  spec.mutable_variance_scaling()->set_distribution("laplace");
  EXPECT_EQ(FieldPathOf(ResolveInitializer(spec, "zeros", "k").status()),
            "k.variance_scaling.distribution");
}

TEST(InitializersTest, FansOfADepthwiseKernel) {
  // (kh, kw, C, M): fan_in = kh*kw*C, fan_out = kh*kw*M - Keras's generic rule.
  const auto [fan_in, fan_out] = ComputeFans(Shape{3, 3, 32, 1});
  EXPECT_EQ(fan_in, 288);
  EXPECT_EQ(fan_out, 9);
  EXPECT_EQ(ComputeFans(Shape{10, 4}), (std::pair<double, double>{10, 4}));
  EXPECT_EQ(ComputeFans(Shape{7}), (std::pair<double, double>{7, 7}));
  EXPECT_EQ(ComputeFans(Shape{}), (std::pair<double, double>{1, 1}));
}

TEST(InitializersTest, GlorotUniformBoundOnADepthwiseKernel) {
  const Tensor t = Fill(Resolve("glorot_uniform {}"), Shape{3, 3, 32, 1});
  const double limit = std::sqrt(6.0 / (288 + 9));  // 0.142134, the reference's example
  EXPECT_NEAR(limit, 0.142134, 1e-6);
  const Stats s = StatsOf(t);
  EXPECT_GE(s.min, -limit);
  EXPECT_LE(s.max, limit);
  EXPECT_GT(s.max, 0.9 * limit);  // the whole range is used
  EXPECT_NEAR(s.stddev, limit / std::sqrt(3.0), 0.15 * limit / std::sqrt(3.0));
}

TEST(InitializersTest, TruncatedNormalsStayWithinTwoStddev) {
  // he_normal on (3, 3, 32, 64): stddev = sqrt(2/288) / 0.8796 before truncation.
  const Tensor t = Fill(Resolve("he_normal {}"), Shape{3, 3, 32, 64});
  const double stddev = std::sqrt(2.0 / 288) / 0.87962566103423978;
  const Stats s = StatsOf(t);
  EXPECT_NEAR(stddev, 0.094737, 1e-5);
  EXPECT_LE(s.max, 2 * stddev + 1e-6);
  EXPECT_GE(s.min, -2 * stddev - 1e-6);
  EXPECT_NEAR(s.stddev, std::sqrt(2.0 / 288), 0.03 * std::sqrt(2.0 / 288));  // after truncation
  EXPECT_NEAR(s.mean, 0, 0.01);
}

TEST(InitializersTest, VarianceScalingModesAndDistributions) {
  const Shape shape{50, 200};
  // fan_out, untruncated normal, scale 3: stddev sqrt(3/200).
  const Stats n = StatsOf(Fill(Resolve("variance_scaling { scale: 3 mode: \"fan_out\" "
                                       "distribution: \"untruncated_normal\" }"),
                               shape));
  EXPECT_NEAR(n.stddev, std::sqrt(3.0 / 200), 0.05 * std::sqrt(3.0 / 200));
  // fan_avg uniform: limit sqrt(3 * scale / 125).
  const Stats u = StatsOf(Fill(Resolve("variance_scaling { mode: \"fan_avg\" "
                                       "distribution: \"uniform\" }"),
                               shape));
  EXPECT_LE(u.max, std::sqrt(3.0 / 125));
  EXPECT_GT(u.max, 0.95 * std::sqrt(3.0 / 125));
  // "normal" means truncated_normal.
  const Stats t = StatsOf(Fill(Resolve("variance_scaling { distribution: \"normal\" }"), shape));
  EXPECT_LE(t.max, 2 * std::sqrt(1.0 / 50) / 0.87962566103423978 + 1e-6);
}

TEST(InitializersTest, RandomNormalUniformAndConstants) {
  const Stats n = StatsOf(Fill(Resolve("random_normal { mean: 1 stddev: 0.5 }"), Shape{100, 100}));
  EXPECT_NEAR(n.mean, 1, 0.02);
  EXPECT_NEAR(n.stddev, 0.5, 0.02);
  const Stats d = StatsOf(Fill(Resolve("random_normal {}"), Shape{100, 100}));
  EXPECT_NEAR(d.stddev, 0.05, 0.002);
  const Stats u = StatsOf(Fill(Resolve("random_uniform { minval: 2 maxval: 3 }"), Shape{1000}));
  EXPECT_GE(u.min, 2);
  EXPECT_LT(u.max, 3);
  const Stats tn = StatsOf(Fill(Resolve("truncated_normal { stddev: 1 }"), Shape{10000}));
  EXPECT_LE(tn.max, 2.0);
  EXPECT_GE(tn.min, -2.0);
  EXPECT_EQ(StatsOf(Fill(Resolve("constant { value: 0.25 }"), Shape{3, 3})).max, 0.25);
  EXPECT_EQ(StatsOf(Fill(Resolve("ones {}"), Shape{4})).min, 1);
  EXPECT_EQ(StatsOf(Fill(Resolve("zeros {}"), Shape{4})).max, 0);
}

TEST(InitializersTest, SameSeedSameValues) {
  const v1::Initializer seeded = Resolve("glorot_uniform { seed: 7 }");
  const Tensor a = Fill(seeded, Shape{4, 4}, 1), b = Fill(seeded, Shape{4, 4}, 2);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(a.data<float>()[i], b.data<float>()[i]);
  const v1::Initializer unseeded = Resolve("glorot_uniform {}");
  const Tensor c = Fill(unseeded, Shape{4, 4}, 1), d = Fill(unseeded, Shape{4, 4}, 2);
  EXPECT_NE(c.data<float>()[0], d.data<float>()[0]);
}

TEST(InitializersTest, OrthogonalIsOrthonormal) {
  for (const Shape& shape : {Shape{6, 4}, Shape{4, 6}, Shape{3, 3, 2, 5}}) {
    const Tensor t = Fill(Resolve("orthogonal { gain: 2 }"), shape);
    const int64_t cols = shape[shape.rank() - 1], rows = t.num_elements() / cols;
    const float* w = t.data<float>();
    // Columns orthonormal (rows >= cols) or rows orthonormal (rows < cols), times gain.
    const bool by_cols = rows >= cols;
    const int64_t count = by_cols ? cols : rows, len = by_cols ? rows : cols;
    for (int64_t a = 0; a < count; ++a) {
      for (int64_t b = 0; b < count; ++b) {
        double dot = 0;
        for (int64_t k = 0; k < len; ++k) {
          dot += by_cols ? double(w[k * cols + a]) * w[k * cols + b]
                         : double(w[a * cols + k]) * w[b * cols + k];
        }
        EXPECT_NEAR(dot, a == b ? 4.0 : 0.0, 1e-4) << shape.ToString();
      }
    }
  }
}

TEST(InitializersTest, IdentityAndShapeChecks) {
  const Tensor t = Fill(Resolve("identity { gain: 3 }"), Shape{2, 3});
  EXPECT_EQ(std::vector<float>(t.values<float>().begin(), t.values<float>().end()),
            (std::vector<float>{3, 0, 0, 0, 3, 0}));
  auto bad = CheckInitializerShape(Resolve("identity {}"), Shape{3, 3, 3, 1}, "p");
  EXPECT_EQ(bad.message(),
            "p: Identity matrix initializer can only be used for 2D matrices. "
            "Received: shape=(3, 3, 3, 1) of rank 4.");
  EXPECT_FALSE(CheckInitializerShape(Resolve("orthogonal {}"), Shape{5}, "p").ok());
  EXPECT_TRUE(CheckInitializerShape(Resolve("orthogonal {}"), Shape{3, 5}, "p").ok());
}

}  // namespace
}  // namespace kiln
