// What llama.cpp makes of a GGUF, for scripts/peers/check-llama-cpp.sh (barbell's side: llama-cpp-check.ts).
// Built against a llama.cpp build outside the repository (never part of barbell's build); uses only llama.h.
//
//   llama-logits MODEL PROMPTS OUT_DIR N_GEN
//
// PROMPTS holds UTF-8 prompts separated by NUL bytes. For prompt i it writes to OUT_DIR/llama.txt:
//   tok i special <ids>   llama_tokenize(add_special = true,  parse_special = true)
//   tok i plain <ids>     llama_tokenize(add_special = false, parse_special = false)
//   gen i <ids>           N_GEN greedy (argmax) tokens after the special-tokenized prompt
// and OUT_DIR/logits-i.f32: N_GEN rows of n_vocab float32 logits, row k = the last position's logits after the
// prompt plus the first k generated tokens (the row whose argmax is generated token k). KV cache in F32 and no
// flash attention, so that the comparison isolates the weights' formats and llama.cpp's matmuls.
#include "llama.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

static void quiet_log(ggml_log_level level, const char * text, void *) {
    if (level >= GGML_LOG_LEVEL_WARN) {
        fputs(text, stderr);
    }
}

static std::vector<llama_token> tokenize(const llama_vocab * vocab, const std::string & text, bool special) {
    std::vector<llama_token> ids(text.size() + 8);
    int n = llama_tokenize(vocab, text.data(), (int32_t) text.size(), ids.data(), (int32_t) ids.size(), special, special);
    if (n < 0) {
        ids.resize(-n);
        n = llama_tokenize(vocab, text.data(), (int32_t) text.size(), ids.data(), (int32_t) ids.size(), special, special);
    }
    if (n < 0) {
        fprintf(stderr, "llama-logits: tokenize failed\n");
        exit(1);
    }
    ids.resize(n);
    return ids;
}

static void write_ids(FILE * f, const char * head, size_t i, const char * kind, const std::vector<llama_token> & ids) {
    fprintf(f, "%s %zu%s%s", head, i, kind[0] ? " " : "", kind);
    for (llama_token t : ids) {
        fprintf(f, " %d", t);
    }
    fputc('\n', f);
}

int main(int argc, char ** argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s MODEL PROMPTS OUT_DIR N_GEN\n", argv[0]);
        return 2;
    }
    const std::string out_dir = argv[3];
    const int n_gen = atoi(argv[4]);
    if (n_gen < 1 || n_gen > 256) {
        fprintf(stderr, "llama-logits: N_GEN must be 1..256\n");
        return 2;
    }
    std::ifstream in(argv[2], std::ios::binary);
    const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::string> prompts;
    for (size_t at = 0; at < all.size();) {
        size_t end = all.find('\0', at);
        if (end == std::string::npos) {
            end = all.size();
        }
        prompts.push_back(all.substr(at, end - at));
        at = end + 1;
    }

    llama_log_set(quiet_log, nullptr);
    llama_backend_init();
    llama_model * model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (model == nullptr) {
        fprintf(stderr, "llama-logits: llama.cpp could not load %s\n", argv[1]);
        return 1;
    }
    const llama_vocab * vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);

    FILE * txt = fopen((out_dir + "/llama.txt").c_str(), "w");
    if (txt == nullptr) {
        fprintf(stderr, "llama-logits: cannot write to %s\n", out_dir.c_str());
        return 1;
    }
    for (size_t i = 0; i < prompts.size(); i++) {
        const std::vector<llama_token> special = tokenize(vocab, prompts[i], true);
        write_ids(txt, "tok", i, "special", special);
        write_ids(txt, "tok", i, "plain", tokenize(vocab, prompts[i], false));

        llama_context_params cp = llama_context_default_params();
        cp.n_ctx = 256;
        cp.n_batch = 256;
        cp.n_threads = 2;
        cp.n_threads_batch = 2;
        cp.type_k = GGML_TYPE_F32;
        cp.type_v = GGML_TYPE_F32;
        cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
        cp.no_perf = true;
        llama_context * ctx = llama_init_from_model(model, cp);
        if (ctx == nullptr) {
            fprintf(stderr, "llama-logits: no context\n");
            return 1;
        }
        FILE * bin = fopen((out_dir + "/logits-" + std::to_string(i) + ".f32").c_str(), "wb");
        std::vector<llama_token> batch = special;
        std::vector<llama_token> gen;
        for (int k = 0; k < n_gen; k++) {
            if (llama_decode(ctx, llama_batch_get_one(batch.data(), (int32_t) batch.size())) != 0) {
                fprintf(stderr, "llama-logits: decode failed\n");
                return 1;
            }
            const float * logits = llama_get_logits_ith(ctx, -1);
            fwrite(logits, sizeof(float), n_vocab, bin);
            llama_token best = 0;
            for (llama_token t = 1; t < n_vocab; t++) {
                if (logits[t] > logits[best]) {
                    best = t;
                }
            }
            gen.push_back(best);
            batch.assign(1, best);
        }
        fclose(bin);
        write_ids(txt, "gen", i, "", gen);
        llama_free(ctx);
    }
    fclose(txt);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
