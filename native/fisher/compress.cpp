#include "compress.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace fit::compress {

int64_t pruneCount(double level, int64_t total) {
  if (!(level > 0)) return 0;
  const double k = std::floor(level * static_cast<double>(total));
  if (k >= static_cast<double>(total)) return total;
  return static_cast<int64_t>(k);
}

PruneOrder globalOrder(const std::vector<LayerView>& layers) {
  PruneOrder order;
  order.offsets.resize(layers.size() + 1, 0);
  for (size_t l = 0; l < layers.size(); ++l) order.offsets[l + 1] = order.offsets[l] + layers[l].n;
  const int64_t n = order.total();
  if (n > static_cast<int64_t>(UINT32_MAX)) throw std::length_error("more than 2^32 - 1 weights to rank");
  // LSD radix sort of (importance bits, flat index): for finite importances >= 0 (the host
  // validates weights and Fisher) the IEEE bit pattern orders like the value, and a stable sort
  // from the flat index order breaks ties by (layer, element). O(N), four 16-bit passes.
  struct Key {
    uint64_t bits;
    uint32_t at;
  };
  std::vector<Key> keys(static_cast<size_t>(n)), tmp(static_cast<size_t>(n));
  for (size_t l = 0; l < layers.size(); ++l) {
    const LayerView& v = layers[l];
    const int64_t off = order.offsets[l];
    for (int64_t j = 0; j < v.n; ++j) {
      double imp = importanceOf(v.w[j], v.f[j]);
      if (imp == 0) imp = 0;  // a Fisher value of -0 gives -0, which must order as +0
      uint64_t b;
      std::memcpy(&b, &imp, sizeof b);
      keys[off + j] = {b, static_cast<uint32_t>(off + j)};
    }
  }
  std::vector<size_t> count(65537);
  for (int pass = 0; pass < 4; ++pass) {
    const int shift = 16 * pass;
    std::fill(count.begin(), count.end(), 0);
    for (const Key& k : keys) ++count[((k.bits >> shift) & 0xffff) + 1];
    if (count[(((keys.empty() ? 0 : keys[0].bits) >> shift) & 0xffff) + 1] == keys.size()) continue;  // one digit: no-op
    for (size_t d = 1; d < count.size(); ++d) count[d] += count[d - 1];
    for (const Key& k : keys) tmp[count[(k.bits >> shift) & 0xffff]++] = k;
    keys.swap(tmp);
  }
  order.rank.resize(static_cast<size_t>(n));
  for (size_t r = 0; r < keys.size(); ++r) order.rank[keys[r].at] = static_cast<uint32_t>(r);
  return order;
}

int64_t maskOf(const PruneOrder& order, size_t layer, int64_t k, uint8_t* out) {
  const int64_t begin = order.offsets[layer], end = order.offsets[layer + 1];
  const uint32_t* r = order.rank.data() + begin;
  int64_t kept = 0;
  for (int64_t j = 0; j < end - begin; ++j) {
    const bool keep = static_cast<int64_t>(r[j]) >= k;
    out[j] = keep ? 1 : 0;
    kept += keep;
  }
  return kept;
}

float scaleOf(double maxAbsKept, int bits) {
  if (bits >= kFloatBits || !(maxAbsKept > 0)) return 1.0f;
  return static_cast<float>(maxAbsKept / qmaxOf(bits));
}

float quantizeMasked(const float* w, const uint8_t* keep, int64_t n, int bits, float* out) {
  double amax = 0;
  for (int64_t j = 0; j < n; ++j)
    if (!keep || keep[j]) amax = std::max(amax, std::fabs(static_cast<double>(w[j])));
  const float scale = scaleOf(amax, bits);
  const double qmax = qmaxOf(std::min(bits, 31));
  const bool isFloat = bits >= kFloatBits;
  for (int64_t j = 0; j < n; ++j) out[j] = (!keep || keep[j]) ? quantizeOne(w[j], scale, qmax, isFloat) : 0.0f;
  return scale;
}

double measuredFit(const float* a, const float* b, const double* f, int64_t n) {
  double acc = 0;
  for (int64_t j = 0; j < n; ++j) {
    const double d = static_cast<double>(a[j]) - static_cast<double>(b[j]);
    acc += f[j] * (d * d);
  }
  return acc;
}

double compressionRatio(const std::vector<double>& nnz, const std::vector<int>& bits, const std::vector<double>& counts) {
  double num = 0, den = 0;
  for (size_t l = 0; l < nnz.size(); ++l) {
    num += nnz[l] * static_cast<double>(bits[l]);
    den += counts[l];
  }
  return den > 0 ? num / (32.0 * den) : 0.0;
}

}  // namespace fit::compress
