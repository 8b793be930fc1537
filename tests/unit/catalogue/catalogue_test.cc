// The catalogue lists exactly what the engine accepts: every LayerSpec case with every argument
// of its message, every class of the Keras object oneofs, every name the engine resolves.
#include "core/catalogue/catalogue.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/keras/activations.h"
#include "core/keras/keras_class.h"
#include "core/keras/spec_args.h"
#include "core/layers/registry.h"
#include "core/train/loss.h"
#include "core/train/metrics.h"
#include "kiln/v1/layers.pb.h"
#include "kiln/v1/training.pb.h"
#include "nlohmann/json.hpp"

namespace kiln {
namespace {

const v1::ClassInfo* FindClass(const google::protobuf::RepeatedPtrField<v1::ClassInfo>& classes,
                               const std::string& field) {
  for (const v1::ClassInfo& c : classes) {
    if (c.field() == field) return &c;
  }
  return nullptr;
}

// Every class of `oneof` is listed with each argument of its message, and every argument
// states a Keras default (a value or null) unless Keras requires it.
void ExpectEveryClassAndArgument(const google::protobuf::OneofDescriptor* oneof,
                                 const google::protobuf::RepeatedPtrField<v1::ClassInfo>& listed) {
  int classes = 0;
  for (int i = 0; i < oneof->field_count(); ++i) {
    const auto* field = oneof->field(i);
    if (field->message_type() == nullptr) continue;  // the `name` identifier
    ++classes;
    const v1::ClassInfo* info = FindClass(listed, field->name());
    ASSERT_NE(info, nullptr) << field->full_name();
    const auto* message = field->message_type();
    EXPECT_EQ(info->class_name(), KerasClassOf(message).class_name());
    EXPECT_FALSE(info->doc().empty()) << info->class_name();
    EXPECT_FALSE(info->category().empty()) << info->class_name();
    ASSERT_EQ(info->arguments_size(), message->field_count()) << info->class_name();
    for (int f = 0; f < message->field_count(); ++f) {
      const v1::ArgumentInfo& arg = info->arguments(f);
      EXPECT_EQ(arg.name(), message->field(f)->name());
      EXPECT_NE(arg.type(), v1::ARGUMENT_TYPE_UNSPECIFIED)
          << info->class_name() << "." << arg.name();
      EXPECT_FALSE(arg.doc().empty()) << info->class_name() << "." << arg.name();
      if (arg.name() == "name") continue;  // Keras picks one
      EXPECT_TRUE(arg.required() || !arg.default_json().empty())
          << info->class_name() << "." << arg.name() << " has neither a default nor `required`";
      if (!arg.default_json().empty()) {
        EXPECT_FALSE(nlohmann::json::parse(arg.default_json(), nullptr, false).is_discarded())
            << arg.default_json();
      }
    }
  }
  EXPECT_EQ(listed.size(), classes);
}

TEST(CatalogueTest, EveryLayerSpecCaseAndArgument) {
  const v1::Catalogue& catalogue = FullCatalogue();
  ExpectEveryClassAndArgument(v1::LayerSpec::descriptor()->FindOneofByName("layer"),
                              catalogue.layers());
  for (const v1::ClassInfo& layer : catalogue.layers()) {
    EXPECT_GE(layer.sockets().min_inputs(), 1) << layer.class_name();
    EXPECT_EQ(layer.sockets().outputs(), 1);
  }
  const v1::ClassInfo* add = FindClass(catalogue.layers(), "add");
  ASSERT_NE(add, nullptr);
  EXPECT_EQ(add->sockets().min_inputs(), 2);
  EXPECT_EQ(add->sockets().max_inputs(), -1);
}

TEST(CatalogueTest, EveryKerasObjectClass) {
  const v1::Catalogue& catalogue = FullCatalogue();
  ExpectEveryClassAndArgument(v1::Initializer::descriptor()->FindOneofByName("kind"),
                              catalogue.initializers());
  ExpectEveryClassAndArgument(v1::Regularizer::descriptor()->FindOneofByName("kind"),
                              catalogue.regularizers());
  ExpectEveryClassAndArgument(v1::Constraint::descriptor()->FindOneofByName("kind"),
                              catalogue.constraints());
  ExpectEveryClassAndArgument(v1::Optimizer::descriptor()->FindOneofByName("kind"),
                              catalogue.optimizers());
  EXPECT_EQ(catalogue.input().class_name(), "InputLayer");
}

TEST(CatalogueTest, NamesAreWhatTheEngineResolves) {
  const v1::Catalogue& catalogue = FullCatalogue();
  ASSERT_EQ(catalogue.activations_size(), static_cast<int>(ActivationNames().size()));
  for (const v1::NamedEntry& a : catalogue.activations()) {
    EXPECT_TRUE(ParseActivation(a.name(), "").ok()) << a.name();
    for (const std::string& alias : a.aliases()) EXPECT_TRUE(ParseActivation(alias, "").ok());
  }
  EXPECT_FALSE(ParseActivation("not_an_activation", "").ok());
  ASSERT_EQ(catalogue.losses_size(), static_cast<int>(LossNames().size()));
  for (const v1::NamedEntry& l : catalogue.losses()) {
    v1::Loss loss;
    loss.set_name(l.name());
    EXPECT_TRUE(ResolveLoss(loss, "").ok()) << l.name();
  }
  for (const v1::NamedEntry& m : catalogue.metrics()) {
    EXPECT_TRUE(ResolveMetric(m.name(), Shape{0, 3}, Shape{0}, "").ok()) << m.name();
  }
}

// What the catalogue offers, the engine takes: each layer made from its required arguments
// (at their minimum) and every default is created without error.
TEST(CatalogueTest, DefaultsAreAccepted) {
  for (const v1::ClassInfo& info : FullCatalogue().layers()) {
    v1::LayerSpec spec;
    auto* message = spec.GetReflection()->MutableMessage(
        &spec, v1::LayerSpec::descriptor()->FindFieldByName(info.field()));
    for (const v1::ArgumentInfo& arg : info.arguments()) {
      if (!arg.required()) continue;
      const auto* field = message->GetDescriptor()->FindFieldByName(arg.name());
      const auto* r = message->GetReflection();
      switch (arg.type()) {
        case v1::ARGUMENT_TYPE_INT:
          r->SetInt32(message, field, 1);
          break;
        case v1::ARGUMENT_TYPE_INT_LIST:
          if (field->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_INT32) {
            r->AddInt32(message, field, 1);
          } else {
            r->AddInt64(message, field, 1);
          }
          break;
        case v1::ARGUMENT_TYPE_ACTIVATION:
          r->SetString(message, field, "relu");
          break;
        default:
          break;  // Dropout.rate: 0 is in range
      }
    }
    auto layer = CreateLayer(spec, 1);
    EXPECT_TRUE(layer.ok()) << info.class_name() << ": " << layer.status();
  }
}

TEST(CatalogueTest, FindsOneClassByAnyOfItsNames) {
  for (const char* name : {"DepthwiseConv2D", "depthwise_conv2d"}) {
    auto found = FindInCatalogue(name);
    ASSERT_TRUE(found.ok()) << name;
    ASSERT_EQ(found->layers_size(), 1);
    EXPECT_EQ(found->layers(0).class_name(), "DepthwiseConv2D");
    EXPECT_EQ(found->initializers_size(), 0);
  }
  EXPECT_EQ(FindInCatalogue("swish")->activations(0).name(), "silu");
  EXPECT_EQ(FindInCatalogue("glorot_uniform")->initializers(0).class_name(), "GlorotUniform");
  auto missing = FindInCatalogue("DepthwiseConv3D");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), ::testing::HasSubstr("DepthwiseConv3D"));
  // A typo or a name cut short comes with the name meant.
  EXPECT_THAT(std::string(missing.status().message()),
              ::testing::HasSubstr("did you mean DepthwiseConv2D?"));
  EXPECT_THAT(std::string(FindInCatalogue("depthwise").status().message()),
              ::testing::HasSubstr("did you mean DepthwiseConv2D?"));
  EXPECT_THAT(std::string(FindInCatalogue("glorot_unifrom").status().message()),
              ::testing::HasSubstr("did you mean glorot_uniform?"));
  EXPECT_THAT(std::string(FindInCatalogue("zzzzzz").status().message()),
              ::testing::Not(::testing::HasSubstr("did you mean")));
}

}  // namespace
}  // namespace kiln
