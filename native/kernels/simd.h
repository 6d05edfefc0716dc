// Function multiversioning for hot loops outside the GEMM paths (elementwise ops, depthwise
// convolution, im2col): FIT_SIMD_CLONES on a function (template or not) makes the compiler emit an
// x86-64-v4 (AVX-512), an x86-64-v3 (AVX2/FMA) and a baseline copy, picked once at load time by an
// ifunc resolver from the CPU's features. The build itself stays at the baseline ISA, so the binary
// runs on any x86-64. Elsewhere (other compilers, non-ELF targets, other architectures) the macro
// is empty and the baseline code is used.
//
// Clone whole loops, never small per-element helpers: a multiversioned function is not inlined.
#pragma once

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__ELF__) && \
    !defined(FIT_KERNELS_NO_SIMD) && __GNUC__ >= 11
#define FIT_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FIT_SIMD_CLONES
#endif

#include <cstdint>
#include <cstring>

#if defined(__GNUC__) || defined(__clang__)
// Passing 64-byte vectors between functions compiled for different ISAs would change the ABI; the
// helpers below are always inlined into the clone that uses them, so GCC's note does not apply.
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
#define FIT_SIMD_INLINE inline __attribute__((always_inline))
#define FIT_SIMD_VECTOR_EXT 1
#else
#define FIT_SIMD_INLINE inline
#define FIT_SIMD_VECTOR_EXT 0
#endif

namespace fit {
namespace simd {

// 64-byte vectors of T: GCC/Clang vector extensions (one AVX-512 register, two AVX2 or four SSE
// registers, whichever the clone compiles for); elsewhere a plain array with the same operators.
template <typename T> constexpr int64_t kLanes = 64 / sizeof(T);
#if FIT_SIMD_VECTOR_EXT
template <typename T> struct VT;
template <> struct VT<float> { typedef float V __attribute__((vector_size(64))); };
template <> struct VT<double> { typedef double V __attribute__((vector_size(64))); };
template <typename T> using Vec = typename VT<T>::V;
// Integer vectors with the lanes of Vec<T>: shuffle masks (__builtin_shuffle) and comparisons.
template <typename T> struct IT;
template <> struct IT<float> { typedef int32_t I __attribute__((vector_size(64))); };
template <> struct IT<double> { typedef int64_t I __attribute__((vector_size(64))); };
template <typename T> using Idx = typename IT<T>::I;
#else
template <typename T>
struct alignas(64) Vec {
  T v[kLanes<T>] = {};
  T operator[](int64_t i) const { return v[i]; }
  Vec& operator+=(const Vec& o) {
    for (int64_t i = 0; i < kLanes<T>; ++i) v[i] += o.v[i];
    return *this;
  }
  friend Vec operator*(const Vec& a, const Vec& b) {
    Vec r;
    for (int64_t i = 0; i < kLanes<T>; ++i) r.v[i] = a.v[i] * b.v[i];
    return r;
  }
  friend Vec operator*(T a, const Vec& b) {
    Vec r;
    for (int64_t i = 0; i < kLanes<T>; ++i) r.v[i] = a * b.v[i];
    return r;
  }
};
#endif

template <typename T>
FIT_SIMD_INLINE Vec<T> load(const T* p) {
  Vec<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename T>
FIT_SIMD_INLINE void store(T* p, Vec<T> v) {
  std::memcpy(p, &v, sizeof v);
}
// Every lane = v.
template <typename T>
FIT_SIMD_INLINE Vec<T> splat(T v) {
  T lanes[kLanes<T>];
  for (int64_t i = 0; i < kLanes<T>; ++i) lanes[i] = v;
  return load(lanes);
}

// v rounded up to a multiple of m (m > 0).
inline int64_t roundUp(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

}  // namespace simd
}  // namespace fit
