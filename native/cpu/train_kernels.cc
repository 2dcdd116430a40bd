// Training kernels (issue 20 point 5; docs/training.md "Training throughput"): the backward's f32 products
// with either operand transposed in place (no transposes materialised), RMSNorm's backward, the
// cross-entropy's forward and backward, and AdamW, on a thread pool of their own. The JS rules of
// src/train (autograd.ts, backward.ts, qat.ts) stay the reference; test/train/native-kernels.test.ts
// checks each kernel against them.
//
// Exported on the addon as `TrainContext(threads, isa)` (registered by addon.cc's Init):
//   gemm(a, b, c, m, n, k, flags)   C[m, n] (+)= op(A)·op(B); flags: 1 A stored [k, m], 2 B stored [n, k],
//                                   4 accumulate into C. f32 sums in a fixed order per output (tiles of
//                                   C are split over the pool, each summed by one task): the bits do not
//                                   depend on the thread count or on timing.
//   rmsNormBackward(x, w, g, rows, cols, eps, gx, gw)
//   crossEntropy(logits, targets, rows, v, probs) → Σ rows' loss (float64), or −1 − row of a bad target
//   crossEntropyBackward(probs, targets, rows, v, scale, out)
//   adamw(w, g, m, v, n, params: Float64Array[lr, bc1, bc2, beta1, beta2, eps, decay, gradScale])
//                                   bit for bit the float64 arithmetic of qat.ts adamwUpdate.
//   ternarize(w, n, trits) → γ       bit for bit src/quant/values.ts absmeanTernarize (Σ|w| in float64 in
//                                   order, γ = f32(max(mean, 1e-5)), trits = clamp(round-half-even(f32(w/γ))));
//                                   NaN (nothing written) when a weight is not finite.
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cpu_features.h"
#include "napi_args.h"
#include "thread_pool.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define BARBELL_TRAIN_X86 1
#endif

namespace barbell {
namespace {

// Blocking of the product: C is cut into kMc × kNc tiles (one pool task each), k into kKc slices.
constexpr int kMc = 96;   // a multiple of every micro-kernel's rows (8, 6, 4)
constexpr int kNc = 128;  // a multiple of every micro-kernel's columns (32, 16, 4)
constexpr int kKc = 256;
// Largest micro-tile (rows × columns) of any path, for the edge buffer.
constexpr int kMaxTile = 8 * 32;

struct Gemm {
  const float* a;
  const float* b;
  float* c;
  int m, n, k;
  bool ta, tb, acc;
};

// One micro-kernel: C[MR, NR] (ldc) = (load ? C : 0) + Σ_p Ap[p][0..MR) ⊗ Bp[p][0..NR).
using Micro = void (*)(int kc, const float* ap, const float* bp, float* c, size_t ldc, bool load);

void micro_scalar(int kc, const float* ap, const float* bp, float* c, size_t ldc, bool load) {
  float acc[4][4];
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) {
      acc[i][j] = load ? c[i * ldc + j] : 0.0f;
    }
  }
  for (int p = 0; p < kc; ++p) {
    for (int i = 0; i < 4; ++i) {
      const float av = ap[p * 4 + i];
      for (int j = 0; j < 4; ++j) {
        acc[i][j] += av * bp[p * 4 + j];
      }
    }
  }
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) {
      c[i * ldc + j] = acc[i][j];
    }
  }
}

#ifdef BARBELL_TRAIN_X86
__attribute__((target("avx2,fma"))) void micro_avx2(int kc, const float* ap, const float* bp, float* c, size_t ldc,
                                                     bool load) {
  __m256 acc[6][2];
  for (int i = 0; i < 6; ++i) {
    acc[i][0] = load ? _mm256_loadu_ps(c + i * ldc) : _mm256_setzero_ps();
    acc[i][1] = load ? _mm256_loadu_ps(c + i * ldc + 8) : _mm256_setzero_ps();
  }
  for (int p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_loadu_ps(bp);
    const __m256 b1 = _mm256_loadu_ps(bp + 8);
    for (int i = 0; i < 6; ++i) {
      const __m256 av = _mm256_broadcast_ss(ap + i);
      acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
    }
    ap += 6;
    bp += 16;
  }
  for (int i = 0; i < 6; ++i) {
    _mm256_storeu_ps(c + i * ldc, acc[i][0]);
    _mm256_storeu_ps(c + i * ldc + 8, acc[i][1]);
  }
}

__attribute__((target("avx512f,fma"))) void micro_avx512(int kc, const float* ap, const float* bp, float* c,
                                                          size_t ldc, bool load) {
  __m512 acc[8][2];
  for (int i = 0; i < 8; ++i) {
    acc[i][0] = load ? _mm512_loadu_ps(c + i * ldc) : _mm512_setzero_ps();
    acc[i][1] = load ? _mm512_loadu_ps(c + i * ldc + 16) : _mm512_setzero_ps();
  }
  for (int p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_loadu_ps(bp);
    const __m512 b1 = _mm512_loadu_ps(bp + 16);
    for (int i = 0; i < 8; ++i) {
      const __m512 av = _mm512_set1_ps(ap[i]);
      acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
    }
    ap += 8;
    bp += 32;
  }
  for (int i = 0; i < 8; ++i) {
    _mm512_storeu_ps(c + i * ldc, acc[i][0]);
    _mm512_storeu_ps(c + i * ldc + 16, acc[i][1]);
  }
}
#endif

struct MicroKernel {
  Micro fn;
  int mr, nr;
  const char* name;
};

MicroKernel micro_for(Isa isa) {
#ifdef BARBELL_TRAIN_X86
  if (isa == Isa::kAvx512bw || isa == Isa::kAvx512vnni) {
    return {micro_avx512, 8, 32, "avx512"};
  }
  if (isa == Isa::kAvx2) {
    return {micro_avx2, 6, 16, "avx2"};
  }
#endif
  (void)isa;
  return {micro_scalar, 4, 4, "scalar"};
}

// A(i, p) and B(p, j) of the product, whichever way each is stored.
inline float at_a(const Gemm& g, size_t i, size_t p) { return g.ta ? g.a[p * g.m + i] : g.a[i * g.k + p]; }
inline float at_b(const Gemm& g, size_t p, size_t j) { return g.tb ? g.b[j * g.k + p] : g.b[p * g.n + j]; }

// Rows [i0, i0 + mc) × slice [p0, p0 + kc) of A into panels of mr rows: ap[panel][p][r], zero past m.
void pack_a(const Gemm& g, int i0, int mc, int p0, int kc, int mr, float* ap) {
  for (int r0 = 0; r0 < mc; r0 += mr) {
    float* panel = ap + static_cast<size_t>(r0) * kc;
    for (int r = 0; r < mr; ++r) {
      const int i = i0 + r0 + r;
      if (i >= g.m) {
        for (int p = 0; p < kc; ++p) {
          panel[p * mr + r] = 0.0f;
        }
      } else if (g.ta) {
        for (int p = 0; p < kc; ++p) {
          panel[p * mr + r] = g.a[static_cast<size_t>(p0 + p) * g.m + i];
        }
      } else {
        const float* row = g.a + static_cast<size_t>(i) * g.k + p0;
        for (int p = 0; p < kc; ++p) {
          panel[p * mr + r] = row[p];
        }
      }
    }
  }
}

// Slice [p0, p0 + kc) × columns [j0, j0 + nc) of B into panels of nr columns: bp[panel][p][c], zero past n.
void pack_b(const Gemm& g, int p0, int kc, int j0, int nc, int nr, float* bp) {
  for (int c0 = 0; c0 < nc; c0 += nr) {
    float* panel = bp + static_cast<size_t>(c0) * kc;
    const int cols = std::max(0, std::min(nr, g.n - (j0 + c0)));
    if (g.tb) {
      for (int c = 0; c < nr; ++c) {
        if (c >= cols) {
          for (int p = 0; p < kc; ++p) {
            panel[p * nr + c] = 0.0f;
          }
          continue;
        }
        const float* col = g.b + static_cast<size_t>(j0 + c0 + c) * g.k + p0;
        for (int p = 0; p < kc; ++p) {
          panel[p * nr + c] = col[p];
        }
      }
    } else {
      for (int p = 0; p < kc; ++p) {
        const float* row = g.b + static_cast<size_t>(p0 + p) * g.n + j0 + c0;
        float* dst = panel + p * nr;
        std::memcpy(dst, row, sizeof(float) * static_cast<size_t>(cols));
        std::fill(dst + cols, dst + nr, 0.0f);
      }
    }
  }
}

template <typename T>
T* scratch(std::vector<T>& v, size_t n) {
  if (v.size() < n) {
    v.resize(n);
  }
  return v.data();
}

// One tile of C: rows [i0, i0 + kMc) × columns [j0, j0 + kNc), summed over k slice by slice.
void gemm_tile(const Gemm& g, const MicroKernel& mk, int i0, int j0) {
  thread_local std::vector<float> abuf, bbuf;
  const int mc = std::min(kMc, g.m - i0);
  const int nc = std::min(kNc, g.n - j0);
  const int mcp = (mc + mk.mr - 1) / mk.mr * mk.mr;
  const int ncp = (nc + mk.nr - 1) / mk.nr * mk.nr;
  float* ap = scratch(abuf, static_cast<size_t>(kMc) * kKc);
  float* bp = scratch(bbuf, static_cast<size_t>(kNc) * kKc);
  float edge[kMaxTile];
  const size_t ldc = static_cast<size_t>(g.n);
  for (int p0 = 0; p0 < g.k; p0 += kKc) {
    const int kc = std::min(kKc, g.k - p0);
    pack_a(g, i0, mcp, p0, kc, mk.mr, ap);
    pack_b(g, p0, kc, j0, ncp, mk.nr, bp);
    const bool load = p0 > 0 || g.acc;
    for (int c0 = 0; c0 < ncp; c0 += mk.nr) {
      const int cols = std::min(mk.nr, nc - c0);
      for (int r0 = 0; r0 < mcp; r0 += mk.mr) {
        const int rows = std::min(mk.mr, mc - r0);
        float* cp = g.c + static_cast<size_t>(i0 + r0) * ldc + j0 + c0;
        const float* a_panel = ap + static_cast<size_t>(r0) * kc;
        const float* b_panel = bp + static_cast<size_t>(c0) * kc;
        if (rows == mk.mr && cols == mk.nr) {
          mk.fn(kc, a_panel, b_panel, cp, ldc, load);
          continue;
        }
        // An edge tile: through a full-size buffer, then the valid part back.
        for (int r = 0; r < mk.mr; ++r) {
          for (int c = 0; c < mk.nr; ++c) {
            edge[r * mk.nr + c] = load && r < rows && c < cols ? cp[r * ldc + c] : 0.0f;
          }
        }
        mk.fn(kc, a_panel, b_panel, edge, static_cast<size_t>(mk.nr), load);
        for (int r = 0; r < rows; ++r) {
          std::memcpy(cp + r * ldc, edge + r * mk.nr, sizeof(float) * static_cast<size_t>(cols));
        }
      }
    }
  }
}

// Rows per chunk of the row-split kernels below (a fixed partition: results do not depend on the pool).
constexpr int kRowChunk = 32;

class TrainContext : public Napi::ObjectWrap<TrainContext> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "TrainContext",
                       {
                           InstanceAccessor<&TrainContext::GetIsa>("isa"),
                           InstanceAccessor<&TrainContext::GetThreads>("threads"),
                           InstanceMethod<&TrainContext::GemmMethod>("gemm"),
                           InstanceMethod<&TrainContext::RmsNormBackward>("rmsNormBackward"),
                           InstanceMethod<&TrainContext::CrossEntropy>("crossEntropy"),
                           InstanceMethod<&TrainContext::CrossEntropyBackward>("crossEntropyBackward"),
                           InstanceMethod<&TrainContext::Adamw>("adamw"),
                           InstanceMethod<&TrainContext::Ternarize>("ternarize"),
                           InstanceMethod<&TrainContext::Dispose>("dispose"),
                       });
  }

  explicit TrainContext(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TrainContext>(info) {
    int64_t threads = 0;
    if (!get_int(info, 0, "threads", 1024, &threads)) {
      return;
    }
    const std::string name = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
    Isa isa;
    if (!parse_isa(name, cpu_features().best, &isa)) {
      Napi::TypeError::New(info.Env(), "[native-cpu] unknown ISA '" + name + "'").ThrowAsJavaScriptException();
      return;
    }
    micro_ = micro_for(isa);
    pool_ = std::make_unique<ThreadPool>(std::max(1, threads == 0 ? physical_cores() : static_cast<int>(threads)));
  }

 private:
  bool alive(const Napi::CallbackInfo& info) {
    if (!pool_) {
      Napi::Error::New(info.Env(), "[native-cpu] train context was disposed").ThrowAsJavaScriptException();
      return false;
    }
    return true;
  }

  Napi::Value GetIsa(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), micro_.name); }
  Napi::Value GetThreads(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), pool_ ? pool_->threads() : 0);
  }

  // Runs fn(chunk) for chunks [0, count): over the pool when there is more than one.
  void run(int count, const std::function<void(int)>& fn) {
    if (count <= 0) {
      return;
    }
    pool_->run(count, fn);
  }

  // Runs fn(chunk, first row, end row) over the chunks of kRowChunk rows of [0, rows).
  void run_rows(int rows, const std::function<void(int, int, int)>& fn) {
    run((rows + kRowChunk - 1) / kRowChunk, [&](int ch) { fn(ch, ch * kRowChunk, std::min(rows, (ch + 1) * kRowChunk)); });
  }

  // The checks a row kernel starts with: the context is alive, `rows` (argument idx) and the row length (idx + 1,
  // named `cols`) are integers in range, and rows · cols fits a size. False after throwing.
  bool rows_shape(const Napi::CallbackInfo& info, const char* kernel, size_t idx, const char* cols, int64_t* rows_out,
                  int64_t* cols_out, size_t* total) {
    if (!alive(info) || !get_int(info, idx, "rows", kMaxDim, rows_out) || !get_int(info, idx + 1, cols, kMaxDim, cols_out)) {
      return false;
    }
    if (!checked_product(*rows_out, *cols_out, total)) {
      Napi::RangeError::New(info.Env(), std::string("[native-cpu] ") + kernel + ": sizes overflow").ThrowAsJavaScriptException();
      return false;
    }
    return true;
  }

  // The first row whose target is outside [0, n), or −1.
  static int bad_target(const int32_t* targets, int rows, int n) {
    for (int row = 0; row < rows; ++row) {
      if (targets[row] < 0 || targets[row] >= n) {
        return row;
      }
    }
    return -1;
  }

  // gemm(a, b, c, m, n, k, flags)
  Napi::Value GemmMethod(const Napi::CallbackInfo& info) {
    if (!alive(info)) {
      return info.Env().Undefined();
    }
    ARG_INT(m, 3, kMaxDim);
    ARG_INT(n, 4, kMaxDim);
    ARG_INT(k, 5, kMaxDim);
    ARG_INT(flags, 6, 7);
    size_t mk = 0, kn = 0, mn = 0;
    if (!checked_product(m, k, &mk) || !checked_product(k, n, &kn) || !checked_product(m, n, &mn)) {
      Napi::RangeError::New(info.Env(), "[native-cpu] gemm: sizes overflow").ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    ARG_ARRAY(float, a, 0, mk);
    ARG_ARRAY(float, b, 1, kn);
    ARG_ARRAY(float, c, 2, mn);
    const Gemm g{a, b, c, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), (flags & 1) != 0,
                 (flags & 2) != 0, (flags & 4) != 0};
    if (m == 0 || n == 0) {
      return info.Env().Undefined();
    }
    if (k == 0) {
      if (!g.acc) {
        std::fill(c, c + mn, 0.0f);
      }
      return info.Env().Undefined();
    }
    const int tm = (g.m + kMc - 1) / kMc;
    const int tn = (g.n + kNc - 1) / kNc;
    const MicroKernel mk_fn = micro_;
    run(tm * tn, [&](int t) { gemm_tile(g, mk_fn, (t / tn) * kMc, (t % tn) * kNc); });
    return info.Env().Undefined();
  }

  // rmsNormBackward(x, w, g, rows, cols, eps, gx, gw): float64 per row as autograd.ts's rule; gw summed
  // per chunk of kRowChunk rows, then over chunks in order.
  Napi::Value RmsNormBackward(const Napi::CallbackInfo& info) {
    int64_t rows = 0, cols = 0;
    size_t total = 0;
    if (!rows_shape(info, "rmsNormBackward", 3, "cols", &rows, &cols, &total)) {
      return info.Env().Undefined();
    }
    ARG_ARRAY(float, x, 0, total);
    ARG_ARRAY(float, w, 1, static_cast<size_t>(cols));
    ARG_ARRAY(float, g, 2, total);
    ARG_ARRAY(float, gx, 6, total);
    ARG_ARRAY(float, gw, 7, static_cast<size_t>(cols));
    const double eps = get_double(info, 5);
    const int r = static_cast<int>(rows), n = static_cast<int>(cols);
    const int chunks = (r + kRowChunk - 1) / kRowChunk;
    std::vector<double> part(static_cast<size_t>(chunks) * n, 0.0);
    run_rows(r, [&](int ch, int row0, int row1) {
      double* pw = part.data() + static_cast<size_t>(ch) * n;
      for (int row = row0; row < row1; ++row) {
        const size_t base = static_cast<size_t>(row) * n;
        double ss = 0, dot = 0;
        for (int i = 0; i < n; ++i) {
          const double xi = x[base + i];
          ss += xi * xi;
          dot += static_cast<double>(g[base + i]) * w[i] * xi;
        }
        const double inv = 1 / std::sqrt(ss / n + eps);
        for (int i = 0; i < n; ++i) {
          const double xi = x[base + i];
          const double gi = g[base + i];
          gx[base + i] = static_cast<float>(inv * gi * w[i] - (inv * inv * inv * xi * dot) / n);
          pw[i] += gi * xi * inv;
        }
      }
    });
    for (int i = 0; i < n; ++i) {
      double s = 0;
      for (int ch = 0; ch < chunks; ++ch) {
        s += part[static_cast<size_t>(ch) * n + i];
      }
      gw[i] = static_cast<float>(s);
    }
    return info.Env().Undefined();
  }

  // crossEntropy(logits, targets, rows, v, probs) → Σ over rows of logsumexp − logit[target] (float64).
  Napi::Value CrossEntropy(const Napi::CallbackInfo& info) {
    int64_t rows = 0, v = 0;
    size_t total = 0;
    if (!rows_shape(info, "crossEntropy", 2, "v", &rows, &v, &total)) {
      return info.Env().Undefined();
    }
    ARG_ARRAY(float, logits, 0, total);
    ARG_ARRAY(int32_t, targets, 1, static_cast<size_t>(rows));
    ARG_ARRAY(float, probs, 4, total);
    const int r = static_cast<int>(rows), n = static_cast<int>(v);
    const int bad = bad_target(targets, r, n);
    if (bad >= 0) {
      return Napi::Number::New(info.Env(), -1.0 - bad);
    }
    std::vector<double> loss(static_cast<size_t>(r), 0.0);
    run_rows(r, [&](int, int row0, int row1) {
      for (int row = row0; row < row1; ++row) {
        const float* l = logits + static_cast<size_t>(row) * n;
        float* p = probs + static_cast<size_t>(row) * n;
        double mx = -INFINITY;
        for (int i = 0; i < n; ++i) {
          mx = std::max(mx, static_cast<double>(l[i]));
        }
        double sum = 0;
        for (int i = 0; i < n; ++i) {
          const double e = std::exp(static_cast<double>(l[i]) - mx);
          p[i] = static_cast<float>(e);
          sum += e;
        }
        for (int i = 0; i < n; ++i) {
          p[i] = static_cast<float>(static_cast<double>(p[i]) / sum);
        }
        loss[row] = mx + std::log(sum) - l[targets[row]];
      }
    });
    double total_loss = 0;
    for (int row = 0; row < r; ++row) {
      total_loss += loss[row];
    }
    return Napi::Number::New(info.Env(), total_loss);
  }

  // crossEntropyBackward(probs, targets, rows, v, scale, out): out = probs·scale, minus scale at each target.
  Napi::Value CrossEntropyBackward(const Napi::CallbackInfo& info) {
    int64_t rows = 0, v = 0;
    size_t total = 0;
    if (!rows_shape(info, "crossEntropyBackward", 2, "v", &rows, &v, &total)) {
      return info.Env().Undefined();
    }
    ARG_ARRAY(float, probs, 0, total);
    ARG_ARRAY(int32_t, targets, 1, static_cast<size_t>(rows));
    ARG_ARRAY(float, out, 5, total);
    const double scale = get_double(info, 4);
    const int r = static_cast<int>(rows), n = static_cast<int>(v);
    if (bad_target(targets, r, n) >= 0) {
      Napi::RangeError::New(info.Env(), "[native-cpu] crossEntropyBackward: a target is outside the vocabulary")
          .ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    run_rows(r, [&](int, int row0, int row1) {
      for (int row = row0; row < row1; ++row) {
        const size_t base = static_cast<size_t>(row) * n;
        for (int i = 0; i < n; ++i) {
          out[base + i] = static_cast<float>(static_cast<double>(probs[base + i]) * scale);
        }
        out[base + targets[row]] = static_cast<float>(static_cast<double>(out[base + targets[row]]) - scale);
      }
    });
    return info.Env().Undefined();
  }

  // adamw(w, g, m, v, n, params[lr, bc1, bc2, beta1, beta2, eps, decay, gradScale])
  Napi::Value Adamw(const Napi::CallbackInfo& info) {
    if (!alive(info)) {
      return info.Env().Undefined();
    }
    ARG_INT(n, 4, kMaxDim);
    ARG_ARRAY(float, w, 0, static_cast<size_t>(n));
    ARG_ARRAY(float, g, 1, static_cast<size_t>(n));
    ARG_ARRAY(float, m1, 2, static_cast<size_t>(n));
    ARG_ARRAY(float, m2, 3, static_cast<size_t>(n));
    const Napi::Value pv = info[5];
    if (!pv.IsTypedArray() || pv.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
        pv.As<Napi::Float64Array>().ElementLength() < 8) {
      Napi::TypeError::New(info.Env(), "[native-cpu] adamw: params must be a Float64Array of 8").ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    const double* prm = pv.As<Napi::Float64Array>().Data();
    const double lr = prm[0], bc1 = prm[1], bc2 = prm[2], beta1 = prm[3], beta2 = prm[4], eps = prm[5], decay = prm[6],
                 gscale = prm[7];
    const size_t total = static_cast<size_t>(n);
    constexpr size_t kChunk = 1 << 15;
    const int chunks = static_cast<int>((total + kChunk - 1) / kChunk);
    run(chunks, [&](int ch) {
      const size_t end = std::min(total, (static_cast<size_t>(ch) + 1) * kChunk);
      for (size_t j = static_cast<size_t>(ch) * kChunk; j < end; ++j) {
        const double gj = static_cast<double>(g[j]) * gscale;
        const float mj = static_cast<float>(beta1 * m1[j] + (1 - beta1) * gj);
        const float vj = static_cast<float>(beta2 * m2[j] + (1 - beta2) * gj * gj);
        m1[j] = mj;
        m2[j] = vj;
        const double wj = w[j];
        w[j] = static_cast<float>(wj - lr * ((static_cast<double>(mj) / bc1) / (std::sqrt(static_cast<double>(vj) / bc2) + eps) +
                                             decay * wj));
      }
    });
    return info.Env().Undefined();
  }

  // ternarize(w, n, trits) → γ, or NaN when a weight is not finite.
  Napi::Value Ternarize(const Napi::CallbackInfo& info) {
    if (!alive(info)) {
      return info.Env().Undefined();
    }
    ARG_INT(n, 1, kMaxDim);
    ARG_ARRAY(float, w, 0, static_cast<size_t>(n));
    ARG_ARRAY(int8_t, trits, 2, static_cast<size_t>(n));
    const size_t total = static_cast<size_t>(n);
    double sum = 0;
    for (size_t i = 0; i < total; ++i) {
      if (!std::isfinite(w[i])) {
        return Napi::Number::New(info.Env(), NAN);
      }
      sum += std::fabs(static_cast<double>(w[i]));
    }
    const float gamma = static_cast<float>(std::max(total == 0 ? 0.0 : sum / static_cast<double>(total), 1e-5));
    constexpr size_t kChunk = 1 << 16;
    run(static_cast<int>((total + kChunk - 1) / kChunk), [&](int ch) {
      const size_t end = std::min(total, (static_cast<size_t>(ch) + 1) * kChunk);
      for (size_t i = static_cast<size_t>(ch) * kChunk; i < end; ++i) {
        const double q = std::nearbyint(static_cast<float>(static_cast<double>(w[i]) / gamma));
        trits[i] = static_cast<int8_t>(q > 1 ? 1 : q < -1 ? -1 : q);
      }
    });
    return Napi::Number::New(info.Env(), gamma);
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    if (pool_) {
      pool_->stop();
      pool_.reset();
    }
    return info.Env().Undefined();
  }

  MicroKernel micro_{micro_scalar, 4, 4, "scalar"};
  std::unique_ptr<ThreadPool> pool_;
};

}  // namespace

void RegisterTrainKernels(Napi::Env env, Napi::Object exports) { exports.Set("TrainContext", TrainContext::Init(env)); }

}  // namespace barbell
