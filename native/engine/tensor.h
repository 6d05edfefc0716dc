// Tensors of the engine: a dtype, dims and a pointer to data that is either owned (aligned heap
// block) or borrowed (weights handed in by the host, used in place). Plain C++17, no Node headers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "errors.h"

namespace fit {

enum class DType : int { F32 = 0, F64 = 1, I64 = 2 };

inline size_t dtypeSize(DType t) { return t == DType::F32 ? 4 : 8; }
inline const char* dtypeName(DType t) {
  return t == DType::F32 ? "float32" : t == DType::F64 ? "float64" : "int64";
}

template <typename T> struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::F32; };
template <> struct DTypeOf<double> { static constexpr DType value = DType::F64; };
template <> struct DTypeOf<int64_t> { static constexpr DType value = DType::I64; };

using Dims = std::vector<int64_t>;

inline int64_t numelOf(const Dims& d) {
  int64_t n = 1;
  for (int64_t v : d) n *= v;
  return n;
}

std::string dimsToString(const Dims& d);

// 64-byte aligned, uninitialised storage.
std::shared_ptr<void> allocAligned(size_t bytes);

// Engine memory of the whole process (all engines and worker threads share one block cache), in
// bytes of size-classed blocks: inUse is held by live tensors and scratch arenas, peak the largest
// inUse since the last reset, cached the freed blocks kept for reuse. resetPeak sets peak = inUse.
struct MemoryStats {
  size_t inUse = 0, peak = 0, cached = 0;
};
MemoryStats memoryStats(bool resetPeak = false);

struct Tensor {
  DType dtype = DType::F32;
  Dims dims;
  void* ptr = nullptr;          // the data (owned through `hold`, or borrowed)
  std::shared_ptr<void> hold;   // empty when borrowed

  int64_t numel() const { return numelOf(dims); }
  int rank() const { return static_cast<int>(dims.size()); }
  size_t bytes() const { return static_cast<size_t>(numel()) * dtypeSize(dtype); }
  bool empty() const { return ptr == nullptr && numel() != 0; }

  template <typename T> T* data() {
    checkType(DTypeOf<T>::value);
    return static_cast<T*>(ptr);
  }
  template <typename T> const T* data() const {
    checkType(DTypeOf<T>::value);
    return static_cast<const T*>(ptr);
  }
  // Reads element i of an integer or float tensor as int64 (used for shape-like operands).
  int64_t intAt(int64_t i) const;
  std::vector<int64_t> toInts() const;

  // Allocates owned storage for `dims` (contents undefined).
  static Tensor make(DType t, const Dims& dims);
  static Tensor zeros(DType t, const Dims& dims);
  static Tensor borrow(DType t, const Dims& dims, void* data);
  // Same storage, other dims (numel must match).
  Tensor reshaped(const Dims& d) const;

 private:
  void checkType(DType want) const {
    if (want != dtype)
      throw EngineError(ErrorCode::Internal, std::string("tensor holds ") + dtypeName(dtype) +
                                                 " but was read as " + dtypeName(want));
  }
};

// Row-major strides of dims.
Dims stridesOf(const Dims& d);

}  // namespace fit
