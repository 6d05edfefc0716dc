// Pooling: MaxPool, AveragePool (1-D/2-D/3-D, pads, strides, dilations, ceil_mode, auto_pad,
// count_include_pad), GlobalAveragePool, GlobalMaxPool. Every pooling is run as a 3-D pooling
// (missing leading spatial dims get size 1) as separable passes along each spatial axis, with
// per-dim window tables computed once per op so the loops have no bounds checks.
#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "util.h"

namespace fit {
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

// Reads the pooling attributes and computes output sizes (onnxruntime's rules: SAME_* pads are
// computed without dilation, ceil_mode drops a last window that would start in the end padding).
template <typename T>
PoolGeom readPoolGeom(const OpContext<T>& ctx, const Tensor& X, bool allowDilations) {
  ctx.check(X.rank() >= 3 && X.rank() <= 5,
            "expected X of rank 3, 4 or 5 ([N, C, spatial...]) but got dims " + str(X.dims));
  const int nd = X.rank() - 2;
  const Dims ks = ctx.node.ints("kernel_shape");
  if (ks.empty()) ctx.fail(ErrorCode::InvalidAttribute, "the kernel_shape attribute is required");
  if (static_cast<int>(ks.size()) != nd)
    ctx.fail(ErrorCode::InvalidAttribute, "kernel_shape " + str(ks) + " has " + str(int64_t(ks.size())) +
                                              " values but X " + str(X.dims) + " has " + str(int64_t(nd)) +
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
    p.in = X.dims[2 + i];
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
      ctx.fail(ErrorCode::ShapeMismatch, "spatial dim " + str(int64_t(i)) + " of X " + str(X.dims) + " (padded to " +
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

// Runs the passes W, H, D (skipping identity axes) through scratch buffers into y.
template <typename T, bool IsMax>
void runPool(OpContext<T>& ctx, const Tensor& X, const PoolGeom& g, bool includePad, T* y) {
  const int64_t planes = X.dims[0] * X.dims[1];
  Dims cur{planes, g.d[0].in, g.d[1].in, g.d[2].in};
  std::vector<int> axes;
  for (int a = 2; a >= 0; --a) {
    const PoolDim& p = g.d[a];
    const bool identity = p.kernel == 1 && p.stride == 1 && p.padBegin == 0 && p.padEnd == 0 && p.out == p.in;
    if (!identity) axes.push_back(a);
  }
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

}  // namespace

FIT_REGISTER_OP("MaxPool", maxPoolForward);
FIT_REGISTER_OP("AveragePool", averagePoolForward);
FIT_REGISTER_OP("GlobalAveragePool", globalAveragePoolForward);
FIT_REGISTER_OP("GlobalMaxPool", globalMaxPoolForward);

}  // namespace fit
