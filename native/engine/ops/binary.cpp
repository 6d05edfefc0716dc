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

// Walks the broadcast of a (dims ad) and b (dims bd) to od in innermost lines: for each line,
// line(o, oa, ob, n, ca, cb) with o the output offset, oa / ob the operands' offsets, n the line
// length and ca / cb whether a / b advance along the line (else they repeat one value).
template <typename F>
void forEachLine(const Dims& ad, const Dims& bd, const Dims& od, F line) {
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
    line(int64_t(0), int64_t(0), int64_t(0), int64_t(1), true, true);
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
    line(o, oa, ob, n, ca, cb);
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

// y[od] = f(a[ad], b[bd]) with broadcasting; od must be broadcastDims(ad, bd) (or, for PRelu,
// ad itself). y must not alias a or b unless it has a's or b's dims exactly.
template <typename T, typename F>
void broadcastApply(const T* a, const Dims& ad, const T* b, const Dims& bd, T* y, const Dims& od,
                    F f) {
  forEachLine(ad, bd, od, [&](int64_t o, int64_t oa, int64_t ob, int64_t n, bool ca, bool cb) {
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
  });
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

// ---- gradient rules ------------------------------------------------------------------------------
// Input dims come from ctx.inDims (known even when the input's data was freed), so Add, Sub, Sum
// and Mean save nothing; the other rules save only the operands whose values they read. A
// broadcast operand's gradient is the output gradient summed down to its dims (sumToShape).

template <typename T>
void zeroWanted(GradContext<T>& ctx) {
  for (size_t k = 0; k < ctx.needGrad.size(); ++k)
    if (ctx.wants(k)) ctx.gradInputZeros(k, ctx.inDims(k));
}

// Gradient of input k: dy * f(a, b) over the output dims od (a, b broadcast to od), summed down to
// input k's dims; written in place when input k has the output's size.
template <typename T, typename F>
void binaryGrad(GradContext<T>& ctx, size_t k, const T* dy, const Dims& od, const T* a,
                const Dims& ad, const T* b, const Dims& bd, F f) {
  const Dims kd = ctx.inDims(k);
  const int64_t n = numelOf(od);
  T* g = ctx.gradInput(k, kd);
  T* t = numelOf(kd) == n ? g : ctx.scratch.template alloc<T>(static_cast<size_t>(n > 0 ? n : 1));
  broadcastApply(a, ad, b, bd, t, od, f);
  for (int64_t i = 0; i < n; ++i) t[i] *= dy[i];
  if (t != g) sumToShape(t, od, g, kd);
}

// Gradients of both inputs of an elementwise product-like op in one walk over the output:
// gA = dy * fa(a, b) and gB = dy * fb(a, b), each summed down to its input's dims. A full-size
// gradient is written directly, a broadcast one accumulated (line sums for an operand repeated
// along the line, e.g. the [N, C, 1, 1] scale of a squeeze-excitation Mul). dy is read once from
// memory: the second pass over each line hits the cache. No temporaries.
template <typename T, typename FA, typename FB>
void productGrad(GradContext<T>& ctx, const T* dy, const Dims& od, const T* a, const Dims& ad, const T* b,
                 const Dims& bd, FA fa, FB fb) {
  const int64_t total = numelOf(od);
  T* g[2] = {nullptr, nullptr};
  bool full[2] = {false, false};
  for (size_t k = 0; k < 2; ++k) {
    if (!ctx.wants(k)) continue;
    const Dims& kd = ctx.inDims(k);
    full[k] = numelOf(kd) == total;
    g[k] = full[k] ? ctx.gradInput(k, kd) : ctx.gradInputZeros(k, kd);
  }
  if (total == 0) return;
  forEachLine(ad, bd, od, [&](int64_t o, int64_t oa, int64_t ob, int64_t n, bool ca, bool cb) {
    const T* __restrict d = dy + o;
    const T* __restrict ap = a + oa;
    const T* __restrict bp = b + ob;
    auto target = [&](T* __restrict t, bool fullK, bool along, auto f) {
      if (along && fullK) {
        if (ca && cb) for (int64_t i = 0; i < n; ++i) t[i] = f(ap[i], bp[i]) * d[i];
        else if (ca) for (int64_t i = 0; i < n; ++i) t[i] = f(ap[i], *bp) * d[i];
        else for (int64_t i = 0; i < n; ++i) t[i] = f(*ap, bp[i]) * d[i];
      } else if (along) {
        if (ca && cb) for (int64_t i = 0; i < n; ++i) t[i] += f(ap[i], bp[i]) * d[i];
        else if (ca) for (int64_t i = 0; i < n; ++i) t[i] += f(ap[i], *bp) * d[i];
        else for (int64_t i = 0; i < n; ++i) t[i] += f(*ap, bp[i]) * d[i];
      } else {
        // Repeated along the line: a sum, in 8 partial sums so it vectorizes.
        auto lineSum = [&](auto term) {
          T part[8] = {};
          int64_t i = 0;
          for (; i + 8 <= n; i += 8)
            for (int j = 0; j < 8; ++j) part[j] += term(i + j);
          for (; i < n; ++i) part[0] += term(i);
          *t += ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
        };
        const T av = *ap, bv = *bp;
        if (ca) lineSum([&](int64_t i) { return f(ap[i], bv) * d[i]; });
        else if (cb) lineSum([&](int64_t i) { return f(av, bp[i]) * d[i]; });
        else lineSum([&, v = f(av, bv)](int64_t i) { return v * d[i]; });
      }
    };
    if (g[0]) target(g[0] + oa, full[0], ca, fa);
    if (g[1]) target(g[1] + ob, full[1], cb, fb);
  });
}

// Gradient of input k: scale * dy summed down to input k's dims. With the output's size and scale
// 1 it is dy itself, shared (the executor copies before accumulating into shared storage).
template <typename T>
void passGrad(GradContext<T>& ctx, size_t k, const T* dy, const Dims& od, T scale) {
  const Dims& kd = ctx.inDims(k);
  const int64_t n = numelOf(kd);
  if (n == numelOf(od)) {
    if (scale == T(1) && ctx.gradOutputs[0]->hold) {
      ctx.gradInputs.at(k) = ctx.gradOutputs[0]->reshaped(kd);
      return;
    }
    T* g = ctx.gradInput(k, kd);
    for (int64_t i = 0; i < n; ++i) g[i] = dy[i] * scale;
    return;
  }
  T* g = ctx.gradInput(k, kd);
  sumToShape(dy, od, g, kd);
  if (scale != T(1))
    for (int64_t i = 0; i < n; ++i) g[i] *= scale;
}

template <typename T>
void addBackward(GradContext<T>& ctx) {
  const T* dy = ctx.gout(0);
  if (!dy) return zeroWanted(ctx);
  const Dims& od = ctx.gradOutputs[0]->dims;
  if (ctx.wants(0)) passGrad(ctx, 0, dy, od, T(1));
  if (ctx.wants(1)) passGrad(ctx, 1, dy, od, T(1));
}

template <typename T>
void subBackward(GradContext<T>& ctx) {
  const T* dy = ctx.gout(0);
  if (!dy) return zeroWanted(ctx);
  const Dims& od = ctx.gradOutputs[0]->dims;
  if (ctx.wants(0)) passGrad(ctx, 0, dy, od, T(1));
  if (ctx.wants(1)) passGrad(ctx, 1, dy, od, T(-1));
}

template <typename T>
void mulBackward(GradContext<T>& ctx) {
  const T* dy = ctx.gout(0);
  if (!dy) return zeroWanted(ctx);
  const Dims& od = ctx.gradOutputs[0]->dims;
  const Dims &ad = ctx.in(0).dims, &bd = ctx.in(1).dims;
  const T* a = dataAs(ctx, 0);
  const T* b = dataAs(ctx, 1);
  productGrad(ctx, dy, od, a, ad, b, bd, [](T, T w) -> T { return w; }, [](T v, T) -> T { return v; });
}

// d(a/b)/da = 1/b, d(a/b)/db = -a/b^2.
template <typename T>
void divBackward(GradContext<T>& ctx) {
  const T* dy = ctx.gout(0);
  if (!dy) return zeroWanted(ctx);
  const Dims& od = ctx.gradOutputs[0]->dims;
  const Dims &ad = ctx.in(0).dims, &bd = ctx.in(1).dims;
  const T* a = dataAs(ctx, 0);
  const T* b = dataAs(ctx, 1);
  productGrad(ctx, dy, od, a, ad, b, bd, [](T, T w) -> T { return T(1) / w; },
              [](T v, T w) -> T { return -v / (w * w); });
}

// d(a^b)/da = b * a^(b-1) (0 for b = 0, also at a = 0); d(a^b)/db = a^b * log(a) for a > 0 and 0
// otherwise (a^b is real for a <= 0 only at integer b, where it is not differentiable in b).
template <typename T>
void powBackward(GradContext<T>& ctx) {
  const T* dy = ctx.gout(0);
  if (!dy) return zeroWanted(ctx);
  const Dims& od = ctx.gradOutputs[0]->dims;
  const Dims &ad = ctx.in(0).dims, &bd = ctx.in(1).dims;
  const T* a = dataAs(ctx, 0);
  const T* b = dataAs(ctx, 1);
  const int64_t n = numelOf(od);
  if (ctx.wants(0)) {
    if (numelOf(bd) == 1 && numelOf(ad) == n) {
      // Scalar exponent (the common x ** 2): one loop, exact fast paths as in the forward.
      const T e = b[0];
      T* g = ctx.gradInput(0, ad);
      if (e == T(2)) {
        for (int64_t i = 0; i < n; ++i) g[i] = T(2) * a[i] * dy[i];
      } else if (e == T(1)) {
        for (int64_t i = 0; i < n; ++i) g[i] = dy[i];
      } else if (e == T(0)) {
        for (int64_t i = 0; i < n; ++i) g[i] = T(0);
      } else if (e == T(0.5)) {
        for (int64_t i = 0; i < n; ++i) g[i] = T(0.5) * dy[i] / std::sqrt(a[i]);
      } else {
        const T em1 = e - T(1);
        for (int64_t i = 0; i < n; ++i) g[i] = e * std::pow(a[i], em1) * dy[i];
      }
    } else {
      binaryGrad(ctx, 0, dy, od, a, ad, b, bd, [](T v, T w) -> T {
        return w == T(0) ? T(0) : w * std::pow(v, w - T(1));
      });
    }
  }
  if (ctx.wants(1))
    binaryGrad(ctx, 1, dy, od, a, ad, b, bd, [](T v, T w) -> T {
      return v > T(0) ? std::pow(v, w) * std::log(v) : T(0);
    });
}

// PRelu: y = x < 0 ? slope * x : x, slope broadcast to x's dims.
template <typename T>
void preluBackward(GradContext<T>& ctx) {
  const T* dy = ctx.gout(0);
  if (!dy) return zeroWanted(ctx);
  const Dims &xd = ctx.in(0).dims, &sd = ctx.in(1).dims;
  const T* x = dataAs(ctx, 0);
  const T* s = dataAs(ctx, 1);
  if (ctx.wants(0))
    binaryGrad(ctx, 0, dy, xd, x, xd, s, sd, [](T v, T w) -> T { return v < T(0) ? w : T(1); });
  if (ctx.wants(1))
    binaryGrad(ctx, 1, dy, xd, x, xd, s, sd, [](T v, T) -> T { return v < T(0) ? v : T(0); });
}

// Sum and Mean: every input gets the output gradient (/ n for Mean) summed down to its dims.
template <typename T, bool MEAN>
void sumMeanBackward(GradContext<T>& ctx) {
  const T* dy = ctx.gout(0);
  if (!dy) return zeroWanted(ctx);
  const Dims& od = ctx.gradOutputs[0]->dims;
  const T scale = MEAN ? T(1) / static_cast<T>(ctx.needGrad.size()) : T(1);
  for (size_t k = 0; k < ctx.needGrad.size(); ++k)
    if (ctx.wants(k)) passGrad(ctx, k, dy, od, scale);
}

// Max and Min: the gradient goes to the input whose value was selected, which on ties is the first
// such input (the forward folds the inputs in order and keeps the earlier one on equality).
template <typename T>
void maxMinBackward(GradContext<T>& ctx) {
  const T* dy = ctx.gout(0);
  if (!dy) return zeroWanted(ctx);
  size_t last = 0;  // inputs after the last wanted one need no work
  for (size_t k = 0; k < ctx.needGrad.size(); ++k)
    if (ctx.wants(k)) last = k + 1;
  const Tensor& yt = ctx.out(0);
  const Dims& od = yt.dims;
  const T* y = yt.template data<T>();
  const int64_t n = numelOf(od);
  T* sel = ctx.scratch.template alloc<T>(static_cast<size_t>(n > 0 ? n : 1));
  char* taken = ctx.scratch.template alloc<char>(static_cast<size_t>(n > 0 ? n : 1));
  std::fill(taken, taken + n, 0);
  for (size_t k = 0; k < last; ++k) {
    const Dims& kd = ctx.in(k).dims;
    broadcastApply(y, od, dataAs(ctx, k), kd, sel, od,
                   [](T yv, T xv) -> T { return xv == yv ? T(1) : T(0); });
    for (int64_t i = 0; i < n; ++i) {
      const bool hit = sel[i] != T(0) && !taken[i];
      taken[i] |= hit;
      sel[i] = hit ? dy[i] : T(0);
    }
    if (ctx.wants(k)) sumToShape(sel, od, ctx.gradInput(k, kd), kd);
  }
}

template <typename T>
void sumBackward(GradContext<T>& ctx) {
  sumMeanBackward<T, false>(ctx);
}
template <typename T>
void meanBackward(GradContext<T>& ctx) {
  sumMeanBackward<T, true>(ctx);
}

}  // namespace
}  // namespace ops
}  // namespace fit

using namespace fit::ops;

// Saved masks: FIT_REGISTER_GRAD(type, rule, forward inputs read, forward outputs read). Add, Sub,
// Sum and Mean need only their inputs' dims (ctx.inDims), so they keep nothing alive.
FIT_REGISTER_OP("Add", addForward);
FIT_REGISTER_GRAD("Add", addBackward, kNoSlots, kNoSlots);
FIT_REGISTER_OP("Sub", subForward);
FIT_REGISTER_GRAD("Sub", subBackward, kNoSlots, kNoSlots);
FIT_REGISTER_OP("Mul", mulForward);
FIT_REGISTER_GRAD("Mul", mulBackward, slot(0) | slot(1), kNoSlots);
FIT_REGISTER_OP("Div", divForward);
FIT_REGISTER_GRAD("Div", divBackward, slot(0) | slot(1), kNoSlots);
FIT_REGISTER_OP("Pow", powForward);
FIT_REGISTER_GRAD("Pow", powBackward, slot(0) | slot(1), kNoSlots);
FIT_REGISTER_OP("PRelu", preluForward);
FIT_REGISTER_GRAD("PRelu", preluBackward, slot(0) | slot(1), kNoSlots);
FIT_REGISTER_OP("Sum", sumForward);
FIT_REGISTER_GRAD("Sum", sumBackward, kNoSlots, kNoSlots);
FIT_REGISTER_OP("Mean", meanForward);
FIT_REGISTER_GRAD("Mean", meanBackward, kNoSlots, kNoSlots);
FIT_REGISTER_OP("Max", maxForward);
FIT_REGISTER_GRAD("Max", maxMinBackward, kAllSlots, slot(0));
FIT_REGISTER_OP("Min", minForward);
FIT_REGISTER_GRAD("Min", maxMinBackward, kAllSlots, slot(0));
