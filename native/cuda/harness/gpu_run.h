// The GPU side of the harness (built only with nvcc / the CUDA runtime): every exported case through the C ABI
// (barbell_cuda.h, what the addon calls), the model's greedy check, and the 2B-shape timings.
#pragma once

#include <string>
#include <vector>

#include "host_ref.h"
#include "vectors.h"

namespace bbharness {

CaseResult run_gpu_case(const Case& c);
/** The greedy-decode check of an exported model case (kernel "model"): JSON object. */
std::string run_model_check(const Case& c);
struct BenchOptions {
  int layers = 30, prompt = 512, steps = 128, ctx = 1024;
  std::vector<int> batches{1, 16};
  int head_dtype = 1;  // 1 f16 (tied, as the 2B-4T GGUF), 3 q8_0
};
/** The 2B-4T-shape timings on random weights: JSON object. */
std::string run_bench(const BenchOptions& o);

}  // namespace bbharness
