// SpecArgs and the Keras facts of the proto options: defaults, validation wording, the class
// names and identifiers derived from them.
#include "core/keras/spec_args.h"

#include <gtest/gtest.h>

#include "core/keras/keras_class.h"
#include "google/protobuf/text_format.h"
#include "kiln/v1/layers.pb.h"
#include "kiln/v1/training.pb.h"

namespace kiln {
namespace {

template <typename M>
M Parse(const std::string& text) {
  M m;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &m)) << text;
  return m;
}

std::string ErrorOf(const google::protobuf::Message& m, const std::string& path) {
  return std::string(SpecArgs(m, path).Validate().message());
}

TEST(SpecArgsTest, UnsetArgumentsReadAsTheKerasDefaults) {
  const auto m = Parse<v1::DepthwiseConv2D>("kernel_size: 3");
  const SpecArgs args(m, "depthwise_conv2d");
  ASSERT_TRUE(args.Validate().ok());
  EXPECT_EQ(args.Int("depth_multiplier"), 1);
  EXPECT_EQ(*args.Pair("strides"), (std::array<int, 2>{1, 1}));
  EXPECT_EQ(*args.Pair("kernel_size"), (std::array<int, 2>{3, 3}));
  EXPECT_EQ(args.String("padding"), "valid");
  EXPECT_EQ(args.String("data_format"), "channels_last");
  EXPECT_TRUE(args.Bool("use_bias"));
  EXPECT_TRUE(args.Bool("trainable"));
  EXPECT_FALSE(args.Has("use_bias"));
  EXPECT_EQ(args.Path("strides"), "depthwise_conv2d.strides");
}

TEST(SpecArgsTest, SetArgumentsWinOverDefaultsEvenWhenZeroOrFalse) {
  const auto m = Parse<v1::BatchNormalization>("momentum: 0 center: false axis: 1");
  const SpecArgs args(m, "bn");
  ASSERT_TRUE(args.Validate().ok());
  EXPECT_EQ(args.Float("momentum"), 0.0);
  EXPECT_FALSE(args.Bool("center"));
  EXPECT_TRUE(args.Bool("scale"));
  EXPECT_EQ(args.Int("axis"), 1);
  EXPECT_FLOAT_EQ(args.Float("epsilon"), 0.001);
}

TEST(SpecArgsTest, IntegersAreExact) {
  const auto m = Parse<v1::Initializer::RandomNormal>("seed: 4611686018427387905");
  EXPECT_EQ(SpecArgs(m, "").Int("seed"), int64_t{4611686018427387905});
}

TEST(SpecArgsTest, NullDefaultsReadAsAbsent) {
  const SpecArgs relu(v1::ReLU::default_instance(), "relu");
  EXPECT_FALSE(relu.OptionalFloat("max_value").has_value());
  const SpecArgs pool(v1::MaxPooling2D::default_instance(), "max_pooling2d");
  EXPECT_FALSE(pool.Pair("strides").has_value());
  EXPECT_EQ(*pool.Pair("pool_size"), (std::array<int, 2>{2, 2}));
  const SpecArgs pad(v1::ZeroPadding2D::default_instance(), "zero_padding2d");
  EXPECT_EQ(pad.Ints("padding"), (std::vector<int64_t>{1, 1, 1, 1}));
}

TEST(SpecArgsTest, AllowedValuesAreCaseInsensitiveWithKerasMessages) {
  const auto same = Parse<v1::Conv2D>("filters: 1 kernel_size: 1 padding: 'SAME'");
  EXPECT_EQ(SpecArgs(same, "x").String("padding"), "same");
  EXPECT_EQ(ErrorOf(Parse<v1::Conv2D>("filters: 1 kernel_size: 1 padding: 'causal'"), "x"),
            "x.padding: The `padding` argument must be a list/tuple or one of "
            "{'valid', 'same'}. Received: causal");
  EXPECT_EQ(ErrorOf(Parse<v1::Conv2D>("filters: 1 kernel_size: 1 data_format: 'NCHW'"), "x"),
            "x.data_format: The `data_format` argument must be one of {'channels_first', "
            "'channels_last'}. Received: data_format=nchw");
  EXPECT_EQ(
      SpecArgs(Parse<v1::Flatten>("data_format: 'Channels_First'"), "f").String("data_format"),
      "channels_first");
}

TEST(SpecArgsTest, RangesAndRequiredArgumentsUseTheOptionsWording) {
  EXPECT_EQ(ErrorOf(Parse<v1::Dense>(""), "dense"),
            "dense.units: Received an invalid value for `units`, expected a positive integer. "
            "Received: units=0");
  EXPECT_EQ(ErrorOf(Parse<v1::Activation>(""), "activation"),
            "activation.activation: Missing required argument `activation`.");
  EXPECT_EQ(ErrorOf(Parse<v1::Dropout>("rate: 1"), "dropout"),
            "dropout.rate: Invalid value received for argument `rate`. Expected a float value "
            "between 0 and 1. Received: rate=1");
  EXPECT_EQ(ErrorOf(Parse<v1::BatchNormalization>("epsilon: 0"), "bn"),
            "bn.epsilon: Expected epsilon > 0. Received: epsilon=0");
  EXPECT_EQ(ErrorOf(Parse<v1::ZeroPadding2D>("padding: [1, -1]"), "z"),
            "z.padding: The `padding` argument must contain non-negative integers. Received: "
            "padding=[1, -1].");
  EXPECT_EQ(ErrorOf(Parse<v1::Dense>("units: 1 dtype: 'float64'"), "dense"),
            "dense.dtype: Kiln computes in float32 only. Received: dtype=float64");
  // Non-finite numbers are refused even where no range is stated.
  EXPECT_FALSE(SpecArgs(Parse<v1::Initializer::RandomNormal>("mean: nan"), "").Validate().ok());
  EXPECT_EQ(ErrorOf(Parse<v1::DepthwiseConv2D>(""), "d"),
            "d.kernel_size: Missing required argument `kernel_size`: a list of 1 or 2 integers.");
}

TEST(SpecArgsTest, FillKerasDefaultsMakesEveryValueExplicit) {
  v1::Initializer::VarianceScaling vs;
  vs.set_mode("FAN_OUT");
  FillKerasDefaults(vs);
  EXPECT_EQ(vs.scale(), 1.0f);
  EXPECT_EQ(vs.mode(), "fan_out");
  EXPECT_EQ(vs.distribution(), "truncated_normal");
  EXPECT_FALSE(vs.has_seed());  // null default: stays unset
  v1::Constraint::MaxNorm max_norm;
  FillKerasDefaults(max_norm);
  EXPECT_EQ(max_norm.max_value(), 2.0f);
  EXPECT_EQ(std::vector<int>(max_norm.axis().begin(), max_norm.axis().end()), std::vector<int>{0});
}

TEST(KerasClassTest, SnakeCaseIsKerasToSnakeCase) {
  EXPECT_EQ(KerasSnakeCase("DepthwiseConv2D"), "depthwise_conv2d");
  EXPECT_EQ(KerasSnakeCase("ReLU"), "re_lu");
  EXPECT_EQ(KerasSnakeCase("GlobalAveragePooling2D"), "global_average_pooling2d");
  EXPECT_EQ(KerasSnakeCase("L1L2"), "l1l2");
  EXPECT_EQ(KerasSnakeCase("InputLayer"), "input_layer");
  EXPECT_EQ(KerasSnakeCase("OrthogonalRegularizer"), "orthogonal_regularizer");
}

// Shared arguments are described once; a layer's own option wins over the shared one.
TEST(KerasClassTest, SharedArgumentsAreDescribedOnce) {
  const auto* shared = v1::CommonLayerArguments::descriptor();
  EXPECT_EQ(&KerasArgOf(v1::Conv2D::descriptor()->FindFieldByName("padding")),
            &KerasArgOf(shared->FindFieldByName("padding")));
  EXPECT_NE(KerasArgOf(v1::Flatten::descriptor()->FindFieldByName("data_format")).doc(),
            KerasArgOf(shared->FindFieldByName("data_format")).doc());
  // ZeroPadding2D's padding is a list, not the shared string: never confused.
  EXPECT_EQ(KerasArgOf(v1::ZeroPadding2D::descriptor()->FindFieldByName("padding")).default_(),
            "[[1, 1], [1, 1]]");
  EXPECT_EQ(AcceptedKeyValue(v1::Adam::descriptor(), "use_ema"), "false");
  EXPECT_EQ(AcceptedKeyValue(v1::Dense::descriptor(), "use_ema"), std::nullopt);
}

TEST(KerasClassTest, IdentifiersFindTheirClass) {
  const auto* kind = v1::Initializer::descriptor()->FindOneofByName("kind");
  EXPECT_EQ(FindKerasClass(kind, "glorot_uniform")->name(), "glorot_uniform");
  EXPECT_EQ(FindKerasClass(kind, "GlorotUniform")->name(), "glorot_uniform");
  EXPECT_EQ(FindKerasClass(kind, "normal")->name(), "random_normal");
  EXPECT_EQ(FindKerasClass(kind, "OrthogonalInitializer")->name(), "orthogonal");
  EXPECT_EQ(FindKerasClass(kind, "Glorot_Uniform"), nullptr);  // Keras is case-sensitive
  const auto* constraint = v1::Constraint::descriptor()->FindOneofByName("kind");
  EXPECT_EQ(FindKerasClass(constraint, "maxnorm")->name(), "max_norm");
}

// Every layer message states its Keras class, and every argument a doc and a parseable
// default (or required), so the catalogue and the defaults above are complete.
TEST(KerasClassTest, EveryLayerArgumentIsDescribed) {
  const auto* oneof = v1::LayerSpec::descriptor()->FindOneofByName("layer");
  for (int i = 0; i < oneof->field_count(); ++i) {
    const auto* message = oneof->field(i)->message_type();
    EXPECT_FALSE(KerasClassOf(message).class_name().empty()) << message->full_name();
    EXPECT_EQ(KerasSnakeCase(KerasClassOf(message).class_name()) == oneof->field(i)->name() ||
                  oneof->field(i)->name() == "relu",
              true)
        << oneof->field(i)->name();
    for (int f = 0; f < message->field_count(); ++f) {
      const auto* field = message->field(f);
      const v1::KerasArg& arg = KerasArgOf(field);
      EXPECT_FALSE(arg.doc().empty()) << field->full_name();
      if (field->name() != "name") {
        EXPECT_TRUE(arg.required() || !arg.default_().empty()) << field->full_name();
      }
      (void)KerasDefault(field);  // parses, or the check aborts
    }
  }
}

}  // namespace
}  // namespace kiln
