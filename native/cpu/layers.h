// Every BitNet block of a model in one N-API call (layers.cc): the hooks addon.cc calls.
#pragma once

#include <napi.h>

#include <cstdint>

#include "executor.h"

namespace barbell {

// Most layers a stack takes (a bound checked before anything is sized from the count).
constexpr int64_t kMaxLayers = 1024;

// Called by Context.block after it parsed its arguments: true (the arguments were taken as a layer's
// template, nothing runs) while layerStack is capturing a layer, false otherwise.
bool capture_block(const BlockArgs& a);

// Context.layers(handle, h, out, pos, kCaches, vCaches, dims): see layers.cc.
Napi::Value run_layers(Executor& exec, const Napi::CallbackInfo& info);

// Exports layerStack and layerStackDispose.
void RegisterLayers(Napi::Env env, Napi::Object exports);

}  // namespace barbell
