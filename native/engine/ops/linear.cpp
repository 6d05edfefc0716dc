// Linear ops: Gemm (opset 7+) and MatMul (numpy matmul semantics), forward and backward. All math
// goes through kernels::gemm; batched MatMul loops over the broadcast batch index calling gemm per
// matrix (or folds the batch into M when B is shared by every batch entry).
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

// ----------------------------------------------------------------------------------------------
// Gradients. The loss is a sum over samples; per-sample squared weight gradients (ctx.sqWeightGrad)
// take sample i to be row i of the output (Gemm: row i of op(A), which is row i of A unless
// transA; 2-D MatMul: row i of the promoted A) or, for a batched MatMul, index i of the first
// batch axis of the output (= axis 0 of the data input).

// out[i] = x[i]^2 into scratch.
template <typename T>
const T* squared(Arena& scratch, const T* __restrict x, int64_t n) {
  T* __restrict out = scratch.alloc<T>(static_cast<size_t>(n > 0 ? n : 1));
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * x[i];
  return out;
}

template <typename T>
void addSquares(T* __restrict sq, const T* __restrict g, int64_t n) {
  for (int64_t i = 0; i < n; ++i) sq[i] += g[i] * g[i];
}

template <typename T>
T* sqTarget(GradContext<T>& ctx, int maxInput) {
  if (!ctx.sqWeightGrad) return nullptr;
  if (ctx.weightInput < 0 || ctx.weightInput > maxInput)
    ctx.fail(ErrorCode::Internal, "per-sample squared gradients are defined for inputs 0 and 1 only, but input " +
                                      std::to_string(ctx.weightInput) + " was requested");
  return ctx.sqWeightGrad->template data<T>();
}

// Gemm: reads A, B (each for the other's gradient and for the squares); C only for its dims
// (ctx.inDims), so C is not saved.
//   d op(A) = alpha dY op(B)^T,  d op(B) = alpha op(A)^T dY,  dC = beta * sumToShape(dY).
// Per-sample squares of B: sum_i (alpha a_i^T delta_i)^2 = alpha^2 (op(A)^2)^T (dY^2), one gemm on
// squared operands; of A: sample i owns row i of op(A), so they are dA^2.
template <typename T>
void gemmBackward(GradContext<T>& ctx) {
  const Tensor& A = ctx.in(0);
  const Tensor& B = ctx.in(1);
  const bool transA = ctx.node.i("transA", 0) != 0;
  const bool transB = ctx.node.i("transB", 0) != 0;
  const T alpha = static_cast<T>(ctx.node.f("alpha", 1.0));
  const T beta = static_cast<T>(ctx.node.f("beta", 1.0));
  const int64_t M = transA ? A.dims[1] : A.dims[0];
  const int64_t K = transA ? A.dims[0] : A.dims[1];
  const int64_t N = transB ? B.dims[0] : B.dims[1];
  const int64_t lda = A.dims[1], ldb = B.dims[1];
  T* sq = sqTarget(ctx, 1);
  const int wIn = ctx.weightInput;
  const T* dy = ctx.gout(0);
  const T* a = A.template data<T>();
  const T* b = B.template data<T>();

  // dA (stored layout): transA ? alpha op(B) dY^T : alpha dY op(B)^T.
  auto gradA = [&](T* da) {
    if (transA) kernels::gemm(transB, true, K, M, N, alpha, b, ldb, dy, N, T(0), da, M);
    else kernels::gemm(false, !transB, M, K, N, alpha, dy, N, b, ldb, T(0), da, K);
  };
  // dB-shaped product (stored layout) of `x` (A's layout) and `d` (dY's layout), beta into out.
  auto gradB = [&](const T* x, const T* d, T scale, T outBeta, T* out) {
    if (transB) kernels::gemm(true, transA, N, K, M, scale, d, N, x, lda, outBeta, out, K);
    else kernels::gemm(!transA, false, K, N, M, scale, x, lda, d, N, outBeta, out, N);
  };

  T* da = ctx.wants(0) ? ctx.gradInput(0, A.dims) : nullptr;
  T* db = ctx.wants(1) ? ctx.gradInput(1, B.dims) : nullptr;
  if (ctx.wants(2)) {
    const Dims& cd = ctx.inDims(2);
    const int64_t nc = numelOf(cd);
    T* dc = ctx.gradInput(2, cd);
    if (dy && beta != T(0)) {
      ops::sumToShape(dy, Dims{M, N}, dc, cd);
      for (int64_t i = 0; i < nc; ++i) dc[i] *= beta;
    } else {
      std::fill(dc, dc + nc, T(0));
    }
  }
  if (!dy) {
    if (da) std::fill(da, da + A.numel(), T(0));
    if (db) std::fill(db, db + B.numel(), T(0));
    return;
  }
  if (da) gradA(da);
  if (db) gradB(a, dy, alpha, T(0), db);
  if (!sq || M == 0) return;
  if (wIn == 1) {
    gradB(squared(ctx.scratch, a, A.numel()), squared(ctx.scratch, dy, M * N), alpha * alpha, T(1), sq);
  } else {
    const T* g = da;
    if (!g) {
      T* tmp = ctx.scratch.template alloc<T>(static_cast<size_t>(A.numel() > 0 ? A.numel() : 1));
      gradA(tmp);
      g = tmp;
    }
    addSquares(sq, g, A.numel());
  }
}

// MatMul: reads A and B. Per batch entry t (broadcast batch dims): dA_t += dY_t B_t^T and
// dB_t += A_t^T dY_t, accumulated where an operand is broadcast (that is the reduction over the
// broadcast batch dims). Per-sample squares, weight operand W:
// - no batch dims (2-D after promotion): samples are the rows of A, so for W = B
//   sum_i (a_i^T delta_i)^2 = (A^2)^T (dY^2), and for W = A they are dA^2;
// - batched, W not broadcast over the first batch axis: each sample owns its slices of W, so dW^2;
// - batched, W broadcast over it ([N, T, K] x [K, M], sequence models): G_s, the weight gradient of
//   sample s alone (its batch entries summed), is formed per sample, squared and accumulated, and
//   dW = sum_s G_s comes from the same products.
template <typename T>
void matmulBackward(GradContext<T>& ctx) {
  const Tensor& A = ctx.in(0);
  const Tensor& B = ctx.in(1);
  Dims ad = A.dims, bd = B.dims;
  if (ad.size() == 1) ad.insert(ad.begin(), 1);
  if (bd.size() == 1) bd.push_back(1);
  const int64_t M = ad[ad.size() - 2], K = ad[ad.size() - 1], N = bd[bd.size() - 1];
  const Dims aBatch(ad.begin(), ad.end() - 2), bBatch(bd.begin(), bd.end() - 2);
  Dims batch;
  if (!ops::broadcastDims(aBatch, bBatch, batch))
    ctx.fail(ErrorCode::Internal, "batch dims of A " + dimsStr(A.dims) + " and B " + dimsStr(B.dims) + " do not broadcast");
  T* sq = sqTarget(ctx, 1);
  const int wIn = ctx.weightInput;
  T* da = ctx.wants(0) ? ctx.gradInputZeros(0, A.dims) : nullptr;
  T* db = ctx.wants(1) ? ctx.gradInputZeros(1, B.dims) : nullptr;
  const T* dy = ctx.gout(0);
  const int64_t nb = numelOf(batch);
  if (!dy || nb == 0 || M == 0 || N == 0 || K == 0) return;
  const T* a = A.template data<T>();
  const T* b = B.template data<T>();
  const int64_t aMat = M * K, bMat = K * N, yMat = M * N;
  const int64_t aCount = numelOf(aBatch), bCount = numelOf(bBatch);

  // Matrix offsets of A and B for each batch entry.
  int64_t* offA = ctx.scratch.template alloc<int64_t>(static_cast<size_t>(nb));
  int64_t* offB = ctx.scratch.template alloc<int64_t>(static_cast<size_t>(nb));
  {
    const size_t r = batch.size();
    const Dims sa = ops::broadcastStrides(aBatch, r), sb = ops::broadcastStrides(bBatch, r);
    Dims idx(r, 0);
    int64_t oa = 0, ob = 0;
    for (int64_t t = 0; t < nb; ++t) {
      offA[t] = oa, offB[t] = ob;
      for (size_t d = r; d-- > 0;) {
        if (++idx[d] < batch[d]) {
          oa += sa[d], ob += sb[d];
          break;
        }
        oa -= sa[d] * (batch[d] - 1), ob -= sb[d] * (batch[d] - 1);
        idx[d] = 0;
      }
    }
  }
  // Adds entry t's contribution to the gradient of A (into ga) or of B (into gb).
  auto entryA = [&](int64_t t, T* ga) {
    kernels::gemm(false, true, M, K, N, T(1), dy + t * yMat, N, b + offB[t] * bMat, N, T(1), ga + offA[t] * aMat, K);
  };
  auto entryB = [&](int64_t t, T* gb) {
    kernels::gemm(true, false, K, N, M, T(1), a + offA[t] * aMat, K, dy + t * yMat, N, T(1), gb + offB[t] * bMat, N);
  };

  const Dims& wBatch = wIn == 0 ? aBatch : bBatch;
  const int64_t S = batch.empty() ? 0 : batch[0];
  const bool perSampleLoop = sq && S > 1 && !(wBatch.size() == batch.size() && wBatch[0] == S);
  const bool wFromLoop = perSampleLoop;  // the weight gradient is summed from the per-sample G_s

  // Plain gradients (the weight's is skipped when the per-sample loop produces it).
  T* gA = wFromLoop && wIn == 0 ? nullptr : da;
  T* gB = wFromLoop && wIn == 1 ? nullptr : db;
  if (bCount == 1 && aCount == nb) {  // B shared, A not broadcast: fold the batch into M
    if (gA) kernels::gemm(false, true, nb * M, K, N, T(1), dy, N, b, N, T(0), gA, K);
    if (gB) kernels::gemm(true, false, K, N, nb * M, T(1), a, K, dy, N, T(0), gB, N);
  } else {
    for (int64_t t = 0; t < nb; ++t) {
      if (gA) entryA(t, gA);
      if (gB) entryB(t, gB);
    }
  }
  if (!sq) return;

  const int64_t wSize = wIn == 0 ? A.numel() : B.numel();
  if (batch.empty() && wIn == 1) {
    kernels::gemm(true, false, K, N, M, T(1), squared(ctx.scratch, a, aMat), K, squared(ctx.scratch, dy, yMat), N,
                  T(1), sq, N);
    return;
  }
  if (!perSampleLoop) {  // each sample owns its part of W: the squares of the plain gradient
    T* g = wIn == 0 ? da : db;
    if (!g) {
      g = ctx.scratch.template alloc<T>(static_cast<size_t>(wSize));
      std::fill(g, g + wSize, T(0));
      for (int64_t t = 0; t < nb; ++t) wIn == 0 ? entryA(t, g) : entryB(t, g);
    }
    addSquares(sq, g, wSize);
    return;
  }
  T* G = ctx.scratch.template alloc<T>(static_cast<size_t>(wSize));
  T* dw = wIn == 0 ? da : db;
  const int64_t inner = nb / S;
  for (int64_t s = 0; s < S; ++s) {
    const int64_t t0 = s * inner;
    if (wIn == 1 && bCount == 1 && aCount == nb) {
      // Sample s owns the contiguous rows [t0 * M, (t0 + inner) * M) of A and dY: one gemm.
      kernels::gemm(true, false, K, N, inner * M, T(1), a + t0 * aMat, K, dy + t0 * yMat, N, T(0), G, N);
    } else {
      std::fill(G, G + wSize, T(0));
      for (int64_t t = t0; t < t0 + inner; ++t) wIn == 0 ? entryA(t, G) : entryB(t, G);
    }
    addSquares(sq, G, wSize);
    if (dw)
      for (int64_t i = 0; i < wSize; ++i) dw[i] += G[i];
  }
}

}  // namespace

FIT_REGISTER_OP("Gemm", gemmForward);
FIT_REGISTER_GRAD("Gemm", gemmBackward, slot(0) | slot(1), kNoSlots);
FIT_REGISTER_OP("MatMul", matmulForward);
FIT_REGISTER_GRAD("MatMul", matmulBackward, slot(0) | slot(1), kNoSlots);

}  // namespace fit
