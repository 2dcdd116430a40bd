// The probe's exports (probe.cc), registered by addon.cc's Init.
#pragma once

#include <napi.h>

namespace barbell {

Napi::Value Features(const Napi::CallbackInfo& info);
Napi::Value SelfTest(const Napi::CallbackInfo& info);

}  // namespace barbell
