// Shape and data-movement ops: Flatten, Reshape, Squeeze, Unsqueeze (views sharing the input's
// storage), Transpose, Concat, Split, Slice, Pad (constant mode), Expand, Tile.
// Shape operands (shape, axes, starts, pads, split, repeats) are constant int64 tensors.
// Gradient rules: shape_grad.cpp (this file would pass ~500 lines with them).
//
// The copying ops are all one strided copy (copyStrided): output dims plus source and destination
// strides, with mergeable dims collapsed so the innermost loop is as long as possible and becomes a
// memcpy or a fill whenever the layout allows.
#include <algorithm>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "../op.h"
#include "util.h"

namespace fit {
namespace ops {
namespace {

// Input i as a tensor of the compute type: the input itself (shared storage) or a converted copy.
template <typename T>
Tensor tensorAs(OpContext<T>& ctx, size_t i) {
  const Tensor& t = ctx.in(i);
  if (t.dtype == DTypeOf<T>::value) return t;
  Tensor c = Tensor::make(DTypeOf<T>::value, t.dims);
  T* d = c.template data<T>();
  const int64_t n = t.numel();
  if (t.dtype == DType::F32) {
    const float* s = t.template data<float>();
    for (int64_t k = 0; k < n; ++k) d[k] = static_cast<T>(s[k]);
  } else if (t.dtype == DType::F64) {
    const double* s = t.template data<double>();
    for (int64_t k = 0; k < n; ++k) d[k] = static_cast<T>(s[k]);
  } else {
    for (int64_t k = 0; k < n; ++k) d[k] = static_cast<T>(t.intAt(k));
  }
  return c;
}

std::string intsToString(const std::vector<int64_t>& v) { return dimsToString(v); }

// Integer operand that is input `idx` (newer opsets) or attribute `attr` (older ones). `present`
// tells whether either was given.
template <typename T>
std::vector<int64_t> intsOperand(const OpContext<T>& ctx, size_t idx, const char* attr,
                                 bool* present = nullptr) {
  if (ctx.has(idx)) {
    if (present) *present = true;
    return ctx.in(idx).toInts();
  }
  if (present) *present = ctx.node.has(attr);
  return ctx.node.ints(attr);
}


// ---- views --------------------------------------------------------------------------------------

template <typename T>
void flattenForward(OpContext<T>& ctx) {
  const Dims& dims = ctx.in(0).dims;
  const int rank = static_cast<int>(dims.size());
  int64_t axis = ctx.node.i("axis", 1);
  if (axis < -rank || axis > rank)
    ctx.fail(ErrorCode::InvalidAttribute, "axis " + std::to_string(axis) +
                                              " is out of range for a rank-" +
                                              std::to_string(rank) + " tensor");
  if (axis < 0) axis += rank;
  Dims out{1, 1};
  for (int d = 0; d < rank; ++d) out[d < axis ? 0 : 1] *= dims[d];
  ctx.setOutput(0, tensorAs(ctx, 0).reshaped(out));
}

template <typename T>
void reshapeForward(OpContext<T>& ctx) {
  const Dims& dims = ctx.in(0).dims;
  bool present = false;
  const std::vector<int64_t> shape = intsOperand(ctx, 1, "shape", &present);
  if (!present) ctx.fail(ErrorCode::InvalidGraph, "the shape operand is missing");
  const bool allowZero = ctx.node.i("allowzero", 0) != 0;
  Dims out(shape.size());
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    int64_t s = shape[i];
    if (s == 0 && !allowZero) {
      ctx.check(i < dims.size(), "shape " + intsToString(shape) + " copies dim " +
                                     std::to_string(i) + " (0) but the input " +
                                     dimsToString(dims) + " has no such dim");
      s = dims[i];
    }
    if (s == -1) {
      ctx.check(infer < 0, "shape " + intsToString(shape) + " has more than one -1");
      infer = static_cast<int>(i);
      continue;
    }
    ctx.check(s >= 0, "shape " + intsToString(shape) + " has a negative dim");
    out[i] = s;
    known *= s;
  }
  const int64_t n = numelOf(dims);
  if (infer >= 0) {
    ctx.check(known != 0 && n % known == 0, "cannot reshape " + dimsToString(dims) + " to " +
                                                 intsToString(shape));
    out[infer] = n / known;
  }
  ctx.check(numelOf(out) == n,
            "cannot reshape " + dimsToString(dims) + " (" + std::to_string(n) + " elements) to " +
                intsToString(shape));
  ctx.setOutput(0, tensorAs(ctx, 0).reshaped(out));
}

template <typename T>
void squeezeForward(OpContext<T>& ctx) {
  const Dims& dims = ctx.in(0).dims;
  const int rank = static_cast<int>(dims.size());
  const std::vector<int64_t> axes = intsOperand(ctx, 1, "axes");
  std::vector<char> drop(rank, 0);
  if (axes.empty()) {
    for (int d = 0; d < rank; ++d) drop[d] = dims[d] == 1;
  } else {
    for (int64_t a : axes) {
      const int d = normAxis(ctx, a, rank);
      ctx.check(dims[d] == 1, "cannot squeeze axis " + std::to_string(a) + " of dims " +
                                  dimsToString(dims) + ": its size is not 1");
      drop[d] = 1;
    }
  }
  Dims out;
  for (int d = 0; d < rank; ++d)
    if (!drop[d]) out.push_back(dims[d]);
  ctx.setOutput(0, tensorAs(ctx, 0).reshaped(out));
}

template <typename T>
void unsqueezeForward(OpContext<T>& ctx) {
  const Dims& dims = ctx.in(0).dims;
  bool present = false;
  const std::vector<int64_t> axes = intsOperand(ctx, 1, "axes", &present);
  if (!present) ctx.fail(ErrorCode::InvalidGraph, "the axes operand is missing");
  const int rank = static_cast<int>(dims.size() + axes.size());
  std::vector<char> ins(rank, 0);
  for (int64_t a : axes) {
    const int d = normAxis(ctx, a, rank);
    if (ins[d]) ctx.fail(ErrorCode::InvalidAttribute, "axes " + intsToString(axes) + " repeat an axis");
    ins[d] = 1;
  }
  Dims out;
  size_t src = 0;
  for (int d = 0; d < rank; ++d) out.push_back(ins[d] ? 1 : dims[src++]);
  ctx.setOutput(0, tensorAs(ctx, 0).reshaped(out));
}

// ---- copies -------------------------------------------------------------------------------------

template <typename T>
void transposeForward(OpContext<T>& ctx) {
  const Tensor x = tensorAs(ctx, 0);
  const int rank = x.rank();
  std::vector<int64_t> perm = ctx.node.ints("perm");
  if (perm.empty())
    for (int d = rank - 1; d >= 0; --d) perm.push_back(d);
  if (static_cast<int>(perm.size()) != rank)
    ctx.fail(ErrorCode::InvalidAttribute, "perm " + intsToString(perm) + " does not match rank " +
                                              std::to_string(rank));
  std::vector<char> seen(rank, 0);
  const Dims st = stridesOf(x.dims);
  Dims out(rank), ss(rank);
  for (int d = 0; d < rank; ++d) {
    const int p = normAxis(ctx, perm[d], rank);
    if (seen[p]) ctx.fail(ErrorCode::InvalidAttribute, "perm " + intsToString(perm) + " is not a permutation");
    seen[p] = 1;
    out[d] = x.dims[p];
    ss[d] = st[p];
  }
  T* y = ctx.output(0, out);
  copyStrided(x.template data<T>(), out, ss, y, stridesOf(out));
}

template <typename T>
void concatForward(OpContext<T>& ctx) {
  const size_t n = ctx.numInputs();
  ctx.check(n >= 1 && ctx.has(0), "needs at least one input");
  const Dims& d0 = ctx.in(0).dims;
  const int rank = static_cast<int>(d0.size());
  if (!ctx.node.has("axis")) ctx.fail(ErrorCode::InvalidAttribute, "the axis attribute is missing");
  const int axis = normAxis(ctx, ctx.node.i("axis", 0), rank);
  Dims out = d0;
  out[axis] = 0;
  for (size_t k = 0; k < n; ++k) {
    const Dims& dk = ctx.in(k).dims;
    bool ok = static_cast<int>(dk.size()) == rank;
    for (int d = 0; ok && d < rank; ++d) ok = d == axis || dk[d] == d0[d];
    ctx.check(ok, "input " + std::to_string(k) + " has dims " + dimsToString(dk) +
                      " but input 0 has " + dimsToString(d0) + " (only axis " +
                      std::to_string(axis) + " may differ)");
    out[axis] += dk[axis];
  }
  T* y = ctx.output(0, out);
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < rank; ++d)
    if (d < axis) outer *= d0[d];
    else if (d > axis) inner *= d0[d];
  const int64_t outRow = out[axis] * inner;
  int64_t col = 0;
  for (size_t k = 0; k < n; ++k) {
    const Tensor xk = tensorAs(ctx, k);
    const int64_t row = xk.dims[axis] * inner;
    if (row > 0) {
      const T* src = xk.template data<T>();
      for (int64_t o = 0; o < outer; ++o)
        std::memcpy(y + o * outRow + col, src + o * row, sizeof(T) * static_cast<size_t>(row));
    }
    col += row;
  }
}

template <typename T>
void splitForward(OpContext<T>& ctx) {
  const Tensor x = tensorAs(ctx, 0);
  const int rank = x.rank();
  const int axis = normAxis(ctx, ctx.node.i("axis", 0), rank);
  const int64_t len = x.dims[axis];
  const size_t nOut = ctx.outputs.size();
  std::vector<int64_t> sizes = ctx.opset < 13 ? ctx.node.ints("split")
                               : ctx.has(1)   ? ctx.in(1).toInts()
                                              : std::vector<int64_t>();
  if (sizes.empty()) {
    if (ctx.node.has("num_outputs")) {
      // opset 18: chunks of ceil(len / num_outputs), the last one smaller.
      const int64_t parts = ctx.node.i("num_outputs", 1);
      ctx.check(parts >= 1 && static_cast<size_t>(parts) == nOut,
                "num_outputs " + std::to_string(parts) + " does not match the node's " +
                    std::to_string(nOut) + " outputs");
      const int64_t chunk = (len + parts - 1) / parts;
      for (int64_t p = 0, left = len; p < parts; ++p, left -= chunk)
        sizes.push_back(std::max<int64_t>(0, std::min(chunk, left)));
    } else {
      ctx.check(len % static_cast<int64_t>(nOut) == 0,
                "axis " + std::to_string(axis) + " of dims " + dimsToString(x.dims) +
                    " cannot be split evenly into " + std::to_string(nOut) + " outputs");
      sizes.assign(nOut, len / static_cast<int64_t>(nOut));
    }
  }
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  ctx.check(sizes.size() == nOut && total == len,
            "split " + intsToString(sizes) + " does not divide axis " + std::to_string(axis) +
                " of dims " + dimsToString(x.dims) + " into " + std::to_string(nOut) + " outputs");
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < rank; ++d)
    if (d < axis) outer *= x.dims[d];
    else if (d > axis) inner *= x.dims[d];
  const T* src = x.template data<T>();
  int64_t col = 0;
  for (size_t k = 0; k < nOut; ++k) {
    Dims od = x.dims;
    od[axis] = sizes[k];
    T* y = ctx.output(k, od);
    const int64_t row = sizes[k] * inner;
    for (int64_t o = 0; o < outer && row > 0; ++o)
      std::memcpy(y + o * row, src + o * len * inner + col, sizeof(T) * static_cast<size_t>(row));
    col += row;
  }
}

template <typename T>
void sliceForward(OpContext<T>& ctx) {
  const Tensor x = tensorAs(ctx, 0);
  const SliceView v = sliceView(ctx, x.dims);
  T* y = ctx.output(0, v.out);
  if (numelOf(v.out) == 0) return;
  copyStrided(x.template data<T>() + v.offset, v.out, v.strides, y, stridesOf(v.out));
}

// Pad, constant mode. pads = [begin_0..begin_{k-1}, end_0..end_{k-1}] over `axes` (all dims by
// default); negative pads crop.
template <typename T>
void padForward(OpContext<T>& ctx) {
  const Tensor x = tensorAs(ctx, 0);
  const int rank = x.rank();
  const std::string mode = ctx.node.s("mode", "constant");
  if (mode != "constant")
    ctx.fail(ErrorCode::UnsupportedOp, "mode '" + mode + "' is not supported (only 'constant')");
  std::vector<int64_t> pads, axes;
  T value = 0;
  if (ctx.opset < 11) {
    pads = ctx.node.has("pads") ? ctx.node.ints("pads") : ctx.node.ints("paddings");
    value = static_cast<T>(ctx.node.f("value", 0.0));
  } else {
    pads = ctx.in(1).toInts();
    if (ctx.has(2) && ctx.in(2).numel() > 0) value = tensorAs(ctx, 2).template data<T>()[0];
    if (ctx.has(3)) axes = ctx.in(3).toInts();
  }
  if (axes.empty())
    for (int d = 0; d < rank; ++d) axes.push_back(d);
  const size_t k = axes.size();
  if (pads.size() != 2 * k)
    ctx.fail(ErrorCode::InvalidAttribute, "pads " + intsToString(pads) + " must have " +
                                              std::to_string(2 * k) + " entries");
  Dims begin(rank, 0), end(rank, 0);
  for (size_t i = 0; i < k; ++i) {
    const int a = normAxis(ctx, axes[i], rank);
    begin[a] = pads[i];
    end[a] = pads[i + k];
  }
  Dims out(rank), region(rank);
  bool grows = false;
  int64_t srcOff = 0, dstOff = 0;
  const Dims xs = stridesOf(x.dims);
  Dims os;
  for (int d = 0; d < rank; ++d) {
    out[d] = x.dims[d] + begin[d] + end[d];
    ctx.check(out[d] >= 0, "pads " + intsToString(pads) + " crop more than dim " +
                               std::to_string(d) + " of dims " + dimsToString(x.dims));
    grows = grows || begin[d] > 0 || end[d] > 0;
    region[d] = std::max<int64_t>(0, x.dims[d] + std::min<int64_t>(begin[d], 0) + std::min<int64_t>(end[d], 0));
  }
  os = stridesOf(out);
  for (int d = 0; d < rank; ++d) {
    srcOff += std::max<int64_t>(0, -begin[d]) * xs[d];
    dstOff += std::max<int64_t>(0, begin[d]) * os[d];
  }
  T* y = ctx.output(0, out);
  if (grows) std::fill(y, y + numelOf(out), value);
  if (numelOf(region) > 0)
    copyStrided(x.template data<T>() + srcOff, region, xs, y + dstOff, os);
}

// Expand: bidirectional broadcast of the input against `shape`.
template <typename T>
void expandForward(OpContext<T>& ctx) {
  const Tensor x = tensorAs(ctx, 0);
  const std::vector<int64_t> shape = ctx.in(1).toInts();
  Dims out;
  if (!broadcastDims(x.dims, shape, out))
    ctx.fail(ErrorCode::ShapeMismatch, "input dims " + dimsToString(x.dims) +
                                           " cannot be expanded to shape " + intsToString(shape));
  T* y = ctx.output(0, out);
  copyStrided(x.template data<T>(), out, broadcastStrides(x.dims, out.size()), y, stridesOf(out));
}

// Tile: viewed as the expand of [1, d_0, 1, d_1, ...] to [r_0, d_0, r_1, d_1, ...].
template <typename T>
void tileForward(OpContext<T>& ctx) {
  const Tensor x = tensorAs(ctx, 0);
  const int rank = x.rank();
  const std::vector<int64_t> reps = ctx.in(1).toInts();
  ctx.check(static_cast<int>(reps.size()) == rank,
            "repeats " + intsToString(reps) + " must have one entry per dim of " +
                dimsToString(x.dims));
  const Dims xs = stridesOf(x.dims);
  Dims out(rank), big, bigSrc;
  for (int d = 0; d < rank; ++d) {
    ctx.check(reps[d] >= 0, "repeats " + intsToString(reps) + " has a negative entry");
    out[d] = x.dims[d] * reps[d];
    big.push_back(reps[d]);
    big.push_back(x.dims[d]);
    bigSrc.push_back(0);
    bigSrc.push_back(xs[d]);
  }
  T* y = ctx.output(0, out);
  if (numelOf(out) == 0) return;
  copyStrided(x.template data<T>(), big, bigSrc, y, stridesOf(big));
}

}  // namespace
}  // namespace ops
}  // namespace fit

using namespace fit::ops;

FIT_REGISTER_OP("Flatten", flattenForward);
FIT_REGISTER_OP("Reshape", reshapeForward);
FIT_REGISTER_OP("Squeeze", squeezeForward);
FIT_REGISTER_OP("Unsqueeze", unsqueezeForward);
FIT_REGISTER_OP("Transpose", transposeForward);
FIT_REGISTER_OP("Concat", concatForward);
FIT_REGISTER_OP("Split", splitForward);
FIT_REGISTER_OP("Slice", sliceForward);
FIT_REGISTER_OP("Pad", padForward);
FIT_REGISTER_OP("Expand", expandForward);
FIT_REGISTER_OP("Tile", tileForward);
