// Convolutions: Conv (N-d, groups, strides, dilations, pads, auto_pad) via im2col + gemm per image
// and group, with a direct loop for 2-D depthwise convolutions; ConvTranspose via gemm + col2im.
// The per-image im2col structure is kept on purpose: the backward pass (conv_grad.cpp) forms
// per-sample products from the same column buffers.
#include <algorithm>
#include <string>

#include "../../kernels/backend.h"
#include "../../kernels/simd.h"
#include "conv_direct.h"
#include "util.h"

namespace fit {
namespace {

std::string str(const Dims& d) { return dimsToString(d); }
std::string str(int64_t v) { return std::to_string(v); }

// Geometry shared by Conv and ConvTranspose. `in` / `out` are the spatial dims of X / Y.
struct ConvGeom {
  int nd = 0;
  int64_t group = 1;
  Dims in, out, kernel, stride, dilation, padBegin, padEnd;
};

// Attribute and shape checks raise the same errors from forward (OpContext) and backward, so they
// work on the node alone.
struct NodeCheck {
  const Node& node;
  [[noreturn]] void fail(ErrorCode code, const std::string& msg) const {
    throw EngineError(code, node.describe() + ": " + msg);
  }
  void check(bool cond, const std::string& msg) const {
    if (!cond) fail(ErrorCode::ShapeMismatch, msg);
  }
};

// Reads a per-spatial-dim INTS attribute (default `def` for every dim), checking its length.
Dims spatialAttr(const NodeCheck& ctx, const char* key, int nd, int64_t def, int64_t minValue) {
  Dims v = ctx.node.ints(key, Dims(nd, def));
  if (v.empty()) v.assign(nd, def);
  if (static_cast<int>(v.size()) != nd)
    ctx.fail(ErrorCode::InvalidAttribute, std::string(key) + " has " + str(int64_t(v.size())) +
                                              " values but the input has " + str(int64_t(nd)) +
                                              " spatial dims");
  for (int64_t x : v)
    if (x < minValue)
      ctx.fail(ErrorCode::InvalidAttribute,
               std::string(key) + " must be >= " + str(minValue) + " but got " + str(v));
  return v;
}

// Reads kernel_shape (checked against the weight's spatial dims), strides, dilations, pads, group.
ConvGeom readGeom(const NodeCheck& ctx, const Dims& X, const Dims& W) {
  ConvGeom g;
  const int64_t xr = static_cast<int64_t>(X.size()), wr = static_cast<int64_t>(W.size());
  ctx.check(xr >= 3, "expected X of rank >= 3 ([N, C, spatial...]) but got dims " + str(X));
  ctx.check(wr == xr, "expected W of rank " + str(xr) + " to match X of rank " + str(xr) + " but got rank " +
                          str(wr) + " (W dims " + str(W) + ")");
  g.nd = static_cast<int>(xr) - 2;
  g.in.assign(X.begin() + 2, X.end());
  g.kernel.assign(W.begin() + 2, W.end());
  if (ctx.node.has("kernel_shape")) {
    Dims ks = ctx.node.ints("kernel_shape");
    ctx.check(ks == g.kernel, "kernel_shape " + str(ks) + " does not match the spatial dims of W " + str(W));
  }
  g.stride = spatialAttr(ctx, "strides", g.nd, 1, 1);
  g.dilation = spatialAttr(ctx, "dilations", g.nd, 1, 1);
  Dims pads = ctx.node.ints("pads", Dims(2 * g.nd, 0));
  if (pads.empty()) pads.assign(2 * g.nd, 0);
  if (static_cast<int>(pads.size()) != 2 * g.nd)
    ctx.fail(ErrorCode::InvalidAttribute, "pads has " + str(int64_t(pads.size())) + " values but " +
                                              str(int64_t(2 * g.nd)) + " are needed for " +
                                              str(int64_t(g.nd)) + " spatial dims");
  for (int64_t p : pads)
    if (p < 0) ctx.fail(ErrorCode::InvalidAttribute, "negative pads are not supported: " + str(pads));
  g.padBegin.assign(pads.begin(), pads.begin() + g.nd);
  g.padEnd.assign(pads.begin() + g.nd, pads.end());
  g.group = ctx.node.i("group", 1);
  if (g.group < 1) ctx.fail(ErrorCode::InvalidAttribute, "group must be >= 1 but got " + str(g.group));
  return g;
}

std::string autoPadOf(const NodeCheck& ctx) {
  std::string ap = ctx.node.s("auto_pad", "NOTSET");
  if (ap.empty()) ap = "NOTSET";
  if (ap != "NOTSET" && ap != "VALID" && ap != "SAME_UPPER" && ap != "SAME_LOWER")
    ctx.fail(ErrorCode::InvalidAttribute, "auto_pad must be NOTSET, VALID, SAME_UPPER or SAME_LOWER but got '" + ap + "'");
  return ap;
}

// Conv: X [N, C, in...], W [M, C/group, k...] -> Y [N, M, out...]; checks channels and resolves
// auto_pad and the output dims.
ConvGeom convGeom(const NodeCheck& ctx, const Dims& X, const Dims& W) {
  ConvGeom g = readGeom(ctx, X, W);
  const int64_t C = X[1], M = W[0], group = g.group;
  ctx.check(C % group == 0, "expected the " + str(C) + " input channels of X " + str(X) +
                                " to be divisible by group " + str(group));
  ctx.check(W[1] * group == C, "expected W " + str(W) + " to have C/group = " + str(C / group) +
                                   " input channels (X " + str(X) + ", group " + str(group) + ") but got " +
                                   str(W[1]));
  ctx.check(M % group == 0, "expected the " + str(M) + " output channels of W " + str(W) +
                                " to be divisible by group " + str(group));
  const std::string ap = autoPadOf(ctx);
  g.out.resize(g.nd);
  for (int i = 0; i < g.nd; ++i) {
    const int64_t dk = (g.kernel[i] - 1) * g.dilation[i] + 1;
    if (ap == "SAME_UPPER" || ap == "SAME_LOWER") {
      g.out[i] = (g.in[i] + g.stride[i] - 1) / g.stride[i];
      const int64_t total = std::max<int64_t>(0, (g.out[i] - 1) * g.stride[i] + dk - g.in[i]);
      g.padBegin[i] = ap == "SAME_UPPER" ? total / 2 : total - total / 2;
      g.padEnd[i] = total - g.padBegin[i];
    } else {
      if (ap == "VALID") g.padBegin[i] = g.padEnd[i] = 0;
      const int64_t span = g.in[i] + g.padBegin[i] + g.padEnd[i] - dk;
      if (span < 0)
        ctx.fail(ErrorCode::ShapeMismatch, "spatial dim " + str(int64_t(i)) + " of X " + str(X) +
                                               " (padded to " + str(g.in[i] + g.padBegin[i] + g.padEnd[i]) +
                                               ") is smaller than the dilated kernel extent " + str(dk));
      g.out[i] = span / g.stride[i] + 1;
    }
  }
  return g;
}

// ConvTranspose: X [N, C, in...], W [C, M/group, k...] -> Y [N, M, out...]. With output_shape or
// SAME_* auto_pad the pads are derived from the total padding as the spec (and onnxruntime >= 1.2x)
// do: the odd element goes to the end for SAME_UPPER, to the start otherwise.
ConvGeom convTransposeGeom(const NodeCheck& ctx, const Dims& X, const Dims& W) {
  ConvGeom g = readGeom(ctx, X, W);
  const int64_t C = X[1], group = g.group;
  ctx.check(W[0] == C, "expected W " + str(W) + " to have " + str(C) + " rows (the input channels of X " +
                           str(X) + ") but got " + str(W[0]));
  ctx.check(C % group == 0, "expected the " + str(C) + " input channels of X " + str(X) +
                                " to be divisible by group " + str(group));
  const std::string ap = autoPadOf(ctx);
  const Dims outPad = spatialAttr(ctx, "output_padding", g.nd, 0, 0);
  Dims outShape = ctx.node.ints("output_shape");
  if (!outShape.empty()) {
    if (static_cast<int>(outShape.size()) == g.nd + 2) outShape.erase(outShape.begin(), outShape.begin() + 2);
    if (static_cast<int>(outShape.size()) != g.nd)
      ctx.fail(ErrorCode::InvalidAttribute, "output_shape " + str(ctx.node.ints("output_shape")) +
                                                " does not have one value per spatial dim (" + str(int64_t(g.nd)) + ")");
  }
  g.out.resize(g.nd);
  for (int i = 0; i < g.nd; ++i) {
    const int64_t dk = (g.kernel[i] - 1) * g.dilation[i] + 1;
    const int64_t full = (g.in[i] - 1) * g.stride[i] + outPad[i] + dk;  // output size with no pads
    auto distribute = [&](int64_t target) {
      const int64_t total = std::max<int64_t>(0, full - target);
      if (ap == "SAME_UPPER") {
        g.padBegin[i] = total / 2;
        g.padEnd[i] = total - total / 2;
      } else {
        g.padBegin[i] = total - total / 2;
        g.padEnd[i] = total / 2;
      }
    };
    if (!outShape.empty()) {
      distribute(outShape[i]);
      g.out[i] = outShape[i];
    } else {
      if (ap == "SAME_UPPER" || ap == "SAME_LOWER") distribute(g.in[i] * g.stride[i]);
      if (ap == "VALID") g.padBegin[i] = g.padEnd[i] = 0;
      g.out[i] = full - g.padBegin[i] - g.padEnd[i];
    }
    if (g.out[i] <= 0)
      ctx.fail(ErrorCode::ShapeMismatch, "output spatial dim " + str(int64_t(i)) + " would be " + str(g.out[i]) +
                                             " for X " + str(X) + " and W " + str(W));
  }
  return g;
}

// One output row of a depthwise convolution for one kernel row: y[i] += sum_k w[k] *
// x[i * sw + k * dw]. The kernel width is a template parameter for the common sizes (KW > 0) so
// the taps stay in registers and y is loaded and stored once per kernel row; KW == 0 is any width.
template <typename T, int KW>
inline void dwRow(T* __restrict y, const T* __restrict x, const T* w, int64_t kw, int64_t OW, int64_t sw,
                  int64_t dw) {
  if constexpr (KW == 0) {
    for (int64_t k = 0; k < kw; ++k) {
      const T wv = w[k];
      const T* xs = x + k * dw;
      for (int64_t i = 0; i < OW; ++i) y[i] += wv * xs[i * sw];
    }
  } else {
    T wv[KW];
    for (int k = 0; k < KW; ++k) wv[k] = w[k];
    if (sw == 1 && dw == 1) {
      for (int64_t i = 0; i < OW; ++i) {
        T s = y[i];
        for (int k = 0; k < KW; ++k) s += wv[k] * x[i + k];
        y[i] = s;
      }
    } else if (sw == 2 && dw == 1) {
      for (int64_t i = 0; i < OW; ++i) {
        T s = y[i];
        for (int k = 0; k < KW; ++k) s += wv[k] * x[2 * i + k];
        y[i] = s;
      }
    } else {
      for (int64_t i = 0; i < OW; ++i) {
        T s = y[i];
        for (int k = 0; k < KW; ++k) s += wv[k] * x[i * sw + k * dw];
        y[i] = s;
      }
    }
  }
}

// Direct 2-D depthwise convolution: group == C, each output channel m reads input channel
// m / mult (mult = M / C). Each input plane is first copied into a zero-padded plane covering
// exactly the rows and columns the taps reach, so the row kernels need no bounds checks; kernel
// rows that fall entirely in the top/bottom padding are skipped. y must hold [N, M, OH, OW]; bias
// may be null. Multiversioned (FIT_SIMD_CLONES): the row loops vectorize for the running CPU.
template <typename T, int KW>
FIT_SIMD_CLONES void depthwise2dPlanes(const T* x, const T* w, const T* bias, T* y, int64_t N, int64_t C,
                                       int64_t M, const int64_t* dims, T* pad) {
  const int64_t IH = dims[0], IW = dims[1], OH = dims[2], OW = dims[3], KH = dims[4], KWd = dims[5];
  const int64_t sh = dims[6], sw = dims[7], dh = dims[8], dw = dims[9], pt = dims[10], pl = dims[11];
  const int64_t mult = M / C;
  const int64_t PH = (OH - 1) * sh + (KH - 1) * dh + 1, PW = (OW - 1) * sw + (KWd - 1) * dw + 1;
  const int64_t rowsIn = std::min(IH, PH - pt), colsIn = std::min(IW, PW - pl);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t c = 0; c < C; ++c) {
      const T* xc = x + (n * C + c) * IH * IW;
      for (int64_t ih = 0; colsIn > 0 && ih < rowsIn; ++ih)
        std::copy(xc + ih * IW, xc + ih * IW + colsIn, pad + (ih + pt) * PW + pl);
      for (int64_t m = c * mult; m < (c + 1) * mult; ++m) {
        T* yc = y + (n * M + m) * OH * OW;
        const T* wk = w + m * KH * KWd;
        std::fill(yc, yc + OH * OW, bias ? bias[m] : T(0));
        for (int64_t oh = 0; oh < OH; ++oh) {
          T* yrow = yc + oh * OW;
          for (int64_t kh = 0; kh < KH; ++kh) {
            const int64_t r = oh * sh + kh * dh;
            if (r < pt || r >= pt + rowsIn) continue;  // a row of zeros
            dwRow<T, KW>(yrow, pad + r * PW, wk + kh * KWd, KWd, OW, sw, dw);
          }
        }
      }
    }
  }
}

template <typename T>
void depthwise2d(const T* x, const T* w, const T* bias, T* y, int64_t N, int64_t C, int64_t M,
                 const ConvGeom& g, Arena& scratch) {
  const int64_t OH = g.out[0], OW = g.out[1], KH = g.kernel[0], KW = g.kernel[1];
  const int64_t sh = g.stride[0], sw = g.stride[1], dh = g.dilation[0], dw = g.dilation[1];
  const int64_t PH = (OH - 1) * sh + (KH - 1) * dh + 1, PW = (OW - 1) * sw + (KW - 1) * dw + 1;
  T* pad = scratch.alloc<T>(static_cast<size_t>(PH * PW));
  std::fill(pad, pad + PH * PW, T(0));  // only the interior is rewritten
  const int64_t dims[12] = {g.in[0], g.in[1], OH, OW, KH, KW, sh, sw, dh, dw, g.padBegin[0], g.padBegin[1]};
  switch (KW) {
    case 3: return depthwise2dPlanes<T, 3>(x, w, bias, y, N, C, M, dims, pad);
    case 5: return depthwise2dPlanes<T, 5>(x, w, bias, y, N, C, M, dims, pad);
    case 7: return depthwise2dPlanes<T, 7>(x, w, bias, y, N, C, M, dims, pad);
    default: return depthwise2dPlanes<T, 0>(x, w, bias, y, N, C, M, dims, pad);
  }
}

// Fills each [spatial] plane of y ([N, M, S]) with its channel's bias (or 0).
template <typename T>
void fillBias(T* y, const T* bias, int64_t N, int64_t M, int64_t S) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m) std::fill(y + (n * M + m) * S, y + (n * M + m + 1) * S, bias ? bias[m] : T(0));
}

// ----------------------------------------------------------------------------------------------
// Conv: X [N, C, in...], W [M, C/group, k...], B [M] -> Y [N, M, out...].

template <typename T>
void convForward(OpContext<T>& ctx) {
  const Tensor& X = ctx.in(0);
  const Tensor& W = ctx.in(1);
  const Tensor* Bt = ctx.has(2) ? &ctx.in(2) : nullptr;
  const ConvGeom g = convGeom(NodeCheck{ctx.node}, X.dims, W.dims);
  const int64_t N = X.dims[0], C = X.dims[1], M = W.dims[0], group = g.group;
  if (Bt) ctx.check(Bt->rank() == 1 && Bt->dims[0] == M, "expected B of dims [" + str(M) + "] but got " + str(Bt->dims));

  Dims yd{N, M};
  yd.insert(yd.end(), g.out.begin(), g.out.end());
  T* y = ctx.output(0, yd);
  const int64_t outSz = numelOf(g.out), inSz = numelOf(g.in), kSz = numelOf(g.kernel);
  if (numelOf(yd) == 0) return;
  const T* x = X.template data<T>();
  const T* w = W.template data<T>();
  const T* bias = Bt ? Bt->template data<T>() : nullptr;

  if (g.nd == 2 && group == C && group > 1) {
    depthwise2d(x, w, bias, y, N, C, M, g, ctx.scratch);
    return;
  }
  if (ops::convDirectApplies(C, M, group, g.nd, g.kernel.data(), g.stride.data(), g.padBegin.data(), g.padEnd.data())) {
    const ops::DirectGeom dg{C, M, g.in[0], g.in[1], g.out[0], g.out[1], g.kernel[0], g.kernel[1],
                        g.dilation[0], g.dilation[1], g.padBegin[0], g.padBegin[1]};
    ops::convDirectForward(x, w, bias, y, N, dg, ctx.scratch);
    return;
  }

  const int64_t Cg = C / group, Mg = M / group, rows = Cg * kSz;
  bool direct = true;  // 1x1, stride 1, no pads: the image is its own column matrix
  for (int i = 0; i < g.nd; ++i)
    direct = direct && g.kernel[i] == 1 && g.stride[i] == 1 && g.padBegin[i] == 0 && g.padEnd[i] == 0;
  if (rows == 0) {
    fillBias(y, bias, N, M, outSz);
    return;
  }
  // With a bias, each image's output block is filled with it right before its gemm adds into it
  // (beta 1), so the block is still in cache; without one the gemm overwrites it (beta 0).
  // The column matrix of a large image does not fit in cache, and the gemm streams it: build it
  // in chunks of output rows (first spatial dim) of about kColBytes, one image at a time.
  constexpr int64_t kColBytes = 1 << 20;
  const int64_t outRow = outSz / g.out[0], inRow = g.in[0] > 0 ? inSz / g.in[0] : 0;
  int64_t chunkRows = g.out[0];
  if (!direct && rows * outSz * static_cast<int64_t>(sizeof(T)) > kColBytes)
    chunkRows = std::max<int64_t>(1, std::min(g.out[0], kColBytes / static_cast<int64_t>(sizeof(T)) / (rows * outRow)));
  T* col = direct ? nullptr : ctx.scratch.template alloc<T>(static_cast<size_t>(rows * chunkRows * outRow));
  Dims inC = g.in, padC = g.padBegin, outC = g.out;
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t gi = 0; gi < group; ++gi) {
      const T* xg = x + (n * C + gi * Cg) * inSz;
      T* yg = y + (n * M + gi * Mg) * outSz;
      const T* wg = w + gi * Mg * rows;
      const T beta = bias ? T(1) : T(0);
      if (bias) fillBias(yg, bias + gi * Mg, 1, Mg, outSz);
      if (direct) {
        kernels::gemm(false, false, Mg, outSz, rows, T(1), wg, rows, xg, outSz, beta, yg, outSz);
        continue;
      }
      if (chunkRows == g.out[0]) {
        kernels::im2col<T>(xg, Cg, g.nd, g.in.data(), g.kernel.data(), g.stride.data(), g.dilation.data(),
                           g.padBegin.data(), g.out.data(), col);
        kernels::gemm(false, false, Mg, outSz, rows, T(1), wg, rows, col, outSz, beta, yg, outSz);
        continue;
      }
      for (int64_t r0 = 0; r0 < g.out[0]; r0 += chunkRows) {
        // Output rows [r0, r1) read input rows from a = r0 * stride - padBegin on: im2col of the
        // sub-image starting at max(a, 0) with a leading pad of max(-a, 0), channel by channel.
        const int64_t r1 = std::min(g.out[0], r0 + chunkRows), cn = (r1 - r0) * outRow;
        const int64_t a = r0 * g.stride[0] - g.padBegin[0], start = std::max<int64_t>(a, 0);
        inC[0] = std::max<int64_t>(0, g.in[0] - start);
        padC[0] = start - a;
        outC[0] = r1 - r0;
        for (int64_t c = 0; c < Cg; ++c)
          kernels::im2col<T>(xg + c * inSz + std::min(start, g.in[0]) * inRow, 1, g.nd, inC.data(), g.kernel.data(),
                             g.stride.data(), g.dilation.data(), padC.data(), outC.data(), col + c * kSz * cn);
        kernels::gemm(false, false, Mg, cn, rows, T(1), wg, rows, col, cn, beta, yg + r0 * outRow, outSz);
      }
    }
  }
}

// ----------------------------------------------------------------------------------------------
// ConvTranspose: X [N, C, in...], W [C, M/group, k...], B [M] -> Y [N, M, out...].

template <typename T>
void convTransposeForward(OpContext<T>& ctx) {
  const Tensor& X = ctx.in(0);
  const Tensor& W = ctx.in(1);
  const Tensor* Bt = ctx.has(2) ? &ctx.in(2) : nullptr;
  const ConvGeom g = convTransposeGeom(NodeCheck{ctx.node}, X.dims, W.dims);
  const int64_t N = X.dims[0], C = X.dims[1], group = g.group;
  const int64_t Mg = W.dims[1], M = Mg * group;
  if (Bt) ctx.check(Bt->rank() == 1 && Bt->dims[0] == M, "expected B of dims [" + str(M) + "] but got " + str(Bt->dims));

  Dims yd{N, M};
  yd.insert(yd.end(), g.out.begin(), g.out.end());
  T* y = ctx.output(0, yd);
  if (numelOf(yd) == 0) return;
  const int64_t outSz = numelOf(g.out), inSz = numelOf(g.in), kSz = numelOf(g.kernel);
  const T* x = X.template data<T>();
  const T* w = W.template data<T>();
  const T* bias = Bt ? Bt->template data<T>() : nullptr;
  fillBias(y, bias, N, M, outSz);

  const int64_t Cg = C / group, rows = Mg * kSz;
  if (Cg == 0 || rows == 0 || inSz == 0) return;
  bool direct = outSz == inSz;  // 1x1, stride 1, no pads: gemm straight into Y
  for (int i = 0; i < g.nd; ++i)
    direct = direct && g.kernel[i] == 1 && g.stride[i] == 1 && g.padBegin[i] == 0 && g.out[i] == g.in[i];
  T* col = direct ? nullptr : ctx.scratch.template alloc<T>(static_cast<size_t>(rows * inSz));
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t gi = 0; gi < group; ++gi) {
      const T* xg = x + (n * C + gi * Cg) * inSz;  // [Cg, inSz]
      const T* wg = w + gi * Cg * rows;              // [Cg, Mg * k]
      T* yg = y + (n * M + gi * Mg) * outSz;
      if (direct) {
        kernels::gemm(true, false, Mg, inSz, Cg, T(1), wg, rows, xg, inSz, T(1), yg, outSz);
        continue;
      }
      kernels::gemm(true, false, rows, inSz, Cg, T(1), wg, rows, xg, inSz, T(0), col, inSz);
      kernels::col2im<T>(col, Mg, g.nd, g.out.data(), g.kernel.data(), g.stride.data(), g.dilation.data(),
                         g.padBegin.data(), g.in.data(), yg);
    }
  }
}

}  // namespace

namespace ops {
// The resolved geometry of a Conv (transpose = false) or ConvTranspose node for X and W dims, for
// the gradient rules in conv_grad.cpp (which declares it; the conv family has no header of its own):
// geom = {in, out, kernel, stride, dilation, padBegin, padEnd}; returns the group count.
int64_t resolveConvGeometry(const Node& node, bool transpose, const Dims& x, const Dims& w, Dims (&geom)[7]) {
  const NodeCheck chk{node};
  ConvGeom g = transpose ? convTransposeGeom(chk, x, w) : convGeom(chk, x, w);
  geom[0] = std::move(g.in);
  geom[1] = std::move(g.out);
  geom[2] = std::move(g.kernel);
  geom[3] = std::move(g.stride);
  geom[4] = std::move(g.dilation);
  geom[5] = std::move(g.padBegin);
  geom[6] = std::move(g.padEnd);
  return g.group;
}
}  // namespace ops

FIT_REGISTER_OP("Conv", convForward);
FIT_REGISTER_OP("ConvTranspose", convTransposeForward);

}  // namespace fit
