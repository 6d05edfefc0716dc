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


// The reduction plan of one node.
struct ReducePlan {
  Dims outDims;               // with or without kept 1s per keepdims
  Dims groups;                // collapsed dims (never empty)
  std::vector<char> reduced;  // per group
  int64_t inCount = 0, outCount = 0;
  bool identity = false;      // noop_with_empty_axes with no axes
};

// Ctx is OpContext<T> (forward) or GradContext<T> (backward; it reads the saved axes input).
template <typename Ctx>
ReducePlan planReduce(const Ctx& ctx, const Dims& dims) {
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
  for (int64_t a : axes) {
    if (a < -rank || a >= rank)
      ctx.fail(ErrorCode::InvalidAttribute, "axis " + std::to_string(a) +
                                                " is out of range for a rank-" +
                                                std::to_string(rank) + " tensor");
    red[a < 0 ? a + rank : a] = 1;
  }
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


// ---- gradient rules ------------------------------------------------------------------------------

// f(i, o) for every input element i, in memory order, and the output o it reduces into (the same
// walk as reduceKernel): the inner loop is contiguous in i with o fixed (reduced) or o + i (kept).
template <typename F>
void expandKernel(const ReducePlan& p, F f) {
  if (p.inCount == 0) return;
  const size_t k = p.groups.size();
  Dims os(k);
  for (int64_t j = static_cast<int64_t>(k) - 1, s = 1; j >= 0; --j) {
    os[j] = p.reduced[j] ? 0 : s;
    if (!p.reduced[j]) s *= p.groups[j];
  }
  const int64_t n = p.groups[k - 1];
  const bool innerReduced = p.reduced[k - 1] != 0;
  Dims idx(k, 0);
  int64_t o = 0;
  for (int64_t off = 0; off < p.inCount; off += n) {
    if (innerReduced) {
      for (int64_t i = 0; i < n; ++i) f(off + i, o);
    } else {
      for (int64_t i = 0; i < n; ++i) f(off + i, o + i);
    }
    for (int64_t j = static_cast<int64_t>(k) - 2; j >= 0; --j) {
      o += os[j];
      if (++idx[j] < p.groups[j]) break;
      o -= os[j] * p.groups[j];
      idx[j] = 0;
    }
  }
}

// dx from dy (dims of the output, kept or not: the order of the kept dims is the same). Reads the
// axes input, x's dims (ctx.inDims), x's values for every kind but Sum, Mean and LogSum, and y for
// Max, Min, L2, LogSum, LogSumExp. Max/Min send the gradient to the first extreme element in
// memory order (ties: the first); L1 and L2 use the subgradient 0 at x = 0 (L2: at a zero norm).
template <Kind K>
constexpr bool readsX() {
  return K != Kind::Sum && K != Kind::Mean && K != Kind::LogSum;
}

template <typename T, Kind K>
void reduceBackward(GradContext<T>& ctx) {
  if (!ctx.wants(0)) return;
  const Dims& xd = ctx.inDims(0);
  const T* dy = ctx.gout(0);
  if (!dy) {
    ctx.gradInputZeros(0, xd);
    return;
  }
  const ReducePlan p = planReduce(ctx, xd);
  T* dx = ctx.gradInput(0, xd);
  if (p.identity) {
    std::memcpy(dx, dy, sizeof(T) * static_cast<size_t>(p.inCount));
    return;
  }
  const int64_t m = p.outCount;
  const T* x = readsX<K>() ? ctx.in(0).template data<T>() : nullptr;
  const T* y = (K == Kind::Max || K == Kind::Min || K == Kind::L2 || K == Kind::LogSum ||
                K == Kind::LogSumExp)
                   ? ctx.out(0).template data<T>()
                   : nullptr;
  switch (K) {
    case Kind::Sum:
      expandKernel(p, [=](int64_t i, int64_t o) { dx[i] = dy[o]; });
      return;
    case Kind::Mean: {
      const T inv = m > 0 ? T(1) / static_cast<T>(p.inCount / m) : T(0);
      expandKernel(p, [=](int64_t i, int64_t o) { dx[i] = dy[o] * inv; });
      return;
    }
    case Kind::SumSquare:
      expandKernel(p, [=](int64_t i, int64_t o) { dx[i] = T(2) * x[i] * dy[o]; });
      return;
    case Kind::L1:
      expandKernel(p, [=](int64_t i, int64_t o) {
        dx[i] = x[i] > T(0) ? dy[o] : x[i] < T(0) ? -dy[o] : T(0);
      });
      return;
    case Kind::LogSumExp:
      expandKernel(p, [=](int64_t i, int64_t o) { dx[i] = std::exp(x[i] - y[o]) * dy[o]; });
      return;
    case Kind::Max:
    case Kind::Min: {
      char* taken = ctx.scratch.template alloc<char>(static_cast<size_t>(m > 0 ? m : 1));
      std::fill(taken, taken + m, 0);
      expandKernel(p, [=](int64_t i, int64_t o) {
        const bool hit = x[i] == y[o] && !taken[o];
        taken[o] |= hit;
        dx[i] = hit ? dy[o] : T(0);
      });
      return;
    }
    default:
      break;
  }
  // L2, LogSum, Prod: a per-output factor r, then dx = x * r (L2), r (LogSum) or a product of the
  // other elements times dy (Prod).
  T* r = ctx.scratch.template alloc<T>(static_cast<size_t>(m > 0 ? m : 1));
  if (K == Kind::L2) {
    for (int64_t o = 0; o < m; ++o) r[o] = y[o] > T(0) ? dy[o] / y[o] : T(0);
    expandKernel(p, [=](int64_t i, int64_t o) { dx[i] = x[i] * r[o]; });
  } else if (K == Kind::LogSum) {
    for (int64_t o = 0; o < m; ++o) r[o] = dy[o] * std::exp(-y[o]);  // dy / sum
    expandKernel(p, [=](int64_t i, int64_t o) { dx[i] = r[o]; });
  } else if (K == Kind::Prod) {
    // d prod / d x_i = product of the others: prod / x_i without zeros; with one zero, only that
    // element gets the product of the non-zeros; with two or more, everything gets 0.
    T* zeros = ctx.scratch.template alloc<T>(static_cast<size_t>(m > 0 ? m : 1));
    std::fill(zeros, zeros + m, T(0));
    std::fill(r, r + m, T(1));
    auto plus = [](T a, T b) -> T { return a + b; };
    auto times = [](T a, T b) -> T { return a * b; };
    reduceKernel(x, p, zeros, T(0), plus, [](T v, int64_t) -> T { return v == T(0) ? T(1) : T(0); });
    reduceKernel(x, p, r, T(1), times, [](T v, int64_t) -> T { return v == T(0) ? T(1) : v; });
    for (int64_t o = 0; o < m; ++o) r[o] = zeros[o] > T(1) ? T(0) : r[o] * dy[o];
    expandKernel(p, [=](int64_t i, int64_t o) {
      dx[i] = zeros[o] == T(0) ? r[o] / x[i] : x[i] == T(0) ? r[o] : T(0);
    });
  }
}

template <typename T> void reduceSumBackward(GradContext<T>& c) { reduceBackward<T, Kind::Sum>(c); }
template <typename T> void reduceMeanBackward(GradContext<T>& c) { reduceBackward<T, Kind::Mean>(c); }
template <typename T> void reduceMaxBackward(GradContext<T>& c) { reduceBackward<T, Kind::Max>(c); }
template <typename T> void reduceMinBackward(GradContext<T>& c) { reduceBackward<T, Kind::Min>(c); }
template <typename T> void reduceProdBackward(GradContext<T>& c) { reduceBackward<T, Kind::Prod>(c); }
template <typename T> void reduceL1Backward(GradContext<T>& c) { reduceBackward<T, Kind::L1>(c); }
template <typename T> void reduceL2Backward(GradContext<T>& c) { reduceBackward<T, Kind::L2>(c); }
template <typename T> void reduceSumSquareBackward(GradContext<T>& c) {
  reduceBackward<T, Kind::SumSquare>(c);
}
template <typename T> void reduceLogSumBackward(GradContext<T>& c) {
  reduceBackward<T, Kind::LogSum>(c);
}
template <typename T> void reduceLogSumExpBackward(GradContext<T>& c) {
  reduceBackward<T, Kind::LogSumExp>(c);
}

}  // namespace
}  // namespace ops
}  // namespace fit

using namespace fit::ops;

// Saved masks. Input 1 is the axes input (opset >= 13/18), a small int64 tensor every rule reads
// (planReduce falls back to the attribute when it is absent, so it must stay saved). Input 0 (x)
// is read for its values by every rule but Sum, Mean and LogSum, which need only its dims
// (ctx.inDims) and so keep it out of backward's memory.
constexpr uint32_t kReduceIn = fit::slot(0) | fit::slot(1);
constexpr uint32_t kReduceAxes = fit::slot(1);
FIT_REGISTER_OP("ReduceSum", reduceSumForward);
FIT_REGISTER_GRAD("ReduceSum", reduceSumBackward, kReduceAxes, kNoSlots);
FIT_REGISTER_OP("ReduceMean", reduceMeanForward);
FIT_REGISTER_GRAD("ReduceMean", reduceMeanBackward, kReduceAxes, kNoSlots);
FIT_REGISTER_OP("ReduceMax", reduceMaxForward);
FIT_REGISTER_GRAD("ReduceMax", reduceMaxBackward, kReduceIn, slot(0));
FIT_REGISTER_OP("ReduceMin", reduceMinForward);
FIT_REGISTER_GRAD("ReduceMin", reduceMinBackward, kReduceIn, slot(0));
FIT_REGISTER_OP("ReduceProd", reduceProdForward);
FIT_REGISTER_GRAD("ReduceProd", reduceProdBackward, kReduceIn, kNoSlots);
FIT_REGISTER_OP("ReduceL1", reduceL1Forward);
FIT_REGISTER_GRAD("ReduceL1", reduceL1Backward, kReduceIn, kNoSlots);
FIT_REGISTER_OP("ReduceL2", reduceL2Forward);
FIT_REGISTER_GRAD("ReduceL2", reduceL2Backward, kReduceIn, slot(0));
FIT_REGISTER_OP("ReduceSumSquare", reduceSumSquareForward);
FIT_REGISTER_GRAD("ReduceSumSquare", reduceSumSquareBackward, kReduceIn, kNoSlots);
FIT_REGISTER_OP("ReduceLogSum", reduceLogSumForward);
FIT_REGISTER_GRAD("ReduceLogSum", reduceLogSumBackward, kReduceAxes, slot(0));
FIT_REGISTER_OP("ReduceLogSumExp", reduceLogSumExpForward);
FIT_REGISTER_GRAD("ReduceLogSumExp", reduceLogSumExpBackward, kReduceIn, slot(0));
