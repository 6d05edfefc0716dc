// Internal to the CPU backend: the cache-blocked GEMM driver, its packing routines and the
// matrix-vector special cases, shared by every SGEMM/DGEMM path (portable, AVX2, AVX-512).
//
// Blocking scheme (the GotoBLAS/BLIS loop nest), for C += alpha * op(A) * op(B):
//
//   for jc in N step NC                      B panel column range
//     for pc in K step KC                    K slice; beta applies only to the first slice
//       pack op(B)[pc:pc+kc, jc:jc+nc] -> Bp: nc/NR slivers, each kc x NR, row-major, zero-padded
//       for ic in M step MC
//         pack op(A)[ic:ic+mc, pc:pc+kc] -> Ap: mc/MR slivers, each kc x MR (k-major), zero-padded
//         for jr in nc step NR               one B sliver (kc*NR, sized to stay in L1)
//           for ir in mc step MR             A slivers stream from L2 (Ap is mc*kc, sized for L2)
//             micro-kernel: MR x NR tile of C held in registers, kc rank-1 updates
//
// Packing makes the micro-kernel's loads unit-stride and aligned whatever transA/transB/lda/ldb
// are, and zero-padding means the micro-kernel always runs a full MR x NR tile; only its store
// is clipped to the m x n valid part at the M/N edges. K and M are split into near-equal blocks
// (not KC,KC,...,remainder) so no block is tiny.
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
// for a panel `width` wide. The loop runs along source rows (k outer, slivers inner) so reads are
// sequential and hardware-prefetched; going sliver by sliver instead would read a 64-128 byte
// piece of each of kc rows far apart, missing the cache on every row.
template <typename T, int W>
FIT_GEMM_INLINE void packCopyPanel(const T* __restrict src, int64_t ld, int64_t width, int64_t kc,
                                   T* __restrict dst) {
  const int64_t full = width / W;
  const int rem = static_cast<int>(width - full * W);
#ifdef FIT_CHUNK
  for (int64_t k0 = 0; k0 < kc; k0 += FIT_CHUNK) {
    const int64_t k1 = std::min<int64_t>(kc, k0 + FIT_CHUNK);
    for (int64_t sl = 0; sl < full; ++sl)
      for (int64_t k = k0; k < k1; ++k)
        std::memcpy(dst + sl * kc * W + k * W, src + k * ld + sl * W, sizeof(T) * W);
  }
  if (rem)
  for (int64_t k = 0; k < kc; ++k) {
    const T* s = src + k * ld;
    T* d = dst + k * W;
#else
  for (int64_t k = 0; k < kc; ++k) {
    const T* s = src + k * ld;
    T* d = dst + k * W;
    // A constant-size memcpy becomes a few vector moves for the caller's ISA (a plain loop may be
    // turned into a memmove call).
    for (int64_t sl = 0; sl < full; ++sl) std::memcpy(d + sl * kc * W, s + sl * W, sizeof(T) * W);
#endif
    if (rem) {
      T* e = d + full * kc * W;
      for (int r = 0; r < W; ++r) e[r] = r < rem ? s[full * W + r] : T(0);
    }
  }
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
#ifdef FIT_PF_T
      if ((k & 15) == 0)
        for (int r = 0; r < W; ++r)
          _mm_prefetch(reinterpret_cast<const char*>(s + r * ld + k + FIT_PF_T), _MM_HINT_T0);
#endif
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
template <typename T, int MR, int NR, int64_t MC, int64_t KC, int64_t NC, bool kAInL1 = false, class Ukr>
FIT_GEMM_INLINE void gemmBlocked(const GemmArgs<T>& g, Ukr ukr) {
  const int64_t kcMax = balancedBlock(g.K, KC, 4);
  const int64_t mcMax = balancedBlock(g.M, MC, MR);
  const int64_t ncMax = std::min<int64_t>(NC, (g.N + NR - 1) / NR * NR);
  T* Ap = static_cast<T*>(gemmScratch(0, sizeof(T) * static_cast<size_t>(mcMax * kcMax)));
  T* Bp = static_cast<T*>(gemmScratch(1, sizeof(T) * static_cast<size_t>(ncMax * kcMax)));

  for (int64_t jc = 0; jc < g.N; jc += NC) {
    const int64_t nc = std::min<int64_t>(NC, g.N - jc);
    for (int64_t pc = 0; pc < g.K; pc += kcMax) {
      const int64_t kc = std::min<int64_t>(kcMax, g.K - pc);
      const T beta = pc == 0 ? g.beta : T(1);
      packB<T, NR>(g, pc, jc, kc, nc, Bp);
      for (int64_t ic = 0; ic < g.M; ic += mcMax) {
        const int64_t mc = std::min<int64_t>(mcMax, g.M - ic);
        packA<T, MR>(g, ic, pc, mc, kc, Ap);
        if (kAInL1) {
          for (int64_t ir = 0; ir < mc; ir += MR) {
            const int m = static_cast<int>(std::min<int64_t>(MR, mc - ir));
            const T* ap = Ap + ir * kc;
            T* cRow = g.C + (ic + ir) * g.ldc + jc;
            for (int64_t jr = 0; jr < nc; jr += NR) {
              const int n = static_cast<int>(std::min<int64_t>(NR, nc - jr));
              ukr(kc, ap, Bp + jr * kc, cRow + jr, g.ldc, g.alpha, beta, m, n);
            }
          }
        } else {
        for (int64_t jr = 0; jr < nc; jr += NR) {
          const int n = static_cast<int>(std::min<int64_t>(NR, nc - jr));
          const T* bp = Bp + jr * kc;
          T* cCol = g.C + ic * g.ldc + jc + jr;
          for (int64_t ir = 0; ir < mc; ir += MR) {
            const int m = static_cast<int>(std::min<int64_t>(MR, mc - ir));
            ukr(kc, Ap + ir * kc, bp, cCol + ir * g.ldc, g.ldc, g.alpha, beta, m, n);
          }
        }
        }
      }
    }
  }
}

// Generic register-tile micro-kernel in plain C++ (the compiler vectorizes the j loops for
// whatever ISA the including function is compiled for). Also used for edge-free double GEMM.
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

// Dot product. With GCC/Clang, written on 32-byte generic vectors with 4 independent
// accumulators, which the compiler maps onto the including function's ISA (ymm under AVX2/AVX-512,
// xmm pairs under SSE2, NEON on ARM); plain loops over partial sums vectorize poorly here.
template <typename T>
FIT_GEMM_INLINE T dot(const T* __restrict x, const T* __restrict y, int64_t n) {
  int64_t k = 0;
  T r = T(0);
#if defined(__GNUC__) || defined(__clang__)
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

}  // namespace
}  // namespace cpu
}  // namespace kernels
}  // namespace fit
