#include "tensor.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

namespace fit {

std::string dimsToString(const Dims& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(d[i]);
  }
  return s + "]";
}

namespace {

// A process-wide cache of freed tensor blocks, by size class. Every run of a model allocates the
// same sizes again; reusing blocks avoids the page faults and trims of fresh large allocations
// (which cost more than small ops themselves). Size classes grow by 2^(1/4) (<= 19% slack).
class BlockCache {
 public:
  // Blocks that were not in the cache (printed by FIT_PROFILE); atomic: workers share the cache.
  std::atomic<size_t> freshBytes{0}, freshCount{0};
  // Bytes of blocks handed out and not yet given back (tensors and scratch arenas of every engine
  // in the process), and the largest value since the last resetPeak (memoryStats).
  std::atomic<size_t> inUse{0}, peak{0};
  void noteTaken(size_t size) {
    const size_t now = inUse.fetch_add(size, std::memory_order_relaxed) + size;
    size_t p = peak.load(std::memory_order_relaxed);
    while (now > p && !peak.compare_exchange_weak(p, now, std::memory_order_relaxed)) {
    }
  }
  size_t cachedBytes() {
    std::lock_guard<std::mutex> lock(mu_);
    return cached_;
  }
  static BlockCache& get() {
    static BlockCache* cache = new BlockCache();  // never destroyed: blocks may be freed at exit
    return *cache;
  }
  static size_t classSize(size_t bytes) {
    if (bytes <= 4096) return ((bytes + 63) / 64) * 64;
    const double k = std::ceil(4.0 * std::log2(static_cast<double>(bytes)));
    size_t size = static_cast<size_t>(std::ceil(std::exp2(k / 4.0)));
    return ((size + 4095) / 4096) * 4096;
  }
  void* take(size_t size) {
    noteTaken(size);
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(size);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= size;
        return p;
      }
    }
    freshBytes.fetch_add(size, std::memory_order_relaxed);
    freshCount.fetch_add(1, std::memory_order_relaxed);
    void* p = std::aligned_alloc(64, size);
    if (!p) inUse.fetch_sub(size, std::memory_order_relaxed);
    if (!p) throw EngineError(ErrorCode::Internal, "out of memory allocating " + std::to_string(size) + " bytes");
    return p;
  }
  void give(void* p, size_t size) {
    inUse.fetch_sub(size, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(mu_);
    if (cached_ + size > kMaxCached) {
      std::free(p);
      return;
    }
    free_[size].push_back(p);
    cached_ += size;
  }

 private:
  static constexpr size_t kMaxCached = size_t(512) << 20;
  std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0;
};

}  // namespace

// Fresh (uncached) allocations so far, for FIT_PROFILE (declared where used, in backward.cpp).
void allocStats(size_t& freshBytes, size_t& freshCount) {
  freshBytes = BlockCache::get().freshBytes.load(std::memory_order_relaxed);
  freshCount = BlockCache::get().freshCount.load(std::memory_order_relaxed);
}

MemoryStats memoryStats(bool resetPeak) {
  BlockCache& c = BlockCache::get();
  MemoryStats m;
  m.inUse = c.inUse.load(std::memory_order_relaxed);
  m.peak = std::max(c.peak.load(std::memory_order_relaxed), m.inUse);
  m.cached = c.cachedBytes();
  if (resetPeak) c.peak.store(m.inUse, std::memory_order_relaxed);
  return m;
}

std::shared_ptr<void> allocAligned(size_t bytes) {
  const size_t size = BlockCache::classSize(bytes == 0 ? 64 : bytes);
  void* p = BlockCache::get().take(size);
  return std::shared_ptr<void>(p, [size](void* q) { BlockCache::get().give(q, size); });
}

Dims stridesOf(const Dims& d) {
  Dims s(d.size(), 1);
  for (int i = static_cast<int>(d.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * d[i + 1];
  return s;
}

int64_t Tensor::intAt(int64_t i) const {
  switch (dtype) {
    case DType::I64: return static_cast<const int64_t*>(ptr)[i];
    case DType::F32: return static_cast<int64_t>(static_cast<const float*>(ptr)[i]);
    case DType::F64: return static_cast<int64_t>(static_cast<const double*>(ptr)[i]);
  }
  return 0;
}

std::vector<int64_t> Tensor::toInts() const {
  std::vector<int64_t> v(static_cast<size_t>(numel()));
  for (int64_t i = 0; i < numel(); ++i) v[i] = intAt(i);
  return v;
}

Tensor Tensor::make(DType t, const Dims& dims) {
  for (int64_t d : dims)
    if (d < 0) throw EngineError(ErrorCode::ShapeMismatch, "negative dimension in " + dimsToString(dims));
  Tensor x;
  x.dtype = t;
  x.dims = dims;
  x.hold = allocAligned(static_cast<size_t>(numelOf(dims)) * dtypeSize(t));
  x.ptr = x.hold.get();
  return x;
}

Tensor Tensor::zeros(DType t, const Dims& dims) {
  Tensor x = make(t, dims);
  std::memset(x.ptr, 0, x.bytes());
  return x;
}

Tensor Tensor::borrow(DType t, const Dims& dims, void* data) {
  Tensor x;
  x.dtype = t;
  x.dims = dims;
  x.ptr = data;
  return x;
}

Tensor Tensor::reshaped(const Dims& d) const {
  if (numelOf(d) != numel())
    throw EngineError(ErrorCode::ShapeMismatch,
                      "cannot view " + dimsToString(dims) + " as " + dimsToString(d));
  Tensor x = *this;
  x.dims = d;
  return x;
}

}  // namespace fit
