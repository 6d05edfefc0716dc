// Gradient rules of Conv and ConvTranspose (forward in conv.cpp).
//
// Conv, per image n and group: Y_g = W_g * col(X_g), so
//   dX_g = col2im(W_g^T * dY_g)   and   dW_g = sum_n dY_g[n] * col(X_g[n])^T.
// ConvTranspose is the adjoint of Conv: Y_g = col2im(W_g^T * X_g), so
//   dX_g = W_g * im2col(dY_g)     and   dW_g = sum_n X_g[n] * im2col(dY_g[n])^T.
// The weight gradient is built one sample at a time anyway, so the per-sample squared weight
// gradient sum_n G_n^2 (G_n the weight gradient of sample n alone) costs one pass over the weight
// per sample on top of the plain weight gradient: G_n is formed in scratch (summed over the im2col
// chunks and groups first), squared into the accumulator and added into dW.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "../../kernels/backend.h"
#include "../../kernels/simd.h"
#include "conv_direct.h"
#include "util.h"

namespace fit {
namespace ops {
// Defined in conv.cpp: geom = {in, out, kernel, stride, dilation, padBegin, padEnd}; returns group.
int64_t resolveConvGeometry(const Node& node, bool transpose, const Dims& x, const Dims& w, Dims (&geom)[7]);
// Defined in conv_batched.cpp (see there); false when the batched path does not apply.
template <typename T>
bool convBackwardBatched(const T* x, const T* w, const T* dy, T* dx, T* dw, T* sq, int64_t N, int64_t C, int64_t M,
                         int64_t group, int nd, const int64_t* dims, const int64_t* stride, const int64_t* dilation,
                         Arena& scratch);
}  // namespace ops

namespace {

// Sums with 8 independent partial sums: a single float accumulator is a serial chain of adds the
// compiler may not reorder (no -ffast-math), which made these loops latency-bound.
template <typename T>
inline T sumRow(const T* __restrict a, int64_t n) {
  T part[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) part[j] += a[i + j];
  for (; i < n; ++i) part[0] += a[i];
  return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}


struct Geom {
  int nd = 0;
  int64_t group = 1;
  Dims in, out, kernel, stride, dilation, padBegin, padEnd;
  int64_t inSz = 0, outSz = 0, kSz = 0;
};

Geom geomOf(const Node& node, bool transpose, const Dims& x, const Dims& w) {
  Dims d[7];
  Geom g;
  g.group = ops::resolveConvGeometry(node, transpose, x, w, d);
  g.in = d[0], g.out = d[1], g.kernel = d[2], g.stride = d[3], g.dilation = d[4], g.padBegin = d[5], g.padEnd = d[6];
  g.nd = static_cast<int>(g.in.size());
  g.inSz = numelOf(g.in), g.outSz = numelOf(g.out), g.kSz = numelOf(g.kernel);
  return g;
}

// The accumulator for sum_n (d l_n / d W)^2, or nullptr when not requested. Only the weight (input
// 1) of a convolution has a per-sample gradient here.
template <typename T>
T* sqTarget(GradContext<T>& ctx) {
  if (!ctx.sqWeightGrad) return nullptr;
  if (ctx.weightInput != 1)
    ctx.fail(ErrorCode::Internal, "per-sample squared gradients are defined for the weight (input 1) only, "
                                  "but input " + std::to_string(ctx.weightInput) + " was requested");
  return ctx.sqWeightGrad->template data<T>();
}

// dB[m] = sum over images and positions of dY[n, m, :].
template <typename T>
void biasGrad(const T* dy, T* db, int64_t N, int64_t M, int64_t S) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m) {
      const T* p = dy + (n * M + m) * S;
      db[m] += sumRow(p, S);
    }
}

// ----------------------------------------------------------------------------------------------
// Direct backward of the 2-D depthwise forward (group == C): per image and input channel, the
// input plane is copied into the same zero-padded plane as the forward (for dW) and the input
// gradient is scattered into a padded plane (for dX) whose interior is then copied out. The
// weight gradient of output channel m for image n (KH * KW values) is sample n's own gradient.
// Kernel rows that land in the top/bottom padding contribute nothing and are skipped.

// One output row against one kernel row, unit column stride, in explicit vectors (the sums need
// vector partial sums, which the compiler may not introduce itself without -ffast-math):
//   GV[kw] += dy[ow] * prow[kw * dwl + ow]   (lane-wise partial sums of the weight gradient; the
//                                             last OW % L columns go to the scalar G[kw])
//   drow[j] += sum_kw w[kw] * dyp[j + (KW - 1 - kw) * dwl]   for j < PW
// where dyp is dy's row with (KW - 1) * dwl zeros on both sides. The input gradient is gathered
// (each drow chunk loaded and stored once) rather than scattered tap by tap, which would reload
// just-stored, overlapping chunks and stall on store forwarding.
template <typename T, bool DX, bool DW>
FIT_SIMD_INLINE void dwBackRowUnit(const T* __restrict dyrow, const T* __restrict dyp, const T* __restrict prow,
                                   T* __restrict drow, const T* wk, simd::Vec<T>* GV, T* G, int64_t KW, int64_t OW,
                                   int64_t PW, int64_t dwl) {
  using V = simd::Vec<T>;
  constexpr int64_t L = simd::kLanes<T>;
  if (DW) {
    const int64_t full = OW - OW % L;
    for (int64_t kw = 0; kw < KW; ++kw) {
      const T* pr = prow + kw * dwl;
      V acc = GV[kw];
      for (int64_t ow = 0; ow < full; ow += L) acc += simd::load(dyrow + ow) * simd::load(pr + ow);
      GV[kw] = acc;
      T tail = T(0);
      for (int64_t ow = full; ow < OW; ++ow) tail += dyrow[ow] * pr[ow];
      G[kw] += tail;
    }
  }
  if (DX) {
    const int64_t shift = (KW - 1) * dwl;
    int64_t j = 0;
    for (; j + L <= PW; j += L) {
      V o = simd::load(drow + j);
      for (int64_t kw = 0; kw < KW; ++kw) o += wk[kw] * simd::load(dyp + j + shift - kw * dwl);
      simd::store(drow + j, o);
    }
    for (; j < PW; ++j) {
      T o = drow[j];
      for (int64_t kw = 0; kw < KW; ++kw) o += wk[kw] * dyp[j + shift - kw * dwl];
      drow[j] = o;
    }
  }
}

// All planes; dims = {IH, IW, OH, OW, KH, KW, sh, sw, dh, dw, pt, pl}. Multiversioned.
template <typename T, bool DX, bool DW>
FIT_SIMD_CLONES void depthwise2dBackwardPlanes(const T* x, const T* w, const T* dy, T* dx, T* dw, T* sq,
                                               int64_t N, int64_t C, int64_t M, const int64_t* dims, T* pad,
                                               T* dpad, T* G, simd::Vec<T>* GV, T* dyp) {
  const int64_t IH = dims[0], IW = dims[1], OH = dims[2], OW = dims[3], KH = dims[4], KW = dims[5];
  const int64_t sh = dims[6], sw = dims[7], dh = dims[8], dwl = dims[9], pt = dims[10], pl = dims[11];
  const int64_t kSz = KH * KW, mult = M / C;
  const int64_t PH = (OH - 1) * sh + (KH - 1) * dh + 1, PW = (OW - 1) * sw + (KW - 1) * dwl + 1;
  const int64_t rowsIn = std::min(IH, PH - pt), colsIn = std::min(IW, PW - pl);
  // Kernel rows some output row reaches inside the image (the others' gradients stay 0).
  std::vector<char> khUsed(static_cast<size_t>(KH), 0);
  for (int64_t oh = 0; oh < OH; ++oh)
    for (int64_t kh = 0; kh < KH; ++kh) {
      const int64_t r = oh * sh + kh * dh;
      if (r >= pt && r < pt + rowsIn) khUsed[kh] = 1;
    }
  // Without per-sample squares the lane partial sums of channel m run over all images (GV and G
  // hold M * kSz entries) and are reduced once at the end; with them, per image and channel.
  const bool perSample = sq != nullptr;
  auto reduceInto = [&](simd::Vec<T>* gv, T* g) {
    for (int64_t kh = 0; kh < KH; ++kh) {
      if (!khUsed[kh]) continue;
      for (int64_t i = kh * KW; i < (kh + 1) * KW; ++i) {  // lanes of the partial sums, as a tree
        T t[simd::kLanes<T>];
        std::memcpy(t, &gv[i], sizeof t);
        for (int64_t wd = simd::kLanes<T> / 2; wd >= 1; wd /= 2)
          for (int64_t j = 0; j < wd; ++j) t[j] += t[j + wd];
        g[i] += t[0];
      }
    }
  };
  if (DW && !perSample) {
    std::fill(G, G + M * kSz, T(0));
    std::fill(GV, GV + M * kSz, simd::Vec<T>{});
  }
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t c = 0; c < C; ++c) {
      if (DW) {
        const T* xc = x + (n * C + c) * IH * IW;
        for (int64_t ih = 0; colsIn > 0 && ih < rowsIn; ++ih)
          std::copy(xc + ih * IW, xc + ih * IW + colsIn, pad + (ih + pt) * PW + pl);
      }
      if (DX) std::fill(dpad + pt * PW, dpad + (pt + std::max<int64_t>(rowsIn, 0)) * PW, T(0));
      for (int64_t m = c * mult; m < (c + 1) * mult; ++m) {
        const T* dyc = dy + (n * M + m) * OH * OW;
        const T* wk = w + m * kSz;
        T* Gm = perSample ? G : G + m * kSz;
        simd::Vec<T>* GVm = perSample ? GV : GV + m * kSz;
        if (DW && perSample) {
          std::fill(Gm, Gm + kSz, T(0));
          std::fill(GVm, GVm + kSz, simd::Vec<T>{});
        }
        for (int64_t oh = 0; oh < OH; ++oh) {
          const T* dyrow = dyc + oh * OW;
          if (DX && sw == 1) std::copy(dyrow, dyrow + OW, dyp + (KW - 1) * dwl);  // margins stay 0
          for (int64_t kh = 0; kh < KH; ++kh) {
            const int64_t r = oh * sh + kh * dh;
            if (r < pt || r >= pt + rowsIn) continue;  // padding rows: zero input, dropped gradient
            const int64_t base = r * PW;
            if (sw == 1) {
              dwBackRowUnit<T, DX, DW>(dyrow, dyp, DW ? pad + base : nullptr, DX ? dpad + base : nullptr, wk + kh * KW,
                                       DW ? GVm + kh * KW : nullptr, DW ? Gm + kh * KW : nullptr, KW, OW, PW, dwl);
              continue;
            }
            for (int64_t kw = 0; kw < KW; ++kw) {
              const T wv = wk[kh * KW + kw];
              const int64_t off = base + kw * dwl;
              if (DX)
                for (int64_t ow = 0; ow < OW; ++ow) dpad[off + ow * sw] += wv * dyrow[ow];
              if (DW) {
                T acc = T(0);
                for (int64_t ow = 0; ow < OW; ++ow) acc += dyrow[ow] * pad[off + ow * sw];
                Gm[kh * KW + kw] += acc;
              }
            }
          }
        }
        if (DW && perSample) {
          reduceInto(GVm, Gm);
          kernels::foldSquares(Gm, kSz, dw ? dw + m * kSz : nullptr, sq + m * kSz);
        }
      }
      if (DX) {
        T* dxc = dx + (n * C + c) * IH * IW;  // rows / columns the taps never reach get 0
        const int64_t rows = std::max<int64_t>(rowsIn, 0), cols = std::max<int64_t>(colsIn, 0);
        for (int64_t ih = 0; ih < rows; ++ih) {
          std::copy(dpad + (ih + pt) * PW + pl, dpad + (ih + pt) * PW + pl + cols, dxc + ih * IW);
          std::fill(dxc + ih * IW + cols, dxc + (ih + 1) * IW, T(0));
        }
        std::fill(dxc + rows * IW, dxc + IH * IW, T(0));
      }
    }
  }
  if (DW && !perSample && dw)
    for (int64_t m = 0; m < M; ++m) {
      reduceInto(GV + m * kSz, G + m * kSz);
      for (int64_t i = 0; i < kSz; ++i) dw[m * kSz + i] += G[m * kSz + i];
    }
}

template <typename T>
void depthwise2dBackward(const T* x, const T* w, const T* dy, T* dx, T* dw, T* sq, int64_t N, int64_t C,
                         int64_t M, const Geom& g, Arena& scratch) {
  const int64_t OH = g.out[0], OW = g.out[1], KH = g.kernel[0], KW = g.kernel[1];
  const int64_t sh = g.stride[0], sw = g.stride[1], dh = g.dilation[0], dwl = g.dilation[1];
  const int64_t PH = (OH - 1) * sh + (KH - 1) * dh + 1, PW = (OW - 1) * sw + (KW - 1) * dwl + 1;
  const bool needW = dw || sq;
  T* pad = needW ? scratch.alloc<T>(static_cast<size_t>(PH * PW)) : nullptr;
  T* dpad = dx ? scratch.alloc<T>(static_cast<size_t>(PH * PW)) : nullptr;
  const size_t gSize = static_cast<size_t>(KH * KW * (sq ? 1 : M));  // see depthwise2dBackwardPlanes
  T* G = needW ? scratch.alloc<T>(gSize) : nullptr;
  simd::Vec<T>* GV = needW ? scratch.alloc<simd::Vec<T>>(gSize) : nullptr;
  const size_t dypLen = static_cast<size_t>(OW + 2 * (KW - 1) * dwl);
  T* dyp = dx ? scratch.alloc<T>(dypLen) : nullptr;
  if (dyp) std::fill(dyp, dyp + dypLen, T(0));  // margins; the middle is rewritten per row
  if (pad) std::fill(pad, pad + PH * PW, T(0));  // only the interior is rewritten
  if (dpad) std::fill(dpad, dpad + PH * PW, T(0));
  const int64_t dims[12] = {g.in[0], g.in[1], OH, OW, KH, KW, sh, sw, dh, dwl, g.padBegin[0], g.padBegin[1]};
  if (dx && needW) depthwise2dBackwardPlanes<T, true, true>(x, w, dy, dx, dw, sq, N, C, M, dims, pad, dpad, G, GV, dyp);
  else if (dx) depthwise2dBackwardPlanes<T, true, false>(x, w, dy, dx, dw, sq, N, C, M, dims, pad, dpad, G, GV, dyp);
  else if (needW) depthwise2dBackwardPlanes<T, false, true>(x, w, dy, dx, dw, sq, N, C, M, dims, pad, dpad, G, GV, dyp);
}

// ----------------------------------------------------------------------------------------------
// Conv: inputs X [N, C, in...], W [M, C/group, k...], optional B [M]; reads X and W.

template <typename T>
void convBackward(GradContext<T>& ctx) {
  const Tensor& X = ctx.in(0);
  const Tensor& W = ctx.in(1);
  const Geom g = geomOf(ctx.node, false, X.dims, W.dims);
  const int64_t N = X.dims[0], C = X.dims[1], M = W.dims[0], group = g.group;
  T* sq = sqTarget(ctx);
  // dX is written by every path below (gemm with beta 0, the depthwise planes, or zeroed per image
  // right before col2im accumulates into it), so it starts uninitialised.
  T* dx = ctx.wants(0) ? ctx.gradInput(0, X.dims) : nullptr;
  T* dw = ctx.wants(1) ? ctx.gradInputZeros(1, W.dims) : nullptr;
  T* db = ctx.wants(2) ? ctx.gradInputZeros(2, {M}) : nullptr;
  const T* dy = ctx.gout(0);
  const int64_t inSz = g.inSz, outSz = g.outSz, kSz = g.kSz;
  const int64_t Cg = C / group, Mg = M / group, rows = Cg * kSz;
  if (!dy || N == 0 || M == 0 || outSz == 0 || rows == 0) {
    if (dx) std::fill(dx, dx + X.numel(), T(0));
    if (db && dy) biasGrad(dy, db, N, M, outSz);
    return;
  }
  if (db) biasGrad(dy, db, N, M, outSz);
  if (!dx && !dw && !sq) return;
  const T* x = X.template data<T>();
  const T* w = W.template data<T>();

  if (g.nd == 2 && group == C && group > 1) {  // the forward's direct depthwise path
    depthwise2dBackward(x, w, dy, dx, dw, sq, N, C, M, g, ctx.scratch);
    return;
  }
  if (ops::convDirectApplies(C, M, group, g.nd, g.kernel.data(), g.stride.data(), g.padBegin.data(),
                             g.padEnd.data())) {
    const ops::DirectGeom dg{C, M, g.in[0], g.in[1], g.out[0], g.out[1], g.kernel[0], g.kernel[1],
                             g.dilation[0], g.dilation[1], g.padBegin[0], g.padBegin[1]};
    ops::convDirectBackward(x, w, dy, dx, dw, sq, N, dg, ctx.scratch);
    return;
  }

  bool direct = true;  // 1x1, stride 1, no pads: the image is its own column matrix
  for (int i = 0; i < g.nd; ++i)
    direct = direct && g.kernel[i] == 1 && g.stride[i] == 1 && g.padBegin[i] == 0 && g.padEnd[i] == 0;
  if (!direct && g.nd == 2) {  // several images per gemm (per-sample weight products stay per image)
    const int64_t dims[8] = {g.in[0], g.in[1], g.out[0], g.out[1], g.kernel[0], g.kernel[1], g.padBegin[0], g.padBegin[1]};
    if (ops::convBackwardBatched<T>(x, w, dy, dx, dw, sq, N, C, M, group, g.nd, dims, g.stride.data(), g.dilation.data(),
                                    ctx.scratch))
      return;
  }
  // Column matrices in chunks of output rows (first spatial dim), as in the forward.
  constexpr int64_t kColBytes = 1 << 20;
  const int64_t outRow = outSz / g.out[0], inRow = g.in[0] > 0 ? inSz / g.in[0] : 0;
  int64_t chunkRows = g.out[0];
  if (!direct && rows * outSz * static_cast<int64_t>(sizeof(T)) > kColBytes)
    chunkRows = std::max<int64_t>(1, std::min(g.out[0], kColBytes / static_cast<int64_t>(sizeof(T)) / (rows * outRow)));
  const size_t colSize = static_cast<size_t>(rows * chunkRows * outRow);
  const bool needW = dw || sq;
  T* col = needW && !direct ? ctx.scratch.template alloc<T>(colSize) : nullptr;   // im2col(X)
  T* dcol = dx && !direct ? ctx.scratch.template alloc<T>(colSize) : nullptr;     // W^T dY
  // With per-sample squares, sample n's weight gradient is formed in G, then folded into dW and
  // the squares; otherwise the products accumulate straight into dW.
  T* G = sq ? ctx.scratch.template alloc<T>(static_cast<size_t>(M * rows)) : nullptr;
  Dims inC = g.in, padC = g.padBegin, outC = g.out;
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t gi = 0; gi < group; ++gi) {
      const T* xg = x + (n * C + gi * Cg) * inSz;
      const T* dyg = dy + (n * M + gi * Mg) * outSz;
      const T* wg = w + gi * Mg * rows;
      T* dxg = dx ? dx + (n * C + gi * Cg) * inSz : nullptr;
      T* gw = needW ? (G ? G : dw) + gi * Mg * rows : nullptr;
      const T first = G ? T(0) : T(1);  // beta of the first product into gw
      if (direct) {
        if (gw) kernels::gemm(false, true, Mg, rows, outSz, T(1), dyg, outSz, xg, outSz, first, gw, rows);
        if (dxg) kernels::gemm(true, false, rows, outSz, Mg, T(1), wg, rows, dyg, outSz, T(0), dxg, outSz);
        continue;
      }
      if (dxg) std::fill(dxg, dxg + Cg * inSz, T(0));  // col2im accumulates
      for (int64_t r0 = 0; r0 < g.out[0]; r0 += chunkRows) {
        // Output rows [r0, r1) read input rows from a = r0 * stride - padBegin on (see the forward).
        const int64_t r1 = std::min(g.out[0], r0 + chunkRows), cn = (r1 - r0) * outRow;
        const int64_t a = r0 * g.stride[0] - g.padBegin[0], start = std::max<int64_t>(a, 0);
        const int64_t inOff = std::min(start, g.in[0]) * inRow;
        inC[0] = std::max<int64_t>(0, g.in[0] - start);
        padC[0] = start - a;
        outC[0] = r1 - r0;
        const T* dyc = dyg + r0 * outRow;  // [Mg, cn] with row stride outSz
        if (gw) {
          for (int64_t c = 0; c < Cg; ++c)
            kernels::im2col<T>(xg + c * inSz + inOff, 1, g.nd, inC.data(), g.kernel.data(), g.stride.data(),
                               g.dilation.data(), padC.data(), outC.data(), col + c * kSz * cn);
          kernels::gemm(false, true, Mg, rows, cn, T(1), dyc, outSz, col, cn, r0 == 0 ? first : T(1), gw, rows);
        }
        if (dxg) {
          kernels::gemm(true, false, rows, cn, Mg, T(1), wg, rows, dyc, outSz, T(0), dcol, cn);
          for (int64_t c = 0; c < Cg; ++c)
            kernels::col2im<T>(dcol + c * kSz * cn, 1, g.nd, inC.data(), g.kernel.data(), g.stride.data(),
                               g.dilation.data(), padC.data(), outC.data(), dxg + c * inSz + inOff);
        }
      }
    }
    if (G) kernels::foldSquares(G, M * rows, dw, sq);
  }
}

// ----------------------------------------------------------------------------------------------
// ConvTranspose: inputs X [N, C, in...], W [C, M/group, k...], optional B [M]; reads X and W.

template <typename T>
void convTransposeBackward(GradContext<T>& ctx) {
  const Tensor& X = ctx.in(0);
  const Tensor& W = ctx.in(1);
  const Geom g = geomOf(ctx.node, true, X.dims, W.dims);
  const int64_t N = X.dims[0], C = X.dims[1], group = g.group, Mg = W.dims[1], M = Mg * group;
  T* sq = sqTarget(ctx);
  T* dx = ctx.wants(0) ? ctx.gradInputZeros(0, X.dims) : nullptr;
  T* dw = ctx.wants(1) ? ctx.gradInputZeros(1, W.dims) : nullptr;
  T* db = ctx.wants(2) ? ctx.gradInputZeros(2, {M}) : nullptr;
  const T* dy = ctx.gout(0);
  const int64_t inSz = g.inSz, outSz = g.outSz, kSz = g.kSz;
  if (!dy || N == 0 || M == 0 || outSz == 0) return;
  if (db) biasGrad(dy, db, N, M, outSz);
  const int64_t Cg = C / group, rows = Mg * kSz;
  if ((!dx && !dw && !sq) || Cg == 0 || rows == 0 || inSz == 0) return;
  const T* x = X.template data<T>();
  const T* w = W.template data<T>();
  bool direct = outSz == inSz;  // 1x1, stride 1, no pads: im2col(dY) is dY itself
  for (int i = 0; i < g.nd; ++i)
    direct = direct && g.kernel[i] == 1 && g.stride[i] == 1 && g.padBegin[i] == 0 && g.out[i] == g.in[i];
  T* dcol = direct ? nullptr : ctx.scratch.template alloc<T>(static_cast<size_t>(rows * inSz));
  const bool needW = dw || sq;
  T* G = sq ? ctx.scratch.template alloc<T>(static_cast<size_t>(C * rows)) : nullptr;
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t gi = 0; gi < group; ++gi) {
      const T* xg = x + (n * C + gi * Cg) * inSz;  // [Cg, inSz]
      const T* wg = w + gi * Cg * rows;              // [Cg, Mg * k]
      const T* dyg = dy + (n * M + gi * Mg) * outSz;
      const T* dc = dyg;                             // [Mg * k, inSz]
      if (!direct) {
        kernels::im2col<T>(dyg, Mg, g.nd, g.out.data(), g.kernel.data(), g.stride.data(), g.dilation.data(),
                           g.padBegin.data(), g.in.data(), dcol);
        dc = dcol;
      }
      if (dx) kernels::gemm(false, false, Cg, inSz, rows, T(1), wg, rows, dc, inSz, T(0), dx + (n * C + gi * Cg) * inSz, inSz);
      if (needW)
        kernels::gemm(false, true, Cg, rows, inSz, T(1), xg, inSz, dc, inSz, G ? T(0) : T(1),
                      (G ? G : dw) + gi * Cg * rows, rows);
    }
    if (G) kernels::foldSquares(G, C * rows, dw, sq);
  }
}

}  // namespace

FIT_REGISTER_GRAD("Conv", convBackward, slot(0) | slot(1), kNoSlots);
FIT_REGISTER_GRAD("ConvTranspose", convTransposeBackward, slot(0) | slot(1), kNoSlots);

}  // namespace fit
