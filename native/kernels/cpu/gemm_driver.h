// Internal to the CPU backend: the cache-blocked GEMM driver, its packing routines and the
// matrix-vector special cases, shared by every SGEMM/DGEMM path (portable, AVX2, AVX-512).
//
// Blocking scheme (GotoBLAS/BLIS-style), for C = alpha * op(A) * op(B) + beta * C:
//
//   for jc in N step nc                      B panel column range
//     for pc in K step kc                    K slice; beta applies only to the first slice
//       pack op(B)[pc:pc+kc, jc:jc+nc] -> Bp: nc/NR slivers of kc x NR, zero-padded  (L2)
//       for ic in M step mc
//         pack op(A)[ic:ic+mc, pc:pc+kc] -> Ap: mc/MR slivers of kc x MR, zero-padded
//         for ir in mc step MR               one A sliver (kc*MR floats, a few KB): stays in L1
//           for jr in nc step NR             B slivers stream from the L2-resident panel
//             micro-kernel: MR x NR tile of C held in registers, kc rank-1 updates
//
// kc (KC, per path: 192-256) bounds the A sliver and the per-tile work; nc is chosen at run time
// so the packed B panel (kc x nc) fills about 3/4 of this CPU's L2 (1536-2048 columns on a 2 MB
// L2); mc only bounds the A scratch. Walking C along rows (jr innermost) keeps C accesses
// sequential, which matters when K is small and C traffic dominates (measured: 2-3x faster than
// the column walk at K = 32-64, and no slower at large K on a 2 MB-L2 Xeon).
//
// Packing makes the micro-kernel's loads unit-stride and aligned whatever transA/transB/lda/ldb
// are, and zero-padding means the micro-kernel always runs a full MR x NR tile; only its store
// is clipped to the m x n valid part at the M/N edges. K, M and N are split into near-equal
// blocks (not KC,KC,...,remainder) so no block is tiny.
//
// Everything here is FIT_GEMM_INLINE and lives in an anonymous namespace: each .cpp that includes
// this file gets its own copy, inlined into functions compiled for that file's target ISA (e.g.
// __attribute__((target("avx2,fma")))). No out-of-line copy compiled for one ISA can be shared
// with (and called from) a path meant for another CPU, which the linker could otherwise do.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#if defined(__GNUC__) || defined(__clang__)
#define FIT_GEMM_INLINE inline __attribute__((always_inline))
#else
#define FIT_GEMM_INLINE __forceinline
#endif

// The x86 SIMD paths need GCC/Clang (target attributes, __builtin_cpu_supports).
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(FIT_KERNELS_NO_SIMD)
#define FIT_KERNELS_X86 1
#else
#define FIT_KERNELS_X86 0
#endif

namespace fit {
namespace kernels {
namespace cpu {

// A 64-byte-aligned, grow-only, thread_local scratch buffer (slot 0..3); defined in gemm.cpp.
void* gemmScratch(int slot, size_t bytes);
// Per-core L2 size in bytes (from the OS when it says, else 1 MB), clamped to [256 KB, 4 MB].
size_t l2CacheBytes();

template <typename T>
struct GemmArgs {
  bool transA, transB;
  int64_t M, N, K;
  T alpha;
  const T* A;
  int64_t lda;
  const T* B;
  int64_t ldb;
  T beta;
  T* C;
  int64_t ldc;
};

// Micro-kernel contract: computes the MR x NR product of one packed A sliver (kc x MR) and one
// packed B sliver (kc x NR), and stores C[0:m, 0:n] = alpha * acc + beta * C (C not read when
// beta == 0).
template <typename T>
using MicroKernel = void (*)(int64_t kc, const T* Ap, const T* Bp, T* C, int64_t ldc, T alpha,
                             T beta, int m, int n);

namespace {

// Splits `total` into ceil(total / maxBlock) near-equal blocks, each a multiple of `align`.
FIT_GEMM_INLINE int64_t balancedBlock(int64_t total, int64_t maxBlock, int64_t align) {
  int64_t nb = (total + maxBlock - 1) / maxBlock;
  int64_t b = (total + nb - 1) / nb;
  return std::min(maxBlock, (b + align - 1) / align * align);
}

// C[0:M, 0:N] = beta * C (zero when beta == 0, NaN-safe).
template <typename T>
FIT_GEMM_INLINE void scaleC(int64_t M, int64_t N, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    if (beta == T(0))
      std::fill(c, c + N, T(0));
    else if (beta != T(1))
      for (int64_t j = 0; j < N; ++j) c[j] *= beta;
  }
}

// Packing primitives. A sliver of width W (W = MR for A, NR for B) is kc rows of W values:
// dst[k*W + r], r < w copied from the source and r in [w, W) zero (edge slivers).

// Source already W-contiguous per k: sliver s gets dst[s*kc*W + k*W + r] = src[k*ld + s*W + r]
// for a panel `width` wide. Going sliver by sliver over all kc rows would read a 64-128 byte piece
// of each row far apart (a cache miss per row, no hardware prefetch); going row by row across all
// slivers scatters the writes. Chunks of rows balance the two.
template <typename T, int W>
FIT_GEMM_INLINE void packCopyPanel(const T* __restrict src, int64_t ld, int64_t width, int64_t kc,
                                   T* __restrict dst) {
  const int64_t full = width / W;
  const int rem = static_cast<int>(width - full * W);
  // Full slivers: 32 source rows at a time, sliver by sliver, so reads stay sequential within
  // a few rows and each sliver receives a contiguous 32 * W run of writes.
  constexpr int64_t kChunk = 32;
  for (int64_t k0 = 0; k0 < kc; k0 += kChunk) {
    const int64_t k1 = std::min<int64_t>(kc, k0 + kChunk);
    for (int64_t sl = 0; sl < full; ++sl)
      for (int64_t k = k0; k < k1; ++k)
        // A constant-size memcpy becomes a few vector moves for the caller's ISA (a plain loop
        // may be turned into a memmove call per row).
        std::memcpy(dst + sl * kc * W + k * W, src + k * ld + sl * W, sizeof(T) * W);
  }
  if (rem == 0) return;
  T* e = dst + full * kc * W;  // the zero-padded edge sliver
  for (int64_t k = 0; k < kc; ++k)
    for (int r = 0; r < W; ++r) e[k * W + r] = r < rem ? src[k * ld + full * W + r] : T(0);
}

// Source stored transposed: dst[k*W + r] = src[r*ld + k] (W source rows, each read sequentially).
template <typename T, int W>
FIT_GEMM_INLINE void packTransposed(const T* __restrict src, int64_t ld, int w, int64_t kc,
                                    T* __restrict dst) {
  int64_t k = 0;
#if defined(__SSE2__)
  // float: 4x4 register transposes (plus a 2x4 one when W % 4 == 2), ~4x fewer instructions
  // than element-wise copies. SSE2 is baseline on x86-64; under a target attribute the compiler
  // emits the VEX forms.
  if constexpr (std::is_same<T, float>::value && (W % 4 == 0 || W % 4 == 2)) {
    const float* s = src;
    float* d = dst;
    for (; w == W && k + 4 <= kc; k += 4) {
      // The W source rows are short streams (kc floats) that the hardware prefetcher barely
      // ramps up on: fetch each row 4 cache lines ahead.
      if ((k & 15) == 0)
        for (int r = 0; r < W; ++r)
          _mm_prefetch(reinterpret_cast<const char*>(s + r * ld + k + 64), _MM_HINT_T0);
      int r = 0;
      for (; r + 4 <= W; r += 4) {
        __m128 a0 = _mm_loadu_ps(s + (r + 0) * ld + k), a1 = _mm_loadu_ps(s + (r + 1) * ld + k);
        __m128 a2 = _mm_loadu_ps(s + (r + 2) * ld + k), a3 = _mm_loadu_ps(s + (r + 3) * ld + k);
        _MM_TRANSPOSE4_PS(a0, a1, a2, a3);
        _mm_storeu_ps(d + (k + 0) * W + r, a0);
        _mm_storeu_ps(d + (k + 1) * W + r, a1);
        _mm_storeu_ps(d + (k + 2) * W + r, a2);
        _mm_storeu_ps(d + (k + 3) * W + r, a3);
      }
      if (r < W) {  // two rows left
        const __m128 a0 = _mm_loadu_ps(s + r * ld + k), a1 = _mm_loadu_ps(s + (r + 1) * ld + k);
        const __m128 lo = _mm_unpacklo_ps(a0, a1), hi = _mm_unpackhi_ps(a0, a1);
        _mm_storel_pi(reinterpret_cast<__m64*>(d + (k + 0) * W + r), lo);
        _mm_storeh_pi(reinterpret_cast<__m64*>(d + (k + 1) * W + r), lo);
        _mm_storel_pi(reinterpret_cast<__m64*>(d + (k + 2) * W + r), hi);
        _mm_storeh_pi(reinterpret_cast<__m64*>(d + (k + 3) * W + r), hi);
      }
    }
  }
#endif
  if (w == W) {
    const T* rows[W];
    for (int r = 0; r < W; ++r) rows[r] = src + r * ld;
    for (; k < kc; ++k)
      for (int r = 0; r < W; ++r) dst[k * W + r] = rows[r][k];
  } else {
    for (; k < kc; ++k)
      for (int r = 0; r < W; ++r) dst[k * W + r] = r < w ? src[r * ld + k] : T(0);
  }
}

// Packs op(A)[i0:i0+mc, k0:k0+kc] into MR-row slivers; sliver s holds element (i, k) at
// s*kc*MR + k*MR + i. Rows beyond mc are zero.
template <typename T, int MR>
FIT_GEMM_INLINE void packA(const GemmArgs<T>& g, int64_t i0, int64_t k0, int64_t mc, int64_t kc,
                           T* __restrict dst) {
  if (g.transA) {  // op(A)[i][k] = A[k*lda + i]
    packCopyPanel<T, MR>(g.A + k0 * g.lda + i0, g.lda, mc, kc, dst);
    return;
  }
  for (int64_t is = 0; is < mc; is += MR, dst += kc * MR) {  // op(A)[i][k] = A[i*lda + k]
    const int m = static_cast<int>(std::min<int64_t>(MR, mc - is));
    packTransposed<T, MR>(g.A + (i0 + is) * g.lda + k0, g.lda, m, kc, dst);
  }
}

// Packs op(B)[k0:k0+kc, j0:j0+nc] into NR-column slivers; sliver s holds element (k, j) at
// s*kc*NR + k*NR + j. Columns beyond nc are zero.
template <typename T, int NR>
FIT_GEMM_INLINE void packB(const GemmArgs<T>& g, int64_t k0, int64_t j0, int64_t kc, int64_t nc,
                           T* __restrict dst) {
  if (!g.transB) {  // op(B)[k][j] = B[k*ldb + j]
    packCopyPanel<T, NR>(g.B + k0 * g.ldb + j0, g.ldb, nc, kc, dst);
    return;
  }
  for (int64_t js = 0; js < nc; js += NR, dst += kc * NR) {  // op(B)[k][j] = B[j*ldb + k]
    const int n = static_cast<int>(std::min<int64_t>(NR, nc - js));
    packTransposed<T, NR>(g.B + (j0 + js) * g.ldb + k0, g.ldb, n, kc, dst);
  }
}

// The blocked loop nest described at the top of this file. Requires M, N, K > 0.
template <typename T, int MR, int NR, int64_t MC, int64_t KC, class Ukr>
FIT_GEMM_INLINE void gemmBlocked(const GemmArgs<T>& g, Ukr ukr) {
  const int64_t kcMax = balancedBlock(g.K, KC, 4);
  const int64_t mcMax = balancedBlock(g.M, MC, MR);
  const int64_t ncFit = static_cast<int64_t>(l2CacheBytes() * 3 / 4 / (sizeof(T) * KC)) / NR * NR;
  const int64_t ncMax = balancedBlock(g.N, std::max<int64_t>(ncFit, 4 * NR), NR);
  T* Ap = static_cast<T*>(gemmScratch(0, sizeof(T) * static_cast<size_t>(mcMax * kcMax)));
  T* Bp = static_cast<T*>(gemmScratch(1, sizeof(T) * static_cast<size_t>(ncMax * kcMax)));

  for (int64_t jc = 0; jc < g.N; jc += ncMax) {
    const int64_t nc = std::min<int64_t>(ncMax, g.N - jc);
    for (int64_t pc = 0; pc < g.K; pc += kcMax) {
      const int64_t kc = std::min<int64_t>(kcMax, g.K - pc);
      const T beta = pc == 0 ? g.beta : T(1);
      packB<T, NR>(g, pc, jc, kc, nc, Bp);
      for (int64_t ic = 0; ic < g.M; ic += mcMax) {
        const int64_t mc = std::min<int64_t>(mcMax, g.M - ic);
        packA<T, MR>(g, ic, pc, mc, kc, Ap);
        for (int64_t ir = 0; ir < mc; ir += MR) {
          const int m = static_cast<int>(std::min<int64_t>(MR, mc - ir));
          const T* ap = Ap + ir * kc;
          T* cRow = g.C + (ic + ir) * g.ldc + jc;
          for (int64_t jr = 0; jr < nc; jr += NR) {
            const int n = static_cast<int>(std::min<int64_t>(NR, nc - jr));
            ukr(kc, ap, Bp + jr * kc, cRow + jr, g.ldc, g.alpha, beta, m, n);
          }
        }
      }
    }
  }
}

// Generic register-tile micro-kernel in plain C++ (the compiler vectorizes the j loops for
// whatever ISA the including function is compiled for): the portable paths and the AVX2 DGEMM.
// Passed to gemmBlocked by address but always inlined there (no out-of-line copy is emitted).
template <typename T, int MR, int NR>
FIT_GEMM_INLINE void microKernelGeneric(int64_t kc, const T* __restrict Ap, const T* __restrict Bp,
                                        T* C, int64_t ldc, T alpha, T beta, int m, int n) {
  T acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    const T* a = Ap + k * MR;
    const T* b = Bp + k * NR;
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += a[i] * b[j];
  }
  for (int i = 0; i < m; ++i) {
    T* c = C + i * ldc;
    if (beta == T(0)) {
      for (int j = 0; j < n; ++j) c[j] = alpha * acc[i][j];
    } else {
      for (int j = 0; j < n; ++j) c[j] = alpha * acc[i][j] + beta * c[j];
    }
  }
}

}  // namespace
}  // namespace cpu
}  // namespace kernels
}  // namespace fit
