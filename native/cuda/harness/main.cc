// The CUDA conformance harness (docs/cuda.md). Modes, each printing one JSON object on stdout:
//   harness --self-check vectors.bin   host only: parse, host reference (bb_math.h) vs the JS reference, compare logic
//   harness --gpu vectors.bin          every case through the CUDA kernels (needs a GPU)
//   harness --model model.bin          greedy ids of an exported small model, 3 ways (needs a GPU)
//   harness --bench [--layers N] [--prompt N] [--steps N] [--head f16|q8_0]   2B-4T-shape timings (needs a GPU)
// Exit status: 0 when every check passed, 1 when one failed, 2 for a usage or input error.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "host_ref.h"
#include "vectors.h"
#ifdef BBC_WITH_CUDA
#include "../barbell_cuda.h"
#include "gpu_run.h"
#endif

namespace {

using namespace bbharness;

std::string escape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') o += '\\';
    if (static_cast<unsigned char>(ch) >= 0x20) o += ch;
  }
  return o;
}

int report_cases(const char* mode, const std::vector<CaseResult>& results, std::string extra = "") {
  size_t pass = 0, fail = 0, skipped = 0, errors = 0;
  std::string list;
  for (const CaseResult& r : results) {
    if (r.status == "pass") ++pass;
    else if (r.status == "fail") ++fail;
    else if (r.status.rfind("skipped", 0) == 0) ++skipped;
    else ++errors;
    list += std::string(list.empty() ? "" : ",") + "{\"name\":\"" + escape(r.name) + "\",\"kernel\":\"" + escape(r.kernel) +
            "\",\"status\":\"" + escape(r.status) + "\"";
    for (const auto& o : r.outputs) list += ",\"" + escape(o.first) + "\":" + to_json(o.second);
    list += "}";
  }
  std::printf("{\"mode\":\"%s\",\"pass\":%zu,\"fail\":%zu,\"skipped\":%zu,\"errors\":%zu,%s\"cases\":[%s]}\n", mode, pass, fail,
              skipped, errors, extra.c_str(), list.c_str());
  return fail == 0 && errors == 0 ? 0 : 1;
}

int usage() {
  std::fprintf(stderr, "usage: harness --self-check FILE | --gpu FILE | --model FILE | --bench [options]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string mode = argv[1];
  try {
    if (mode == "--self-check" || mode == "--gpu" || mode == "--model") {
      if (argc != 3) return usage();
      std::vector<Case> cases;
      std::string error;
      if (!load_vectors(argv[2], &cases, &error)) {
        std::printf("{\"mode\":\"%s\",\"error\":\"%s\"}\n", mode.c_str() + 2, escape(error).c_str());
        return 2;
      }
      if (mode == "--self-check") {
        std::vector<CaseResult> results;
        for (const Case& c : cases) {
          if (c.kernel != "model") results.push_back(run_host_case(c));
        }
        std::string tests = "\"compare_tests\":[";
        bool all = true;
        for (const auto& t : compare_self_tests()) {
          tests += std::string(tests.back() == '[' ? "" : ",") + "{\"name\":\"" + escape(t.first) + "\",\"ok\":" +
                   (t.second ? "true" : "false") + "}";
          all = all && t.second;
        }
        tests += "],";
        const int rc = report_cases("self-check", results, tests);
        return all ? rc : 1;
      }
#ifdef BBC_WITH_CUDA
      char probe[256];
      if (bbc_probe(probe, sizeof probe) <= 0 || bbc_init(0) != BBC_OK) {
        std::printf("{\"mode\":\"%s\",\"error\":\"%s\"}\n", mode.c_str() + 2, escape(probe).c_str());
        return 2;
      }
      if (mode == "--gpu") {
        std::vector<CaseResult> results;
        for (const Case& c : cases) {
          if (c.kernel != "model") results.push_back(run_gpu_case(c));
        }
        return report_cases("gpu", results, "\"device\":\"" + escape(probe) + "\",");
      }
      int rc = 0;
      for (const Case& c : cases) {
        if (c.kernel != "model") continue;
        const std::string j = run_model_check(c);
        std::printf("{\"mode\":\"model\",\"device\":\"%s\",\"name\":\"%s\",\"result\":%s}\n", escape(probe).c_str(),
                    escape(c.name).c_str(), j.c_str());
        if (j.find("\"ok\":false") != std::string::npos) rc = 1;
      }
      return rc;
#else
      std::printf("{\"mode\":\"%s\",\"error\":\"this harness was built without CUDA (host checks only)\"}\n", mode.c_str() + 2);
      return 2;
#endif
    }
    if (mode == "--bench") {
#ifdef BBC_WITH_CUDA
      BenchOptions o;
      for (int i = 2; i + 1 < argc; i += 2) {
        const std::string k = argv[i];
        const int v = std::atoi(argv[i + 1]);
        if (k == "--layers" && v > 0 && v <= 30) o.layers = v;
        else if (k == "--prompt" && v > 0 && v <= 4096) o.prompt = v;
        else if (k == "--steps" && v > 0 && v <= 4096) o.steps = v;
        else if (k == "--head") o.head_dtype = std::strcmp(argv[i + 1], "q8_0") == 0 ? 3 : 1;
        else return usage();
      }
      o.ctx = o.prompt + o.steps + 16;
      char probe[256];
      if (bbc_probe(probe, sizeof probe) <= 0 || bbc_init(0) != BBC_OK) {
        std::printf("{\"mode\":\"bench\",\"error\":\"%s\"}\n", escape(probe).c_str());
        return 2;
      }
      std::printf("{\"mode\":\"bench\",\"result\":%s}\n", run_bench(o).c_str());
      return 0;
#else
      std::printf("{\"mode\":\"bench\",\"error\":\"this harness was built without CUDA\"}\n");
      return 2;
#endif
    }
  } catch (const std::exception& e) {
    std::printf("{\"mode\":\"%s\",\"error\":\"%s\"}\n", mode.c_str() + 2, escape(e.what()).c_str());
    return 2;
  }
  return usage();
}
