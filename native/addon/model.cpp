#include "model.h"

#include "convert.h"
#include "worker.h"

namespace fitaddon {

using fit::EngineError;
using fit::ErrorCode;

std::vector<fit::Tensor> Model::State::run(const std::vector<fit::Tensor>& inputs, bool f64) {
  if (!graph) throw EngineError(ErrorCode::InvalidInput, "the model was disposed");
  abort.store(false);
  if (f64) {
    if (!exec64) exec64 = std::make_unique<fit::Executor<double>>(graph);
    exec64->setKeepValues(false);
    exec64->forward(inputs, &abort);
    auto out = exec64->outputs();
    exec64->clear();
    return out;
  }
  if (!exec32) exec32 = std::make_unique<fit::Executor<float>>(graph);
  exec32->setKeepValues(false);
  exec32->forward(inputs, &abort);
  auto out = exec32->outputs();
  exec32->clear();
  return out;
}

Napi::Function Model::Init(Napi::Env env) {
  return DefineClass(env, "Model",
                     {InstanceMethod("run", &Model::Run), InstanceMethod("runAsync", &Model::RunAsync),
                      InstanceMethod("abort", &Model::Abort), InstanceMethod("dispose", &Model::Dispose),
                      InstanceMethod("info", &Model::Info), InstanceMethod("gradients", &Model::Gradients),
                      InstanceMethod("gradientsAsync", &Model::GradientsAsync)});
}

Model::Model(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Model>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "Model(desc): desc must be an object");
  state_ = std::make_shared<State>();
  try {
    state_->graph = graphFromJs(info[0].As<Napi::Object>(), keep_);
  } catch (...) {
    rethrowAsJs(env);
  }
}

static std::vector<fit::Tensor> inputsFrom(const Napi::Value& v) {
  if (!v.IsArray()) throw EngineError(ErrorCode::InvalidInput, "inputs must be an array of tensors");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<fit::Tensor> out;
  for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(tensorFromJs(a.Get(i), "input " + std::to_string(i)));
  return out;
}

static bool wantsF64(const Napi::CallbackInfo& info) {
  if (info.Length() < 2 || !info[1].IsObject()) return false;
  Napi::Value p = info[1].As<Napi::Object>().Get("precision");
  return p.IsString() && p.As<Napi::String>().Utf8Value() == "float64";
}

static Napi::Array outputsToJs(Napi::Env env, const std::vector<fit::Tensor>& outs) {
  Napi::Array arr = Napi::Array::New(env, outs.size());
  for (size_t i = 0; i < outs.size(); ++i) arr.Set(static_cast<uint32_t>(i), tensorToJs(env, outs[i]));
  return arr;
}

struct BusyGuard {
  std::atomic<bool>& flag;
  bool owned = false;
  explicit BusyGuard(std::atomic<bool>& f) : flag(f) {
    bool expected = false;
    if (!flag.compare_exchange_strong(expected, true))
      throw EngineError(ErrorCode::InvalidInput, "the model is already running: await the previous run first");
    owned = true;
  }
  ~BusyGuard() {
    if (owned) flag.store(false);
  }
};

Napi::Value Model::Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    BusyGuard guard(state_->busy);
    auto outs = state_->run(inputsFrom(info[0]), wantsF64(info));
    return outputsToJs(env, outs);
  } catch (...) {
    rethrowAsJs(env);
  }
}

class RunWorker : public PromiseWorker {
 public:
  RunWorker(Napi::Env env, std::shared_ptr<Model::State> state, std::vector<fit::Tensor> inputs, bool f64,
            std::vector<Napi::ObjectReference> keep)
      : PromiseWorker(env), state_(std::move(state)), inputs_(std::move(inputs)), f64_(f64), keep_(std::move(keep)) {}

 protected:
  void Compute() override { outs_ = state_->run(inputs_, f64_); }
  Napi::Value Result(Napi::Env env) override { return outputsToJs(env, outs_); }
  void Settled() override { state_->busy.store(false); }

 private:
  std::shared_ptr<Model::State> state_;
  std::vector<fit::Tensor> inputs_;
  bool f64_;
  std::vector<Napi::ObjectReference> keep_;  // input arrays stay alive while the worker reads them
  std::vector<fit::Tensor> outs_;
};

Napi::Value Model::RunAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    std::vector<fit::Tensor> inputs = inputsFrom(info[0]);
    std::vector<Napi::ObjectReference> keep;
    Napi::Array a = info[0].As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) keep.push_back(Napi::Persistent(a.Get(i).As<Napi::Object>()));
    keep.push_back(Napi::Persistent(info.This().As<Napi::Object>()));  // its constants stay alive too
    bool expected = false;
    if (!state_->busy.compare_exchange_strong(expected, true))
      throw EngineError(ErrorCode::InvalidInput, "the model is already running: await the previous run first");
    auto* worker = new RunWorker(env, state_, std::move(inputs), wantsF64(info), std::move(keep));
    Napi::Promise p = worker->promise();
    worker->Queue();
    return p;
  } catch (...) {
    rethrowAsJs(env);
  }
}

Napi::Value Model::Abort(const Napi::CallbackInfo& info) {
  state_->abort.store(true);
  return info.Env().Undefined();
}

Napi::Value Model::Dispose(const Napi::CallbackInfo& info) {
  if (!state_->busy.load()) {
    state_->exec32.reset();
    state_->exec64.reset();
    state_->graph.reset();
    keep_.clear();
  }
  return info.Env().Undefined();
}

Napi::Value Model::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  if (state_->graph) {
    o.Set("nodes", Napi::Number::New(env, static_cast<double>(state_->graph->nodes.size())));
    o.Set("values", Napi::Number::New(env, static_cast<double>(state_->graph->values.size())));
  }
  return o;
}

}  // namespace fitaddon
