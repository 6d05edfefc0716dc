#include "compress_tables.h"

#include <algorithm>
#include <exception>
#include <mutex>
#include <thread>

#include "../engine/errors.h"

namespace fit::compress {

namespace {

struct Shared {
  const std::vector<LayerView>& layers;
  const PruneOrder& order;
  const std::vector<int>& bits;
  const std::vector<int64_t>& k;  // pruned count per level, nondecreasing
  const std::atomic<bool>* abort;
  CompressTables& t;
};

bool aborted(const Shared& sh) { return sh.abort && sh.abort->load(std::memory_order_relaxed); }

// One layer's cells. Element j of rank r survives levels p < end_j = #{p : k[p] <= r} (masks are
// nested), so it is quantized only there; at the levels it is pruned it adds F w^2 to the FIT
// against the original (gathered per level by a histogram, then a prefix sum) and nothing to the
// move costs. Every (p, s) cell accumulates its kept terms in element order.
void layerCells(const Shared& sh, size_t l) {
  const LayerView& v = sh.layers[l];
  CompressTables& t = sh.t;
  const int P = t.levels, S = t.steps;
  const uint32_t* rank = sh.order.rank.data() + sh.order.offsets[l];
  std::vector<int> end(static_cast<size_t>(v.n));
  std::vector<double> maxAt(P + 1, 0.0), prunedFit(P + 1, 0.0);
  std::vector<int64_t> keptUpTo(P + 1, 0);
  for (int64_t j = 0; j < v.n; ++j) {
    const int e = static_cast<int>(std::upper_bound(sh.k.begin(), sh.k.end(), static_cast<int64_t>(rank[j])) - sh.k.begin());
    end[j] = e;
    const double w = static_cast<double>(v.w[j]);
    prunedFit[e] += v.f[j] * (w * w);  // pruned from level e on
    if (e > 0) {
      maxAt[e - 1] = std::max(maxAt[e - 1], std::fabs(w));  // kept up to level e - 1
      keptUpTo[e - 1] += 1;
    }
  }
  if (aborted(sh)) return;
  // levels from the top down: survivors and largest kept |w| are suffix sums / maxima
  std::vector<double> amax(P);
  double m = 0;
  int64_t kept = 0;
  for (int p = P - 1; p >= 0; --p) {
    m = std::max(m, maxAt[p]);
    kept += keptUpTo[p];
    amax[p] = m;
    t.nnz[l * P + p] = static_cast<double>(kept);
  }
  std::vector<double> qmax(S);
  std::vector<char> isFloat(S);
  for (int s = 0; s < S; ++s) {
    isFloat[s] = sh.bits[s] >= kFloatBits;
    qmax[s] = qmaxOf(std::min(sh.bits[s], 31));
  }
  float* scales = &t.scales[l * P * S];
  for (int p = 0; p < P; ++p)
    for (int s = 0; s < S; ++s) scales[p * S + s] = scaleOf(amax[p], sh.bits[s]);
  std::vector<double> fo(static_cast<size_t>(P) * S, 0.0), qc(fo.size(), 0.0), pc(fo.size(), 0.0);
  std::vector<float> cur(S), prev(S);
  for (int64_t j = 0; j < v.n; ++j) {
    if ((j & 0xffff) == 0 && aborted(sh)) return;
    const int e = end[j];
    if (e == 0) continue;
    const float w = v.w[j];
    const double f = v.f[j];
    for (int p = 0; p < e; ++p) {
      const float* sc = scales + p * S;
      double* fop = &fo[p * S];
      double* qcp = &qc[p * S];
      for (int s = 0; s < S; ++s) cur[s] = quantizeOne(w, sc[s], qmax[s], isFloat[s]);
      for (int s = 0; s < S; ++s) {
        const double d = static_cast<double>(cur[s]) - static_cast<double>(w);
        fop[s] += f * (d * d);
      }
      for (int s = 0; s + 1 < S; ++s) {
        const double d = static_cast<double>(cur[s + 1]) - static_cast<double>(cur[s]);
        qcp[s] += f * (d * d);
      }
      if (p > 0) {
        double* pcp = &pc[(p - 1) * S];
        for (int s = 0; s < S; ++s) {
          const double d = static_cast<double>(cur[s]) - static_cast<double>(prev[s]);
          pcp[s] += f * (d * d);
        }
      }
      std::swap(cur, prev);
    }
    if (e < P) {  // pruned at level e: its last kept values go to 0
      double* pcp = &pc[(e - 1) * S];
      for (int s = 0; s < S; ++s) {
        const double d = static_cast<double>(prev[s]);
        pcp[s] += f * (d * d);
      }
    }
  }
  double pruned = 0;
  for (int p = 0; p < P; ++p) {
    pruned += prunedFit[p];
    for (int s = 0; s < S; ++s) {
      const size_t c = (l * P + p) * S + s;
      t.fitOriginal[c] = fo[p * S + s] + pruned;
      t.quantizeCost[c] = qc[p * S + s];
      t.pruneCost[c] = pc[p * S + s];
    }
  }
}

}  // namespace

CompressTables computeTables(const std::vector<LayerView>& layers, const PruneOrder& order, const std::vector<double>& levels,
                             const std::vector<int>& bits, const std::atomic<bool>* abort) {
  CompressTables t;
  const size_t L = layers.size(), P = levels.size(), S = bits.size();
  t.layers = static_cast<int>(L);
  t.levels = static_cast<int>(P);
  t.steps = static_cast<int>(S);
  const size_t cells = L * P * S;
  t.pruned.resize(P);
  t.nnz.assign(L * P, 0.0);
  t.fitOriginal.assign(cells, 0.0);
  t.quantizeCost.assign(cells, 0.0);
  t.pruneCost.assign(cells, 0.0);
  t.scales.assign(cells, 1.0f);
  std::vector<int64_t> k(P);
  for (size_t p = 0; p < P; ++p) {
    k[p] = pruneCount(levels[p], order.total());
    t.pruned[p] = static_cast<double>(k[p]);
  }
  if (L == 0 || P == 0 || S == 0) return t;
  Shared sh{layers, order, bits, k, abort, t};
  // Layers are independent: the largest first over a few threads (each writes only its own cells).
  std::vector<size_t> queue(L);
  for (size_t l = 0; l < L; ++l) queue[l] = l;
  std::stable_sort(queue.begin(), queue.end(), [&](size_t a, size_t b) { return layers[a].n > layers[b].n; });
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex errorLock;
  auto work = [&] {
    try {
      for (size_t i = next.fetch_add(1); i < L && !failed.load(); i = next.fetch_add(1)) {
        if (aborted(sh)) return;
        layerCells(sh, queue[i]);
      }
    } catch (...) {
      std::lock_guard<std::mutex> g(errorLock);
      if (!error) error = std::current_exception();
      failed.store(true);
    }
  };
  int64_t total = order.total();
  unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  unsigned threads = static_cast<unsigned>(std::min<int64_t>({static_cast<int64_t>(hw), static_cast<int64_t>(L), 8, 1 + total / 65536}));
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back(work);
  work();
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
  if (aborted(sh)) throw EngineError(ErrorCode::Aborted, "computing the compression tables was aborted");
  return t;
}

}  // namespace fit::compress
