// 2x2 / stride 2 max pooling inside the image (the usual CNN pool), forward and backward, as
// branch-free loops the compiler vectorizes (multiversioned with FIT_SIMD_CLONES). Used by pool.cpp
// when the window has no padding and no dilation. Both keep pool.cpp's exact semantics:
//  - forward: y = max(max(lowest, max(x00, x01)), max(x10, x11)) with std::max (the generic 2-D
//    loop's order of operations, so NaNs behave the same);
//  - backward: dy goes to the first maximal tap in window order (x00, x01, x10, x11), decided by
//    the same comparisons as before; every element of dx is written (no zero fill needed).
// With GCC, rows go through 64-byte vectors (even/odd taps split by shuffles). Rows of CNN pools
// are short (OW 7-14 < 16 lanes), so the last vector of a row may run past it: the extra lanes
// read the next row and are written to places written again later (the next output row, the
// next row pair, or the fills of columns and rows no window reaches); near the end of the tensor
// the scalar loop takes over. In the backward the partial vector goes first, so its spill into
// the window's second row is overwritten by that row's own stores.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "../../kernels/simd.h"

namespace fit {
namespace ops {
namespace {

#if defined(__GNUC__) && !defined(__clang__) && FIT_SIMD_VECTOR_EXT
#define FIT_POOL_VEC 1
using simd::Idx;

// Shuffle masks over the 2 * V lanes of two vectors: kind 0 even lanes, 1 odd lanes, 2 the
// interleave of (a, b)'s first halves, 3 of their second halves.
template <typename T>
FIT_SIMD_INLINE Idx<T> shuffleMask(int kind) {
  constexpr int64_t V = simd::kLanes<T>;
  Idx<T> m;
  for (int64_t i = 0; i < V; ++i) {
    const int64_t h = i / 2 + (kind == 3 ? V / 2 : 0);
    m[i] = kind == 0 ? 2 * i : kind == 1 ? 2 * i + 1 : (i % 2 == 0 ? h : V + h);
  }
  return m;
}
#else
#define FIT_POOL_VEC 0
#endif

}  // namespace

// x [planes, H, W] -> y [planes, OH, OW] with 2 * OH <= H, 2 * OW <= W.
template <typename T>
FIT_SIMD_CLONES void maxPool2x2Forward(const T* x, T* y, int64_t planes, int64_t H, int64_t W, int64_t OH,
                                       int64_t OW) {
  const T lowest = std::numeric_limits<T>::lowest();
#if FIT_POOL_VEC
  constexpr int64_t V = simd::kLanes<T>;
  const T* xEnd = x + planes * H * W;
  const T* yEnd = y + planes * OH * OW;
  const Idx<T> ev = shuffleMask<T>(0), od = shuffleMask<T>(1);
  const simd::Vec<T> low = simd::splat(lowest);
#endif
  for (int64_t p = 0; p < planes; ++p) {
    const T* xp = x + p * H * W;
    T* yp = y + p * OH * OW;
    for (int64_t oh = 0; oh < OH; ++oh) {
      const T* __restrict r0 = xp + 2 * oh * W;
      const T* __restrict r1 = r0 + W;
      T* __restrict yr = yp + oh * OW;
      int64_t ow = 0;
#if FIT_POOL_VEC
      for (; ow < OW && r1 + 2 * ow + 2 * V <= xEnd && yr + ow + V <= yEnd; ow += V) {
        using Vc = simd::Vec<T>;
        const Vc a0 = simd::load(r0 + 2 * ow), a1 = simd::load(r0 + 2 * ow + V);
        const Vc c0 = simd::load(r1 + 2 * ow), c1 = simd::load(r1 + 2 * ow + V);
        const Vc a = __builtin_shuffle(a0, a1, ev), b = __builtin_shuffle(a0, a1, od);
        const Vc c = __builtin_shuffle(c0, c1, ev), d = __builtin_shuffle(c0, c1, od);
        const Vc mab = a < b ? b : a, mcd = c < d ? d : c;  // std::max(x, y) = x < y ? y : x
        const Vc top = low < mab ? mab : low;
        simd::store(yr + ow, top < mcd ? mcd : top);
      }
#endif
      for (; ow < OW; ++ow) {
        const T top = std::max(lowest, std::max(r0[2 * ow], r0[2 * ow + 1]));
        yr[ow] = std::max(top, std::max(r1[2 * ow], r1[2 * ow + 1]));
      }
    }
  }
}

// v if c, else +0 (bit-exact), without a branch.
template <typename T>
FIT_SIMD_INLINE T keepIf(bool c, T v) {
  using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  U u;
  std::memcpy(&u, &v, sizeof u);
  u &= U(0) - U(c);
  std::memcpy(&v, &u, sizeof u);
  return v;
}

// dx [planes, H, W] (written) from x and dy [planes, OH, OW].
template <typename T>
FIT_SIMD_CLONES void maxPool2x2Backward(const T* x, const T* gy, T* dx, int64_t planes, int64_t H, int64_t W,
                                        int64_t OH, int64_t OW) {
#if FIT_POOL_VEC
  constexpr int64_t V = simd::kLanes<T>;
  const T* xEnd = x + planes * H * W;
  const T* gEnd = gy + planes * OH * OW;
  const Idx<T> ev = shuffleMask<T>(0), od = shuffleMask<T>(1), lo = shuffleMask<T>(2), hi = shuffleMask<T>(3);
#endif
  for (int64_t p = 0; p < planes; ++p) {
    const T* xp = x + p * H * W;
    T* dp = dx + p * H * W;
    const T* gp = gy + p * OH * OW;
    for (int64_t oh = 0; oh < OH; ++oh) {
      const T* __restrict r0 = xp + 2 * oh * W;
      const T* __restrict r1 = r0 + W;
      T* __restrict d0 = dp + 2 * oh * W;
      T* __restrict d1 = d0 + W;
      const T* __restrict g = gp + oh * OW;
      int64_t ow = 0, end = OW;
#if FIT_POOL_VEC
      using Vc = simd::Vec<T>;
      auto vec = [&](int64_t o) {
        const Vc a0 = simd::load(r0 + 2 * o), a1 = simd::load(r0 + 2 * o + V);
        const Vc c0 = simd::load(r1 + 2 * o), c1 = simd::load(r1 + 2 * o + V);
        const Vc a = __builtin_shuffle(a0, a1, ev), b = __builtin_shuffle(a0, a1, od);
        const Vc c = __builtin_shuffle(c0, c1, ev), d = __builtin_shuffle(c0, c1, od);
        const Vc gv = simd::load(g + o), z{};
        const auto ab = b > a, cd = d > c;
        const Vc m1 = ab ? b : a, m2 = cd ? d : c;
        const auto lower = m2 > m1;
        const Vc gTop = lower ? z : gv, gBot = lower ? gv : z;
        const Vc e0 = ab ? z : gTop, o0 = ab ? gTop : z, e1 = cd ? z : gBot, o1 = cd ? gBot : z;
        simd::store(d0 + 2 * o, __builtin_shuffle(e0, o0, lo));
        simd::store(d0 + 2 * o + V, __builtin_shuffle(e0, o0, hi));
        simd::store(d1 + 2 * o, __builtin_shuffle(e1, o1, lo));
        simd::store(d1 + 2 * o + V, __builtin_shuffle(e1, o1, hi));
      };
      const int64_t full = OW / V * V;
      if (full < OW && r1 + 2 * full + 2 * V <= xEnd && g + full + V <= gEnd) {
        vec(full);  // the partial vector first: its spill into d1 is rewritten below
        end = full;
      }
      for (; ow < full; ow += V) vec(ow);
#endif
      for (; ow < end; ++ow) {
        const T a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
        const bool ab = b > a, cd = d > c;
        const T m1 = ab ? b : a, m2 = cd ? d : c;
        const bool lower = m2 > m1;
        // Bit-mask selects: the loop vectorizes, and the scalar remainder of these short rows has
        // no data-dependent branches (random argmax positions would mispredict every other one).
        const T gTop = keepIf(!lower, g[ow]), gBot = keepIf(lower, g[ow]);
        d0[2 * ow] = keepIf(!ab, gTop);
        d0[2 * ow + 1] = keepIf(ab, gTop);
        d1[2 * ow] = keepIf(!cd, gBot);
        d1[2 * ow + 1] = keepIf(cd, gBot);
      }
      for (int64_t iw = 2 * OW; iw < W; ++iw) d0[iw] = d1[iw] = T(0);  // columns no window reaches
    }
    std::fill(dp + 2 * OH * W, dp + H * W, T(0));  // rows no window reaches
  }
}

template void maxPool2x2Forward<float>(const float*, float*, int64_t, int64_t, int64_t, int64_t, int64_t);
template void maxPool2x2Forward<double>(const double*, double*, int64_t, int64_t, int64_t, int64_t, int64_t);
template void maxPool2x2Backward<float>(const float*, const float*, float*, int64_t, int64_t, int64_t, int64_t,
                                        int64_t);
template void maxPool2x2Backward<double>(const double*, const double*, double*, int64_t, int64_t, int64_t,
                                         int64_t, int64_t);

}  // namespace ops
}  // namespace fit
