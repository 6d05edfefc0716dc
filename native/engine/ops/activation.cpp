// Elementwise activations and unary math: Relu, LeakyRelu, Sigmoid, HardSigmoid, HardSwish, Tanh,
// Erf, Gelu, Sqrt, Neg, Exp, Log, Abs, Clip, Softplus, Elu, Selu, Reciprocal, Floor, Ceil.
// Every op is one contiguous loop over the input with the per-element rule inlined (a lambda passed
// to a template), so the compiler sees a plain vectorizable loop.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "../op.h"
#include "util.h"

namespace fit {
namespace ops {
namespace {

// Input i as T: used in place when it already has the compute type, else converted into scratch
// (a float32 constant in a float64 run, an integer constant).
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

// dx = dy * (y > 0): reads only the forward output.
template <typename T>
void reluBackward(GradContext<T>& ctx) {
  const Tensor& y = ctx.out(0);
  const T* yd = y.template data<T>();
  const T* dy = ctx.gout(0);
  T* dx = ctx.gradInput(0, y.dims);
  const int64_t n = y.numel();
  for (int64_t i = 0; i < n; ++i) dx[i] = yd[i] > T(0) ? dy[i] : T(0);
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
template <typename T>
void clipForward(OpContext<T>& ctx) {
  T lo = -std::numeric_limits<T>::infinity(), hi = std::numeric_limits<T>::infinity();
  if (ctx.opset < 11) {
    if (ctx.node.has("min")) lo = attrF(ctx, "min", 0);
    if (ctx.node.has("max")) hi = attrF(ctx, "max", 0);
  } else {
    for (size_t i = 1; i <= 2; ++i) {
      if (!ctx.has(i)) continue;
      const Tensor& b = ctx.in(i);
      if (b.numel() == 0) continue;  // an empty tensor reads as "no bound"
      ctx.check(b.numel() == 1, std::string(i == 1 ? "min" : "max") +
                                    " must be a scalar, got dims " + dimsToString(b.dims));
      (i == 1 ? lo : hi) = dataAs(ctx, i)[0];
    }
  }
  mapUnary(ctx, [lo, hi](T x) -> T { return std::min(std::max(x, lo), hi); });
}

}  // namespace
}  // namespace ops
}  // namespace fit

using namespace fit::ops;

FIT_REGISTER_OP("Relu", reluForward);
FIT_REGISTER_GRAD("Relu", reluBackward, kNoSlots, slot(0));
FIT_REGISTER_OP("LeakyRelu", leakyReluForward);
FIT_REGISTER_OP("Sigmoid", sigmoidForward);
FIT_REGISTER_OP("HardSigmoid", hardSigmoidForward);
FIT_REGISTER_OP("HardSwish", hardSwishForward);
FIT_REGISTER_OP("Tanh", tanhForward);
FIT_REGISTER_OP("Erf", erfForward);
FIT_REGISTER_OP("Gelu", geluForward);
FIT_REGISTER_OP("Sqrt", sqrtForward);
FIT_REGISTER_OP("Neg", negForward);
FIT_REGISTER_OP("Exp", expForward);
FIT_REGISTER_OP("Log", logForward);
FIT_REGISTER_OP("Abs", absForward);
FIT_REGISTER_OP("Clip", clipForward);
FIT_REGISTER_OP("Softplus", softplusForward);
FIT_REGISTER_OP("Elu", eluForward);
FIT_REGISTER_OP("Selu", seluForward);
FIT_REGISTER_OP("Reciprocal", reciprocalForward);
FIT_REGISTER_OP("Floor", floorForward);
FIT_REGISTER_OP("Ceil", ceilForward);
