// Direct 2-D convolution for few input channels and unit strides, forward and backward.
//
// Each input plane is copied once into a zero-padded plane of width PW = OW + (KW - 1) * dw and
// laid out flat. On that flat plane, output position o = oh * PW + ow reads input o + off(kh, kw)
// with off = kh * dh * PW + kw * dw: a convolution with unit strides is a 1-D convolution with
// KH * KW constant offsets, computed on the "padded grid" o in [0, OH * PW), where the last
// (KW - 1) * dw columns of each row are junk and dropped when the result is copied out. Loops run
// over long contiguous vectors (64-byte simd::Vec) with a block of output channels in registers, so
// a one-channel 3x3 convolution costs 9 vector FMAs per output vector and channel, not an im2col
// with 9 rows followed by a gemm too thin to run at speed.
// The backward reuses the layout: dY is written on the padded grid (junk columns zero) after a
// zero margin of at least maxoff = off(KH - 1, KW - 1), so
//   dX_pad[c][p] = sum_m sum_t W[m, c, t] * dY_grid[m][p - off(t)]    (a 1-D correlation), and
//   dW[m, c, t] = sum_o dY_grid[m][o] * X_pad[c][o + off(t)]          (dot products of rows).
// Per-sample squared weight gradients reduce each image's dot products on their own.
// Measured on the demo CNN (batch 32, one thread): see bench/ and the issue 3 notes.
#include "conv_direct.h"

#include <algorithm>
#include <cstring>

#include "../../kernels/backend.h"
#include "../../kernels/simd.h"

namespace fit {
namespace ops {
namespace {

using simd::load;
using simd::store;
using simd::Vec;
template <typename T>
constexpr int64_t kV = simd::kLanes<T>;

constexpr int64_t kMaxTaps = 49;
constexpr int64_t kGroupBytes = int64_t(512) << 10;  // images whose padded buffers are built at once

using simd::roundUp;
using simd::splat;

struct Plan {
  int64_t PH, PW, taps, maxoff;
  int64_t len;      // OH * PW, the padded output grid
  int64_t ldo;      // forward output rows, len rounded up to 2 vectors
  int64_t P;        // channel stride of the padded input planes
  int64_t p0, pn;   // input rows on the padded grid: [p0, p0 + pn)
  int64_t ldx;      // pn rounded up to 4 vectors
  int64_t Q;        // channel stride of dY on the grid (after its margin)
  int64_t margin;   // zeros before dY on the grid: maxoff rounded up to a vector (aligned rows)
  int64_t offs[kMaxTaps + 1];  // + a dummy 0 so taps pair up
};

template <typename T>
Plan planOf(const DirectGeom& g) {
  constexpr int64_t V = kV<T>;
  Plan p{};
  p.PH = g.OH + (g.KH - 1) * g.dh;
  p.PW = g.OW + (g.KW - 1) * g.dw;
  p.taps = g.KH * g.KW;
  for (int64_t kh = 0; kh < g.KH; ++kh)
    for (int64_t kw = 0; kw < g.KW; ++kw) p.offs[kh * g.KW + kw] = kh * g.dh * p.PW + kw * g.dw;
  p.offs[p.taps] = 0;
  p.maxoff = p.offs[p.taps - 1];
  p.len = g.OH * p.PW;
  p.ldo = roundUp(p.len, 2 * V);
  // padInputs writes through the last row's right pad and the next row's left pad.
  p.P = roundUp(std::max({p.PH * p.PW, p.ldo + p.maxoff, (g.pt + g.IH) * p.PW + g.pl}), V);
  p.p0 = g.pt * p.PW;
  p.pn = g.IH * p.PW;
  p.ldx = roundUp(p.pn, 4 * V);
  p.margin = roundUp(p.maxoff, V);
  p.Q = roundUp(p.margin + std::max(p.ldo, p.p0 + p.ldx), V);
  return p;
}

// Short rows (7-30 elements here) are moved with fixed-size, possibly overlapping block copies,
// which compile to a few vector moves: a memmove / memset call per row cost more than the row.
template <size_t B>
FIT_SIMD_INLINE void moveBlock(char* d, const char* s) {
  std::memcpy(d, s, B);
}
FIT_SIMD_INLINE void copyBytes(char* __restrict d, const char* __restrict s, size_t n) {
  if (n >= 64) {
    size_t i = 0;
    for (; i + 64 <= n; i += 64) moveBlock<64>(d + i, s + i);
    if (i < n) moveBlock<64>(d + n - 64, s + n - 64);
  } else if (n >= 32) {
    moveBlock<32>(d, s), moveBlock<32>(d + n - 32, s + n - 32);
  } else if (n >= 16) {
    moveBlock<16>(d, s), moveBlock<16>(d + n - 16, s + n - 16);
  } else if (n >= 8) {
    moveBlock<8>(d, s), moveBlock<8>(d + n - 8, s + n - 8);
  } else {
    for (size_t i = 0; i < n; i += 4) moveBlock<4>(d + i, s + i);  // n is 4 here (one float)
  }
}
FIT_SIMD_INLINE void zeroBytes(char* d, size_t n) {
  alignas(64) static const char zeros[64] = {};
  while (n > 64) moveBlock<64>(d, zeros), d += 64, n -= 64;
  copyBytes(d, zeros, n);
}

template <typename T>
FIT_SIMD_INLINE void zeroRange(T* a, T* b) {
  if (b > a) zeroBytes(reinterpret_cast<char*>(a), size_t(b - a) * sizeof(T));
}

// dst[0, n) = src[0, n), then zeros up to dst[total).
template <typename T>
FIT_SIMD_INLINE void copyRowZeroTail(T* __restrict dst, const T* __restrict src, int64_t n, int64_t total) {
  copyBytes(reinterpret_cast<char*>(dst), reinterpret_cast<const char*>(src), size_t(n) * sizeof(T));
  if (total > n) zeroBytes(reinterpret_cast<char*>(dst + n), size_t(total - n) * sizeof(T));
}

// Writes the padded planes of nb images, xp [nb][C][P]: zeros around each copied input plane.
template <typename T>
FIT_SIMD_CLONES void padInputs(const T* x, T* xp, int64_t nb, const DirectGeom& g, const Plan& p) {
  for (int64_t i = 0; i < nb * g.C; ++i) {
    const T* src = x + i * g.IH * g.IW;
    T* dst = xp + i * p.P;
    zeroRange(dst, dst + g.pt * p.PW + g.pl);
    for (int64_t ih = 0; ih < g.IH; ++ih)  // the row's input, its right pad and the next row's left pad
      copyRowZeroTail(dst + (g.pt + ih) * p.PW + g.pl, src + ih * g.IW, g.IW, p.PW);
    zeroRange(dst + (g.pt + g.IH) * p.PW + g.pl, dst + p.P);
  }
}

// Writes dY of nb images on the grid, dyb [nb][M][Q]: a zero margin of p.margin, the rows of dY
// with zero junk columns, zeros after.
template <typename T>
FIT_SIMD_CLONES void gridOutputs(const T* dy, T* dyb, int64_t nb, const DirectGeom& g, const Plan& p) {
  for (int64_t i = 0; i < nb * g.M; ++i) {
    const T* src = dy + i * g.OH * g.OW;
    T* dst = dyb + i * p.Q;
    zeroRange(dst, dst + p.margin);
    for (int64_t oh = 0; oh < g.OH; ++oh) copyRowZeroTail(dst + p.margin + oh * p.PW, src + oh * g.OW, g.OW, p.PW);
    zeroRange(dst + p.margin + p.len, dst + p.Q);
  }
}


// out [Mp][ldo] = bias + conv of one padded image xp [C][P]; wpk [Mp / 4][C][taps][4], bias [Mp].
template <typename T>
FIT_SIMD_CLONES void forwardGrid(const T* xp, const T* wpk, const T* bias, T* out, int64_t C, int64_t Mp,
                                 const Plan& p) {
  constexpr int64_t V = kV<T>;
  const int64_t taps = p.taps;
  for (int64_t m0 = 0; m0 < Mp; m0 += 4) {
    const T* wb = wpk + m0 * C * taps;
    for (int64_t j = 0; j < p.ldo; j += 2 * V) {
      Vec<T> a0 = splat<T>(bias[m0]), a1 = splat<T>(bias[m0 + 1]), a2 = splat<T>(bias[m0 + 2]),
             a3 = splat<T>(bias[m0 + 3]);
      Vec<T> b0 = a0, b1 = a1, b2 = a2, b3 = a3;
      for (int64_t c = 0; c < C; ++c) {
        const T* xc = xp + c * p.P + j;
        const T* wc = wb + c * taps * 4;
        for (int64_t t = 0; t < taps; ++t) {
          const Vec<T> x0 = load(xc + p.offs[t]), x1 = load(xc + p.offs[t] + V);
          const T* wt = wc + t * 4;
          a0 += wt[0] * x0, b0 += wt[0] * x1;
          a1 += wt[1] * x0, b1 += wt[1] * x1;
          a2 += wt[2] * x0, b2 += wt[2] * x1;
          a3 += wt[3] * x0, b3 += wt[3] * x1;
        }
      }
      T* o = out + m0 * p.ldo + j;
      store(o, a0), store(o + V, b0);
      store(o + p.ldo, a1), store(o + p.ldo + V, b1);
      store(o + 2 * p.ldo, a2), store(o + 2 * p.ldo + V, b2);
      store(o + 3 * p.ldo, a3), store(o + 3 * p.ldo + V, b3);
    }
  }
}

// dX on the grid for one image: out [Cp][ldx] (row p - p0) from dyb [M][Q]; wpk [Cp / CB][M][taps][CB].
template <typename T, int CB, int NV>
FIT_SIMD_CLONES void inputGradGrid(const T* dyb, const T* wpk, T* out, int64_t M, int64_t Cp, const Plan& p) {
  constexpr int64_t V = kV<T>;
  const int64_t taps = p.taps;
  for (int64_t c0 = 0; c0 < Cp; c0 += CB) {
    const T* wb = wpk + c0 * M * taps;
    for (int64_t j = 0; j < p.ldx; j += NV * V) {
      Vec<T> acc[CB][NV] = {};
      const int64_t base = p.margin + p.p0 + j;
      for (int64_t m = 0; m < M; ++m) {
        const T* dm = dyb + m * p.Q + base;
        const T* wm = wb + m * taps * CB;
        for (int64_t t = 0; t < taps; ++t) {
          Vec<T> d[NV];
          for (int v = 0; v < NV; ++v) d[v] = load(dm - p.offs[t] + v * V);
          for (int c = 0; c < CB; ++c)
            for (int v = 0; v < NV; ++v) acc[c][v] += wm[t * CB + c] * d[v];
        }
      }
      for (int c = 0; c < CB; ++c)
        for (int v = 0; v < NV; ++v) store(out + (c0 + c) * p.ldx + j + v * V, acc[c][v]);
    }
  }
}

#if defined(__GNUC__) && !defined(__clang__) && FIT_SIMD_VECTOR_EXT
#define FIT_DIRECT_LANESUMS 1
using simd::Idx;

// Shuffle masks that fold two vectors holding groups of s lanes each into one vector holding
// groups of s / 2 lanes (each group's halves added): the first (second) halves of the groups.
template <typename T>
struct FoldMasks {
  Idx<T> first[4], second[4];  // for s = V, V / 2, V / 4, V / 8
  FoldMasks() {
    constexpr int64_t V = kV<T>;
    for (int level = 0; level < 4; ++level) {
      const int64_t s = V >> level, h = s / 2, k = s > 0 ? V / s : 0;
      for (int64_t lane = 0; lane < V; ++lane) {
        const int64_t g = h > 0 ? lane / h : 0, e = h > 0 ? lane % h : 0;
        const int64_t src = g < k ? g * s + e : V + (g - k) * s + e;
        first[level][lane] = h > 0 ? src % (2 * V) : 0;
        second[level][lane] = h > 0 ? (src + h) % (2 * V) : 0;
      }
    }
  }
};

template <typename T>
FIT_SIMD_INLINE Vec<T> fold(const Vec<T>& a, const Vec<T>& b, const FoldMasks<T>& m, int level) {
  return __builtin_shuffle(a, b, m.first[level]) + __builtin_shuffle(a, b, m.second[level]);
}

// out[r] = the sum of the lanes of v_r, r < 8, by a tree of shuffles and adds.
template <typename T>
FIT_SIMD_INLINE void laneSums8(const Vec<T>& v0, const Vec<T>& v1, const Vec<T>& v2, const Vec<T>& v3,
                               const Vec<T>& v4, const Vec<T>& v5, const Vec<T>& v6, const Vec<T>& v7,
                               const FoldMasks<T>& m, T* out) {
  constexpr int64_t V = kV<T>;
  const Vec<T> p01 = fold(v0, v1, m, 0), p23 = fold(v2, v3, m, 0), p45 = fold(v4, v5, m, 0), p67 = fold(v6, v7, m, 0);
  const Vec<T> q03 = fold(p01, p23, m, 1), q47 = fold(p45, p67, m, 1);
  Vec<T> r = fold(q03, q47, m, 2);  // 8 groups of V / 8 lanes
  if constexpr (V / 8 > 1) r = fold(r, r, m, 3);
  for (int i = 0; i < 8; ++i) out[i] = r[i];
}
#else
#define FIT_DIRECT_LANESUMS 0
template <typename T> struct FoldMasks {};
#endif

// Per-lane partial sums of one image's weight gradient: for each tile (4 output channels m, one
// input channel c, 2 taps t), GV holds 8 vectors whose lanes sum to G[m][c][t] = sum over grid
// positions of dyb[m] * xp[c] (shifted by off(t)). One image's dY and padded planes stay in L1 while
// every tile reads them; accumulate adds into GV (else overwrites).
// With G (FIT_DIRECT_LANESUMS only), the lanes are summed right away into G [M][C][taps] instead.
template <typename T>
FIT_SIMD_CLONES void weightGradGrid(const T* dyb, const T* xp, T* GV, T* G, int64_t C, int64_t M, const Plan& p,
                                    const FoldMasks<T>& masks, bool accumulate) {
  constexpr int64_t V = kV<T>;
  const int64_t taps = p.taps, tp = (taps + 1) / 2, steps = roundUp(p.len, V);
#if !FIT_DIRECT_LANESUMS
  (void)G, (void)masks;
#endif
  for (int64_t m0 = 0; m0 < M; m0 += 4) {
    const int64_t mb = std::min<int64_t>(4, M - m0);
    const T* d0 = dyb + m0 * p.Q + p.margin;
    const T* d1 = d0 + (mb > 1 ? p.Q : 0);
    const T* d2 = d0 + (mb > 2 ? 2 * p.Q : 0);
    const T* d3 = d0 + (mb > 3 ? 3 * p.Q : 0);
    for (int64_t c = 0; c < C; ++c) {
      const T* xc = xp + c * p.P;
      for (int64_t t0 = 0; t0 < taps; t0 += 2) {
        T* gv = GV + ((m0 / 4 * C + c) * tp + t0 / 2) * 8 * V;
        Vec<T> a0{}, a1{}, a2{}, a3{}, b0{}, b1{}, b2{}, b3{};
        const T* x0p = xc + p.offs[t0];
        const T* x1p = xc + p.offs[t0 + 1];
        for (int64_t o = 0; o < steps; o += V) {
          const Vec<T> x0 = load(x0p + o), x1 = load(x1p + o);
          const Vec<T> e0 = load(d0 + o), e1 = load(d1 + o), e2 = load(d2 + o), e3 = load(d3 + o);
          a0 += e0 * x0, b0 += e0 * x1;
          a1 += e1 * x0, b1 += e1 * x1;
          a2 += e2 * x0, b2 += e2 * x1;
          a3 += e3 * x0, b3 += e3 * x1;
        }
#if FIT_DIRECT_LANESUMS
        if (G) {
          T sums[8];
          laneSums8<T>(a0, a1, a2, a3, b0, b1, b2, b3, masks, sums);
          for (int64_t mm = 0; mm < mb; ++mm)
            for (int64_t k = 0; k < 2 && t0 + k < taps; ++k) G[((m0 + mm) * C + c) * taps + t0 + k] = sums[4 * k + mm];
          continue;
        }
#endif
        if (accumulate) {
          a0 += load(gv), a1 += load(gv + V), a2 += load(gv + 2 * V), a3 += load(gv + 3 * V);
          b0 += load(gv + 4 * V), b1 += load(gv + 5 * V), b2 += load(gv + 6 * V), b3 += load(gv + 7 * V);
        }
        store(gv, a0), store(gv + V, a1), store(gv + 2 * V, a2), store(gv + 3 * V, a3);
        store(gv + 4 * V, b0), store(gv + 5 * V, b1), store(gv + 6 * V, b2), store(gv + 7 * V, b3);
      }
    }
  }
}

// G [M][C][taps] = the lane sums of the tiles of weightGradGrid.
template <typename T>
FIT_SIMD_CLONES void reduceTiles(const T* GV, T* G, int64_t C, int64_t M, int64_t taps) {
  constexpr int64_t V = kV<T>;
  const int64_t tp = (taps + 1) / 2;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = 0; t < taps; ++t) {
        const T* v = GV + (((m / 4 * C + c) * tp + t / 2) * 8 + (t % 2) * 4 + m % 4) * V;
        T s = 0;
        for (int64_t l = 0; l < V; ++l) s += v[l];
        G[(m * C + c) * taps + t] = s;
      }
}

// y [M][OH][OW] = out (the forward grid [Mp][ldo]) without its junk columns.
template <typename T>
FIT_SIMD_CLONES void extractOutput(const T* out, T* y, const DirectGeom& g, const Plan& p) {
  for (int64_t m = 0; m < g.M; ++m)
    for (int64_t oh = 0; oh < g.OH; ++oh)
      copyRowZeroTail(y + (m * g.OH + oh) * g.OW, out + m * p.ldo + oh * p.PW, g.OW, g.OW);
}

// dx [C][IH][IW] from the input-gradient grid dxo [Cp][ldx] (row ih at ih * PW + pl).
template <typename T>
FIT_SIMD_CLONES void extractInputGrad(const T* dxo, T* dx, const DirectGeom& g, const Plan& p) {
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t ih = 0; ih < g.IH; ++ih)
      copyRowZeroTail(dx + (c * g.IH + ih) * g.IW, dxo + c * p.ldx + ih * p.PW + g.pl, g.IW, g.IW);
}

template <typename T>
int64_t groupSize(int64_t N, int64_t perImage) {
  return std::max<int64_t>(1, std::min<int64_t>(N, kGroupBytes / std::max<int64_t>(1, perImage * int64_t(sizeof(T)))));
}

}  // namespace

bool convDirectApplies(int64_t C, int64_t M, int64_t group, int nd, const int64_t* kernel, const int64_t* stride,
                       const int64_t* padBegin, const int64_t* padEnd) {
  if (nd != 2 || group != 1 || stride[0] != 1 || stride[1] != 1) return false;
  for (int i = 0; i < 2; ++i)
    if (padBegin[i] < 0 || padEnd[i] < 0) return false;
  const int64_t taps = kernel[0] * kernel[1];
  return taps >= 2 && taps <= kMaxTaps && C >= 1 && C * taps <= 100 && M >= 1 && M <= 128;
}

template <typename T>
void convDirectForward(const T* x, const T* w, const T* bias, T* y, int64_t N, const DirectGeom& g, Arena& scratch) {
  const Plan p = planOf<T>(g);
  const int64_t C = g.C, M = g.M, Mp = roundUp(M, 4), taps = p.taps;
  T* wpk = scratch.alloc<T>(static_cast<size_t>(Mp * C * taps));
  for (int64_t m = 0; m < Mp; ++m)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = 0; t < taps; ++t)
        wpk[((m / 4 * C + c) * taps + t) * 4 + m % 4] = m < M ? w[(m * C + c) * taps + t] : T(0);
  T* bp = scratch.alloc<T>(static_cast<size_t>(Mp));
  for (int64_t m = 0; m < Mp; ++m) bp[m] = bias && m < M ? bias[m] : T(0);
  T* xp = scratch.alloc<T>(static_cast<size_t>(C * p.P));
  T* out = scratch.alloc<T>(static_cast<size_t>(Mp * p.ldo));
  for (int64_t n = 0; n < N; ++n) {
    padInputs(x + n * C * g.IH * g.IW, xp, 1, g, p);
    forwardGrid(xp, wpk, bp, out, C, Mp, p);
    extractOutput(out, y + n * M * g.OH * g.OW, g, p);
  }
}

template <typename T>
void convDirectBackward(const T* x, const T* w, const T* dy, T* dx, T* dw, T* sq, int64_t N, const DirectGeom& g,
                        Arena& scratch) {
  const Plan p = planOf<T>(g);
  const int64_t C = g.C, M = g.M, taps = p.taps, K = C * taps;
  const bool needW = dw || sq;
  const int64_t nb = groupSize<T>(N, (needW ? C * p.P : 0) + M * p.Q);
  T* dyb = scratch.alloc<T>(static_cast<size_t>(nb * M * p.Q));
  T* xp = needW ? scratch.alloc<T>(static_cast<size_t>(nb * C * p.P)) : nullptr;
  T* G = needW ? scratch.alloc<T>(static_cast<size_t>(M * K)) : nullptr;
  T* GV = needW ? scratch.alloc<T>(static_cast<size_t>(roundUp(M, 4) * C * (taps + 1) / 2 * 2 * kV<T>)) : nullptr;
  // dX: channels in blocks of CB (1 for one channel, 2, else 4), weights [Cp / CB][M][taps][CB].
  const int CB = C == 1 ? 1 : C == 2 ? 2 : 4;
  const int64_t Cp = roundUp(C, CB);
  T* wpk = nullptr;
  T* dxo = nullptr;
  if (dx) {
    wpk = scratch.alloc<T>(static_cast<size_t>(Cp * M * taps));
    for (int64_t c = 0; c < Cp; ++c)
      for (int64_t m = 0; m < M; ++m)
        for (int64_t t = 0; t < taps; ++t)
          wpk[((c / CB * M + m) * taps + t) * CB + c % CB] = c < C ? w[(m * C + c) * taps + t] : T(0);
    dxo = scratch.alloc<T>(static_cast<size_t>(Cp * p.ldx));
  }
  const FoldMasks<T> masks;  // shuffle masks of the in-kernel lane sums (built once per call)
  bool first = true;
  for (int64_t n0 = 0; n0 < N; n0 += nb) {
    const int64_t cnt = std::min(nb, N - n0);
    gridOutputs(dy + n0 * M * g.OH * g.OW, dyb, cnt, g, p);
    if (needW) padInputs(x + n0 * C * g.IH * g.IW, xp, cnt, g, p);
    if (dx)
      for (int64_t i = 0; i < cnt; ++i) {
        const T* d = dyb + i * M * p.Q;
        if (CB == 1) inputGradGrid<T, 1, 4>(d, wpk, dxo, M, Cp, p);
        else if (CB == 2) inputGradGrid<T, 2, 2>(d, wpk, dxo, M, Cp, p);
        else inputGradGrid<T, 4, 2>(d, wpk, dxo, M, Cp, p);
        extractInputGrad(dxo, dx + (n0 + i) * C * g.IH * g.IW, g, p);
      }
    if (!needW) continue;
    for (int64_t i = 0; i < cnt; ++i) {
      // With per-sample squares, each image's gradient alone (its lanes summed in the kernel where
      // GCC's vector shuffles exist), squared.
      const bool direct = sq && FIT_DIRECT_LANESUMS;
      weightGradGrid(dyb + i * M * p.Q, xp + i * C * p.P, GV, direct ? G : nullptr, C, M, p, masks, !sq && !first);
      first = false;
      if (sq) {
        if (!direct) reduceTiles(GV, G, C, M, taps);
        kernels::foldSquares(G, M * K, dw, sq);
      }
    }
  }
  if (dw && !sq && !first) {
    reduceTiles(GV, G, C, M, taps);
    kernels::foldSquares<T>(G, M * K, dw, nullptr);
  }
}

template void convDirectForward<float>(const float*, const float*, const float*, float*, int64_t, const DirectGeom&,
                                       Arena&);
template void convDirectForward<double>(const double*, const double*, const double*, double*, int64_t,
                                        const DirectGeom&, Arena&);
template void convDirectBackward<float>(const float*, const float*, const float*, float*, float*, float*, int64_t,
                                        const DirectGeom&, Arena&);
template void convDirectBackward<double>(const double*, const double*, const double*, double*, double*, double*,
                                         int64_t, const DirectGeom&, Arena&);

}  // namespace ops
}  // namespace fit
