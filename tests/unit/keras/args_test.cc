// Keras argument standardisation: tuples, padding, data_format, output lengths and the
// TF-style "same" split.
#include "core/keras/args.h"

#include "core/base/status.h"
#include "gtest/gtest.h"

namespace kiln {
namespace {

IntList List(std::initializer_list<int> values) {
  IntList list;
  for (int v : values) list.Add(v);
  return list;
}

TEST(ArgsTest, IntBecomesPair) {
  auto pair = StandardizePair(List({3}), "x.kernel_size", "kernel_size", false, nullptr);
  ASSERT_TRUE(pair.ok());
  EXPECT_EQ(*pair, (std::array<int, 2>{3, 3}));
}

TEST(ArgsTest, EmptyUsesDefaultOrIsRequired) {
  static constexpr std::array<int, 2> kOnes = {1, 1};
  EXPECT_EQ(*StandardizePair(List({}), "p", "strides", false, &kOnes), kOnes);
  auto missing = StandardizePair(List({}), "d.kernel_size", "kernel_size", false, nullptr);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(FieldPathOf(missing.status()), "d.kernel_size");
}

TEST(ArgsTest, ZeroNegativeAndArityUseKerasMessage) {
  auto zero = StandardizePair(List({0, 3}), "d.kernel_size", "kernel_size", false, nullptr);
  EXPECT_EQ(zero.status().message(),
            "d.kernel_size: The `kernel_size` argument must be a tuple of 2 integers. Received "
            "kernel_size=[0, 3], including values {0} that do not satisfy `value > 0`");
  auto negative = StandardizePair(List({-1}), "d.strides", "strides", false, nullptr);
  EXPECT_EQ(negative.status().message(),
            "d.strides: The `strides` argument must be a tuple of 2 integers. Received "
            "strides=-1, including values {-1} that do not satisfy `value > 0`");
  auto three = StandardizePair(List({1, 2, 3}), "d.strides", "strides", false, nullptr);
  EXPECT_EQ(three.status().message(),
            "d.strides: The `strides` argument must be a tuple of 2 integers. Received "
            "strides=[1, 2, 3]");
}

TEST(ArgsTest, OutputLengthsFollowKeras) {
  EXPECT_EQ(ConvOutputLength(10, 3, 1, 1, Padding::kValid), 8);
  EXPECT_EQ(ConvOutputLength(7, 3, 2, 1, Padding::kSame), 4);
  EXPECT_EQ(ConvOutputLength(8, 3, 2, 1, Padding::kValid), 3);
  EXPECT_EQ(ConvOutputLength(14, 3, 1, 2, Padding::kValid), 10);
  EXPECT_EQ(ConvOutputLength(2, 3, 1, 1, Padding::kValid), 0);
  EXPECT_LE(ConvOutputLength(2, 5, 2, 1, Padding::kValid), 0);
}

TEST(ArgsTest, SamePaddingPutsTheOddPixelAfter) {
  // The worked examples of the Keras reference.
  EXPECT_EQ(SamePadding(7, 3, 2, 1, Padding::kSame), (std::array<int64_t, 2>{1, 1}));
  EXPECT_EQ(SamePadding(8, 3, 2, 1, Padding::kSame), (std::array<int64_t, 2>{0, 1}));
  EXPECT_EQ(SamePadding(14, 3, 1, 2, Padding::kSame), (std::array<int64_t, 2>{2, 2}));
  EXPECT_EQ(SamePadding(10, 4, 1, 1, Padding::kSame), (std::array<int64_t, 2>{1, 2}));
  EXPECT_EQ(SamePadding(10, 3, 1, 1, Padding::kValid), (std::array<int64_t, 2>{0, 0}));
}

}  // namespace
}  // namespace kiln
