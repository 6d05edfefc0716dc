// Resize (opset 10: X, scales; opset 11+: X, roi, scales, sizes; opset 18+: axes,
// keep_aspect_ratio_policy) and Upsample (opset 7-8: scales attribute; opset 9: scales input).
// Modes: nearest (every coordinate_transformation_mode and nearest_mode) and N-linear, done as
// separable 1-D passes over the resized axes. Coordinates follow onnxruntime: Upsample and
// Resize-10 use asymmetric coordinates with onnxruntime's "simple" nearest rounding. Gradient
// rules (end of file): the adjoints of the same passes, for X only.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "util.h"

namespace fit {
namespace {

std::string str(const Dims& d) { return dimsToString(d); }
std::string str(int64_t v) { return std::to_string(v); }

enum class Coord { HalfPixel, HalfPixelSymmetric, Asymmetric, AlignCorners, PytorchHalfPixel, TfHalfPixelForNearest, TfCropAndResize };
enum class Round { PreferFloor, PreferCeil, Floor, Ceil, Simple };

template <typename T>
struct ResizeSpec {
  bool linear = false;
  Coord coord = Coord::HalfPixel;
  Round round = Round::PreferFloor;
  T extrapolation = 0;
  std::vector<T> scales;          // per axis of X
  std::vector<T> roiStart, roiEnd;  // per axis (tf_crop_and_resize)
  Dims out;                        // output dims
};

// Maps output coordinate x of one axis to the input coordinate (onnxruntime's formulas).
template <typename T>
T sourceCoord(Coord m, T x, T scale, int64_t lenOut, int64_t lenIn, T roiS, T roiE) {
  const T half = T(0.5);
  switch (m) {
    case Coord::HalfPixel: return (x + half) / scale - half;
    case Coord::HalfPixelSymmetric: {
      const T outWidth = scale * static_cast<T>(lenIn);
      const T adjustment = static_cast<T>(lenOut) / outWidth;
      const T center = static_cast<T>(lenIn) / T(2);
      const T offset = center * (T(1) - adjustment);
      return offset + (x + half) / scale - half;
    }
    case Coord::Asymmetric: return x / scale;
    case Coord::AlignCorners:
      return lenOut == 1 ? T(0) : x * static_cast<T>(lenIn - 1) / static_cast<T>(lenOut - 1);
    case Coord::PytorchHalfPixel: return lenOut > 1 ? (x + half) / scale - half : T(0);
    case Coord::TfHalfPixelForNearest: return (x + half) / scale;
    case Coord::TfCropAndResize:
      return lenOut > 1 ? roiS * static_cast<T>(lenIn - 1) +
                              x * (roiE - roiS) * static_cast<T>(lenIn - 1) / static_cast<T>(lenOut - 1)
                        : half * (roiS + roiE) * static_cast<T>(lenIn - 1);
  }
  return x;
}

template <typename T>
int64_t roundCoord(Round r, T x, bool downsample) {
  switch (r) {
    case Round::PreferFloor:
      return x == std::floor(x) + T(0.5) ? static_cast<int64_t>(std::floor(x)) : static_cast<int64_t>(std::round(x));
    case Round::PreferCeil: return static_cast<int64_t>(std::round(x));
    case Round::Floor: return static_cast<int64_t>(std::floor(x));
    case Round::Ceil: return static_cast<int64_t>(std::ceil(x));
    case Round::Simple: return downsample ? static_cast<int64_t>(std::ceil(x)) : static_cast<int64_t>(x);
  }
  return 0;
}

// Nearest: per-axis tables of input offsets (-1: extrapolate) for every output index.
template <typename T>
std::vector<std::vector<int64_t>> nearestOffsets(const ResizeSpec<T>& s, const Dims& xd) {
  const int r = static_cast<int>(xd.size());
  const Dims inStrides = stridesOf(xd);
  std::vector<std::vector<int64_t>> off(r);
  for (int a = 0; a < r; ++a) {
    const int64_t lenIn = xd[a], lenOut = s.out[a];
    off[a].resize(lenOut);
    for (int64_t j = 0; j < lenOut; ++j) {
      const T c = sourceCoord<T>(s.coord, static_cast<T>(j), s.scales[a], lenOut, lenIn, s.roiStart[a], s.roiEnd[a]);
      if (s.coord == Coord::TfCropAndResize && (c < T(0) || c > static_cast<T>(lenIn - 1))) {
        off[a][j] = -1;
        continue;
      }
      int64_t i = roundCoord<T>(s.round, c, s.scales[a] < T(1));
      i = std::min(std::max<int64_t>(i, 0), lenIn - 1);
      off[a][j] = i * inStrides[a];
    }
  }
  return off;
}

// Nearest: gathers x into y through the offset tables; the adjoint (Adjoint = true, x and y being
// the gradients dy and dx, dx zeroed) scatter-adds dy back into the picked elements.
template <typename T, bool Adjoint = false>
void resizeNearest(const ResizeSpec<T>& s, const Dims& xd, const T* x, T* y) {
  const int r = static_cast<int>(xd.size());
  const std::vector<std::vector<int64_t>> off = nearestOffsets(s, xd);
  const int64_t lastOut = s.out[r - 1];
  const int64_t rows = numelOf(s.out) / std::max<int64_t>(1, lastOut);
  const std::vector<int64_t>& lastOff = off[r - 1];
  Dims idx(r, 0);
  for (int64_t row = 0; row < rows; ++row) {
    int64_t base = 0;
    bool outside = false;
    for (int a = 0; a < r - 1; ++a) {
      const int64_t o = off[a][idx[a]];
      outside = outside || o < 0;
      base += o;
    }
    if (Adjoint) {
      const T* gr = x + row * lastOut;
      for (int64_t j = 0; j < lastOut && !outside; ++j)
        if (lastOff[j] >= 0) y[base + lastOff[j]] += gr[j];
    } else if (outside) {
      std::fill(y + row * lastOut, y + (row + 1) * lastOut, s.extrapolation);
    } else {
      T* yr = y + row * lastOut;
      const T* xb = x + base;
      for (int64_t j = 0; j < lastOut; ++j) yr[j] = lastOff[j] < 0 ? s.extrapolation : xb[lastOff[j]];
    }
    for (int a = r - 2; a >= 0; --a) {  // odometer over the leading axes
      if (++idx[a] < s.out[a]) break;
      idx[a] = 0;
    }
  }
}

// The two taps i0, i1 and the weight w1 of i1 of every output index of a linear pass along one
// axis: out[j] = (1 - w1) * in[i0] + w1 * in[i1], or the extrapolation value where extrap[j].
template <typename T>
struct LinearTaps {
  std::vector<int64_t> i0, i1;
  std::vector<T> w1;
  std::vector<char> extrap;
};

template <typename T>
LinearTaps<T> linearTaps(const ResizeSpec<T>& s, int a, int64_t lenIn) {
  const int64_t lenOut = s.out[a];
  LinearTaps<T> t;
  std::vector<int64_t>&i0 = t.i0, &i1 = t.i1;
  std::vector<T>& w1 = t.w1;
  std::vector<char>& extrap = t.extrap;
  i0.resize(lenOut);
  i1.resize(lenOut);
  w1.resize(lenOut);
  extrap.assign(lenOut, 0);
  for (int64_t j = 0; j < lenOut; ++j) {
    T c = sourceCoord<T>(s.coord, static_cast<T>(j), s.scales[a], lenOut, lenIn, s.roiStart[a], s.roiEnd[a]);
    if (s.coord == Coord::TfCropAndResize && (c < T(0) || c > static_cast<T>(lenIn - 1))) extrap[j] = 1;
    c = std::max(T(0), std::min(c, static_cast<T>(lenIn - 1)));
    i0[j] = std::min(static_cast<int64_t>(c), lenIn - 1);
    i1[j] = std::min(i0[j] + 1, lenIn - 1);
    w1[j] = i1[j] == i0[j] ? T(0) : c - static_cast<T>(i0[j]);
  }
  return t;
}

// One linear pass along axis a: src [outer, inA, inner] -> dst [outer, outA, inner]. The adjoint
// (Adjoint = true) maps the gradient src [outer, outA, inner] to dst [outer, inA, inner].
template <typename T, bool Adjoint = false>
void linearPass(const ResizeSpec<T>& s, int a, const Dims& cur, const T* src, T* dst) {
  const int64_t lenIn = cur[a], lenOut = s.out[a];
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < a; ++i) outer *= cur[i];
  for (size_t i = a + 1; i < cur.size(); ++i) inner *= cur[i];
  const LinearTaps<T> t = linearTaps(s, a, lenIn);
  const std::vector<int64_t>&i0 = t.i0, &i1 = t.i1;
  const std::vector<T>& w1 = t.w1;
  const std::vector<char>& extrap = t.extrap;
  if (Adjoint) std::fill(dst, dst + outer * lenIn * inner, T(0));
  for (int64_t o = 0; o < outer; ++o) {
    if (Adjoint) {  // transposed taps; extrapolated outputs pass nothing back
      T* gi = dst + o * lenIn * inner;
      const T* g = src + o * lenOut * inner;
      for (int64_t j = 0; j < lenOut; ++j, g += inner) {
        if (extrap[j]) continue;
        T* s0 = gi + i0[j] * inner;
        T* s1 = gi + i1[j] * inner;
        const T wb = w1[j], wa = T(1) - wb;
        for (int64_t k = 0; k < inner; ++k) s0[k] += wa * g[k];
        for (int64_t k = 0; k < inner; ++k) s1[k] += wb * g[k];
      }
      continue;
    }
    const T* so = src + o * lenIn * inner;
    T* d = dst + o * lenOut * inner;
    if (inner == 1) {
      for (int64_t j = 0; j < lenOut; ++j)
        d[j] = extrap[j] ? s.extrapolation : so[i0[j]] + w1[j] * (so[i1[j]] - so[i0[j]]);
      continue;
    }
    for (int64_t j = 0; j < lenOut; ++j, d += inner) {
      if (extrap[j]) {
        std::fill(d, d + inner, s.extrapolation);
        continue;
      }
      const T* s0 = so + i0[j] * inner;
      const T* s1 = so + i1[j] * inner;
      const T wb = w1[j], wa = T(1) - wb;
      for (int64_t k = 0; k < inner; ++k) d[k] = wa * s0[k] + wb * s1[k];
    }
  }
}

// N-linear resize as separable passes (downscaling axes first), ping-ponging through scratch.
template <typename T>
std::vector<int> linearAxes(const ResizeSpec<T>& s, const Dims& xd) {
  std::vector<int> axes;
  for (int a = 0; a < static_cast<int>(xd.size()); ++a) {
    const bool identityMap = s.out[a] == xd[a] && s.scales[a] == T(1) && s.coord != Coord::TfCropAndResize;
    if (!identityMap) axes.push_back(a);
  }
  std::stable_sort(axes.begin(), axes.end(), [&](int p, int q) {
    return static_cast<double>(s.out[p]) / xd[p] < static_cast<double>(s.out[q]) / xd[q];
  });
  return axes;
}

template <typename T>
void resizeLinear(OpContext<T>& ctx, const ResizeSpec<T>& s, const Tensor& X, T* y) {
  const int r = X.rank();
  const std::vector<int> axes = linearAxes(s, X.dims);
  const T* x = X.template data<T>();
  if (axes.empty()) {
    std::memcpy(y, x, sizeof(T) * X.numel());
    return;
  }
  Dims cur = X.dims;
  const T* src = x;
  T* bufs[2] = {nullptr, nullptr};
  for (size_t p = 0; p < axes.size(); ++p) {
    const int a = axes[p];
    Dims next = cur;
    next[a] = s.out[a];
    T* dst = y;
    if (p + 1 < axes.size()) {
      T*& b = bufs[p % 2];
      if (!b) {
        // Largest intermediate: bound by the max over remaining shapes; allocate generously.
        int64_t cap = 1;
        for (int i = 0; i < r; ++i) cap *= std::max(X.dims[i], s.out[i]);
        b = ctx.scratch.template alloc<T>(static_cast<size_t>(cap));
      }
      dst = b;
    }
    linearPass(s, a, cur, src, dst);
    src = dst;
    cur = next;
  }
}

template <typename T>
void runResize(OpContext<T>& ctx, ResizeSpec<T>& s) {
  const Tensor& X = ctx.in(0);
  T* y = ctx.output(0, s.out);
  if (numelOf(s.out) == 0) return;
  for (int a = 0; a < X.rank(); ++a)
    ctx.check(X.dims[a] > 0, "cannot resize the empty input " + str(X.dims) + " to " + str(s.out));
  if (s.linear) resizeLinear(ctx, s, X, y);
  else resizeNearest(s, X.dims, X.template data<T>(), y);
}

// Spec readers, shared by the forward (OpContext) and gradient (GradContext) rules.
template <typename Ctx>
void need(const Ctx& ctx, bool cond, const std::string& msg) {
  if (!cond) ctx.fail(ErrorCode::ShapeMismatch, msg);
}

template <typename Ctx>
bool readMode(const Ctx& ctx) {
  const std::string mode = ctx.node.s("mode", "nearest");
  if (mode == "nearest") return false;
  if (mode == "linear" || mode == "bilinear") return true;
  if (mode == "cubic") ctx.fail(ErrorCode::UnsupportedOp, "mode 'cubic' is not supported");
  ctx.fail(ErrorCode::InvalidAttribute, "unknown mode '" + mode + "' (expected nearest or linear)");
}

// Output dims from scales: floor(in * scale), as onnxruntime computes it.
template <typename T, typename Ctx>
void dimsFromScales(const Ctx& ctx, const Dims& xd, ResizeSpec<T>& s) {
  const int r = static_cast<int>(xd.size());
  s.out.resize(r);
  for (int a = 0; a < r; ++a) {
    if (!(s.scales[a] > T(0)))
      ctx.fail(ErrorCode::InvalidInput, "scales must be > 0 but got " + std::to_string(double(s.scales[a])) +
                                            " for axis " + str(int64_t(a)));
    s.out[a] = static_cast<int64_t>(std::floor(s.scales[a] * static_cast<T>(xd[a])));
  }
}

// ----------------------------------------------------------------------------------------------

// Upsample: xd are the dims of input 0 (the gradient rule passes ctx.inDims(0): X is not saved).
template <typename T, typename Ctx>
ResizeSpec<T> upsampleSpec(const Ctx& ctx, const Dims& xd) {
  const int r = static_cast<int>(xd.size());
  need(ctx, r >= 1, "expected X of rank >= 1 but got a scalar");
  ResizeSpec<T> s;
  s.linear = readMode(ctx);
  s.coord = Coord::Asymmetric;
  s.round = Round::Simple;
  s.roiStart.assign(r, T(0));
  s.roiEnd.assign(r, T(1));
  if (ctx.has(1)) {
    const Tensor& sc = ctx.in(1);
    need(ctx, sc.numel() == r, "expected scales with one value per dim of X " + str(xd) + " but got dims " + str(sc.dims));
    const T* p = sc.template data<T>();
    s.scales.assign(p, p + sc.numel());
  } else {
    const std::vector<double> f = ctx.node.floats("scales");
    if (static_cast<int>(f.size()) != r)
      ctx.fail(ErrorCode::InvalidAttribute, "expected the scales attribute to have " + str(int64_t(r)) +
                                                " values (one per dim of X " + str(xd) + ") but got " + str(int64_t(f.size())));
    for (double v : f) s.scales.push_back(static_cast<T>(static_cast<float>(v)));
  }
  dimsFromScales(ctx, xd, s);
  return s;
}

// xd are the dims of input 0 (the gradient rule passes ctx.inDims(0): X is not saved).
template <typename T, typename Ctx>
ResizeSpec<T> resizeSpec(const Ctx& ctx, const Dims& xd) {
  const int r = static_cast<int>(xd.size());
  need(ctx, r >= 1, "expected X of rank >= 1 but got a scalar");
  ResizeSpec<T> s;
  s.linear = readMode(ctx);
  if (ctx.node.i("antialias", 0) != 0) ctx.fail(ErrorCode::UnsupportedOp, "antialias=1 is not supported");
  s.roiStart.assign(r, T(0));
  s.roiEnd.assign(r, T(1));
  s.scales.assign(r, T(1));

  if (ctx.opset < 11) {  // Resize-10: X, scales; asymmetric coordinates
    s.coord = Coord::Asymmetric;
    s.round = Round::Simple;
    const Tensor& sc = ctx.in(1);
    need(ctx, sc.numel() == r, "expected scales with one value per dim of X " + str(xd) + " but got dims " + str(sc.dims));
    const T* p = sc.template data<T>();
    s.scales.assign(p, p + r);
    dimsFromScales(ctx, xd, s);
    return s;
  }

  const std::string cm = ctx.node.s("coordinate_transformation_mode", "half_pixel");
  if (cm == "half_pixel") s.coord = Coord::HalfPixel;
  else if (cm == "half_pixel_symmetric") s.coord = Coord::HalfPixelSymmetric;
  else if (cm == "asymmetric") s.coord = Coord::Asymmetric;
  else if (cm == "align_corners") s.coord = Coord::AlignCorners;
  else if (cm == "pytorch_half_pixel") s.coord = Coord::PytorchHalfPixel;
  else if (cm == "tf_half_pixel_for_nearest" || cm == "tf_half_pixel_for_nn") s.coord = Coord::TfHalfPixelForNearest;
  else if (cm == "tf_crop_and_resize") s.coord = Coord::TfCropAndResize;
  else ctx.fail(ErrorCode::InvalidAttribute, "unknown coordinate_transformation_mode '" + cm + "'");
  const std::string nm = ctx.node.s("nearest_mode", "round_prefer_floor");
  if (nm == "round_prefer_floor") s.round = Round::PreferFloor;
  else if (nm == "round_prefer_ceil") s.round = Round::PreferCeil;
  else if (nm == "floor") s.round = Round::Floor;
  else if (nm == "ceil") s.round = Round::Ceil;
  else ctx.fail(ErrorCode::InvalidAttribute, "unknown nearest_mode '" + nm + "'");
  s.extrapolation = static_cast<T>(ctx.node.f("extrapolation_value", 0.0));

  // axes (opset 18+): scales / sizes / roi only name these axes.
  std::vector<int> axes;
  for (int64_t a : ctx.node.ints("axes")) {
    if (a < -r || a >= r) ctx.fail(ErrorCode::InvalidAttribute, "axis " + str(a) + " is out of range for a rank-" + str(int64_t(r)) + " tensor");
    const int n = static_cast<int>(a < 0 ? a + r : a);
    if (std::find(axes.begin(), axes.end(), n) != axes.end())
      ctx.fail(ErrorCode::InvalidAttribute, "axes " + str(ctx.node.ints("axes")) + " repeats an axis");
    axes.push_back(n);
  }
  if (axes.empty())
    for (int a = 0; a < r; ++a) axes.push_back(a);
  const int64_t na = static_cast<int64_t>(axes.size());

  auto present = [&](size_t i) { return ctx.has(i) && ctx.in(i).numel() > 0; };
  if (present(1) && s.coord == Coord::TfCropAndResize) {
    const Tensor& roi = ctx.in(1);
    need(ctx, roi.numel() == 2 * na, "expected roi with " + str(2 * na) + " values but got dims " + str(roi.dims));
    const T* p = roi.template data<T>();
    for (int64_t i = 0; i < na; ++i) {
      s.roiStart[axes[i]] = p[i];
      s.roiEnd[axes[i]] = p[na + i];
    }
  }
  const bool hasScales = present(2), hasSizes = present(3);
  if (hasScales == hasSizes)
    ctx.fail(ErrorCode::InvalidGraph, "exactly one of scales and sizes must be given (got " +
                                          std::string(hasScales ? "both" : "neither") + ")");
  if (hasScales) {
    const Tensor& sc = ctx.in(2);
    need(ctx, sc.numel() == na, "expected scales with " + str(na) + " values but got dims " + str(sc.dims));
    const T* p = sc.template data<T>();
    for (int64_t i = 0; i < na; ++i) s.scales[axes[i]] = p[i];
    dimsFromScales(ctx, xd, s);
  } else {
    const std::vector<int64_t> sizes = ctx.in(3).toInts();
    need(ctx, static_cast<int64_t>(sizes.size()) == na,
              "expected sizes with " + str(na) + " values but got " + str(int64_t(sizes.size())));
    for (int64_t v : sizes)
      if (v < 0) ctx.fail(ErrorCode::InvalidInput, "sizes must be >= 0 but got " + str(sizes));
    s.out = xd;
    const std::string policy = ctx.node.s("keep_aspect_ratio_policy", "stretch");
    if (policy == "stretch") {
      for (int64_t i = 0; i < na; ++i) {
        const int a = axes[i];
        s.out[a] = sizes[i];
        s.scales[a] = static_cast<T>(sizes[i]) / static_cast<T>(std::max<int64_t>(1, xd[a]));
      }
    } else if (policy == "not_larger" || policy == "not_smaller") {
      T scale = policy == "not_larger" ? T(1e30) : T(0);
      for (int64_t i = 0; i < na; ++i) {
        const T v = static_cast<T>(sizes[i]) / static_cast<T>(std::max<int64_t>(1, xd[axes[i]]));
        scale = policy == "not_larger" ? std::min(scale, v) : std::max(scale, v);
      }
      for (int64_t i = 0; i < na; ++i) {
        const int a = axes[i];
        s.scales[a] = scale;
        s.out[a] = static_cast<int64_t>(std::round(scale * static_cast<T>(xd[a])));
      }
    } else {
      ctx.fail(ErrorCode::InvalidAttribute, "unknown keep_aspect_ratio_policy '" + policy + "'");
    }
  }
  return s;
}

template <typename T, typename Ctx>
ResizeSpec<T> upsampleSpec(const Ctx& ctx, const Tensor& X) {
  return upsampleSpec<T>(ctx, X.dims);
}

template <typename T, typename Ctx>
ResizeSpec<T> resizeSpec(const Ctx& ctx, const Tensor& X) {
  return resizeSpec<T>(ctx, X.dims);
}

template <typename T>
void upsampleForward(OpContext<T>& ctx) {
  ResizeSpec<T> s = upsampleSpec<T>(ctx, ctx.in(0));
  runResize(ctx, s);
}

template <typename T>
void resizeForward(OpContext<T>& ctx) {
  ResizeSpec<T> s = resizeSpec<T>(ctx, ctx.in(0));
  runResize(ctx, s);
}

// ---- gradients ---------------------------------------------------------------------------------
// Resize is linear in X: nearest is a gather (its adjoint a scatter-add of dy into the picked
// elements), linear a product of per-axis two-tap interpolations (its adjoint the transposed
// passes in reverse order). Extrapolated outputs are constants and pass nothing back. roi, scales
// and sizes get no gradient (zeros if one is asked for). The rules need only X's dims (inDims, so
// X is not saved) and read the roi/scales/sizes operands to rebuild the forward's spec.

template <typename T>
void resizeGrad(GradContext<T>& ctx, const ResizeSpec<T>& s, const Dims& xd) {
  T* dx = ctx.gradInputZeros(0, xd);
  const T* gy = ctx.gout(0);
  if (numelOf(s.out) == 0 || numelOf(xd) == 0) return;
  if (!s.linear) return resizeNearest<T, true>(s, xd, gy, dx);
  const std::vector<int> axes = linearAxes(s, xd);
  if (axes.empty()) {
    std::copy(gy, gy + numelOf(xd), dx);
    return;
  }
  std::vector<Dims> seq{xd};  // dims before each pass
  for (int a : axes) {
    seq.push_back(seq.back());
    seq.back()[a] = s.out[a];
  }
  const T* src = gy;
  for (size_t p = axes.size(); p-- > 0;) {
    T* dst = p == 0 ? dx : ctx.scratch.template alloc<T>(static_cast<size_t>(numelOf(seq[p])));
    linearPass<T, true>(s, axes[p], seq[p], src, dst);
    src = dst;
  }
}

template <typename T>
void zeroOperandGrads(GradContext<T>& ctx) {
  for (size_t i = 1; i < ctx.needGrad.size(); ++i)
    if (ctx.wants(i)) ctx.gradInputZeros(i, ctx.inDims(i));
}

template <typename T>
void upsampleBackward(GradContext<T>& ctx) {
  zeroOperandGrads(ctx);
  if (!ctx.wants(0)) return;
  const Dims& xd = ctx.inDims(0);
  resizeGrad(ctx, upsampleSpec<T>(ctx, xd), xd);
}

template <typename T>
void resizeBackward(GradContext<T>& ctx) {
  zeroOperandGrads(ctx);
  if (!ctx.wants(0)) return;
  const Dims& xd = ctx.inDims(0);
  resizeGrad(ctx, resizeSpec<T>(ctx, xd), xd);
}

}  // namespace

FIT_REGISTER_OP("Resize", resizeForward);
FIT_REGISTER_OP("Upsample", upsampleForward);
// X (input 0) is needed only for its dims; roi, scales and sizes (Resize) and scales (Upsample)
// are read to rebuild the spec.
FIT_REGISTER_GRAD("Resize", resizeBackward, slot(1) | slot(2) | slot(3), kNoSlots);
FIT_REGISTER_GRAD("Upsample", upsampleBackward, slot(1), kNoSlots);

}  // namespace fit
