// norm.c — batch normalization on the CPU over x [M, C] (M = N·H·W rows, C channels fastest).
//
// Statistics are two-pass (mean, then the squared deviations from it) with double accumulators,
// so a channel whose mean is large next to its spread keeps its variance. Rows are summed in
// fixed blocks of BN_BLOCK_ROWS, one partial row of C doubles per block, and the partials are
// added in block order: the blocks do not depend on the thread count, so neither does any bit of
// the result. Per-element arithmetic is in double too; these loops are bound by memory, not
// arithmetic.
#include "ops/ops.h"

#include "ops/act_core.h"  // a fused activation: the activation ops' arithmetic
#include "ops/precision.h" // x and y stored in bf16, x rounded to bf16 as it is read

#include "core/check.h" // ganc_die
#include "core/comm.h"  // train.batchnorm = sync: the partials of every rank

#include <math.h>
#include <stdint.h>
#include <string.h>

enum { BN_BLOCK_ROWS = 256 };

static void bn_check(int64_t M, int C, int x_mode, const char *op) {
  if (M < 1 || C < 1)
    ganc_die(GANC_EXIT_RUNTIME, "%s: empty input (M = %lld, C = %d)", op, (long long)M, C);
  if (x_mode < GANC_X_FP32 || x_mode > GANC_X_ROUND)
    ganc_die(GANC_EXIT_RUNTIME, "%s: x_mode %d is none of GANC_X_*", op, x_mode);
}
// y over x: element i is read before it is written, so only when both are FP32.
static void bn_check_alias(const void *x, int x_mode, const void *y, int y_bf16, const char *op) {
  if (y == x && (y_bf16 || x_mode == GANC_X_BF16))
    ganc_die(GANC_EXIT_RUNTIME, "%s: y in x's buffer needs both in FP32", op);
}

// Scratch for `nblk` partial rows plus `extra` rows of C doubles (double-aligned: scratch is
// 64-byte aligned).
static double *bn_scratch(ganc_ctx *ctx, int64_t nblk, int extra, int C) {
  size_t doubles = ((size_t)nblk + (size_t)extra) * (size_t)C;
  return (double *)ganc_scratch(ctx, doubles * (sizeof(double) / sizeof(float)));
}

// train.batchnorm = sync (core/comm.h): every rank's block partials summed elementwise (the ranks'
// batches have the same shape, so the same blocks); returns the rows of all ranks. Without it, M.
static int64_t bn_sync_partials(ganc_ctx *ctx, double *part, size_t n, int64_t M) {
  if (!ganc_bn_synced(ctx)) return M;
  ganc_comm_sum(ctx->comm, ctx, part, n, 1);
  return M * ctx->comm->size;
}

// out[c] = Σ over blocks of part[b·C + c], in block order.
static void bn_combine(const double *part, int64_t nblk, int C, double *out) {
  memset(out, 0, (size_t)C * sizeof(double));
  for (int64_t b = 0; b < nblk; b++)
    for (int c = 0; c < C; c++)
      out[c] += part[b * C + c];
}

// sx [C], sq [C] = Σ over stats' slots of Σ x and Σ x², in slot order.
static void bn_slot_combine(const ganc_bn_part *stats, int C, double *sx, double *sq) {
  if (stats->nslot < 1 || stats->nslot > stats->cap)
    ganc_die(GANC_EXIT_RUNTIME,
             "internal error: batch-norm slot statistics with %lld slots of %lld",
             (long long)stats->nslot, (long long)stats->cap);
  memset(sx, 0, (size_t)C * sizeof(double));
  memset(sq, 0, (size_t)C * sizeof(double));
  for (int64_t b = 0; b < stats->nslot; b++)
    for (int c = 0; c < C; c++) {
      sx[c] += stats->part[2 * b * C + c];
      sq[c] += stats->part[(2 * b + 1) * C + c];
    }
}

void batchnorm_slot_stats_cpu(ganc_ctx *ctx, int64_t M, int C, const void *x, int x_mode,
                              ganc_bn_part *stats) {
  bn_check(M, C, x_mode, "batchnorm_slot_stats_cpu");
  const int64_t nslot = (M + GANC_BN_SLOT_ROWS - 1) / GANC_BN_SLOT_ROWS;
  if (nslot > stats->cap)
    ganc_die(GANC_EXIT_RUNTIME, "internal error: %lld batch-norm slots, room for %lld",
             (long long)nslot, (long long)stats->cap);
#pragma omp parallel for num_threads(ctx->threads) schedule(static)
  for (int64_t b = 0; b < nslot; b++) {
    double *sx = stats->part + 2 * b * C, *sq = sx + C;
    memset(sx, 0, 2 * (size_t)C * sizeof(double));
    const int64_t end = (b + 1) * GANC_BN_SLOT_ROWS < M ? (b + 1) * GANC_BN_SLOT_ROWS : M;
    for (int64_t i = b * GANC_BN_SLOT_ROWS; i < end; i++)
      for (int c = 0; c < C; c++) {
        const double v = ganc_load_x(x, x_mode, i * C + c);
        sx[c] += v;
        sq[c] += v * v;
      }
  }
  stats->nslot = nslot;
}

int64_t ganc_bn_part_slots(int64_t M) { return (M + 63) / 64 + 64; }

// The training forward's normalisation (and batchnorm_reapply's: one expression, so its bits).
static void bn_normalize(ganc_ctx *ctx, int64_t M, int C, const void *x, int x_mode,
                         const double *mu, const double *rs, const float *gamma, const float *beta,
                         int act, float slope, void *y, int y_bf16) {
#pragma omp parallel for num_threads(ctx->threads) schedule(static)
  for (int64_t i = 0; i < M; i++)
    for (int c = 0; c < C; c++)
      ganc_store_as(
          y, y_bf16, i * C + c,
          ganc_act(
              act, slope,
              (float)((ganc_load_x(x, x_mode, i * C + c) - mu[c]) * rs[c] * gamma[c] + beta[c])));
}

// mu [C] = the mean, ss [C] = Σ (x − mean)²: the two passes over x in blocks, the partials of
// every rank under train.batchnorm = sync; returns the rows they are over (all ranks' then).
static int64_t bn_two_pass(ganc_ctx *ctx, int64_t M, int C, const void *x, int x_mode, int64_t nblk,
                           double *part, double *mu, double *ss) {
  // Pass 1: the mean.
#pragma omp parallel for num_threads(ctx->threads) schedule(static)
  for (int64_t b = 0; b < nblk; b++) {
    double *acc = part + b * C;
    memset(acc, 0, (size_t)C * sizeof(double));
    const int64_t end = (b + 1) * BN_BLOCK_ROWS < M ? (b + 1) * BN_BLOCK_ROWS : M;
    for (int64_t i = b * BN_BLOCK_ROWS; i < end; i++)
      for (int c = 0; c < C; c++)
        acc[c] += ganc_load_x(x, x_mode, i * C + c);
  }
  const int64_t Mg = bn_sync_partials(ctx, part, (size_t)(nblk * C), M); // all ranks' rows
  bn_combine(part, nblk, C, mu);
  for (int c = 0; c < C; c++)
    mu[c] /= (double)Mg;

    // Pass 2: the biased variance, from deviations to the exact mean.
#pragma omp parallel for num_threads(ctx->threads) schedule(static)
  for (int64_t b = 0; b < nblk; b++) {
    double *acc = part + b * C;
    memset(acc, 0, (size_t)C * sizeof(double));
    const int64_t end = (b + 1) * BN_BLOCK_ROWS < M ? (b + 1) * BN_BLOCK_ROWS : M;
    for (int64_t i = b * BN_BLOCK_ROWS; i < end; i++)
      for (int c = 0; c < C; c++) {
        double d = ganc_load_x(x, x_mode, i * C + c) - mu[c];
        acc[c] += d * d;
      }
  }
  bn_sync_partials(ctx, part, (size_t)(nblk * C), M);
  bn_combine(part, nblk, C, ss);
  return Mg;
}

void batchnorm_forward_train_cpu(ganc_ctx *ctx, int64_t M, int C, const void *x, int x_mode,
                                 const float *gamma, const float *beta, float eps, float momentum,
                                 int act, float slope, void *y, int y_bf16, float *mean,
                                 float *rstd, float *run_mean, float *run_var, double *keep,
                                 const ganc_bn_part *stats) {
  bn_check(M, C, x_mode, "batchnorm_forward_train_cpu");
  bn_check_alias(x, x_mode, y, y_bf16, "batchnorm_forward_train_cpu");
  // As PyTorch: one value per channel has no variance to normalize by (and no unbiased one).
  if (M < 2)
    ganc_die(GANC_EXIT_USAGE,
             "batch norm in training needs more than one value per channel (M = %lld)\n"
             "---> HINT: use a batch size above 1",
             (long long)M);
  if (stats && ganc_bn_synced(ctx))
    ganc_die(GANC_EXIT_RUNTIME, "internal error: batch-norm slot statistics under sync batch norm");
  const int64_t nblk = stats ? 0 : (M + BN_BLOCK_ROWS - 1) / BN_BLOCK_ROWS;
  double *part = bn_scratch(ctx, nblk, 3, C);
  double *mu = part + nblk * C, *ss = mu + C, *rs = ss + C; // mean, Σ (x − mean)², rstd
  int64_t Mg = M;
  if (stats) { // the slots' Σ x and Σ x², in slot order: Σ (x − mean)² = Σ x² − mean·Σ x
    bn_slot_combine(stats, C, mu, ss);
    for (int c = 0; c < C; c++) {
      const double sx = mu[c];
      mu[c] = sx / (double)M;
      ss[c] = ss[c] - mu[c] * sx;
      if (!(ss[c] > 0.0)) ss[c] = 0.0; // the cancellation's rounding, never a negative variance
    }
  } else {
    Mg = bn_two_pass(ctx, M, C, x, x_mode, nblk, part, mu, ss);
  }
  for (int c = 0; c < C; c++) {
    double v = ss[c] / (double)Mg;
    if (run_mean) run_mean[c] = (float)((1.0 - momentum) * run_mean[c] + momentum * mu[c]);
    if (run_var) {
      double unbiased = v * (double)Mg / (double)(Mg - 1);
      run_var[c] = (float)((1.0 - momentum) * run_var[c] + momentum * unbiased);
    }
    rs[c] = 1.0 / sqrt(v + eps);
    mean[c] = (float)mu[c];
    rstd[c] = (float)rs[c];
    if (keep) keep[c] = mu[c], keep[C + c] = rs[c];
  }
  bn_normalize(ctx, M, C, x, x_mode, mu, rs, gamma, beta, act, slope, y, y_bf16);
}

void batchnorm_reapply_cpu(ganc_ctx *ctx, int64_t M, int C, const void *x, int x_mode,
                           const float *gamma, const float *beta, const double *keep, int act,
                           float slope, void *y, int y_bf16) {
  bn_check(M, C, x_mode, "batchnorm_reapply_cpu");
  bn_check_alias(x, x_mode, y, y_bf16, "batchnorm_reapply_cpu");
  bn_normalize(ctx, M, C, x, x_mode, keep, keep + C, gamma, beta, act, slope, y, y_bf16);
}

void batchnorm_forward_eval_cpu(ganc_ctx *ctx, int64_t M, int C, const void *x, int x_mode,
                                const float *gamma, const float *beta, const float *run_mean,
                                const float *run_var, float eps, int act, float slope, void *y,
                                int y_bf16) {
  bn_check(M, C, x_mode, "batchnorm_forward_eval_cpu");
  bn_check_alias(x, x_mode, y, y_bf16, "batchnorm_forward_eval_cpu");
  double *scale = bn_scratch(ctx, 0, 1, C);
  for (int c = 0; c < C; c++)
    scale[c] = gamma[c] / sqrt((double)run_var[c] + eps);
#pragma omp parallel for num_threads(ctx->threads) schedule(static)
  for (int64_t i = 0; i < M; i++)
    for (int c = 0; c < C; c++)
      ganc_store_as(
          y, y_bf16, i * C + c,
          ganc_act(act, slope,
                   (float)(((double)ganc_load_x(x, x_mode, i * C + c) - run_mean[c]) * scale[c] +
                           beta[c])));
}

// With x̂ = (x − mean)·rstd and y = gamma·x̂ + beta:
//   dbeta = Σ dy,  dgamma = Σ dy·x̂,  dx = gamma·rstd·(dy − mean(dy) − x̂·mean(dy·x̂)).
void batchnorm_backward_cpu(ganc_ctx *ctx, int64_t M, int C, const void *x, int x_mode,
                            const void *dy, int dy_mode, const float *gamma, const float *mean,
                            const float *rstd, void *dx, int dx_bf16, float *dgamma, float *dbeta) {
  bn_check(M, C, x_mode, "batchnorm_backward_cpu");
  bn_check(M, C, dy_mode, "batchnorm_backward_cpu");
  if (dy_mode == GANC_X_BF16 && dx == dy)
    ganc_die(GANC_EXIT_RUNTIME, "batchnorm_backward_cpu: dx cannot be the buffer of dy's halves");
  if (dx_bf16 && (dx == (const void *)x || dx == (const void *)dy))
    ganc_die(GANC_EXIT_RUNTIME, "batchnorm_backward_cpu: dx in bf16 cannot be x's or dy's buffer");
  if (x_mode == GANC_X_BF16 && dx == x)
    ganc_die(GANC_EXIT_RUNTIME, "batchnorm_backward_cpu: dx cannot be the buffer of x's halves");
  const int64_t nblk = (M + BN_BLOCK_ROWS - 1) / BN_BLOCK_ROWS;
  // Partials interleaved per block: [Σ dy (C) | Σ dy·(x − mean) (C)], then the two totals.
  double *part = bn_scratch(ctx, 2 * nblk, 2, C);
  double *sdy = part + 2 * nblk * C, *sdyx = sdy + C;

#pragma omp parallel for num_threads(ctx->threads) schedule(static)
  for (int64_t b = 0; b < nblk; b++) {
    double *a = part + 2 * b * C, *bx = a + C;
    memset(a, 0, 2 * (size_t)C * sizeof(double));
    const int64_t end = (b + 1) * BN_BLOCK_ROWS < M ? (b + 1) * BN_BLOCK_ROWS : M;
    for (int64_t i = b * BN_BLOCK_ROWS; i < end; i++)
      for (int c = 0; c < C; c++) {
        double g = ganc_load_x(dy, dy_mode, i * C + c);
        a[c] += g;
        bx[c] += g * ((double)ganc_load_x(x, x_mode, i * C + c) - mean[c]);
      }
  }
  // dgamma, dbeta: this rank's own sums, even under train.batchnorm = sync — the trainer sums every
  // parameter gradient over the ranks afterwards, so a synced sum here would count N times.
  // dx: the whole global batch's sums (it is the gradient through the global statistics).
  for (int pass = 0; pass < 2; pass++) {
    int64_t Mg = M;
    if (pass == 1) {
      if (!ganc_bn_synced(ctx)) break; // the sums are already all
      Mg = bn_sync_partials(ctx, part, (size_t)(2 * nblk * C), M);
    }
    memset(sdy, 0, 2 * (size_t)C * sizeof(double));
    for (int64_t b = 0; b < nblk; b++)
      for (int c = 0; c < 2 * C; c++)
        sdy[c] += part[2 * b * C + c];
    for (int c = 0; c < C; c++) {
      sdyx[c] *= rstd[c]; // Σ dy·x̂
      if (pass == 0) {
        dgamma[c] += (float)sdyx[c];
        dbeta[c] += (float)sdy[c];
      }
      sdy[c] /= (double)Mg; // the means of dx's formula
      sdyx[c] /= (double)Mg;
    }
  }

#pragma omp parallel for num_threads(ctx->threads) schedule(static)
  for (int64_t i = 0; i < M; i++)
    for (int c = 0; c < C; c++) {
      double xh = ((double)ganc_load_x(x, x_mode, i * C + c) - mean[c]) * rstd[c];
      double g = ganc_load_x(dy, dy_mode, i * C + c) - sdy[c] - xh * sdyx[c];
      ganc_store_as(dx, dx_bf16, i * C + c, (float)((double)gamma[c] * rstd[c] * g));
    }
}
