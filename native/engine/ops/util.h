// Small helpers shared by op files: axis normalization, numpy broadcasting, reading int operands.
#pragma once

#include <cstring>
#include <string>
#include <vector>

#include "../op.h"

namespace fit {
namespace ops {

// Maps a possibly negative axis into [0, rank); fails with the op's name when out of range.
template <typename T>
int normAxis(const OpContext<T>& ctx, int64_t axis, int rank) {
  if (axis < -rank || axis >= rank)
    ctx.fail(ErrorCode::InvalidAttribute,
             "axis " + std::to_string(axis) + " is out of range for a rank-" + std::to_string(rank) +
                 " tensor");
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

// A float or int64 tensor as T: used in place when it already has the compute type, else converted
// into scratch (a float32 constant in a float64 run, an integer constant such as a Pow exponent).
template <typename T>
inline const T* asCompute(const Tensor& t, Arena& scratch) {
  if (t.dtype == DTypeOf<T>::value) return t.template data<T>();
  int64_t n = t.numel();
  T* buf = scratch.template alloc<T>(static_cast<size_t>(n > 0 ? n : 1));
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

// Input i (forward) or saved forward input i (backward) as T.
template <typename T>
inline const T* dataAs(OpContext<T>& ctx, size_t i) {
  return asCompute<T>(ctx.in(i), ctx.scratch);
}
template <typename T>
inline const T* dataAs(GradContext<T>& ctx, size_t i) {
  return asCompute<T>(ctx.in(i), ctx.scratch);
}

// Numpy-style broadcast of two shapes; returns false if incompatible.
inline bool broadcastDims(const Dims& a, const Dims& b, Dims& out) {
  size_t r = std::max(a.size(), b.size());
  out.assign(r, 1);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1) return false;
    out[i] = da == 1 ? db : da;
  }
  return true;
}

// Strides of `in` as seen from a broadcast output of rank r (0 where broadcast).
inline Dims broadcastStrides(const Dims& in, size_t r) {
  Dims s(r, 0);
  Dims own = stridesOf(in);
  size_t off = r - in.size();
  for (size_t i = 0; i < in.size(); ++i) s[off + i] = in[i] == 1 ? 0 : own[i];
  return s;
}

// Gradient of a broadcast: sums g (dims gdims, the broadcast result) down to `target` dims (which
// broadcast to gdims numpy-style), writing out[numel(target)] (overwritten, not accumulated).
template <typename T>
void sumToShape(const T* g, const Dims& gdims, T* out, const Dims& target) {
  const size_t r = gdims.size();
  const int64_t n = numelOf(target);
  for (int64_t i = 0; i < n; ++i) out[i] = T(0);
  const int64_t total = numelOf(gdims);
  if (total == 0) return;
  if (numelOf(target) == total) {
    for (int64_t i = 0; i < total; ++i) out[i] = g[i];
    return;
  }
  const Dims ts = broadcastStrides(target, r);
  // Walk g in order with an odometer over gdims, tracking the offset into target.
  std::vector<int64_t> idx(r, 0);
  int64_t off = 0;
  const int64_t inner = r ? gdims[r - 1] : 1;
  const int64_t innerStride = r ? ts[r - 1] : 0;
  for (int64_t base = 0; base < total; base += inner) {
    if (innerStride == 0) {
      T acc = T(0);
      for (int64_t j = 0; j < inner; ++j) acc += g[base + j];
      out[off] += acc;
    } else {
      for (int64_t j = 0; j < inner; ++j) out[off + j] += g[base + j];
    }
    for (int d = static_cast<int>(r) - 2; d >= 0; --d) {
      if (++idx[d] < gdims[d]) {
        off += ts[d];
        break;
      }
      off -= ts[d] * (gdims[d] - 1);
      idx[d] = 0;
    }
  }
}

// dst[i * dstStrides] = src[i * srcStrides] for every index i of dims.
template <typename T>
inline void copyStrided(const T* src, const Dims& dims, const Dims& srcStrides, T* dst,
                 const Dims& dstStrides) {
  Dims d, ss, ds;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == 0) return;
    if (dims[i] == 1) continue;
    if (!d.empty() && ss.back() == srcStrides[i] * dims[i] && ds.back() == dstStrides[i] * dims[i]) {
      d.back() *= dims[i];
      ss.back() = srcStrides[i];
      ds.back() = dstStrides[i];
    } else {
      d.push_back(dims[i]);
      ss.push_back(srcStrides[i]);
      ds.push_back(dstStrides[i]);
    }
  }
  if (d.empty()) {
    *dst = *src;
    return;
  }
  const size_t k = d.size();
  const int64_t n = d[k - 1], si = ss[k - 1], di = ds[k - 1];
  Dims idx(k, 0);
  int64_t so = 0, dof = 0;
  const int64_t total = numelOf(d);
  for (int64_t done = 0; done < total; done += n) {
    const T* sp = src + so;
    T* dp = dst + dof;
    if (si == 1 && di == 1) {
      std::memcpy(dp, sp, sizeof(T) * static_cast<size_t>(n));
    } else if (si == 0) {
      const T v = *sp;
      for (int64_t i = 0; i < n; ++i) dp[i * di] = v;
    } else {
      for (int64_t i = 0; i < n; ++i) dp[i * di] = sp[i * si];
    }
    for (int64_t j = static_cast<int64_t>(k) - 2; j >= 0; --j) {
      so += ss[j];
      dof += ds[j];
      if (++idx[j] < d[j]) break;
      so -= ss[j] * d[j];
      dof -= ds[j] * d[j];
      idx[j] = 0;
    }
  }
}

// The view Slice selects from an input of dims xd: output dims, source strides (scaled by the
// steps) and the offset of the first element. Reads starts/ends/axes (attributes before opset 10)
// or the starts/ends/axes/steps inputs; shared by the forward and its gradient.
struct SliceView {
  Dims out;
  Dims strides;
  int64_t offset = 0;
};

template <typename Ctx>
SliceView sliceView(const Ctx& ctx, const Dims& xd) {
  std::vector<int64_t> starts, ends, axes, steps;
  if (ctx.opset < 10) {
    starts = ctx.node.ints("starts");
    ends = ctx.node.ints("ends");
    axes = ctx.node.ints("axes");
  } else {
    starts = ctx.in(1).toInts();
    ends = ctx.in(2).toInts();
    if (ctx.has(3)) axes = ctx.in(3).toInts();
    if (ctx.has(4)) steps = ctx.in(4).toInts();
  }
  const size_t m = starts.size();
  if (axes.empty())
    for (size_t i = 0; i < m; ++i) axes.push_back(static_cast<int64_t>(i));
  if (steps.empty()) steps.assign(m, 1);
  if (ends.size() != m || axes.size() != m || steps.size() != m)
    ctx.fail(ErrorCode::InvalidAttribute, "starts, ends, axes and steps must have the same length");
  const int rank = static_cast<int>(xd.size());
  SliceView v;
  v.out = xd;
  v.strides = stridesOf(xd);
  std::vector<char> seen(rank, 0);
  for (size_t i = 0; i < m; ++i) {
    if (axes[i] < -rank || axes[i] >= rank)
      ctx.fail(ErrorCode::InvalidAttribute, "axis " + std::to_string(axes[i]) + " is out of range for a rank-" +
                                                std::to_string(rank) + " tensor");
    const int a = static_cast<int>(axes[i] < 0 ? axes[i] + rank : axes[i]);
    if (seen[a]) ctx.fail(ErrorCode::InvalidAttribute, "axes repeat axis " + std::to_string(a));
    seen[a] = 1;
    const int64_t dim = xd[a], step = steps[i];
    if (step == 0) ctx.fail(ErrorCode::InvalidAttribute, "steps must not be 0");
    int64_t s = starts[i], e = ends[i];
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    int64_t len;
    if (step > 0) {
      s = std::min(std::max<int64_t>(s, 0), dim);
      e = std::min(std::max<int64_t>(e, 0), dim);
      len = e > s ? (e - s + step - 1) / step : 0;
    } else {
      s = std::min(std::max<int64_t>(s, 0), dim - 1);
      e = std::min(std::max<int64_t>(e, -1), dim - 1);
      len = s > e ? (s - e + (-step) - 1) / (-step) : 0;
    }
    v.out[a] = len;
    if (len > 0) v.offset += s * v.strides[a];
    v.strides[a] *= step;
  }
  return v;
}

}  // namespace ops
}  // namespace fit
