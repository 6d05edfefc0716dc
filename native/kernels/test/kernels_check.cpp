// Standalone correctness + speed check of the CPU kernels (no test framework, no Node).
//
// Build and run (no -mavx2: the SIMD paths must come from target attributes alone):
//   g++ -O3 -std=c++17 -march=x86-64 -Wall -Inative native/kernels/cpu/*.cpp native/kernels/test/kernels_check.cpp -o /tmp/kcheck -lpthread && /tmp/kcheck
// Options: --quick (skip the GFLOP/s table), --bench (only the table).
// Exits non-zero if any check fails.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cpu/gemm_paths.h"

using namespace fit::kernels;
using cpu::Isa;

namespace {

int gPass = 0, gFail = 0;
std::mt19937_64 rng(12345);

void check(bool ok, const std::string& what) {
  if (ok) {
    ++gPass;
  } else {
    ++gFail;
    if (gFail <= 30) std::printf("FAIL: %s\n", what.c_str());
  }
}

int64_t randInt(int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

template <typename T>
void fillRandom(std::vector<T>& v) {
  std::uniform_real_distribution<double> d(-1.0, 1.0);
  for (T& x : v) x = static_cast<T>(d(rng));
}

// ---- GEMM ---------------------------------------------------------------------------------------

struct GemmCase {
  bool tA, tB;
  int64_t M, N, K;
  double alpha, beta;
};

// Runs one case through gemm<T> and compares against a double-precision reference, with an
// error bound of (K + 2) * 2 eps * sum of |terms| per element. Also checks that the padding of C
// (columns N..ldc) is untouched and that beta == 0 ignores NaN in C.
template <typename T>
bool runGemmCase(const GemmCase& c, std::string& why) {
  const int64_t aRows = c.tA ? c.K : c.M, aCols = c.tA ? c.M : c.K;
  const int64_t bRows = c.tB ? c.N : c.K, bCols = c.tB ? c.K : c.N;
  const int64_t lda = aCols + randInt(0, 1) * randInt(1, 5);
  const int64_t ldb = bCols + randInt(0, 1) * randInt(1, 5);
  const int64_t ldc = c.N + randInt(0, 1) * randInt(1, 5);
  std::vector<T> A(static_cast<size_t>(std::max<int64_t>(aRows * lda, 1)));
  std::vector<T> B(static_cast<size_t>(std::max<int64_t>(bRows * ldb, 1)));
  std::vector<T> C(static_cast<size_t>(c.M * ldc));
  fillRandom(A);
  fillRandom(B);
  fillRandom(C);
  const T sentinel = static_cast<T>(1234.5);
  for (int64_t i = 0; i < c.M; ++i) {
    for (int64_t j = c.N; j < ldc; ++j) C[i * ldc + j] = sentinel;
    if (c.beta == 0)
      for (int64_t j = 0; j < c.N; ++j) C[i * ldc + j] = std::numeric_limits<T>::quiet_NaN();
  }
  const std::vector<T> C0 = C;
  gemm(c.tA, c.tB, c.M, c.N, c.K, static_cast<T>(c.alpha), A.data(), lda, B.data(), ldb,
       static_cast<T>(c.beta), C.data(), ldc);

  const double eps = std::numeric_limits<T>::epsilon();
  for (int64_t i = 0; i < c.M; ++i) {
    for (int64_t j = 0; j < ldc; ++j) {
      const double got = C[i * ldc + j];
      if (j >= c.N) {
        if (got != sentinel) {
          why = "wrote outside C at (" + std::to_string(i) + "," + std::to_string(j) + ")";
          return false;
        }
        continue;
      }
      double ref = 0, mag = 0;
      for (int64_t k = 0; k < c.K; ++k) {
        const double a = c.tA ? A[k * lda + i] : A[i * lda + k];
        const double b = c.tB ? B[j * ldb + k] : B[k * ldb + j];
        ref += a * b;
        mag += std::fabs(a * b);
      }
      ref *= c.alpha;
      mag *= std::fabs(c.alpha);
      if (c.beta != 0) {
        ref += c.beta * C0[i * ldc + j];
        mag += std::fabs(c.beta * C0[i * ldc + j]);
      }
      const double tol = 2.0 * static_cast<double>(c.K + 2) * eps * mag + 1e-30;
      if (!(std::fabs(got - ref) <= tol)) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "C(%lld,%lld) = %.9g, reference %.9g (tol %.3g)",
                      static_cast<long long>(i), static_cast<long long>(j), got, ref, tol);
        why = buf;
        return false;
      }
    }
  }
  return true;
}

std::string describe(const GemmCase& c, const char* type, const char* path) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "%s gemm[%s] tA=%d tB=%d M=%lld N=%lld K=%lld alpha=%g beta=%g",
                type, path, c.tA, c.tB, static_cast<long long>(c.M),
                static_cast<long long>(c.N), static_cast<long long>(c.K), c.alpha, c.beta);
  return buf;
}

std::vector<GemmCase> gemmCases() {
  // Shapes: tiny, matrix-vector, exact tiles, odd tails, and sizes crossing the MC/KC/NC blocks.
  const int64_t shapes[][3] = {
      {1, 1, 1},     {1, 1, 7},     {1, 37, 19},    {29, 1, 33},    {1, 1, 0},    {5, 7, 0},
      {2, 3, 4},     {6, 16, 64},   {12, 32, 100},  {7, 17, 9},     {13, 33, 1},  {5, 9, 300},
      {64, 64, 64},  {31, 47, 263}, {100, 3, 50},   {3, 100, 50},   {250, 70, 40}, {37, 2100, 5},
      {145, 60, 520}, {290, 97, 130}, {481, 35, 17}, {16, 16, 1000},
      // small M with long K: the dot-product path for A * B^T, including K chunks (> 2048)
      {3, 50, 300},   {8, 37, 4500}, {12, 9, 2100},  {5, 70, 256},   {16, 5, 333},
  };
  const double alphas[] = {1.0, -0.5, 2.5};
  const double betas[] = {0.0, 1.0, -0.75};
  std::vector<GemmCase> cases;
  for (auto& s : shapes)
    for (int t = 0; t < 4; ++t)
      cases.push_back({(t & 1) != 0, (t & 2) != 0, s[0], s[1], s[2], alphas[randInt(0, 2)],
                       betas[(t + s[0]) % 3]});
  for (int r = 0; r < 60; ++r)  // random shapes with random alpha/beta
    cases.push_back({randInt(0, 1) == 1, randInt(0, 1) == 1, randInt(1, 200), randInt(1, 200),
                     randInt(1, 300), alphas[randInt(0, 2)], betas[randInt(0, 2)]});
  for (int t = 0; t < 4; ++t) {  // alpha == 0: C = beta * C, A/B never read for values
    cases.push_back({(t & 1) != 0, (t & 2) != 0, 9, 11, 13, 0.0, 0.5});
    cases.push_back({(t & 1) != 0, (t & 2) != 0, 9, 11, 13, 0.0, 0.0});
  }
  return cases;
}

void testGemm() {
  const std::vector<GemmCase> cases = gemmCases();
  for (int isa = 0; isa <= static_cast<int>(cpu::bestIsa()); ++isa) {
    const Isa prev = cpu::capIsa(static_cast<Isa>(isa));
    const char* name = cpu::isaName(static_cast<Isa>(isa));
    check(std::strcmp(gemmPath(), name) == 0, std::string("gemmPath() reports ") + name);
    int before = gFail;
    for (const GemmCase& c : cases) {
      std::string why;
      bool ok = runGemmCase<float>(c, why);  // before building the message, which reads `why`
      check(ok, describe(c, "float", name) + ": " + why);
      if (isa <= 1) {
        ok = runGemmCase<double>(c, why);
        check(ok, describe(c, "double", name) + ": " + why);
      }
    }
    std::printf("gemm path %-9s: %zu cases x %s, %s\n", name, cases.size(),
                isa <= 1 ? "float+double" : "float", gFail == before ? "ok" : "FAILED");
    cpu::capIsa(prev);
  }
  // forcePortableGemm and gemmPath agree; the setting round-trips.
  const bool was = forcePortableGemm(true);
  check(std::strcmp(gemmPath(), "portable") == 0, "forcePortableGemm(true) selects portable");
  check(forcePortableGemm(was) == true, "forcePortableGemm returns the previous setting");
  check(cpuHasAvx2Fma() == (cpu::bestIsa() >= Isa::Avx2Fma), "cpuHasAvx2Fma consistent");
}

// Two threads running different-size GEMMs at once (thread_local packing buffers).
void testThreads() {
  bool ok[2] = {false, false};
  auto work = [&](int t) {
    bool good = true;
    for (int r = 0; r < 20 && good; ++r) {
      std::mt19937_64 local(static_cast<uint64_t>(t * 100 + r));
      const int64_t n = 40 + (t ? 90 : 33) + r;
      std::vector<float> A(n * n), B(n * n), C(n * n);
      for (auto& x : A) x = static_cast<float>(local() % 7) - 3.0f;
      for (auto& x : B) x = static_cast<float>(local() % 5) - 2.0f;
      gemm(false, t == 1, n, n, n, 1.0f, A.data(), n, B.data(), n, 0.0f, C.data(), n);
      for (int64_t i = 0; i < n && good; ++i)
        for (int64_t j = 0; j < n; ++j) {
          double ref = 0;  // small integers: exact in float
          for (int64_t k = 0; k < n; ++k) ref += A[i * n + k] * (t ? B[j * n + k] : B[k * n + j]);
          if (C[i * n + j] != ref) good = false;
        }
    }
    ok[t] = good;
  };
  std::thread th0(work, 0), th1(work, 1);
  th0.join();
  th1.join();
  check(ok[0] && ok[1], "concurrent gemm in two threads");
}

// ---- im2col / col2im ----------------------------------------------------------------------------

struct ConvGeom {
  int nd;
  int64_t channels;
  std::vector<int64_t> in, kernel, stride, dilation, padBegin, padEnd;
  std::vector<int64_t> out() const {
    std::vector<int64_t> o(nd);
    for (int j = 0; j < nd; ++j)
      o[j] = (in[j] + padBegin[j] + padEnd[j] - dilation[j] * (kernel[j] - 1) - 1) / stride[j] + 1;
    return o;
  }
};

// Visits every (col index, img index or -1) pair in the naive order.
template <class F>
void naiveWalk(const ConvGeom& g, F f) {
  const std::vector<int64_t> out = g.out();
  int64_t kSize = 1, oSize = 1, iSize = 1;
  for (int j = 0; j < g.nd; ++j) kSize *= g.kernel[j], oSize *= out[j], iSize *= g.in[j];
  for (int64_t c = 0; c < g.channels; ++c)
    for (int64_t kr = 0; kr < kSize; ++kr)
      for (int64_t o = 0; o < oSize; ++o) {
        int64_t kRem = kr, oRem = o, idx = 0;
        bool inside = true;
        int64_t mul = 1;
        for (int j = g.nd - 1; j >= 0; --j) {
          const int64_t kj = kRem % g.kernel[j], oj = oRem % out[j];
          kRem /= g.kernel[j];
          oRem /= out[j];
          const int64_t ij = oj * g.stride[j] + kj * g.dilation[j] - g.padBegin[j];
          inside = inside && ij >= 0 && ij < g.in[j];
          idx += ij * mul;
          mul *= g.in[j];
        }
        f((c * kSize + kr) * oSize + o, inside ? c * iSize + idx : -1);
      }
}

template <typename T>
void testConvGeom(const ConvGeom& g, const std::string& name) {
  const std::vector<int64_t> out = g.out();
  int64_t kSize = 1, oSize = 1, iSize = 1;
  for (int j = 0; j < g.nd; ++j) kSize *= g.kernel[j], oSize *= out[j], iSize *= g.in[j];
  std::vector<T> img(g.channels * iSize), col(g.channels * kSize * oSize, T(7));
  std::vector<T> y(col.size()), back(img.size()), refCol(col.size()), refBack(img.size());
  fillRandom(img);
  fillRandom(y);
  fillRandom(back);  // col2im accumulates into existing contents
  refBack = back;
  im2col<T>(img.data(), g.channels, g.nd, g.in.data(), g.kernel.data(), g.stride.data(),
            g.dilation.data(), g.padBegin.data(), out.data(), col.data());
  col2im<T>(y.data(), g.channels, g.nd, g.in.data(), g.kernel.data(), g.stride.data(),
            g.dilation.data(), g.padBegin.data(), out.data(), back.data());
  naiveWalk(g, [&](int64_t ci, int64_t ii) {
    refCol[ci] = ii < 0 ? T(0) : img[ii];
    if (ii >= 0) refBack[ii] += y[ci];
  });
  check(col == refCol, name + ": im2col matches naive");
  double maxErr = 0;
  for (size_t i = 0; i < back.size(); ++i)
    maxErr = std::max(maxErr, std::fabs(double(back[i]) - double(refBack[i])));
  const double eps = std::numeric_limits<T>::epsilon();
  check(maxErr <= 8 * eps * double(kSize), name + ": col2im matches naive");
  // Adjoint: <im2col(x), y> == <x, col2im(y)> (col2im into a zeroed image).
  std::vector<T> adj(img.size(), T(0));
  col2im<T>(y.data(), g.channels, g.nd, g.in.data(), g.kernel.data(), g.stride.data(),
            g.dilation.data(), g.padBegin.data(), out.data(), adj.data());
  double lhs = 0, rhs = 0, mag = 0;
  for (size_t i = 0; i < col.size(); ++i) lhs += double(col[i]) * y[i], mag += std::fabs(col[i] * y[i]);
  for (size_t i = 0; i < img.size(); ++i) rhs += double(img[i]) * adj[i];
  check(std::fabs(lhs - rhs) <= 16 * eps * (mag + 1), name + ": col2im is the adjoint of im2col");
}

void testIm2col() {
  using V = std::vector<int64_t>;
  const std::vector<std::pair<std::string, ConvGeom>> geoms = {
      {"1d k3 s2 p1/0", {1, 3, V{10}, V{3}, V{2}, V{1}, V{1}, V{0}}},
      {"1d k5 d2 p4/3", {1, 2, V{9}, V{5}, V{1}, V{2}, V{4}, V{3}}},
      {"2d k3 s1 p1", {2, 3, V{7, 8}, V{3, 3}, V{1, 1}, V{1, 1}, V{1, 1}, V{1, 1}}},
      {"2d k3 s2 p1", {2, 4, V{9, 10}, V{3, 3}, V{2, 2}, V{1, 1}, V{1, 1}, V{1, 1}}},
      {"2d k5 d2 p2", {2, 2, V{11, 9}, V{5, 5}, V{1, 1}, V{2, 2}, V{2, 2}, V{2, 2}}},
      {"2d k1 identity", {2, 5, V{6, 7}, V{1, 1}, V{1, 1}, V{1, 1}, V{0, 0}, V{0, 0}}},
      {"2d k1 s2", {2, 3, V{7, 6}, V{1, 1}, V{2, 2}, V{1, 1}, V{0, 0}, V{0, 0}}},
      {"2d k3x2 s3x1 d2x1 asym pads", {2, 3, V{13, 6}, V{3, 2}, V{3, 1}, V{2, 1}, V{2, 0}, V{1, 3}}},
      {"2d pads > kernel", {2, 2, V{4, 5}, V{2, 2}, V{1, 2}, V{1, 1}, V{3, 3}, V{3, 2}}},
      {"2d k7 s2 p3 (stem)", {2, 3, V{20, 20}, V{7, 7}, V{2, 2}, V{1, 1}, V{3, 3}, V{3, 3}}},
      {"3d k3 s1 p1", {3, 2, V{5, 6, 7}, V{3, 3, 3}, V{1, 1, 1}, V{1, 1, 1}, V{1, 1, 1}, V{1, 1, 1}}},
      {"3d k2x3x1 s2x1x2 d1x2x1 p0x2x1",
       {3, 3, V{6, 7, 5}, V{2, 3, 1}, V{2, 1, 2}, V{1, 2, 1}, V{0, 2, 1}, V{1, 1, 0}}},
  };
  for (const auto& [name, g] : geoms) {
    testConvGeom<float>(g, "float " + name);
    testConvGeom<double>(g, "double " + name);
  }
  std::printf("im2col/col2im: %zu geometries x float+double\n", geoms.size());
}

// ---- speed --------------------------------------------------------------------------------------

// Best-of-7 wall-clock GFLOP/s of C[M x N] = op(A) * op(B) (beta = 0).
double gflops(bool tA, bool tB, int64_t M, int64_t N, int64_t K) {
  std::vector<float> A(M * K), B(K * N), C(M * N);
  fillRandom(A);
  fillRandom(B);
  auto once = [&] {
    gemm(tA, tB, M, N, K, 1.0f, A.data(), tA ? M : K, B.data(), tB ? K : N, 0.0f, C.data(), N);
  };
  once();
  const double flop = 2.0 * M * N * K;
  const int reps = std::max(1, static_cast<int>(2e8 / flop));
  double best = 1e30;
  for (int r = 0; r < 7; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) once();
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::min(best, dt / reps);
  }
  return flop / best * 1e-9;
}

void bench() {
  struct Shape {
    const char* what;
    bool tA, tB;
    int64_t M, N, K;
  };
  // Shapes the engine produces: conv forward (W * col), weight gradient (dY * col^T), input
  // gradient (W^T * dY), and Gemm layers on a batch (X * W^T).
  const Shape shapes[] = {
      {"conv fwd 64x3136x576 NN", false, false, 64, 3136, 576},
      {"conv dW 64x576x3136 NT", false, true, 64, 576, 3136},
      {"conv dX 576x3136x64 TN", true, false, 576, 3136, 64},
      {"gemm 32x1000x2048 NT", false, true, 32, 1000, 2048},
      {"gemm 8x1000x2048 NT", false, true, 8, 1000, 2048},
  };
  std::printf("\nSGEMM GFLOP/s, single thread, square C = A * B (A * B^T in brackets):\n");
  std::printf("%-10s %16s %16s %16s\n", "path", "256", "512", "1024");
  for (int isa = static_cast<int>(cpu::bestIsa()); isa >= 0; --isa) {
    const Isa prev = cpu::capIsa(static_cast<Isa>(isa));
    std::printf("%-10s", cpu::isaName(static_cast<Isa>(isa)));
    for (int64_t n : {256, 512, 1024})
      std::printf(" %7.1f [%6.1f]", gflops(false, false, n, n, n), gflops(false, true, n, n, n));
    std::printf("\n");
    cpu::capIsa(prev);
  }
  std::printf("\nSGEMM GFLOP/s on engine-shaped products (M x N x K):\n%-26s", "");
  for (int isa = static_cast<int>(cpu::bestIsa()); isa >= 0; --isa)
    std::printf(" %9s", cpu::isaName(static_cast<Isa>(isa)));
  std::printf("\n");
  for (const Shape& sh : shapes) {
    std::printf("%-26s", sh.what);
    for (int isa = static_cast<int>(cpu::bestIsa()); isa >= 0; --isa) {
      const Isa prev = cpu::capIsa(static_cast<Isa>(isa));
      std::printf(" %9.1f", gflops(sh.tA, sh.tB, sh.M, sh.N, sh.K));
      cpu::capIsa(prev);
    }
    std::printf("\n");
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, benchOnly = false;
  for (int i = 1; i < argc; ++i) {
    quick = quick || std::strcmp(argv[i], "--quick") == 0;
    benchOnly = benchOnly || std::strcmp(argv[i], "--bench") == 0;
  }
  std::printf("cpu: best SGEMM path %s, cpuHasAvx2Fma() = %d, gemmPath() = %s\n",
              cpu::isaName(cpu::bestIsa()), cpuHasAvx2Fma(), gemmPath());
  if (!benchOnly) {
    testGemm();
    testThreads();
    testIm2col();
    std::printf("\nchecks: %d passed, %d failed\n", gPass, gFail);
  }
  if (!quick) bench();
  return gFail == 0 ? 0 : 1;
}
