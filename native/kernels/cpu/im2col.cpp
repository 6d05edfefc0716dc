// N-d im2col / col2im for one image (see backend.h for the layouts).
//
// Both walk the same index space: for every column-matrix row (channel c, kernel offset
// k_0..k_{d-1}) and every output position o_0..o_{d-1}, the input sample is
// i_j = o_j * stride_j + k_j * dilation_j - padBegin_j, and is 0 (im2col) or dropped (col2im) when
// any i_j falls outside the image. Instead of testing every element, the valid output range
// [lo, hi) of the innermost (contiguous) dimension is computed once per row, so each output line
// becomes: a zero-filled head, a copy (memcpy when stride == 1) or strided gather/scatter, and a
// zero-filled tail. Outer dimensions are tested once per line. 2-D has a dedicated loop nest;
// 1-D, 3-D and higher use the generic walk with an odometer over the outer output dimensions.
#include <algorithm>
#include <cstring>
#include <vector>

#include "../backend.h"
#include "../simd.h"

namespace fit {
namespace kernels {
namespace {

// Output positions o in [0, out) whose input o * stride + off lies in [0, in): [lo, hi).
inline void validRange(int64_t off, int64_t stride, int64_t in, int64_t out, int64_t& lo,
                       int64_t& hi) {
  lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
  hi = in - 1 - off < 0 ? 0 : (in - 1 - off) / stride + 1;
  lo = std::min(lo, out);
  hi = std::max(lo, std::min(hi, out));
}

// One output line of length `out` whose valid part is [lo, hi): output o reads input
// row[o * stride + off] (in range exactly for o in [lo, hi)).
template <typename T>
inline void lineToCol(const T* row, int64_t off, int64_t stride, int64_t lo, int64_t hi,
                      int64_t out, T* dst) {
  for (int64_t o = 0; o < lo; ++o) dst[o] = T(0);
  if (stride == 1) {
    // Lines are short (the width of a feature map): an inline loop, not a memcpy call per line.
    const T* src = row + off;
    for (int64_t o = lo; o < hi; ++o) dst[o] = src[o];
  } else if (stride == 2) {  // a constant stride lets the compiler vectorize (deinterleave)
    const T* src = row + (lo * 2 + off);
    for (int64_t o = 0; o < hi - lo; ++o) dst[lo + o] = src[2 * o];
  } else {
    const T* src = row + (lo * stride + off);
    for (int64_t o = lo; o < hi; ++o, src += stride) dst[o] = *src;
  }
  for (int64_t o = hi; o < out; ++o) dst[o] = T(0);
}

// The adjoint: row[o * stride + off] += src[o] for o in [lo, hi).
template <typename T>
inline void lineFromCol(const T* src, int64_t off, int64_t stride, int64_t lo, int64_t hi,
                        T* row) {
  if (hi <= lo) return;
  T* dst = row + (lo * stride + off);
  if (stride == 1)
    for (int64_t o = lo; o < hi; ++o) dst[o - lo] += src[o];
  else if (stride == 2)
    for (int64_t o = 0; o < hi - lo; ++o) dst[2 * o] += src[lo + o];
  else
    for (int64_t o = lo; o < hi; ++o, dst += stride) *dst += src[o];
}

// 2-D: img [C, H, W], col [C * KH * KW, OH * OW]. Multiversioned: the line loops vectorize for
// the running CPU.
template <typename T, bool kToCol>
FIT_SIMD_CLONES void walk2d(T* img, T* col, int64_t channels, const int64_t* in, const int64_t* kernel,
            const int64_t* stride, const int64_t* dilation, const int64_t* pad,
            const int64_t* out) {
  const int64_t H = in[0], W = in[1], OH = out[0], OW = out[1];
  const int64_t sh = stride[0], sw = stride[1];
  for (int64_t c = 0; c < channels; ++c) {
    T* plane = img + c * H * W;
    for (int64_t kh = 0; kh < kernel[0]; ++kh) {
      const int64_t offH = kh * dilation[0] - pad[0];
      int64_t hlo, hhi;
      validRange(offH, sh, H, OH, hlo, hhi);
      for (int64_t kw = 0; kw < kernel[1]; ++kw, col += OH * OW) {
        const int64_t offW = kw * dilation[1] - pad[1];
        int64_t wlo, whi;
        validRange(offW, sw, W, OW, wlo, whi);
        if (kToCol) {
          std::fill(col, col + hlo * OW, T(0));
          std::fill(col + hhi * OW, col + OH * OW, T(0));
        }
        for (int64_t oh = hlo; oh < hhi; ++oh) {
          T* row = plane + (oh * sh + offH) * W;
          T* c2 = col + oh * OW;
          if (kToCol)
            lineToCol<T>(row, offW, sw, wlo, whi, OW, c2);
          else
            lineFromCol<T>(c2, offW, sw, wlo, whi, row);
        }
      }
    }
  }
}

// 2-D with unit strides and dilations (the common 3x3 / pad 1 convolution): each channel goes
// through a zero-padded copy of the plane covering every tap (PH = OH + KH - 1 rows, PW = OW + KW
// - 1 columns), so every column-matrix line is a plain copy (or add) of OW values with no bounds
// logic; on small feature maps that per-line logic costs more than the copies.
template <typename T, bool kToCol>
FIT_SIMD_CLONES void walk2dUnit(T* img, T* col, int64_t channels, const int64_t* in, const int64_t* kernel,
                                const int64_t* pad, const int64_t* out, T* buf) {
  const int64_t H = in[0], W = in[1], OH = out[0], OW = out[1], KH = kernel[0], KW = kernel[1];
  const int64_t PH = OH + KH - 1, PW = OW + KW - 1;
  // Image rows / columns that land inside the padded plane: ih + pad[0] in [0, PH).
  const int64_t h0 = std::max<int64_t>(0, -pad[0]), h1 = std::min(H, PH - pad[0]);
  const int64_t w0 = std::max<int64_t>(0, -pad[1]), w1 = std::min(W, PW - pad[1]);
  for (int64_t c = 0; c < channels; ++c) {
    T* plane = img + c * H * W;
    for (int64_t i = 0; i < PH * PW; ++i) buf[i] = T(0);
    if (kToCol)
      for (int64_t ih = h0; ih < h1; ++ih)
        for (int64_t iw = w0; iw < w1; ++iw) buf[(ih + pad[0]) * PW + iw + pad[1]] = plane[ih * W + iw];
    constexpr int64_t L = simd::kLanes<T>;
    const int64_t OWv = (OW + L - 1) / L * L;  // OW rounded up to whole vectors
    for (int64_t kh = 0; kh < KH; ++kh)
      for (int64_t kw = 0; kw < KW; ++kw, col += OH * OW)
        for (int64_t oh = 0; oh < OH; ++oh) {
          T* __restrict b = buf + (oh + kh) * PW + kw;
          T* __restrict d = col + oh * OW;
          if (kToCol) {
            // Whole vectors, spilling into the start of the next line, which is written after
            // this one; only the last line of this call is copied exactly. (buf has L slack.)
            const bool last = c == channels - 1 && kh == KH - 1 && kw == KW - 1 && oh == OH - 1;
            if (!last)
              for (int64_t o = 0; o < OWv; o += L) simd::store(d + o, simd::load(b + o));
            else
              for (int64_t o = 0; o < OW; ++o) d[o] = b[o];
          } else {
            for (int64_t o = 0; o < OW; ++o) b[o] += d[o];
          }
        }
    if (!kToCol)
      for (int64_t ih = h0; ih < h1; ++ih)
        for (int64_t iw = w0; iw < w1; ++iw) plane[ih * W + iw] += buf[(ih + pad[0]) * PW + iw + pad[1]];
  }
}

// Any rank >= 1.
template <typename T, bool kToCol>
void walkNd(T* img, T* col, int64_t channels, int nd, const int64_t* in, const int64_t* kernel,
            const int64_t* stride, const int64_t* dilation, const int64_t* pad,
            const int64_t* out) {
  const int last = nd - 1;
  int64_t imgSize = 1, outSize = 1, kSize = 1;
  for (int j = 0; j < nd; ++j) {
    imgSize *= in[j];
    outSize *= out[j];
    kSize *= kernel[j];
  }
  std::vector<int64_t> inStride(nd, 1), kIdx(nd, 0), off(nd), oIdx(nd, 0);
  for (int j = nd - 2; j >= 0; --j) inStride[j] = inStride[j + 1] * in[j + 1];
  const int64_t outLast = out[last];
  const int64_t lines = outSize / std::max<int64_t>(outLast, 1);

  for (int64_t c = 0; c < channels; ++c) {
    T* image = img + c * imgSize;
    std::fill(kIdx.begin(), kIdx.end(), 0);
    for (int64_t kr = 0; kr < kSize; ++kr, col += outSize) {
      for (int j = 0; j < nd; ++j) off[j] = kIdx[j] * dilation[j] - pad[j];
      int64_t lo, hi;
      validRange(off[last], stride[last], in[last], outLast, lo, hi);
      std::fill(oIdx.begin(), oIdx.end(), 0);
      for (int64_t ln = 0; ln < lines; ++ln) {
        // Input offset of this line's outer coordinates; `inside` is false in the padding.
        int64_t base = 0;
        bool inside = true;
        for (int j = 0; j < last; ++j) {
          const int64_t i = oIdx[j] * stride[j] + off[j];
          inside = inside && i >= 0 && i < in[j];
          base += i * inStride[j];
        }
        T* c2 = col + ln * outLast;
        if (!inside) {
          if (kToCol) std::fill(c2, c2 + outLast, T(0));
        } else if (kToCol) {
          lineToCol<T>(image + base, off[last], stride[last], lo, hi, outLast, c2);
        } else {
          lineFromCol<T>(c2, off[last], stride[last], lo, hi, image + base);
        }
        for (int j = last - 1; j >= 0; --j) {  // next outer output position
          if (++oIdx[j] < out[j]) break;
          oIdx[j] = 0;
        }
      }
      for (int j = last; j >= 0; --j) {  // next kernel offset
        if (++kIdx[j] < kernel[j]) break;
        kIdx[j] = 0;
      }
    }
  }
}

// Padded planes up to this many elements (256 KB of floats) go through walk2dUnit.
constexpr int64_t kUnitBufMax = int64_t(1) << 16;

template <typename T, bool kToCol>
void walk(T* img, T* col, int64_t channels, int nd, const int64_t* in, const int64_t* kernel,
          const int64_t* stride, const int64_t* dilation, const int64_t* pad,
          const int64_t* out) {
  // A 1x..x1 kernel with unit stride and no padding: col is the image itself.
  bool identity = true;
  int64_t size = channels;
  for (int j = 0; j < nd; ++j) {
    identity = identity && kernel[j] == 1 && stride[j] == 1 && pad[j] == 0 && out[j] == in[j];
    size *= in[j];
  }
  if (identity) {
    if (kToCol)
      std::memcpy(col, img, sizeof(T) * static_cast<size_t>(size));
    else
      for (int64_t i = 0; i < size; ++i) img[i] += col[i];
    return;
  }
  if (nd == 2 && stride[0] == 1 && stride[1] == 1 && dilation[0] == 1 && dilation[1] == 1 && out[0] > 0 &&
      out[1] > 0 && (out[0] + kernel[0] - 1) * (out[1] + kernel[1] - 1) <= kUnitBufMax) {
    thread_local std::vector<T> buf;
    buf.resize(static_cast<size_t>((out[0] + kernel[0] - 1) * (out[1] + kernel[1] - 1) + simd::kLanes<T>));
    walk2dUnit<T, kToCol>(img, col, channels, in, kernel, pad, out, buf.data());
  } else if (nd == 2)
    walk2d<T, kToCol>(img, col, channels, in, kernel, stride, dilation, pad, out);
  else
    walkNd<T, kToCol>(img, col, channels, nd, in, kernel, stride, dilation, pad, out);
}

}  // namespace

template <typename T>
void im2col(const T* img, int64_t channels, int nd, const int64_t* inShape, const int64_t* kernel,
            const int64_t* stride, const int64_t* dilation, const int64_t* padBegin,
            const int64_t* outShape, T* col) {
  // The walk only reads img in this direction.
  walk<T, true>(const_cast<T*>(img), col, channels, nd, inShape, kernel, stride, dilation,
                padBegin, outShape);
}

template <typename T>
void col2im(const T* col, int64_t channels, int nd, const int64_t* inShape, const int64_t* kernel,
            const int64_t* stride, const int64_t* dilation, const int64_t* padBegin,
            const int64_t* outShape, T* img) {
  // The walk only reads col in this direction.
  walk<T, false>(img, const_cast<T*>(col), channels, nd, inShape, kernel, stride, dilation,
                 padBegin, outShape);
}

#define FIT_INSTANTIATE(T)                                                                      \
  template void im2col<T>(const T*, int64_t, int, const int64_t*, const int64_t*,              \
                          const int64_t*, const int64_t*, const int64_t*, const int64_t*, T*); \
  template void col2im<T>(const T*, int64_t, int, const int64_t*, const int64_t*,              \
                          const int64_t*, const int64_t*, const int64_t*, const int64_t*, T*);
FIT_INSTANTIATE(float)
FIT_INSTANTIATE(double)
#undef FIT_INSTANTIATE

}  // namespace kernels
}  // namespace fit
