// A BitNet decoder on the device: weights (ternary repacked at upload), KV caches for `max_batch` sequences,
// prefill, and decode steps for a batch of sequences, each step optionally one CUDA graph launch (embedding →
// blocks → final norm → head → sampling → position advance all captured; the next token stays on the device).
// The block runs the kernels of the op table's bitnetBlock decomposition in its order (norm, one quantization
// shared by q/k/v, RoPE, KV write, attention, sub-norm, wo, residual, FFN), so it computes what the JS reference
// computes, with the float kernels' tolerances.
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bbc_model_config {
  int vocab, embed, layers, heads, kv_heads, head_dim, ffn;
  int ctx;        // KV cache rows per sequence
  int max_batch;  // sequences with their own cache
  int max_rows;   // rows of one prefill call
  double eps, rope_theta;
  int activation;  // UNARY_OPS code: 4 relu2, 5 silu
  int embd_dtype;  // 0 f32, 1 f16, 2 bf16, 3 q8_0
  int head_dtype;  // 0 f32, 1 f16, 2 bf16 (dense head), 3 q8_0 (the integer head)
} bbc_model_config;

typedef struct bbc_model bbc_model;

int bbc_model_create(const bbc_model_config* config, bbc_model** out);
void bbc_model_free(bbc_model* model);
/** Device bytes the model holds (weights, caches, scratch). */
size_t bbc_model_bytes(const bbc_model* model);
/** Uploads one tensor: layer −1 for "token_embd", "output_norm", "output"; else "attn_norm", "attn_sub_norm",
 *  "ffn_norm", "ffn_sub_norm" (f32) and "wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down" (t2 bytes, γ). */
int bbc_model_set(bbc_model* model, int layer, const char* name, const void* host, size_t bytes, float gamma);
/** Random weights generated on the device (the timing model); the head shares the embedding when both are f16. */
int bbc_model_randomize(bbc_model* model, unsigned long long seed);
/** Runs n prompt tokens of sequence `slot` from position `pos0`; writes the sampled next id. */
int bbc_model_prefill(bbc_model* model, int slot, const int32_t* ids, int n, int pos0, int top_k, float temperature,
                      unsigned long long seed, int32_t* next_id);
/** `steps` decode steps for sequences 0 … batch−1, sequence b starting from token first[b] at position pos[b];
 *  out_ids[step·batch + b]. use_graph: capture one step as a CUDA graph and launch it once per step. */
int bbc_model_decode(bbc_model* model, int batch, int steps, const int32_t* first, const int32_t* pos, int use_graph,
                     int top_k, float temperature, unsigned long long seed, int32_t* out_ids);

#ifdef __cplusplus
}
#endif
