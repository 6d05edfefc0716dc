// AVX2 + FMA GEMM path. Every function here carries __attribute__((target("avx2,fma"))), so this
// file builds with baseline flags (e.g. -march=x86-64) and the code only runs after gemm.cpp has
// checked __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma").
//
// SGEMM micro-kernel: a 6 x 16 tile of C in 12 ymm accumulators; per k it loads one 16-float row
// of the packed B sliver (2 ymm), broadcasts 6 packed A values, and issues 12 FMAs (15 of the 16
// ymm registers in use). Blocking (see gemm_driver.h): KC = 256, so the A sliver in L1 is 6 KB
// and each call streams a 16 KB B sliver from the L2-resident panel. M == 1 / N == 1 and
// small-M A * B^T go to gemm_small.h (dot-product tiles, below).
#include "gemm_paths.h"

#if FIT_KERNELS_X86
#include <immintrin.h>

#define FIT_AVX2 __attribute__((target("avx2,fma")))

namespace fit {
namespace kernels {
namespace cpu {
namespace {

constexpr int kMR = 6;
constexpr int kNR = 16;
constexpr int64_t kKC = 256;  // A sliver 6 KB (L1), B sliver 16 KB per call
constexpr int64_t kMC = 144;
// A * B^T with up to kSmallM rows: dot-product tiles beat packing (measured up to M = 8).
constexpr int64_t kSmallM = 8;

FIT_AVX2 void microKernel6x16(int64_t kc, const float* __restrict Ap, const float* __restrict Bp,
                              float* C, int64_t ldc, float alpha, float beta, int m, int n) {
  __m256 c[kMR][2];
#pragma GCC unroll 6
  for (int i = 0; i < kMR; ++i) c[i][0] = c[i][1] = _mm256_setzero_ps();
  // Warm the C tile while the k loop runs (it is read/written only at the end).
  for (int i = 0; i < m; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc + 15), _MM_HINT_T0);
  }

#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(Bp);
    const __m256 b1 = _mm256_load_ps(Bp + 8);
#pragma GCC unroll 6
    for (int i = 0; i < kMR; ++i) {
      const __m256 a = _mm256_broadcast_ss(Ap + i);
      c[i][0] = _mm256_fmadd_ps(a, b0, c[i][0]);
      c[i][1] = _mm256_fmadd_ps(a, b1, c[i][1]);
    }
    Ap += kMR;
    Bp += kNR;
  }

  const __m256 va = _mm256_set1_ps(alpha);
  if (m == kMR && n == kNR) {
    const __m256 vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
    for (int i = 0; i < kMR; ++i) {
      float* ci = C + i * ldc;
      __m256 r0 = _mm256_mul_ps(va, c[i][0]);
      __m256 r1 = _mm256_mul_ps(va, c[i][1]);
      if (beta != 0.0f) {
        r0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci), r0);
        r1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci + 8), r1);
      }
      _mm256_storeu_ps(ci, r0);
      _mm256_storeu_ps(ci + 8, r1);
    }
    return;
  }
  // Edge tile: spill alpha * acc and copy the valid m x n part.
  alignas(32) float tile[kMR * kNR];
#pragma GCC unroll 6
  for (int i = 0; i < kMR; ++i) {
    _mm256_store_ps(tile + i * kNR, _mm256_mul_ps(va, c[i][0]));
    _mm256_store_ps(tile + i * kNR + 8, _mm256_mul_ps(va, c[i][1]));
  }
  for (int i = 0; i < m; ++i) {
    float* ci = C + i * ldc;
    const float* ti = tile + i * kNR;
    if (beta == 0.0f)
      for (int j = 0; j < n; ++j) ci[j] = ti[j];
    else
      for (int j = 0; j < n; ++j) ci[j] = ti[j] + beta * ci[j];
  }
}

// Small-M A * B^T (gemm_small.h): an RA x RB tile of K-contiguous dot products, 8 floats per
// FMA, reduced horizontally at the end.
template <int RA, int RB>
struct DotTileAvx2 {
  // noinline: inlined into sgemmAvx2 it loses registers to the surrounding code and spills.
  FIT_AVX2 __attribute__((noinline)) static void run(const float* A, int64_t lda, int ra,
                                                     const float* B, int64_t ldb, int rb,
                                                     int64_t kl, float (&sums)[RA][RB]) {
    const float* a[RA];
    const float* b[RB];
    for (int i = 0; i < RA; ++i) a[i] = A + std::min(i, ra - 1) * lda;
    for (int j = 0; j < RB; ++j) b[j] = B + std::min(j, rb - 1) * ldb;
    __m256 acc[RA][RB];
#pragma GCC unroll 16
    for (int i = 0; i < RA * RB; ++i) acc[i / RB][i % RB] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= kl; k += 8) {
      __m256 bv[RB];
#pragma GCC unroll 8
      for (int j = 0; j < RB; ++j) bv[j] = _mm256_loadu_ps(b[j] + k);
#pragma GCC unroll 8
      for (int i = 0; i < RA; ++i) {
        const __m256 av = _mm256_loadu_ps(a[i] + k);
#pragma GCC unroll 8
        for (int j = 0; j < RB; ++j) acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);
      }
    }
    for (int i = 0; i < RA; ++i)
      for (int j = 0; j < RB; ++j) {
        const __m256 v = acc[i][j];
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
        float sum = _mm_cvtss_f32(h);
        for (int64_t t = k; t < kl; ++t) sum += a[i][t] * b[j][t];
        sums[i][j] = sum;
      }
  }
};

}  // namespace

FIT_AVX2 void sgemmAvx2(const GemmArgs<float>& g) {
  if (gemvCases(g)) return;
  if (smallMTransB<float, 2, 4, DotTileAvx2<2, 4>>(g, kSmallM)) return;
  gemmBlocked<float, kMR, kNR, kMC, kKC>(g, microKernel6x16);
}

// DGEMM: the generic 4 x 8 kernel, vectorized by the compiler for AVX2 (8 ymm accumulators).
FIT_AVX2 void dgemmAvx2(const GemmArgs<double>& g) {
  if (gemvCases(g)) return;
  if (smallMTransB<double, 2, 4, GenericDotTile<double, 32, 2, 4>>(g, kSmallM)) return;
  gemmBlocked<double, 4, 8, 96, 256>(g, microKernelGeneric<double, 4, 8>);
}

}  // namespace cpu
}  // namespace kernels
}  // namespace fit

#endif  // FIT_KERNELS_X86
