#include "worker.h"

#include <exception>
#include <new>

#include "convert.h"

namespace fitaddon {

using fit::EngineError;
using fit::ErrorCode;

void rethrowAsJs(Napi::Env env) {
  try {
    throw;
  } catch (const Napi::Error&) {
    throw;
  } catch (const EngineError& e) {
    throwEngineError(env, e);
  } catch (const std::bad_alloc&) {
    throwEngineError(env, EngineError(ErrorCode::Internal, "out of memory"));
  } catch (const std::exception& e) {
    throwEngineError(env, EngineError(ErrorCode::Internal, e.what()));
  }
}

void PromiseWorker::Execute() {
  try {
    Compute();
  } catch (const EngineError& e) {
    code_ = e.code();
    SetError(e.what());
  } catch (const std::bad_alloc&) {
    code_ = ErrorCode::Internal;
    SetError("out of memory");
  } catch (const std::exception& e) {
    code_ = ErrorCode::Internal;
    SetError(e.what());
  }
}

void PromiseWorker::OnOK() {
  Settled();
  deferred_.Resolve(Result(Env()));
}

void PromiseWorker::OnError(const Napi::Error& e) {
  Settled();
  Napi::Error err = Napi::Error::New(Env(), e.Message());
  err.Set("code", Napi::String::New(Env(), errorCodeName(code_)));
  deferred_.Reject(err.Value());
}

}  // namespace fitaddon
