#include <algorithm>

#include "op.h"

namespace fit {

OpRegistry& OpRegistry::instance() {
  static OpRegistry registry;
  return registry;
}

static OpDef& findOrAdd(std::vector<OpDef>& defs, const std::string& type) {
  for (OpDef& d : defs)
    if (d.type == type) return d;
  defs.push_back(OpDef{});
  defs.back().type = type;
  return defs.back();
}

bool OpRegistry::addForward(const std::string& type, ForwardFn<float> f32, ForwardFn<double> f64) {
  OpDef& d = findOrAdd(defs_, type);
  d.forward32 = f32;
  d.forward64 = f64;
  return true;
}

bool OpRegistry::addBackward(const std::string& type, BackwardFn<float> b32, BackwardFn<double> b64,
                             uint32_t savedInputs, uint32_t savedOutputs) {
  OpDef& d = findOrAdd(defs_, type);
  d.backward32 = b32;
  d.backward64 = b64;
  d.savedInputs = savedInputs;
  d.savedOutputs = savedOutputs;
  return true;
}

const OpDef* OpRegistry::find(const std::string& type) const {
  for (const OpDef& d : defs_)
    if (d.type == type && d.forward32) return &d;
  return nullptr;
}

std::vector<std::string> OpRegistry::types() const {
  std::vector<std::string> out;
  for (const OpDef& d : defs_)
    if (d.forward32) out.push_back(d.type);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace fit
