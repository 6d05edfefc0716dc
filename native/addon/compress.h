// FITCompress bindings (compress.cpp): the CompressSet class and the free kernels.
#pragma once

#include <napi.h>

namespace fitaddon {

Napi::Function compressSetInit(Napi::Env env);
Napi::Value compressMeasuredFit(const Napi::CallbackInfo& info);
Napi::Value compressQuantizeMasked(const Napi::CallbackInfo& info);
Napi::Value compressRatio(const Napi::CallbackInfo& info);

}  // namespace fitaddon
