// Runs a Graph forward over compute type T (float for real work, double for gradient checks),
// keeping every value so that backward can walk the graph in reverse (or freeing values after
// their last use when keepValues is false, for plain inference).
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "arena.h"
#include "graph.h"
#include "op.h"

namespace fit {

template <typename T>
class Executor {
 public:
  explicit Executor(std::shared_ptr<const Graph> graph);

  // Runs the graph. inputs are in the order of graph.inputs, float32 or float64 (converted to T
  // when needed). abort, if given, is polled between nodes.
  void forward(const std::vector<Tensor>& inputs, const std::atomic<bool>* abort = nullptr);

  // Keep all values after forward (default, backward needs them) or free them after last use.
  void setKeepValues(bool keep) { keepValues_ = keep; }

  const Graph& graph() const { return *graph_; }
  const Tensor& value(int id) const;
  std::vector<Tensor> outputs() const;
  // Releases the values of the last run.
  void clear();

 private:
  Tensor toCompute(const Tensor& t) const;

  std::shared_ptr<const Graph> graph_;
  std::vector<const OpDef*> defs_;
  std::vector<Tensor> consts_;   // float constants converted to T; int64 constants as they are
  std::vector<Tensor> values_;   // values of the last run, by id
  std::vector<int> lastUse_;     // index of the last node that reads each value (-1: none)
  std::vector<char> isOutput_;
  bool keepValues_ = true;
  Arena scratch_;
};

extern template class Executor<float>;
extern template class Executor<double>;

}  // namespace fit
