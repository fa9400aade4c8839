// augment.c — DiffAugment's colour, translation and cutout (Zhao et al. 2020) on the CPU;
// images [N, H, W, C] (C fastest). The CUDA twins are kernels/augment.cu. The draws (Philox,
// keyed by seed and a call counter, per image and transform) and the colour arithmetic live once
// in ops/augment_core.h, which says what each op computes and how its numbers are drawn.
//
// Gradient rule (ops.h): every gradient here is an activation gradient and OVERWRITES. Each op is
// linear in its input for fixed draws (colour: affine); its backward is the adjoint of that
// linear map with the forward's draws (same seed and counter), and needs no saved activations.
// Inputs and outputs must not overlap (a checked error).
//
// Bits: translation and cutout are copies and multiplications by 0 or 1 (exact); the colour is
// one double expression per element rounded once, over the image sum in the fixed order of
// augment_core.h. Each image is computed by one thread, in the same order at any thread count,
// and the CUDA twin matches it bit for bit.
#include "ops/ops.h"

#include "core/check.h"       // ganc_die
#include "ops/augment_core.h" // the draws, the colour arithmetic, the argument checks

#include <stdint.h>
#include <string.h>

// Below this many elements a parallel region costs more than the loop.
#define AUG_PARALLEL_MIN 32768

static void aug_check(const char *op, int N, int H, int W, int C, float ratio, const float *in,
                      const float *out) {
  char buf[200];
  const char *why = ganc_aug_invalid(N, H, W, C, ratio, in, out, buf, sizeof buf);
  if (why) ganc_die(GANC_EXIT_RUNTIME, "internal error in %s: %s", op, why);
}

// ---- colour -------------------------------------------------------------------------------------

// out = the colour transform of in (bright: forward, with the brightness offset) or its adjoint
// (!bright: backward, in = dy).
static void color(ganc_ctx *ctx, int N, int H, int W, int C, const float *in, float *out,
                  uint64_t seed, uint64_t counter, int n0, int bright) {
  const int64_t HW = (int64_t)H * W, per = HW * C;
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (N * per >= AUG_PARALLEL_MIN)
  for (int n = 0; n < N; n++) {
    const float *a = in + n * per;
    float *o = out + n * per;
    // The lanes of ganc_aug_lane_sum, each adding its elements in the same order, but walked
    // row by row of 256 elements so that the CPU reads memory in order (and vectorizes).
    double lanes[GANC_LONG_LANES] = {0};
    for (int64_t i0 = 0; i0 < per; i0 += GANC_LONG_LANES) {
      const int m = per - i0 < GANC_LONG_LANES ? (int)(per - i0) : GANC_LONG_LANES;
      for (int t = 0; t < m; t++)
        lanes[t] += (double)a[i0 + t];
    }
    const double M = ganc_tree(lanes, GANC_LONG_LANES) / (double)per;
    const ganc_aug_color p = ganc_aug_color_draw(seed, counter, n0 + n);
    const double b = bright ? p.b : 0.0;
    for (int64_t q = 0; q < HW; q++)
      ganc_aug_color_pixel(a + q * C, o + q * C, C, M, p.s, p.c, b);
  }
}

void augment_color_forward_cpu(ganc_ctx *ctx, int N, int H, int W, int C, const float *x, float *y,
                               uint64_t seed, const uint64_t *counter, int n0) {
  aug_check("augment_color_forward_cpu", N, H, W, C, 0.0f, x, y);
  color(ctx, N, H, W, C, x, y, seed, *counter, n0, 1);
}

void augment_color_backward_cpu(ganc_ctx *ctx, int N, int H, int W, int C, const float *dy,
                                float *dx, uint64_t seed, const uint64_t *counter, int n0) {
  aug_check("augment_color_backward_cpu", N, H, W, C, 0.0f, dy, dx);
  color(ctx, N, H, W, C, dy, dx, seed, *counter, n0, 0);
}

// ---- translation --------------------------------------------------------------------------------

// out[n, i, j] = in[n, i + sign·di, j + sign·dj], 0 outside: the forward (sign +1) and its
// adjoint, the opposite shift (sign −1).
static void shift(ganc_ctx *ctx, int N, int H, int W, int C, float ratio, const float *in,
                  float *out, uint64_t seed, uint64_t counter, int n0, int sign) {
  const int64_t row = (int64_t)W * C, per = H * row;
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (N * per >= AUG_PARALLEL_MIN)
  for (int n = 0; n < N; n++) {
    const ganc_aug_shift d = ganc_aug_shift_draw(seed, counter, n0 + n, H, W, ratio);
    const int di = sign * d.di, dj = sign * d.dj;
    // The columns j whose source j + dj is inside: [j0, j1) (empty when |dj| >= W).
    int j0 = dj < 0 ? -dj : 0, j1 = dj > 0 ? W - dj : W;
    if (j0 > W) j0 = W;
    if (j1 < j0) j1 = j0;
    for (int i = 0; i < H; i++) {
      float *o = out + n * per + i * row;
      const int si = i + di;
      if (si < 0 || si >= H || j0 == j1) {
        memset(o, 0, (size_t)row * sizeof(float));
        continue;
      }
      const float *a = in + n * per + si * row + (int64_t)(j0 + dj) * C; // source of column j0
      memset(o, 0, (size_t)j0 * C * sizeof(float));
      memcpy(o + (int64_t)j0 * C, a, (size_t)(j1 - j0) * C * sizeof(float));
      memset(o + (int64_t)j1 * C, 0, (size_t)(W - j1) * C * sizeof(float));
    }
  }
}

void augment_translation_forward_cpu(ganc_ctx *ctx, int N, int H, int W, int C, float ratio,
                                     const float *x, float *y, uint64_t seed,
                                     const uint64_t *counter, int n0) {
  aug_check("augment_translation_forward_cpu", N, H, W, C, ratio, x, y);
  shift(ctx, N, H, W, C, ratio, x, y, seed, *counter, n0, 1);
}

void augment_translation_backward_cpu(ganc_ctx *ctx, int N, int H, int W, int C, float ratio,
                                      const float *dy, float *dx, uint64_t seed,
                                      const uint64_t *counter, int n0) {
  aug_check("augment_translation_backward_cpu", N, H, W, C, ratio, dy, dx);
  shift(ctx, N, H, W, C, ratio, dy, dx, seed, *counter, n0, -1);
}

// ---- cutout -------------------------------------------------------------------------------------

// out = in, times 0 inside the window (the reference's x · mask: a NaN there stays NaN, a
// negative value gives −0). Its own adjoint, so forward and backward alike.
static void cutout(ganc_ctx *ctx, int N, int H, int W, int C, float ratio, const float *in,
                   float *out, uint64_t seed, uint64_t counter, int n0) {
  const int64_t row = (int64_t)W * C, per = H * row;
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (N * per >= AUG_PARALLEL_MIN)
  for (int n = 0; n < N; n++) {
    const ganc_aug_window w = ganc_aug_window_draw(seed, counter, n0 + n, H, W, ratio);
    const float *a = in + n * per;
    float *o = out + n * per;
    memcpy(o, a, (size_t)per * sizeof(float));
    for (int i = w.i0; i < w.i1; i++)
      for (int64_t k = i * row + (int64_t)w.j0 * C; k < i * row + (int64_t)w.j1 * C; k++)
        o[k] = a[k] * 0.0f;
  }
}

void augment_cutout_forward_cpu(ganc_ctx *ctx, int N, int H, int W, int C, float ratio,
                                const float *x, float *y, uint64_t seed, const uint64_t *counter,
                                int n0) {
  aug_check("augment_cutout_forward_cpu", N, H, W, C, ratio, x, y);
  cutout(ctx, N, H, W, C, ratio, x, y, seed, *counter, n0);
}

void augment_cutout_backward_cpu(ganc_ctx *ctx, int N, int H, int W, int C, float ratio,
                                 const float *dy, float *dx, uint64_t seed, const uint64_t *counter,
                                 int n0) {
  aug_check("augment_cutout_backward_cpu", N, H, W, C, ratio, dy, dx);
  cutout(ctx, N, H, W, C, ratio, dy, dx, seed, *counter, n0);
}
