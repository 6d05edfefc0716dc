// GEMM entry points of the CPU backend: argument handling, run-time path selection, the
// thread_local packing scratch, and the portable (any-CPU) blocked paths.
//
// Paths (see gemm_paths.h): portable C++ (this file, compiled for the baseline ISA and left to
// the auto-vectorizer), AVX2+FMA (gemm_avx2.cpp) and AVX-512F (gemm_avx512.cpp), the last two
// compiled through __attribute__((target(...))) so no per-file compiler flags are needed. The
// blocking scheme itself is described in gemm_driver.h.
#include <algorithm>
#include <atomic>
#include <new>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

#include "../backend.h"
#include "gemm_paths.h"

namespace fit {
namespace kernels {
namespace cpu {

// ---- thread_local scratch -------------------------------------------------------------------

namespace {
struct Scratch {
  void* p[4] = {};
  size_t cap[4] = {};
  ~Scratch() {
    for (void* q : p)
      if (q) ::operator delete(q, std::align_val_t(64));
  }
};
thread_local Scratch tlsScratch;
}  // namespace

void* gemmScratch(int slot, size_t bytes) {
  Scratch& s = tlsScratch;
  if (bytes > s.cap[slot]) {
    // Grow geometrically so a sequence of slightly larger calls does not reallocate each time.
    size_t want = (std::max(bytes, s.cap[slot] + s.cap[slot] / 2) + 63) / 64 * 64;
    if (s.p[slot]) ::operator delete(s.p[slot], std::align_val_t(64));
    s.p[slot] = nullptr;
    s.cap[slot] = 0;
    s.p[slot] = ::operator new(want, std::align_val_t(64));
    s.cap[slot] = want;
  }
  return s.p[slot];
}

size_t l2CacheBytes() {
  static const size_t bytes = [] {
    long v = 0;
#if defined(_SC_LEVEL2_CACHE_SIZE)
    v = sysconf(_SC_LEVEL2_CACHE_SIZE);  // glibc; 0 or -1 when unknown
#endif
    size_t b = v > 0 ? static_cast<size_t>(v) : size_t(1) << 20;
    return std::min<size_t>(std::max<size_t>(b, size_t(256) << 10), size_t(4) << 20);
  }();
  return bytes;
}

// ---- path selection -------------------------------------------------------------------------

Isa bestIsa() {
  static const Isa best = [] {
#if FIT_KERNELS_X86
    __builtin_cpu_init();
    // __builtin_cpu_supports also checks that the OS saves the YMM/ZMM state (XCR0).
    bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (avx2 && __builtin_cpu_supports("avx512f")) return Isa::Avx512;
    if (avx2) return Isa::Avx2Fma;
#endif
    return Isa::Portable;
  }();
  return best;
}

namespace {
std::atomic<int> isaCap{static_cast<int>(Isa::Avx512)};
}

Isa capIsa(Isa cap) { return static_cast<Isa>(isaCap.exchange(static_cast<int>(cap))); }

Isa activeIsa() {
  return static_cast<Isa>(
      std::min(static_cast<int>(bestIsa()), isaCap.load(std::memory_order_relaxed)));
}

const char* isaName(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512f";
    case Isa::Avx2Fma: return "avx2-fma";
    default: return "portable";
  }
}

// ---- portable paths ---------------------------------------------------------------------------

// Register tiles sized for 16 128-bit registers (SSE2 / NEON): 8 accumulators + operands.
// A * B^T with up to kSmallM rows uses dot-product tiles (gemm_small.h), measured faster here.
constexpr int64_t kSmallM = 16;

void sgemmPortable(const GemmArgs<float>& g) {
  if (gemvCases(g)) return;
  if (smallMTransB<float, 2, 4, GenericDotTile<float, 16, 2, 4>>(g, kSmallM)) return;
  gemmBlocked<float, 4, 8, 128, 256>(g, microKernelGeneric<float, 4, 8>);
}

void dgemmPortable(const GemmArgs<double>& g) {
  if (gemvCases(g)) return;
  if (smallMTransB<double, 2, 4, GenericDotTile<double, 16, 2, 4>>(g, kSmallM)) return;
  gemmBlocked<double, 4, 4, 96, 256>(g, microKernelGeneric<double, 4, 4>);
}

}  // namespace cpu

// ---- public interface ---------------------------------------------------------------------------

namespace {
template <typename T>
bool trivialCases(int64_t M, int64_t N, int64_t K, T alpha, T beta, T* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return true;
  if (K <= 0 || alpha == T(0)) {
    cpu::scaleC<T>(M, N, beta, C, ldc);
    return true;
  }
  return false;
}
}  // namespace

void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (trivialCases(M, N, K, alpha, beta, C, ldc)) return;
  const cpu::GemmArgs<float> g{transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc};
  switch (cpu::activeIsa()) {
#if FIT_KERNELS_X86
    case cpu::Isa::Avx512: cpu::sgemmAvx512(g); return;
    case cpu::Isa::Avx2Fma: cpu::sgemmAvx2(g); return;
#endif
    default: cpu::sgemmPortable(g); return;
  }
}

void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
          int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  if (trivialCases(M, N, K, alpha, beta, C, ldc)) return;
  const cpu::GemmArgs<double> g{transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc};
#if FIT_KERNELS_X86
  if (cpu::activeIsa() >= cpu::Isa::Avx2Fma) {
    cpu::dgemmAvx2(g);
    return;
  }
#endif
  cpu::dgemmPortable(g);
}

bool cpuHasAvx2Fma() { return cpu::bestIsa() >= cpu::Isa::Avx2Fma; }

const char* gemmPath() { return cpu::isaName(cpu::activeIsa()); }

bool forcePortableGemm(bool force) {
  return cpu::capIsa(force ? cpu::Isa::Portable : cpu::Isa::Avx512) == cpu::Isa::Portable;
}

}  // namespace kernels
}  // namespace fit
