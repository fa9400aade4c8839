// adam.c — the optimizer step and the weight average, over a whole parameter block on the CPU.
#include "ops/ops.h"

#include "core/check.h"    // ganc_die
#include "ops/precision.h" // ganc_bf16_store

#include <math.h>
#include <stdint.h>

// Below this many elements a parallel region costs more than the loop.
#define ADAM_PARALLEL_MIN 32768

void ganc_adam_consts(float lr, float b1, float b2, float eps, int64_t t, float ema_beta,
                      float k[GANC_ADAM_K]) {
  if (t < 1) ganc_die(GANC_EXIT_RUNTIME, "adam: step t = %lld, must be >= 1", (long long)t);
  const double bc1 = 1.0 - pow((double)b1, (double)t);
  const double bc2 = 1.0 - pow((double)b2, (double)t);
  k[0] = b1;
  k[1] = b2;
  k[2] = 1.0f - b1;
  k[3] = 1.0f - b2;
  k[4] = (float)((double)lr / bc1);
  k[5] = (float)sqrt(bc2);
  k[6] = eps;
  k[7] = ema_beta;
}

// PyTorch's single-tensor Adam, term for term:
//   step = lr / (1 − b1^t);  denom = sqrt(v) / sqrt(1 − b2^t) + eps;  p −= step · m / denom;
// then the EMA of the new p when asked (ema_update's arithmetic).
void adam_update_cpu(ganc_ctx *ctx, size_t n, float *p, const float *g, float *m, float *v,
                     float *ema, uint16_t *ph, const float *k) {
  const float b1 = k[0], b2 = k[1], c1 = k[2], c2 = k[3], step = k[4], bc2_sqrt = k[5], eps = k[6];
  const float beta = k[7], cb = 1.0f - beta;
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (n >= ADAM_PARALLEL_MIN)
  for (size_t i = 0; i < n; i++) {
    const float gi = g[i];
    const float mi = b1 * m[i] + c1 * gi;
    const float vi = b2 * v[i] + c2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] -= step * mi / (sqrtf(vi) / bc2_sqrt + eps);
    if (ema) ema[i] = beta * ema[i] + cb * p[i];
    if (ph) ph[i] = ganc_bf16_store(p[i]);
  }
}

void ema_update_cpu(ganc_ctx *ctx, size_t n, float *ema, const float *p, float beta) {
  const float c = 1.0f - beta;
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (n >= ADAM_PARALLEL_MIN)
  for (size_t i = 0; i < n; i++)
    ema[i] = beta * ema[i] + c * p[i];
}
