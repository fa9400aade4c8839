// adam.c — the optimizer step and the weight average, over a whole parameter block on the CPU.
#include "ops/ops.h"

#include "core/check.h" // ganc_die

#include <math.h>
#include <stdint.h>

// Below this many elements a parallel region costs more than the loop.
#define ADAM_PARALLEL_MIN 32768

// PyTorch's single-tensor Adam, term for term:
//   step = lr / (1 − b1^t);  denom = sqrt(v) / sqrt(1 − b2^t) + eps;  p −= step · m / denom.
// The bias corrections are computed in double: 1 − b2^t with b2 = 0.999 is 1e-3 at t = 1, where a
// float pow would already lose digits.
void adam_update_cpu(ganc_ctx *ctx, size_t n, float *p, const float *g, float *m, float *v,
                     float lr, float b1, float b2, float eps, int64_t t) {
  if (t < 1)
    ganc_die(GANC_EXIT_RUNTIME, "adam_update_cpu: step t = %lld, must be >= 1", (long long)t);
  const double bc1 = 1.0 - pow((double)b1, (double)t);
  const double bc2 = 1.0 - pow((double)b2, (double)t);
  const float step = (float)((double)lr / bc1);
  const float bc2_sqrt = (float)sqrt(bc2);
  const float c1 = 1.0f - b1, c2 = 1.0f - b2;
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (n >= ADAM_PARALLEL_MIN)
  for (size_t i = 0; i < n; i++) {
    const float gi = g[i];
    const float mi = b1 * m[i] + c1 * gi;
    const float vi = b2 * v[i] + c2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] -= step * mi / (sqrtf(vi) / bc2_sqrt + eps);
  }
}

void ema_update_cpu(ganc_ctx *ctx, size_t n, float *ema, const float *p, float beta) {
  const float c = 1.0f - beta;
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (n >= ADAM_PARALLEL_MIN)
  for (size_t i = 0; i < n; i++)
    ema[i] = beta * ema[i] + c * p[i];
}
