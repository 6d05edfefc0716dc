// Error handling shared by the addon's entry points.
//  - PromiseWorker: an AsyncWorker that runs Compute() on the libuv pool and settles a Promise:
//    resolved with Result(), or rejected with an Error whose `code` names the EngineError's code
//    (ERR_ENGINE_INTERNAL for other exceptions, "out of memory" for bad_alloc).
//  - rethrowAsJs: inside a catch block of a synchronous entry point, turns the exception in flight
//    into the documented JS error (a Napi::Error already pending passes through unchanged).
#pragma once

#include <napi.h>

#include "../engine/errors.h"

namespace fitaddon {

[[noreturn]] void rethrowAsJs(Napi::Env env);

class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  virtual void Compute() = 0;                     // on a pool thread: no N-API calls
  virtual Napi::Value Result(Napi::Env env) = 0;  // on the JS thread, after Compute() succeeded
  virtual void Settled() {}                       // on the JS thread, before resolving or rejecting

 private:
  void Execute() final;
  void OnOK() final;
  void OnError(const Napi::Error& e) final;

  Napi::Promise::Deferred deferred_;
  fit::EngineError error_{fit::ErrorCode::Internal, ""};
};

}  // namespace fitaddon
