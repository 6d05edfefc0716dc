// JS <-> engine conversions. Tensors cross the boundary as {dims, type, data}; typed-array data is
// used in place (borrowed), never copied on the way in.
#pragma once

#include <napi.h>

#include <memory>
#include <vector>

#include "../engine/graph.h"

namespace fitaddon {

// Builds the engine graph from the host's plain description. Constant typed arrays are borrowed;
// `keep` receives references that must live as long as the graph.
std::shared_ptr<fit::Graph> graphFromJs(const Napi::Object& desc, std::vector<Napi::ObjectReference>& keep);

// {dims, type: 'float32'|'float64'|'int64', data} -> borrowed tensor.
fit::Tensor tensorFromJs(const Napi::Value& v, const std::string& what);

// Copies a tensor into a fresh {dims, type, data} object.
Napi::Object tensorToJs(Napi::Env env, const fit::Tensor& t);

// Throws a JS Error carrying `code` for an engine error.
[[noreturn]] void throwEngineError(Napi::Env env, const fit::EngineError& e);
const char* errorCodeName(fit::ErrorCode c);

}  // namespace fitaddon
