// Linear ops: Gemm (opset 7+) and MatMul (numpy matmul semantics). All math goes through
// kernels::gemm; batched MatMul loops over the broadcast batch index calling gemm per matrix (or
// folds the batch into M when B is shared by every batch entry).
#include <algorithm>
#include <cstring>
#include <string>

#include "../../kernels/backend.h"
#include "util.h"

namespace fit {
namespace {

std::string dimsStr(const Dims& d) { return dimsToString(d); }

// ----------------------------------------------------------------------------------------------
// Gemm: Y = alpha * op(A) * op(B) + beta * C, C optional and unidirectionally broadcast to [M, N].

template <typename T>
void gemmForward(OpContext<T>& ctx) {
  const Tensor& A = ctx.in(0);
  const Tensor& B = ctx.in(1);
  const bool transA = ctx.node.i("transA", 0) != 0;
  const bool transB = ctx.node.i("transB", 0) != 0;
  const T alpha = static_cast<T>(ctx.node.f("alpha", 1.0));
  const T beta = static_cast<T>(ctx.node.f("beta", 1.0));

  ctx.check(A.rank() == 2, "expected A of rank 2 but got rank " + std::to_string(A.rank()) +
                               " (dims " + dimsStr(A.dims) + ")");
  ctx.check(B.rank() == 2, "expected B of rank 2 but got rank " + std::to_string(B.rank()) +
                               " (dims " + dimsStr(B.dims) + ")");
  const int64_t M = transA ? A.dims[1] : A.dims[0];
  const int64_t K = transA ? A.dims[0] : A.dims[1];
  const int64_t KB = transB ? B.dims[1] : B.dims[0];
  const int64_t N = transB ? B.dims[0] : B.dims[1];
  ctx.check(K == KB, std::string("expected the inner dimensions to agree but op(A) is ") +
                         std::to_string(M) + "x" + std::to_string(K) + " (A " + dimsStr(A.dims) +
                         (transA ? ", transA=1" : "") + ") and op(B) is " + std::to_string(KB) +
                         "x" + std::to_string(N) + " (B " + dimsStr(B.dims) +
                         (transB ? ", transB=1" : "") + ")");

  // C: rank <= 2, each aligned dim either 1 or equal to M / N.
  const Tensor* C = ctx.has(2) ? &ctx.in(2) : nullptr;
  int64_t cm = 1, cn = 1;
  if (C) {
    ctx.check(C->rank() <= 2, "expected C of rank <= 2 but got rank " +
                                  std::to_string(C->rank()) + " (dims " + dimsStr(C->dims) + ")");
    if (C->rank() == 1) cn = C->dims[0];
    if (C->rank() == 2) cm = C->dims[0], cn = C->dims[1];
    ctx.check((cm == 1 || cm == M) && (cn == 1 || cn == N),
              "expected C to be broadcastable to [" + std::to_string(M) + ", " +
                  std::to_string(N) + "] but got dims " + dimsStr(C->dims));
  }

  T* y = ctx.output(0, {M, N});
  if (M == 0 || N == 0) return;
  const bool useC = C != nullptr && beta != T(0) && C->numel() > 0;
  if (useC) {
    const T* c = C->template data<T>();
    for (int64_t i = 0; i < M; ++i) {
      const T* crow = c + (cm == 1 ? 0 : i * cn);
      T* yrow = y + i * N;
      if (cn == 1) {
        std::fill(yrow, yrow + N, crow[0]);
      } else {
        std::memcpy(yrow, crow, sizeof(T) * N);
      }
    }
  }
  if (K == 0) {  // empty product: Y = beta * C (or 0)
    if (useC) {
      for (int64_t i = 0; i < M * N; ++i) y[i] *= beta;
    } else {
      std::fill(y, y + M * N, T(0));
    }
    return;
  }
  kernels::gemm(transA, transB, M, N, K, alpha, A.template data<T>(), A.dims[1],
                B.template data<T>(), B.dims[1], useC ? beta : T(0), y, N);
}

// ----------------------------------------------------------------------------------------------
// MatMul: numpy semantics. A 1-D A is promoted to [1, K] and a 1-D B to [K, 1]; the promoted dims
// are removed from the result. Batch dims (all but the last two) broadcast.

template <typename T>
void matmulForward(OpContext<T>& ctx) {
  const Tensor& A = ctx.in(0);
  const Tensor& B = ctx.in(1);
  ctx.check(A.rank() >= 1, "expected A of rank >= 1 but got a scalar");
  ctx.check(B.rank() >= 1, "expected B of rank >= 1 but got a scalar");

  Dims ad = A.dims, bd = B.dims;
  const bool aVec = ad.size() == 1, bVec = bd.size() == 1;
  if (aVec) ad.insert(ad.begin(), 1);
  if (bVec) bd.push_back(1);
  const int64_t M = ad[ad.size() - 2], K = ad[ad.size() - 1];
  const int64_t KB = bd[bd.size() - 2], N = bd[bd.size() - 1];
  ctx.check(K == KB, "expected the last dim of A to equal the second-to-last dim of B but got A " +
                         dimsStr(A.dims) + " and B " + dimsStr(B.dims));

  const Dims aBatch(ad.begin(), ad.end() - 2), bBatch(bd.begin(), bd.end() - 2);
  Dims batch;
  ctx.check(ops::broadcastDims(aBatch, bBatch, batch),
            "expected the batch dims of A " + dimsStr(A.dims) + " and B " + dimsStr(B.dims) +
                " to broadcast");

  Dims outDims = batch;
  if (!aVec) outDims.push_back(M);
  if (!bVec) outDims.push_back(N);
  T* y = ctx.output(0, outDims);

  const int64_t nb = numelOf(batch);
  if (nb == 0 || M == 0 || N == 0) return;
  if (K == 0) {
    std::fill(y, y + nb * M * N, T(0));
    return;
  }
  const T* a = A.template data<T>();
  const T* b = B.template data<T>();
  const int64_t aMat = M * K, bMat = K * N, yMat = M * N;
  const int64_t aCount = numelOf(aBatch), bCount = numelOf(bBatch);

  // B shared by all batch entries and A not broadcast: one gemm with the batch folded into M.
  if (bCount == 1 && aCount == nb) {
    kernels::gemm(false, false, nb * M, N, K, T(1), a, K, b, N, T(0), y, N);
    return;
  }

  const size_t r = batch.size();
  const Dims sa = ops::broadcastStrides(aBatch, r);  // in elements of the batch grid
  const Dims sb = ops::broadcastStrides(bBatch, r);
  Dims idx(r, 0);
  int64_t offA = 0, offB = 0;  // in matrices
  for (int64_t t = 0; t < nb; ++t) {
    kernels::gemm(false, false, M, N, K, T(1), a + offA * aMat, K, b + offB * bMat, N, T(0),
                  y + t * yMat, N);
    // Advance the odometer over the batch grid.
    for (size_t d = r; d-- > 0;) {
      if (++idx[d] < batch[d]) {
        offA += sa[d];
        offB += sb[d];
        break;
      }
      offA -= sa[d] * (batch[d] - 1);
      offB -= sb[d] * (batch[d] - 1);
      idx[d] = 0;
    }
  }
}

}  // namespace

FIT_REGISTER_OP("Gemm", gemmForward);
FIT_REGISTER_OP("MatMul", matmulForward);

}  // namespace fit
