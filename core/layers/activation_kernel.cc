#include "core/layers/activation_kernel.h"

#include <cmath>

#include "core/base/status.h"
#include "core/dnnl/engine.h"
#include "core/dnnl/primitive.h"

namespace kiln {
namespace {

using dnnl::algorithm;
using dnnl::prop_kind;

struct EltwiseChoice {
  algorithm forward;
  algorithm backward;  // a *_use_dst_for_bwd variant when oneDNN has one
  float alpha = 0, beta = 0;
  bool backward_uses_dst = false;
};

// The oneDNN eltwise algorithm for `a`, if oneDNN 2.6 implements it exactly as Keras defines it.
std::optional<EltwiseChoice> EltwiseFor(const Activation& a) {
  switch (a.kind) {
    case ActivationKind::kRelu:
      if (a.threshold != 0) return std::nullopt;
      if (std::isinf(a.max_value)) {
        return EltwiseChoice{algorithm::eltwise_relu, algorithm::eltwise_relu_use_dst_for_bwd,
                             a.negative_slope, 0, true};
      }
      if (a.negative_slope == 0) {
        return EltwiseChoice{algorithm::eltwise_clip_v2, algorithm::eltwise_clip_v2_use_dst_for_bwd,
                             0, a.max_value, true};
      }
      return std::nullopt;
    case ActivationKind::kElu:
      return EltwiseChoice{algorithm::eltwise_elu, algorithm::eltwise_elu_use_dst_for_bwd, 1, 0,
                           true};
    case ActivationKind::kGelu:
      return EltwiseChoice{algorithm::eltwise_gelu_erf, algorithm::eltwise_gelu_erf};
    case ActivationKind::kSigmoid:
      return EltwiseChoice{algorithm::eltwise_logistic, algorithm::eltwise_logistic_use_dst_for_bwd,
                           0, 0, true};
    case ActivationKind::kTanh:
      return EltwiseChoice{algorithm::eltwise_tanh, algorithm::eltwise_tanh_use_dst_for_bwd, 0, 0,
                           true};
    case ActivationKind::kSoftplus:
      return EltwiseChoice{algorithm::eltwise_soft_relu, algorithm::eltwise_soft_relu};
    case ActivationKind::kSilu:
      return EltwiseChoice{algorithm::eltwise_swish, algorithm::eltwise_swish, 1.0f};
    case ActivationKind::kHardSilu:
      return EltwiseChoice{algorithm::eltwise_hardswish, algorithm::eltwise_hardswish};
    case ActivationKind::kMish:
      return EltwiseChoice{algorithm::eltwise_mish, algorithm::eltwise_mish};
    case ActivationKind::kExponential:
      return EltwiseChoice{algorithm::eltwise_exp, algorithm::eltwise_exp_use_dst_for_bwd, 0, 0,
                           true};
    default:
      return std::nullopt;
  }
}

float* DataOf(const memory& m) { return static_cast<float*>(m.get_data_handle()); }
int64_t PhysicalCount(const memory& m) { return int64_t(m.get_desc().get_size() / sizeof(float)); }

}  // namespace

struct ActivationKernel::Impl {
  enum class Kind { kIdentityCopy, kEltwise, kSoftmax, kCustom } kind;
  Activation activation;
  memory src, dst, diff_dst, diff_src;
  bool training = false;
  Arena* arena = nullptr;

  // kEltwise / kSoftmax
  Primitive forward, backward;
  dnnl::eltwise_forward::primitive_desc eltwise_pd;
  dnnl::softmax_forward::primitive_desc softmax_pd;
  dnnl::logsoftmax_forward::primitive_desc logsoftmax_pd;
  bool backward_uses_dst = false;
  algorithm eltwise_algorithm = algorithm::undef;  // as created forward (use-dst kind if any)
  float alpha = 0, beta = 0;
  Reorder forward_copy, backward_copy;  // kIdentityCopy

  // kCustom on padded layouts: dense copies of the data.
  memory dense_src, dense_dst, dense_diff_dst, dense_diff_src;
  Reorder to_dense_src, from_dense_dst, to_dense_diff_dst, from_dense_diff_src;

  void RunCustomForward() {
    const float* x = DataOf(dense_src);
    float* y = DataOf(dense_dst);
    const int64_t n = PhysicalCount(dense_src);
    const Activation a = activation;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) y[i] = float(ActivationValue(a, x[i]));
  }
  void RunCustomBackward() {
    const float* x = DataOf(dense_src);
    const float* dy = DataOf(dense_diff_dst);
    float* dx = DataOf(dense_diff_src);
    const int64_t n = PhysicalCount(dense_src);
    const Activation a = activation;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * float(ActivationDerivative(a, x[i]));
  }
};

ActivationKernel::ActivationKernel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ActivationKernel::~ActivationKernel() = default;

bool ActivationKernel::BackwardNeedsSrc(const Activation& activation) {
  if (activation.is_linear() || !activation.is_pointwise()) return false;
  std::optional<EltwiseChoice> choice = EltwiseFor(activation);
  return !choice.has_value() || !choice->backward_uses_dst;
}

std::optional<ActivationKernel::PostOp> ActivationKernel::FusablePostOp(
    const Activation& activation, bool training) {
  if (!activation.is_pointwise()) return std::nullopt;
  std::optional<EltwiseChoice> choice = EltwiseFor(activation);
  if (!choice.has_value()) return std::nullopt;
  if (!training) return PostOp{choice->forward, choice->alpha, choice->beta};
  if (!choice->backward_uses_dst) return std::nullopt;
  return PostOp{choice->forward, choice->alpha, choice->beta};
}

absl::StatusOr<std::unique_ptr<ActivationKernel>> ActivationKernel::Create(
    const Activation& activation, const memory& src, const memory& dst, bool training,
    Arena& arena) {
  auto impl = std::make_unique<Impl>();
  impl->activation = activation;
  impl->src = src;
  impl->dst = dst;
  impl->training = training;
  impl->arena = &arena;
  const memory::desc md = src.get_desc();
  const prop_kind prop = training ? prop_kind::forward_training : prop_kind::forward_inference;

  if (activation.is_linear()) {
    impl->kind = Impl::Kind::kIdentityCopy;
    impl->forward_copy = Reorder(src, dst);
  } else if (!activation.is_pointwise()) {
    impl->kind = Impl::Kind::kSoftmax;
    const int axis = NormalizeAxis(activation.axis, md.data.ndims);
    if (activation.kind == ActivationKind::kSoftmax) {
      impl->softmax_pd = dnnl::softmax_forward::primitive_desc(
          dnnl::softmax_forward::desc(prop, md, axis), WithUserScratchpad(), CpuEngine());
      impl->forward = Primitive::Create<dnnl::softmax_forward>(impl->softmax_pd, &arena);
    } else {
      impl->logsoftmax_pd = dnnl::logsoftmax_forward::primitive_desc(
          dnnl::logsoftmax_forward::desc(prop, md, axis), WithUserScratchpad(), CpuEngine());
      impl->forward = Primitive::Create<dnnl::logsoftmax_forward>(impl->logsoftmax_pd, &arena);
    }
  } else if (std::optional<EltwiseChoice> choice = EltwiseFor(activation)) {
    impl->kind = Impl::Kind::kEltwise;
    impl->backward_uses_dst = choice->backward_uses_dst;
    // The forward algorithm of a use-dst pair must be the use-dst kind too, so the backward
    // primitive descriptor's hint matches.
    const algorithm fwd_alg =
        (training && choice->backward_uses_dst) ? choice->backward : choice->forward;
    impl->eltwise_algorithm = fwd_alg;
    impl->alpha = choice->alpha;
    impl->beta = choice->beta;
    impl->eltwise_pd = dnnl::eltwise_forward::primitive_desc(
        dnnl::eltwise_forward::desc(prop, fwd_alg, md, choice->alpha, choice->beta),
        WithUserScratchpad(), CpuEngine());
    impl->forward = Primitive::Create<dnnl::eltwise_forward>(impl->eltwise_pd, &arena);
  } else {
    impl->kind = Impl::Kind::kCustom;
    if (HasPadding(md)) {
      const memory::desc dense = PlainDesc(ShapeOf(md));
      impl->dense_src = AllocateMemory(dense, arena);
      impl->dense_dst = AllocateMemory(dense, arena);
      impl->to_dense_src = Reorder(src, impl->dense_src);
      impl->from_dense_dst = Reorder(impl->dense_dst, dst);
    } else {
      impl->dense_src = src;
      impl->dense_dst = dst;
    }
  }
  return absl::WrapUnique(new ActivationKernel(std::move(impl)));
}

void ActivationKernel::Forward(dnnl::stream& stream) {
  Impl& m = *impl_;
  switch (m.kind) {
    case Impl::Kind::kIdentityCopy:
      m.forward_copy.Run(stream);
      return;
    case Impl::Kind::kEltwise:
    case Impl::Kind::kSoftmax:
      m.forward.Execute(stream, {{DNNL_ARG_SRC, m.src}, {DNNL_ARG_DST, m.dst}});
      return;
    case Impl::Kind::kCustom:
      m.to_dense_src.Run(stream);
      stream.wait();
      m.RunCustomForward();
      m.from_dense_dst.Run(stream);
      return;
  }
}

absl::Status ActivationKernel::PrepareBackward(const memory& diff_dst, const memory& diff_src) {
  Impl& m = *impl_;
  m.diff_dst = diff_dst;
  m.diff_src = diff_src;
  const memory::desc md = m.src.get_desc();
  switch (m.kind) {
    case Impl::Kind::kIdentityCopy:
      m.backward_copy = Reorder(diff_dst, diff_src);
      break;
    case Impl::Kind::kEltwise: {
      dnnl::eltwise_backward::primitive_desc pd(
          dnnl::eltwise_backward::desc(m.eltwise_algorithm, diff_dst.get_desc(), md, m.alpha,
                                       m.beta),
          WithUserScratchpad(), CpuEngine(), m.eltwise_pd);
      m.backward = Primitive::Create<dnnl::eltwise_backward>(pd, m.arena);
      break;
    }
    case Impl::Kind::kSoftmax: {
      const int axis = NormalizeAxis(m.activation.axis, md.data.ndims);
      if (m.activation.kind == ActivationKind::kSoftmax) {
        m.backward = Primitive::Create<dnnl::softmax_backward>(
            dnnl::softmax_backward::primitive_desc(
                dnnl::softmax_backward::desc(diff_dst.get_desc(), md, axis), WithUserScratchpad(),
                CpuEngine(), m.softmax_pd),
            m.arena);
      } else {
        m.backward = Primitive::Create<dnnl::logsoftmax_backward>(
            dnnl::logsoftmax_backward::primitive_desc(
                dnnl::logsoftmax_backward::desc(diff_dst.get_desc(), md, axis),
                WithUserScratchpad(), CpuEngine(), m.logsoftmax_pd),
            m.arena);
      }
      break;
    }
    case Impl::Kind::kCustom:
      if (HasPadding(md)) {
        const memory::desc dense = PlainDesc(ShapeOf(md));
        m.dense_diff_dst = AllocateMemory(dense, *m.arena);
        m.dense_diff_src = AllocateMemory(dense, *m.arena);
        m.to_dense_diff_dst = Reorder(diff_dst, m.dense_diff_dst);
        m.from_dense_diff_src = Reorder(m.dense_diff_src, diff_src);
      } else {
        m.dense_diff_dst = diff_dst;
        m.dense_diff_src = diff_src;
      }
      break;
  }
  return absl::OkStatus();
}

void ActivationKernel::Backward(dnnl::stream& stream) {
  Impl& m = *impl_;
  switch (m.kind) {
    case Impl::Kind::kIdentityCopy:
      m.backward_copy.Run(stream);
      return;
    case Impl::Kind::kEltwise:
      m.backward.Execute(stream, {{m.backward_uses_dst ? DNNL_ARG_DST : DNNL_ARG_SRC,
                                   m.backward_uses_dst ? m.dst : m.src},
                                  {DNNL_ARG_DIFF_DST, m.diff_dst},
                                  {DNNL_ARG_DIFF_SRC, m.diff_src}});
      return;
    case Impl::Kind::kSoftmax:
      m.backward.Execute(stream, {{DNNL_ARG_DST, m.dst},
                                  {DNNL_ARG_DIFF_DST, m.diff_dst},
                                  {DNNL_ARG_DIFF_SRC, m.diff_src}});
      return;
    case Impl::Kind::kCustom:
      m.to_dense_diff_dst.Run(stream);
      stream.wait();
      m.RunCustomBackward();
      m.from_dense_diff_src.Run(stream);
      return;
  }
}

}  // namespace kiln
