// Load-time transcoders (load.cc): file layouts to barbell's compute layouts, bit-identical to the JS
// versions in src/quant/repack.ts (I2_S / TQ2_0 → t2) and src/quant/formats/q8-0.ts (Q8_0 encode), which
// stay the reference. Exported on the addon by addon.cc's Init.
#pragma once

#include <napi.h>

namespace barbell {

// Adds transcodeTernary and encodeQ8_0 to `exports`.
void RegisterLoadCodecs(Napi::Env env, Napi::Object exports);

}  // namespace barbell
