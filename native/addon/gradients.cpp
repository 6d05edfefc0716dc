// Model.gradients / gradientsAsync: forward, a loss head (or explicit seeds), backward.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "../engine/loss.h"
#include "../kernels/backend.h"
#include "convert.h"
#include "model.h"
#include "worker.h"

namespace fitaddon {

using fit::EngineError;
using fit::ErrorCode;
using fit::Tensor;

namespace {

struct GradJob {
  std::vector<Tensor> inputs;
  bool f64 = false;
  std::vector<std::pair<int, Tensor>> seeds;  // float32/float64, converted to the compute type
  bool hasLoss = false;
  int lossValue = -1;
  fit::Likelihood likelihood = fit::Likelihood::Categorical;
  Tensor target;
  bool sample = false;
  uint64_t seed = 0;
  fit::BackwardRequest req;
  std::vector<int> ranges;  // values whose min/max after forward are returned
  // With accumulators (one per layer, borrowed from JS): acc += scale * (per-sample squared weight
  // gradients) in place, and only the per-layer sums of what was added are returned.
  std::vector<std::pair<double*, int64_t>> sqAccumulators;
  double sqScale = 1;
};

struct GradOut {
  std::vector<double> ranges;  // min, max per requested value
  std::vector<Tensor> outputs;
  std::vector<double> loss;
  Tensor targets;
  fit::BackwardResult res;
  bool accumulated = false;
  std::vector<double> sqSums;  // per layer, with accumulators: sum of what was added
};

template <typename T>
Tensor toCompute(const Tensor& t) {
  if (t.dtype == fit::DTypeOf<T>::value) return t;
  Tensor out = Tensor::make(fit::DTypeOf<T>::value, t.dims);
  T* d = out.template data<T>();
  for (int64_t i = 0; i < t.numel(); ++i)
    d[i] = static_cast<T>(t.dtype == fit::DType::F32 ? t.data<float>()[i]
                          : t.dtype == fit::DType::F64 ? t.data<double>()[i]
                                                       : static_cast<double>(t.data<int64_t>()[i]));
  return out;
}

template <typename T>
GradOut runWith(fit::Executor<T>& ex, GradJob& job, const std::atomic<bool>* abort) {
  GradOut out;
  ex.setKeepValues(true);
  std::vector<int> pinned = job.ranges;
  if (job.hasLoss) pinned.push_back(job.lossValue);
  ex.pin(pinned);
  ex.forward(job.inputs, abort);
  out.outputs = ex.outputs();
  for (int id : job.ranges) {
    const Tensor& v = ex.value(id);
    double lo = INFINITY, hi = -INFINITY;
    if (v.dtype == fit::DTypeOf<T>::value) fit::kernels::minMax(v.template data<T>(), v.numel(), lo, hi);
    out.ranges.push_back(lo);
    out.ranges.push_back(hi);
  }
  fit::BackwardRequest req = job.req;
  for (auto& [id, t] : job.seeds) req.seeds.emplace_back(id, toCompute<T>(t));
  if (job.hasLoss) {
    const Tensor& z = ex.value(job.lossValue);
    Tensor target = job.target;
    if (job.sample) {
      std::mt19937_64 rng(job.seed);
      target = fit::sampleTargets<T>(job.likelihood, z, rng);
      out.targets = target;
    }
    fit::LossResult<T> lr = fit::lossHead<T>(job.likelihood, z, target);
    out.loss = std::move(lr.perSample);
    req.seeds.emplace_back(job.lossValue, std::move(lr.grad));
  }
  out.res = ex.backward(req, abort);
  return out;
}

// Adds job.sqScale * sqWeightGrads[i] into accumulator i and drops the squares.
template <typename T>
void accumulateSquares(GradOut& out, const GradJob& job) {
  out.accumulated = true;
  auto& sq = out.res.sqWeightGrads;
  if (sq.size() != job.sqAccumulators.size())
    throw EngineError(ErrorCode::InvalidInput, std::to_string(job.sqAccumulators.size()) + " squared-gradient accumulators for " +
                                                   std::to_string(sq.size()) + " layers");
  for (size_t i = 0; i < sq.size(); ++i)  // all checked before any is written
    if (sq[i].numel() != job.sqAccumulators[i].second)
      throw EngineError(ErrorCode::InvalidInput, "squared-gradient accumulator " + std::to_string(i) + " has " +
                                                     std::to_string(job.sqAccumulators[i].second) +
                                                     " elements but its layer's weight has " + std::to_string(sq[i].numel()));
  for (size_t i = 0; i < sq.size(); ++i) {
    const auto [acc, n] = job.sqAccumulators[i];
    out.sqSums.push_back(n ? fit::kernels::accumulateScaled(sq[i].template data<T>(), n, job.sqScale, acc) : 0.0);
  }
  sq.clear();
}

GradOut runGradients(Model::State& s, GradJob& job) {
  if (!s.graph) throw EngineError(ErrorCode::InvalidInput, "the model was disposed");
  s.abort.store(false);
  GradOut out;
  if (job.f64) {
    if (!s.exec64) s.exec64 = std::make_unique<fit::Executor<double>>(s.graph);
    out = runWith(*s.exec64, job, &s.abort);
    if (!job.sqAccumulators.empty()) accumulateSquares<double>(out, job);
    return out;
  }
  if (!s.exec32) s.exec32 = std::make_unique<fit::Executor<float>>(s.graph);
  out = runWith(*s.exec32, job, &s.abort);
  if (!job.sqAccumulators.empty()) accumulateSquares<float>(out, job);
  return out;
}

int idFrom(const Napi::Value& v, const fit::Graph& g, const char* what) {
  if (!v.IsNumber()) throw EngineError(ErrorCode::Internal, std::string(what) + " must be a value id");
  int id = v.As<Napi::Number>().Int32Value();
  if (id < 0 || static_cast<size_t>(id) >= g.values.size())
    throw EngineError(ErrorCode::Internal, std::string(what) + " is out of range");
  return id;
}

GradJob parseJob(const Napi::CallbackInfo& info, const fit::Graph& g, std::vector<Napi::ObjectReference>& keep) {
  GradJob job;
  if (!info[0].IsArray() || !info[1].IsObject())
    throw EngineError(ErrorCode::Internal, "gradients(inputs, request) needs an array and an object");
  Napi::Array ins = info[0].As<Napi::Array>();
  for (uint32_t i = 0; i < ins.Length(); ++i) {
    job.inputs.push_back(tensorFromJs(ins.Get(i), "input " + std::to_string(i)));
    keep.push_back(Napi::Persistent(ins.Get(i).As<Napi::Object>()));
  }
  Napi::Object r = info[1].As<Napi::Object>();
  Napi::Value p = r.Get("precision");
  job.f64 = p.IsString() && p.As<Napi::String>().Utf8Value() == "float64";
  keep.push_back(Napi::Persistent(r));
  Napi::Value seeds = r.Get("seeds");
  if (seeds.IsArray()) {
    Napi::Array a = seeds.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
      Napi::Object s = a.Get(i).As<Napi::Object>();
      int id = idFrom(s.Get("value"), g, "seed value");
      job.seeds.emplace_back(id, tensorFromJs(s.Get("tensor"), "seed for '" + g.values[id].name + "'"));
    }
  }
  Napi::Value loss = r.Get("loss");
  if (loss.IsObject()) {
    Napi::Object l = loss.As<Napi::Object>();
    job.hasLoss = true;
    job.lossValue = idFrom(l.Get("value"), g, "loss value");
    std::string lik = l.Get("likelihood").As<Napi::String>().Utf8Value();
    job.likelihood = lik == "bernoulli"  ? fit::Likelihood::Bernoulli
                     : lik == "gaussian" ? fit::Likelihood::Gaussian
                                         : fit::Likelihood::Categorical;
    Napi::Value target = l.Get("target");
    if (target.IsObject()) {
      job.target = tensorFromJs(target, "loss target");
    } else {
      job.sample = true;
      Napi::Value sd = l.Get("sampleSeed");
      job.seed = sd.IsNumber() ? static_cast<uint64_t>(sd.As<Napi::Number>().Int64Value()) : 0;
    }
  }
  Napi::Value want = r.Get("want");
  if (want.IsArray()) {
    Napi::Array a = want.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) job.req.want.push_back(idFrom(a.Get(i), g, "want"));
  }
  Napi::Value layers = r.Get("layers");
  if (layers.IsArray()) {
    Napi::Array a = layers.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
      Napi::Object o = a.Get(i).As<Napi::Object>();
      fit::BackwardRequest::Layer L;
      L.node = o.Get("node").As<Napi::Number>().Int32Value();
      L.dataInput = o.Get("dataInput").As<Napi::Number>().Int32Value();
      L.weightInput = o.Get("weightInput").As<Napi::Number>().Int32Value();
      if (L.node < 0 || static_cast<size_t>(L.node) >= g.nodes.size())
        throw EngineError(ErrorCode::Internal, "layer node out of range");
      job.req.layers.push_back(L);
    }
  }
  job.req.perSampleSquares = r.Get("perSampleSquares").ToBoolean().Value();
  job.req.layerInputSquares = r.Get("layerInputSquares").ToBoolean().Value();
  Napi::Value accs = r.Get("sqWeightAccumulators");
  if (accs.IsArray()) {
    if (!job.req.perSampleSquares) throw EngineError(ErrorCode::InvalidInput, "sqWeightAccumulators need perSampleSquares");
    Napi::Array a = accs.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
      Napi::Value v = a.Get(i);
      if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
        throw EngineError(ErrorCode::InvalidInput, "squared-gradient accumulator " + std::to_string(i) + " must be a Float64Array");
      Napi::Float64Array f = v.As<Napi::Float64Array>();
      job.sqAccumulators.emplace_back(f.Data(), static_cast<int64_t>(f.ElementLength()));
      keep.push_back(Napi::Persistent(v.As<Napi::Object>()));
    }
    Napi::Value sc = r.Get("sqWeightScale");
    job.sqScale = sc.IsNumber() ? sc.As<Napi::Number>().DoubleValue() : 1.0;
  }
  Napi::Value ranges = r.Get("ranges");
  if (ranges.IsArray()) {
    Napi::Array a = ranges.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) job.ranges.push_back(idFrom(a.Get(i), g, "range value"));
  }
  if (!job.hasLoss && job.seeds.empty())
    throw EngineError(ErrorCode::Internal, "gradients() needs a loss or seeds");
  return job;
}

Napi::Array tensorsToJs(Napi::Env env, const std::vector<Tensor>& ts) {
  Napi::Array a = Napi::Array::New(env, ts.size());
  for (size_t i = 0; i < ts.size(); ++i) a.Set(static_cast<uint32_t>(i), tensorToJs(env, ts[i]));
  return a;
}

Napi::Object outToJs(Napi::Env env, const GradOut& o) {
  Napi::Object r = Napi::Object::New(env);
  r.Set("outputs", tensorsToJs(env, o.outputs));
  r.Set("loss", f64(env, o.loss));
  if (o.targets.ptr) r.Set("targets", tensorToJs(env, o.targets));
  r.Set("grads", tensorsToJs(env, o.res.grads));
  r.Set("ranges", f64(env, o.ranges));
  // Each of these is empty unless requested (layerInputSquares replaces layerInputGrads, and
  // accumulators replace sqWeightGrads by sqWeightSums).
  Napi::Array sq = Napi::Array::New(env, o.res.layerInputSquares.size());
  for (size_t i = 0; i < o.res.layerInputSquares.size(); ++i) sq.Set(static_cast<uint32_t>(i), f64(env, o.res.layerInputSquares[i]));
  r.Set("layerInputSquares", sq);
  r.Set("layerInputGrads", tensorsToJs(env, o.res.layerInputGrads));
  r.Set("sqWeightGrads", tensorsToJs(env, o.res.sqWeightGrads));
  if (o.accumulated) r.Set("sqWeightSums", f64(env, o.sqSums));
  return r;
}

class GradWorker : public PromiseWorker {
 public:
  GradWorker(Napi::Env env, std::shared_ptr<Model::State> state, GradJob job, std::vector<Napi::ObjectReference> keep)
      : PromiseWorker(env), state_(std::move(state)), job_(std::move(job)), keep_(std::move(keep)) {}

 protected:
  void Compute() override { out_ = runGradients(*state_, job_); }
  Napi::Value Result(Napi::Env env) override { return outToJs(env, out_); }
  void Settled() override { state_->busy.store(false); }

 private:
  std::shared_ptr<Model::State> state_;
  GradJob job_;
  std::vector<Napi::ObjectReference> keep_;
  GradOut out_;
};

void acquire(std::atomic<bool>& busy) {
  bool expected = false;
  if (!busy.compare_exchange_strong(expected, true))
    throw EngineError(ErrorCode::InvalidInput, "the model is already running: await the previous run first");
}

}  // namespace

Napi::Value Model::Gradients(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    if (!state_->graph) throw EngineError(ErrorCode::InvalidInput, "the model was disposed");
    std::vector<Napi::ObjectReference> keep;
    GradJob job = parseJob(info, *state_->graph, keep);
    acquire(state_->busy);
    GradOut out;
    try {
      out = runGradients(*state_, job);
    } catch (...) {
      state_->busy.store(false);
      throw;
    }
    state_->busy.store(false);
    return outToJs(env, out);
  } catch (...) {
    rethrowAsJs(env);
  }
}

Napi::Value Model::GradientsAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    if (!state_->graph) throw EngineError(ErrorCode::InvalidInput, "the model was disposed");
    std::vector<Napi::ObjectReference> keep;
    GradJob job = parseJob(info, *state_->graph, keep);
    keep.push_back(Napi::Persistent(info.This().As<Napi::Object>()));
    acquire(state_->busy);
    auto* w = new GradWorker(env, state_, std::move(job), std::move(keep));
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  } catch (...) {
    rethrowAsJs(env);
  }
}

}  // namespace fitaddon
