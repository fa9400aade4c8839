// augment.c — DiffAugment's colour, translation and cutout (Zhao et al. 2020), ADA's x-flip and
// rotate90 blit and ADA's controller of their probability p (Karras et al. 2020) on the CPU;
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
                  uint64_t seed, uint64_t counter, int n0, const float *prob, int bright) {
  const int64_t HW = (int64_t)H * W, per = HW * C;
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (N * per >= AUG_PARALLEL_MIN)
  for (int n = 0; n < N; n++) {
    const float *a = in + n * per;
    float *o = out + n * per;
    const ganc_aug_color p = ganc_aug_color_draw(seed, counter, n0 + n, prob);
    if (!p.on) { // not applied to this image: a copy
      memcpy(o, a, (size_t)per * sizeof(float));
      continue;
    }
    // The lanes of ganc_aug_lane_sum, each adding its elements in the same order, but walked
    // row by row of 256 elements so that the CPU reads memory in order (and vectorizes).
    double lanes[GANC_LONG_LANES] = {0};
    for (int64_t i0 = 0; i0 < per; i0 += GANC_LONG_LANES) {
      const int m = per - i0 < GANC_LONG_LANES ? (int)(per - i0) : GANC_LONG_LANES;
      for (int t = 0; t < m; t++)
        lanes[t] += (double)a[i0 + t];
    }
    const double M = ganc_tree(lanes, GANC_LONG_LANES) / (double)per;
    const double b = bright ? p.b : 0.0;
    for (int64_t q = 0; q < HW; q++)
      ganc_aug_color_pixel(a + q * C, o + q * C, C, M, p.s, p.c, b);
  }
}

void augment_color_forward_cpu(ganc_ctx *ctx, int N, int H, int W, int C, const float *x, float *y,
                               uint64_t seed, const uint64_t *counter, int n0, const float *p) {
  aug_check("augment_color_forward_cpu", N, H, W, C, 0.0f, x, y);
  color(ctx, N, H, W, C, x, y, seed, *counter, n0, p, 1);
}

void augment_color_backward_cpu(ganc_ctx *ctx, int N, int H, int W, int C, const float *dy,
                                float *dx, uint64_t seed, const uint64_t *counter, int n0,
                                const float *p) {
  aug_check("augment_color_backward_cpu", N, H, W, C, 0.0f, dy, dx);
  color(ctx, N, H, W, C, dy, dx, seed, *counter, n0, p, 0);
}

// ---- translation --------------------------------------------------------------------------------

// out[n, i, j] = in[n, i + sign·di, j + sign·dj], 0 outside: the forward (sign +1) and its
// adjoint, the opposite shift (sign −1).
static void shift(ganc_ctx *ctx, int N, int H, int W, int C, float ratio, const float *in,
                  float *out, uint64_t seed, uint64_t counter, int n0, const float *prob,
                  int sign) {
  const int64_t row = (int64_t)W * C, per = H * row;
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (N * per >= AUG_PARALLEL_MIN)
  for (int n = 0; n < N; n++) {
    const ganc_aug_shift d = ganc_aug_shift_draw(seed, counter, n0 + n, H, W, ratio, prob);
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
                                     const uint64_t *counter, int n0, const float *p) {
  aug_check("augment_translation_forward_cpu", N, H, W, C, ratio, x, y);
  shift(ctx, N, H, W, C, ratio, x, y, seed, *counter, n0, p, 1);
}

void augment_translation_backward_cpu(ganc_ctx *ctx, int N, int H, int W, int C, float ratio,
                                      const float *dy, float *dx, uint64_t seed,
                                      const uint64_t *counter, int n0, const float *p) {
  aug_check("augment_translation_backward_cpu", N, H, W, C, ratio, dy, dx);
  shift(ctx, N, H, W, C, ratio, dy, dx, seed, *counter, n0, p, -1);
}

// ---- cutout -------------------------------------------------------------------------------------

// out = in, times 0 inside the window (the reference's x · mask: a NaN there stays NaN, a
// negative value gives −0). Its own adjoint, so forward and backward alike.
static void cutout(ganc_ctx *ctx, int N, int H, int W, int C, float ratio, const float *in,
                   float *out, uint64_t seed, uint64_t counter, int n0, const float *prob) {
  const int64_t row = (int64_t)W * C, per = H * row;
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (N * per >= AUG_PARALLEL_MIN)
  for (int n = 0; n < N; n++) {
    const ganc_aug_window w = ganc_aug_window_draw(seed, counter, n0 + n, H, W, ratio, prob);
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
                                int n0, const float *p) {
  aug_check("augment_cutout_forward_cpu", N, H, W, C, ratio, x, y);
  cutout(ctx, N, H, W, C, ratio, x, y, seed, *counter, n0, p);
}

void augment_cutout_backward_cpu(ganc_ctx *ctx, int N, int H, int W, int C, float ratio,
                                 const float *dy, float *dx, uint64_t seed, const uint64_t *counter,
                                 int n0, const float *p) {
  aug_check("augment_cutout_backward_cpu", N, H, W, C, ratio, dy, dx);
  cutout(ctx, N, H, W, C, ratio, dy, dx, seed, *counter, n0, p);
}

// ---- blit (ADA's x-flip and rotate90) -----------------------------------------------------------

// out[n, i, j] = in[n, s(i, j)] with s the forward's or the backward's gather (augment_core.h).
static void blit(ganc_ctx *ctx, int N, int H, int W, int C, int modes, const float *in, float *out,
                 uint64_t seed, uint64_t counter, int n0, const float *prob, int backward) {
  const int64_t per = (int64_t)H * W * C;
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (N * per >= AUG_PARALLEL_MIN)
  for (int n = 0; n < N; n++) {
    const ganc_aug_blit b = ganc_aug_blit_draw(seed, counter, n0 + n, modes, prob);
    const float *a = in + n * per;
    float *o = out + n * per;
    if (!b.flip && !b.rot) {
      memcpy(o, a, (size_t)per * sizeof(float));
      continue;
    }
    for (int i = 0; i < H; i++)
      for (int j = 0; j < W; j++) {
        int si, sj;
        ganc_aug_blit_src(i, j, H, W, b, backward, &si, &sj);
        memcpy(o + ((int64_t)i * W + j) * C, a + ((int64_t)si * W + sj) * C,
               (size_t)C * sizeof(float));
      }
  }
}

static void blit_check(const char *op, int N, int H, int W, int C, int modes, const float *in,
                       const float *out) {
  char buf[200];
  const char *why = ganc_aug_blit_invalid(N, H, W, C, modes, in, out, buf, sizeof buf);
  if (why) ganc_die(GANC_EXIT_RUNTIME, "internal error in %s: %s", op, why);
}

void augment_blit_forward_cpu(ganc_ctx *ctx, int N, int H, int W, int C, int modes, const float *x,
                              float *y, uint64_t seed, const uint64_t *counter, int n0,
                              const float *p) {
  blit_check("augment_blit_forward_cpu", N, H, W, C, modes, x, y);
  blit(ctx, N, H, W, C, modes, x, y, seed, *counter, n0, p, 0);
}

void augment_blit_backward_cpu(ganc_ctx *ctx, int N, int H, int W, int C, int modes,
                               const float *dy, float *dx, uint64_t seed, const uint64_t *counter,
                               int n0, const float *p) {
  blit_check("augment_blit_backward_cpu", N, H, W, C, modes, dy, dx);
  blit(ctx, N, H, W, C, modes, dy, dx, seed, *counter, n0, p, 1);
}

// ---- ADA's controller ---------------------------------------------------------------------------

void ada_sum_cpu(ganc_ctx *ctx, int n, const float *fake, double *fsum) {
  (void)ctx;
  if (n < 1) ganc_die(GANC_EXIT_RUNTIME, "internal error in ada_sum_cpu: n = %d", n);
  fsum[0] = ganc_ada_sum(n, fake);
  fsum[1] = (double)n;
}

void ada_signs_cpu(ganc_ctx *ctx, int n, const float *real, const double *fsum, double *out) {
  (void)ctx;
  if (n < 1) ganc_die(GANC_EXIT_RUNTIME, "internal error in ada_signs_cpu: n = %d", n);
  const double m = fsum[0] / fsum[1];
  int64_t s = 0;
  for (int i = 0; i < n; i++)
    s += ganc_ada_sign(real[i], m);
  out[0] = (double)s;
  out[1] = (double)n;
}

void ada_adjust_cpu(ganc_ctx *ctx, const double *out, double *state, float *p, float target,
                    double per_image, double interval) {
  (void)ctx;
  char buf[200];
  const char *why = ganc_ada_invalid(target, per_image, interval, buf, sizeof buf);
  if (why) ganc_die(GANC_EXIT_RUNTIME, "internal error in ada_adjust_cpu: %s", why);
  ganc_ada_adjust(out, state, p, target, per_image, interval);
}
