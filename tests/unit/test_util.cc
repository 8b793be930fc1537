#include "tests/unit/test_util.h"

#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"
#include "core/dnnl/engine.h"
#include "core/graph/plan.h"
#include "core/layers/registry.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace kiln::testing {

v1::LayerSpec ParseSpec(const std::string& text) {
  v1::LayerSpec spec;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &spec)) << text;
  return spec;
}

absl::StatusOr<std::unique_ptr<LayerModel>> MakeLayerModel(const v1::LayerSpec& spec,
                                                           const std::vector<Shape>& input_shapes,
                                                           uint64_t seed) {
  auto lm = std::make_unique<LayerModel>();
  std::vector<TensorId> inputs;
  for (const Shape& shape : input_shapes) {
    absl::StatusOr<TensorId> id = lm->graph.AddInput(shape, "");
    if (!id.ok()) return id.status();
    inputs.push_back(*id);
  }
  absl::StatusOr<std::unique_ptr<Layer>> layer = CreateLayer(spec, seed);
  if (!layer.ok()) return layer.status();
  absl::StatusOr<std::shared_ptr<Layer>> added = lm->graph.AddLayer(std::move(*layer));
  if (!added.ok()) return added.status();
  lm->layer = *added;
  absl::StatusOr<std::vector<TensorId>> outputs = lm->graph.Call(lm->layer, inputs);
  if (!outputs.ok()) return outputs.status();
  absl::StatusOr<std::unique_ptr<Model>> model =
      Model::Create(lm->graph, inputs, *outputs, "test_model");
  if (!model.ok()) return model.status();
  lm->model = std::move(*model);
  return lm;
}

Tensor RandomTensor(const Shape& shape, uint64_t seed, float lo, float hi) {
  Tensor t(DType::kFloat32, shape);
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (float& v : t.values<float>()) v = dist(gen);
  return t;
}

namespace {

std::unique_ptr<ExecutionPlan> MakePlan(Model& model, int64_t batch, bool training, bool gradients,
                                        bool input_gradients) {
  auto plan = ExecutionPlan::Create(model, batch,
                                    PlanOptions{.training = training,
                                                .backward = gradients,
                                                .input_gradients = input_gradients,
                                                .seed = 7});
  EXPECT_TRUE(plan.ok()) << plan.status();
  return plan.ok() ? std::move(*plan) : nullptr;
}

void LoadInputs(ExecutionPlan& plan, const std::vector<Tensor>& inputs) {
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::copy_n(inputs[i].data<float>(), inputs[i].num_elements(), plan.input_data(i));
  }
}

double Projected(ExecutionPlan& plan, const Tensor& upstream, dnnl::stream& stream) {
  plan.Forward(stream);
  const float* out = plan.output_data(0);
  double sum = 0;
  for (int64_t i = 0; i < upstream.num_elements(); ++i) {
    sum += double(out[i]) * upstream.data<float>()[i];
  }
  // The backward pass includes the activity regularizers' gradients, so the loss includes them.
  return sum + plan.activity_penalty();
}

}  // namespace

RunResult Run(Model& model, const std::vector<Tensor>& inputs, bool training,
              const Tensor* upstream) {
  RunResult result;
  const int64_t batch = inputs[0].shape()[0];
  auto plan = MakePlan(model, batch, training, upstream != nullptr, upstream != nullptr);
  if (!plan) return result;
  dnnl::stream stream = NewStream();
  LoadInputs(*plan, inputs);
  plan->Forward(stream);
  for (int o = 0; o < plan->num_outputs(); ++o) {
    Tensor out(DType::kFloat32, plan->output_shape(o));
    std::copy_n(plan->output_data(o), out.num_elements(), out.data<float>());
    result.outputs.push_back(out);
  }
  if (upstream == nullptr) return result;
  std::copy_n(upstream->data<float>(), upstream->num_elements(), plan->output_grad_data(0));
  plan->Backward(stream);
  for (int i = 0; i < plan->num_inputs(); ++i) {
    Tensor g(DType::kFloat32, plan->input_shape(i));
    std::copy_n(plan->input_grad_data(i), g.num_elements(), g.data<float>());
    result.input_grads.push_back(g);
  }
  for (Layer* layer : model.layers()) {
    for (const auto& v : layer->variables()) {
      if (v->trainable) result.weight_grads[v->name] = v->grad.Clone();
    }
  }
  return result;
}

void ExpectGradientsMatchFiniteDifferences(Model& model, const std::vector<Tensor>& inputs,
                                           bool training, uint64_t seed, double tolerance,
                                           int samples, double epsilon,
                                           bool check_input_gradients) {
  const int64_t batch = inputs[0].shape()[0];
  auto plan = MakePlan(model, batch, training, true, check_input_gradients);
  ASSERT_NE(plan, nullptr);
  dnnl::stream stream = NewStream();
  const Tensor upstream = RandomTensor(plan->output_shape(0), seed + 99);
  std::vector<Tensor> x;
  for (const Tensor& t : inputs) x.push_back(t.Clone());

  // Analytic gradients.
  LoadInputs(*plan, x);
  plan->Forward(stream);
  std::copy_n(upstream.data<float>(), upstream.num_elements(), plan->output_grad_data(0));
  plan->Backward(stream);
  std::vector<Tensor> input_grads;
  for (int i = 0; check_input_gradients && i < plan->num_inputs(); ++i) {
    Tensor g(DType::kFloat32, plan->input_shape(i));
    std::copy_n(plan->input_grad_data(i), g.num_elements(), g.data<float>());
    input_grads.push_back(g);
  }
  std::vector<std::pair<Variable*, Tensor>> weight_grads;
  for (Layer* layer : model.layers()) {
    for (const auto& v : layer->variables()) {
      if (v->trainable) weight_grads.emplace_back(v.get(), v->grad.Clone());
    }
  }

  std::mt19937_64 gen(seed);
  auto check = [&](float* value, double analytic, const std::string& what, auto reload) {
    const float saved = *value;
    *value = saved + float(epsilon);
    reload();
    const double plus = Projected(*plan, upstream, stream);
    *value = saved - float(epsilon);
    reload();
    const double minus = Projected(*plan, upstream, stream);
    *value = saved;
    reload();
    const double numeric = (plus - minus) / (2 * epsilon);
    const double scale = std::max({1.0, std::abs(numeric), std::abs(analytic)});
    EXPECT_LE(std::abs(numeric - analytic) / scale, tolerance)
        << what << ": numeric " << numeric << " vs analytic " << analytic;
  };
  for (size_t i = 0; check_input_gradients && i < x.size(); ++i) {
    std::uniform_int_distribution<int64_t> pick(0, x[i].num_elements() - 1);
    for (int s = 0; s < samples; ++s) {
      const int64_t e = pick(gen);
      check(&x[i].data<float>()[e], input_grads[i].data<float>()[e],
            absl::StrCat("input ", i, " element ", e), [&] { LoadInputs(*plan, x); });
    }
  }
  LoadInputs(*plan, x);
  for (auto& [variable, grad] : weight_grads) {
    std::uniform_int_distribution<int64_t> pick(0, grad.num_elements() - 1);
    for (int s = 0; s < samples; ++s) {
      const int64_t e = pick(gen);
      Variable* v = variable;
      check(&v->value.data<float>()[e], grad.data<float>()[e],
            absl::StrCat("weight ", v->name, " element ", e), [v] { v->MarkChanged(); });
    }
  }
}

void ExpectTensorNear(const Tensor& actual, const Tensor& expected, double atol, double rtol,
                      const std::string& what) {
  ASSERT_EQ(actual.shape(), expected.shape()) << what;
  int failures = 0;
  for (int64_t i = 0; i < actual.num_elements(); ++i) {
    const double a = actual.data<float>()[i], e = expected.data<float>()[i];
    if (!(std::abs(a - e) <= atol + rtol * std::abs(e))) {
      if (++failures <= 5) {
        ADD_FAILURE() << what << ": element " << i << " is " << a << ", expected " << e;
      }
    }
  }
  EXPECT_EQ(failures, 0) << what << ": " << failures << " of " << actual.num_elements()
                         << " elements differ";
}

std::string FixturePath(const std::string& name) {
  return absl::StrCat(KILN_SOURCE_DIR, "/tests/fixtures/", name);
}

}  // namespace kiln::testing
