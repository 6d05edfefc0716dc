// Reductions: ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceL1, ReduceL2,
// ReduceSumSquare, ReduceLogSum, ReduceLogSumExp.
//
// Axes come from the optional second input (int64; ReduceSum opset >= 13, the others opset >= 18)
// or the `axes` attribute (older opsets); no axes reduce everything unless noop_with_empty_axes = 1,
// which makes the op an identity. keepdims defaults to 1.
//
// The kernel walks the input once in memory order. Dims are first collapsed into alternating
// groups of kept and reduced dims (size-1 dims dropped); the innermost group is either reduced
// (a contiguous row folded into one accumulator) or kept (a contiguous row accumulated
// elementwise into the output), so both loops are contiguous.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "../op.h"
#include "util.h"

namespace fit {
namespace ops {
namespace {

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

// The reduction plan of one node.
struct ReducePlan {
  Dims outDims;               // with or without kept 1s per keepdims
  Dims groups;                // collapsed dims (never empty)
  std::vector<char> reduced;  // per group
  int64_t inCount = 0, outCount = 0;
  bool identity = false;      // noop_with_empty_axes with no axes
};

template <typename T>
ReducePlan planReduce(const OpContext<T>& ctx, const Dims& dims) {
  const int rank = static_cast<int>(dims.size());
  std::vector<int64_t> axes;
  if (ctx.has(1)) {
    axes = ctx.in(1).toInts();
  } else if (ctx.node.has("axes")) {
    axes = ctx.node.ints("axes");
  }
  ReducePlan p;
  p.inCount = numelOf(dims);
  if (axes.empty() && ctx.node.i("noop_with_empty_axes", 0) != 0) {
    p.identity = true;
    p.outDims = dims;
    p.outCount = p.inCount;
    return p;
  }
  std::vector<char> red(rank, axes.empty() ? 1 : 0);
  for (int64_t a : axes) red[normAxis(ctx, a, rank)] = 1;
  const bool keep = ctx.node.i("keepdims", 1) != 0;
  for (int d = 0; d < rank; ++d) {
    if (!red[d]) p.outDims.push_back(dims[d]);
    else if (keep) p.outDims.push_back(1);
    if (dims[d] == 1) continue;
    if (!p.groups.empty() && p.reduced.back() == red[d]) {
      p.groups.back() *= dims[d];
    } else {
      p.groups.push_back(dims[d]);
      p.reduced.push_back(red[d]);
    }
  }
  if (p.groups.empty()) {
    p.groups.push_back(1);
    p.reduced.push_back(1);
  }
  p.outCount = numelOf(p.outDims);
  return p;
}

// acc[o] = comb(acc[o], pre(x, o)) over every input element x mapping to output o. acc must be
// initialized with comb's identity `init`.
template <typename T, typename Comb, typename Pre>
void reduceKernel(const T* x, const ReducePlan& p, T* acc, T init, Comb comb, Pre pre) {
  if (p.inCount == 0) return;
  const size_t k = p.groups.size();
  Dims os(k);  // output strides per group (0 for reduced groups)
  for (int64_t j = static_cast<int64_t>(k) - 1, s = 1; j >= 0; --j) {
    os[j] = p.reduced[j] ? 0 : s;
    if (!p.reduced[j]) s *= p.groups[j];
  }
  const int64_t n = p.groups[k - 1];
  const bool innerReduced = p.reduced[k - 1] != 0;
  Dims idx(k, 0);
  int64_t o = 0;
  for (int64_t off = 0; off < p.inCount; off += n) {
    const T* xp = x + off;
    if (innerReduced) {
      // Four partial accumulators: lets the loop pipeline and keeps float sums closer.
      T a0 = init, a1 = init, a2 = init, a3 = init;
      int64_t i = 0;
      for (; i + 4 <= n; i += 4) {
        a0 = comb(a0, pre(xp[i], o));
        a1 = comb(a1, pre(xp[i + 1], o));
        a2 = comb(a2, pre(xp[i + 2], o));
        a3 = comb(a3, pre(xp[i + 3], o));
      }
      for (; i < n; ++i) a0 = comb(a0, pre(xp[i], o));
      acc[o] = comb(acc[o], comb(comb(a0, a1), comb(a2, a3)));
    } else {
      T* ap = acc + o;
      for (int64_t i = 0; i < n; ++i) ap[i] = comb(ap[i], pre(xp[i], o + i));
    }
    for (int64_t j = static_cast<int64_t>(k) - 2; j >= 0; --j) {
      o += os[j];
      if (++idx[j] < p.groups[j]) break;
      o -= os[j] * p.groups[j];
      idx[j] = 0;
    }
  }
}

enum class Kind { Sum, Mean, Max, Min, Prod, L1, L2, SumSquare, LogSum, LogSumExp };

template <typename T>
inline T maxNan(T a, T b) {
  return (a >= b || std::isnan(a)) ? a : b;
}
template <typename T>
inline T minNan(T a, T b) {
  return (a <= b || std::isnan(a)) ? a : b;
}

template <typename T, Kind K>
void reduceForward(OpContext<T>& ctx) {
  const Tensor& xt = ctx.in(0);
  const ReducePlan p = planReduce(ctx, xt.dims);
  const T* x = dataAs(ctx, 0);
  T* y = ctx.output(0, p.outDims);
  if (p.identity) {
    std::memcpy(y, x, sizeof(T) * static_cast<size_t>(p.inCount));
    return;
  }
  const T inf = std::numeric_limits<T>::infinity();
  auto plus = [](T a, T b) -> T { return a + b; };
  auto same = [](T v, int64_t) -> T { return v; };
  const int64_t m = p.outCount;
  switch (K) {
    case Kind::Max:
      std::fill(y, y + m, -inf);
      reduceKernel(x, p, y, -inf, [](T a, T b) -> T { return maxNan(a, b); }, same);
      return;
    case Kind::Min:
      std::fill(y, y + m, inf);
      reduceKernel(x, p, y, inf, [](T a, T b) -> T { return minNan(a, b); }, same);
      return;
    case Kind::Prod:
      std::fill(y, y + m, T(1));
      reduceKernel(x, p, y, T(1), [](T a, T b) -> T { return a * b; }, same);
      return;
    case Kind::LogSumExp: {
      // Shift by the maximum of each output's slice so exp never overflows.
      T* mx = ctx.scratch.template alloc<T>(static_cast<size_t>(m > 0 ? m : 1));
      std::fill(mx, mx + m, -inf);
      reduceKernel(x, p, mx, -inf, [](T a, T b) -> T { return maxNan(a, b); }, same);
      for (int64_t i = 0; i < m; ++i)
        if (std::isinf(mx[i])) mx[i] = 0;
      std::fill(y, y + m, T(0));
      reduceKernel(x, p, y, T(0), plus, [mx](T v, int64_t o) -> T { return std::exp(v - mx[o]); });
      for (int64_t i = 0; i < m; ++i) y[i] = std::log(y[i]) + mx[i];
      return;
    }
    default:
      break;
  }
  // The sum family.
  std::fill(y, y + m, T(0));
  if (K == Kind::L1) {
    reduceKernel(x, p, y, T(0), plus, [](T v, int64_t) -> T { return std::abs(v); });
  } else if (K == Kind::L2 || K == Kind::SumSquare) {
    reduceKernel(x, p, y, T(0), plus, [](T v, int64_t) -> T { return v * v; });
  } else {
    reduceKernel(x, p, y, T(0), plus, same);
  }
  if (K == Kind::Mean) {
    const T inv = m > 0 ? T(1) / static_cast<T>(p.inCount / m) : T(0);
    for (int64_t i = 0; i < m; ++i) y[i] *= inv;
  } else if (K == Kind::L2) {
    for (int64_t i = 0; i < m; ++i) y[i] = std::sqrt(y[i]);
  } else if (K == Kind::LogSum) {
    for (int64_t i = 0; i < m; ++i) y[i] = std::log(y[i]);
  }
}

template <typename T> void reduceSumForward(OpContext<T>& c) { reduceForward<T, Kind::Sum>(c); }
template <typename T> void reduceMeanForward(OpContext<T>& c) { reduceForward<T, Kind::Mean>(c); }
template <typename T> void reduceMaxForward(OpContext<T>& c) { reduceForward<T, Kind::Max>(c); }
template <typename T> void reduceMinForward(OpContext<T>& c) { reduceForward<T, Kind::Min>(c); }
template <typename T> void reduceProdForward(OpContext<T>& c) { reduceForward<T, Kind::Prod>(c); }
template <typename T> void reduceL1Forward(OpContext<T>& c) { reduceForward<T, Kind::L1>(c); }
template <typename T> void reduceL2Forward(OpContext<T>& c) { reduceForward<T, Kind::L2>(c); }
template <typename T> void reduceSumSquareForward(OpContext<T>& c) {
  reduceForward<T, Kind::SumSquare>(c);
}
template <typename T> void reduceLogSumForward(OpContext<T>& c) {
  reduceForward<T, Kind::LogSum>(c);
}
template <typename T> void reduceLogSumExpForward(OpContext<T>& c) {
  reduceForward<T, Kind::LogSumExp>(c);
}

}  // namespace
}  // namespace ops
}  // namespace fit

using namespace fit::ops;

FIT_REGISTER_OP("ReduceSum", reduceSumForward);
FIT_REGISTER_OP("ReduceMean", reduceMeanForward);
FIT_REGISTER_OP("ReduceMax", reduceMaxForward);
FIT_REGISTER_OP("ReduceMin", reduceMinForward);
FIT_REGISTER_OP("ReduceProd", reduceProdForward);
FIT_REGISTER_OP("ReduceL1", reduceL1Forward);
FIT_REGISTER_OP("ReduceL2", reduceL2Forward);
FIT_REGISTER_OP("ReduceSumSquare", reduceSumSquareForward);
FIT_REGISTER_OP("ReduceLogSum", reduceLogSumForward);
FIT_REGISTER_OP("ReduceLogSumExp", reduceLogSumExpForward);
