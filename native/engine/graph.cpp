#include "graph.h"

#include <vector>

#include "op.h"

namespace fit {

static const Attr* findAttr(const Node& n, const std::string& key) {
  auto it = n.attrs.find(key);
  return it == n.attrs.end() ? nullptr : &it->second;
}

[[noreturn]] static void attrType(const Node& n, const std::string& key, const char* want) {
  throw EngineError(ErrorCode::InvalidAttribute,
                    n.describe() + ": attribute '" + key + "' must be " + want);
}

int64_t Node::i(const std::string& key, int64_t def) const {
  const Attr* a = findAttr(*this, key);
  if (!a) return def;
  if (a->kind == Attr::Kind::Int) return a->i;
  if (a->kind == Attr::Kind::Float) return static_cast<int64_t>(a->f);
  attrType(*this, key, "an integer");
}

double Node::f(const std::string& key, double def) const {
  const Attr* a = findAttr(*this, key);
  if (!a) return def;
  if (a->kind == Attr::Kind::Float) return a->f;
  if (a->kind == Attr::Kind::Int) return static_cast<double>(a->i);
  attrType(*this, key, "a float");
}

std::vector<int64_t> Node::ints(const std::string& key, const std::vector<int64_t>& def) const {
  const Attr* a = findAttr(*this, key);
  if (!a) return def;
  if (a->kind == Attr::Kind::Ints) return a->ints;
  if (a->kind == Attr::Kind::Int) return {a->i};
  attrType(*this, key, "a list of integers");
}

std::vector<double> Node::floats(const std::string& key, const std::vector<double>& def) const {
  const Attr* a = findAttr(*this, key);
  if (!a) return def;
  if (a->kind == Attr::Kind::Floats) return a->floats;
  if (a->kind == Attr::Kind::Float) return {a->f};
  if (a->kind == Attr::Kind::Ints) return std::vector<double>(a->ints.begin(), a->ints.end());
  attrType(*this, key, "a list of floats");
}

std::string Node::s(const std::string& key, const std::string& def) const {
  const Attr* a = findAttr(*this, key);
  if (!a) return def;
  if (a->kind == Attr::Kind::String) return a->s;
  attrType(*this, key, "a string");
}

std::string Node::describe() const { return op + " '" + name + "'"; }

void Graph::validate() const {
  const int nv = static_cast<int>(values.size());
  std::vector<char> defined(values.size(), 0);
  for (int v = 0; v < nv; ++v)
    if (values[v].isConst) defined[v] = 1;
  for (int id : inputs) {
    if (id < 0 || id >= nv) throw EngineError(ErrorCode::InvalidGraph, "graph input id out of range");
    if (values[id].isConst)
      throw EngineError(ErrorCode::InvalidGraph, "graph input '" + values[id].name + "' is also a constant");
    defined[id] = 1;
  }
  const OpRegistry& reg = OpRegistry::instance();
  std::vector<std::string> missing;
  for (const Node& n : nodes) {
    if (!reg.find(n.op)) missing.push_back(n.describe());
    for (int id : n.inputs) {
      if (id == -1) continue;
      if (id < 0 || id >= nv)
        throw EngineError(ErrorCode::InvalidGraph, n.describe() + ": input id out of range");
      if (!defined[id])
        throw EngineError(ErrorCode::InvalidGraph, n.describe() + ": input '" + values[id].name +
                                                       "' is used before it is produced (graph not "
                                                       "in topological order or value missing)");
    }
    for (int id : n.outputs) {
      if (id == -1) continue;
      if (id < 0 || id >= nv)
        throw EngineError(ErrorCode::InvalidGraph, n.describe() + ": output id out of range");
      if (defined[id])
        throw EngineError(ErrorCode::InvalidGraph,
                          n.describe() + ": output '" + values[id].name + "' is produced twice");
      defined[id] = 1;
    }
  }
  if (!missing.empty()) {
    std::string msg = "the engine has no op for: ";
    for (size_t i = 0; i < missing.size(); ++i) msg += (i ? ", " : "") + missing[i];
    throw EngineError(ErrorCode::UnsupportedOp, msg);
  }
  for (int id : outputs) {
    if (id < 0 || id >= nv || !defined[id])
      throw EngineError(ErrorCode::InvalidGraph, "graph output is never produced");
  }
}

}  // namespace fit
