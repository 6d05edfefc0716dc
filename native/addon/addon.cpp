// Module entry. Per-environment state lives in the Addon instance (safe in worker threads).
#include <napi.h>

#include "../engine/op.h"
#include "../engine/tensor.h"
#include "../kernels/backend.h"
#include "compress.h"
#include "model.h"

namespace fitaddon {

class FitAddon : public Napi::Addon<FitAddon> {
 public:
  FitAddon(Napi::Env env, Napi::Object exports) {
    DefineAddon(exports, {InstanceMethod("supportedOps", &FitAddon::SupportedOps),
                          InstanceMethod("cpuFeatures", &FitAddon::CpuFeatures),
                          InstanceMethod("forcePortableGemm", &FitAddon::ForcePortableGemm),
                          InstanceMethod("memoryStats", &FitAddon::MemoryStats),
                          InstanceValue("Model", Model::Init(env)),
                          InstanceValue("CompressSet", compressSetInit(env)),
                          InstanceMethod("measuredFit", &FitAddon::MeasuredFit),
                          InstanceMethod("quantizeMasked", &FitAddon::QuantizeMasked),
                          InstanceMethod("compressionRatio", &FitAddon::CompressionRatio)});
  }

 private:
  Napi::Value SupportedOps(const Napi::CallbackInfo& info) {
    auto types = fit::OpRegistry::instance().types();
    Napi::Array a = Napi::Array::New(info.Env(), types.size());
    for (size_t i = 0; i < types.size(); ++i) a.Set(static_cast<uint32_t>(i), types[i]);
    return a;
  }
  Napi::Value CpuFeatures(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("avx2fma", fit::kernels::cpuHasAvx2Fma());
    o.Set("gemmPath", fit::kernels::gemmPath());
    return o;
  }
  Napi::Value ForcePortableGemm(const Napi::CallbackInfo& info) {
    bool prev = fit::kernels::forcePortableGemm(info[0].ToBoolean().Value());
    return Napi::Boolean::New(info.Env(), prev);
  }
  // memoryStats(resetPeak?): the engine's block accounting (tensor.h), process-wide.
  Napi::Value MemoryStats(const Napi::CallbackInfo& info) {
    const fit::MemoryStats m = fit::memoryStats(info.Length() > 0 && info[0].ToBoolean().Value());
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("inUse", static_cast<double>(m.inUse));
    o.Set("peak", static_cast<double>(m.peak));
    o.Set("cached", static_cast<double>(m.cached));
    return o;
  }
  // FITCompress kernels (compress.cpp)
  Napi::Value MeasuredFit(const Napi::CallbackInfo& info) { return compressMeasuredFit(info); }
  Napi::Value QuantizeMasked(const Napi::CallbackInfo& info) { return compressQuantizeMasked(info); }
  Napi::Value CompressionRatio(const Napi::CallbackInfo& info) { return compressRatio(info); }
};

}  // namespace fitaddon

using fitaddon::FitAddon;
NODE_API_ADDON(FitAddon)
