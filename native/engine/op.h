// The op interface. Each file in native/engine/ops/ implements one op family as templates over the
// compute type T (float for real runs, double for gradient checks) and registers them by ONNX op
// type with FIT_REGISTER_OP. Registering is the only thing needed to add an op.
#pragma once

#include <string>
#include <vector>

#include "arena.h"
#include "errors.h"
#include "graph.h"
#include "tensor.h"

namespace fit {

template <typename T>
struct OpContext {
  const Node& node;
  int opset;
  std::vector<const Tensor*> inputs;  // nullptr for an absent optional input
  std::vector<Tensor>& outputs;       // sized to node.outputs; the op fills them
  Arena& scratch;

  OpContext(const Node& n, int os, std::vector<const Tensor*> in, std::vector<Tensor>& out, Arena& a)
      : node(n), opset(os), inputs(std::move(in)), outputs(out), scratch(a) {}

  size_t numInputs() const { return inputs.size(); }
  bool has(size_t i) const { return i < inputs.size() && inputs[i] != nullptr; }
  const Tensor& in(size_t i) const {
    if (!has(i)) fail(ErrorCode::InvalidGraph, "input " + std::to_string(i) + " is missing");
    return *inputs[i];
  }
  // Allocates output i with dims and returns its data.
  T* output(size_t i, const Dims& dims) {
    outputs.at(i) = Tensor::make(DTypeOf<T>::value, dims);
    return outputs[i].template data<T>();
  }
  // Sets output i to an existing tensor (views such as Reshape share storage).
  void setOutput(size_t i, Tensor t) { outputs.at(i) = std::move(t); }

  [[noreturn]] void fail(ErrorCode code, const std::string& msg) const {
    throw EngineError(code, node.describe() + ": " + msg);
  }
  void check(bool cond, const std::string& msg) const {
    if (!cond) fail(ErrorCode::ShapeMismatch, msg);
  }
};

// Backward context (used by the gradient rules of the next stage; declared here so each op file
// can register its rule next to its forward).
template <typename T>
struct GradContext {
  const Node& node;
  int opset;
  std::vector<const Tensor*> inputs;       // forward inputs (nullptr if absent)
  std::vector<const Tensor*> outputs;      // forward outputs
  std::vector<const Tensor*> gradOutputs;  // dL/d output (nullptr if no gradient flows)
  std::vector<bool> needGrad;              // which inputs want a gradient
  std::vector<Tensor>& gradInputs;         // filled for inputs with needGrad
  Arena& scratch;
};

template <typename T> using ForwardFn = void (*)(OpContext<T>&);
template <typename T> using BackwardFn = void (*)(GradContext<T>&);

struct OpDef {
  std::string type;
  ForwardFn<float> forward32 = nullptr;
  ForwardFn<double> forward64 = nullptr;
  BackwardFn<float> backward32 = nullptr;
  BackwardFn<double> backward64 = nullptr;

  template <typename T> ForwardFn<T> forward() const;
  template <typename T> BackwardFn<T> backward() const;
};
template <> inline ForwardFn<float> OpDef::forward<float>() const { return forward32; }
template <> inline ForwardFn<double> OpDef::forward<double>() const { return forward64; }
template <> inline BackwardFn<float> OpDef::backward<float>() const { return backward32; }
template <> inline BackwardFn<double> OpDef::backward<double>() const { return backward64; }

class OpRegistry {
 public:
  static OpRegistry& instance();
  bool addForward(const std::string& type, ForwardFn<float> f32, ForwardFn<double> f64);
  bool addBackward(const std::string& type, BackwardFn<float> b32, BackwardFn<double> b64);
  const OpDef* find(const std::string& type) const;
  std::vector<std::string> types() const;  // sorted

 private:
  std::vector<OpDef> defs_;
};

}  // namespace fit

#define FIT_CONCAT_INNER(a, b) a##b
#define FIT_CONCAT(a, b) FIT_CONCAT_INNER(a, b)
// FIT_REGISTER_OP("Relu", reluForward) where reluForward is a function template over T.
#define FIT_REGISTER_OP(TYPE, FN)                                                   \
  static const bool FIT_CONCAT(fit_op_registered_, __LINE__) =                      \
      ::fit::OpRegistry::instance().addForward(TYPE, &FN<float>, &FN<double>)
#define FIT_REGISTER_GRAD(TYPE, FN)                                                 \
  static const bool FIT_CONCAT(fit_grad_registered_, __LINE__) =                    \
      ::fit::OpRegistry::instance().addBackward(TYPE, &FN<float>, &FN<double>)
