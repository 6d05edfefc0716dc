// Normalizations: BatchNormalization (inference form), LayerNormalization (opset 17, with the
// optional Mean / InvStdDev outputs) and InstanceNormalization. Statistics are accumulated in
// double with two passes (mean, then centred sum of squares). Gradient rules (end of file) for
// every float input, including BatchNormalization's mean and var and LayerNormalization's
// Mean / InvStdDev outputs; they recompute the statistics from the saved X.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "util.h"

namespace fit {
namespace {

std::string str(const Dims& d) { return dimsToString(d); }
std::string str(int64_t v) { return std::to_string(v); }

template <typename T>
bool wantsOutput(const OpContext<T>& ctx, size_t i) {
  return ctx.node.outputs.size() > i && ctx.node.outputs[i] != -1;
}

// Mean and 1/sqrt(var + eps) of n contiguous values: two passes in double, each with 8
// independent partial sums so the loops vectorize.
template <typename T>
void moments(const T* x, int64_t n, double eps, double& mean, double& inv) {
  double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) a[l] += static_cast<double>(x[i + l]);
  double s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
  for (; i < n; ++i) s += x[i];
  mean = n > 0 ? s / static_cast<double>(n) : 0.0;
  double q[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (i = 0; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) {
      const double d = static_cast<double>(x[i + l]) - mean;
      q[l] += d * d;
    }
  double ss = ((q[0] + q[1]) + (q[2] + q[3])) + ((q[4] + q[5]) + (q[6] + q[7]));
  for (; i < n; ++i) ss += (x[i] - mean) * (x[i] - mean);
  const double var = n > 0 ? ss / static_cast<double>(n) : 0.0;
  inv = 1.0 / std::sqrt(var + eps);
}

// ----------------------------------------------------------------------------------------------
// BatchNormalization, inference: Y = (X - mean) / sqrt(var + eps) * scale + B over channel dim 1.
// Parameters are per channel ([C]); opset-7 spatial=0 models may give them per [C, spatial...].

template <typename T>
void batchNormForward(OpContext<T>& ctx) {
  if (ctx.node.i("training_mode", 0) != 0)
    ctx.fail(ErrorCode::UnsupportedOp, "training_mode=1 is not supported (only the inference form is)");
  for (size_t i = 1; i < ctx.node.outputs.size(); ++i)
    if (ctx.node.outputs[i] != -1)
      ctx.fail(ErrorCode::UnsupportedOp, "the running/saved mean and variance outputs (training form) are not supported");
  const Tensor& X = ctx.in(0);
  ctx.check(X.rank() >= 2, "expected X of rank >= 2 ([N, C, ...]) but got dims " + str(X.dims));
  const int64_t N = X.dims[0], C = X.dims[1];
  const int64_t S = C > 0 && N > 0 ? X.numel() / (N * C) : 0;
  const char* names[4] = {"scale", "B", "mean", "var"};
  const T* p[4];
  bool perElement = false;
  for (int i = 0; i < 4; ++i) {
    const Tensor& t = ctx.in(1 + i);
    const bool elem = t.numel() == C * S && t.rank() == X.rank() - 1 && S != 1;
    ctx.check(t.numel() == C || elem, std::string("expected ") + names[i] + " of dims [" + str(C) +
                                          "] (the channels of X " + str(X.dims) + ") but got " + str(t.dims));
    if (i > 0 && elem != perElement)
      ctx.fail(ErrorCode::ShapeMismatch, "scale, B, mean and var must all be per channel or all per element");
    perElement = elem;
    p[i] = t.template data<T>();
  }
  const double eps = ctx.node.f("epsilon", 1e-5);
  T* y = ctx.output(0, X.dims);
  const T* x = X.template data<T>();
  const int64_t P = perElement ? C * S : C;  // number of (a, b) coefficient pairs
  std::vector<T> a(P), b(P);
  for (int64_t i = 0; i < P; ++i) {
    const double inv = 1.0 / std::sqrt(static_cast<double>(p[3][i]) + eps);
    a[i] = static_cast<T>(p[0][i] * inv);
    b[i] = static_cast<T>(p[1][i] - p[2][i] * p[0][i] * inv);
  }
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const T* xc = x + (n * C + c) * S;
      T* yc = y + (n * C + c) * S;
      if (perElement) {
        const T* ac = a.data() + c * S;
        const T* bc = b.data() + c * S;
        for (int64_t i = 0; i < S; ++i) yc[i] = xc[i] * ac[i] + bc[i];
      } else {
        const T ac = a[c], bc = b[c];
        for (int64_t i = 0; i < S; ++i) yc[i] = xc[i] * ac + bc;
      }
    }
}

// ----------------------------------------------------------------------------------------------
// LayerNormalization (opset 17): normalize over dims [axis, rank); Scale and B broadcast to the
// normalized shape. Optional outputs Mean and InvStdDev have X's dims with dims[axis:] set to 1.

// Shared by the forward (OpContext) and gradient (GradContext) rules.
template <typename T, typename Ctx>
const T* broadcastToNorm(Ctx& ctx, const Tensor& t, const Dims& normDims, const char* name) {
  const int64_t n = numelOf(normDims);
  Dims td = t.dims;  // drop leading 1s beyond the normalized rank ([1, D] for axis -1)
  while (td.size() > normDims.size() && td.front() == 1) td.erase(td.begin());
  Dims out;
  const bool ok = td.size() <= normDims.size() && ops::broadcastDims(td, normDims, out) && out == normDims;
  if (!ok)
    ctx.fail(ErrorCode::ShapeMismatch, std::string("expected ") + name + " broadcastable to the normalized shape " +
                                           str(normDims) + " but got dims " + str(t.dims));
  if (t.numel() == n) return t.template data<T>();  // same layout
  const Dims st = ops::broadcastStrides(td, normDims.size());
  T* buf = ctx.scratch.template alloc<T>(static_cast<size_t>(n));
  const T* src = t.template data<T>();
  const int r = static_cast<int>(normDims.size());
  Dims idx(r, 0);
  int64_t off = 0;
  for (int64_t i = 0; i < n; ++i) {
    buf[i] = src[off];
    for (int d = r - 1; d >= 0; --d) {
      if (++idx[d] < normDims[d]) {
        off += st[d];
        break;
      }
      off -= st[d] * (normDims[d] - 1);
      idx[d] = 0;
    }
  }
  return buf;
}

template <typename T>
void layerNormForward(OpContext<T>& ctx) {
  const Tensor& X = ctx.in(0);
  const int r = X.rank();
  ctx.check(r >= 1, "expected X of rank >= 1 but got a scalar");
  const int axis = ops::normAxis(ctx, ctx.node.i("axis", -1), r);
  const double eps = ctx.node.f("epsilon", 1e-5);
  const Dims normDims(X.dims.begin() + axis, X.dims.end());
  const int64_t D = numelOf(normDims);
  const int64_t rows = numelOf(Dims(X.dims.begin(), X.dims.begin() + axis));
  const T* scale = broadcastToNorm<T>(ctx, ctx.in(1), normDims, "Scale");
  const T* bias = ctx.has(2) ? broadcastToNorm<T>(ctx, ctx.in(2), normDims, "B") : nullptr;

  T* y = ctx.output(0, X.dims);
  Dims statDims = X.dims;
  for (int i = axis; i < r; ++i) statDims[i] = 1;
  T* meanOut = wantsOutput(ctx, 1) ? ctx.output(1, statDims) : nullptr;
  T* invOut = wantsOutput(ctx, 2) ? ctx.output(2, statDims) : nullptr;
  const T* x = X.template data<T>();
  for (int64_t row = 0; row < rows; ++row) {
    const T* xr = x + row * D;
    T* yr = y + row * D;
    double mean, inv;
    moments(xr, D, eps, mean, inv);
    if (meanOut) meanOut[row] = static_cast<T>(mean);
    if (invOut) invOut[row] = static_cast<T>(inv);
    const T m = static_cast<T>(mean), iv = static_cast<T>(inv);
    if (bias) {
      for (int64_t i = 0; i < D; ++i) yr[i] = (xr[i] - m) * iv * scale[i] + bias[i];
    } else {
      for (int64_t i = 0; i < D; ++i) yr[i] = (xr[i] - m) * iv * scale[i];
    }
  }
}

// ----------------------------------------------------------------------------------------------
// InstanceNormalization: per (n, c) over the spatial dims, then scale[c] and B[c].

template <typename T>
void instanceNormForward(OpContext<T>& ctx) {
  const Tensor& X = ctx.in(0);
  ctx.check(X.rank() >= 3, "expected X of rank >= 3 ([N, C, spatial...]) but got dims " + str(X.dims));
  const int64_t N = X.dims[0], C = X.dims[1];
  const Tensor& sc = ctx.in(1);
  const Tensor& bt = ctx.in(2);
  ctx.check(sc.numel() == C && sc.rank() == 1, "expected scale of dims [" + str(C) + "] but got " + str(sc.dims));
  ctx.check(bt.numel() == C && bt.rank() == 1, "expected B of dims [" + str(C) + "] but got " + str(bt.dims));
  const double eps = ctx.node.f("epsilon", 1e-5);
  T* y = ctx.output(0, X.dims);
  if (X.numel() == 0) return;
  const int64_t S = X.numel() / (N * C);
  const T* x = X.template data<T>();
  const T* s = sc.template data<T>();
  const T* b = bt.template data<T>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const T* xc = x + (n * C + c) * S;
      T* yc = y + (n * C + c) * S;
      double mean, inv;
      moments(xc, S, eps, mean, inv);
      const T a = static_cast<T>(s[c] * inv);
      const T o = static_cast<T>(b[c] - mean * s[c] * inv);
      for (int64_t i = 0; i < S; ++i) yc[i] = xc[i] * a + o;
    }
}

// ---- gradients ---------------------------------------------------------------------------------

// Param gradient i from double accumulators (dims of input i).
template <typename T>
void setParamGrad(GradContext<T>& ctx, size_t i, const std::vector<double>& acc) {
  T* d = ctx.gradInput(i, ctx.in(i).dims);
  for (size_t k = 0; k < acc.size(); ++k) d[k] = static_cast<T>(acc[k]);
}

// BatchNormalization (inference): y = (x - mean) * a + B with inv = 1 / sqrt(var + eps) and
// a = scale * inv: dX = dy * a, dscale = inv * sum dy (x - mean), dB = sum dy, dmean = -a sum dy,
// dvar = -scale inv^3 / 2 * sum dy (x - mean), summed over N and the spatial dims (over N only for
// per-element parameters). Reads X (for dscale and dvar) and the four parameters.
template <typename T>
void batchNormBackward(GradContext<T>& ctx) {
  const Tensor& gyT = *ctx.gradOutputs.at(0);
  const Dims& xd = gyT.dims;
  const int64_t N = xd[0], C = xd[1];
  const int64_t S = C > 0 && N > 0 ? numelOf(xd) / (N * C) : 0;
  const Tensor& sc = ctx.in(1);
  const bool perElement = sc.numel() == C * S && sc.rank() == static_cast<int>(xd.size()) - 1 && S != 1;
  const int64_t P = perElement ? C * S : C;
  const T* s = sc.template data<T>();
  const T* m = ctx.in(3).template data<T>();
  const T* v = ctx.in(4).template data<T>();
  const double eps = ctx.node.f("epsilon", 1e-5);
  const bool wantStats = ctx.wants(1) || ctx.wants(4);
  const bool wantSum = ctx.wants(2) || ctx.wants(3);  // sums of dy only for B, mean
  const T* x = wantStats ? ctx.in(0).template data<T>() : nullptr;
  const T* gy = gyT.template data<T>();
  T* dx = ctx.wants(0) ? ctx.gradInput(0, xd) : nullptr;
  std::vector<double> inv(P), sumG(P, 0.0), sumGX(P, 0.0);
  std::vector<T> a(P);
  for (int64_t i = 0; i < P; ++i) {
    inv[i] = 1.0 / std::sqrt(static_cast<double>(v[i]) + eps);
    a[i] = static_cast<T>(s[i] * inv[i]);
  }
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t off = (n * C + c) * S;
      const T* g = gy + off;
      if (perElement) {
        const int64_t b = c * S;
        if (dx)
          for (int64_t i = 0; i < S; ++i) dx[off + i] = g[i] * a[b + i];
        if (wantSum)
          for (int64_t i = 0; i < S; ++i) sumG[b + i] += g[i];
        if (x)
          for (int64_t i = 0; i < S; ++i) sumGX[b + i] += g[i] * (x[off + i] - m[b + i]);
      } else {
        const T ac = a[c], mc = m[c];
        if (dx)
          for (int64_t i = 0; i < S; ++i) dx[off + i] = g[i] * ac;
        double sg = 0, sgx = 0;
        if (wantSum)
          for (int64_t i = 0; i < S; ++i) sg += g[i];
        if (x)
          for (int64_t i = 0; i < S; ++i) sgx += g[i] * (x[off + i] - mc);
        sumG[c] += sg;
        sumGX[c] += sgx;
      }
    }
  std::vector<double> acc(P);
  if (ctx.wants(1)) {
    for (int64_t i = 0; i < P; ++i) acc[i] = sumGX[i] * inv[i];
    setParamGrad(ctx, 1, acc);
  }
  if (ctx.wants(2)) setParamGrad(ctx, 2, sumG);
  if (ctx.wants(3)) {
    for (int64_t i = 0; i < P; ++i) acc[i] = -static_cast<double>(s[i]) * inv[i] * sumG[i];
    setParamGrad(ctx, 3, acc);
  }
  if (ctx.wants(4)) {
    for (int64_t i = 0; i < P; ++i) acc[i] = -0.5 * static_cast<double>(s[i]) * inv[i] * inv[i] * inv[i] * sumGX[i];
    setParamGrad(ctx, 4, acc);
  }
}

// Sums a per-normalized-element accumulator down to the dims of a Scale/B operand that broadcasts
// to normDims (leading 1s beyond the normalized rank dropped, as the forward does).
template <typename T>
void setNormParamGrad(GradContext<T>& ctx, size_t i, const std::vector<double>& acc, const Dims& normDims) {
  const Tensor& t = ctx.in(i);
  Dims td = t.dims;
  while (td.size() > normDims.size() && td.front() == 1) td.erase(td.begin());
  std::vector<T> buf(acc.begin(), acc.end());
  ops::sumToShape(buf.data(), normDims, ctx.gradInput(i, t.dims), td);
}

// LayerNormalization: with xh = (x - mu) * inv and gs = dy * Scale, per row of D elements
// dX = inv * (gs - mean(gs) - xh * mean(gs * xh)); dScale = sum_rows dy * xh; dB = sum_rows dy.
// Gradients reaching the Mean / InvStdDev outputs add d mu / dx = 1 / D and
// d inv / dx = -inv^2 * xh / D. Reads X (the statistics are recomputed), Scale and B (for its dims).
template <typename T>
void layerNormBackward(GradContext<T>& ctx) {
  const Tensor& X = ctx.in(0);
  const int r = X.rank();
  int64_t axis = ctx.node.i("axis", -1);
  if (axis < -r || axis >= r) ctx.fail(ErrorCode::InvalidAttribute, "axis " + str(axis) + " is out of range");
  if (axis < 0) axis += r;
  const double eps = ctx.node.f("epsilon", 1e-5);
  const Dims normDims(X.dims.begin() + axis, X.dims.end());
  const int64_t D = numelOf(normDims);
  const int64_t rows = D > 0 ? X.numel() / D : 0;
  const T* scale = broadcastToNorm<T>(ctx, ctx.in(1), normDims, "Scale");
  const T* gy = ctx.gout(0);
  const T* gm = ctx.gout(1);
  const T* gi = ctx.gout(2);
  const bool wantS = ctx.wants(1), wantB = ctx.wants(2) && ctx.has(2);
  T* dx = ctx.wants(0) ? ctx.gradInput(0, X.dims) : nullptr;
  std::vector<double> dS(wantS ? D : 0, 0.0), dB(wantB ? D : 0, 0.0);
  std::vector<T> xh(D), gs(D);
  const T* x = X.template data<T>();
  const T invD = T(1) / static_cast<T>(std::max<int64_t>(D, 1));
  for (int64_t row = 0; row < rows; ++row) {
    const T* xr = x + row * D;
    const T* gr = gy ? gy + row * D : nullptr;
    double mean, inv;
    moments(xr, D, eps, mean, inv);
    const T mu = static_cast<T>(mean), iv = static_cast<T>(inv);
    for (int64_t i = 0; i < D; ++i) xh[i] = (xr[i] - mu) * iv;
    if (gr && wantS)
      for (int64_t i = 0; i < D; ++i) dS[i] += gr[i] * xh[i];
    if (gr && wantB)
      for (int64_t i = 0; i < D; ++i) dB[i] += gr[i];
    if (!dx) continue;
    T* d = dx + row * D;
    if (gr) {
      double a = 0, b = 0;
      for (int64_t i = 0; i < D; ++i) {
        gs[i] = gr[i] * scale[i];
        a += gs[i];
        b += gs[i] * xh[i];
      }
      const T c1 = static_cast<T>(a) * invD, c2 = static_cast<T>(b) * invD;
      for (int64_t i = 0; i < D; ++i) d[i] = iv * (gs[i] - c1 - xh[i] * c2);
    } else {
      std::fill(d, d + D, T(0));
    }
    if (gm || gi) {
      const T cm = gm ? gm[row] * invD : T(0), ci = gi ? -gi[row] * iv * iv * invD : T(0);
      for (int64_t i = 0; i < D; ++i) d[i] += cm + ci * xh[i];
    }
  }
  if (wantS) setNormParamGrad(ctx, 1, dS, normDims);
  if (wantB) setNormParamGrad(ctx, 2, dB, normDims);
}

// InstanceNormalization: per (n, c) plane of S elements, with xh = (x - mu) * inv,
// dX = scale[c] * inv * (dy - mean(dy) - xh * mean(dy * xh)); dscale[c] = sum dy * xh;
// dB[c] = sum dy. Reads X (the statistics are recomputed) and scale.
template <typename T>
void instanceNormBackward(GradContext<T>& ctx) {
  const Tensor& X = ctx.in(0);
  const int64_t N = X.dims[0], C = X.dims[1];
  const int64_t S = N * C > 0 ? X.numel() / (N * C) : 0;
  const T* s = ctx.in(1).template data<T>();
  const double eps = ctx.node.f("epsilon", 1e-5);
  const T* x = X.template data<T>();
  const T* gy = ctx.gout(0);
  T* dx = ctx.wants(0) ? ctx.gradInput(0, X.dims) : nullptr;
  std::vector<double> dS(C, 0.0), dB(C, 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const T* xc = x + (n * C + c) * S;
      const T* gc = gy + (n * C + c) * S;
      double mean, inv;
      moments(xc, S, eps, mean, inv);
      const T mu = static_cast<T>(mean), iv = static_cast<T>(inv);
      double sg = 0, sgx = 0;
      for (int64_t i = 0; i < S; ++i) {
        sg += gc[i];
        sgx += gc[i] * ((xc[i] - mu) * iv);
      }
      dS[c] += sgx;
      dB[c] += sg;
      if (!dx) continue;
      T* d = dx + (n * C + c) * S;
      const T a = s[c] * iv, c1 = static_cast<T>(sg / S), c2 = static_cast<T>(sgx / S);
      for (int64_t i = 0; i < S; ++i) d[i] = a * (gc[i] - c1 - (xc[i] - mu) * iv * c2);
    }
  if (ctx.wants(1)) std::copy(dS.begin(), dS.end(), ctx.gradInput(1, {C}));
  if (ctx.wants(2)) std::copy(dB.begin(), dB.end(), ctx.gradInput(2, {C}));
}

}  // namespace

FIT_REGISTER_OP("BatchNormalization", batchNormForward);
FIT_REGISTER_OP("LayerNormalization", layerNormForward);
FIT_REGISTER_OP("InstanceNormalization", instanceNormForward);
FIT_REGISTER_GRAD("BatchNormalization", batchNormBackward, slot(0) | slot(1) | slot(2) | slot(3) | slot(4), kNoSlots);
FIT_REGISTER_GRAD("LayerNormalization", layerNormBackward, slot(0) | slot(1) | slot(2), kNoSlots);
FIT_REGISTER_GRAD("InstanceNormalization", instanceNormBackward, slot(0) | slot(1), kNoSlots);

}  // namespace fit
