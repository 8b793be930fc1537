// DepthwiseConv2D against a naive double-precision reference of Keras's formula
//   z[n, i, j, c*M+m] = b[c*M+m] + sum_{p,q} x[n, i*sh + p*dh - pad_top, j*sw + q*dw - pad_left, c]
//                                            * K[p, q, c, m],   y = activation(z)
// (x = 0 outside the image, TF-style "same" padding with the odd pixel after) and its adjoint,
// over a grid of kernel sizes, strides, dilations, paddings, odd and even sizes, depth
// multipliers, data formats, bias and activations; plus finite-difference gradient checks.
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/keras/activations.h"
#include "core/keras/args.h"
#include "gtest/gtest.h"
#include "tests/unit/test_util.h"

namespace kiln {
namespace {

struct DwCase {
  int kh, kw, sh, sw, dh, dw;
  bool same;
  int m;
  bool channels_first;
  bool bias;
  std::string activation;
  int n, c, h, w;

  std::string Name() const {
    return absl::StrCat("k", kh, "x", kw, "_s", sh, "x", sw, "_d", dh, "x", dw,
                        same ? "_same" : "_valid", "_m", m, channels_first ? "_cf" : "_cl",
                        bias ? "_bias" : "_nobias", "_", activation, "_c", c, "_", h, "x", w);
  }
  std::string Spec() const {
    return absl::StrCat("depthwise_conv2d { kernel_size: [", kh, ", ", kw, "] strides: [", sh, ", ",
                        sw, "] dilation_rate: [", dh, ", ", dw, "] padding: \"",
                        same ? "same" : "valid", "\" depth_multiplier: ", m, " data_format: \"",
                        channels_first ? "channels_first" : "channels_last",
                        "\" use_bias: ", bias ? "true" : "false", " activation: \"", activation,
                        "\" }");
  }
  Shape InputShape() const {  // without batch
    return channels_first ? Shape{c, h, w} : Shape{h, w, c};
  }
  int OutH() const {
    return int(ConvOutputLength(h, kh, sh, dh, same ? Padding::kSame : Padding::kValid));
  }
  int OutW() const {
    return int(ConvOutputLength(w, kw, sw, dw, same ? Padding::kSame : Padding::kValid));
  }
};

// Index helpers over Keras layouts.
struct Layout {
  bool cf;
  int h, w, c;
  int64_t At(int n, int i, int j, int ch) const {
    return cf ? ((int64_t(n) * c + ch) * h + i) * w + j : ((int64_t(n) * h + i) * w + j) * c + ch;
  }
};

struct Reference {
  std::vector<double> z, y;  // pre- and post-activation, output layout
};

Reference NaiveForward(const DwCase& t, const Tensor& x, const Tensor& k, const Tensor* b,
                       const Activation& act) {
  const int oh = t.OutH(), ow = t.OutW(), oc = t.c * t.m;
  const Padding pad = t.same ? Padding::kSame : Padding::kValid;
  const int64_t top = SamePadding(t.h, t.kh, t.sh, t.dh, pad)[0];
  const int64_t left = SamePadding(t.w, t.kw, t.sw, t.dw, pad)[0];
  const Layout in{t.channels_first, t.h, t.w, t.c}, out{t.channels_first, oh, ow, oc};
  Reference r;
  r.z.assign(int64_t(t.n) * oh * ow * oc, 0.0);
  r.y.resize(r.z.size());
  for (int n = 0; n < t.n; ++n)
    for (int i = 0; i < oh; ++i)
      for (int j = 0; j < ow; ++j)
        for (int c = 0; c < t.c; ++c)
          for (int m = 0; m < t.m; ++m) {
            const int o = c * t.m + m;
            double sum = b ? b->data<float>()[o] : 0.0;
            for (int p = 0; p < t.kh; ++p)
              for (int q = 0; q < t.kw; ++q) {
                const int64_t ii = int64_t(i) * t.sh + p * t.dh - top;
                const int64_t jj = int64_t(j) * t.sw + q * t.dw - left;
                if (ii < 0 || ii >= t.h || jj < 0 || jj >= t.w) continue;
                sum += double(x.data<float>()[in.At(n, int(ii), int(jj), c)]) *
                       k.data<float>()[((p * t.kw + q) * t.c + c) * t.m + m];
              }
            const int64_t e = out.At(n, i, j, o);
            r.z[e] = sum;
            r.y[e] = ActivationValue(act, sum);
          }
  return r;
}

struct Grads {
  std::vector<double> dx, dk, db;
};

Grads NaiveBackward(const DwCase& t, const Tensor& x, const Tensor& k, const Reference& ref,
                    const Tensor& dy, const Activation& act) {
  const int oh = t.OutH(), ow = t.OutW(), oc = t.c * t.m;
  const Padding pad = t.same ? Padding::kSame : Padding::kValid;
  const int64_t top = SamePadding(t.h, t.kh, t.sh, t.dh, pad)[0];
  const int64_t left = SamePadding(t.w, t.kw, t.sw, t.dw, pad)[0];
  const Layout in{t.channels_first, t.h, t.w, t.c}, out{t.channels_first, oh, ow, oc};
  Grads g;
  g.dx.assign(x.num_elements(), 0.0);
  g.dk.assign(k.num_elements(), 0.0);
  g.db.assign(oc, 0.0);
  for (int n = 0; n < t.n; ++n)
    for (int i = 0; i < oh; ++i)
      for (int j = 0; j < ow; ++j)
        for (int c = 0; c < t.c; ++c)
          for (int m = 0; m < t.m; ++m) {
            const int o = c * t.m + m;
            const int64_t e = out.At(n, i, j, o);
            const double dz = dy.data<float>()[e] * ActivationDerivative(act, ref.z[e]);
            g.db[o] += dz;
            for (int p = 0; p < t.kh; ++p)
              for (int q = 0; q < t.kw; ++q) {
                const int64_t ii = int64_t(i) * t.sh + p * t.dh - top;
                const int64_t jj = int64_t(j) * t.sw + q * t.dw - left;
                if (ii < 0 || ii >= t.h || jj < 0 || jj >= t.w) continue;
                const int64_t xi = in.At(n, int(ii), int(jj), c);
                const int64_t ki = ((p * t.kw + q) * t.c + c) * t.m + m;
                g.dx[xi] += dz * k.data<float>()[ki];
                g.dk[ki] += dz * x.data<float>()[xi];
              }
          }
  return g;
}

Tensor ToTensor(const Shape& shape, const std::vector<double>& v) {
  Tensor t(DType::kFloat32, shape);
  for (size_t i = 0; i < v.size(); ++i) t.data<float>()[i] = float(v[i]);
  return t;
}

std::vector<DwCase> Grid() {
  const std::vector<std::pair<int, int>> kernels = {{1, 1}, {3, 3}, {5, 5}, {2, 3}, {3, 1}, {1, 4}};
  struct Motion {
    int sh, sw, dh, dw;
  };
  const std::vector<Motion> motions = {
      {1, 1, 1, 1}, {2, 2, 1, 1}, {1, 2, 1, 1}, {1, 1, 2, 2}, {1, 1, 3, 2}};
  const std::vector<std::string> activations = {"linear",       "relu",     "tanh", "sigmoid",
                                                "gelu",         "swish",    "elu",  "selu",
                                                "hard_sigmoid", "softsign", "relu6"};
  const std::vector<std::pair<int, int>> sizes = {{7, 8}, {8, 7}, {9, 9}, {6, 6}, {10, 5}};
  std::vector<DwCase> cases;
  int index = 0;
  for (auto [kh, kw] : kernels)
    for (const Motion& mo : motions)
      for (bool same : {false, true})
        for (bool cf : {false, true}) {
          const auto [h, w] = sizes[index % sizes.size()];
          DwCase t{kh,
                   kw,
                   mo.sh,
                   mo.sw,
                   mo.dh,
                   mo.dw,
                   same,
                   1 + index % 3,
                   cf,
                   index % 2 == 0,
                   activations[index % activations.size()],
                   2,
                   1 + index % 4 + (index % 5 == 0 ? 1 : 0),
                   h,
                   w};
          ++index;
          if (t.OutH() <= 0 || t.OutW() <= 0) continue;
          cases.push_back(t);
        }
  return cases;
}

class DepthwiseGrid : public ::testing::TestWithParam<DwCase> {};

TEST_P(DepthwiseGrid, ForwardAndBackwardMatchNaiveReference) {
  const DwCase& t = GetParam();
  auto lm = testing::MakeLayerModel(testing::ParseSpec(t.Spec()), {t.InputShape()}, 3);
  ASSERT_TRUE(lm.ok()) << lm.status();
  Layer& layer = *(*lm)->layer;
  // Kernel and bias: random, non-trivial.
  Variable* kernel = layer.variable("kernel");
  ASSERT_NE(kernel, nullptr);
  EXPECT_EQ(kernel->value.shape(), (Shape{t.kh, t.kw, t.c, t.m}));
  ASSERT_TRUE(layer.SetWeight("kernel", testing::RandomTensor(kernel->value.shape(), 21)).ok());
  const Tensor* bias = nullptr;
  if (t.bias) {
    ASSERT_TRUE(layer.SetWeight("bias", testing::RandomTensor(Shape{t.c * t.m}, 22)).ok());
    bias = &layer.variable("bias")->value;
  } else {
    EXPECT_EQ(layer.variable("bias"), nullptr);
  }
  EXPECT_EQ(layer.CountParams(), t.kh * t.kw * t.c * t.m + (t.bias ? t.c * t.m : 0));

  const Shape input_shape = t.InputShape();
  std::vector<int64_t> x_dims = {t.n};
  for (int64_t d : input_shape.dims()) x_dims.push_back(d);
  const Tensor x = testing::RandomTensor(Shape(x_dims), 23);
  auto act = ParseActivation(t.activation, "a");
  ASSERT_TRUE(act.ok());
  const Reference ref = NaiveForward(t, x, kernel->value, bias, *act);
  const Shape out_shape = t.channels_first ? Shape{t.n, t.c * t.m, t.OutH(), t.OutW()}
                                           : Shape{t.n, t.OutH(), t.OutW(), t.c * t.m};
  const Tensor upstream = testing::RandomTensor(out_shape, 24);
  testing::RunResult r = testing::Run(*(*lm)->model, {x}, false, &upstream);
  ASSERT_EQ(r.outputs.size(), 1u);
  testing::ExpectTensorNear(r.outputs[0], ToTensor(out_shape, ref.y), 1e-5, 1e-4, "output");

  const Grads g = NaiveBackward(t, x, kernel->value, ref, upstream, *act);
  testing::ExpectTensorNear(r.input_grads[0], ToTensor(x.shape(), g.dx), 1e-4, 1e-4, "dx");
  testing::ExpectTensorNear(r.weight_grads["kernel"], ToTensor(kernel->value.shape(), g.dk), 1e-4,
                            1e-4, "dkernel");
  if (t.bias) {
    testing::ExpectTensorNear(r.weight_grads["bias"], ToTensor(Shape{t.c * t.m}, g.db), 1e-4, 1e-4,
                              "dbias");
  }
}

INSTANTIATE_TEST_SUITE_P(Keras, DepthwiseGrid, ::testing::ValuesIn(Grid()),
                         [](const auto& info) { return info.param.Name(); });

// Central differences on every input, kernel and bias entry sampled, for cases with smooth
// activations (kinks make differences meaningless).
class DepthwiseFiniteDifferences : public ::testing::TestWithParam<DwCase> {};

TEST_P(DepthwiseFiniteDifferences, GradientsMatch) {
  const DwCase& t = GetParam();
  auto lm = testing::MakeLayerModel(testing::ParseSpec(t.Spec()), {t.InputShape()}, 5);
  ASSERT_TRUE(lm.ok()) << lm.status();
  const Shape input_shape = t.InputShape();
  std::vector<int64_t> dims = {t.n};
  for (int64_t v : input_shape.dims()) dims.push_back(v);
  testing::ExpectGradientsMatchFiniteDifferences(
      *(*lm)->model, {testing::RandomTensor(Shape(dims), 31)}, false, 32);
}

std::vector<DwCase> SmoothCases() {
  std::vector<DwCase> out;
  const std::vector<std::string> smooth = {"linear", "tanh",  "sigmoid",
                                           "gelu",   "swish", "softsign"};
  int i = 0;
  for (DwCase t : Grid()) {
    if (i++ % 4 != 0) continue;
    t.activation = smooth[out.size() % smooth.size()];
    t.bias = true;
    out.push_back(t);
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Keras, DepthwiseFiniteDifferences, ::testing::ValuesIn(SmoothCases()),
                         [](const auto& info) { return info.param.Name(); });

}  // namespace
}  // namespace kiln
