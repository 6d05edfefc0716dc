#include "convert.h"

#include <cstring>

namespace fitaddon {

using fit::Attr;
using fit::DType;
using fit::EngineError;
using fit::ErrorCode;
using fit::Tensor;

const char* errorCodeName(ErrorCode c) {
  switch (c) {
    case ErrorCode::Internal: return "ERR_ENGINE_INTERNAL";
    case ErrorCode::InvalidGraph: return "ERR_INVALID_MODEL";
    case ErrorCode::UnsupportedOp: return "ERR_UNSUPPORTED_OP";
    case ErrorCode::ShapeMismatch: return "ERR_SHAPE_MISMATCH";
    case ErrorCode::InvalidInput: return "ERR_INVALID_INPUT";
    case ErrorCode::InvalidAttribute: return "ERR_INVALID_MODEL";
    case ErrorCode::Aborted: return "ERR_ABORTED";
    case ErrorCode::NoGradient: return "ERR_NO_GRADIENT";
  }
  return "ERR_ENGINE_INTERNAL";
}

Napi::Error engineErrorToJs(Napi::Env env, const EngineError& e) {
  Napi::Error err = Napi::Error::New(env, e.what());
  err.Set("code", Napi::String::New(env, errorCodeName(e.code())));
  return err;
}

void throwEngineError(Napi::Env env, const EngineError& e) { throw engineErrorToJs(env, e); }

EngineError currentEngineError() {
  try {
    throw;
  } catch (const EngineError& e) {
    return e;
  } catch (const std::bad_alloc&) {
    return EngineError(ErrorCode::Internal, "out of memory");
  } catch (const std::exception& e) {
    return EngineError(ErrorCode::Internal, e.what());
  } catch (...) {
    return EngineError(ErrorCode::Internal, "unknown error");
  }
}

static EngineError bad(const std::string& msg) { return EngineError(ErrorCode::InvalidGraph, msg); }

static std::vector<int64_t> intsFrom(const Napi::Value& v, const std::string& what) {
  if (!v.IsArray()) throw bad(what + " must be an array of integers");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int64_t> out(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value e = a.Get(i);
    if (!e.IsNumber()) throw bad(what + " must be an array of integers");
    out[i] = e.As<Napi::Number>().Int64Value();
  }
  return out;
}

static DType dtypeFrom(const std::string& s, const std::string& what) {
  if (s == "float32") return DType::F32;
  if (s == "float64") return DType::F64;
  if (s == "int64") return DType::I64;
  throw EngineError(ErrorCode::InvalidInput, what + " has type '" + s +
                                                 "' but only float32, float64 and int64 are accepted");
}

Tensor tensorFromJs(const Napi::Value& v, const std::string& what) {
  if (!v.IsObject()) throw EngineError(ErrorCode::InvalidInput, what + " must be {dims, type, data}");
  Napi::Object o = v.As<Napi::Object>();
  std::vector<int64_t> dims = intsFrom(o.Get("dims"), what + ".dims");
  for (int64_t d : dims)
    if (d < 0) throw EngineError(ErrorCode::InvalidInput, what + ".dims has a negative dimension");
  Napi::Value typeV = o.Get("type");
  if (!typeV.IsString()) throw EngineError(ErrorCode::InvalidInput, what + ".type must be a string");
  DType t = dtypeFrom(typeV.As<Napi::String>().Utf8Value(), what);
  Napi::Value dataV = o.Get("data");
  if (!dataV.IsTypedArray()) throw EngineError(ErrorCode::InvalidInput, what + ".data must be a typed array");
  Napi::TypedArray ta = dataV.As<Napi::TypedArray>();
  napi_typedarray_type want = t == DType::F32 ? napi_float32_array
                              : t == DType::F64 ? napi_float64_array
                                                : napi_bigint64_array;
  if (ta.TypedArrayType() != want)
    throw EngineError(ErrorCode::InvalidInput, what + ".data does not match type '" +
                                                   std::string(fit::dtypeName(t)) + "'");
  int64_t n = fit::numelOf(dims);
  if (static_cast<int64_t>(ta.ElementLength()) != n)
    throw EngineError(ErrorCode::InvalidInput, what + " has " + std::to_string(ta.ElementLength()) +
                                                   " elements but dims " + fit::dimsToString(dims) +
                                                   " need " + std::to_string(n));
  // napi_get_typedarray_info gives the data pointer directly; it also works for typed arrays over
  // a SharedArrayBuffer (weights shared with worker threads), where ArrayBuffer().Data() does not.
  void* data = nullptr;
  napi_typedarray_type tt;
  size_t len = 0;
  napi_value ab;
  size_t off = 0;
  NAPI_THROW_IF_FAILED(v.Env(), napi_get_typedarray_info(v.Env(), ta, &tt, &len, &data, &ab, &off), Tensor());
  return Tensor::borrow(t, dims, data);
}

Napi::Object tensorToJs(Napi::Env env, const Tensor& t) {
  Napi::Object o = Napi::Object::New(env);
  Napi::Array dims = Napi::Array::New(env, t.dims.size());
  for (size_t i = 0; i < t.dims.size(); ++i) dims.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(t.dims[i])));
  o.Set("dims", dims);
  o.Set("type", Napi::String::New(env, fit::dtypeName(t.dtype)));
  size_t n = static_cast<size_t>(t.numel());
  // A Node Buffer's memory is not zero-filled first (ArrayBuffer::New's is): the copy below writes
  // every byte anyway, and for activation-sized gradients the fill cost as much as the copy.
  Napi::Buffer<uint8_t> bytes = Napi::Buffer<uint8_t>::New(env, t.bytes());
  Napi::ArrayBuffer buf = bytes.ArrayBuffer();
  size_t offset = bytes.ByteOffset();
  if (offset % 8 != 0) {  // not expected for a fresh Buffer; keep typed arrays aligned regardless
    buf = Napi::ArrayBuffer::New(env, t.bytes());
    offset = 0;
  }
  uint8_t* dst = static_cast<uint8_t*>(buf.Data()) + offset;
  if (t.bytes() && t.ptr) std::memcpy(dst, t.ptr, t.bytes());
  else if (t.bytes()) std::memset(dst, 0, t.bytes());
  if (t.dtype == DType::F32)
    o.Set("data", Napi::Float32Array::New(env, n, buf, offset));
  else if (t.dtype == DType::F64)
    o.Set("data", Napi::Float64Array::New(env, n, buf, offset));
  else
    o.Set("data", Napi::TypedArrayOf<int64_t>::New(env, n, buf, offset, napi_bigint64_array));
  return o;
}

static Attr attrFrom(const Napi::Object& a, const std::string& what) {
  Attr out;
  std::string kind = a.Get("type").As<Napi::String>().Utf8Value();
  Napi::Value v = a.Get("value");
  if (kind == "int") {
    out.kind = Attr::Kind::Int;
    out.i = v.As<Napi::Number>().Int64Value();
  } else if (kind == "float") {
    out.kind = Attr::Kind::Float;
    out.f = v.As<Napi::Number>().DoubleValue();
  } else if (kind == "ints") {
    out.kind = Attr::Kind::Ints;
    out.ints = intsFrom(v, what);
  } else if (kind == "floats") {
    out.kind = Attr::Kind::Floats;
    Napi::Array arr = v.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i) out.floats.push_back(arr.Get(i).As<Napi::Number>().DoubleValue());
  } else if (kind == "string") {
    out.kind = Attr::Kind::String;
    out.s = v.As<Napi::String>().Utf8Value();
  } else {
    throw bad(what + " has unknown attribute type '" + kind + "'");
  }
  return out;
}

static std::vector<int> idsFrom(const Napi::Value& v, const std::string& what) {
  std::vector<int64_t> ids = intsFrom(v, what);
  return std::vector<int>(ids.begin(), ids.end());
}

std::shared_ptr<fit::Graph> graphFromJs(const Napi::Object& desc, std::vector<Napi::ObjectReference>& keep) {
  auto g = std::make_shared<fit::Graph>();
  g->opset = desc.Get("opset").As<Napi::Number>().Int32Value();
  Napi::Array values = desc.Get("values").As<Napi::Array>();
  g->values.resize(values.Length());
  for (uint32_t i = 0; i < values.Length(); ++i) {
    Napi::Object v = values.Get(i).As<Napi::Object>();
    fit::Value& val = g->values[i];
    val.name = v.Get("name").As<Napi::String>().Utf8Value();
    Napi::Value data = v.Get("data");
    if (!data.IsUndefined() && !data.IsNull()) {
      val.isConst = true;
      val.constant = tensorFromJs(v, "constant '" + val.name + "'");
      val.dtype = val.constant.dtype;
      val.dims = val.constant.dims;
      keep.push_back(Napi::Persistent(data.As<Napi::Object>()));
    } else {
      Napi::Value dims = v.Get("dims");
      if (dims.IsArray()) val.dims = intsFrom(dims, "dims of '" + val.name + "'");
    }
  }
  Napi::Array nodes = desc.Get("nodes").As<Napi::Array>();
  g->nodes.resize(nodes.Length());
  for (uint32_t i = 0; i < nodes.Length(); ++i) {
    Napi::Object n = nodes.Get(i).As<Napi::Object>();
    fit::Node& node = g->nodes[i];
    node.op = n.Get("op").As<Napi::String>().Utf8Value();
    node.name = n.Get("name").As<Napi::String>().Utf8Value();
    node.inputs = idsFrom(n.Get("inputs"), node.describe() + " inputs");
    node.outputs = idsFrom(n.Get("outputs"), node.describe() + " outputs");
    Napi::Value attrsV = n.Get("attrs");
    if (attrsV.IsArray()) {
      Napi::Array attrs = attrsV.As<Napi::Array>();
      for (uint32_t k = 0; k < attrs.Length(); ++k) {
        Napi::Object a = attrs.Get(k).As<Napi::Object>();
        std::string name = a.Get("name").As<Napi::String>().Utf8Value();
        node.attrs[name] = attrFrom(a, node.describe() + " attribute '" + name + "'");
      }
    }
  }
  g->inputs = idsFrom(desc.Get("inputs"), "graph inputs");
  g->outputs = idsFrom(desc.Get("outputs"), "graph outputs");
  g->validate();
  return g;
}

}  // namespace fitaddon
