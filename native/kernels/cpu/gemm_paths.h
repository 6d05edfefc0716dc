// Internal to the CPU backend: the GEMM code paths and the run-time choice between them.
// backend.h is the public interface; tests and benchmarks may include this to pin a path.
#pragma once

#include "gemm_driver.h"
#include "gemm_small.h"

namespace fit {
namespace kernels {
namespace cpu {

// SGEMM instruction-set tiers, in increasing order. Each tier is compiled into the same binary
// (via __attribute__((target(...))) on its functions) and chosen at run time.
enum class Isa : int { Portable = 0, Avx2Fma = 1, Avx512 = 2 };

// The best tier this CPU (and OS) supports and this build contains.
Isa bestIsa();
// Caps the tier used by gemm() (the result is min(bestIsa(), cap)); returns the previous cap.
// forcePortableGemm(true) is capIsa(Isa::Portable); the default cap is Isa::Avx512.
Isa capIsa(Isa cap);
// The tier gemm() uses now.
Isa activeIsa();
const char* isaName(Isa isa);

// Path entry points. Preconditions: M, N, K > 0 and alpha != 0 (gemm() handles the rest).
void sgemmPortable(const GemmArgs<float>& g);
void dgemmPortable(const GemmArgs<double>& g);
#if FIT_KERNELS_X86
void sgemmAvx2(const GemmArgs<float>& g);
void dgemmAvx2(const GemmArgs<double>& g);
void sgemmAvx512(const GemmArgs<float>& g);
#endif

}  // namespace cpu
}  // namespace kernels
}  // namespace fit
