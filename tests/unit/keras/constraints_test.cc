// Keras constraints: lookup, validation, and each projection.
#include "core/keras/constraints.h"

#include <cmath>

#include "core/base/status.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace kiln {
namespace {

v1::Constraint Resolve(const std::string& text) {
  v1::Constraint spec;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &spec)) << text;
  auto r = ResolveConstraint(spec, "c");
  EXPECT_TRUE(r.ok() && r->has_value()) << r.status();
  return **r;
}

Tensor Make(Shape shape, std::vector<float> values) {
  return Tensor::FromVector(std::move(shape), values);
}

TEST(ConstraintsTest, NamesAndErrors) {
  EXPECT_TRUE(Resolve("name: \"maxnorm\"").has_max_norm());
  EXPECT_TRUE(Resolve("name: \"NonNeg\"").has_non_neg());
  EXPECT_TRUE(Resolve("name: \"unit_norm\"").has_unit_norm());
  EXPECT_TRUE(Resolve("name: \"min_max_norm\"").has_min_max_norm());
  EXPECT_TRUE(Resolve("name: \"radial_constraint\"").has_radial_constraint());
  v1::Constraint spec;
  spec.set_name("clip");
  EXPECT_EQ(ResolveConstraint(spec, "d.kernel_constraint").status().message(),
            "d.kernel_constraint: Could not interpret constraint identifier: clip");
  EXPECT_FALSE(CheckConstraintShape(Resolve("max_norm { axis: 3 }"), Shape{2, 2}, "p").ok());
  EXPECT_TRUE(CheckConstraintShape(Resolve("max_norm { axis: -1 }"), Shape{2, 2}, "p").ok());
}

TEST(ConstraintsTest, MaxNormClipsColumnNorms) {
  // axis 0 (default): the norm of each column. Column 0 has norm 5 > 2, column 1 norm 1.
  Tensor w = Make(Shape{2, 2}, {3, 0.6f, 4, 0.8f});
  ApplyConstraint(Resolve("max_norm {}"), w);
  const float k = float(2.0 / (1e-7 + 5.0));
  EXPECT_NEAR(w.data<float>()[0], 3 * k, 1e-6);
  EXPECT_NEAR(w.data<float>()[2], 4 * k, 1e-6);
  EXPECT_NEAR(w.data<float>()[1], 0.6 * 1.0 / (1e-7 + 1.0), 1e-6);
}

TEST(ConstraintsTest, UnitNormAndMinMaxNormOverSeveralAxes) {
  // Depthwise kernel (2, 2, 1, 2) with axis [0, 1]: each spatial filter normalised.
  Tensor w = Make(Shape{2, 2, 1, 2}, {1, 2, 1, 2, 1, 2, 1, 2});  // filter 0 norm 2, filter 1 norm 4
  ApplyConstraint(Resolve("unit_norm { axis: [0, 1] }"), w);
  EXPECT_NEAR(w.data<float>()[0], 0.5, 1e-6);
  EXPECT_NEAR(w.data<float>()[1], 0.5, 1e-6);
  Tensor m = Make(Shape{2, 2, 1, 2}, {1, 2, 1, 2, 1, 2, 1, 2});
  ApplyConstraint(Resolve("min_max_norm { min_value: 2.5 max_value: 3 rate: 0.5 axis: [0, 1] }"),
                  m);
  // filter 0: norm 2 -> desired 0.5*2.5 + 0.5*2 = 2.25; filter 1: norm 4 -> 0.5*3 + 0.5*4 = 3.5
  EXPECT_NEAR(m.data<float>()[0], 1 * 2.25 / 2, 1e-5);
  EXPECT_NEAR(m.data<float>()[1], 2 * 3.5 / 4, 1e-5);
}

TEST(ConstraintsTest, NonNeg) {
  Tensor w = Make(Shape{4}, {-1, 0, 2, -0.5f});
  ApplyConstraint(Resolve("non_neg {}"), w);
  EXPECT_EQ(std::vector<float>(w.values<float>().begin(), w.values<float>().end()),
            (std::vector<float>{0, 0, 2, 0}));
}

TEST(ConstraintsTest, RadialConstraintFollowsKeras2) {
  // 3x3: Keras 2 fills the ring with kernel[1][1] and the centre with kernel[0][0].
  Tensor w = Make(Shape{3, 3, 1, 1}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  ApplyConstraint(Resolve("radial_constraint {}"), w);
  EXPECT_EQ(std::vector<float>(w.values<float>().begin(), w.values<float>().end()),
            (std::vector<float>{5, 5, 5, 5, 1, 5, 5, 5, 5}));
  // 4x4: inner 2x2 from kernel[1][1], ring from kernel[3][3].
  std::vector<float> v(16);
  for (int i = 0; i < 16; ++i) v[i] = float(i);
  Tensor w4 = Make(Shape{4, 4, 1, 1}, v);
  ApplyConstraint(Resolve("radial_constraint {}"), w4);
  const std::vector<float> expected = {15, 15, 15, 15, 15, 5, 5, 15, 15, 5, 5, 15, 15, 15, 15, 15};
  EXPECT_EQ(std::vector<float>(w4.values<float>().begin(), w4.values<float>().end()), expected);
  EXPECT_FALSE(CheckConstraintShape(Resolve("radial_constraint {}"), Shape{3, 3}, "p").ok());
  EXPECT_FALSE(CheckConstraintShape(Resolve("radial_constraint {}"), Shape{1, 1, 2, 2}, "p").ok());
}

}  // namespace
}  // namespace kiln
