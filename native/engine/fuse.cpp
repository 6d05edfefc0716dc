// Elementwise chain fusion (see fuse.h). The one chain fused today is the hard-swish pattern that
// exporters (Paddle, older PyTorch opsets) emit instead of HardSwish:
//
//   a = Add(x, A)   b = Clip(a, lo, hi)   m = Mul(x, b)   h = Div(m, Q)  (or Mul(m, Q))
//
// with A, Q and the bounds constant scalars. It becomes one node "fit.HardSwishChain"(x) -> h with
// attributes add, lo, hi, q and div (ops/fused.cpp), computing the same float operations in the
// same order. When x comes from a BatchNormalization (constant per-channel parameters) that only
// this chain reads, that joins too: "fit.BnHardSwishChain"(z, scale, B, mean, var) -> h.
#include "fuse.h"

#include <cmath>
#include <cstdlib>
#include <limits>

namespace fit {

namespace {

// A float constant holding one element whose broadcast does not change x's dims.
bool constScalar(const Graph& g, int id, int xId, double& v) {
  if (id < 0) return false;
  const Value& val = g.values[id];
  if (!val.isConst || val.constant.numel() != 1 || !val.constant.ptr) return false;
  if (val.constant.dtype == DType::F32) v = val.constant.data<float>()[0];
  else if (val.constant.dtype == DType::F64) v = val.constant.data<double>()[0];
  else return false;
  const size_t r = val.constant.dims.size();
  return r == 0 || g.values[xId].dims.size() >= r;
}

struct Uses {
  std::vector<int> count;     // input references per value
  std::vector<int> consumer;  // the (last) consuming node per value
};

Uses usesOf(const Graph& g) {
  Uses u;
  u.count.assign(g.values.size(), 0);
  u.consumer.assign(g.values.size(), -1);
  for (size_t k = 0; k < g.nodes.size(); ++k)
    for (int id : g.nodes[k].inputs)
      if (id >= 0) {
        ++u.count[id];
        u.consumer[id] = static_cast<int>(k);
      }
  return u;
}

// BatchNormalization in inference form whose scale, B, mean and var are float constants with
// one value per channel of its input (whose static dims are known).
bool foldableBn(const Graph& g, const Node& n) {
  if (n.op != "BatchNormalization" || n.inputs.size() != 5 || n.i("training_mode", 0) != 0) return false;
  for (size_t o = 1; o < n.outputs.size(); ++o)
    if (n.outputs[o] != -1) return false;
  const int z = n.inputs[0];
  if (z < 0 || g.values[z].dims.size() < 2) return false;
  const int64_t C = g.values[z].dims[1];
  for (size_t i = 1; i < 5; ++i) {
    const int id = n.inputs[i];
    if (id < 0 || !g.values[id].isConst) return false;
    const Tensor& t = g.values[id].constant;
    if ((t.dtype != DType::F32 && t.dtype != DType::F64) || t.numel() != C || t.dims.size() != 1) return false;
  }
  return true;
}

Attr floatAttr(double v) {
  Attr a;
  a.kind = Attr::Kind::Float;
  a.f = v;
  return a;
}

}  // namespace

ExecPlan makePlan(const std::shared_ptr<const Graph>& graph, const std::vector<char>& keep) {
  const Graph& g = *graph;
  ExecPlan plan;
  plan.graph = graph;
  plan.fusedAway.assign(g.values.size(), 0);
  plan.planNode.resize(g.nodes.size());
  for (size_t k = 0; k < g.nodes.size(); ++k) plan.planNode[k] = static_cast<int>(k);
  if (std::getenv("FIT_NO_FUSE")) return plan;

  const Uses u = usesOf(g);
  std::vector<int> producer(g.values.size(), -1);
  for (size_t k = 0; k < g.nodes.size(); ++k)
    for (int id : g.nodes[k].outputs)
      if (id >= 0) producer[id] = static_cast<int>(k);
  std::vector<char> isOutput(g.values.size(), 0);
  for (int id : g.outputs) isOutput[id] = 1;
  // An intermediate of a chain: read once (by the next node of the chain), not visible outside.
  auto internal = [&](int id) {
    return id >= 0 && !g.values[id].isConst && u.count[id] == 1 && !isOutput[id] &&
           !(static_cast<size_t>(id) < keep.size() && keep[id]);
  };
  auto single = [](const Node& n, size_t ins, size_t outs) {
    return n.inputs.size() == ins && n.outputs.size() == outs;
  };

  std::vector<char> drop(g.nodes.size(), 0);
  std::vector<Node> replace(g.nodes.size());
  std::vector<char> replaced(g.nodes.size(), 0);
  bool any = false;
  for (size_t k1 = 0; k1 < g.nodes.size(); ++k1) {
    const Node& n1 = g.nodes[k1];
    if (n1.op != "Add" || !single(n1, 2, 1) || drop[k1] || replaced[k1]) continue;
    double A = 0;
    int x = -1;
    if (constScalar(g, n1.inputs[1], n1.inputs[0], A)) x = n1.inputs[0];
    else if (constScalar(g, n1.inputs[0], n1.inputs[1], A)) x = n1.inputs[1];
    if (x < 0 || g.values[x].isConst) continue;
    const int a = n1.outputs[0];
    if (!internal(a)) continue;
    const int k2 = u.consumer[a];
    const Node& n2 = g.nodes[k2];
    if (n2.op != "Clip" || n2.outputs.size() != 1 || n2.inputs.empty() || n2.inputs[0] != a) continue;
    double lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
    if (g.opset < 11) {
      if (n2.inputs.size() != 1) continue;
      if (n2.has("min")) lo = n2.f("min", 0);
      if (n2.has("max")) hi = n2.f("max", 0);
    } else {
      bool ok = n2.inputs.size() <= 3;
      for (size_t i = 1; ok && i < n2.inputs.size(); ++i) {
        if (n2.inputs[i] < 0) continue;
        ok = constScalar(g, n2.inputs[i], x, i == 1 ? lo : hi) && g.values[n2.inputs[i]].constant.dims.empty();
      }
      if (!ok) continue;
    }
    const int b = n2.outputs[0];
    if (!internal(b)) continue;
    const int k3 = u.consumer[b];
    const Node& n3 = g.nodes[k3];
    if (n3.op != "Mul" || !single(n3, 2, 1)) continue;
    if (!((n3.inputs[0] == x && n3.inputs[1] == b) || (n3.inputs[0] == b && n3.inputs[1] == x))) continue;
    const int m = n3.outputs[0];
    if (!internal(m)) continue;
    const int k4 = u.consumer[m];
    const Node& n4 = g.nodes[k4];
    if (!single(n4, 2, 1)) continue;
    double Q = 0;
    bool div = false;
    if (n4.op == "Div" && n4.inputs[0] == m && constScalar(g, n4.inputs[1], x, Q)) div = true;
    else if (n4.op == "Mul" && n4.inputs[0] == m && constScalar(g, n4.inputs[1], x, Q)) div = false;
    else if (n4.op == "Mul" && n4.inputs[1] == m && constScalar(g, n4.inputs[0], x, Q)) div = false;
    else continue;
    if (drop[k2] || drop[k3] || drop[k4] || replaced[k2] || replaced[k3] || replaced[k4]) continue;
    Node f;
    f.op = "fit.HardSwishChain";
    f.name = n4.name;
    f.inputs = {x};
    // x = BatchNormalization(z) (inference form, per-channel constants) read only by this chain:
    // the normalization joins the fused node and x is never stored.
    const int kb = producer[x];
    if (kb >= 0 && !drop[kb] && !replaced[kb] && u.count[x] == 2 && !isOutput[x] &&
        !(static_cast<size_t>(x) < keep.size() && keep[x]) && foldableBn(g, g.nodes[kb])) {
      const Node& nb = g.nodes[kb];
      f.op = "fit.BnHardSwishChain";
      f.inputs = nb.inputs;
      Attr eps;
      eps.kind = Attr::Kind::Float;
      eps.f = nb.f("epsilon", 1e-5);
      f.attrs["epsilon"] = eps;
      drop[kb] = 1;
      plan.fusedAway[x] = 1;
    }
    f.outputs = {n4.outputs[0]};
    f.attrs["add"] = floatAttr(A);
    f.attrs["lo"] = floatAttr(lo);
    f.attrs["hi"] = floatAttr(hi);
    f.attrs["q"] = floatAttr(Q);
    Attr d;
    d.kind = Attr::Kind::Int;
    d.i = div ? 1 : 0;
    f.attrs["div"] = d;
    drop[k1] = drop[k2] = drop[k3] = 1;
    replace[k4] = std::move(f);
    replaced[k4] = 1;
    plan.fusedAway[a] = plan.fusedAway[b] = plan.fusedAway[m] = 1;
    any = true;
  }
  if (!any) return plan;

  auto fused = std::make_shared<Graph>();
  fused->opset = g.opset;
  fused->values = g.values;
  fused->inputs = g.inputs;
  fused->outputs = g.outputs;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    if (drop[k]) {
      plan.planNode[k] = -1;
      continue;
    }
    plan.planNode[k] = static_cast<int>(fused->nodes.size());
    fused->nodes.push_back(replaced[k] ? std::move(replace[k]) : g.nodes[k]);
  }
  plan.graph = std::move(fused);
  return plan;
}

}  // namespace fit
