// The graph the engine runs: a plain description built by the host (the TypeScript side validates
// and normalizes the ONNX model; the engine trusts this description but still checks operand
// shapes at run time). Values are numbered; nodes are in topological order.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tensor.h"

namespace fit {

struct Attr {
  enum class Kind { Int, Float, Ints, Floats, String };
  Kind kind = Kind::Int;
  int64_t i = 0;
  double f = 0;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::string s;
};

struct Node {
  std::string op;    // ONNX op type
  std::string name;  // ONNX node name (made unique by the host)
  std::vector<int> inputs;   // value ids; -1 marks an absent optional input
  std::vector<int> outputs;  // value ids; -1 marks an unused optional output
  std::map<std::string, Attr> attrs;

  bool has(const std::string& key) const { return attrs.count(key) != 0; }
  int64_t i(const std::string& key, int64_t def) const;
  double f(const std::string& key, double def) const;
  std::vector<int64_t> ints(const std::string& key, const std::vector<int64_t>& def = {}) const;
  std::vector<double> floats(const std::string& key, const std::vector<double>& def = {}) const;
  std::string s(const std::string& key, const std::string& def) const;
  // "op Type 'name'" for messages.
  std::string describe() const;
};

struct Value {
  std::string name;
  DType dtype = DType::F32;
  Dims dims;               // static dims if known (may be empty for unknown)
  bool isConst = false;
  Tensor constant;         // weights / folded constants (F32 or I64), usually borrowed
};

struct Graph {
  int opset = 13;
  std::vector<Value> values;
  std::vector<Node> nodes;
  std::vector<int> inputs;   // non-constant graph inputs
  std::vector<int> outputs;

  // Checks ids, that every non-constant value has exactly one producer, topological order and
  // that every op is registered. Throws EngineError naming the first problem.
  void validate() const;
};

}  // namespace fit
