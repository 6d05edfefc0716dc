// Execution plans: the graph the executor actually runs, with chains of elementwise nodes fused
// into single nodes (ops/fused.cpp) where that is invisible from outside. A fused chain reads and
// writes memory once instead of once per node, forward and backward, and keeps fewer tensors
// alive for backward. Value ids are unchanged; the intermediate values of a fused chain are never
// produced (fusedAway), so a chain is only fused when none of its intermediates is a graph output,
// is read by anything else, or is in `keep` (values the caller wants to read after forward).
#pragma once

#include <memory>
#include <vector>

#include "graph.h"

namespace fit {

struct ExecPlan {
  std::shared_ptr<const Graph> graph;  // the graph to run (the original when nothing was fused)
  std::vector<int> planNode;           // original node index -> plan node index (-1: fused away)
  std::vector<char> fusedAway;         // per value: an intermediate of a fused chain
};

// FIT_NO_FUSE in the environment gives the original graph unchanged (for comparisons).
ExecPlan makePlan(const std::shared_ptr<const Graph>& graph, const std::vector<char>& keep);

}  // namespace fit
