#include "executor.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

namespace fit {

// FIT_PROFILE=1 prints the time of every node type to stderr after each run (development aid).
static bool profiling() {
  static const bool on = std::getenv("FIT_PROFILE") != nullptr;
  return on;
}

std::string profileKey(const Node& n, const std::vector<Dims>& dims, const char* suffix);  // backward.cpp

template <typename T>
Executor<T>::Executor(std::shared_ptr<const Graph> graph) : graph_(std::move(graph)) {
  graph_->validate();
  consts_.resize(graph_->values.size());
  for (size_t v = 0; v < graph_->values.size(); ++v) {
    const Value& val = graph_->values[v];
    if (val.isConst) consts_[v] = toCompute(val.constant);
  }
  buildPlan({});
}

template <typename T>
void Executor<T>::buildPlan(const std::vector<char>& keep) {
  plan_ = makePlan(graph_, keep);
  const Graph& g = *plan_.graph;
  const OpRegistry& reg = OpRegistry::instance();
  defs_.clear();
  defs_.reserve(g.nodes.size());
  for (const Node& n : g.nodes) defs_.push_back(reg.find(n.op));
  lastUse_.assign(g.values.size(), -1);
  for (size_t k = 0; k < g.nodes.size(); ++k)
    for (int id : g.nodes[k].inputs)
      if (id >= 0) lastUse_[id] = static_cast<int>(k);
  isOutput_.assign(g.values.size(), 0);
  for (int id : g.outputs) isOutput_[id] = 1;
  savedForBackward_.assign(g.values.size(), 0);
  firstUse_.assign(g.values.size(), static_cast<int>(g.nodes.size()));
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const Node& n = g.nodes[k];
    const OpDef* d = defs_[k];
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      int id = n.inputs[i];
      if (id < 0) continue;
      if (i < 32 && (d->savedInputs >> i) & 1u) savedForBackward_[id] = 1;
      firstUse_[id] = std::min(firstUse_[id], static_cast<int>(k));
    }
    for (size_t o = 0; o < n.outputs.size(); ++o) {
      int id = n.outputs[o];
      if (id < 0) continue;
      if (o < 32 && (d->savedOutputs >> o) & 1u) savedForBackward_[id] = 1;
      firstUse_[id] = std::min(firstUse_[id], static_cast<int>(k));
    }
  }
}

// Float constants and inputs become T; int64 stays int64. float32 data used in place for T=float.
template <typename T>
Tensor Executor<T>::toCompute(const Tensor& t) const {
  if (t.dtype == DType::I64 || t.dtype == DTypeOf<T>::value) return t;
  Tensor out = Tensor::make(DTypeOf<T>::value, t.dims);
  T* dst = out.template data<T>();
  const int64_t n = t.numel();
  if (t.dtype == DType::F32) {
    const float* src = t.data<float>();
    for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<T>(src[i]);
  } else {
    const double* src = t.data<double>();
    for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<T>(src[i]);
  }
  return out;
}

template <typename T>
void Executor<T>::forward(const std::vector<Tensor>& inputs, const std::atomic<bool>* abort) {
  const Graph& g = *plan_.graph;
  if (inputs.size() != g.inputs.size())
    throw EngineError(ErrorCode::InvalidInput, "the model has " + std::to_string(g.inputs.size()) +
                                                   " input(s) but " + std::to_string(inputs.size()) +
                                                   " were given");
  values_.assign(g.values.size(), Tensor{});
  valueDims_.assign(g.values.size(), Dims{});
  for (size_t v = 0; v < g.values.size(); ++v)
    if (g.values[v].isConst) {
      values_[v] = consts_[v];
      valueDims_[v] = consts_[v].dims;
    }
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Value& decl = g.values[g.inputs[k]];
    const Tensor& x = inputs[k];
    if (x.dtype == DType::I64)
      throw EngineError(ErrorCode::InvalidInput, "input '" + decl.name +
                                                     "' must be float32 or float64 but is int64");
    if (!decl.dims.empty() && x.dims != decl.dims)
      throw EngineError(ErrorCode::InvalidInput, "input '" + decl.name + "' has dims " +
                                                     dimsToString(x.dims) + " but the model was prepared for " +
                                                     dimsToString(decl.dims));
    values_[g.inputs[k]] = toCompute(x);
    valueDims_[g.inputs[k]] = x.dims;
  }

  std::vector<Tensor> outs;
  std::map<std::string, double> prof;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const auto t0 = profiling() ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
    if (abort && abort->load(std::memory_order_relaxed))
      throw EngineError(ErrorCode::Aborted, "the run was aborted");
    const Node& n = g.nodes[k];
    std::vector<const Tensor*> ins;
    ins.reserve(n.inputs.size());
    for (int id : n.inputs) ins.push_back(id >= 0 ? &values_[id] : nullptr);
    outs.assign(n.outputs.size(), Tensor{});
    OpContext<T> ctx(n, g.opset, std::move(ins), outs, scratch_);
    defs_[k]->template forward<T>()(ctx);
    scratch_.reset();
    if (profiling())
      prof[profileKey(n, valueDims_, "")] += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    for (size_t o = 0; o < n.outputs.size(); ++o) {
      int id = n.outputs[o];
      if (id < 0) continue;
      if (outs[o].ptr == nullptr && outs[o].numel() != 0)
        throw EngineError(ErrorCode::Internal, n.describe() + " did not produce output " + std::to_string(o));
      valueDims_[id] = outs[o].dims;
      values_[id] = std::move(outs[o]);
    }
    // Free values whose last forward use this was, unless backward will read them.
    for (int id : n.inputs)
      if (id >= 0 && lastUse_[id] == static_cast<int>(k) && !isOutput_[id] && !g.values[id].isConst &&
          !(keepValues_ && savedForBackward_[id]) && !(pinned_.size() && pinned_[id]))
        values_[id] = Tensor{};
  }
  if (profiling()) {
    for (const auto& [op, ms] : prof) std::fprintf(stderr, "  %-26s %8.3f ms\n", op.c_str(), ms);
    std::fprintf(stderr, "\n");
  }
}

template <typename T>
void Executor<T>::pin(const std::vector<int>& ids) {
  pinned_.assign(graph_->values.size(), 0);
  bool refuse = false;
  for (int id : ids)
    if (id >= 0 && static_cast<size_t>(id) < pinned_.size()) {
      pinned_[id] = 1;
      refuse = refuse || plan_.fusedAway[id];
    }
  // A value the caller reads after forward must be produced: rebuild the plan around it. (Plans
  // only ever get less fused this way; pinning the same values again costs nothing.)
  if (refuse) {
    keepAlways_.resize(pinned_.size(), 0);
    for (size_t v = 0; v < pinned_.size(); ++v) keepAlways_[v] = keepAlways_[v] || pinned_[v];
    buildPlan(keepAlways_);
  }
}

template <typename T>
const Tensor& Executor<T>::value(int id) const {
  if (id < 0 || id >= static_cast<int>(values_.size()))
    throw EngineError(ErrorCode::Internal, "value id out of range");
  return values_[id];
}

template <typename T>
std::vector<Tensor> Executor<T>::outputs() const {
  std::vector<Tensor> out;
  for (int id : graph_->outputs) out.push_back(values_[id]);
  return out;
}

template <typename T>
void Executor<T>::clear() {
  values_.clear();
}

template class Executor<float>;
template class Executor<double>;

}  // namespace fit
