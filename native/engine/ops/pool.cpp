// Pooling: MaxPool, AveragePool (1-D/2-D/3-D, pads, strides, dilations, ceil_mode, auto_pad,
// count_include_pad), GlobalAveragePool, GlobalMaxPool. Every pooling is run as a 3-D pooling
// (missing leading spatial dims get size 1) as separable passes along each spatial axis, with
// per-dim window tables computed once per op so the loops have no bounds checks. Gradient rules
// (end of file): MaxPool/GlobalMaxPool route dy to the argmax (first on ties), the average pools
// run the adjoint passes.
#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "util.h"

namespace fit {
namespace ops {
// pool2x2.cpp: 2x2 / stride 2 max pooling with every window inside the image (2 * out <= in).
template <typename T>
void maxPool2x2Forward(const T* x, T* y, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW);
template <typename T>
void maxPool2x2Backward(const T* x, const T* gy, T* dx, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW);
}  // namespace ops

namespace {

std::string str(const Dims& d) { return dimsToString(d); }
std::string str(int64_t v) { return std::to_string(v); }

// One spatial dim of a pooling, with the valid kernel taps of each output position.
struct PoolDim {
  int64_t in = 1, out = 1, kernel = 1, stride = 1, dilation = 1, padBegin = 0, padEnd = 0;
  std::vector<int64_t> start;     // first input index of the window (may be negative)
  std::vector<int64_t> kLo, kHi;  // valid taps k in [kLo, kHi): 0 <= start + k*d < in
  std::vector<int64_t> kPad;      // taps inside [-padBegin, in + padEnd) (count_include_pad)

  void build() {
    start.resize(out);
    kLo.resize(out);
    kHi.resize(out);
    kPad.resize(out);
    for (int64_t o = 0; o < out; ++o) {
      const int64_t s = o * stride - padBegin;
      int64_t lo = 0, hi = kernel, hp = kernel;
      while (lo < kernel && s + lo * dilation < 0) ++lo;
      while (hi > lo && s + (hi - 1) * dilation >= in) --hi;
      while (hp > 0 && s + (hp - 1) * dilation >= in + padEnd) --hp;
      start[o] = s;
      kLo[o] = lo;
      kHi[o] = std::max(lo, hi);
      kPad[o] = hp;
    }
  }
};

struct PoolGeom {
  PoolDim d[3];
};

// Whether the H and W dims are a 2x2 / stride 2 window, undilated and unpadded at the start, with
// every window inside the image.
bool isPool2x2(const PoolDim& ph, const PoolDim& pw) {
  return ph.kernel == 2 && pw.kernel == 2 && ph.stride == 2 && pw.stride == 2 && ph.dilation == 1 &&
         pw.dilation == 1 && ph.padBegin == 0 && pw.padBegin == 0 && 2 * ph.out <= ph.in && 2 * pw.out <= pw.in;
}

// Reads the pooling attributes and computes output sizes (onnxruntime's rules: SAME_* pads are
// computed without dilation, ceil_mode drops a last window that would start in the end padding).
// Shared by the forward (OpContext) and gradient (GradContext) rules; takes X's dims only, so the
// gradient rules need not keep X (they pass ctx.inDims(0)).
template <typename Ctx>
PoolGeom readPoolGeom(const Ctx& ctx, const Dims& xd, bool allowDilations) {
  const int rank = static_cast<int>(xd.size());
  if (!(rank >= 3 && rank <= 5))
    ctx.fail(ErrorCode::ShapeMismatch, "expected X of rank 3, 4 or 5 ([N, C, spatial...]) but got dims " + str(xd));
  const int nd = rank - 2;
  const Dims ks = ctx.node.ints("kernel_shape");
  if (ks.empty()) ctx.fail(ErrorCode::InvalidAttribute, "the kernel_shape attribute is required");
  if (static_cast<int>(ks.size()) != nd)
    ctx.fail(ErrorCode::InvalidAttribute, "kernel_shape " + str(ks) + " has " + str(int64_t(ks.size())) +
                                              " values but X " + str(xd) + " has " + str(int64_t(nd)) +
                                              " spatial dims");
  auto perDim = [&](const char* key, int64_t def, size_t n) {
    Dims v = ctx.node.ints(key);
    if (v.empty()) v.assign(n, def);
    if (v.size() != n)
      ctx.fail(ErrorCode::InvalidAttribute, std::string(key) + " has " + str(int64_t(v.size())) + " values but " +
                                                str(int64_t(n)) + " are needed");
    return v;
  };
  const Dims strides = perDim("strides", 1, nd);
  const Dims dil = allowDilations ? perDim("dilations", 1, nd) : Dims(nd, 1);
  Dims pads = perDim("pads", 0, 2 * nd);
  const int64_t ceilMode = ctx.node.i("ceil_mode", 0);
  std::string ap = ctx.node.s("auto_pad", "NOTSET");
  if (ap.empty()) ap = "NOTSET";
  if (ap != "NOTSET" && ap != "VALID" && ap != "SAME_UPPER" && ap != "SAME_LOWER")
    ctx.fail(ErrorCode::InvalidAttribute, "auto_pad must be NOTSET, VALID, SAME_UPPER or SAME_LOWER but got '" + ap + "'");

  PoolGeom g;
  for (int i = 0; i < nd; ++i) {
    PoolDim& p = g.d[3 - nd + i];
    p.in = xd[2 + i];
    p.kernel = ks[i];
    p.stride = strides[i];
    p.dilation = dil[i];
    if (p.kernel < 1 || p.stride < 1 || p.dilation < 1)
      ctx.fail(ErrorCode::InvalidAttribute, "kernel_shape, strides and dilations must be >= 1 but got kernel_shape " +
                                                str(ks) + ", strides " + str(strides) + ", dilations " + str(dil));
    p.padBegin = pads[i];
    p.padEnd = pads[nd + i];
    if (ap == "VALID") p.padBegin = p.padEnd = 0;
    if (ap == "SAME_UPPER" || ap == "SAME_LOWER") {
      const int64_t target = (p.in + p.stride - 1) / p.stride;
      const int64_t need = std::max<int64_t>(0, (target - 1) * p.stride + p.kernel - p.in);
      p.padBegin = ap == "SAME_UPPER" ? need / 2 : (need + 1) / 2;
      p.padEnd = need - p.padBegin;
    }
    if (p.padBegin < 0 || p.padEnd < 0 || p.padBegin >= p.kernel || p.padEnd >= p.kernel)
      ctx.fail(ErrorCode::InvalidAttribute, "pads " + str(pads) + " must be >= 0 and smaller than kernel_shape " + str(ks));
    const int64_t dk = (p.kernel - 1) * p.dilation + 1;
    const int64_t span = p.in + p.padBegin + p.padEnd - dk;
    if (span < 0)
      ctx.fail(ErrorCode::ShapeMismatch, "spatial dim " + str(int64_t(i)) + " of X " + str(xd) + " (padded to " +
                                             str(p.in + p.padBegin + p.padEnd) +
                                             ") is smaller than the dilated kernel extent " + str(dk));
    if (ceilMode) {
      p.out = (span + p.stride - 1) / p.stride + 1;
      if ((p.out - 1) * p.stride >= p.in + p.padBegin) --p.out;  // last window would start in the padding
    } else {
      p.out = span / p.stride + 1;
    }
  }
  for (auto& p : g.d) p.build();
  return g;
}

template <typename Ctx>
PoolGeom readPoolGeom(const Ctx& ctx, const Tensor& X, bool allowDilations) {
  return readPoolGeom(ctx, X.dims, allowDilations);
}

template <typename T>
T* allocPoolOutput(OpContext<T>& ctx, const Tensor& X, const PoolGeom& g) {
  Dims yd{X.dims[0], X.dims[1]};
  const int nd = X.rank() - 2;
  for (int i = 0; i < nd; ++i) yd.push_back(g.d[3 - nd + i].out);
  return ctx.output(0, yd);
}

// One separable pass along a spatial axis: src [outer, p.in, inner] -> dst [outer, p.out, inner].
// Max and average pooling over a box are separable: the max (or mean, with per-axis counts whose
// product is the window count) over the box is the pass-by-pass reduction along each axis.
template <typename T, bool IsMax>
void poolPass(const T* src, T* dst, int64_t outer, int64_t inner, const PoolDim& p, bool includePad) {
  const T empty = IsMax ? std::numeric_limits<T>::lowest() : T(0);
  for (int64_t o = 0; o < outer; ++o) {
    const T* so = src + o * p.in * inner;
    T* d = dst + o * p.out * inner;
    for (int64_t j = 0; j < p.out; ++j) {
      const int64_t lo = p.kLo[j], hi = p.kHi[j];
      const int64_t count = includePad ? p.kPad[j] : hi - lo;
      if (lo >= hi || count <= 0) {
        std::fill(d + j * inner, d + (j + 1) * inner, empty);
        continue;
      }
      const T scale = T(1) / static_cast<T>(count);
      if (inner == 1) {
        const T* xs = so + (p.start[j] + lo * p.dilation);
        T acc = xs[0];
        for (int64_t k = 1; k < hi - lo; ++k) {
          const T v = xs[k * p.dilation];
          if (IsMax) acc = v > acc ? v : acc;
          else acc += v;
        }
        d[j] = IsMax ? acc : acc * scale;
        continue;
      }
      T* __restrict dr = d + j * inner;
      const T* first = so + (p.start[j] + lo * p.dilation) * inner;
      std::copy(first, first + inner, dr);
      for (int64_t k = lo + 1; k < hi; ++k) {
        const T* __restrict xr = so + (p.start[j] + k * p.dilation) * inner;
        if (IsMax) {
          for (int64_t i = 0; i < inner; ++i) dr[i] = xr[i] > dr[i] ? xr[i] : dr[i];
        } else {
          for (int64_t i = 0; i < inner; ++i) dr[i] += xr[i];
        }
      }
      if (!IsMax)
        for (int64_t i = 0; i < inner; ++i) dr[i] *= scale;
    }
  }
}

// The spatial axes the separable passes run over, in pass order (W, H, D; identity axes skipped).
std::vector<int> poolAxes(const PoolGeom& g) {
  std::vector<int> axes;
  for (int a = 2; a >= 0; --a) {
    const PoolDim& p = g.d[a];
    const bool identity = p.kernel == 1 && p.stride == 1 && p.padBegin == 0 && p.padEnd == 0 && p.out == p.in;
    if (!identity) axes.push_back(a);
  }
  return axes;
}

// 2-D max pooling without dilation, directly (the common CNN case: the separable passes cost
// several bookkeeping loads per output, more than the few compares of a 2x2 or 3x3 window).
template <typename T>
void maxPool2d(const T* x, T* y, int64_t planes, const PoolDim& ph, const PoolDim& pw) {
  const T lowest = std::numeric_limits<T>::lowest();
  // Outputs [a, b) along W have every tap inside the row.
  int64_t a = 0, b = pw.out;
  while (a < pw.out && (pw.kLo[a] != 0 || pw.kHi[a] != pw.kernel)) ++a;
  while (b > a && (pw.kLo[b - 1] != 0 || pw.kHi[b - 1] != pw.kernel)) --b;
  const int64_t kw = pw.kernel, sw = pw.stride;
  for (int64_t p = 0; p < planes; ++p) {
    const T* xp = x + p * ph.in * pw.in;
    T* yp = y + p * ph.out * pw.out;
    for (int64_t oh = 0; oh < ph.out; ++oh) {
      T* yr = yp + oh * pw.out;
      std::fill(yr, yr + pw.out, lowest);
      for (int64_t kh = ph.kLo[oh]; kh < ph.kHi[oh]; ++kh) {
        const T* xr = xp + (ph.start[oh] + kh) * pw.in;
        for (int64_t ow = 0; ow < a; ++ow)
          for (int64_t k = pw.kLo[ow]; k < pw.kHi[ow]; ++k) yr[ow] = std::max(yr[ow], xr[pw.start[ow] + k]);
        if (kw == 2) {
          for (int64_t ow = a; ow < b; ++ow) {
            const T* xs = xr + (ow * sw - pw.padBegin);
            yr[ow] = std::max(yr[ow], std::max(xs[0], xs[1]));
          }
        } else {
          for (int64_t ow = a; ow < b; ++ow) {
            const T* xs = xr + (ow * sw - pw.padBegin);
            T m = yr[ow];
            for (int64_t k = 0; k < kw; ++k) m = std::max(m, xs[k]);
            yr[ow] = m;
          }
        }
        for (int64_t ow = b; ow < pw.out; ++ow)
          for (int64_t k = pw.kLo[ow]; k < pw.kHi[ow]; ++k) yr[ow] = std::max(yr[ow], xr[pw.start[ow] + k]);
      }
    }
  }
}

// Runs the passes W, H, D (skipping identity axes) through scratch buffers into y.
template <typename T, bool IsMax>
void runPool(OpContext<T>& ctx, const Tensor& X, const PoolGeom& g, bool includePad, T* y) {
  const int64_t planes = X.dims[0] * X.dims[1];
  const PoolDim& pd = g.d[0];
  if (IsMax && pd.kernel == 1 && pd.stride == 1 && pd.padBegin == 0 && pd.padEnd == 0 && pd.out == pd.in &&
      g.d[1].dilation == 1 && g.d[2].dilation == 1) {
    if (isPool2x2(g.d[1], g.d[2]))
      ops::maxPool2x2Forward(X.template data<T>(), y, planes * pd.in, g.d[1].in, g.d[2].in, g.d[1].out, g.d[2].out);
    else
      maxPool2d(X.template data<T>(), y, planes * pd.in, g.d[1], g.d[2]);
    return;
  }
  Dims cur{planes, g.d[0].in, g.d[1].in, g.d[2].in};
  const std::vector<int> axes = poolAxes(g);
  const T* src = X.template data<T>();
  if (axes.empty()) {
    std::copy(src, src + X.numel(), y);
    return;
  }
  for (size_t i = 0; i < axes.size(); ++i) {
    const int a = axes[i];
    int64_t outer = planes, inner = 1;
    for (int k = 0; k < a; ++k) outer *= cur[1 + k];
    for (int k = a + 1; k < 3; ++k) inner *= cur[1 + k];
    Dims next = cur;
    next[1 + a] = g.d[a].out;
    T* dst = i + 1 == axes.size() ? y : ctx.scratch.template alloc<T>(static_cast<size_t>(numelOf(next)));
    poolPass<T, IsMax>(src, dst, outer, inner, g.d[a], includePad);
    src = dst;
    cur = next;
  }
}

template <typename T>
void maxPoolForward(OpContext<T>& ctx) {
  if (ctx.node.outputs.size() > 1 && ctx.node.outputs[1] != -1)
    ctx.fail(ErrorCode::UnsupportedOp, "the Indices output of MaxPool is not supported");
  if (ctx.node.i("storage_order", 0) != 0)
    ctx.fail(ErrorCode::InvalidAttribute, "storage_order=1 is only meaningful for the Indices output, which is not supported");
  const Tensor& X = ctx.in(0);
  const PoolGeom g = readPoolGeom(ctx, X, ctx.opset >= 10);
  T* y = allocPoolOutput(ctx, X, g);
  if (ctx.outputs[0].numel() == 0) return;
  runPool<T, true>(ctx, X, g, false, y);
}

// count_include_pad counts the taps inside the padded input: a ceil_mode window reaching past the
// end padding counts only up to it (as onnxruntime and PyTorch do).
template <typename T>
void averagePoolForward(OpContext<T>& ctx) {
  const Tensor& X = ctx.in(0);
  const PoolGeom g = readPoolGeom(ctx, X, ctx.opset >= 19);
  const bool includePad = ctx.node.i("count_include_pad", 0) != 0;
  T* y = allocPoolOutput(ctx, X, g);
  if (ctx.outputs[0].numel() == 0) return;
  runPool<T, false>(ctx, X, g, includePad, y);
}

template <typename T, bool IsMax>
void globalPoolForward(OpContext<T>& ctx) {
  const Tensor& X = ctx.in(0);
  ctx.check(X.rank() >= 3, "expected X of rank >= 3 ([N, C, spatial...]) but got dims " + str(X.dims));
  Dims yd(X.dims.size(), 1);
  yd[0] = X.dims[0];
  yd[1] = X.dims[1];
  T* y = ctx.output(0, yd);
  const int64_t planes = X.dims[0] * X.dims[1];
  const int64_t S = X.numel() / std::max<int64_t>(1, planes);
  if (planes == 0) return;
  const T* x = X.template data<T>();
  for (int64_t c = 0; c < planes; ++c) {
    const T* xc = x + c * S;
    // 8 independent lanes so the reductions vectorize (sums in double).
    int64_t i = 0;
    if (IsMax) {
      T m[8];
      std::fill(m, m + 8, std::numeric_limits<T>::lowest());
      for (; i + 8 <= S; i += 8)
        for (int l = 0; l < 8; ++l) m[l] = xc[i + l] > m[l] ? xc[i + l] : m[l];
      for (; i < S; ++i) m[0] = xc[i] > m[0] ? xc[i] : m[0];
      y[c] = *std::max_element(m, m + 8);
    } else {
      double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (; i + 8 <= S; i += 8)
        for (int l = 0; l < 8; ++l) a[l] += static_cast<double>(xc[i + l]);
      double s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
      for (; i < S; ++i) s += xc[i];
      y[c] = S > 0 ? static_cast<T>(s / static_cast<double>(S)) : T(0);
    }
  }
}

template <typename T> void globalAveragePoolForward(OpContext<T>& ctx) { globalPoolForward<T, false>(ctx); }
template <typename T> void globalMaxPoolForward(OpContext<T>& ctx) { globalPoolForward<T, true>(ctx); }

// ---- gradients ---------------------------------------------------------------------------------
// MaxPool: dy goes to the argmax of each window, recomputed from the saved X by a direct scan of
// the window (the forward's separable passes keep no indices). Ties go to the first maximal tap in
// window order (depth, then height, then width, each in increasing input index) - the same choice
// as onnxruntime's Indices output and PyTorch; where inputs tie, the function is not differentiable
// and this is one valid subgradient. Overlapping windows accumulate.
template <typename T>
void maxPoolBackward(GradContext<T>& ctx) {
  if (!ctx.wants(0)) return;
  const Tensor& X = ctx.in(0);  // read for the argmax
  const PoolGeom g = readPoolGeom(ctx, X, ctx.opset >= 10);
  const T* gy = ctx.gout(0);
  const T* x = X.template data<T>();
  const PoolDim &pd = g.d[0], &ph = g.d[1], &pw = g.d[2];
  const int64_t planes = X.dims[0] * X.dims[1];
  const int64_t inVol = pd.in * ph.in * pw.in, outVol = pd.out * ph.out * pw.out;
  // 2x2 windows with stride 2 inside the image (the usual CNN pool): branch-free argmax, same tie
  // rule (first in window order), writing every element of dx.
  if (pd.kernel == 1 && pd.stride == 1 && pd.padBegin == 0 && pd.padEnd == 0 && isPool2x2(ph, pw)) {
    ops::maxPool2x2Backward(x, gy, ctx.gradInput(0, X.dims), planes * pd.in, ph.in, pw.in, ph.out, pw.out);
    return;
  }
  T* dx = ctx.gradInputZeros(0, X.dims);
  for (int64_t c = 0; c < planes; ++c) {
    const T* xp = x + c * inVol;
    T* dp = dx + c * inVol;
    const T* gp = gy + c * outVol;
    int64_t o = 0;
    for (int64_t od = 0; od < pd.out; ++od)
      for (int64_t oh = 0; oh < ph.out; ++oh)
        for (int64_t ow = 0; ow < pw.out; ++ow, ++o) {
          int64_t best = -1;
          T bv = T(0);
          for (int64_t kd = pd.kLo[od]; kd < pd.kHi[od]; ++kd) {
            const int64_t id = pd.start[od] + kd * pd.dilation;
            for (int64_t kh = ph.kLo[oh]; kh < ph.kHi[oh]; ++kh) {
              const int64_t row = (id * ph.in + ph.start[oh] + kh * ph.dilation) * pw.in + pw.start[ow];
              for (int64_t kw = pw.kLo[ow]; kw < pw.kHi[ow]; ++kw) {
                const int64_t i = row + kw * pw.dilation;
                if (best < 0 || xp[i] > bv) {
                  bv = xp[i];
                  best = i;
                }
              }
            }
          }
          if (best >= 0) dp[best] += gp[o];
        }
  }
}

// Adjoint of one average pass: gdst [outer, p.out, inner] -> gsrc [outer, p.in, inner].
template <typename T>
void avgPassAdjoint(const T* gdst, T* gsrc, int64_t outer, int64_t inner, const PoolDim& p, bool includePad) {
  std::fill(gsrc, gsrc + outer * p.in * inner, T(0));
  for (int64_t o = 0; o < outer; ++o) {
    const T* go = gdst + o * p.out * inner;
    T* gs = gsrc + o * p.in * inner;
    for (int64_t j = 0; j < p.out; ++j) {
      const int64_t lo = p.kLo[j], hi = p.kHi[j];
      const int64_t count = includePad ? p.kPad[j] : hi - lo;
      if (lo >= hi || count <= 0) continue;
      const T scale = T(1) / static_cast<T>(count);
      const T* __restrict gr = go + j * inner;
      for (int64_t k = lo; k < hi; ++k) {
        T* __restrict r = gs + (p.start[j] + k * p.dilation) * inner;
        for (int64_t i = 0; i < inner; ++i) r[i] += scale * gr[i];
      }
    }
  }
}

// AveragePool: the forward's separable passes adjoined in reverse order (the same per-axis counts,
// so count_include_pad, ceil_mode, pads, strides and dilations all follow). Needs only X's dims.
template <typename T>
void averagePoolBackward(GradContext<T>& ctx) {
  if (!ctx.wants(0)) return;
  const Dims& xd = ctx.inDims(0);
  const PoolGeom g = readPoolGeom(ctx, xd, ctx.opset >= 19);
  const bool includePad = ctx.node.i("count_include_pad", 0) != 0;
  T* dx = ctx.gradInput(0, xd);
  const T* gy = ctx.gout(0);
  const std::vector<int> axes = poolAxes(g);
  if (axes.empty()) {
    std::copy(gy, gy + numelOf(xd), dx);
    return;
  }
  const int64_t planes = xd[0] * xd[1];
  std::vector<Dims> seq{{planes, g.d[0].in, g.d[1].in, g.d[2].in}};  // dims before each pass
  for (int a : axes) {
    seq.push_back(seq.back());
    seq.back()[1 + a] = g.d[a].out;
  }
  const T* src = gy;
  for (size_t i = axes.size(); i-- > 0;) {
    const int a = axes[i];
    const Dims& cur = seq[i];
    int64_t outer = planes, inner = 1;
    for (int k = 0; k < a; ++k) outer *= cur[1 + k];
    for (int k = a + 1; k < 3; ++k) inner *= cur[1 + k];
    T* dst = i == 0 ? dx : ctx.scratch.template alloc<T>(static_cast<size_t>(std::max<int64_t>(1, numelOf(cur))));
    avgPassAdjoint(src, dst, outer, inner, g.d[a], includePad);
    src = dst;
  }
}

// GlobalAveragePool: dy / S to every element of the plane (needs only X's dims). GlobalMaxPool: dy
// to the first maximum (reads X).
template <typename T, bool IsMax>
void globalPoolBackward(GradContext<T>& ctx) {
  if (!ctx.wants(0)) return;
  const Dims& xd = ctx.inDims(0);
  const int64_t planes = xd.at(0) * xd.at(1);
  const int64_t S = numelOf(xd) / std::max<int64_t>(1, planes);
  if (!IsMax && ctx.accumTarget(0)) {  // fan-in (squeeze-excitation): add into the running sum
    T* acc = ctx.accumTarget(0);
    const T* gy = ctx.gout(0);
    for (int64_t c = 0; c < planes && S > 0; ++c) {
      T* d = acc + c * S;
      const T v = gy[c] / static_cast<T>(S);
      for (int64_t i = 0; i < S; ++i) d[i] += v;
    }
    ctx.accumulated(0);
    return;
  }
  T* dx = IsMax ? ctx.gradInputZeros(0, xd) : ctx.gradInput(0, xd);
  const T* gy = ctx.gout(0);
  const T* x = IsMax ? ctx.in(0).template data<T>() : nullptr;
  for (int64_t c = 0; c < planes && S > 0; ++c) {
    T* d = dx + c * S;
    if (IsMax) {
      const T* xc = x + c * S;
      d[std::max_element(xc, xc + S) - xc] = gy[c];  // max_element returns the first maximum
    } else {
      std::fill(d, d + S, gy[c] / static_cast<T>(S));
    }
  }
}

template <typename T> void globalAveragePoolBackward(GradContext<T>& ctx) { globalPoolBackward<T, false>(ctx); }
template <typename T> void globalMaxPoolBackward(GradContext<T>& ctx) { globalPoolBackward<T, true>(ctx); }

}  // namespace

FIT_REGISTER_OP("MaxPool", maxPoolForward);
FIT_REGISTER_OP("AveragePool", averagePoolForward);
FIT_REGISTER_OP("GlobalAveragePool", globalAveragePoolForward);
FIT_REGISTER_OP("GlobalMaxPool", globalMaxPoolForward);
// MaxPool and GlobalMaxPool read X for the argmax; the average pools need only X's dims (inDims).
FIT_REGISTER_GRAD("MaxPool", maxPoolBackward, slot(0), kNoSlots);
FIT_REGISTER_GRAD("AveragePool", averagePoolBackward, kNoSlots, kNoSlots);
FIT_REGISTER_GRAD("GlobalAveragePool", globalAveragePoolBackward, kNoSlots, kNoSlots);
FIT_REGISTER_GRAD("GlobalMaxPool", globalMaxPoolBackward, slot(0), kNoSlots);

}  // namespace fit
