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
#include "../kernels/backend.h"

namespace fit {

namespace {

template <typename T>
void addInto(Tensor& acc, const Tensor& g) {
  T* a = acc.template data<T>();
  const T* b = g.template data<T>();
  const int64_t n = acc.numel();
  for (int64_t i = 0; i < n; ++i) a[i] += b[i];
}

// Storage no other tensor shares: safe to accumulate into in place. Gradient rules may hand out
// their output gradient itself as an input gradient (Add, Reshape: no copy), and layer input
// gradients share storage with the running sum, so accumulation copies on write.
bool exclusive(const Tensor& t) { return t.hold && t.hold.use_count() == 1; }

// acc += g, copying acc first when its storage is shared.
template <typename T>
void accumulate(Tensor& acc, Tensor& g) {
  if (exclusive(acc)) {
    addInto<T>(acc, g);
  } else if (exclusive(g)) {
    addInto<T>(g, acc);
    acc = std::move(g);
  } else {
    Tensor sum = Tensor::make(acc.dtype, acc.dims);
    T* s = sum.template data<T>();
    const T* a = acc.template data<T>();
    const T* b = g.template data<T>();
    const int64_t n = acc.numel();
    for (int64_t i = 0; i < n; ++i) s[i] = a[i] + b[i];
    acc = std::move(sum);
  }
}

// A private copy (gradients handed to the caller or accumulated must not alias each other).
Tensor cloneTensor(const Tensor& t) {
  Tensor c = Tensor::make(t.dtype, t.dims);
  if (t.bytes()) std::memcpy(c.ptr, t.ptr, t.bytes());
  return c;
}

}  // namespace

void allocStats(size_t& freshBytes, size_t& freshCount);  // tensor.cpp

// FIT_PROFILE=1: times by op type; FIT_PROFILE=2: by node, with its first input's dims.
std::string profileKey(const Node& n, const std::vector<Dims>& dims, const char* suffix) {
  static const bool perNode = [] {
    const char* v = std::getenv("FIT_PROFILE");
    return v && std::string(v) == "2";
  }();
  if (!perNode) return n.op + suffix;
  std::string k = n.op + suffix + " " + n.name;
  if (!n.inputs.empty() && n.inputs[0] >= 0) k += " " + dimsToString(dims[n.inputs[0]]);
  return k;
}

template <typename T>
BackwardResult Executor<T>::backward(const BackwardRequest& request, const std::atomic<bool>* abort) {
  const Graph& g = *plan_.graph;
  const size_t nv = g.values.size();
  // Layer node indices refer to the graph as given; map them onto the plan.
  BackwardRequest translated;
  const bool remap = plan_.graph != graph_;
  if (remap) {
    translated.layers = request.layers;
    for (auto& L : translated.layers) {
      if (L.node < 0 || static_cast<size_t>(L.node) >= plan_.planNode.size() || plan_.planNode[L.node] < 0)
        throw EngineError(ErrorCode::Internal, "layer node out of range");
      L.node = plan_.planNode[L.node];
    }
    auto check = [&](int id) {
      if (id >= 0 && static_cast<size_t>(id) < nv && plan_.fusedAway[id])
        throw EngineError(ErrorCode::Internal, "the gradient of '" + g.values[id].name +
                                                   "' is not computed: the engine fused it into a chain of "
                                                   "elementwise nodes (ask for its range too, which keeps it, or "
                                                   "set FIT_NO_FUSE=1)");
    };
    for (int id : request.want) check(id);
    for (const auto& sd : request.seeds) check(sd.first);
  }
  const std::vector<BackwardRequest::Layer>& reqLayers = remap ? translated.layers : request.layers;
  struct {
    const std::vector<std::pair<int, Tensor>>& seeds;
    const std::vector<int>& want;
    const std::vector<BackwardRequest::Layer>& layers;
    bool perSampleSquares;
    bool layerInputSquares;
  } req{request.seeds, request.want, reqLayers, request.perSampleSquares, request.layerInputSquares};
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
    if (grads[id].ptr) {
      Tensor s = seed;
      accumulate<T>(grads[id], s);
    } else {
      grads[id] = cloneTensor(seed);
    }
  }

  BackwardResult res;
  // Either the layers' input gradients or their per-sample sums of squares (axis 0 = samples).
  if (req.layerInputSquares) res.layerInputSquares.resize(req.layers.size());
  else res.layerInputGrads.resize(req.layers.size());
  std::vector<char> layerSeen(req.layers.size(), 0);
  auto samplesOf = [](const Dims& d) { return d.empty() ? int64_t(0) : std::max<int64_t>(d[0], 0); };
  if (req.perSampleSquares) res.sqWeightGrads.resize(req.layers.size());
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
      ctx.accum.assign(n.inputs.size(), nullptr);
      ctx.accumDone.assign(n.inputs.size(), 0);
      for (size_t i = 0; i < n.inputs.size(); ++i) {
        const int id = n.inputs[i];
        bool once = true;  // an input read twice by this node gets two separate gradients
        for (size_t j = 0; j < n.inputs.size(); ++j) once = once && (j == i || n.inputs[j] != id);
        if (ctx.needGrad[i] && once && grads[id].ptr && exclusive(grads[id]) &&
            !(layer >= 0 && static_cast<int>(i) == req.layers[layer].dataInput))
          ctx.accum[i] = &grads[id];
      }
      if (layer >= 0 && req.perSampleSquares) {
        const auto& L = req.layers[layer];
        ctx.weightInput = L.weightInput;
        res.sqWeightGrads[layer] = Tensor::zeros(DTypeOf<T>::value, valueDims_[n.inputs[L.weightInput]]);
        ctx.sqWeightGrad = &res.sqWeightGrads[layer];
      }
      fn(ctx);
      scratch_.reset();
      for (size_t i = 0; i < n.inputs.size(); ++i) {
        if (!ctx.needGrad[i] || ctx.accumDone[i]) continue;  // accumulated in place by the rule
        const int id = n.inputs[i];
        Tensor& gi = gin[i];
        if (!gi.ptr && gi.numel() != 0)
          throw EngineError(ErrorCode::Internal, n.describe() + ": gradient rule gave no gradient for input " + std::to_string(i));
        if (gi.dims != valueDims_[id])
          throw EngineError(ErrorCode::Internal, n.describe() + ": gradient of input " + std::to_string(i) +
                                                     " has dims " + dimsToString(gi.dims) + " but the input has " +
                                                     dimsToString(valueDims_[id]));
        if (layer >= 0 && static_cast<int>(i) == req.layers[layer].dataInput) {
          layerSeen[layer] = 1;
          if (req.layerInputSquares) {
            auto& sums = res.layerInputSquares[layer];
            const int64_t rows = samplesOf(gi.dims);
            sums.assign(static_cast<size_t>(rows), 0.0);
            if (rows > 0 && gi.ptr) kernels::rowSquares(gi.template data<T>(), rows, gi.numel() / rows, sums.data());
          } else res.layerInputGrads[layer] = gi;  // shared: accumulation into grads[id] copies on write
        }
        if (grads[id].ptr) accumulate<T>(grads[id], gi);
        else grads[id] = std::move(gi);
      }
    }
    if (layer >= 0 && !layerSeen[layer]) {  // nothing flowed into the layer's input: zeros
      layerSeen[layer] = 1;
      const int a = n.inputs[req.layers[layer].dataInput];
      if (req.layerInputSquares) res.layerInputSquares[layer].assign(static_cast<size_t>(samplesOf(valueDims_[a])), 0.0);
      else res.layerInputGrads[layer] = Tensor::zeros(DTypeOf<T>::value, valueDims_[a]);
    }
    if (profiling)
      prof[profileKey(n, valueDims_, " (bwd)")] += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
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
    size_t fb = 0, fc = 0;
    allocStats(fb, fc);
    std::fprintf(stderr, "  fresh allocations so far: %zu (%.1f MB)\n", fc, fb / 1048576.0);
    for (const auto& [op, ms] : prof) std::fprintf(stderr, "  %-26s %8.3f ms\n", op.c_str(), ms);
    std::fprintf(stderr, "\n");
  }
  return res;
}

template BackwardResult Executor<float>::backward(const BackwardRequest&, const std::atomic<bool>*);
template BackwardResult Executor<double>::backward(const BackwardRequest&, const std::atomic<bool>*);

}  // namespace fit
