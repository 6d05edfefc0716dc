// Direct 2-D convolution for few input channels and unit strides (conv_direct.cpp): forward and
// backward without im2col. Called from conv.cpp and conv_grad.cpp when convDirectApplies().
#pragma once

#include <cstdint>

#include "../arena.h"

namespace fit {
namespace ops {

struct DirectGeom {
  int64_t C, M;            // input / output channels (group 1)
  int64_t IH, IW, OH, OW;  // input and output planes
  int64_t KH, KW, dh, dw;  // kernel and dilations
  int64_t pt, pl;          // leading pads (trailing pads follow from OH, OW)
};

// True for nd 2, group 1, unit strides, non-negative pads, a kernel of 2..49 taps and few input
// channels (C * KH * KW <= 100, M <= 128): there the im2col + gemm path is dominated by building a
// column matrix with only C * KH * KW rows.
bool convDirectApplies(int64_t C, int64_t M, int64_t group, int nd, const int64_t* kernel, const int64_t* stride,
                       const int64_t* padBegin, const int64_t* padEnd);

// Y [N, M, OH, OW] = conv(X, W) (+ bias, may be null).
template <typename T>
void convDirectForward(const T* x, const T* w, const T* bias, T* y, int64_t N, const DirectGeom& g, Arena& scratch);

// dX (overwritten), dW (accumulated into) and sq += per-sample squared weight gradients; any of the
// three may be null.
template <typename T>
void convDirectBackward(const T* x, const T* w, const T* dy, T* dx, T* dw, T* sq, int64_t N, const DirectGeom& g,
                        Arena& scratch);

}  // namespace ops
}  // namespace fit
