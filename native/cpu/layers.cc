// Every BitNet block of a model in one N-API call (issue 15: the JS / N-API work between 24–30 per-layer
// `block` calls was ~15 % of a 700M decode token).
//
//   layerStack(count, capture: (layer) => void) → handle
//     Prepares the per-layer arguments once: for each layer it calls `capture(layer)`, which calls the
//     per-layer entry Context.block (addon.cc) with that layer's weights and placeholder activations; while a
//     capture is open, Context.block hands its parsed BlockArgs to capture_block() below instead of running.
//     So the layers' BlockArgs come from the same parser as a per-layer call, with every field it fills.
//   layerStackDispose(handle)   drops the handle's arguments and its reference to the weights (idempotent).
//   Context.layers(handle, h, out, pos, kCaches, vCaches, dims: Float64Array [seq, pos0, capacity, batch])
//     → −1, or 4·layer + stage of the first non-finite activation (Executor::bitnet_block's codes).
//     Runs bitnet_block layer after layer with the per-call fields (h, out, positions, caches, lengths)
//     set in a copy of each layer's template: the same calls, hence the same bits, as one call per layer.
//     batch = 0: one sequence; kCaches[l] / vCaches[l] are layer l's caches of `capacity` rows. batch = B:
//     B rows, one token of its own sequence each; kCaches[l·B + b] is layer l's cache of row b. The caches
//     hold the KV type the templates were captured with (Float32Arrays for f32, Uint8Arrays of rows else).
#include "layers.h"

#include <napi.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "float_kernels.h"
#include "napi_args.h"
#include "populate.h"

namespace barbell {
namespace {

// The JS thread's open capture (layerStack sets it around each capture call); null otherwise.
thread_local BlockArgs* capture_sink = nullptr;
thread_local bool captured = false;

// napi_type_tag of a layer-stack handle, so another External cannot be passed off as one.
constexpr napi_type_tag kStackTag = {0x62617262656c6c5fULL, 0x6c61796572730001ULL};

struct LayerStackState {
  std::vector<BlockArgs> layers;
  // The residual stream between layers (grown, never shrunk).
  std::vector<float> ping, pong;
  bool alive = true;
};

Napi::Value Fail(Napi::Env env, const std::string& message, bool range = true) {
  if (range) {
    Napi::RangeError::New(env, "[native-cpu] layers: " + message).ThrowAsJavaScriptException();
  } else {
    Napi::TypeError::New(env, "[native-cpu] layers: " + message).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

LayerStackState* StateOf(Napi::Env env, const Napi::Value& v) {
  bool tagged = false;
  if (!v.IsExternal() || napi_check_object_type_tag(env, v, &kStackTag, &tagged) != napi_ok || !tagged) {
    Fail(env, "not a layer stack handle", false);
    return nullptr;
  }
  LayerStackState* s = v.As<Napi::External<LayerStackState>>().Data();
  if (s == nullptr || !s->alive) {
    Napi::Error::New(env, "[native-cpu] layers: the layer stack was disposed").ThrowAsJavaScriptException();
    return nullptr;
  }
  return s;
}

// layerStack(count, capture)
Napi::Value NewLayerStack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t count = 0;
  if (!get_int(info, 0, "layer count", kMaxLayers, &count)) {
    return env.Undefined();
  }
  if (count == 0 || !info[1].IsFunction()) {
    return Fail(env, "layerStack(count ≥ 1, capture: function)", false);
  }
  if (capture_sink != nullptr) {
    return Fail(env, "a layer stack is already being prepared", false);
  }
  const Napi::Function capture = info[1].As<Napi::Function>();
  auto state = std::make_unique<LayerStackState>();
  state->layers.resize(static_cast<size_t>(count));
  for (int64_t l = 0; l < count; ++l) {
    capture_sink = &state->layers[static_cast<size_t>(l)];
    captured = false;
    capture.Call({Napi::Number::New(env, static_cast<double>(l))});
    capture_sink = nullptr;
    if (env.IsExceptionPending()) {
      return env.Undefined();
    }
    if (!captured) {
      return Fail(env, "layer " + std::to_string(l) + " was not captured (capture must call Context.block once)", false);
    }
  }
  Napi::External<LayerStackState> handle =
      Napi::External<LayerStackState>::New(env, state.release(), [](Napi::Env, LayerStackState* s) { delete s; });
  if (napi_type_tag_object(env, handle, &kStackTag) != napi_ok) {
    return Fail(env, "cannot tag the handle");
  }
  return handle;
}

// layerStackDispose(handle)
Napi::Value DisposeLayerStack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool tagged = false;
  if (!info[0].IsExternal() || napi_check_object_type_tag(env, info[0], &kStackTag, &tagged) != napi_ok || !tagged) {
    return Fail(env, "not a layer stack handle", false);
  }
  LayerStackState* s = info[0].As<Napi::External<LayerStackState>>().Data();
  if (s != nullptr && s->alive) {
    s->alive = false;
    std::vector<BlockArgs>().swap(s->layers);
    std::vector<float>().swap(s->ping);
    std::vector<float>().swap(s->pong);
  }
  return env.Undefined();
}

// Layer caches from a JS array of typed arrays, each holding at least rows(i) rows: Float32Arrays of kv floats a
// row for an f32 cache (kv_type of the captured template), Uint8Arrays of kv_bytes(kv_type, kv) a row otherwise.
// `memory` receives each cache's whole ArrayBuffer as [begin, end) addresses (prefault_rows' bound: the caches of
// one KvCache share one ArrayBuffer, host-memory.ts allocGroup) and the rows the cache's typed array holds.
struct CacheMemory {
  uintptr_t begin = 0, end = 0;
  size_t rows = 0;
};
template <typename Rows>
bool GetCaches(Napi::Env env, const Napi::Value& v, size_t count, int kv_type, size_t kv, Rows rows, const char* name,
               std::vector<float*>* out, std::vector<CacheMemory>* memory) {
  if (!v.IsArray() || v.As<Napi::Array>().Length() != count) {
    Fail(env, std::string(name) + " must be an array of " + std::to_string(count) + " caches", false);
    return false;
  }
  const Napi::Array arr = v.As<Napi::Array>();
  out->resize(count);
  memory->resize(count);
  for (uint32_t i = 0; i < count; ++i) {
    const Napi::Value c = arr.Get(i);
    const napi_typedarray_type want = kv_type == kKvF32 ? napi_float32_array : napi_uint8_array;
    if (!c.IsTypedArray() || c.As<Napi::TypedArray>().TypedArrayType() != want) {
      Fail(env, std::string(name) + (kv_type == kKvF32 ? " must hold Float32Arrays" : " must hold Uint8Arrays (f16 / q8_0 rows)"), false);
      return false;
    }
    Napi::TypedArray t = c.As<Napi::TypedArray>();
    if (t.ByteLength() / kv_bytes(kv_type, kv) < rows(i)) {
      Fail(env, std::string(name) + "[" + std::to_string(i) + "] is too short for its rows");
      return false;
    }
    Napi::ArrayBuffer buffer = t.ArrayBuffer();
    uint8_t* data = static_cast<uint8_t*>(buffer.Data());
    (*out)[i] = reinterpret_cast<float*>(data + t.ByteOffset());
    (*memory)[i] = {reinterpret_cast<uintptr_t>(data), reinterpret_cast<uintptr_t>(data) + buffer.ByteLength(),
                    t.ByteLength() / kv_bytes(kv_type, kv)};
  }
  return true;
}

// Batched first touch of KV cache rows. A cache is allocated once for its capacity and its pages are first
// written one row at a time as decoding goes on: for a 700M model (48 caches of 6 KiB rows) ~72 pages a token,
// each a guest fault and a hypervisor trap on this project's VMs (populate.h), which made a 700M model's first
// 128-token decode ~12 % slower than its second (2-vCPU AMD EPYC Zen 5 class, Linux 6.18, 2026-12-07). So when a
// write first enters a 2 MiB window of the address space, the window is populated ahead (populate_for_write:
// one huge page where it lies wholly inside the cache's ArrayBuffer, else the window's pages holding cache bytes).
// The caches of one KvCache share one ArrayBuffer (host-memory.ts allocGroup), so short caches (a 780 KiB layer at
// 130 positions) fill huge pages too. Pages are touched once per cache, so this only speeds up a model's first
// pass over its context. Where the call fails it is not tried again.
std::atomic<bool> prefault_off{false};

void prefault_rows(void* base, size_t row_bytes, size_t from, size_t to, const CacheMemory& memory) {
  const size_t capacity = memory.rows;
  if (base == nullptr || from >= to || to > capacity || prefault_off.load(std::memory_order_relaxed)) {
    return;
  }
  const uintptr_t begin = reinterpret_cast<uintptr_t>(base);
  const uintptr_t a = begin + from * row_bytes;  // the first byte this step writes
  uintptr_t w = a & ~(kPopulateWindow - 1);
  // The window holding `a` was entered before when a byte of this cache before `a` lies in it.
  if (w < a && a > begin) {
    w += kPopulateWindow;
  }
  const uintptr_t b = begin + to * row_bytes;
  if (w < b && populate_for_write(w, b, begin, begin + capacity * row_bytes, memory.begin, memory.end) != 0) {
    prefault_off.store(true, std::memory_order_relaxed);
  }
}

}  // namespace

bool capture_block(const BlockArgs& a) {
  if (capture_sink == nullptr) {
    return false;
  }
  *capture_sink = a;
  captured = true;
  return true;
}

Napi::Value run_layers(Executor& exec, const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LayerStackState* s = StateOf(env, info[0]);
  if (s == nullptr) {
    return env.Undefined();
  }
  if (!info[6].IsTypedArray() || info[6].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
      info[6].As<Napi::Float64Array>().ElementLength() < 4) {
    return Fail(env, "dims must be a Float64Array of 4", false);
  }
  const Napi::Float64Array d = info[6].As<Napi::Float64Array>();
  int64_t v[4];
  for (int t = 0; t < 4; ++t) {
    if (!(d[t] >= 0 && d[t] <= static_cast<double>(kMaxK)) || d[t] != static_cast<double>(static_cast<int64_t>(d[t]))) {
      return Fail(env, "bad dimension");
    }
    v[t] = static_cast<int64_t>(d[t]);
  }
  const int64_t seq = v[0], pos0 = v[1], capacity = v[2], batch = v[3];
  const BlockArgs& first = s->layers.front();
  const size_t L = s->layers.size();
  const size_t E = static_cast<size_t>(first.embed);
  const size_t kv = static_cast<size_t>(first.kv_heads) * static_cast<size_t>(first.head_dim);
  if (seq == 0 || (batch != 0 && batch != seq) || (batch == 0 && pos0 + seq > capacity)) {
    return Fail(env, "inconsistent sizes");
  }
  float* h = nullptr;
  float* out = nullptr;
  int32_t* pos = nullptr;
  if (!get_array<float>(info, 1, "h", prod(seq, static_cast<int64_t>(E)), &h) ||
      !get_array<float>(info, 2, "out", prod(seq, static_cast<int64_t>(E)), &out) ||
      !get_array<int32_t>(info, 3, "positions", static_cast<size_t>(seq), &pos)) {
    return env.Undefined();
  }
  if (h == out) {
    return Fail(env, "out may not alias h");
  }
  std::vector<float*> ks, vs;
  std::vector<CacheMemory> k_memory, v_memory;
  const size_t caches = batch == 0 ? L : L * static_cast<size_t>(batch);
  // Batch: cache l·B + b must hold row pos[b]; one sequence: every cache holds `capacity` rows.
  auto rows = [&](size_t i) -> size_t {
    if (batch == 0) {
      return static_cast<size_t>(capacity);
    }
    const int32_t p = pos[i % static_cast<size_t>(batch)];
    return p < 0 ? SIZE_MAX : static_cast<size_t>(p) + 1;
  };
  if (!GetCaches(env, info[4], caches, first.kv_type, kv, rows, "kCaches", &ks, &k_memory) ||
      !GetCaches(env, info[5], caches, first.kv_type, kv, rows, "vCaches", &vs, &v_memory)) {
    return env.Undefined();
  }
  // The rows this step writes: pos0 … pos0 + seq − 1 of every cache, or row pos[b] of each batch row's caches.
  const size_t row_bytes = kv_bytes(first.kv_type, kv);
  for (size_t i = 0; i < caches; ++i) {
    const size_t from = batch == 0 ? static_cast<size_t>(pos0) : static_cast<size_t>(pos[i % static_cast<size_t>(batch)]);
    const size_t to = batch == 0 ? static_cast<size_t>(pos0 + seq) : from + 1;
    prefault_rows(ks[i], row_bytes, from, to, k_memory[i]);
    prefault_rows(vs[i], row_bytes, from, to, v_memory[i]);
  }
  const size_t n = static_cast<size_t>(seq) * E;
  if (L > 1 && s->ping.size() < n) {
    s->ping.resize(n);
  }
  if (L > 2 && s->pong.size() < n) {
    s->pong.resize(n);
  }
  for (size_t l = 0; l < L; ++l) {
    BlockArgs a = s->layers[l];
    a.h = l == 0 ? h : (l % 2 == 1 ? s->ping.data() : s->pong.data());
    a.out = l + 1 == L ? out : (l % 2 == 0 ? s->ping.data() : s->pong.data());
    a.pos = pos;
    a.seq = static_cast<int>(seq);
    if (batch == 0) {
      a.k_cache = ks[l];
      a.v_cache = vs[l];
      a.pos0 = static_cast<int>(pos0);
      a.capacity = static_cast<int>(capacity);
      a.batch = 0;
      a.k_caches = nullptr;
      a.v_caches = nullptr;
    } else {
      a.k_cache = nullptr;
      a.v_cache = nullptr;
      a.pos0 = 0;
      a.capacity = 0;
      a.batch = static_cast<int>(batch);
      a.k_caches = ks.data() + l * static_cast<size_t>(batch);
      a.v_caches = vs.data() + l * static_cast<size_t>(batch);
    }
    const int bad = exec.bitnet_block(a);
    if (bad >= 0) {
      return Napi::Number::New(env, static_cast<double>(l * 4 + static_cast<size_t>(bad)));
    }
  }
  return Napi::Number::New(env, -1);
}

void RegisterLayers(Napi::Env env, Napi::Object exports) {
  exports.Set("layerStack", Napi::Function::New(env, NewLayerStack));
  exports.Set("layerStackDispose", Napi::Function::New(env, DisposeLayerStack));
}

}  // namespace barbell
