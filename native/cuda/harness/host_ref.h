// The host side of the harness: CPU implementations built from bb_math.h (the element arithmetic the CUDA
// kernels call), run on the exported cases. They check the vector files, the comparison and the shared
// arithmetic without a GPU: the ternary path goes through the device repack and dot16 exactly as the kernel does.
#pragma once

#include <string>
#include <vector>

#include "compare.h"
#include "vectors.h"

namespace bbharness {

struct CaseResult {
  std::string name, kernel, status;  // status: "pass", "fail", "skipped: <why>", "error: <why>"
  std::vector<std::pair<std::string, Comparison>> outputs;
};

/** Kernels the host reference covers: quantizeActivations, matmulTernaryI8, matmulQ8I8, embedding, rmsNorm. */
CaseResult run_host_case(const Case& c);
/** Checks of the comparison logic itself on synthetic data (a 1-ulp change fails an exact compare, …). */
std::vector<std::pair<std::string, bool>> compare_self_tests();

}  // namespace bbharness
