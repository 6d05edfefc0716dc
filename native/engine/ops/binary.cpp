// Elementwise binary ops with numpy multidirectional broadcasting: Add, Sub, Mul, Div, Pow, PRelu
// (slope broadcast to X only), and the variadic Max, Min, Sum, Mean.
//
// Broadcasting collapses the output dims first: size-1 output dims are dropped and neighbouring
// dims where each operand is either present in both or broadcast in both are merged. What is left
// is a short loop nest whose innermost loop is as long as possible and, for each operand, either
// contiguous or a single repeated value, so the common patterns (same shape, scalar operand,
// per-channel bias [C,1,1] against [N,C,H,W]) all run as one contiguous inner loop.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "../op.h"
#include "util.h"

namespace fit {
namespace ops {
namespace {

// Input i as T: used in place when it already has the compute type, else converted into scratch
// (a float32 constant in a float64 run, an integer constant such as a Pow exponent).
template <typename T>
const T* dataAs(OpContext<T>& ctx, size_t i) {
  const Tensor& t = ctx.in(i);
  if (t.dtype == DTypeOf<T>::value) return t.template data<T>();
  int64_t n = t.numel();
  T* buf = ctx.scratch.template alloc<T>(static_cast<size_t>(n > 0 ? n : 1));
  if (t.dtype == DType::F32) {
    const float* s = t.template data<float>();
    for (int64_t k = 0; k < n; ++k) buf[k] = static_cast<T>(s[k]);
  } else if (t.dtype == DType::F64) {
    const double* s = t.template data<double>();
    for (int64_t k = 0; k < n; ++k) buf[k] = static_cast<T>(s[k]);
  } else {
    const int64_t* s = t.template data<int64_t>();
    for (int64_t k = 0; k < n; ++k) buf[k] = static_cast<T>(s[k]);
  }
  return buf;
}

// y[od] = f(a[ad], b[bd]) with broadcasting; od must be broadcastDims(ad, bd) (or, for PRelu,
// ad itself). y must not alias a or b unless it has a's or b's dims exactly.
template <typename T, typename F>
void broadcastApply(const T* a, const Dims& ad, const T* b, const Dims& bd, T* y, const Dims& od,
                    F f) {
  const int64_t total = numelOf(od);
  if (total == 0) return;
  const size_t r = od.size();
  auto dimAt = [r](const Dims& d, size_t i) -> int64_t {
    return i < r - d.size() ? 1 : d[i - (r - d.size())];
  };
  // Collapse: cd = merged dims, ba/bb = whether a/b is broadcast (size 1) along them.
  Dims cd;
  std::vector<char> ba, bb;
  for (size_t i = 0; i < r; ++i) {
    if (od[i] == 1) continue;
    char xa = dimAt(ad, i) == 1, xb = dimAt(bd, i) == 1;
    if (!cd.empty() && ba.back() == xa && bb.back() == xb) {
      cd.back() *= od[i];
    } else {
      cd.push_back(od[i]);
      ba.push_back(xa);
      bb.push_back(xb);
    }
  }
  if (cd.empty()) {  // a single element
    y[0] = f(a[0], b[0]);
    return;
  }
  const size_t k = cd.size();
  Dims sa(k), sb(k);
  for (int64_t j = static_cast<int64_t>(k) - 1, pa = 1, pb = 1; j >= 0; --j) {
    sa[j] = ba[j] ? 0 : pa;
    sb[j] = bb[j] ? 0 : pb;
    if (!ba[j]) pa *= cd[j];
    if (!bb[j]) pb *= cd[j];
  }
  const int64_t n = cd[k - 1];
  const bool ca = !ba[k - 1], cb = !bb[k - 1];
  Dims idx(k, 0);
  int64_t oa = 0, ob = 0;
  for (int64_t o = 0; o < total; o += n) {
    T* yp = y + o;
    const T* ap = a + oa;
    const T* bp = b + ob;
    if (ca && cb) {
      for (int64_t i = 0; i < n; ++i) yp[i] = f(ap[i], bp[i]);
    } else if (ca) {
      const T bv = *bp;
      for (int64_t i = 0; i < n; ++i) yp[i] = f(ap[i], bv);
    } else if (cb) {
      const T av = *ap;
      for (int64_t i = 0; i < n; ++i) yp[i] = f(av, bp[i]);
    } else {
      const T v = f(*ap, *bp);
      for (int64_t i = 0; i < n; ++i) yp[i] = v;
    }
    // Advance the counter over the outer dims 0..k-2.
    for (int64_t j = static_cast<int64_t>(k) - 2; j >= 0; --j) {
      oa += sa[j];
      ob += sb[j];
      if (++idx[j] < cd[j]) break;
      oa -= sa[j] * cd[j];
      ob -= sb[j] * cd[j];
      idx[j] = 0;
    }
  }
}

template <typename T>
Dims broadcastOrFail(const OpContext<T>& ctx, const Dims& a, const Dims& b) {
  Dims out;
  if (!broadcastDims(a, b, out))
    ctx.fail(ErrorCode::ShapeMismatch, "operands with dims " + dimsToString(a) + " and " +
                                           dimsToString(b) + " cannot be broadcast together");
  return out;
}

// Two-input op: Y = f(A, B).
template <typename T, typename F>
void binaryOp(OpContext<T>& ctx, F f) {
  const Tensor& at = ctx.in(0);
  const Tensor& bt = ctx.in(1);
  const Dims od = broadcastOrFail(ctx, at.dims, bt.dims);
  const T* a = dataAs(ctx, 0);
  const T* b = dataAs(ctx, 1);
  T* y = ctx.output(0, od);
  broadcastApply(a, at.dims, b, bt.dims, y, od, f);
}

template <typename T>
void addForward(OpContext<T>& ctx) {
  binaryOp(ctx, [](T x, T w) -> T { return x + w; });
}
template <typename T>
void subForward(OpContext<T>& ctx) {
  binaryOp(ctx, [](T x, T w) -> T { return x - w; });
}
template <typename T>
void mulForward(OpContext<T>& ctx) {
  binaryOp(ctx, [](T x, T w) -> T { return x * w; });
}
template <typename T>
void divForward(OpContext<T>& ctx) {
  binaryOp(ctx, [](T x, T w) -> T { return x / w; });
}

// Pow: a constant scalar exponent of 2, 1 or 0.5 takes a cheap exact path (the usual
// x ** 2 of variance computations); anything else goes through std::pow.
template <typename T>
void powForward(OpContext<T>& ctx) {
  const Tensor& et = ctx.in(1);
  if (et.numel() == 1 && et.rank() <= ctx.in(0).rank()) {
    const T e = dataAs(ctx, 1)[0];
    const T* x = dataAs(ctx, 0);
    const Dims od = broadcastOrFail(ctx, ctx.in(0).dims, et.dims);
    const int64_t n = numelOf(od);
    T* y = ctx.output(0, od);
    if (e == T(2)) {
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] * x[i];
    } else if (e == T(1)) {
      for (int64_t i = 0; i < n; ++i) y[i] = x[i];
    } else if (e == T(0.5)) {
      for (int64_t i = 0; i < n; ++i) y[i] = std::sqrt(x[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) y[i] = std::pow(x[i], e);
    }
    return;
  }
  binaryOp(ctx, [](T x, T e) -> T { return std::pow(x, e); });
}

// PRelu: slope is broadcast to X's dims (unidirectionally).
template <typename T>
void preluForward(OpContext<T>& ctx) {
  const Tensor& xt = ctx.in(0);
  const Tensor& st = ctx.in(1);
  Dims od;
  if (!broadcastDims(xt.dims, st.dims, od) || od != xt.dims)
    ctx.fail(ErrorCode::ShapeMismatch, "slope with dims " + dimsToString(st.dims) +
                                           " cannot be broadcast to X with dims " +
                                           dimsToString(xt.dims));
  const T* x = dataAs(ctx, 0);
  const T* s = dataAs(ctx, 1);
  T* y = ctx.output(0, od);
  broadcastApply(x, xt.dims, s, st.dims, y, od,
                 [](T v, T w) -> T { return v < T(0) ? v * w : v; });
}

// Variadic ops fold the inputs pairwise: acc = f(acc, input k), broadcasting as they go.
// `post` runs over the final result (Mean divides by the input count).
template <typename T, typename F>
void variadicOp(OpContext<T>& ctx, F f, bool mean) {
  const size_t n = ctx.numInputs();
  ctx.check(n >= 1 && ctx.has(0), "needs at least one input");
  Dims od = ctx.in(0).dims;
  for (size_t k = 1; k < n; ++k) od = broadcastOrFail(ctx, od, ctx.in(k).dims);
  T* y = ctx.output(0, od);
  const T* x0 = dataAs(ctx, 0);
  if (n == 1) {
    std::memcpy(y, x0, sizeof(T) * static_cast<size_t>(numelOf(od)));
  } else {
    Tensor tmp;  // holds the partial result while it is smaller than the output
    const T* acc = x0;
    Dims accDims = ctx.in(0).dims;
    for (size_t k = 1; k < n; ++k) {
      const Dims& bd = ctx.in(k).dims;
      const Dims nd = broadcastOrFail(ctx, accDims, bd);
      T* dst = y;
      Tensor next;
      if (k + 1 < n && nd != od) {
        next = Tensor::make(DTypeOf<T>::value, nd);
        dst = next.template data<T>();
      }
      broadcastApply(acc, accDims, dataAs(ctx, k), bd, dst, nd, f);
      acc = dst;
      accDims = nd;
      tmp = std::move(next);
    }
  }
  if (mean) {
    const T inv = T(1) / static_cast<T>(n);
    const int64_t total = numelOf(od);
    for (int64_t i = 0; i < total; ++i) y[i] *= inv;
  }
}

template <typename T>
void sumForward(OpContext<T>& ctx) {
  variadicOp(ctx, [](T x, T w) -> T { return x + w; }, false);
}
template <typename T>
void meanForward(OpContext<T>& ctx) {
  variadicOp(ctx, [](T x, T w) -> T { return x + w; }, true);
}
// NaN propagates as in onnxruntime (a comparison with NaN keeps the NaN operand).
template <typename T>
void maxForward(OpContext<T>& ctx) {
  variadicOp(ctx, [](T x, T w) -> T { return (x >= w || std::isnan(x)) ? x : w; }, false);
}
template <typename T>
void minForward(OpContext<T>& ctx) {
  variadicOp(ctx, [](T x, T w) -> T { return (x <= w || std::isnan(x)) ? x : w; }, false);
}

}  // namespace
}  // namespace ops
}  // namespace fit

using namespace fit::ops;

FIT_REGISTER_OP("Add", addForward);
FIT_REGISTER_OP("Sub", subForward);
FIT_REGISTER_OP("Mul", mulForward);
FIT_REGISTER_OP("Div", divForward);
FIT_REGISTER_OP("Pow", powForward);
FIT_REGISTER_OP("PRelu", preluForward);
FIT_REGISTER_OP("Sum", sumForward);
FIT_REGISTER_OP("Mean", meanForward);
FIT_REGISTER_OP("Max", maxForward);
FIT_REGISTER_OP("Min", minForward);
