// The harness's model modes: the greedy check of an exported small model against the JS reference's ids, and
// the 2B-4T-shape timings on random weights generated on the device.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

#include <cuda_runtime.h>

#include "../barbell_cuda.h"
#include "../model.h"
#include "gpu_run.h"

namespace bbharness {
namespace {

void check(int rc, const char* what) {
  if (rc != BBC_OK) throw std::runtime_error(std::string(what) + ": " + bbc_error());
}

struct ModelGuard {
  bbc_model* m = nullptr;
  ~ModelGuard() { bbc_model_free(m); }
};

std::string ids_json(const std::vector<int32_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

std::string run_model_check(const Case& c) {
  bbc_model_config cfg{};
  cfg.vocab = c.iattr("vocab");
  cfg.embed = c.iattr("embed");
  cfg.layers = c.iattr("layers");
  cfg.heads = c.iattr("heads");
  cfg.kv_heads = c.iattr("kvHeads");
  cfg.head_dim = c.iattr("headDim");
  cfg.ffn = c.iattr("ffn");
  cfg.ctx = c.iattr("ctx");
  cfg.max_batch = 2;
  cfg.max_rows = cfg.ctx;
  cfg.eps = c.attr("eps");
  cfg.rope_theta = c.attr("ropeTheta");
  cfg.activation = c.iattr("activation");
  cfg.embd_dtype = c.iattr("embdDtype");
  cfg.head_dtype = c.iattr("headDtype");
  ModelGuard g;
  check(bbc_model_create(&cfg, &g.m), "model create");
  for (const Tensor& t : c.tensors) {
    if (t.role != Role::Input || t.name == "prompt") continue;
    int layer = -1;
    std::string name = t.name;
    if (name.rfind("blk.", 0) == 0) {
      const size_t dot = name.find('.', 4);
      layer = std::stoi(name.substr(4, dot - 4));
      name = name.substr(dot + 1);
    }
    const float gamma = static_cast<float>(c.attr_or(t.name + ".gamma", 1.0));
    check(bbc_model_set(g.m, layer, name.c_str(), t.data.data(), t.data.size(), gamma), t.name.c_str());
  }
  const Tensor* prompt = c.find("prompt", Role::Input);
  const Tensor* want = c.find("ids", Role::Expected);
  if (prompt == nullptr || want == nullptr) throw std::runtime_error("model case needs prompt and ids");
  const int n = static_cast<int>(prompt->elements());
  const int steps = static_cast<int>(want->elements());
  std::string json = "{";
  bool all_ok = true;
  // Three ways, each must give the reference's ids: plain launches, one graph per step, and a batch of two
  // sequences (continuous batching's step) with the same prompt.
  for (int mode = 0; mode < 3; ++mode) {
    const int batch = mode == 2 ? 2 : 1;
    std::vector<int32_t> first(batch), pos(batch, n);
    for (int b = 0; b < batch; ++b) check(bbc_model_prefill(g.m, b, prompt->i32(), n, 0, 1, 0.0f, 0, &first[b]), "prefill");
    std::vector<int32_t> out(static_cast<size_t>(steps - 1) * batch);
    if (steps > 1) check(bbc_model_decode(g.m, batch, steps - 1, first.data(), pos.data(), mode != 0, 1, 0.0f, 0, out.data()), "decode");
    bool ok = true;
    std::vector<int32_t> got;
    for (int b = 0; b < batch; ++b) {
      std::vector<int32_t> seq{first[b]};
      for (int t = 0; t + 1 < steps; ++t) seq.push_back(out[static_cast<size_t>(t) * batch + b]);
      ok = ok && std::memcmp(seq.data(), want->i32(), steps * 4) == 0;
      if (b == 0) got = seq;
    }
    all_ok = all_ok && ok;
    static const char* names[3] = {"launches", "graph", "batch2"};
    json += std::string("\"") + names[mode] + "\":{\"ok\":" + (ok ? "true" : "false") + ",\"ids\":" + ids_json(got) + "},";
  }
  std::vector<int32_t> ref(want->i32(), want->i32() + steps);
  json += "\"expected\":" + ids_json(ref) + ",\"ok\":" + (all_ok ? "true" : "false") + "}";
  return json;
}

std::string run_bench(const BenchOptions& o) {
  int dev = 0;
  cudaDeviceProp p{};
  cudaGetDevice(&dev);
  cudaGetDeviceProperties(&p, dev);
  int mem_khz = 0, bus_bits = 0;
  cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, dev);
  cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, dev);
  const double spec_gbs = 2.0 * mem_khz * 1e3 * (bus_bits / 8.0) / 1e9;
  // Measured copy bandwidth (read + write of 1 GiB), the practical ceiling.
  double copy_gbs = 0;
  {
    void *a = nullptr, *b = nullptr;
    const size_t bytes = 1ull << 30;
    if (cudaMalloc(&a, bytes) == cudaSuccess && cudaMalloc(&b, bytes) == cudaSuccess) {
      cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
      cudaDeviceSynchronize();
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < 10; ++i) cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
      cudaDeviceSynchronize();
      copy_gbs = 2.0 * 10 * bytes / seconds_since(t0) / 1e9;
    }
    cudaFree(a);
    cudaFree(b);
  }
  bbc_model_config cfg{};
  cfg.vocab = 128256;
  cfg.embed = 2560;
  cfg.layers = o.layers;
  cfg.heads = 20;
  cfg.kv_heads = 5;
  cfg.head_dim = 128;
  cfg.ffn = 6912;
  cfg.ctx = o.ctx;
  cfg.max_batch = 1;
  for (int b : o.batches) cfg.max_batch = b > cfg.max_batch ? b : cfg.max_batch;
  cfg.max_rows = o.prompt;
  cfg.eps = 1e-5;
  cfg.rope_theta = 500000.0;
  cfg.activation = 4;
  cfg.embd_dtype = 1;
  cfg.head_dtype = o.head_dtype;
  ModelGuard g;
  check(bbc_model_create(&cfg, &g.m), "model create");
  check(bbc_model_randomize(g.m, 42), "randomize");
  // Bytes one decode step must read: every ternary row (device layout), the norms, the head.
  const double ternary = static_cast<double>(o.layers) *
                         (2.0 * 2560 * (2560 / 4) + 2.0 * 640 * (2560 / 4) + 2.0 * 6912 * (2560 / 4) + 2560.0 * (6912 / 4));
  const double head = o.head_dtype == 3 ? 128256.0 * 2560 * (1 + 4.0 / 32) : 128256.0 * 2560 * 2;
  const double step_bytes = ternary + head;
  std::vector<int32_t> prompt(o.prompt);
  for (int i = 0; i < o.prompt; ++i) prompt[i] = (i * 7919) % cfg.vocab;
  int32_t next = 0;
  check(bbc_model_prefill(g.m, 0, prompt.data(), o.prompt, 0, 1, 0.0f, 0, &next), "warm-up prefill");
  auto t0 = std::chrono::steady_clock::now();
  check(bbc_model_prefill(g.m, 0, prompt.data(), o.prompt, 0, 1, 0.0f, 0, &next), "prefill");
  const double pp_s = seconds_since(t0);
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "{\"device\":\"%s\",\"sm\":\"%d%d\",\"spec_bandwidth_gbs\":%.1f,\"copy_bandwidth_gbs\":%.1f,"
                "\"layers\":%d,\"head\":\"%s\",\"bytes_per_token\":%.0f,\"ceiling_tps_spec\":%.1f,\"pp%d_tps\":%.1f,"
                "\"decode\":[",
                p.name, p.major, p.minor, spec_gbs, copy_gbs, o.layers, o.head_dtype == 3 ? "q8_0" : "f16", step_bytes,
                spec_gbs * 1e9 / step_bytes, o.prompt, o.prompt / pp_s);
  std::string json = buf;
  bool first_entry = true;
  for (int batch : o.batches) {
    std::vector<int32_t> first(batch, 1), pos(batch, o.prompt), out(static_cast<size_t>(o.steps) * batch);
    for (int graph = 1; graph >= 0; --graph) {
      std::vector<int32_t> warm(4 * static_cast<size_t>(batch));
      check(bbc_model_decode(g.m, batch, 4, first.data(), pos.data(), graph, 1, 0.0f, 0, warm.data()), "warm-up decode");
      t0 = std::chrono::steady_clock::now();
      check(bbc_model_decode(g.m, batch, o.steps, first.data(), pos.data(), graph, 1, 0.0f, 0, out.data()), "decode");
      const double s = seconds_since(t0);
      const double tps = static_cast<double>(batch) * o.steps / s;
      std::snprintf(buf, sizeof buf,
                    "%s{\"batch\":%d,\"graph\":%s,\"steps\":%d,\"tps\":%.1f,\"ms_per_step\":%.3f,"
                    "\"fraction_of_spec_ceiling\":%.3f}",
                    first_entry ? "" : ",", batch, graph ? "true" : "false", o.steps, tps, 1e3 * s / o.steps,
                    (step_bytes * o.steps / s) / (spec_gbs * 1e9));
      json += buf;
      first_entry = false;
    }
  }
  return json + "]}";
}

}  // namespace bbharness
