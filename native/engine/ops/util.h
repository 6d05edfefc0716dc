// Small helpers shared by op files: axis normalization, numpy broadcasting, reading int operands.
#pragma once

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

}  // namespace ops
}  // namespace fit
