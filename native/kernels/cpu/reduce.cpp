// Reductions that run once per batch of the Fisher pass: ranges for activation quantization,
// per-sample sums of squared layer-input gradients, the weight Fisher diagonal's accumulation, and
// the folding of one sample's weight gradient into per-sample squares. Written with
// independent partial results so they vectorize (FIT_SIMD_CLONES): a single running min / max or
// double sum is a serial chain of 4-cycle operations, and on PP-OCR cls these two loops took over a
// third of a Fisher batch.
#include <cmath>
#include <limits>

#include "../backend.h"
#include "../simd.h"

namespace fit {
namespace kernels {
namespace {

constexpr int kParts = 16;

template <typename T>
FIT_SIMD_CLONES void minMaxImpl(const T* __restrict x, int64_t n, T* lo, T* hi) {
  constexpr T inf = std::numeric_limits<T>::infinity();
  T a = inf, b = -inf;
  int64_t i = 0;
#if defined(__GNUC__) && !defined(__clang__) && FIT_SIMD_VECTOR_EXT
  constexpr int64_t V = simd::kLanes<T>;
  if (n >= 2 * V) {  // partial results in vectors: 64-byte lanes, two of each for two chains
    simd::Vec<T> l0 = simd::splat(inf), l1 = l0, h0 = simd::splat(-inf), h1 = h0;
    for (; i + 2 * V <= n; i += 2 * V) {
      const simd::Vec<T> v0 = simd::load(x + i), v1 = simd::load(x + i + V);
      l0 = v0 < l0 ? v0 : l0, l1 = v1 < l1 ? v1 : l1;  // a NaN compares false and is skipped
      h0 = h0 < v0 ? v0 : h0, h1 = h1 < v1 ? v1 : h1;
    }
    for (int64_t j = 0; j < V; ++j) {
      a = l0[j] < a ? l0[j] : a, a = l1[j] < a ? l1[j] : a;
      b = b < h0[j] ? h0[j] : b, b = b < h1[j] ? h1[j] : b;
    }
  }
#endif
  T l[kParts], h[kParts];
  for (int j = 0; j < kParts; ++j) l[j] = inf, h[j] = -inf;
  for (; i + kParts <= n; i += kParts)
    for (int j = 0; j < kParts; ++j) {
      const T v = x[i + j];
      l[j] = v < l[j] ? v : l[j];  // a NaN compares false and is skipped
      h[j] = h[j] < v ? v : h[j];
    }
  for (; i < n; ++i) {
    const T v = x[i];
    a = v < a ? v : a;
    b = b < v ? v : b;
  }
  for (int j = 0; j < kParts; ++j) a = l[j] < a ? l[j] : a, b = b < h[j] ? h[j] : b;
  *lo = a, *hi = b;
}

template <typename T>
FIT_SIMD_CLONES void rowSquaresImpl(const T* __restrict x, int64_t rows, int64_t per, double* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = x + r * per;
    double part[8] = {};
    int64_t k = 0;
    for (; k + 8 <= per; k += 8)
      for (int j = 0; j < 8; ++j) part[j] += static_cast<double>(row[k + j]) * static_cast<double>(row[k + j]);
    for (; k < per; ++k) part[0] += static_cast<double>(row[k]) * static_cast<double>(row[k]);
    out[r] = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
  }
}

template <typename T>
FIT_SIMD_CLONES double accumulateScaledImpl(const T* __restrict x, int64_t n, double scale, double* __restrict acc) {
  double part[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) {
      const double v = static_cast<double>(x[i + j]) * scale;
      acc[i + j] += v;
      part[j] += v;
    }
  for (; i < n; ++i) {
    const double v = static_cast<double>(x[i]) * scale;
    acc[i] += v;
    part[0] += v;
  }
  return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}

template <typename T>
FIT_SIMD_CLONES void foldSquaresImpl(const T* __restrict G, int64_t n, T* __restrict dw, T* __restrict sq) {
  if (sq)
    for (int64_t i = 0; i < n; ++i) sq[i] += G[i] * G[i];
  if (dw)
    for (int64_t i = 0; i < n; ++i) dw[i] += G[i];
}

}  // namespace

template <typename T>
void foldSquares(const T* G, int64_t n, T* dw, T* sq) {
  foldSquaresImpl(G, n, dw, sq);
}

template <typename T>
double accumulateScaled(const T* x, int64_t n, double scale, double* acc) {
  return accumulateScaledImpl(x, n, scale, acc);
}

template <typename T>
void minMax(const T* x, int64_t n, double& lo, double& hi) {
  T l, h;
  minMaxImpl(x, n, &l, &h);
  lo = static_cast<double>(l), hi = static_cast<double>(h);
}

template <typename T>
void rowSquares(const T* x, int64_t rows, int64_t per, double* out) {
  rowSquaresImpl(x, rows, per, out);
}

template void minMax<float>(const float*, int64_t, double&, double&);
template void minMax<double>(const double*, int64_t, double&, double&);
template void foldSquares<float>(const float*, int64_t, float*, float*);
template void foldSquares<double>(const double*, int64_t, double*, double*);
template double accumulateScaled<float>(const float*, int64_t, double, double*);
template double accumulateScaled<double>(const double*, int64_t, double, double*);
template void rowSquares<float>(const float*, int64_t, int64_t, double*);
template void rowSquares<double>(const double*, int64_t, int64_t, double*);

}  // namespace kernels
}  // namespace fit
