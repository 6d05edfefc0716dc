// The compute primitives every op is built from. One interface; the CPU backend lives in cpu/
// (runtime-dispatched AVX2/FMA with a portable fallback); a CUDA backend can implement the same
// functions later. All matrices are row-major.
#pragma once

#include <cstdint>

namespace fit {
namespace kernels {

// C[M x N] = alpha * op(A) * op(B) + beta * C, where op(A) is M x K and op(B) is K x N.
// lda/ldb/ldc are the row strides of A, B, C as stored (A is K x M when transA).
// beta == 0 means C is write-only (its old contents, even NaN, are ignored).
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
          int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc);

// N-d im2col for one image of a convolution: img is [C, in_0, ..., in_{d-1}], col is
// [C * k_0 * ... * k_{d-1}, out_0 * ... * out_{d-1}]. padBegin gives the leading pads; samples
// outside the image are 0.
template <typename T>
void im2col(const T* img, int64_t channels, int nd, const int64_t* inShape, const int64_t* kernel,
            const int64_t* stride, const int64_t* dilation, const int64_t* padBegin,
            const int64_t* outShape, T* col);

// The adjoint of im2col: accumulates col into img (img is not cleared first).
template <typename T>
void col2im(const T* col, int64_t channels, int nd, const int64_t* inShape, const int64_t* kernel,
            const int64_t* stride, const int64_t* dilation, const int64_t* padBegin,
            const int64_t* outShape, T* img);

// Smallest and largest value of x[0, n), NaNs skipped (+inf / -inf when there is no other value).
template <typename T>
void minMax(const T* x, int64_t n, double& lo, double& hi);

// out[r] = sum_k x[r * per + k]^2, accumulated in double, for rows r < rows.
template <typename T>
void rowSquares(const T* x, int64_t rows, int64_t per, double* out);

// Folds one sample's weight gradient G[0, n) into the per-sample squares and the total:
// sq += G^2, dw += G (either may be null).
template <typename T>
void foldSquares(const T* G, int64_t n, T* dw, T* sq);

// acc[i] += scale * x[i] in double for i < n; returns the sum of what was added.
template <typename T>
double accumulateScaled(const T* x, int64_t n, double scale, double* acc);

// CPU feature detection and the name of the SGEMM path in use ("avx2-fma" or "portable").
bool cpuHasAvx2Fma();
const char* gemmPath();
// Forces the portable path (tests compare both paths); returns the previous setting.
bool forcePortableGemm(bool force);

}  // namespace kernels
}  // namespace fit
