#include "worker.h"

#include "convert.h"

namespace fitaddon {

void rethrowAsJs(Napi::Env env) {
  try {
    throw;
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throwEngineError(env, currentEngineError());
  }
}

void PromiseWorker::Execute() {
  try {
    Compute();
  } catch (...) {
    error_ = currentEngineError();
    SetError(error_.what());
  }
}

void PromiseWorker::OnOK() {
  Settled();
  try {
    deferred_.Resolve(Result(Env()));
  } catch (const Napi::Error& e) {  // e.g. no memory for the result's arrays: reject, never leave it pending
    deferred_.Reject(e.Value());
  } catch (...) {
    deferred_.Reject(engineErrorToJs(Env(), currentEngineError()).Value());
  }
}

void PromiseWorker::OnError(const Napi::Error&) {
  Settled();
  deferred_.Reject(engineErrorToJs(Env(), error_).Value());
}

}  // namespace fitaddon
