// FITCompress bindings. A CompressSet owns copies of the weights and Fisher diagonals of every
// quantizable layer, ranks them once (global pruning order) and answers masks, quantize-after-mask
// and the planner's cost tables (off the event loop). JS validates; these checks only keep a
// malformed call from crashing the process.
#include "compress.h"

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>

#include "../engine/errors.h"
#include "../fisher/compress_tables.h"
#include "convert.h"
#include "worker.h"

namespace fitaddon {

using fit::EngineError;
using fit::ErrorCode;
namespace fc = fit::compress;

namespace {

EngineError bad(const std::string& msg) { return EngineError(ErrorCode::Internal, msg); }

template <typename T>
std::vector<T> copyTyped(const Napi::Value& v, napi_typedarray_type want, const std::string& what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != want) throw bad(what + " has the wrong typed-array type");
  Napi::TypedArrayOf<T> a = v.As<Napi::TypedArrayOf<T>>();
  return std::vector<T>(a.Data(), a.Data() + a.ElementLength());
}

template <typename T>
std::vector<std::vector<T>> copyList(const Napi::Value& v, napi_typedarray_type want, const std::string& what) {
  if (!v.IsArray()) throw bad(what + " must be an array of typed arrays");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<std::vector<T>> out(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) out[i] = copyTyped<T>(a.Get(i), want, what + "[" + std::to_string(i) + "]");
  return out;
}

// A typed array's elements used in place (synchronous calls only: JS cannot run meanwhile).
template <typename T>
std::pair<const T*, size_t> borrow(const Napi::Value& v, napi_typedarray_type want, const std::string& what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != want) throw bad(what + " has the wrong typed-array type");
  Napi::TypedArrayOf<T> a = v.As<Napi::TypedArrayOf<T>>();
  return {a.Data(), a.ElementLength()};
}

template <typename T>
std::vector<std::pair<const T*, size_t>> borrowList(const Napi::Value& v, napi_typedarray_type want, const std::string& what) {
  if (!v.IsArray()) throw bad(what + " must be an array of typed arrays");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<std::pair<const T*, size_t>> out(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) out[i] = borrow<T>(a.Get(i), want, what + "[" + std::to_string(i) + "]");
  return out;
}

std::vector<double> numbers(const Napi::Value& v, const std::string& what) {
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float64_array)
    return copyTyped<double>(v, napi_float64_array, what);
  if (!v.IsArray()) throw bad(what + " must be an array of numbers");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<double> out(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value e = a.Get(i);
    if (!e.IsNumber()) throw bad(what + " must be an array of numbers");
    out[i] = e.As<Napi::Number>().DoubleValue();
  }
  return out;
}

std::vector<int> ints(const Napi::Value& v, const std::string& what) {
  std::vector<double> d = numbers(v, what);
  return std::vector<int>(d.begin(), d.end());
}

struct SetState {
  std::vector<std::vector<float>> w;
  std::vector<std::vector<double>> f;
  std::vector<fc::LayerView> views;
  std::once_flag ordered;
  fc::PruneOrder order;
  double importanceTotal = 0;
  std::atomic<bool> abort{false};
  const fc::PruneOrder& ensureOrder() {
    std::call_once(ordered, [this] { order = fc::globalOrder(views); });
    return order;
  }
};

class TablesWorker : public PromiseWorker {
 public:
  TablesWorker(Napi::Env env, std::shared_ptr<SetState> s, std::vector<double> levels, std::vector<int> bits, Napi::Object self)
      : PromiseWorker(env), s_(std::move(s)), levels_(std::move(levels)), bits_(std::move(bits)), self_(Napi::Persistent(self)) {}

 protected:
  void Compute() override { t_ = fc::computeTables(s_->views, s_->ensureOrder(), levels_, bits_, &s_->abort); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("layers", t_.layers);
    o.Set("levels", t_.levels);
    o.Set("steps", t_.steps);
    o.Set("pruned", f64(env, t_.pruned));
    o.Set("nnz", f64(env, t_.nnz));
    o.Set("fitOriginal", f64(env, t_.fitOriginal));
    o.Set("quantizeCost", f64(env, t_.quantizeCost));
    o.Set("pruneCost", f64(env, t_.pruneCost));
    o.Set("scales", toJs<Napi::Float32Array>(env, t_.scales.data(), t_.scales.size()));
    return o;
  }

 private:
  std::shared_ptr<SetState> s_;
  std::vector<double> levels_;
  std::vector<int> bits_;
  Napi::ObjectReference self_;
  fc::CompressTables t_;
};

class CompressSet : public Napi::ObjectWrap<CompressSet> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "CompressSet",
                       {InstanceMethod("info", &CompressSet::Info), InstanceMethod("importance", &CompressSet::Importance),
                        InstanceMethod("ranks", &CompressSet::Ranks), InstanceMethod("pruneCount", &CompressSet::PruneCount),
                        InstanceMethod("masks", &CompressSet::Masks), InstanceMethod("apply", &CompressSet::Apply),
                        InstanceMethod("tables", &CompressSet::Tables), InstanceMethod("abort", &CompressSet::Abort),
                        InstanceMethod("dispose", &CompressSet::Dispose)});
  }

  explicit CompressSet(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CompressSet>(info) {
    Napi::Env env = info.Env();
    try {
      s_ = std::make_shared<SetState>();
      s_->w = copyList<float>(info[0], napi_float32_array, "weights");
      s_->f = copyList<double>(info[1], napi_float64_array, "fisher");
      if (s_->w.size() != s_->f.size()) throw bad("weights and fisher have different layer counts");
      for (size_t l = 0; l < s_->w.size(); ++l) {
        if (s_->w[l].size() != s_->f[l].size()) throw bad("layer " + std::to_string(l) + ": weight and Fisher lengths differ");
        s_->views.push_back({s_->w[l].data(), s_->f[l].data(), static_cast<int64_t>(s_->w[l].size())});
        for (size_t j = 0; j < s_->w[l].size(); ++j) s_->importanceTotal += fc::importanceOf(s_->w[l][j], s_->f[l][j]);
      }
    } catch (...) {
      rethrowAsJs(env);
    }
  }

 private:
  std::shared_ptr<SetState> s_;

  size_t layerArg(const Napi::CallbackInfo& info) {
    if (!info[0].IsNumber()) throw bad("layer must be an index");
    int64_t l = info[0].As<Napi::Number>().Int64Value();
    if (l < 0 || static_cast<size_t>(l) >= s_->views.size()) throw bad("layer index out of range");
    return static_cast<size_t>(l);
  }
  int64_t countArg(const Napi::Value& v) {
    if (!v.IsNumber()) throw bad("level must be a number");
    return fc::pruneCount(v.As<Napi::Number>().DoubleValue(), s_->ensureOrder().total());
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    int64_t total = 0;
    for (auto& v : s_->views) total += v.n;
    o.Set("layers", static_cast<double>(s_->views.size()));
    o.Set("total", static_cast<double>(total));
    o.Set("importanceTotal", s_->importanceTotal);
    return o;
  }
  Napi::Value Importance(const Napi::CallbackInfo& info) {
    try {
      const fc::LayerView& v = s_->views[layerArg(info)];
      std::vector<double> out(static_cast<size_t>(v.n));
      for (int64_t j = 0; j < v.n; ++j) out[j] = fc::importanceOf(v.w[j], v.f[j]);
      return f64(info.Env(), out);
    } catch (...) {
      rethrowAsJs(info.Env());
    }
  }
  Napi::Value Ranks(const Napi::CallbackInfo& info) {
    try {
      size_t l = layerArg(info);
      const fc::PruneOrder& o = s_->ensureOrder();
      return toJs<Napi::Uint32Array>(info.Env(), o.rank.data() + o.offsets[l], static_cast<size_t>(s_->views[l].n));
    } catch (...) {
      rethrowAsJs(info.Env());
    }
  }
  Napi::Value PruneCount(const Napi::CallbackInfo& info) {
    try {
      return Napi::Number::New(info.Env(), static_cast<double>(countArg(info[0])));
    } catch (...) {
      rethrowAsJs(info.Env());
    }
  }
  Napi::Value Masks(const Napi::CallbackInfo& info) {
    try {
      Napi::Env env = info.Env();
      int64_t k = countArg(info[0]);
      Napi::Array out = Napi::Array::New(env, s_->views.size());
      for (size_t l = 0; l < s_->views.size(); ++l) {
        Napi::Uint8Array m = Napi::Uint8Array::New(env, static_cast<size_t>(s_->views[l].n));
        fc::maskOf(s_->order, l, k, m.Data());
        out.Set(static_cast<uint32_t>(l), m);
      }
      return out;
    } catch (...) {
      rethrowAsJs(info.Env());
    }
  }
  // apply(level, bits[]) -> { weights, masks, scales, nnz, fit }: quantize after masking.
  Napi::Value Apply(const Napi::CallbackInfo& info) {
    try {
      Napi::Env env = info.Env();
      int64_t k = countArg(info[0]);
      std::vector<int> bits = ints(info[1], "bits");
      const size_t L = s_->views.size();
      if (bits.size() != L) throw bad("apply() needs one bit width per layer");
      Napi::Array ws = Napi::Array::New(env, L), ms = Napi::Array::New(env, L);
      std::vector<float> scales(L);
      std::vector<double> nnz(L), fit(L);
      for (size_t l = 0; l < L; ++l) {
        const fc::LayerView& v = s_->views[l];
        Napi::Uint8Array m = Napi::Uint8Array::New(env, static_cast<size_t>(v.n));
        Napi::Float32Array w = Napi::Float32Array::New(env, static_cast<size_t>(v.n));
        nnz[l] = static_cast<double>(fc::maskOf(s_->order, l, k, m.Data()));
        scales[l] = fc::quantizeMasked(v.w, m.Data(), v.n, bits[l], w.Data());
        fit[l] = fc::measuredFit(w.Data(), v.w, v.f, v.n);
        ws.Set(static_cast<uint32_t>(l), w);
        ms.Set(static_cast<uint32_t>(l), m);
      }
      Napi::Object o = Napi::Object::New(env);
      o.Set("weights", ws);
      o.Set("masks", ms);
      o.Set("scales", toJs<Napi::Float32Array>(env, scales.data(), L));
      o.Set("nnz", f64(env, nnz));
      o.Set("fit", f64(env, fit));
      return o;
    } catch (...) {
      rethrowAsJs(info.Env());
    }
  }
  Napi::Value Tables(const Napi::CallbackInfo& info) {
    try {
      Napi::Env env = info.Env();
      std::vector<double> levels = numbers(info[0], "levels");
      std::vector<int> bits = ints(info[1], "bits");
      for (size_t i = 1; i < levels.size(); ++i)
        if (!(levels[i] > levels[i - 1])) throw bad("levels must be ascending");
      for (size_t i = 1; i < bits.size(); ++i)
        if (!(bits[i] < bits[i - 1])) throw bad("bits must be descending");
      for (int b : bits)
        if (b < 2 || b > fc::kFloatBits) throw bad("bit widths must be in [2, 32]");
      s_->abort.store(false);
      auto* w = new TablesWorker(env, s_, std::move(levels), std::move(bits), info.This().As<Napi::Object>());
      Napi::Promise p = w->promise();
      w->Queue();
      return p;
    } catch (...) {
      rethrowAsJs(info.Env());
    }
  }
  Napi::Value Abort(const Napi::CallbackInfo& info) {
    s_->abort.store(true);
    return info.Env().Undefined();
  }
  // Drops this handle's reference to the data now (a running tables() keeps its own until done).
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    s_ = std::make_shared<SetState>();
    return info.Env().Undefined();
  }
};

}  // namespace

Napi::Function compressSetInit(Napi::Env env) { return CompressSet::Init(env); }

// measuredFit(a[], b[], fisher[]) -> Float64Array of per-layer sum_j F_jj (a_j - b_j)^2
Napi::Value compressMeasuredFit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    auto a = borrowList<float>(info[0], napi_float32_array, "a");
    auto b = borrowList<float>(info[1], napi_float32_array, "b");
    auto f = borrowList<double>(info[2], napi_float64_array, "fisher");
    if (a.size() != b.size() || a.size() != f.size()) throw bad("measuredFit() needs as many layers in each list");
    std::vector<double> out(a.size());
    for (size_t l = 0; l < a.size(); ++l) {
      if (a[l].second != b[l].second || a[l].second != f[l].second) throw bad("layer " + std::to_string(l) + ": lengths differ");
      out[l] = fc::measuredFit(a[l].first, b[l].first, f[l].first, static_cast<int64_t>(a[l].second));
    }
    return f64(env, out);
  } catch (...) {
    rethrowAsJs(env);
  }
}

// quantizeMasked(w, mask | null, bits) -> { values, scale }
Napi::Value compressQuantizeMasked(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    auto w = borrow<float>(info[0], napi_float32_array, "weights");
    std::pair<const uint8_t*, size_t> mask{nullptr, 0};
    bool hasMask = !info[1].IsNull() && !info[1].IsUndefined();
    if (hasMask) {
      mask = borrow<uint8_t>(info[1], napi_uint8_array, "mask");
      if (mask.second != w.second) throw bad("mask and weights lengths differ");
    }
    if (!info[2].IsNumber()) throw bad("bits must be a number");
    int bits = info[2].As<Napi::Number>().Int32Value();
    if (bits < 2 || bits > fc::kFloatBits) throw bad("bit widths must be in [2, 32]");
    Napi::Float32Array out = Napi::Float32Array::New(env, w.second);
    float scale = fc::quantizeMasked(w.first, mask.first, static_cast<int64_t>(w.second), bits, out.Data());
    Napi::Object o = Napi::Object::New(env);
    o.Set("values", out);
    o.Set("scale", static_cast<double>(scale));
    return o;
  } catch (...) {
    rethrowAsJs(env);
  }
}

// compressionRatio(nnz[], bits[], counts[]) -> number
Napi::Value compressRatio(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    std::vector<double> nnz = numbers(info[0], "nnz"), counts = numbers(info[2], "counts");
    std::vector<int> bits = ints(info[1], "bits");
    if (nnz.size() != bits.size() || nnz.size() != counts.size()) throw bad("compressionRatio() needs equal-length lists");
    return Napi::Number::New(env, fc::compressionRatio(nnz, bits, counts));
  } catch (...) {
    rethrowAsJs(env);
  }
}

}  // namespace fitaddon
