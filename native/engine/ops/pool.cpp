// Pooling: MaxPool, AveragePool (1-D/2-D/3-D, pads, strides, dilations, ceil_mode, auto_pad,
// count_include_pad), GlobalAveragePool, GlobalMaxPool. Every pooling is run as a 3-D pooling
// (missing leading spatial dims get size 1) with per-dim window tables computed once per op, so
// the inner loops have no bounds checks.
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
  bool defaultDilations = true;
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
    if (p.dilation != 1) g.defaultDilations = false;
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

template <typename T>
void maxPoolForward(OpContext<T>& ctx) {
  if (ctx.node.outputs.size() > 1 && ctx.node.outputs[1] != -1)
    ctx.fail(ErrorCode::UnsupportedOp, "the Indices output of MaxPool is not supported");
  if (ctx.node.i("storage_order", 0) != 0)
    ctx.fail(ErrorCode::InvalidAttribute, "storage_order=1 is only meaningful for the Indices output, which is not supported");
  const Tensor& X = ctx.in(0);
  const PoolGeom g = readPoolGeom(ctx, X, ctx.opset >= 10);
  T* y = allocPoolOutput(ctx, X, g);
  const T* x = X.template data<T>();
  const PoolDim &D = g.d[0], &H = g.d[1], &W = g.d[2];
  const int64_t planes = X.dims[0] * X.dims[1];
  const int64_t inSz = D.in * H.in * W.in, outSz = D.out * H.out * W.out;
  for (int64_t c = 0; c < planes; ++c) {
    const T* xc = x + c * inSz;
    T* yc = y + c * outSz;
    for (int64_t od = 0; od < D.out; ++od)
      for (int64_t oh = 0; oh < H.out; ++oh)
        for (int64_t ow = 0; ow < W.out; ++ow) {
          T m = std::numeric_limits<T>::lowest();
          for (int64_t kd = D.kLo[od]; kd < D.kHi[od]; ++kd) {
            const T* xd = xc + (D.start[od] + kd * D.dilation) * H.in * W.in;
            for (int64_t kh = H.kLo[oh]; kh < H.kHi[oh]; ++kh) {
              const T* xr = xd + (H.start[oh] + kh * H.dilation) * W.in + W.start[ow];
              for (int64_t kw = W.kLo[ow]; kw < W.kHi[ow]; ++kw) {
                const T v = xr[kw * W.dilation];
                m = v > m ? v : m;
              }
            }
          }
          *yc++ = m;
        }
  }
}

template <typename T>
void averagePoolForward(OpContext<T>& ctx) {
  const Tensor& X = ctx.in(0);
  const PoolGeom g = readPoolGeom(ctx, X, ctx.opset >= 19);
  const bool includePad = ctx.node.i("count_include_pad", 0) != 0;
  T* y = allocPoolOutput(ctx, X, g);
  const T* x = X.template data<T>();
  const PoolDim &D = g.d[0], &H = g.d[1], &W = g.d[2];
  const int64_t planes = X.dims[0] * X.dims[1];
  const int64_t inSz = D.in * H.in * W.in, outSz = D.out * H.out * W.out;
  const int64_t fullKernel = D.kernel * H.kernel * W.kernel;
  for (int64_t c = 0; c < planes; ++c) {
    const T* xc = x + c * inSz;
    T* yc = y + c * outSz;
    for (int64_t od = 0; od < D.out; ++od)
      for (int64_t oh = 0; oh < H.out; ++oh)
        for (int64_t ow = 0; ow < W.out; ++ow) {
          T s = 0;
          for (int64_t kd = D.kLo[od]; kd < D.kHi[od]; ++kd) {
            const T* xd = xc + (D.start[od] + kd * D.dilation) * H.in * W.in;
            for (int64_t kh = H.kLo[oh]; kh < H.kHi[oh]; ++kh) {
              const T* xr = xd + (H.start[oh] + kh * H.dilation) * W.in + W.start[ow];
              for (int64_t kw = W.kLo[ow]; kw < W.kHi[ow]; ++kw) s += xr[kw * W.dilation];
            }
          }
          int64_t count;
          if (includePad) {
            // onnxruntime divides by the whole kernel without dilations and by the taps inside
            // the padded input with them.
            count = g.defaultDilations ? fullKernel : D.kPad[od] * H.kPad[oh] * W.kPad[ow];
          } else {
            count = (D.kHi[od] - D.kLo[od]) * (H.kHi[oh] - H.kLo[oh]) * (W.kHi[ow] - W.kLo[ow]);
          }
          *yc++ = count > 0 ? s / static_cast<T>(count) : T(0);
        }
  }
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
    if (IsMax) {
      T m = std::numeric_limits<T>::lowest();
      for (int64_t i = 0; i < S; ++i) m = xc[i] > m ? xc[i] : m;
      y[c] = m;
    } else {
      double s = 0;
      for (int64_t i = 0; i < S; ++i) s += xc[i];
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
