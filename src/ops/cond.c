// cond.c — the class-conditional ops on the CPU: conditional batch norm's per-class affine and the
// projection discriminator's class term (Miyato & Koyama 2018). The CUDA twin is kernels/cond.cu;
// what each op computes is written in ops.def.
//
// Gradient rule (ops.h): dgamma, dbeta, dembed ACCUMULATE (+=); dx, dh OVERWRITE (=).
//
// Labels must lie in [0, ncls): the loader checks every label it reads, so a bad one here is a
// bug; this twin stops with an error (the CUDA kernels write NaN instead, ops.def).
//
// Bits: per-element products and sums are single float operations, the same as the kernels'.
// The parameter gradients are sums over a class's samples in double, in the order of
// ops/sum_order.h ("chunked rows", then "per class"), and embed_dot's sums are lane dots: the CUDA
// twin walks the same trees, so the two backends agree bit for bit.
#include "ops/ops.h"

#include "core/check.h"    // ganc_die
#include "ops/sum_order.h" // the trees

#include <stdint.h>
#include <string.h>

// Below this many elements a parallel region costs more than the loop.
#define COND_PARALLEL_MIN 32768

static void cond_check(const char *op, int N, int HW, int C, int ncls, const int32_t *labels) {
  if (N < 1 || HW < 1 || C < 1 || ncls < 1)
    ganc_die(GANC_EXIT_RUNTIME, "internal error in %s: N = %d, HW = %d, C = %d, ncls = %d", op, N,
             HW, C, ncls);
  for (int n = 0; n < N; n++)
    if (labels[n] < 0 || labels[n] >= ncls)
      ganc_die(GANC_EXIT_RUNTIME,
               "internal error in %s: label %d of sample %d is outside [0, %d)\n"
               "---> HINT: labels are checked when shards are read; please report this",
               op, (int)labels[n], n, ncls);
}

// ---- conditional affine -------------------------------------------------------------------------

void cond_affine_forward_cpu(ganc_ctx *ctx, int N, int HW, int C, int ncls, const float *x,
                             const int32_t *labels, const float *gamma, const float *beta,
                             float *y) {
  cond_check("cond_affine_forward_cpu", N, HW, C, ncls, labels);
  const int64_t rows = (int64_t)N * HW;
#pragma omp parallel for num_threads(ctx->threads)                                                 \
    schedule(static) if (rows * C >= COND_PARALLEL_MIN)
  for (int64_t r = 0; r < rows; r++) {
    const int64_t k = labels[r / HW];
    const float *g = gamma + k * C, *b = beta + k * C;
    for (int c = 0; c < C; c++)
      y[r * C + c] = x[r * C + c] * g[c] + b[c];
  }
}

// dx = dy · gamma[label]; per sample n and chunk j of its rows, the partials
//   pg [N, nchunk, C] = Σ dy·x,  pb [N, nchunk, C] = Σ dy    (rows in order, double)
// then at each class's first sample: dgamma[k] += Σ pg over the class (samples, then chunks, in
// order), dbeta likewise. dy is read before dx is written, element by element: dx may alias dy.
void cond_affine_backward_cpu(ganc_ctx *ctx, int N, int HW, int C, int ncls, const float *x,
                              const float *dy, const int32_t *labels, const float *gamma, float *dx,
                              float *dgamma, float *dbeta) {
  cond_check("cond_affine_backward_cpu", N, HW, C, ncls, labels);
  const int64_t nchunk = ganc_row_chunks(HW), np = (int64_t)N * nchunk * C;
  // Scratch (doubles): pg, pb, and one class's two running totals [C] each.
  double *pg =
      (double *)ganc_scratch(ctx, (size_t)(2 * np + 2 * C) * (sizeof(double) / sizeof(float)));
  double *pb = pg + np, *tg = pb + np, *tb = tg + C;
#pragma omp parallel for num_threads(ctx->threads)                                                 \
    schedule(static) if ((int64_t)N * HW * C >= COND_PARALLEL_MIN)
  for (int64_t nj = 0; nj < N * nchunk; nj++) {
    const int64_t n = nj / nchunk, j = nj % nchunk;
    const float *g = gamma + (int64_t)labels[n] * C;
    double *sg = pg + nj * C, *sb = pb + nj * C;
    memset(sg, 0, (size_t)C * sizeof(double));
    memset(sb, 0, (size_t)C * sizeof(double));
    const int64_t end = (j + 1) * GANC_CHUNK_ROWS < HW ? (j + 1) * GANC_CHUNK_ROWS : HW;
    for (int64_t r = j * GANC_CHUNK_ROWS; r < end; r++) {
      const int64_t i0 = (n * HW + r) * C;
      for (int c = 0; c < C; c++) {
        const float d = dy[i0 + c];
        sg[c] += (double)d * (double)x[i0 + c];
        sb[c] += (double)d;
        dx[i0 + c] = d * g[c];
      }
    }
  }
  // ganc_class_total for every channel at once, reading the partials in memory order.
  for (int n = 0; n < N; n++) {
    if (!ganc_class_head(labels, n)) continue;
    memset(tg, 0, 2 * (size_t)C * sizeof(double));
    for (int i = n; i < N; i++) {
      if (labels[i] != labels[n]) continue;
      for (int64_t j = 0; j < nchunk; j++)
        for (int c = 0; c < C; c++) {
          tg[c] += pg[((int64_t)i * nchunk + j) * C + c];
          tb[c] += pb[((int64_t)i * nchunk + j) * C + c];
        }
    }
    const int64_t k = labels[n];
    for (int c = 0; c < C; c++) {
      dgamma[k * C + c] += (float)tg[c];
      dbeta[k * C + c] += (float)tb[c];
    }
  }
}

// ---- projection head ----------------------------------------------------------------------------

void embed_dot_forward_cpu(ganc_ctx *ctx, int N, int C, int ncls, const float *h,
                           const int32_t *labels, const float *embed, float *y) {
  (void)ctx;
  cond_check("embed_dot_forward_cpu", N, 1, C, ncls, labels);
  for (int n = 0; n < N; n++) {
    double s[GANC_DOT_LANES];
    for (int l = 0; l < GANC_DOT_LANES; l++)
      s[l] = ganc_dot_lane(h + (int64_t)n * C, embed + (int64_t)labels[n] * C, C, l);
    y[n] = (float)ganc_tree(s, GANC_DOT_LANES);
  }
}

// dh = dy[n] · embed[label]; dembed[k] += Σ over class k of dy[n] · h[n] (in order of n, double).
// dh must not overlap h.
void embed_dot_backward_cpu(ganc_ctx *ctx, int N, int C, int ncls, const float *h, const float *dy,
                            const int32_t *labels, const float *embed, float *dh, float *dembed) {
  cond_check("embed_dot_backward_cpu", N, 1, C, ncls, labels);
  double *t = (double *)ganc_scratch(ctx, (size_t)C * (sizeof(double) / sizeof(float)));
  for (int n = 0; n < N; n++) {
    const int64_t k = labels[n];
    if (ganc_class_head(labels, n)) { // ganc_class_dot for every channel at once
      memset(t, 0, (size_t)C * sizeof(double));
      for (int i = n; i < N; i++)
        if (labels[i] == labels[n])
          for (int c = 0; c < C; c++)
            t[c] += (double)dy[i] * (double)h[(int64_t)i * C + c];
      for (int c = 0; c < C; c++)
        dembed[k * C + c] += (float)t[c];
    }
    for (int c = 0; c < C; c++)
      dh[(int64_t)n * C + c] = dy[n] * embed[k * C + c];
  }
}
