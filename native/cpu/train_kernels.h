// Training kernels (train_kernels.cc): the backward's products with transposed operands, RMSNorm's
// backward, cross-entropy and AdamW on a thread pool. Exported on the addon by addon.cc's Init.
#pragma once

#include <napi.h>

namespace barbell {

// Adds the TrainContext class to `exports`.
void RegisterTrainKernels(Napi::Env env, Napi::Object exports);

}  // namespace barbell
