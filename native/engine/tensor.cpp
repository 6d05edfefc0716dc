#include "tensor.h"

#include <cstdlib>
#include <cstring>

namespace fit {

std::string dimsToString(const Dims& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(d[i]);
  }
  return s + "]";
}

std::shared_ptr<void> allocAligned(size_t bytes) {
  size_t rounded = ((bytes + 63) / 64) * 64;
  if (rounded == 0) rounded = 64;
  void* p = std::aligned_alloc(64, rounded);
  if (!p) throw EngineError(ErrorCode::Internal, "out of memory allocating " + std::to_string(bytes) + " bytes");
  return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
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
