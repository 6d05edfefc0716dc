// The Model class exposed to JS: one prepared graph, run synchronously or off the event loop.
#pragma once

#include <napi.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "../engine/executor.h"

namespace fitaddon {

class Model : public Napi::ObjectWrap<Model> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Model(const Napi::CallbackInfo& info);

  // Shared state that an AsyncWorker can use while JS holds the Model.
  struct State {
    std::shared_ptr<fit::Graph> graph;
    std::unique_ptr<fit::Executor<float>> exec32;
    std::unique_ptr<fit::Executor<double>> exec64;
    std::atomic<bool> abort{false};
    std::atomic<bool> busy{false};
    std::vector<fit::Tensor> run(const std::vector<fit::Tensor>& inputs, bool f64);
  };

 private:
  Napi::Value Run(const Napi::CallbackInfo& info);
  Napi::Value RunAsync(const Napi::CallbackInfo& info);
  Napi::Value Abort(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Gradients(const Napi::CallbackInfo& info);       // gradients.cpp
  Napi::Value GradientsAsync(const Napi::CallbackInfo& info);  // gradients.cpp

  std::shared_ptr<State> state_;
  std::vector<Napi::ObjectReference> keep_;  // constants borrowed by the graph
};

}  // namespace fitaddon
