// The backward of 2-D convolutions (group 1, unit strides and dilations) over several images at
// once, for small feature maps where the per-image im2col + gemm of conv_grad.cpp is dominated by
// call overheads and tiny gemms. The column matrices of nb images are laid side by side,
// col [C * KH * KW, nb * S] (S = OH * OW), dY is relaid to dY' [M, nb * S] in one pass, and
// dW += dY' col^T is one gemm; the input gradient is one gemm dCol = W^T dY'' (dY'' = dY with its
// rows zero-padded to the plane width PW, so col2im becomes one long add per kernel offset, see
// unpackColsPadded). With per-sample squared weight gradients, only the products
// G_i = dY_i col_i^T stay per image (one gemm per image over image i's column block of the chunk's
// side-by-side col, then sq += G_i^2 and dW += G_i), so the squares stay exactly sum_i G_i^2;
// im2col and the input gradient are still one pass / one gemm per chunk (dW is summed from the G_i,
// M * K adds per image, cheaper than a second gemm over the chunk). Images are taken in chunks
// whose column matrix stays under kBatchedColBytes; when not even two images fit, or for
// one-channel 3x3 kernels (K = 9), the callers' per-image path is used instead.
// Measured on the demo CNN (batch 32, 8->16 channels on 14x14): conv2's backward 1.0 -> 0.6 ms; with
// per-sample squares, that layer's fwd+bwd CPU time over plain fwd+bwd 1.33x -> 1.18x.
// Tried and dropped: the same batching for the forward (the extra relayout of Y cost more than the
// larger gemm saved), dX as a convolution of dY with the flipped kernel (im2col of dY + a deep
// gemm: slower), chunks of 128 KB (2 images) or 1-4 MB (slower than 256 KB), and K = 9 batched.
#include <algorithm>
#include <cmath>

#include "../../kernels/backend.h"
#include "../../kernels/simd.h"
#include "util.h"

namespace fit {
namespace ops {
namespace {

constexpr int64_t kBatchedColBytes = int64_t(256) << 10;

// geometry: {C, H, W, M, OH, OW, KH, KW, padTop, padLeft}
struct BGeom {
  int64_t C, H, W, M, OH, OW, KH, KW, pt, pl;
  int64_t PH() const { return OH + KH - 1; }
  int64_t PW() const { return OW + KW - 1; }
  int64_t S() const { return OH * OW; }
  int64_t K() const { return C * KH * KW; }
};

// im2col of images [0, nb) of x into col [K, ld] (image i in columns [i * S, (i + 1) * S)) through
// a zero-padded plane buf [PH, PW] (its border is zero on entry and stays zero).
template <typename T>
FIT_SIMD_CLONES void packCols(const T* x, T* col, int64_t nb, int64_t ld, const BGeom& g, T* buf) {
  const int64_t PH = g.PH(), PW = g.PW(), S = g.S();
  const int64_t h0 = std::max<int64_t>(0, -g.pt), h1 = std::min(g.H, PH - g.pt);
  const int64_t w0 = std::max<int64_t>(0, -g.pl), w1 = std::min(g.W, PW - g.pl);
  for (int64_t i = 0; i < nb; ++i)
    for (int64_t c = 0; c < g.C; ++c) {
      const T* plane = x + (i * g.C + c) * g.H * g.W;
      for (int64_t ih = h0; ih < h1; ++ih)
        for (int64_t iw = w0; iw < w1; ++iw) buf[(ih + g.pt) * PW + iw + g.pl] = plane[ih * g.W + iw];
      for (int64_t kh = 0; kh < g.KH; ++kh)
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          T* __restrict d = col + ((c * g.KH + kh) * g.KW + kw) * ld + i * S;
          for (int64_t oh = 0; oh < g.OH; ++oh) {
            const T* __restrict b = buf + (oh + kh) * PW + kw;
            for (int64_t o = 0; o < g.OW; ++o) d[oh * g.OW + o] = b[o];
          }
        }
    }
}

// The adjoint: dx planes of images [0, nb) = col2im of dcol [K, ld], whose image i holds OH rows of
// PW (not OW) values at columns [i * OH * PW, (i + 1) * OH * PW), the last PW - OW of each row zero
// (dcol = W^T dY'' with dY'' padded the same way). Each kernel offset is then one long add
// buf[kh * PW + kw + j] += d[j] over all OH * PW values: a zero column spills into the head of the
// next buffer row, which changes nothing. dx is written, not accumulated (input samples no tap
// reaches get 0). buf [PH * PW + PW] is scratch.
template <typename T>
FIT_SIMD_CLONES void unpackColsPadded(const T* dcol, T* dx, int64_t nb, int64_t ld, const BGeom& g, T* buf) {
  const int64_t PH = g.PH(), PW = g.PW(), SP = g.OH * PW;
  const int64_t h0 = std::max<int64_t>(0, -g.pt), h1 = std::min(g.H, PH - g.pt);
  const int64_t w0 = std::max<int64_t>(0, -g.pl), w1 = std::min(g.W, PW - g.pl);
  for (int64_t i = 0; i < nb; ++i)
    for (int64_t c = 0; c < g.C; ++c) {
      for (int64_t j = 0; j < (PH + 1) * PW; ++j) buf[j] = T(0);
      for (int64_t kh = 0; kh < g.KH; ++kh)
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          const T* __restrict d = dcol + ((c * g.KH + kh) * g.KW + kw) * ld + i * SP;
          T* __restrict b = buf + kh * PW + kw;
          for (int64_t j = 0; j < SP; ++j) b[j] += d[j];
        }
      T* plane = dx + (i * g.C + c) * g.H * g.W;
      for (int64_t ih = 0; ih < g.H; ++ih) {
        T* __restrict row = plane + ih * g.W;
        if (ih < h0 || ih >= h1) {
          for (int64_t iw = 0; iw < g.W; ++iw) row[iw] = T(0);
          continue;
        }
        const T* __restrict src = buf + (ih + g.pt) * PW + g.pl;
        for (int64_t iw = 0; iw < w0; ++iw) row[iw] = T(0);
        for (int64_t iw = w0; iw < w1; ++iw) row[iw] = src[iw];
        for (int64_t iw = w1; iw < g.W; ++iw) row[iw] = T(0);
      }
    }
}

// yp [M, nb * OH * PW] = y [nb, M, OH, OW] with each row padded to PW by zeros.
template <typename T>
FIT_SIMD_CLONES void toBatchedPadded(const T* y, T* yp, int64_t nb, int64_t M, int64_t OH, int64_t OW, int64_t PW,
                                     int64_t ld) {
  for (int64_t i = 0; i < nb; ++i)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t oh = 0; oh < OH; ++oh) {
        const T* __restrict s = y + ((i * M + m) * OH + oh) * OW;
        T* __restrict d = yp + m * ld + (i * OH + oh) * PW;
        for (int64_t j = 0; j < OW; ++j) d[j] = s[j];
        for (int64_t j = OW; j < PW; ++j) d[j] = T(0);
      }
}

// yt [M, ld] = y [nb, M, S].
template <typename T>
FIT_SIMD_CLONES void toBatched(const T* y, T* yt, int64_t nb, int64_t M, int64_t S, int64_t ld) {
  for (int64_t i = 0; i < nb; ++i)
    for (int64_t m = 0; m < M; ++m) {
      const T* __restrict s = y + (i * M + m) * S;
      T* __restrict d = yt + m * ld + i * S;
      for (int64_t j = 0; j < S; ++j) d[j] = s[j];
    }
}

// Images per chunk, or 0 when the batched path does not apply (see the header comment).
int64_t chunkImages(int nd, int64_t group, const int64_t* stride, const int64_t* dilation, int64_t N, int64_t K,
                    int64_t S, size_t elem) {
  if (nd != 2 || group != 1 || N < 2 || K <= 0 || S <= 0) return 0;
  if (K <= 9) return 0;  // one-channel 3x3 (K = 9): per-image gemms measured faster
  if (stride[0] != 1 || stride[1] != 1 || dilation[0] != 1 || dilation[1] != 1) return 0;
  const int64_t nb = std::min<int64_t>(N, kBatchedColBytes / static_cast<int64_t>(elem) / (K * S));
  return nb >= 2 ? nb : 0;
}

}  // namespace

// The backward of a 2-D, group 1, unit stride / dilation Conv (X [N, C, H, W], W [M, C, KH, KW],
// dims = {H, W, OH, OW, KH, KW, padTop, padLeft}): dx [N, C, H, W] (written), dw [M, K] and the per-sample
// squares sq [M, K] (both accumulated); any may be null. Returns false (nothing written) when the path does not apply.
template <typename T>
bool convBackwardBatched(const T* x, const T* w, const T* dy, T* dx, T* dw, T* sq, int64_t N, int64_t C, int64_t M,
                         int64_t group, int nd, const int64_t* dims, const int64_t* stride, const int64_t* dilation,
                         Arena& scratch) {
  if (nd != 2 || (!dx && !dw && !sq)) return false;
  const BGeom g{C, dims[0], dims[1], M, dims[2], dims[3], dims[4], dims[5], dims[6], dims[7]};
  const int64_t S = g.S(), K = g.K();
  const int64_t nb = chunkImages(nd, group, stride, dilation, N, K, S, sizeof(T));
  if (nb == 0) return false;
  // The input gradient's dY'' and W^T dY'' have rows padded to PW (see unpackColsPadded); a
  // non-finite weight would turn the zero padding into NaNs, so such weights take the per-image path.
  if (dx)
    for (int64_t i = 0; i < M * K; ++i)
      if (!std::isfinite(w[i])) return false;
  const int64_t SP = g.OH * g.PW();
  T* col = scratch.alloc<T>(static_cast<size_t>(K * nb * (dx ? SP : S)));  // im2col(X), then W^T dY''
  T* dyt = scratch.alloc<T>(static_cast<size_t>(M * nb * (dx ? SP : S)));  // dY', then dY''
  const size_t bufLen = static_cast<size_t>((g.PH() + 1) * g.PW());
  T* buf = scratch.alloc<T>(bufLen);
  std::fill(buf, buf + bufLen, T(0));
  T* G = sq ? scratch.alloc<T>(static_cast<size_t>(M * K)) : nullptr;  // one image's weight gradient
  for (int64_t n0 = 0; n0 < N; n0 += nb) {
    const int64_t cnt = std::min(nb, N - n0), ld = cnt * S;
    if (sq) {  // dY_i is contiguous in dy; col_i is the column block [i * S, (i + 1) * S) of col
      packCols<T>(x + n0 * C * g.H * g.W, col, cnt, ld, g, buf);
      for (int64_t i = 0; i < cnt; ++i) {
        kernels::gemm(false, true, M, K, S, T(1), dy + (n0 + i) * M * S, S, col + i * S, ld, T(0), G, K);
        kernels::foldSquares<T>(G, M * K, dw, sq);
      }
    } else if (dw) {
      toBatched<T>(dy + n0 * M * S, dyt, cnt, M, S, ld);
      packCols<T>(x + n0 * C * g.H * g.W, col, cnt, ld, g, buf);
      kernels::gemm(false, true, M, K, ld, T(1), dyt, ld, col, ld, T(1), dw, K);
    }
    if (dx) {
      const int64_t ldp = cnt * SP;
      toBatchedPadded<T>(dy + n0 * M * S, dyt, cnt, M, g.OH, g.OW, g.PW(), ldp);
      kernels::gemm(true, false, K, ldp, M, T(1), w, K, dyt, ldp, T(0), col, ldp);
      unpackColsPadded<T>(col, dx + n0 * C * g.H * g.W, cnt, ldp, g, buf);
      if (dw || sq) std::fill(buf, buf + bufLen, T(0));  // packCols expects a zero border
    }
  }
  return true;
}

#define FIT_INSTANTIATE(T)                                                                                      \
  template bool convBackwardBatched<T>(const T*, const T*, const T*, T*, T*, T*, int64_t, int64_t, int64_t, int64_t,  \
                                       int, const int64_t*, const int64_t*, const int64_t*, Arena&);
FIT_INSTANTIATE(float)
FIT_INSTANTIATE(double)
#undef FIT_INSTANTIATE

}  // namespace ops
}  // namespace fit
