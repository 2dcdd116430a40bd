// N-API argument check of an f16 / q8_0 KV cache (kv_cache.h): a Uint8Array of at least `needed` bytes,
// handed to the kernels through the cache's float pointer (AttentionArgs / BlockArgs kv_type says what it holds).
#pragma once

#include <napi.h>

#include <string>

#include "napi_args.h"

namespace barbell {

inline bool kv_bytes_arg(const Napi::CallbackInfo& info, size_t idx, const char* name, size_t needed, float** out) {
  uint8_t* bytes = nullptr;
  if (!get_array<uint8_t>(info, idx, name, needed, &bytes)) {
    return false;
  }
  *out = reinterpret_cast<float*>(bytes);
  return true;
}

}  // namespace barbell
