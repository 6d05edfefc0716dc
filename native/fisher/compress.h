// FITCompress kernels (DESIGN.md "Numerical contract"), over all quantizable weights at once:
// Fisher-weighted importance, a global pruning order, masks at a pruning level, quantization after
// masking, measured FIT and the compression ratio. Plain C++17: no Node headers.
//
// Conventions:
// - importance_j = F_jj * w_j^2, in double.
// - The global order sorts every weight of every layer ascending by (importance, layer index,
//   element index); the weight's position in it is its rank. A pruning level p prunes the
//   k = floor(p * N) weights of lowest rank, so a weight survives level p iff rank >= k.
// - Quantization after masking: w'_j = keep_j ? Q_b(w_j) : 0 with Q_b symmetric per tensor,
//   Delta = fround(max|w_kept| / (2^(b-1) - 1)) (float32, as the exported scale; 1 when nothing
//   survives), q = clamp(rint(fround(w / Delta)), +-(2^(b-1) - 1)) rounding half to even,
//   w' = fround(q * Delta) — bit for bit the quantizer of src/onnx/quantize.ts. b = 32 is float.
// - Sums accumulate in double in element order.
#pragma once

#include <atomic>
#include <cmath>
#include <cstdint>
#include <vector>

#if defined(__FAST_MATH__)
#error "native/fisher/compress.h rounds with IEEE arithmetic; do not build it with -ffast-math"
#endif

namespace fit::compress {

/** Bits meaning "leave in float". */
constexpr int kFloatBits = 32;

/** One layer's weight and Fisher diagonal (same length). */
struct LayerView {
  const float* w = nullptr;
  const double* f = nullptr;
  int64_t n = 0;
};

inline double importanceOf(float w, double f) {
  const double x = static_cast<double>(w);
  return f * (x * x);
}

/** k = floor(level * total), clamped to [0, total]. */
int64_t pruneCount(double level, int64_t total);

/** The global pruning order of a weight set: every weight's rank, flat over layers. */
struct PruneOrder {
  std::vector<int64_t> offsets;  // layer l occupies [offsets[l], offsets[l+1]) of the flat index
  std::vector<uint32_t> rank;    // rank of each flat index
  int64_t total() const { return offsets.empty() ? 0 : offsets.back(); }
};

/** Ranks once: an O(N) radix sort. Ranks fit in uint32 (throws std::length_error beyond 2^32 - 1 weights). */
PruneOrder globalOrder(const std::vector<LayerView>& layers);

/** out[j] = 1 if element j of `layer` survives k pruned weights, else 0. Returns the survivors. */
int64_t maskOf(const PruneOrder& order, size_t layer, int64_t k, uint8_t* out);

/** Symmetric per-tensor scale (float32) of the kept weights at `bits` (1 for float or no survivor). */
float scaleOf(double maxAbsKept, int bits);

inline double qmaxOf(int bits) { return std::ldexp(1.0, bits - 1) - 1.0; }

/** Q_b of one kept weight with a given scale; bits == kFloatBits returns w. */
inline float quantizeOne(float w, float scale, double qmax, bool isFloat) {
  if (isFloat) return w;
  double r = static_cast<double>(static_cast<float>(static_cast<double>(w) / static_cast<double>(scale)));
  if (r > qmax) r = qmax;  // clamping before rounding is the same (qmax is an integer) and keeps |r| small
  if (r < -qmax) r = -qmax;
  // Round half to even without a libm call: for |r| < 2^51, adding and subtracting 1.5 * 2^52
  // rounds r to an integer in the default rounding mode (needs strict IEEE: see the guard above).
  constexpr double kMagic = 6755399441055744.0;
  const double q = std::copysign((r + kMagic) - kMagic, r);  // -0 like rint for -0.5 <= r < 0
  return static_cast<float>(q * static_cast<double>(scale));
}

/**
 * Quantize after masking: out[j] = keep[j] ? Q_b(w[j]) : 0, Delta from the kept weights only.
 * Returns the scale. `keep` may be null (everything kept).
 */
float quantizeMasked(const float* w, const uint8_t* keep, int64_t n, int bits, float* out);

/** sum_j f_j (a_j - b_j)^2 in double. */
double measuredFit(const float* a, const float* b, const double* f, int64_t n);

/** sum_l nnz_l * b_l / 8 / sum_l 4 n_l, computed as (sum nnz_l b_l) / (32 sum n_l). */
double compressionRatio(const std::vector<double>& nnz, const std::vector<int>& bits, const std::vector<double>& counts);

}  // namespace fit::compress
