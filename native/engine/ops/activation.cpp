// Elementwise activations and unary math: Relu, LeakyRelu, Sigmoid, HardSigmoid, HardSwish, Tanh,
// Erf, Gelu, Sqrt, Neg, Exp, Log, Abs, Clip, Softplus, Elu, Selu, Reciprocal, Floor, Ceil.
// Every op is one contiguous loop over the input with the per-element rule inlined (a lambda passed
// to a template), so the compiler sees a plain vectorizable loop. Gradient rules follow the same
// pattern; each reads the forward output instead of the input where the derivative is a function of
// it (the output is usually kept anyway as the next op's saved input).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <limits>
#include <string>

#include "../../kernels/simd.h"
#include "../op.h"
#include "util.h"

namespace fit {
namespace ops {
namespace {

// Input i as T: used in place when it already has the compute type, else converted into scratch
// (a float32 constant in a float64 run, an integer constant).

// y = f(x) over the whole of input 0.
template <typename T, typename F>
void mapUnary(OpContext<T>& ctx, F f) {
  const Tensor& xt = ctx.in(0);
  const T* x = dataAs(ctx, 0);
  const int64_t n = xt.numel();
  T* y = ctx.output(0, xt.dims);
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

template <typename T>
T attrF(const OpContext<T>& ctx, const char* key, double def) {
  return static_cast<T>(ctx.node.f(key, def));
}

// Logistic function, stable for large |x|.
template <typename T>
inline T sigmoidOf(T x) {
  if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
  T e = std::exp(x);
  return e / (T(1) + e);
}

// ---- attribute-free ops -------------------------------------------------------------------------

#define FIT_UNARY_OP(FN, EXPR)                              \
  template <typename T>                                      \
  void FN(OpContext<T>& ctx) {                               \
    mapUnary(ctx, [](T x) -> T { return EXPR; });            \
  }

FIT_UNARY_OP(reluForward, x > T(0) ? x : T(0))
FIT_UNARY_OP(sigmoidForward, sigmoidOf(x))
FIT_UNARY_OP(tanhForward, std::tanh(x))
FIT_UNARY_OP(erfForward, std::erf(x))
FIT_UNARY_OP(sqrtForward, std::sqrt(x))
FIT_UNARY_OP(negForward, -x)
FIT_UNARY_OP(expForward, std::exp(x))
FIT_UNARY_OP(logForward, std::log(x))
FIT_UNARY_OP(absForward, std::abs(x))
FIT_UNARY_OP(reciprocalForward, T(1) / x)
FIT_UNARY_OP(floorForward, std::floor(x))
FIT_UNARY_OP(ceilForward, std::ceil(x))
// x * relu6(x + 3) / 6
FIT_UNARY_OP(hardSwishForward, x * std::min(std::max(x / T(6) + T(0.5), T(0)), T(1)))
// log(1 + exp(x)) without overflow: max(x, 0) + log1p(exp(-|x|))
FIT_UNARY_OP(softplusForward, std::max(x, T(0)) + std::log1p(std::exp(-std::abs(x))))

#undef FIT_UNARY_OP

// dx = dy * (y > 0) over n values. Multiversioned: 64-byte vectors are one AVX-512 operation in
// the x86-64-v4 clone, two in the v3 clone and four SSE operations in the baseline.
template <typename T>
FIT_SIMD_CLONES void reluBackwardLoop(const T* __restrict yd, const T* __restrict dy, T* __restrict dx, int64_t n) {
  int64_t i = 0;
#if FIT_SIMD_VECTOR_EXT
  // Explicit vector mask: compilers keep `y > 0 ? dy : 0` as a (mispredicted) branch here.
  constexpr int64_t L = simd::kLanes<T>;
  for (; i + L <= n; i += L) {
    simd::Idx<T> gv;
    std::memcpy(&gv, dy + i, sizeof gv);  // dy's bits, masked where y <= 0
    const simd::Idx<T> r = gv & (simd::load(yd + i) > simd::Vec<T>{});
    std::memcpy(dx + i, &r, sizeof r);
  }
#endif
  for (; i < n; ++i) dx[i] = yd[i] > T(0) ? dy[i] : T(0);
}

// dx = dy * (y > 0): reads only the forward output.
template <typename T>
void reluBackward(GradContext<T>& ctx) {
  const Tensor& y = ctx.out(0);
  const T* yd = y.template data<T>();
  const T* dy = ctx.gout(0);
  T* dx = ctx.gradInput(0, y.dims);
  reluBackwardLoop<T>(yd, dy, dx, y.numel());
}

// ---- ops with attributes ------------------------------------------------------------------------

template <typename T>
void leakyReluForward(OpContext<T>& ctx) {
  const T alpha = attrF(ctx, "alpha", 0.01);
  mapUnary(ctx, [alpha](T x) -> T { return x >= T(0) ? x : alpha * x; });
}

template <typename T>
void hardSigmoidForward(OpContext<T>& ctx) {
  const T alpha = attrF(ctx, "alpha", 0.2), beta = attrF(ctx, "beta", 0.5);
  mapUnary(ctx, [alpha, beta](T x) -> T { return std::min(std::max(alpha * x + beta, T(0)), T(1)); });
}

template <typename T>
void eluForward(OpContext<T>& ctx) {
  const T alpha = attrF(ctx, "alpha", 1.0);
  mapUnary(ctx, [alpha](T x) -> T { return x >= T(0) ? x : alpha * std::expm1(x); });
}

template <typename T>
void seluForward(OpContext<T>& ctx) {
  const T alpha = attrF(ctx, "alpha", 1.67326319217681884765625);
  const T gamma = attrF(ctx, "gamma", 1.05070102214813232421875);
  mapUnary(ctx, [alpha, gamma](T x) -> T {
    return gamma * (x > T(0) ? x : alpha * std::expm1(x));
  });
}

// Gelu (opset 20): approximate = "none" (erf form) or "tanh".
template <typename T>
void geluForward(OpContext<T>& ctx) {
  const std::string approx = ctx.node.s("approximate", "none");
  if (approx == "none") {
    const T invSqrt2 = static_cast<T>(0.70710678118654752440);
    mapUnary(ctx, [invSqrt2](T x) -> T { return T(0.5) * x * (T(1) + std::erf(x * invSqrt2)); });
  } else if (approx == "tanh") {
    const T k = static_cast<T>(0.79788456080286535588);  // sqrt(2 / pi)
    const T c = static_cast<T>(0.044715);
    mapUnary(ctx, [k, c](T x) -> T {
      return T(0.5) * x * (T(1) + std::tanh(k * (x + c * x * x * x)));
    });
  } else {
    ctx.fail(ErrorCode::InvalidAttribute,
             "approximate must be 'none' or 'tanh', got '" + approx + "'");
  }
}

// Clip: opset < 11 takes min/max attributes; opset >= 11 optional scalar inputs 1 (min) and
// 2 (max), an absent one meaning no bound.
// Reads a bound of Clip: element 0 of a float or integer tensor as T.
template <typename T>
T scalarAs(const Tensor& b) {
  if (b.dtype == DType::F32) return static_cast<T>(b.template data<float>()[0]);
  if (b.dtype == DType::F64) return static_cast<T>(b.template data<double>()[0]);
  return static_cast<T>(b.template data<int64_t>()[0]);
}

// The bounds of Clip for forward (OpContext) and backward (GradContext).
template <typename T, typename Ctx>
void clipBounds(const Ctx& ctx, T& lo, T& hi) {
  lo = -std::numeric_limits<T>::infinity();
  hi = std::numeric_limits<T>::infinity();
  if (ctx.opset < 11) {
    if (ctx.node.has("min")) lo = static_cast<T>(ctx.node.f("min", 0));
    if (ctx.node.has("max")) hi = static_cast<T>(ctx.node.f("max", 0));
    return;
  }
  for (size_t i = 1; i <= 2; ++i) {
    if (!ctx.has(i)) continue;
    const Tensor& b = ctx.in(i);
    if (b.numel() == 0) continue;  // an empty tensor reads as "no bound"
    if (b.numel() != 1)
      ctx.fail(ErrorCode::ShapeMismatch, std::string(i == 1 ? "min" : "max") +
                                             " must be a scalar, got dims " + dimsToString(b.dims));
    (i == 1 ? lo : hi) = scalarAs<T>(b);
  }
}

template <typename T>
void clipForward(OpContext<T>& ctx) {
  T lo, hi;
  clipBounds(ctx, lo, hi);
  mapUnary(ctx, [lo, hi](T x) -> T { return std::min(std::max(x, lo), hi); });
}


// ---- gradient rules ------------------------------------------------------------------------------

// Dims of the (single) forward input of a unary op, from whatever the rule may see: the output
// gradient, the saved output, or the saved input (all have the input's dims).
template <typename T>
const Dims& unaryDims(const GradContext<T>& ctx) {
  if (!ctx.gradOutputs.empty() && ctx.gradOutputs[0]) return ctx.gradOutputs[0]->dims;
  if (!ctx.outputs.empty() && ctx.outputs[0]) return ctx.outputs[0]->dims;
  return ctx.in(0).dims;
}

// dx = dy * d(v), v being the saved forward output (FROM_OUTPUT) or input; one contiguous loop.
template <bool FROM_OUTPUT, typename T, typename D>
void unaryGrad(GradContext<T>& ctx, D d) {
  if (!ctx.wants(0)) return;
  const T* dy = ctx.gout(0);
  if (!dy) {
    ctx.gradInputZeros(0, unaryDims(ctx));
    return;
  }
  const Tensor& v = FROM_OUTPUT ? ctx.out(0) : ctx.in(0);
  const T* vd = v.template data<T>();
  const int64_t n = v.numel();
  T* dx = ctx.gradInput(0, v.dims);
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * d(vd[i]);
}

#define FIT_UNARY_GRAD(FN, FROM_OUTPUT, EXPR)                       \
  template <typename T>                                              \
  void FN(GradContext<T>& ctx) {                                     \
    unaryGrad<FROM_OUTPUT>(ctx, [](T v) -> T { return EXPR; });      \
  }

// From the output y.
FIT_UNARY_GRAD(sigmoidBackward, true, v * (T(1) - v))
FIT_UNARY_GRAD(tanhBackward, true, T(1) - v * v)
FIT_UNARY_GRAD(expBackward, true, v)
FIT_UNARY_GRAD(sqrtBackward, true, T(0.5) / v)
FIT_UNARY_GRAD(reciprocalBackward, true, -v * v)
// sigmoid(x) = 1 - exp(-softplus(x)), accurate at both ends.
FIT_UNARY_GRAD(softplusBackward, true, -std::expm1(-v))
// From the input x.
FIT_UNARY_GRAD(erfBackward, false, T(1.12837916709551257390) * std::exp(-v * v))  // 2/sqrt(pi)
FIT_UNARY_GRAD(logBackward, false, T(1) / v)
FIT_UNARY_GRAD(absBackward, false, v > T(0) ? T(1) : v < T(0) ? T(-1) : T(0))
FIT_UNARY_GRAD(hardSwishBackward, false,
               v < T(-3) ? T(0) : v > T(3) ? T(1) : (T(2) * v + T(3)) / T(6))

#undef FIT_UNARY_GRAD

template <typename T>
void negBackward(GradContext<T>& ctx) {
  if (!ctx.wants(0)) return;
  const T* dy = ctx.gout(0);
  const Dims& dims = unaryDims(ctx);
  if (!dy) {
    ctx.gradInputZeros(0, dims);
    return;
  }
  T* dx = ctx.gradInput(0, dims);
  const int64_t n = numelOf(dims);
  for (int64_t i = 0; i < n; ++i) dx[i] = -dy[i];
}

// Floor, Ceil: piecewise constant, the gradient is zero (almost everywhere).
template <typename T>
void zeroBackward(GradContext<T>& ctx) {
  if (ctx.wants(0)) ctx.gradInputZeros(0, unaryDims(ctx));
}

// LeakyRelu, Elu and Selu read y: for alpha >= 0 (gamma > 0) the sign of y is the sign of x. The
// subgradient at x = 0 is the left one.
template <typename T>
void requireFromOutput(const GradContext<T>& ctx, bool ok, const char* what) {
  if (!ok)
    ctx.fail(ErrorCode::NoGradient, std::string("the gradient is computed from the output and needs ") +
                                        what + "; other values are not supported");
}

template <typename T>
void leakyReluBackward(GradContext<T>& ctx) {
  const T alpha = static_cast<T>(ctx.node.f("alpha", 0.01));
  requireFromOutput(ctx, alpha >= T(0), "alpha >= 0");
  unaryGrad<true>(ctx, [alpha](T y) -> T { return y > T(0) ? T(1) : alpha; });
}

template <typename T>
void hardSigmoidBackward(GradContext<T>& ctx) {
  const T alpha = static_cast<T>(ctx.node.f("alpha", 0.2));
  unaryGrad<true>(ctx, [alpha](T y) -> T { return y > T(0) && y < T(1) ? alpha : T(0); });
}

// Elu: d/dx = 1 (x > 0), alpha * exp(x) = y + alpha (x <= 0).
template <typename T>
void eluBackward(GradContext<T>& ctx) {
  const T alpha = static_cast<T>(ctx.node.f("alpha", 1.0));
  requireFromOutput(ctx, alpha >= T(0), "alpha >= 0");
  unaryGrad<true>(ctx, [alpha](T y) -> T { return y > T(0) ? T(1) : y + alpha; });
}

// Selu: d/dx = gamma (x > 0), gamma * alpha * exp(x) = y + gamma * alpha (x <= 0).
template <typename T>
void seluBackward(GradContext<T>& ctx) {
  const T alpha = static_cast<T>(ctx.node.f("alpha", 1.67326319217681884765625));
  const T gamma = static_cast<T>(ctx.node.f("gamma", 1.05070102214813232421875));
  requireFromOutput(ctx, alpha >= T(0) && gamma > T(0), "alpha >= 0 and gamma > 0");
  const T ga = gamma * alpha;
  unaryGrad<true>(ctx, [gamma, ga](T y) -> T { return y > T(0) ? gamma : y + ga; });
}

template <typename T>
void geluBackward(GradContext<T>& ctx) {
  const std::string approx = ctx.node.s("approximate", "none");
  if (approx == "tanh") {
    const T k = static_cast<T>(0.79788456080286535588);  // sqrt(2 / pi)
    const T c = static_cast<T>(0.044715);
    unaryGrad<false>(ctx, [k, c](T x) -> T {
      const T t = std::tanh(k * (x + c * x * x * x));
      return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * k * (T(1) + T(3) * c * x * x);
    });
  } else {
    // Phi(x) + x * phi(x)
    const T invSqrt2 = static_cast<T>(0.70710678118654752440);
    const T invSqrt2Pi = static_cast<T>(0.39894228040143267794);
    unaryGrad<false>(ctx, [invSqrt2, invSqrt2Pi](T x) -> T {
      return T(0.5) * (T(1) + std::erf(x * invSqrt2)) + x * invSqrt2Pi * std::exp(T(-0.5) * x * x);
    });
  }
}

// Clip reads y and the bounds. x gets dy where lo < y < hi (0 where clipped; at x exactly on a
// bound, the subgradient 0). Bounds given as runtime inputs (opset >= 11) get their exact gradient:
// max gets the sum of dy where y == hi, min the sum where y == lo < hi (with lo >= hi, y == hi
// everywhere and only max matters, as in the forward). Constant bounds never ask for one.
template <typename T>
void clipBackward(GradContext<T>& ctx) {
  T lo, hi;
  clipBounds(ctx, lo, hi);
  const T* dy = ctx.gout(0);
  if (!dy) {
    if (ctx.wants(0)) ctx.gradInputZeros(0, unaryDims(ctx));
    for (size_t i = 1; i <= 2; ++i)
      if (ctx.wants(i)) ctx.gradInputZeros(i, ctx.in(i).dims);
    return;
  }
  const Tensor& yt = ctx.out(0);
  const T* y = yt.template data<T>();
  const int64_t n = yt.numel();
  if (ctx.wants(0)) {
    T* dx = ctx.gradInput(0, yt.dims);
    for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * static_cast<T>((y[i] > lo) & (y[i] < hi));
  }
  for (size_t b = 1; b <= 2; ++b) {
    if (!ctx.wants(b)) continue;
    const Tensor& bt = ctx.in(b);
    T* db = ctx.gradInputZeros(b, bt.dims);
    if (bt.numel() == 0) continue;
    double s = 0;
    if (b == 1) {
      for (int64_t i = 0; i < n; ++i) s += y[i] <= lo && y[i] < hi ? dy[i] : T(0);
    } else {
      for (int64_t i = 0; i < n; ++i) s += y[i] >= hi ? dy[i] : T(0);
    }
    db[0] = static_cast<T>(s);
  }
}

}  // namespace
}  // namespace ops
}  // namespace fit

using namespace fit::ops;

// Saved masks: FIT_REGISTER_GRAD(type, rule, forward inputs read, forward outputs read).
FIT_REGISTER_OP("Relu", reluForward);
FIT_REGISTER_GRAD("Relu", reluBackward, kNoSlots, slot(0));
FIT_REGISTER_OP("LeakyRelu", leakyReluForward);
FIT_REGISTER_GRAD("LeakyRelu", leakyReluBackward, kNoSlots, slot(0));
FIT_REGISTER_OP("Sigmoid", sigmoidForward);
FIT_REGISTER_GRAD("Sigmoid", sigmoidBackward, kNoSlots, slot(0));
FIT_REGISTER_OP("HardSigmoid", hardSigmoidForward);
FIT_REGISTER_GRAD("HardSigmoid", hardSigmoidBackward, kNoSlots, slot(0));
FIT_REGISTER_OP("HardSwish", hardSwishForward);
FIT_REGISTER_GRAD("HardSwish", hardSwishBackward, slot(0), kNoSlots);
FIT_REGISTER_OP("Tanh", tanhForward);
FIT_REGISTER_GRAD("Tanh", tanhBackward, kNoSlots, slot(0));
FIT_REGISTER_OP("Erf", erfForward);
FIT_REGISTER_GRAD("Erf", erfBackward, slot(0), kNoSlots);
FIT_REGISTER_OP("Gelu", geluForward);
FIT_REGISTER_GRAD("Gelu", geluBackward, slot(0), kNoSlots);
FIT_REGISTER_OP("Sqrt", sqrtForward);
FIT_REGISTER_GRAD("Sqrt", sqrtBackward, kNoSlots, slot(0));
FIT_REGISTER_OP("Neg", negForward);
FIT_REGISTER_GRAD("Neg", negBackward, kNoSlots, kNoSlots);
FIT_REGISTER_OP("Exp", expForward);
FIT_REGISTER_GRAD("Exp", expBackward, kNoSlots, slot(0));
FIT_REGISTER_OP("Log", logForward);
FIT_REGISTER_GRAD("Log", logBackward, slot(0), kNoSlots);
FIT_REGISTER_OP("Abs", absForward);
FIT_REGISTER_GRAD("Abs", absBackward, slot(0), kNoSlots);
FIT_REGISTER_OP("Clip", clipForward);
FIT_REGISTER_GRAD("Clip", clipBackward, slot(1) | slot(2), slot(0));
FIT_REGISTER_OP("Softplus", softplusForward);
FIT_REGISTER_GRAD("Softplus", softplusBackward, kNoSlots, slot(0));
FIT_REGISTER_OP("Elu", eluForward);
FIT_REGISTER_GRAD("Elu", eluBackward, kNoSlots, slot(0));
FIT_REGISTER_OP("Selu", seluForward);
FIT_REGISTER_GRAD("Selu", seluBackward, kNoSlots, slot(0));
FIT_REGISTER_OP("Reciprocal", reciprocalForward);
FIT_REGISTER_GRAD("Reciprocal", reciprocalBackward, kNoSlots, slot(0));
FIT_REGISTER_OP("Floor", floorForward);
FIT_REGISTER_GRAD("Floor", zeroBackward, kNoSlots, kNoSlots);
FIT_REGISTER_OP("Ceil", ceilForward);
FIT_REGISTER_GRAD("Ceil", zeroBackward, kNoSlots, kNoSlots);
