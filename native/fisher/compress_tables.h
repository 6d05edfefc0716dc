// Per-layer cost tables for the FITCompress planner. Measured FIT is a sum over weights, so the FIT
// of any move (and of any state against the original weights) is a sum of per-layer terms that
// depend only on that layer's bit width and the global pruning level. One pass per (layer, level)
// fills every term the planner can ask for, so a search step costs O(layers), not O(weights).
#pragma once

#include <atomic>
#include <vector>

#include "compress.h"

namespace fit::compress {

/**
 * Flat tables, index (l * P + p) * S + s for layer l, pruning level index p, schedule index s
 * (bits[s]); nnz and pruned are [l * P + p] and [p].
 */
struct CompressTables {
  int layers = 0, levels = 0, steps = 0;
  std::vector<double> pruned;       // [P] k = floor(level * N)
  std::vector<double> nnz;          // [L*P] survivors of layer l at level p
  std::vector<double> fitOriginal;  // sum_j F (w'(p, s) - w)^2
  std::vector<double> quantizeCost; // sum_j F (w'(p, s + 1) - w'(p, s))^2 (0 at s = S - 1)
  std::vector<double> pruneCost;    // sum_j F (w'(p + 1, s) - w'(p, s))^2 (0 at p = P - 1)
  std::vector<float> scales;        // Delta of w'(p, s)
};

/**
 * Fills the tables; `levels` ascending in [0, 1), `bits` descending (32 = float). Throws
 * fit::EngineError(Aborted) when *abort becomes true (checked per layer and level).
 */
CompressTables computeTables(const std::vector<LayerView>& layers, const PruneOrder& order, const std::vector<double>& levels,
                             const std::vector<int>& bits, const std::atomic<bool>* abort);

}  // namespace fit::compress
