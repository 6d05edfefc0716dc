// Normalizations: BatchNormalization (inference form), LayerNormalization (opset 17, with the
// optional Mean / InvStdDev outputs) and InstanceNormalization. Statistics are accumulated in
// double with two passes (mean, then centred sum of squares).
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

template <typename T>
const T* broadcastToNorm(OpContext<T>& ctx, const Tensor& t, const Dims& normDims, const char* name) {
  const int64_t n = numelOf(normDims);
  Dims td = t.dims;  // drop leading 1s beyond the normalized rank ([1, D] for axis -1)
  while (td.size() > normDims.size() && td.front() == 1) td.erase(td.begin());
  Dims out;
  const bool ok = td.size() <= normDims.size() && ops::broadcastDims(td, normDims, out) && out == normDims;
  ctx.check(ok, std::string("expected ") + name + " broadcastable to the normalized shape " + str(normDims) +
                    " but got dims " + str(t.dims));
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
  const T* scale = broadcastToNorm(ctx, ctx.in(1), normDims, "Scale");
  const T* bias = ctx.has(2) ? broadcastToNorm(ctx, ctx.in(2), normDims, "B") : nullptr;

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

}  // namespace

FIT_REGISTER_OP("BatchNormalization", batchNormForward);
FIT_REGISTER_OP("LayerNormalization", layerNormForward);
FIT_REGISTER_OP("InstanceNormalization", instanceNormForward);

}  // namespace fit
