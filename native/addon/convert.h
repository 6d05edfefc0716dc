// JS <-> engine conversions. Tensors cross the boundary as {dims, type, data}; typed-array data is
// used in place (borrowed), never copied on the way in.
#pragma once

#include <napi.h>

#include <cstring>
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

// A fresh typed array (Arr, e.g. Napi::Float64Array) holding a copy of data[0, n).
template <typename Arr, typename T>
Arr toJs(Napi::Env env, const T* data, size_t n) {
  Arr a = Arr::New(env, n);
  if (n) std::memcpy(a.Data(), data, n * sizeof(T));
  return a;
}
inline Napi::Float64Array f64(Napi::Env env, const std::vector<double>& v) {
  return toJs<Napi::Float64Array>(env, v.data(), v.size());
}

// The JS Error carrying `code` for an engine error; throwEngineError throws it.
Napi::Error engineErrorToJs(Napi::Env env, const fit::EngineError& e);
[[noreturn]] void throwEngineError(Napi::Env env, const fit::EngineError& e);
const char* errorCodeName(fit::ErrorCode c);

// Inside a catch block: the exception in flight as an EngineError (bad_alloc -> "out of memory",
// other exceptions -> Internal with their message).
fit::EngineError currentEngineError();

}  // namespace fitaddon
