// pixels.c — uint8 images to the network's [−1, 1] floats and back, on the CPU.
#include "ops/ops.h"

#include "core/check.h"  // ganc_die
#include "core/philox.h" // the step's draws

#include <math.h>
#include <stdint.h>

// Below this many elements a parallel region costs more than the loop.
#define PIXELS_PARALLEL_MIN 32768

// Each byte's float, v / 127.5 − 1 rounded once from double: 0 → −1 and 255 → 1 exactly.
static void pixel_table(float lut[256]) {
  for (int v = 0; v < 256; v++)
    lut[v] = (float)(v / 127.5 - 1.0);
}

void pixels_to_float_cpu(ganc_ctx *ctx, int N, int H, int W, int C, const uint8_t *src,
                         const uint8_t *flip, float *dst) {
  float lut[256];
  pixel_table(lut);
  const int64_t rows = (int64_t)N * H;
  const size_t row = (size_t)W * C;
#pragma omp parallel for num_threads(ctx->threads)                                                 \
    schedule(static) if (rows * (int64_t)row >= PIXELS_PARALLEL_MIN)
  for (int64_t nh = 0; nh < rows; nh++) {
    const uint8_t *s = src + (size_t)nh * row;
    float *d = dst + (size_t)nh * row;
    if (flip && flip[nh / H]) {
      for (int w = 0; w < W; w++) // mirror left-right: pixels reverse, channels keep their order
        for (int c = 0; c < C; c++)
          d[(size_t)w * C + c] = lut[s[(size_t)(W - 1 - w) * C + c]];
    } else {
      for (size_t i = 0; i < row; i++)
        d[i] = lut[s[i]];
    }
  }
}

// round((v + 1)·127.5) half away from zero, in double so that 0 gives exactly 127.5 → 128 and no
// float rounding of the product moves a value across a half.
// Written with !(t > 0) so NaN (and −inf) land on 0; +inf and anything above 1 clamp to 255.
void pixels_to_uint8_cpu(ganc_ctx *ctx, int64_t n, const float *src, uint8_t *dst) {
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (n >= PIXELS_PARALLEL_MIN)
  for (int64_t i = 0; i < n; i++) {
    const double t = ((double)src[i] + 1.0) * 127.5;
    dst[i] = !(t > 0.0) ? 0 : t >= 255.0 ? 255 : (uint8_t)round(t);
  }
}

void step_draws_cpu(ganc_ctx *ctx, const ganc_step_args *a, uint64_t seed, int N, int row0,
                    int z_dim, int mirror, int ncls, float *z, uint8_t *flip, int32_t *labels) {
  (void)ctx;
  if (N < 0 || z_dim < 1 || ncls < 0 || row0 < 0)
    ganc_die(GANC_EXIT_RUNTIME, "step_draws_cpu: N = %d, z_dim = %d, ncls = %d, row0 = %d", N,
             z_dim, ncls, row0);
  const uint64_t step = a->step, first = a->latent_first;
  for (int i = 0; i < N; i++) {
    ganc_latent(seed, first + (uint64_t)i, z_dim, z + (size_t)i * z_dim);
    const uint32_t col = (uint32_t)(row0 + i);
    flip[i] = mirror ? (uint8_t)(ganc_rng_u32(seed, GANC_RNG_FLIP, step, col) & 1u) : 0;
    if (ncls > 0)
      labels[i] = (int32_t)(ganc_rng_u32(seed, GANC_RNG_LABEL, step, col) % (uint32_t)ncls);
  }
}
