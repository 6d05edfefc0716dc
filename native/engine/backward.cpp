// Reverse-mode backward over the last forward run of an Executor: each node's registered gradient
// rule maps output gradients to input gradients; gradients that fan in are summed; forward values
// and gradients are freed as soon as the reverse walk has passed their last use.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "executor.h"

namespace fit {

namespace {

template <typename T>
void addInto(Tensor& acc, const Tensor& g) {
  T* a = acc.template data<T>();
  const T* b = g.template data<T>();
  const int64_t n = acc.numel();
  for (int64_t i = 0; i < n; ++i) a[i] += b[i];
}

// A private copy (gradients handed to the caller or accumulated must not alias each other).
Tensor cloneTensor(const Tensor& t) {
  Tensor c = Tensor::make(t.dtype, t.dims);
  if (t.bytes()) std::memcpy(c.ptr, t.ptr, t.bytes());
  return c;
}

}  // namespace

template <typename T>
BackwardResult Executor<T>::backward(const BackwardRequest& req, const std::atomic<bool>* abort) {
  const Graph& g = *graph_;
  const size_t nv = g.values.size();
  if (values_.size() != nv)
    throw EngineError(ErrorCode::Internal, "backward called without a forward run");
  if (!keepValues_)
    throw EngineError(ErrorCode::Internal, "backward needs a forward run that kept its values");

  // dep[v]: the gradient of v is needed (v is wanted, or a wanted value flows into v).
  std::vector<char> dep(nv, 0), wanted(nv, 0);
  for (int id : req.want) {
    if (id < 0 || static_cast<size_t>(id) >= nv) throw EngineError(ErrorCode::Internal, "want id out of range");
    dep[id] = wanted[id] = 1;
  }
  std::vector<int> layerOf(g.nodes.size(), -1);
  for (size_t l = 0; l < req.layers.size(); ++l) {
    const auto& L = req.layers[l];
    if (L.node < 0 || static_cast<size_t>(L.node) >= g.nodes.size())
      throw EngineError(ErrorCode::Internal, "layer node out of range");
    layerOf[L.node] = static_cast<int>(l);
    const Node& n = g.nodes[L.node];
    int a = n.inputs.at(L.dataInput);
    if (a >= 0) dep[a] = 1;
    if (req.perSampleSquares) {
      int w = n.inputs.at(L.weightInput);
      if (w >= 0) dep[w] = 1;
    }
  }
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const Node& n = g.nodes[k];
    bool any = false;
    for (int id : n.inputs) any = any || (id >= 0 && dep[id]);
    if (any)
      for (int id : n.outputs)
        if (id >= 0) dep[id] = 1;
  }

  std::vector<Tensor> grads(nv);
  for (const auto& [id, seed] : req.seeds) {
    if (id < 0 || static_cast<size_t>(id) >= nv) throw EngineError(ErrorCode::Internal, "seed id out of range");
    if (seed.dtype != DTypeOf<T>::value || seed.dims != valueDims_[id])
      throw EngineError(ErrorCode::Internal, "seed for '" + g.values[id].name + "' has dims " +
                                                 dimsToString(seed.dims) + " but the value has " +
                                                 dimsToString(valueDims_[id]));
    if (grads[id].ptr) addInto<T>(grads[id], seed);
    else grads[id] = cloneTensor(seed);
  }

  BackwardResult res;
  res.layerInputGrads.resize(req.layers.size());
  res.sqWeightGrads.resize(req.layers.size());
  std::vector<Tensor> gin;
  static const bool profiling = std::getenv("FIT_PROFILE") != nullptr;
  std::map<std::string, double> prof;
  for (int k = static_cast<int>(g.nodes.size()) - 1; k >= 0; --k) {
    const auto t0 = profiling ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
    if (abort && abort->load(std::memory_order_relaxed))
      throw EngineError(ErrorCode::Aborted, "the run was aborted");
    const Node& n = g.nodes[k];
    bool flows = false;
    for (int id : n.outputs) flows = flows || (id >= 0 && grads[id].ptr);
    bool needs = false;
    for (int id : n.inputs) needs = needs || (id >= 0 && dep[id]);
    const int layer = layerOf[k];
    if (flows && needs) {
      const OpDef* d = defs_[k];
      BackwardFn<T> fn = d->template backward<T>();
      if (!fn)
        throw EngineError(ErrorCode::NoGradient,
                          n.describe() + " has no gradient rule, but the gradient of the loss must flow "
                                         "through it; gradients through " + n.op + " are not supported yet");
      gin.assign(n.inputs.size(), Tensor{});
      GradContext<T> ctx(n, g.opset, gin, scratch_);
      for (int id : n.inputs) ctx.inputs.push_back(id >= 0 && values_[id].ptr ? &values_[id] : nullptr);
      for (int id : n.inputs) ctx.needGrad.push_back(id >= 0 && dep[id] ? 1 : 0);
      for (int id : n.inputs) ctx.inputDims.push_back(id >= 0 ? valueDims_[id] : Dims{});
      for (int id : n.outputs) ctx.outputDims.push_back(id >= 0 ? valueDims_[id] : Dims{});
      for (int id : n.outputs) ctx.outputs.push_back(id >= 0 && values_[id].ptr ? &values_[id] : nullptr);
      for (int id : n.outputs) ctx.gradOutputs.push_back(id >= 0 && grads[id].ptr ? &grads[id] : nullptr);
      for (size_t i = 0; i < n.inputs.size(); ++i)
        if (ctx.needGrad[i] && g.values[n.inputs[i]].isConst && g.values[n.inputs[i]].constant.dtype == DType::I64)
          ctx.needGrad[i] = 0;
      if (layer >= 0 && req.perSampleSquares) {
        const auto& L = req.layers[layer];
        ctx.weightInput = L.weightInput;
        res.sqWeightGrads[layer] = Tensor::zeros(DTypeOf<T>::value, valueDims_[n.inputs[L.weightInput]]);
        ctx.sqWeightGrad = &res.sqWeightGrads[layer];
      }
      fn(ctx);
      scratch_.reset();
      for (size_t i = 0; i < n.inputs.size(); ++i) {
        if (!ctx.needGrad[i]) continue;
        const int id = n.inputs[i];
        Tensor& gi = gin[i];
        if (!gi.ptr && gi.numel() != 0)
          throw EngineError(ErrorCode::Internal, n.describe() + ": gradient rule gave no gradient for input " + std::to_string(i));
        if (gi.dims != valueDims_[id])
          throw EngineError(ErrorCode::Internal, n.describe() + ": gradient of input " + std::to_string(i) +
                                                     " has dims " + dimsToString(gi.dims) + " but the input has " +
                                                     dimsToString(valueDims_[id]));
        if (layer >= 0 && static_cast<int>(i) == req.layers[layer].dataInput)
          res.layerInputGrads[layer] = cloneTensor(gi);  // later consumers add into grads[id]
        if (grads[id].ptr) addInto<T>(grads[id], gi);
        else grads[id] = std::move(gi);
      }
    }
    if (layer >= 0 && !res.layerInputGrads[layer].ptr) {
      const int a = n.inputs[req.layers[layer].dataInput];
      res.layerInputGrads[layer] = Tensor::zeros(DTypeOf<T>::value, valueDims_[a]);
    }
    if (profiling)
      prof[n.op + " (bwd)"] += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    // Output gradients are consumed; forward values whose first use is this node are done.
    for (int id : n.outputs)
      if (id >= 0 && !wanted[id]) grads[id] = Tensor{};
    for (int id : n.inputs)
      if (id >= 0 && firstUse_[id] == k && !g.values[id].isConst) values_[id] = Tensor{};
    for (int id : n.outputs)
      if (id >= 0 && firstUse_[id] == k && !isOutput_[id]) values_[id] = Tensor{};
  }

  for (int id : req.want) {
    if (grads[id].ptr) res.grads.push_back(grads[id]);
    else res.grads.push_back(Tensor::zeros(DTypeOf<T>::value, valueDims_[id]));
  }
  if (req.perSampleSquares)
    for (size_t l = 0; l < req.layers.size(); ++l)
      if (!res.sqWeightGrads[l].ptr) {
        const Node& n = g.nodes[req.layers[l].node];
        const int w = n.inputs[req.layers[l].weightInput];
        res.sqWeightGrads[l] = Tensor::zeros(DTypeOf<T>::value, valueDims_[w]);
      }
  values_.clear();
  if (profiling) {
    for (const auto& [op, ms] : prof) std::fprintf(stderr, "  %-26s %8.3f ms\n", op.c_str(), ms);
    std::fprintf(stderr, "\n");
  }
  return res;
}

template BackwardResult Executor<float>::backward(const BackwardRequest&, const std::atomic<bool>*);
template BackwardResult Executor<double>::backward(const BackwardRequest&, const std::atomic<bool>*);

}  // namespace fit
