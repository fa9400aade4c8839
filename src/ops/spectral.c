// spectral.c — spectral normalization of a weight on the CPU (Miyato et al. 2018, as PyTorch's
// torch.nn.utils.parametrizations.spectral_norm): the power iteration for the weight's largest
// singular value sigma, W / sigma, and the gradient through it. The CUDA twin is
// kernels/spectral.cu; what each op computes is written in ops.def.
//
// W [M, K] is the weight's own storage seen as a matrix (conv [R,S,C,K]: M = R·S·C). u [K] and
// v [M] are the iteration's state, float, kept by the caller (checkpoints).
//
// Gradient rule (ops.h): dw ACCUMULATES (+=).
//
// Bits: every sum is a tree of ops/sum_order.h walked in the same order as the CUDA kernels, and
// every float expression is the kernels' own in the same order (this file is built without FMA
// contraction), so the two backends agree bit for bit:
//   W u         a lane dot per row
//   Wᵀ v        chunked rows over the M rows, per column k (float products, exact in double)
//   ‖a‖², uᵀb   long sums over the vector
//   Σ g ⊙ w_sn  a flat sum over the M·K elements
// normalize(a) = a / max(sqrt(‖a‖²), eps) in double, each element rounded once to float;
// sigma = uᵀ (Wᵀ v) in double from the final float u and v, rounded once (the Wᵀ v of the last
// iteration: no extra pass over W); w_sn = w / sigma in float.
#include "ops/ops.h"

#include "core/check.h"    // ganc_die
#include "ops/sum_order.h" // the trees

#include <math.h>
#include <stdint.h>
#include <string.h>

// Below this many matrix elements a parallel region costs more than the loop.
#define SN_PARALLEL_MIN 32768

static void sn_check(const char *op, int M, int K) {
  if (M < 1 || K < 1)
    ganc_die(GANC_EXIT_RUNTIME, "internal error in %s: empty weight matrix [%d, %d]", op, M, K);
}

// The long sum of lane values s[GANC_LONG_LANES] already filled: the tree.
static double long_total(double *s) { return ganc_tree(s, GANC_LONG_LANES); }

// out [n] = a / max(‖a‖, eps), each element in double and rounded once.
static void sn_normalize(const double *a, int64_t n, float eps, float *out) {
  double s[GANC_LONG_LANES];
  for (int t = 0; t < GANC_LONG_LANES; t++)
    s[t] = ganc_long_lane_sq(a, n, t);
  const double nrm = sqrt(long_total(s));
  const double d = nrm > (double)eps ? nrm : (double)eps;
  for (int64_t i = 0; i < n; i++)
    out[i] = (float)(a[i] / d);
}

// b [K] = Wᵀ v: chunk partials part [nchunk, K] (rows in order), then the partials in order.
static void sn_wt_v(ganc_ctx *ctx, int M, int K, const float *w, const float *v, double *part,
                    double *b) {
  const int64_t nchunk = ganc_row_chunks(M);
#pragma omp parallel for num_threads(ctx->threads)                                                 \
    schedule(static) if ((int64_t)M * K >= SN_PARALLEL_MIN)
  for (int64_t j = 0; j < nchunk; j++) {
    double *p = part + j * K;
    memset(p, 0, (size_t)K * sizeof(double));
    const int64_t end = (j + 1) * GANC_CHUNK_ROWS < M ? (j + 1) * GANC_CHUNK_ROWS : M;
    for (int64_t m = j * GANC_CHUNK_ROWS; m < end; m++)
      for (int k = 0; k < K; k++)
        p[k] += (double)w[m * K + k] * (double)v[m];
  }
  for (int k = 0; k < K; k++)
    b[k] = ganc_chunk_total(part, nchunk, K, k);
}

// a [M] = W u: a lane dot per row.
static void sn_w_u(ganc_ctx *ctx, int M, int K, const float *w, const float *u, double *a) {
#pragma omp parallel for num_threads(ctx->threads)                                                 \
    schedule(static) if ((int64_t)M * K >= SN_PARALLEL_MIN)
  for (int m = 0; m < M; m++) {
    double s[GANC_DOT_LANES];
    for (int l = 0; l < GANC_DOT_LANES; l++)
      s[l] = ganc_dot_lane(w + (int64_t)m * K, u, K, l);
    a[m] = ganc_tree(s, GANC_DOT_LANES);
  }
}

void spectral_norm_forward_cpu(ganc_ctx *ctx, int M, int K, const float *w, float *u, float *v,
                               int iters, float eps, float *sigma, float *w_sn) {
  sn_check("spectral_norm_forward_cpu", M, K);
  if (iters < 0)
    ganc_die(GANC_EXIT_RUNTIME, "internal error in spectral_norm_forward_cpu: iters = %d", iters);
  const int64_t nchunk = ganc_row_chunks(M);
  // Scratch (doubles): part [nchunk, K], b [K], a [M].
  double *part = (double *)ganc_scratch(ctx, (size_t)((nchunk + 1) * K + M) *
                                                 (sizeof(double) / sizeof(float)));
  double *b = part + nchunk * K, *a = b + K;
  for (int it = 0; it < iters; it++) {
    sn_w_u(ctx, M, K, w, u, a);
    sn_normalize(a, M, eps, v);
    sn_wt_v(ctx, M, K, w, v, part, b);
    sn_normalize(b, K, eps, u);
  }
  if (iters == 0) sn_wt_v(ctx, M, K, w, v, part, b);
  // sigma = uᵀ (Wᵀ v) = vᵀ W u with the final float u and the Wᵀ v of the final float v.
  double s[GANC_LONG_LANES];
  for (int t = 0; t < GANC_LONG_LANES; t++)
    s[t] = ganc_long_lane_dot(u, b, K, t);
  const float sg = (float)long_total(s);
  *sigma = sg;
  const int64_t n = (int64_t)M * K;
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (n >= SN_PARALLEL_MIN)
  for (int64_t i = 0; i < n; i++)
    w_sn[i] = w[i] / sg;
}

// With w_sn = W / sigma and sigma = vᵀ W u (u, v constant), ∂sigma/∂W = v uᵀ, so
//   dW = dw_sn / sigma − (Σ dw_sn ⊙ W) / sigma² · v uᵀ = (dw_sn − (Σ dw_sn ⊙ w_sn) · v uᵀ) / sigma.
// Per element, in float and in this order: dw += (g − (s·v[m])·u[k]) / sigma, s = (float)Σ.
void spectral_norm_backward_cpu(ganc_ctx *ctx, int M, int K, const float *w_sn, const float *dw_sn,
                                const float *u, const float *v, const float *sigma, float *dw) {
  sn_check("spectral_norm_backward_cpu", M, K);
  const int64_t n = (int64_t)M * K, nchunk = ganc_flat_chunks(n);
  double *part = (double *)ganc_scratch(ctx, (size_t)nchunk * (sizeof(double) / sizeof(float)));
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (n >= SN_PARALLEL_MIN)
  for (int64_t ch = 0; ch < nchunk; ch++) {
    double s[GANC_LONG_LANES];
    for (int t = 0; t < GANC_LONG_LANES; t++)
      s[t] = ganc_flat_lane_dot(dw_sn, w_sn, n, ch, t);
    part[ch] = long_total(s);
  }
  double s[GANC_LONG_LANES];
  for (int t = 0; t < GANC_LONG_LANES; t++)
    s[t] = ganc_long_lane_sum(part, nchunk, t);
  const float sf = (float)long_total(s), sg = *sigma;
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (n >= SN_PARALLEL_MIN)
  for (int m = 0; m < M; m++)
    for (int k = 0; k < K; k++) {
      const int64_t i = (int64_t)m * K + k;
      dw[i] += (dw_sn[i] - sf * v[m] * u[k]) / sg;
    }
}
