// Internal to the CPU backend: GEMM special cases where packing would cost as much as the
// arithmetic, shared by every path like gemm_driver.h (same anonymous-namespace, always-inline
// rules, so each path compiles them for its own ISA):
//   - M == 1 or N == 1: matrix-vector products (dot products or axpy sweeps);
//   - op(B) = B^T with few rows in op(A) (a Gemm layer's forward pass on a small batch: weights
//     are [N, K]): every C element is a dot product of two K-contiguous rows, so tiles of dot
//     products read B exactly once and pack nothing.
// Written on GCC/Clang generic vectors (vector_size), which the compiler maps onto the including
// function's ISA (the SIMD paths pass their own intrinsic dot-product tiles); on other compilers
// the matrix-vector cases fall back to scalar loops and the small-M case to the packed path.
#pragma once

#include "gemm_driver.h"

#if defined(__GNUC__) || defined(__clang__)
#define FIT_GEMM_VECTORS 1
#else
#define FIT_GEMM_VECTORS 0
#endif

namespace fit {
namespace kernels {
namespace cpu {
namespace {

// Dot product. With GCC/Clang, written on 32-byte generic vectors with 4 independent
// accumulators, which the compiler maps onto the including function's ISA (ymm under AVX2/AVX-512,
// xmm pairs under SSE2, NEON on ARM); plain loops over partial sums vectorize poorly here.
template <typename T>
FIT_GEMM_INLINE T dot(const T* __restrict x, const T* __restrict y, int64_t n) {
  int64_t k = 0;
  T r = T(0);
#if FIT_GEMM_VECTORS
  typedef T V __attribute__((vector_size(32)));
  constexpr int L = static_cast<int>(32 / sizeof(T));
  V s0 = {}, s1 = {}, s2 = {}, s3 = {}, a, b;
  for (; k + 4 * L <= n; k += 4 * L) {
    std::memcpy(&a, x + k, 32), std::memcpy(&b, y + k, 32), s0 += a * b;
    std::memcpy(&a, x + k + L, 32), std::memcpy(&b, y + k + L, 32), s1 += a * b;
    std::memcpy(&a, x + k + 2 * L, 32), std::memcpy(&b, y + k + 2 * L, 32), s2 += a * b;
    std::memcpy(&a, x + k + 3 * L, 32), std::memcpy(&b, y + k + 3 * L, 32), s3 += a * b;
  }
  for (; k + L <= n; k += L) std::memcpy(&a, x + k, 32), std::memcpy(&b, y + k, 32), s0 += a * b;
  s0 = (s0 + s1) + (s2 + s3);
  for (int l = 0; l < L; ++l) r += s0[l];
#endif
  for (; k < n; ++k) r += x[k] * y[k];
  return r;
}

// y[0:n] += a * x[0:n]
template <typename T>
FIT_GEMM_INLINE void axpy(int64_t n, T a, const T* __restrict x, T* __restrict y) {
  for (int64_t j = 0; j < n; ++j) y[j] += a * x[j];
}

// Matrix-vector special cases (M == 1 or N == 1), where packing would cost as much as the
// arithmetic. Returns false if neither applies.
template <typename T>
FIT_GEMM_INLINE bool gemvCases(const GemmArgs<T>& g) {
  if (g.M != 1 && g.N != 1) return false;
  // Normalize to y = alpha * Mat * x (or alpha * x^T * Mat) on a contiguous vector x.
  const bool rowVec = g.M == 1;  // C is 1 x N: C = x^T op(B), x = op(A) row 0
  const int64_t K = g.K;
  const T* xs = rowVec ? g.A : g.B;
  const int64_t xStride = rowVec ? (g.transA ? g.lda : 1) : (g.transB ? 1 : g.ldb);
  const T* x = xs;
  if (xStride != 1) {
    T* tmp = static_cast<T*>(gemmScratch(2, sizeof(T) * static_cast<size_t>(K)));
    for (int64_t k = 0; k < K; ++k) tmp[k] = xs[k * xStride];
    x = tmp;
  }
  const int64_t len = rowVec ? g.N : g.M;  // length of the result vector
  const int64_t cStride = rowVec ? 1 : g.ldc;
  // Mat element (k, r) of the K x len operand: op(B)[k][r] (rowVec) or op(A)[r][k] (column).
  const T* mat = rowVec ? g.B : g.A;
  const int64_t ld = rowVec ? g.ldb : g.lda;
  const bool rContiguous = rowVec ? !g.transB : g.transA;  // (k, r) at mat[k*ld + r]
  if (!rContiguous) {
    // (k, r) at mat[r*ld + k]: one dot product per output.
    for (int64_t r = 0; r < len; ++r) {
      T v = g.alpha * dot(mat + r * ld, x, K);
      T& c = g.C[r * cStride];
      c = g.beta == T(0) ? v : v + g.beta * c;
    }
    return true;
  }
  // (k, r) at mat[k*ld + r]: accumulate rows with axpy into a contiguous y.
  T* y = cStride == 1 ? g.C : static_cast<T*>(gemmScratch(3, sizeof(T) * static_cast<size_t>(len)));
  if (cStride == 1)
    scaleC<T>(1, len, g.beta, y, 0);
  else
    for (int64_t r = 0; r < len; ++r) y[r] = g.beta == T(0) ? T(0) : g.beta * g.C[r * cStride];
  for (int64_t k = 0; k < K; ++k) axpy(len, g.alpha * x[k], mat + k * ld, y);
  if (cStride != 1)
    for (int64_t r = 0; r < len; ++r) g.C[r * cStride] = y[r];
  return true;
}


#if FIT_GEMM_VECTORS
// Sum of a generic vector's lanes by halving (log2(lanes) vector adds, then one scalar).
template <typename T, int VB, class V>
FIT_GEMM_INLINE T hsum(const V& v) {
  if constexpr (VB == static_cast<int>(sizeof(T))) {
    return v[0];
  } else {
    typedef T H __attribute__((vector_size(VB / 2)));
    H lo, hi;
    std::memcpy(&lo, &v, VB / 2);
    std::memcpy(&hi, reinterpret_cast<const char*>(&v) + VB / 2, VB / 2);
    const H sum = lo + hi;
    return hsum<T, VB / 2, H>(sum);
  }
}

// sums[i][j] = dot(a[i][0:kl], b[j][0:kl]) for an RA x RB tile; rows beyond ra/rb repeat the
// last valid row (computed, never stored).
template <typename T, int VB, int RA, int RB>
FIT_GEMM_INLINE void dotTile(const T* A, int64_t lda, int ra, const T* B, int64_t ldb, int rb,
                             int64_t kl, T (&sums)[RA][RB]) {
  typedef T V __attribute__((vector_size(VB)));
  constexpr int L = VB / static_cast<int>(sizeof(T));
  const T* a[RA];
  const T* b[RB];
  for (int i = 0; i < RA; ++i) a[i] = A + std::min(i, ra - 1) * lda;
  for (int j = 0; j < RB; ++j) b[j] = B + std::min(j, rb - 1) * ldb;
  V acc[RA][RB];
  for (int i = 0; i < RA; ++i)
    for (int j = 0; j < RB; ++j) acc[i][j] = V{};
  int64_t k = 0;
  for (; k + L <= kl; k += L) {
    V bv[RB];
    for (int j = 0; j < RB; ++j) std::memcpy(&bv[j], b[j] + k, VB);
    for (int i = 0; i < RA; ++i) {
      V av;
      std::memcpy(&av, a[i] + k, VB);
      for (int j = 0; j < RB; ++j) acc[i][j] += av * bv[j];
    }
  }
  for (int i = 0; i < RA; ++i)
    for (int j = 0; j < RB; ++j) {
      T s = hsum<T, VB>(acc[i][j]);
      for (int64_t t = k; t < kl; ++t) s += a[i][t] * b[j][t];
      sums[i][j] = s;
    }
}

// The tile type smallMTransB uses on generic vectors; paths with FMA supply their own (with
// intrinsics: ISO -std modes turn off the compiler's contraction of a * b + c into FMA).
template <typename T, int VB, int RA, int RB>
struct GenericDotTile {
  static FIT_GEMM_INLINE void run(const T* A, int64_t lda, int ra, const T* B, int64_t ldb,
                                  int rb, int64_t kl, T (&sums)[RA][RB]) {
    dotTile<T, VB, RA, RB>(A, lda, ra, B, ldb, rb, kl, sums);
  }
};
#endif

// C = alpha * op(A) * B^T + beta * C when transB and M <= maxM, as RA x RB tiles of dot
// products (Tile::run, e.g. GenericDotTile) over K chunks of 2048: RB rows of B (32 KB of floats)
// stay in L1 while op(A) (at most maxM * 8 KB) streams from L2, and B is read from memory once.
// Returns false when the case does not apply.
template <typename T, int RA, int RB, class Tile>
FIT_GEMM_INLINE bool smallMTransB(const GemmArgs<T>& g, int64_t maxM) {
#if FIT_GEMM_VECTORS
  // Short dot products are dominated by their horizontal sums: leave those to the packed path.
  if (!g.transB || g.M > maxM || (g.M > 4 && g.K < 256)) return false;
  const T* A = g.A;
  int64_t lda = g.lda;
  if (g.transA) {  // make op(A) rows contiguous (M is small, so this is cheap)
    T* t = static_cast<T*>(gemmScratch(2, sizeof(T) * static_cast<size_t>(g.M * g.K)));
    for (int64_t k = 0; k < g.K; ++k)
      for (int64_t i = 0; i < g.M; ++i) t[i * g.K + k] = g.A[k * g.lda + i];
    A = t;
    lda = g.K;
  }
  constexpr int64_t KB = 2048;
  for (int64_t kb = 0; kb < g.K; kb += KB) {
    const int64_t kl = std::min(KB, g.K - kb);
    for (int64_t j0 = 0; j0 < g.N; j0 += RB) {
      const int rb = static_cast<int>(std::min<int64_t>(RB, g.N - j0));
      for (int64_t i0 = 0; i0 < g.M; i0 += RA) {
        const int ra = static_cast<int>(std::min<int64_t>(RA, g.M - i0));
        T sums[RA][RB];
        Tile::run(A + i0 * lda + kb, lda, ra, g.B + j0 * g.ldb + kb, g.ldb, rb, kl, sums);
        for (int i = 0; i < ra; ++i)
          for (int j = 0; j < rb; ++j) {
            T& c = g.C[(i0 + i) * g.ldc + j0 + j];
            const T v = g.alpha * sums[i][j];
            if (kb > 0)
              c += v;
            else
              c = g.beta == T(0) ? v : v + g.beta * c;
          }
      }
    }
  }
  return true;
#else
  (void)g;
  (void)maxM;
  return false;
#endif
}

}  // namespace
}  // namespace cpu
}  // namespace kernels
}  // namespace fit
