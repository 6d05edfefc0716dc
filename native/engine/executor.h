// Runs a Graph forward over compute type T (float for real work, double for gradient checks),
// keeping every value so that backward can walk the graph in reverse (or freeing values after
// their last use when keepValues is false, for plain inference).
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "arena.h"
#include "fuse.h"
#include "graph.h"
#include "op.h"

namespace fit {

// What backward should compute after a forward run.
struct BackwardRequest {
  // dL/d value for the values the loss depends on (typically one graph output); dtype T.
  std::vector<std::pair<int, Tensor>> seeds;
  // Values whose total gradient is returned (weights, activations, graph inputs).
  std::vector<int> want;
  // Layers (Gemm/MatMul/Conv/ConvTranspose nodes): for each, the gradient of its data input through
  // this node only (before fan-in with other consumers), and, with perSampleSquares, the sum over
  // samples of the squared per-sample gradient of its weight input.
  struct Layer {
    int node = -1;
    int dataInput = 0;
    int weightInput = 1;
  };
  std::vector<Layer> layers;
  bool perSampleSquares = false;
  // Instead of each layer's input gradient, its per-sample sums of squares (layerInputSquares),
  // computed as soon as the gradient exists (still in cache) and without holding the gradient.
  bool layerInputSquares = false;
};

struct BackwardResult {
  std::vector<Tensor> grads;            // per BackwardRequest::want (zeros when nothing flows)
  std::vector<Tensor> layerInputGrads;  // per layer
  std::vector<Tensor> sqWeightGrads;    // per layer (when perSampleSquares)
  // per layer, per sample: sum_k (d l_i / d a_ik)^2 (when layerInputSquares; layerInputGrads empty)
  std::vector<std::vector<double>> layerInputSquares;
};

template <typename T>
class Executor {
 public:
  explicit Executor(std::shared_ptr<const Graph> graph);

  // Runs the graph. inputs are in the order of graph.inputs, float32 or float64 (converted to T
  // when needed). abort, if given, is polled between nodes.
  void forward(const std::vector<Tensor>& inputs, const std::atomic<bool>* abort = nullptr);

  // true (default): keep what backward needs after forward; false: free every value after its
  // last use (plain inference).
  void setKeepValues(bool keep) { keepValues_ = keep; }
  // Values kept after the next forward runs whatever backward needs (e.g. the loss head's input).
  void pin(const std::vector<int>& ids);

  // Reverse-mode pass over the last forward run (which must have kept values). Frees forward values
  // and gradients as soon as backward no longer needs them.
  BackwardResult backward(const BackwardRequest& req, const std::atomic<bool>* abort = nullptr);

  // The graph as given (node indices of BackwardRequest::layers refer to it).
  const Graph& graph() const { return *graph_; }
  const Tensor& value(int id) const;
  std::vector<Tensor> outputs() const;
  // Releases the values of the last run.
  void clear();

 private:
  Tensor toCompute(const Tensor& t) const;
  // (Re)builds the execution plan (fusing what `keep` allows) and the per-node tables.
  void buildPlan(const std::vector<char>& keep);

  std::shared_ptr<const Graph> graph_;  // as given
  ExecPlan plan_;                       // what runs: graph_ with elementwise chains fused
  std::vector<const OpDef*> defs_;
  std::vector<Tensor> consts_;   // float constants converted to T; int64 constants as they are
  std::vector<Tensor> values_;   // values of the last run, by id
  std::vector<Dims> valueDims_;  // dims of every value of the last run (kept when values are freed)
  std::vector<int> lastUse_;     // index of the last node that reads each value (-1: none)
  std::vector<char> isOutput_;
  std::vector<char> savedForBackward_;  // a gradient rule reads this value
  std::vector<char> pinned_;            // kept after forward regardless (see pin)
  std::vector<int> firstUse_;           // index of the first node that reads or produces each value
  std::vector<char> keepAlways_;        // values ever pinned: never fused away
  bool keepValues_ = true;
  Arena scratch_;
};

extern template class Executor<float>;
extern template class Executor<double>;

}  // namespace fit
