// Fused elementwise chains (built by fuse.cpp from patterns of plain ONNX nodes; never in a model).
//
// fit.HardSwishChain(x) -> h, attributes add, lo, hi, q, div:
//   h = (x * clip(x + add, lo, hi)) / q      (div = 1)   or   * q   (div = 0),
// the exact float operations of the Add, Clip, Mul, Div nodes it replaces. Its gradient repeats
// theirs too: dm = dy * (1/q) (or dy * q), then Mul gives dm * c to x and dm * x to c, Clip passes
// the latter where lo < c < hi, Add passes it on to x: dx = dm * c + (dm * x) * [lo < c < hi].
// One pass over x (and dy) instead of four (eight) plus the temporaries.
//
// fit.BnHardSwishChain(z, scale, B, mean, var): the same after a BatchNormalization (see below).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../../kernels/simd.h"
#include "util.h"

namespace fit {
namespace ops {
namespace {

template <typename T>
struct HswParams {
  T add, lo, hi, q;
  bool div;
};

template <typename T>
HswParams<T> hswParams(const Node& n) {
  return {static_cast<T>(n.f("add", 3)), static_cast<T>(n.f("lo", 0)), static_cast<T>(n.f("hi", 6)),
          static_cast<T>(n.f("q", 6)), n.i("div", 1) != 0};
}

// Plain loops with the clip written as selects (not std::min/std::max, not bool arithmetic) so
// that the vectorizer if-converts them in every clone of FIT_SIMD_CLONES.
template <typename T>
inline T clipOf(T v, T lo, T hi) {
  v = v < lo ? lo : v;  // std::max(v, lo): NaN stays NaN
  return hi < v ? hi : v;
}

template <typename T, bool DIV>
FIT_SIMD_CLONES void hswForwardLoop(const T* __restrict x, T* __restrict y, int64_t n, T add, T lo, T hi, T q) {
  for (int64_t i = 0; i < n; ++i) {
    const T m = x[i] * clipOf(x[i] + add, lo, hi);
    y[i] = DIV ? m / q : m * q;
  }
}

template <typename T>
FIT_SIMD_CLONES void hswBackwardLoop(const T* __restrict x, const T* __restrict dy, T* __restrict dx, int64_t n,
                                     T add, T lo, T hi, T s) {
  for (int64_t i = 0; i < n; ++i) {
    const T c = clipOf(x[i] + add, lo, hi);
    const T dm = s * dy[i];
    const T mask = c > lo && c < hi ? T(1) : T(0);
    dx[i] = dm * c + (dm * x[i]) * mask;
  }
}

template <typename T>
void hardSwishChainForward(OpContext<T>& ctx) {
  const Tensor& xt = ctx.in(0);
  const HswParams<T> p = hswParams<T>(ctx.node);
  const T* x = dataAs(ctx, 0);
  T* y = ctx.output(0, xt.dims);
  if (p.div) hswForwardLoop<T, true>(x, y, xt.numel(), p.add, p.lo, p.hi, p.q);
  else hswForwardLoop<T, false>(x, y, xt.numel(), p.add, p.lo, p.hi, p.q);
}

template <typename T>
void hardSwishChainBackward(GradContext<T>& ctx) {
  if (!ctx.wants(0)) return;
  const T* dy = ctx.gout(0);
  const Tensor& xt = ctx.in(0);
  if (!dy) {
    ctx.gradInputZeros(0, xt.dims);
    return;
  }
  const HswParams<T> p = hswParams<T>(ctx.node);
  const T s = p.div ? T(1) / p.q : p.q;
  hswBackwardLoop<T>(xt.template data<T>(), dy, ctx.gradInput(0, xt.dims), xt.numel(), p.add, p.lo, p.hi, s);
}

// ---- fit.BnHardSwishChain(z, scale, B, mean, var) -> h: x = BatchNormalization(z) (inference
// form, per-channel parameters, the same a = scale / sqrt(var + eps), b = B - mean * a computed in
// double as ops/norm.cpp does), then the hard-swish chain on x. Backward: dz = dhsw(x) * a, and
// the parameters' gradients (when wanted) from the same sums as the BatchNormalization rule.

template <typename T>
void bnCoefficients(const Node& node, const T* s, const T* B, const T* m, const T* v, int64_t C, std::vector<T>& a,
                    std::vector<T>& b, std::vector<double>* inv) {
  const double eps = node.f("epsilon", 1e-5);
  a.resize(C);
  b.resize(C);
  if (inv) inv->resize(C);
  for (int64_t c = 0; c < C; ++c) {
    const double iv = 1.0 / std::sqrt(static_cast<double>(v[c]) + eps);
    a[c] = static_cast<T>(s[c] * iv);
    b[c] = static_cast<T>(B[c] - m[c] * s[c] * iv);
    if (inv) (*inv)[c] = iv;
  }
}

template <typename T, bool DIV>
FIT_SIMD_CLONES void bnHswForwardLoop(const T* __restrict z, T* __restrict y, int64_t planes, int64_t C, int64_t S,
                                      const T* a, const T* b, T add, T lo, T hi, T q) {
  for (int64_t p = 0; p < planes; ++p) {
    const T ac = a[p % C], bc = b[p % C];
    const T* __restrict zp = z + p * S;
    T* __restrict yp = y + p * S;
    for (int64_t i = 0; i < S; ++i) {
      const T x = zp[i] * ac + bc;
      const T m = x * clipOf(x + add, lo, hi);
      yp[i] = DIV ? m / q : m * q;
    }
  }
}

// dz for every plane; g (when not null) receives the chain's gradient at x (for parameter sums).
template <typename T>
FIT_SIMD_CLONES void bnHswBackwardPlane(const T* __restrict z, const T* __restrict dy, T* __restrict dz,
                                        T* __restrict g, int64_t S, T ac, T bc, T add, T lo, T hi, T s) {
  for (int64_t i = 0; i < S; ++i) {
    const T x = z[i] * ac + bc;
    const T c = clipOf(x + add, lo, hi);
    const T dm = s * dy[i];
    const T mask = c > lo && c < hi ? T(1) : T(0);
    const T gx = dm * c + (dm * x) * mask;
    if (g) g[i] = gx;
    if (dz) dz[i] = gx * ac;
  }
}

template <typename T>
void bnHardSwishChainForward(OpContext<T>& ctx) {
  const Tensor& zt = ctx.in(0);
  ctx.check(zt.rank() >= 2, "expected X of rank >= 2 but got dims " + dimsToString(zt.dims));
  const int64_t N = zt.dims[0], C = zt.dims[1];
  const int64_t S = N > 0 && C > 0 ? zt.numel() / (N * C) : 0;
  for (size_t i = 1; i < 5; ++i)
    ctx.check(ctx.in(i).numel() == C, "expected per-channel BatchNormalization parameters of dims [" +
                                          std::to_string(C) + "]");
  std::vector<T> a, b;
  bnCoefficients<T>(ctx.node, dataAs(ctx, 1), dataAs(ctx, 2), dataAs(ctx, 3), dataAs(ctx, 4), C, a, b, nullptr);
  const HswParams<T> p = hswParams<T>(ctx.node);
  const T* z = dataAs(ctx, 0);
  T* y = ctx.output(0, zt.dims);
  if (p.div) bnHswForwardLoop<T, true>(z, y, N * C, C, S, a.data(), b.data(), p.add, p.lo, p.hi, p.q);
  else bnHswForwardLoop<T, false>(z, y, N * C, C, S, a.data(), b.data(), p.add, p.lo, p.hi, p.q);
}

template <typename T>
void bnHardSwishChainBackward(GradContext<T>& ctx) {
  const Tensor& zt = ctx.in(0);
  const int64_t N = zt.dims[0], C = zt.dims[1];
  const int64_t S = N > 0 && C > 0 ? zt.numel() / (N * C) : 0;
  const T* dy = ctx.gout(0);
  const T* sc = ctx.in(1).template data<T>();
  const T* mean = ctx.in(3).template data<T>();
  std::vector<T> a, b;
  std::vector<double> inv;
  bnCoefficients<T>(ctx.node, sc, ctx.in(2).template data<T>(), mean, ctx.in(4).template data<T>(), C, a, b, &inv);
  const bool params = ctx.wants(1) || ctx.wants(2) || ctx.wants(3) || ctx.wants(4);
  T* dz = ctx.wants(0) ? ctx.gradInput(0, zt.dims) : nullptr;
  if (!dy) {
    if (dz) std::fill(dz, dz + zt.numel(), T(0));
    for (size_t i = 1; i < 5; ++i)
      if (ctx.wants(i)) ctx.gradInputZeros(i, ctx.in(i).dims);
    return;
  }
  const HswParams<T> p = hswParams<T>(ctx.node);
  const T s = p.div ? T(1) / p.q : p.q;
  const T* z = zt.template data<T>();
  std::vector<T> gbuf(params ? static_cast<size_t>(S) : 0);
  std::vector<double> sumG(params ? C : 0, 0.0), sumGX(params ? C : 0, 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t off = (n * C + c) * S;
      bnHswBackwardPlane<T>(z + off, dy + off, dz ? dz + off : nullptr, params ? gbuf.data() : nullptr, S, a[c],
                            b[c], p.add, p.lo, p.hi, s);
      if (!params) continue;
      double sg = 0, sgx = 0;  // as the BatchNormalization rule sums them
      for (int64_t i = 0; i < S; ++i) sg += gbuf[i];
      for (int64_t i = 0; i < S; ++i) sgx += gbuf[i] * (z[off + i] - mean[c]);
      sumG[c] += sg;
      sumGX[c] += sgx;
    }
  auto set = [&](size_t i, auto f) {
    T* d = ctx.gradInput(i, ctx.in(i).dims);
    for (int64_t c = 0; c < C; ++c) d[c] = static_cast<T>(f(c));
  };
  if (ctx.wants(1)) set(1, [&](int64_t c) { return sumGX[c] * inv[c]; });
  if (ctx.wants(2)) set(2, [&](int64_t c) { return sumG[c]; });
  if (ctx.wants(3)) set(3, [&](int64_t c) { return -static_cast<double>(sc[c]) * inv[c] * sumG[c]; });
  if (ctx.wants(4))
    set(4, [&](int64_t c) { return -0.5 * static_cast<double>(sc[c]) * inv[c] * inv[c] * inv[c] * sumGX[c]; });
}

}  // namespace
}  // namespace ops
}  // namespace fit

using namespace fit::ops;

FIT_REGISTER_OP("fit.HardSwishChain", hardSwishChainForward);
FIT_REGISTER_GRAD("fit.HardSwishChain", hardSwishChainBackward, slot(0), kNoSlots);
FIT_REGISTER_OP("fit.BnHardSwishChain", bnHardSwishChainForward);
FIT_REGISTER_GRAD("fit.BnHardSwishChain", bnHardSwishChainBackward, slot(0) | slot(1) | slot(2) | slot(3) | slot(4),
                  kNoSlots);
