// 2x2 / stride 2 max pooling inside the image (the usual CNN pool), forward and backward, as
// branch-free loops the compiler vectorizes (multiversioned with FIT_SIMD_CLONES). Used by pool.cpp
// when the window has no padding and no dilation. Both keep pool.cpp's exact semantics:
//  - forward: y = max(max(lowest, max(x00, x01)), max(x10, x11)) with std::max (the generic 2-D
//    loop's order of operations, so NaNs behave the same);
//  - backward: dy goes to the first maximal tap in window order (x00, x01, x10, x11), decided by
//    the same comparisons as before; every element of dx is written (no zero fill needed).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "../../kernels/simd.h"

namespace fit {
namespace ops {

// x [planes, H, W] -> y [planes, OH, OW] with 2 * OH <= H, 2 * OW <= W.
template <typename T>
FIT_SIMD_CLONES void maxPool2x2Forward(const T* x, T* y, int64_t planes, int64_t H, int64_t W, int64_t OH,
                                       int64_t OW) {
  const T lowest = std::numeric_limits<T>::lowest();
  for (int64_t p = 0; p < planes; ++p) {
    const T* xp = x + p * H * W;
    T* yp = y + p * OH * OW;
    for (int64_t oh = 0; oh < OH; ++oh) {
      const T* __restrict r0 = xp + 2 * oh * W;
      const T* __restrict r1 = r0 + W;
      T* __restrict yr = yp + oh * OW;
      for (int64_t ow = 0; ow < OW; ++ow) {
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
      for (int64_t ow = 0; ow < OW; ++ow) {
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
