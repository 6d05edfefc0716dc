// AVX-512F SGEMM path, used when the CPU has AVX-512F (plus AVX2/FMA). Like gemm_avx2.cpp, every
// function carries a target attribute, so no per-file compiler flags are needed.
//
// Micro-kernel: a 12 x 32 tile of C in 24 zmm accumulators; per k it loads one 32-float row of
// the packed B sliver (2 zmm), broadcasts 12 packed A values (embedded-broadcast FMAs), and issues
// 24 FMAs. Edge tiles use masked loads/stores, so no spill is needed. Blocking (gemm_driver.h):
// KC = 192 keeps a B sliver (24 KB) plus an A sliver (9 KB) in L1; MC = 240 rows of A (180 KB)
// stay in L2; NC = 2048 columns of B are reused across MC blocks.
#include "gemm_paths.h"

#if FIT_KERNELS_X86
#include <immintrin.h>

#define FIT_AVX512 __attribute__((target("avx512f,avx2,fma")))

#ifndef FIT_AVX512_MR
#define FIT_AVX512_MR 12
#endif
#ifndef FIT_AVX512_KC
#define FIT_AVX512_KC 192
#endif
#ifndef FIT_AVX512_MC
#define FIT_AVX512_MC 240
#endif
#ifndef FIT_AVX512_AL1
#define FIT_AVX512_AL1 false
#endif
#ifndef FIT_AVX512_NC
#define FIT_AVX512_NC 2048
#endif

namespace fit {
namespace kernels {
namespace cpu {
namespace {

constexpr int kMR = FIT_AVX512_MR;
constexpr int kNR = 32;

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

}  // namespace

FIT_AVX512 void sgemmAvx512(const GemmArgs<float>& g) {
  if (gemvCases(g)) return;
  gemmBlocked<float, kMR, kNR, FIT_AVX512_MC, FIT_AVX512_KC, FIT_AVX512_NC, FIT_AVX512_AL1>(g, microKernelAvx512);
}

}  // namespace cpu
}  // namespace kernels
}  // namespace fit

#endif  // FIT_KERNELS_X86
