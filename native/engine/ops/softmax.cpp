// Softmax and LogSoftmax, numerically stable (the maximum is subtracted before exponentiating).
// Axis semantics depend on the opset:
//   opset < 13: the input is coerced to 2-D [prod(dims[:axis]), prod(dims[axis:])] (axis default 1)
//               and each row of that matrix is normalized;
//   opset >= 13: normalization runs along the single dim `axis` (default -1).
// Both reduce to the view [outer, len, inner] with the normalized dim in the middle (inner == 1
// for the coerced form).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "../op.h"
#include "util.h"

namespace fit {
namespace ops {
namespace {


struct SoftmaxView {
  int64_t outer = 1, len = 1, inner = 1;
};

// Ctx is OpContext<T> (forward) or GradContext<T> (backward).
template <typename Ctx>
SoftmaxView softmaxView(const Ctx& ctx, const Dims& dims) {
  const int rank = static_cast<int>(dims.size());
  SoftmaxView v;
  if (ctx.opset < 13) {
    int64_t axis = ctx.node.i("axis", 1);
    // The coerced form accepts axis == rank (every dim in the outer block).
    if (axis < -rank || axis > rank)
      ctx.fail(ErrorCode::InvalidAttribute, "axis " + std::to_string(axis) +
                                                " is out of range for a rank-" +
                                                std::to_string(rank) + " tensor");
    if (axis < 0) axis += rank;
    for (int d = 0; d < rank; ++d) (d < axis ? v.outer : v.len) *= dims[d];
  } else {
    if (rank == 0) ctx.fail(ErrorCode::ShapeMismatch, "input must have rank >= 1");
    int64_t axis = ctx.node.i("axis", -1);
    if (axis < -rank || axis >= rank)
      ctx.fail(ErrorCode::InvalidAttribute, "axis " + std::to_string(axis) +
                                                " is out of range for a rank-" +
                                                std::to_string(rank) + " tensor");
    if (axis < 0) axis += rank;
    for (int d = 0; d < rank; ++d) (d < axis ? v.outer : d == axis ? v.len : v.inner) *= dims[d];
  }
  return v;
}

// LOG selects LogSoftmax.
template <typename T, bool LOG>
void softmaxImpl(OpContext<T>& ctx) {
  const Tensor& xt = ctx.in(0);
  const SoftmaxView v = softmaxView(ctx, xt.dims);
  const T* x = dataAs(ctx, 0);
  T* y = ctx.output(0, xt.dims);
  if (xt.numel() == 0) return;
  const int64_t len = v.len, inner = v.inner;
  if (inner == 1) {
    // Each row is contiguous.
    for (int64_t o = 0; o < v.outer; ++o) {
      const T* xr = x + o * len;
      T* yr = y + o * len;
      T m = -std::numeric_limits<T>::infinity();
      for (int64_t i = 0; i < len; ++i) m = std::max(m, xr[i]);
      // The sum is accumulated in double: with thousands of classes a float sum drifts by ~1e-5.
      double s = 0;
      for (int64_t i = 0; i < len; ++i) {
        const T e = std::exp(xr[i] - m);
        if (!LOG) yr[i] = e;
        s += e;
      }
      if (LOG) {
        const T shift = static_cast<T>(m + std::log(s));
        for (int64_t i = 0; i < len; ++i) yr[i] = xr[i] - shift;
      } else {
        const T inv = static_cast<T>(1.0 / s);
        for (int64_t i = 0; i < len; ++i) yr[i] *= inv;
      }
    }
    return;
  }
  // Strided case: the normalized dim has stride `inner`; work on whole inner rows at a time so
  // every loop is contiguous over `inner`.
  T* m = ctx.scratch.template alloc<T>(static_cast<size_t>(inner));
  double* s = ctx.scratch.template alloc<double>(static_cast<size_t>(inner));
  for (int64_t o = 0; o < v.outer; ++o) {
    const T* xb = x + o * len * inner;
    T* yb = y + o * len * inner;
    std::fill(m, m + inner, -std::numeric_limits<T>::infinity());
    std::fill(s, s + inner, 0.0);
    for (int64_t l = 0; l < len; ++l) {
      const T* xr = xb + l * inner;
      for (int64_t i = 0; i < inner; ++i) m[i] = std::max(m[i], xr[i]);
    }
    for (int64_t l = 0; l < len; ++l) {
      const T* xr = xb + l * inner;
      T* yr = yb + l * inner;
      for (int64_t i = 0; i < inner; ++i) {
        const T e = std::exp(xr[i] - m[i]);
        if (!LOG) yr[i] = e;
        s[i] += e;
      }
    }
    if (LOG) {
      for (int64_t i = 0; i < inner; ++i) s[i] = m[i] + std::log(s[i]);
      for (int64_t l = 0; l < len; ++l) {
        const T* xr = xb + l * inner;
        T* yr = yb + l * inner;
        for (int64_t i = 0; i < inner; ++i) yr[i] = static_cast<T>(xr[i] - s[i]);
      }
    } else {
      for (int64_t i = 0; i < inner; ++i) s[i] = 1.0 / s[i];
      for (int64_t l = 0; l < len; ++l) {
        T* yr = yb + l * inner;
        for (int64_t i = 0; i < inner; ++i) yr[i] *= static_cast<T>(s[i]);
      }
    }
  }
}

template <typename T>
void softmaxForward(OpContext<T>& ctx) {
  softmaxImpl<T, false>(ctx);
}
template <typename T>
void logSoftmaxForward(OpContext<T>& ctx) {
  softmaxImpl<T, true>(ctx);
}


// Backward from the saved output y alone, per normalized slice (sums accumulated in double, as in
// the forward):
//   Softmax:    dx = y * (dy - sum(dy * y))
//   LogSoftmax: dx = dy - exp(y) * sum(dy)
template <typename T, bool LOG>
void softmaxBackwardImpl(GradContext<T>& ctx) {
  if (!ctx.wants(0)) return;
  const Tensor& yt = ctx.out(0);
  const T* dy = ctx.gout(0);
  if (!dy) {
    ctx.gradInputZeros(0, yt.dims);
    return;
  }
  const SoftmaxView v = softmaxView(ctx, yt.dims);
  const T* y = yt.template data<T>();
  T* dx = ctx.gradInput(0, yt.dims);
  if (yt.numel() == 0) return;
  const int64_t len = v.len, inner = v.inner;
  if (inner == 1) {
    for (int64_t o = 0; o < v.outer; ++o) {
      const T* yr = y + o * len;
      const T* gr = dy + o * len;
      T* xr = dx + o * len;
      double s = 0;
      if (LOG) {
        for (int64_t i = 0; i < len; ++i) s += gr[i];
        const T st = static_cast<T>(s);
        for (int64_t i = 0; i < len; ++i) xr[i] = gr[i] - std::exp(yr[i]) * st;
      } else {
        for (int64_t i = 0; i < len; ++i) s += static_cast<double>(gr[i]) * yr[i];
        const T st = static_cast<T>(s);
        for (int64_t i = 0; i < len; ++i) xr[i] = yr[i] * (gr[i] - st);
      }
    }
    return;
  }
  // Strided: whole inner rows at a time, one accumulator per inner position.
  double* s = ctx.scratch.template alloc<double>(static_cast<size_t>(inner));
  for (int64_t o = 0; o < v.outer; ++o) {
    const T* yb = y + o * len * inner;
    const T* gb = dy + o * len * inner;
    T* xb = dx + o * len * inner;
    std::fill(s, s + inner, 0.0);
    for (int64_t l = 0; l < len; ++l) {
      const T* yr = yb + l * inner;
      const T* gr = gb + l * inner;
      if (LOG) {
        for (int64_t i = 0; i < inner; ++i) s[i] += gr[i];
      } else {
        for (int64_t i = 0; i < inner; ++i) s[i] += static_cast<double>(gr[i]) * yr[i];
      }
    }
    for (int64_t l = 0; l < len; ++l) {
      const T* yr = yb + l * inner;
      const T* gr = gb + l * inner;
      T* xr = xb + l * inner;
      if (LOG) {
        for (int64_t i = 0; i < inner; ++i) xr[i] = gr[i] - std::exp(yr[i]) * static_cast<T>(s[i]);
      } else {
        for (int64_t i = 0; i < inner; ++i) xr[i] = yr[i] * (gr[i] - static_cast<T>(s[i]));
      }
    }
  }
}

template <typename T>
void softmaxBackward(GradContext<T>& ctx) {
  softmaxBackwardImpl<T, false>(ctx);
}
template <typename T>
void logSoftmaxBackward(GradContext<T>& ctx) {
  softmaxBackwardImpl<T, true>(ctx);
}

}  // namespace
}  // namespace ops
}  // namespace fit

using namespace fit::ops;

FIT_REGISTER_OP("Softmax", softmaxForward);
FIT_REGISTER_GRAD("Softmax", softmaxBackward, kNoSlots, slot(0));
FIT_REGISTER_OP("LogSoftmax", logSoftmaxForward);
FIT_REGISTER_GRAD("LogSoftmax", logSoftmaxBackward, kNoSlots, slot(0));
