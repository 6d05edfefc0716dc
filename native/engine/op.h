// The op interface. Each file in native/engine/ops/ implements one op family as templates over the
// compute type T (float for real runs, double for gradient checks) and registers them by ONNX op
// type with FIT_REGISTER_OP. Registering is the only thing needed to add an op.
#pragma once

#include <cstdint>
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

// Backward context: what a gradient rule sees. The loss is a sum over samples (not a mean), so
// gradOutputs of a batched tensor hold per-sample gradients d l_i / d y_i in row i.
template <typename T>
struct GradContext {
  const Node& node;
  int opset;
  std::vector<const Tensor*> inputs;       // forward inputs (nullptr if absent or not saved)
  std::vector<const Tensor*> outputs;      // forward outputs (nullptr if not saved)
  std::vector<const Tensor*> gradOutputs;  // dL/d output; nullptr means zero (no gradient flows)
  std::vector<Dims> inputDims;             // dims of every forward input, even when its data was freed
  std::vector<Dims> outputDims;            // dims of every forward output
  std::vector<char> needGrad;              // which inputs want a gradient
  std::vector<Tensor>& gradInputs;         // the rule sets gradInputs[i] (dims of input i) for each needGrad[i]
  Arena& scratch;
  // Per-sample squared weight gradient (Gemm, MatMul, Conv, ConvTranspose): when sqWeightGrad is
  // set, the rule also ADDS sum_i (d l_i / d W)^2 (elementwise, dims of input weightInput) into it,
  // sample i being row i of the layer's output (axis 0: the batch; for Gemm with transA=1 that is
  // column i of A), without a batch-1 loop.
  int weightInput = -1;
  Tensor* sqWeightGrad = nullptr;
  // Fan-in: the gradient other consumers already gave input i, when a rule may add into it in
  // place (exclusively owned, not a layer's own-input gradient); empty pointers otherwise. A rule
  // that adds its gradient into accumTarget(i) calls accumulated(i) and sets no gradInputs[i].
  std::vector<Tensor*> accum;
  std::vector<char> accumDone;

  GradContext(const Node& n, int os, std::vector<Tensor>& gin, Arena& a)
      : node(n), opset(os), gradInputs(gin), scratch(a) {}

  bool has(size_t i) const { return i < inputs.size() && inputs[i] != nullptr; }
  const Tensor& in(size_t i) const {
    if (!has(i)) fail(ErrorCode::Internal, "forward input " + std::to_string(i) + " was not saved for backward");
    return *inputs[i];
  }
  const Tensor& out(size_t i) const {
    if (i >= outputs.size() || !outputs[i])
      fail(ErrorCode::Internal, "forward output " + std::to_string(i) + " was not saved for backward");
    return *outputs[i];
  }
  // dL/d output i, or nullptr when no gradient flows into it.
  const T* gout(size_t i) const {
    return i < gradOutputs.size() && gradOutputs[i] ? gradOutputs[i]->template data<T>() : nullptr;
  }
  bool wants(size_t i) const { return i < needGrad.size() && needGrad[i]; }
  // Dims of forward input/output i: available without saving the tensor.
  const Dims& inDims(size_t i) const { return inputDims.at(i); }
  const Dims& outDims(size_t i) const { return outputDims.at(i); }
  // Allocates gradInputs[i] with dims (contents undefined) and returns its data.
  T* gradInput(size_t i, const Dims& dims) {
    gradInputs.at(i) = Tensor::make(DTypeOf<T>::value, dims);
    return gradInputs[i].template data<T>();
  }
  T* gradInputZeros(size_t i, const Dims& dims) {
    gradInputs.at(i) = Tensor::zeros(DTypeOf<T>::value, dims);
    return gradInputs[i].template data<T>();
  }
  T* accumTarget(size_t i) const {
    return i < accum.size() && accum[i] ? accum[i]->template data<T>() : nullptr;
  }
  void accumulated(size_t i) { accumDone.at(i) = 1; }
  [[noreturn]] void fail(ErrorCode code, const std::string& msg) const {
    throw EngineError(code, node.describe() + " (backward): " + msg);
  }
};

// Bit i set: the gradient rule reads forward input (or output) i, so backward must keep it.
constexpr uint32_t slot(int i) { return 1u << i; }
constexpr uint32_t kNoSlots = 0;
constexpr uint32_t kAllSlots = 0xffffffffu;

template <typename T> using ForwardFn = void (*)(OpContext<T>&);
template <typename T> using BackwardFn = void (*)(GradContext<T>&);

struct OpDef {
  std::string type;
  ForwardFn<float> forward32 = nullptr;
  ForwardFn<double> forward64 = nullptr;
  BackwardFn<float> backward32 = nullptr;
  BackwardFn<double> backward64 = nullptr;
  uint32_t savedInputs = kAllSlots;   // forward inputs the gradient rule reads
  uint32_t savedOutputs = kAllSlots;  // forward outputs the gradient rule reads

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
  bool addBackward(const std::string& type, BackwardFn<float> b32, BackwardFn<double> b64,
                   uint32_t savedInputs, uint32_t savedOutputs);
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
// FIT_REGISTER_GRAD("Relu", reluBackward, kNoSlots, slot(0)): the rule, then which forward inputs
// and outputs it reads (everything else may be freed before backward).
#define FIT_REGISTER_GRAD(TYPE, FN, SAVED_INPUTS, SAVED_OUTPUTS)                    \
  static const bool FIT_CONCAT(fit_grad_registered_, __LINE__) =                    \
      ::fit::OpRegistry::instance().addBackward(                                   \
          TYPE, &FN<float>, &FN<double>,                                            \
          [] { using namespace ::fit; return static_cast<uint32_t>(SAVED_INPUTS); }(),  \
          [] { using namespace ::fit; return static_cast<uint32_t>(SAVED_OUTPUTS); }())
