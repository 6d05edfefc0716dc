// Gradient rules of the shape and data-movement ops whose forwards are in shape.cpp: Flatten,
// Reshape, Squeeze, Unsqueeze, Transpose, Concat, Split, Slice, Pad, Expand, Tile.
//
// Every rule is the adjoint of its forward copy: views copy dy back under the input's dims;
// Transpose, Slice, Pad, Split and Concat move dy back through the same strided map (their maps
// never hit an input element twice, so a scatter is a plain copy into zeros); Expand and Tile sum
// dy over the broadcast dims. No rule reads forward data, only dims: input dims come from
// ctx.inDims (recorded by the executor even when the data was freed), so no data input is saved.
// The only saved inputs are the small int operands a rule reads for their values (Unsqueeze's
// axes, Split's split, Slice's starts/ends/axes/steps, Pad's pads/axes, Tile's repeats); operands
// a rule never reads (Reshape's shape, Squeeze's axes, Expand's shape, Pad's constant value) are
// not saved either. Int operands (shape, axes, starts, pads, split, repeats) get a zero gradient
// when one is asked for (they are normally int64 constants, which never ask).
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "../op.h"
#include "util.h"

namespace fit {
namespace ops {
namespace {

template <typename T>
int gradAxis(const GradContext<T>& ctx, int64_t axis, int rank) {
  if (axis < -rank || axis >= rank)
    ctx.fail(ErrorCode::InvalidAttribute, "axis " + std::to_string(axis) + " is out of range for a rank-" +
                                              std::to_string(rank) + " tensor");
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

// Integer operand that is input idx (newer opsets) or attribute attr (older ones).
template <typename T>
std::vector<int64_t> intsOperand(const GradContext<T>& ctx, size_t idx, const char* attr) {
  if (ctx.has(idx)) return ctx.in(idx).toInts();
  return ctx.node.ints(attr);
}

// Zero gradients for the operands from index `first` on that ask for one (shape-like operands).
template <typename T>
void zeroOperandGrads(GradContext<T>& ctx, size_t first) {
  for (size_t i = first; i < ctx.needGrad.size(); ++i)
    if (ctx.wants(i)) ctx.gradInputZeros(i, ctx.inDims(i));
}

template <typename T>
const Tensor& gradOut(const GradContext<T>& ctx) {
  if (!ctx.gradOutputs.at(0)) ctx.fail(ErrorCode::Internal, "no output gradient");
  return *ctx.gradOutputs[0];
}


// dx = dy under dims, sharing dy's storage (the executor copies on write before accumulating into
// shared gradient storage).
template <typename T>
void copyGrad(GradContext<T>& ctx, const Dims& dims) {
  const Tensor& gy = gradOut(ctx);
  if (gy.numel() != numelOf(dims))
    ctx.fail(ErrorCode::Internal, "output gradient " + dimsToString(gy.dims) + " does not match input dims " +
                                      dimsToString(dims));
  if (gy.hold) {
    ctx.gradInputs.at(0) = gy.reshaped(dims);
    return;
  }
  T* dx = ctx.gradInput(0, dims);
  if (gy.numel()) std::memcpy(dx, gy.template data<T>(), sizeof(T) * static_cast<size_t>(gy.numel()));
}

// ---- views: Flatten, Reshape, Squeeze (dx is dy under input 0's dims) ---------------------------

template <typename T>
void viewBackward(GradContext<T>& ctx) {
  if (ctx.wants(0)) copyGrad(ctx, ctx.inDims(0));
  zeroOperandGrads(ctx, 1);
}

// Unsqueeze: the input's dims are dy's without the inserted axes.
template <typename T>
void unsqueezeBackward(GradContext<T>& ctx) {
  zeroOperandGrads(ctx, 1);
  if (!ctx.wants(0)) return;
  const Tensor& gy = gradOut(ctx);
  const int rank = gy.rank();
  std::vector<char> inserted(rank, 0);
  for (int64_t a : intsOperand(ctx, 1, "axes")) inserted[gradAxis(ctx, a, rank)] = 1;
  Dims xd;
  for (int d = 0; d < rank; ++d)
    if (!inserted[d]) xd.push_back(gy.dims[d]);
  copyGrad(ctx, xd);
}

// Transpose: dx[perm-permuted index] = dy; the input's dims are dy's permuted back.
template <typename T>
void transposeBackward(GradContext<T>& ctx) {
  if (!ctx.wants(0)) return;
  const Tensor& gy = gradOut(ctx);
  const int rank = gy.rank();
  std::vector<int64_t> perm = ctx.node.ints("perm");
  if (perm.empty())
    for (int d = rank - 1; d >= 0; --d) perm.push_back(d);
  if (static_cast<int>(perm.size()) != rank) ctx.fail(ErrorCode::InvalidAttribute, "perm does not match the rank");
  Dims xd(rank), ds(rank);
  for (int d = 0; d < rank; ++d) xd[gradAxis(ctx, perm[d], rank)] = gy.dims[d];
  const Dims xs = stridesOf(xd);
  for (int d = 0; d < rank; ++d) ds[d] = xs[gradAxis(ctx, perm[d], rank)];
  T* dx = ctx.gradInput(0, xd);
  if (gy.numel()) copyStrided(gy.template data<T>(), gy.dims, stridesOf(gy.dims), dx, ds);
}

// Concat: each input gets its block of dy along the axis, whose length is the input's (inDims).
template <typename T>
void concatBackward(GradContext<T>& ctx) {
  const Tensor& gy = gradOut(ctx);
  const int rank = gy.rank();
  const int axis = gradAxis(ctx, ctx.node.i("axis", 0), rank);
  const size_t n = ctx.inputDims.size();
  std::vector<int64_t> len(n, 0);
  int64_t total = 0;
  for (size_t k = 0; k < n; ++k) {
    const Dims& dk = ctx.inDims(k);
    if (static_cast<int>(dk.size()) != rank)
      ctx.fail(ErrorCode::Internal, "input " + std::to_string(k) + " has dims " + dimsToString(dk) +
                                        " but the output gradient has rank " + std::to_string(rank));
    len[k] = dk[axis];
    total += len[k];
  }
  if (total != gy.dims[axis]) ctx.fail(ErrorCode::Internal, "input lengths do not add up to the output's along the axis");
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < rank; ++d)
    if (d < axis) outer *= gy.dims[d];
    else if (d > axis) inner *= gy.dims[d];
  const int64_t outRow = gy.dims[axis] * inner;
  const T* g = gy.template data<T>();
  int64_t col = 0;
  for (size_t k = 0; k < n; ++k) {
    const int64_t row = len[k] * inner;
    if (ctx.wants(k)) {
      Dims dk = gy.dims;
      dk[axis] = len[k];
      T* dx = ctx.gradInput(k, dk);
      for (int64_t o = 0; o < outer && row > 0; ++o)
        std::memcpy(dx + o * row, g + o * outRow + col, sizeof(T) * static_cast<size_t>(row));
    }
    col += row;
  }
}

// Split: dx is the outputs' gradients side by side (zeros for outputs no gradient reaches).
template <typename T>
void splitBackward(GradContext<T>& ctx) {
  zeroOperandGrads(ctx, 1);
  if (!ctx.wants(0)) return;
  const Dims& xd = ctx.inDims(0);
  const int rank = static_cast<int>(xd.size());
  const int axis = gradAxis(ctx, ctx.node.i("axis", 0), rank);
  const int64_t len = xd[axis];
  const size_t nOut = ctx.gradOutputs.size();
  std::vector<int64_t> sizes = ctx.opset < 13 ? ctx.node.ints("split")
                               : ctx.has(1)   ? ctx.in(1).toInts()
                                              : std::vector<int64_t>();
  if (sizes.empty()) {  // the forward's rules: num_outputs chunks (opset 18) or an even split
    if (ctx.node.has("num_outputs")) {
      const int64_t parts = static_cast<int64_t>(nOut);
      const int64_t chunk = (len + parts - 1) / parts;
      for (int64_t p = 0, left = len; p < parts; ++p, left -= chunk)
        sizes.push_back(std::max<int64_t>(0, std::min(chunk, left)));
    } else {
      sizes.assign(nOut, len / static_cast<int64_t>(nOut));
    }
  }
  if (sizes.size() != nOut) ctx.fail(ErrorCode::Internal, "split sizes do not match the outputs");
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < rank; ++d)
    if (d < axis) outer *= xd[d];
    else if (d > axis) inner *= xd[d];
  T* dx = ctx.gradInput(0, xd);
  int64_t col = 0;
  for (size_t k = 0; k < nOut; ++k) {
    const int64_t row = sizes[k] * inner;
    const T* g = ctx.gout(k);
    for (int64_t o = 0; o < outer && row > 0; ++o) {
      T* dst = dx + o * len * inner + col;
      if (g) std::memcpy(dst, g + o * row, sizeof(T) * static_cast<size_t>(row));
      else std::fill(dst, dst + row, T(0));
    }
    col += row;
  }
}

// Slice: dy scattered into zeros through the forward's strided view (negative steps included).
template <typename T>
void sliceBackward(GradContext<T>& ctx) {
  zeroOperandGrads(ctx, 1);
  if (!ctx.wants(0)) return;
  const Dims& xd = ctx.inDims(0);
  const SliceView v = sliceView(ctx, xd);
  T* dx = ctx.gradInputZeros(0, xd);
  const Tensor& gy = gradOut(ctx);
  if (gy.dims != v.out) ctx.fail(ErrorCode::Internal, "output gradient dims do not match the slice");
  if (numelOf(v.out) > 0) copyStrided(gy.template data<T>(), v.out, stridesOf(v.out), dx + v.offset, v.strides);
}

// Pad (constant): dx is dy's interior (zeros where negative pads cropped the input); the constant
// value, when it is a float operand that asks, gets the sum of dy over the padding (only its dims
// are read, so it is not saved).
template <typename T>
void padBackward(GradContext<T>& ctx) {
  const Tensor& gy = gradOut(ctx);
  const int rank = gy.rank();
  std::vector<int64_t> pads, axes;
  if (ctx.opset < 11) {
    pads = ctx.node.has("pads") ? ctx.node.ints("pads") : ctx.node.ints("paddings");
  } else {
    pads = ctx.in(1).toInts();
    if (ctx.has(3)) axes = ctx.in(3).toInts();
  }
  if (axes.empty())
    for (int d = 0; d < rank; ++d) axes.push_back(d);
  const size_t k = axes.size();
  if (pads.size() != 2 * k) ctx.fail(ErrorCode::InvalidAttribute, "pads do not match the axes");
  Dims begin(rank, 0), end(rank, 0), xd(rank), region(rank);
  for (size_t i = 0; i < k; ++i) {
    const int a = gradAxis(ctx, axes[i], rank);
    begin[a] = pads[i];
    end[a] = pads[i + k];
  }
  for (int d = 0; d < rank; ++d) {
    xd[d] = gy.dims[d] - begin[d] - end[d];
    region[d] = std::max<int64_t>(0, xd[d] + std::min<int64_t>(begin[d], 0) + std::min<int64_t>(end[d], 0));
  }
  const Dims xs = stridesOf(xd), os = stridesOf(gy.dims);
  int64_t srcOff = 0, dstOff = 0;  // the forward's offsets: into x and into y
  for (int d = 0; d < rank; ++d) {
    srcOff += std::max<int64_t>(0, -begin[d]) * xs[d];
    dstOff += std::max<int64_t>(0, begin[d]) * os[d];
  }
  const bool wantValue = ctx.opset >= 11 && ctx.wants(2);
  if (ctx.wants(0) || wantValue) {
    const int64_t nx = numelOf(xd);
    T* dx = ctx.wants(0) ? ctx.gradInput(0, xd) : ctx.scratch.template alloc<T>(static_cast<size_t>(std::max<int64_t>(nx, 1)));
    if (numelOf(region) < nx) std::fill(dx, dx + nx, T(0));
    const T* g = gy.template data<T>();
    if (numelOf(region) > 0) copyStrided(g + dstOff, region, os, dx + srcOff, xs);
    if (wantValue) {
      const Dims& vd = ctx.inDims(2);
      T* dv = ctx.gradInputZeros(2, vd);
      if (numelOf(vd) > 0) {
        double total = 0, inner = 0;
        for (int64_t i = 0; i < gy.numel(); ++i) total += g[i];
        for (int64_t i = 0; i < nx; ++i) inner += dx[i];
        dv[0] = static_cast<T>(total - inner);
      }
    }
  }
  for (size_t i : {size_t(1), size_t(3)})  // pads, axes
    if (ctx.wants(i)) ctx.gradInputZeros(i, ctx.inDims(i));
}

// Expand: dy summed over the broadcast dims (input 0's dims).
template <typename T>
void expandBackward(GradContext<T>& ctx) {
  zeroOperandGrads(ctx, 1);
  if (!ctx.wants(0)) return;
  const Tensor& gy = gradOut(ctx);
  const Dims& xd = ctx.inDims(0);
  sumToShape(gy.template data<T>(), gy.dims, ctx.gradInput(0, xd), xd);
}

// Tile: dy viewed as [r_0, d_0, r_1, d_1, ...] summed to [1, d_0, 1, d_1, ...]. Input 0's dims
// come from inDims (a zero repeat makes them underivable from dy); repeats are read (saved).
template <typename T>
void tileBackward(GradContext<T>& ctx) {
  zeroOperandGrads(ctx, 1);
  if (!ctx.wants(0)) return;
  const Tensor& gy = gradOut(ctx);
  const Dims& xd = ctx.inDims(0);
  const std::vector<int64_t> reps = ctx.in(1).toInts();
  if (reps.size() != xd.size()) ctx.fail(ErrorCode::Internal, "repeats do not match the input rank");
  Dims big, small;
  for (size_t d = 0; d < xd.size(); ++d) {
    big.push_back(reps[d]);
    big.push_back(xd[d]);
    small.push_back(1);
    small.push_back(xd[d]);
  }
  T* dx = ctx.gradInput(0, xd);
  sumToShape(gy.template data<T>(), big, dx, small);
}

}  // namespace
}  // namespace ops
}  // namespace fit

using namespace fit::ops;

// Saved masks: only int operands whose values the rule reads; data inputs are known by their dims.
FIT_REGISTER_GRAD("Flatten", viewBackward, kNoSlots, kNoSlots);
FIT_REGISTER_GRAD("Reshape", viewBackward, kNoSlots, kNoSlots);
FIT_REGISTER_GRAD("Squeeze", viewBackward, kNoSlots, kNoSlots);
FIT_REGISTER_GRAD("Unsqueeze", unsqueezeBackward, slot(1), kNoSlots);
FIT_REGISTER_GRAD("Transpose", transposeBackward, kNoSlots, kNoSlots);
FIT_REGISTER_GRAD("Concat", concatBackward, kNoSlots, kNoSlots);
FIT_REGISTER_GRAD("Split", splitBackward, slot(1), kNoSlots);
FIT_REGISTER_GRAD("Slice", sliceBackward, slot(1) | slot(2) | slot(3) | slot(4), kNoSlots);
FIT_REGISTER_GRAD("Pad", padBackward, slot(1) | slot(3), kNoSlots);
FIT_REGISTER_GRAD("Expand", expandBackward, kNoSlots, kNoSlots);
FIT_REGISTER_GRAD("Tile", tileBackward, slot(1), kNoSlots);
