// TQ1_0 (ggml type 34: 256 trits per 54-byte block, base-3 packed, f16 d) to barbell's t2 layout at load time.
#pragma once

#include <cstdint>

namespace barbell {

// n trits (n % 256 == 0) of TQ1_0 blocks at `src` into n/4 t2 bytes at `dst` (element i at byte i/4, bits
// 2·(i % 4), code trit + 1), as repackTernary's decoding path (src/quant/repack.ts) gives them. Returns the fp16
// bits of the one scale, −1 when every trit is zero, or −2 when the JS path must decide: a block with a non-zero
// trit whose d differs from the first such block's or is negative or zero, or any non-finite d.
int32_t tq1_0_to_t2(const uint8_t* src, int64_t n, uint8_t* dst);

}  // namespace barbell
