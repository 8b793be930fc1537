// Keras regularizers: lookup (including the l1_l2 / l1l2 trap), validation, penalties and
// gradients.
#include "core/keras/regularizers.h"

#include <cmath>

#include "core/base/status.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace kiln {
namespace {

v1::Regularizer Resolve(const std::string& text) {
  v1::Regularizer spec;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &spec)) << text;
  auto r = ResolveRegularizer(spec, "reg");
  EXPECT_TRUE(r.ok() && r->has_value()) << r.status();
  return **r;
}

const std::vector<float> kW = {0.5f, -1.5f, 2.0f, 0.0f, -0.25f, 1.0f};
const Shape kShape{2, 3};

TEST(RegularizersTest, Penalties) {
  // sum|w| = 5.25, sum w^2 = 7.5625. The default factor 0.01 is a float32, as a given one is.
  EXPECT_NEAR(RegularizerPenalty(Resolve("name: \"l1\""), kW, kShape), 0.01f * 5.25, 1e-9);
  EXPECT_NEAR(RegularizerPenalty(Resolve("name: \"L2\""), kW, kShape), 0.01f * 7.5625, 1e-9);
  EXPECT_NEAR(RegularizerPenalty(Resolve("l1_l2 { l1: 0.1 l2: 0.2 }"), kW, kShape),
              0.1 * 5.25 + 0.2 * 7.5625, 1e-6);
  EXPECT_NEAR(RegularizerPenalty(Resolve("l2 { l2: 0.5 }"), kW, kShape, 0.25), 0.25 * 0.5 * 7.5625,
              1e-9);
}

TEST(RegularizersTest, L1L2StringTrap) {
  // Keras 3 "l1l2" is the class default (zero penalty); Keras 2 "l1_l2" is 0.01/0.01.
  EXPECT_EQ(RegularizerPenalty(Resolve("name: \"l1l2\""), kW, kShape), 0.0);
  EXPECT_NEAR(RegularizerPenalty(Resolve("name: \"l1_l2\""), kW, kShape),
              0.01 * 5.25 + 0.01 * 7.5625, 1e-6);
}

TEST(RegularizersTest, UnsetIsNoneAndErrorsNameTheField) {
  auto none = ResolveRegularizer(v1::Regularizer(), "reg");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  v1::Regularizer spec;
  spec.set_name("l3");
  EXPECT_EQ(ResolveRegularizer(spec, "d.kernel_regularizer").status().message(),
            "d.kernel_regularizer: Could not interpret regularizer identifier: l3");
  spec.mutable_l1()->set_l1(-1);
  auto bad = ResolveRegularizer(spec, "d.kernel_regularizer");
  EXPECT_EQ(FieldPathOf(bad.status()), "d.kernel_regularizer.l1.l1");
  spec.mutable_orthogonal_regularizer()->set_mode("diagonal");
  EXPECT_EQ(FieldPathOf(ResolveRegularizer(spec, "r").status()), "r.orthogonal_regularizer.mode");
}

TEST(RegularizersTest, OrthogonalRegularizerRank2Only) {
  const v1::Regularizer r = Resolve("orthogonal_regularizer {}");
  EXPECT_FALSE(CheckRegularizerShape(r, Shape{3, 3, 2, 1}, "p").ok());
  EXPECT_TRUE(CheckRegularizerShape(r, Shape{3, 4}, "p").ok());
  // Orthogonal rows give no penalty.
  const std::vector<float> eye = {1, 0, 0, 0, 2, 0};
  EXPECT_NEAR(RegularizerPenalty(r, eye, Shape{2, 3}), 0.0, 1e-12);
  // Two rows at 60 degrees: |cos| = 0.5, counted twice, factor * 0.5 * 1.0 / 1 pair.
  const std::vector<float> rows = {1, 0, 0, 0.5f, std::sqrt(3.0f) / 2, 0};
  EXPECT_NEAR(RegularizerPenalty(r, rows, Shape{2, 3}), 0.01 * 0.5 * 1.0, 1e-6);
}

TEST(RegularizersTest, GradientsMatchCentralDifferences) {
  for (const char* text :
       {"l1 { l1: 0.3 }", "l2 { l2: 0.7 }", "l1_l2 { l1: 0.1 l2: 0.4 }",
        "orthogonal_regularizer { factor: 0.5 }", "orthogonal_regularizer { mode: \"columns\" }"}) {
    const v1::Regularizer r = Resolve(text);
    std::vector<float> w = {0.5f, -1.5f, 2.0f, 0.3f, -0.25f, 1.0f};
    std::vector<float> grad(w.size(), 0.0f);
    AddRegularizerGradient(r, w, kShape, 2.0, absl::MakeSpan(grad));
    for (size_t i = 0; i < w.size(); ++i) {
      const float saved = w[i];
      const double h = 1e-3;
      w[i] = saved + float(h);
      const double plus = RegularizerPenalty(r, w, kShape, 2.0);
      w[i] = saved - float(h);
      const double minus = RegularizerPenalty(r, w, kShape, 2.0);
      w[i] = saved;
      EXPECT_NEAR(grad[i], (plus - minus) / (2 * h), 2e-3) << text << " element " << i;
    }
  }
}

}  // namespace
}  // namespace kiln
