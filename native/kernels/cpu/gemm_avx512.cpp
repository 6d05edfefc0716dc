// AVX-512F SGEMM path, used when the CPU has AVX-512F (plus AVX2/FMA). Like gemm_avx2.cpp, every
// function carries a target attribute, so no per-file compiler flags are needed.
//
// Micro-kernel: a 12 x 32 tile of C in 24 zmm accumulators; per k it loads one 32-float row of
// the packed B sliver (2 zmm), broadcasts 12 packed A values, and issues 24 FMAs (27 of the 32
// zmm registers in use). Edge tiles use masked loads/stores, so no spill is needed. Blocking
// (gemm_driver.h): KC = 192, so the A sliver in L1 is 9 KB and each call streams a 24 KB B sliver
// from the L2-resident panel; 12 x 32 and KC = 192 beat 14 x 32 and KC = 128/256/384 here.
// M == 1 / N == 1 and small-M A * B^T go to gemm_small.h (dot-product tiles, below).
#include "gemm_paths.h"

#if FIT_KERNELS_X86
#include <immintrin.h>

#define FIT_AVX512 __attribute__((target("avx512f,avx2,fma")))

namespace fit {
namespace kernels {
namespace cpu {
namespace {

constexpr int kMR = 12;
constexpr int kNR = 32;
constexpr int64_t kKC = 192;  // A sliver 9 KB (L1), B sliver 24 KB per call
constexpr int64_t kMC = 240;
// A * B^T with up to kSmallM rows: dot-product tiles beat packing (measured up to M = 12).
constexpr int64_t kSmallM = 12;

FIT_AVX512 void microKernelAvx512(int64_t kc, const float* __restrict Ap,
                                  const float* __restrict Bp, float* C, int64_t ldc, float alpha,
                                  float beta, int m, int n) {
  __m512 c[kMR][2];
#pragma GCC unroll 16
  for (int i = 0; i < kMR; ++i) c[i][0] = c[i][1] = _mm512_setzero_ps();
  for (int i = 0; i < m; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc + 31), _MM_HINT_T0);
  }

#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_load_ps(Bp);
    const __m512 b1 = _mm512_load_ps(Bp + 16);
#pragma GCC unroll 16
    for (int i = 0; i < kMR; ++i) {
      const __m512 a = _mm512_set1_ps(Ap[i]);
      c[i][0] = _mm512_fmadd_ps(a, b0, c[i][0]);
      c[i][1] = _mm512_fmadd_ps(a, b1, c[i][1]);
    }
    Ap += kMR;
    Bp += kNR;
  }

  const __m512 va = _mm512_set1_ps(alpha);
  const __m512 vb = _mm512_set1_ps(beta);
  // Lane masks for the two 16-float halves of a row (all ones for a full tile).
  const __mmask16 m0 = n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1);
  const __mmask16 m1 = n >= 32 ? __mmask16(0xFFFF) : n <= 16 ? __mmask16(0)
                                                             : __mmask16((1u << (n - 16)) - 1);
#pragma GCC unroll 16
  for (int i = 0; i < kMR; ++i) {
    if (i >= m) break;
    float* ci = C + i * ldc;
    __m512 r0 = _mm512_mul_ps(va, c[i][0]);
    __m512 r1 = _mm512_mul_ps(va, c[i][1]);
    if (beta != 0.0f) {
      r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, ci), r0);
      r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, ci + 16), r1);
    }
    _mm512_mask_storeu_ps(ci, m0, r0);
    _mm512_mask_storeu_ps(ci + 16, m1, r1);
  }
}

// Small-M A * B^T (gemm_small.h): an RA x RB tile of K-contiguous dot products, 16 floats per
// FMA, reduced horizontally at the end.
template <int RA, int RB>
struct DotTileAvx512 {
  // noinline: keeps its own register allocation (inlined into the driver, GCC spills).
  FIT_AVX512 __attribute__((noinline)) static void run(const float* A, int64_t lda, int ra,
                                                       const float* B, int64_t ldb, int rb,
                                                       int64_t kl, float (&sums)[RA][RB]) {
    const float* a[RA];
    const float* b[RB];
    for (int i = 0; i < RA; ++i) a[i] = A + std::min(i, ra - 1) * lda;
    for (int j = 0; j < RB; ++j) b[j] = B + std::min(j, rb - 1) * ldb;
    __m512 acc[RA][RB];
#pragma GCC unroll 32
    for (int i = 0; i < RA * RB; ++i) acc[i / RB][i % RB] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= kl; k += 16) {
      __m512 bv[RB];
#pragma GCC unroll 8
      for (int j = 0; j < RB; ++j) bv[j] = _mm512_loadu_ps(b[j] + k);
#pragma GCC unroll 8
      for (int i = 0; i < RA; ++i) {
        const __m512 av = _mm512_loadu_ps(a[i] + k);
#pragma GCC unroll 8
        for (int j = 0; j < RB; ++j) acc[i][j] = _mm512_fmadd_ps(av, bv[j], acc[i][j]);
      }
    }
    for (int i = 0; i < RA; ++i)
      for (int j = 0; j < RB; ++j) {
        // (Spilled, not shuffled: GCC 12's 512-bit extract/shuffle intrinsics warn spuriously.)
        alignas(64) float lanes[16];
        _mm512_store_ps(lanes, acc[i][j]);
        const __m256 v = _mm256_add_ps(_mm256_load_ps(lanes), _mm256_load_ps(lanes + 8));
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

FIT_AVX512 void sgemmAvx512(const GemmArgs<float>& g) {
  if (gemvCases(g)) return;
  // Also for larger M when the product is a few long dot products (C small, K long: the weight
  // gradients of small convolutions, dY * col^T), where packing B^T costs more than it saves.
  const int64_t maxM = g.transB && g.K >= 512 && g.N * g.M <= 64 * 64 && g.K >= 4 * std::max(g.M, g.N) ? g.M : kSmallM;
  if (smallMTransB<float, 4, 4, DotTileAvx512<4, 4>>(g, maxM)) return;
  gemmBlocked<float, kMR, kNR, kMC, kKC>(g, microKernelAvx512);
}

}  // namespace cpu
}  // namespace kernels
}  // namespace fit

#endif  // FIT_KERNELS_X86
