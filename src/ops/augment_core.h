// augment_core.h — DiffAugment's random draws and arithmetic (Zhao et al. 2020, "Differentiable
// Augmentation for Data-Efficient GAN Training", policy "color,translation,cutout"), written once
// for both compilers (the philox_core.h way): the CPU twins (src/ops/augment.c) and the CUDA
// kernels (kernels/augment.cu) call these functions, so that both draw the same numbers and
// compute the same bits by construction.
//
// Randomness: every number is Philox4x32-10 (core/philox_core.h) keyed by `seed`, in stream
// GANC_RNG_AUGMENT (core/philox.h), row = `counter` (the caller's 64-bit count of augmentation
// calls), column = 16·n + 4·t + w: image n of the call, transform t (GANC_AUG_COLOR,
// _TRANSLATION, _CUTOUT), word w of the transform's Philox block. So word w of transform t of
// image n is ganc_rng_u32(seed, GANC_RNG_AUGMENT, counter, 16·n + 4·t + w) of core/philox.c (the
// tests check that), a forward and its backward called with the same (seed, counter) use the same
// draws, a resume that restores the counter is bit-exact, and images and transforms never share a
// number. Two calls that must differ (reals and fakes, D step and G step) take different counters.
//
//   transform     word 0                      word 1                     word 2
//   colour        brightness b = r − 0.5      saturation s = 2r          contrast c = r + 0.5
//   translation   row shift of [−sh, sh]      column shift of [−sw, sw]
//   cutout        row offset of [0, H + 1 −   column offset of [0, W + 1 −
//                 ch % 2)                     cw % 2)
// with r = U[0, 1) of 24 bits (exact in float), sh = int(H·ratio + 0.5), sw likewise from W (the
// reference's int(size·ratio + 0.5)), ch, cw the cutout's sides the same way. An integer in
// [0, k) is the high word of u·k: off from uniform by less than k / 2^32 (k <= 2·size + 1).
#ifndef GANC_AUGMENT_CORE_H
#define GANC_AUGMENT_CORE_H

#include "core/philox.h"      // GANC_RNG_AUGMENT
#include "core/philox_core.h" // ganc_philox_rounds
#include "ops/sum_order.h"    // ganc_dmul, GANC_LONG_LANES, the halving tree

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum {
  GANC_AUG_COLOR = 0, // the transforms' Philox blocks (t above)
  GANC_AUG_TRANSLATION = 1,
  GANC_AUG_CUTOUT = 2,
  GANC_AUG_MAX_IMAGES = 1 << 28, // 16·n must fit the 32-bit column
};

// ---- draws ------------------------------------------------------------------------------------

// Transform t's block of image n: o[w] = word w (= ganc_rng_u32 at column 16·n + 4·t + w).
GANC_HD static inline void ganc_aug_words(uint64_t seed, uint64_t counter, int n, int t,
                                          uint32_t o[4]) {
  o[0] = 4u * (uint32_t)n + (uint32_t)t; // block = column / 4, as core/philox.c counts them
  o[1] = (uint32_t)counter;
  o[2] = (uint32_t)(counter >> 32);
  o[3] = (uint32_t)GANC_RNG_AUGMENT;
  ganc_philox_rounds(o, (uint32_t)seed, (uint32_t)(seed >> 32));
}

// U[0, 1) from the top 24 bits: k / 2^24, exact in float and double.
GANC_HD static inline double ganc_aug_unit(uint32_t u) {
  return (double)(u >> 8) * (1.0 / 16777216.0);
}

// An integer in [0, k), k >= 1.
GANC_HD static inline int ganc_aug_below(uint32_t u, uint32_t k) {
  return (int)(((uint64_t)u * k) >> 32);
}

// The reference's int(size·ratio + 0.5) (Python floats are doubles; ratio in [0, 1]).
GANC_HD static inline int ganc_aug_size(int size, float ratio) {
  return (int)((double)size * (double)ratio + 0.5);
}

// Colour: y = ((x − m)·s + (m − M))·c + M + b, brightness, saturation, contrast in one (below).
typedef struct {
  double b, s, c; // brightness offset [−0.5, 0.5), saturation [0, 2), contrast [0.5, 1.5)
} ganc_aug_color;

GANC_HD static inline ganc_aug_color ganc_aug_color_draw(uint64_t seed, uint64_t counter, int n) {
  uint32_t o[4];
  ganc_aug_words(seed, counter, n, GANC_AUG_COLOR, o);
  ganc_aug_color p;
  p.b = ganc_aug_unit(o[0]) - 0.5; // all three exact in double
  p.s = 2.0 * ganc_aug_unit(o[1]);
  p.c = ganc_aug_unit(o[2]) + 0.5;
  return p;
}

// Translation: y[i, j] = x[i + di, j + dj], 0 where that is outside the image.
typedef struct {
  int di, dj;
} ganc_aug_shift;

GANC_HD static inline ganc_aug_shift ganc_aug_shift_draw(uint64_t seed, uint64_t counter, int n,
                                                         int H, int W, float ratio) {
  uint32_t o[4];
  ganc_aug_words(seed, counter, n, GANC_AUG_TRANSLATION, o);
  const int sh = ganc_aug_size(H, ratio), sw = ganc_aug_size(W, ratio);
  ganc_aug_shift d;
  d.di = ganc_aug_below(o[0], 2u * (uint32_t)sh + 1u) - sh;
  d.dj = ganc_aug_below(o[1], 2u * (uint32_t)sw + 1u) - sw;
  return d;
}

// Cutout: rows [i0, i1) × columns [j0, j1) are multiplied by 0 (the reference's mask), the
// window clipped to the image. The reference clamps each window index into the image, which is
// the same set: its window [o − cut/2, o − cut/2 + cut) always meets the image. Empty when the
// side rounds to 0.
typedef struct {
  int i0, i1, j0, j1;
} ganc_aug_window;

GANC_HD static inline int ganc_aug_clip(int v, int size) { return v < 0 ? 0 : v > size ? size : v; }

GANC_HD static inline ganc_aug_window ganc_aug_window_draw(uint64_t seed, uint64_t counter, int n,
                                                           int H, int W, float ratio) {
  uint32_t o[4];
  ganc_aug_words(seed, counter, n, GANC_AUG_CUTOUT, o);
  const int ch = ganc_aug_size(H, ratio), cw = ganc_aug_size(W, ratio);
  const int i0 = ganc_aug_below(o[0], (uint32_t)(H + 1 - ch % 2)) - ch / 2;
  const int j0 = ganc_aug_below(o[1], (uint32_t)(W + 1 - cw % 2)) - cw / 2;
  ganc_aug_window w;
  w.i0 = ganc_aug_clip(i0, H);
  w.i1 = ganc_aug_clip(i0 + ch, H);
  w.j0 = ganc_aug_clip(j0, W);
  w.j1 = ganc_aug_clip(j0 + cw, W);
  return w;
}

// ---- colour arithmetic ------------------------------------------------------------------------
// The reference's three steps on image n with its pixel means m (over C) and image mean M (over
// H·W·C), per element:
//   brightness  x1 = x + b
//   saturation  x2 = (x1 − m1)·s + m1,   m1 = m + b
//   contrast    y  = (x2 − M2)·c + M2,   M2 = mean of x2 = M + b (the saturation keeps each
//                                         pixel's mean, so the image's)
// which is y = ((x − m)·s + (m − M))·c + (M + b): computed so, in double, rounded once to float.
// For C = 1, m = x exactly and the saturation is the identity, as in the reference.
// The linear part, x ↦ y − b = c·s·x + c·(1 − s)·P x + (1 − c)·Q x with P (pixel means) and Q
// (image mean) orthogonal projections, is symmetric: the backward is the same formula applied to
// dy with b = 0 — exact, and without x.
//
// The image sum behind M, in double in a fixed order (the "long sum" of ops/sum_order.h over an
// image's floats): lane t of GANC_LONG_LANES sums elements t, t + 256, ... of the image in order,
// then the halving tree (ganc_tree_level). GPU: one block of 256 per image.

GANC_HD static inline double ganc_aug_lane_sum(const float *x, int64_t n, int t) {
  double s = 0.0;
  for (int64_t i = t; i < n; i += GANC_LONG_LANES)
    s += (double)x[i];
  return s;
}

// One pixel's C values v → out; M the image mean, b the brightness offset (0 for the backward).
GANC_HD static inline void ganc_aug_color_pixel(const float *v, float *out, int C, double M,
                                                double s, double c, double b) {
  double m = 0.0;
  for (int k = 0; k < C; k++)
    m += (double)v[k];
  m = m / (double)C;
  const double dm = m - M, base = M + b;
  for (int k = 0; k < C; k++)
    out[k] = (float)(ganc_dmul(ganc_dmul((double)v[k] - m, s) + dm, c) + base);
}

// ---- argument checks (host) ---------------------------------------------------------------------

// NULL when the arguments of an augmentation op are valid, else what is wrong, written to buf.
// ratio is checked for translation and cutout (color passes 0). in and out [N, H, W, C] must not
// overlap: every op reads other positions than it writes (the colour means, the shifts).
static inline const char *ganc_aug_invalid(int N, int H, int W, int C, float ratio, const void *in,
                                           const void *out, char *buf, size_t len) {
  if (N < 1 || H < 1 || W < 1 || C < 1 || N >= GANC_AUG_MAX_IMAGES) {
    snprintf(buf, len, "shape [%d,%d,%d,%d] (N in [1, 2^28), H, W, C >= 1)", N, H, W, C);
    return buf;
  }
  if (!(ratio >= 0.0f && ratio <= 1.0f)) {
    snprintf(buf, len, "ratio %g outside [0, 1]", (double)ratio);
    return buf;
  }
  const uintptr_t a = (uintptr_t)in, b = (uintptr_t)out;
  const uintptr_t bytes = (uintptr_t)((int64_t)N * H * W * C) * sizeof(float);
  if (a < b + bytes && b < a + bytes) {
    snprintf(buf, len, "output %p overlaps input %p (%llu bytes each; the ops are out-of-place)",
             out, in, (unsigned long long)bytes);
    return buf;
  }
  return NULL;
}

#endif
