// augment_core.h — DiffAugment's random draws and arithmetic (Zhao et al. 2020, "Differentiable
// Augmentation for Data-Efficient GAN Training", policy "color,translation,cutout"), ADA's blit
// and its controller of the augmentation probability p (Karras et al. 2020), written once
// for both compilers (the philox_core.h way): the CPU twins (src/ops/augment.c) and the CUDA
// kernels (kernels/augment.cu) call these functions, so that both draw the same numbers and
// compute the same bits by construction.
//
// Randomness: every number is Philox4x32-10 (core/philox_core.h) keyed by `seed`, in stream
// GANC_RNG_AUGMENT (core/philox.h), row = `counter` (the caller's 64-bit count of augmentation
// calls), column = 16·n + 4·t + w: image n of the call, transform t (GANC_AUG_COLOR,
// _TRANSLATION, _CUTOUT, _BLIT), word w of the transform's Philox block. So word w of transform t
// of image n is ganc_rng_u32(seed, GANC_RNG_AUGMENT, counter, 16·n + 4·t + w) of core/philox.c (the
// tests check that), a forward and its backward called with the same (seed, counter) use the same
// draws, a resume that restores the counter is bit-exact, and images and transforms never share a
// number. Two calls that must differ (reals and fakes, D step and G step) take different counters.
//
//   transform     word 0                      word 1                     word 2
//   colour        brightness b = r − 0.5      saturation s = 2r          contrast c = r + 0.5
//   translation   row shift of [−sh, sh]      column shift of [−sw, sw]
//   cutout        row offset of [0, H + 1 −   column offset of [0, W + 1 −
//                 ch % 2)                     cw % 2)
//   blit          x-flip when the top bit     rotation k·90°, k in      the rotation's
//                 is set                      [0, 4)                    apply draw
// with r = U[0, 1) of 24 bits (exact in float), sh = int(H·ratio + 0.5), sw likewise from W (the
// reference's int(size·ratio + 0.5)), ch, cw the cutout's sides the same way. An integer in
// [0, k) is the high word of u·k: off from uniform by less than k / 2^32 (k <= 2·size + 1).
// Word 3 of every block is its transform's apply draw (the x-flip's for the blit): with the
// augmentation probability p (ADA's p, Karras et al. 2020: backend memory, so that a replayed
// graph reads the value of its step; NULL means 1) the transform is applied to image n when
// U[0, 1) of that word < p, and is the identity (an exact copy) otherwise. p = 1 applies every
// transform to every image, as DiffAugment does: the same draws and bits as before p existed.
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
  GANC_AUG_BLIT = 3,      // ADA's pixel blitting: x-flip and 90° rotations (modes below)
  GANC_AUG_BLIT_FLIP = 1, // the blit's modes (bits)
  GANC_AUG_BLIT_ROT90 = 2,
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

// Whether a transform applies, from its apply draw u and the probability p (NULL: 1).
GANC_HD static inline int ganc_aug_on(uint32_t u, const float *p) {
  return !p || ganc_aug_unit(u) < (double)*p;
}

// Colour: y = ((x − m)·s + (m − M))·c + M + b, brightness, saturation, contrast in one (below).
// on = 0: not applied to this image (the op copies it).
typedef struct {
  double b, s, c; // brightness offset [−0.5, 0.5), saturation [0, 2), contrast [0.5, 1.5)
  int on;
} ganc_aug_color;

GANC_HD static inline ganc_aug_color ganc_aug_color_draw(uint64_t seed, uint64_t counter, int n,
                                                         const float *prob) {
  uint32_t o[4];
  ganc_aug_words(seed, counter, n, GANC_AUG_COLOR, o);
  ganc_aug_color p;
  p.b = ganc_aug_unit(o[0]) - 0.5; // all three exact in double
  p.s = 2.0 * ganc_aug_unit(o[1]);
  p.c = ganc_aug_unit(o[2]) + 0.5;
  p.on = ganc_aug_on(o[3], prob);
  return p;
}

// Translation: y[i, j] = x[i + di, j + dj], 0 where that is outside the image.
typedef struct {
  int di, dj;
} ganc_aug_shift;

// Not applied: the shift (0, 0), an exact copy.
GANC_HD static inline ganc_aug_shift ganc_aug_shift_draw(uint64_t seed, uint64_t counter, int n,
                                                         int H, int W, float ratio,
                                                         const float *prob) {
  uint32_t o[4];
  ganc_aug_words(seed, counter, n, GANC_AUG_TRANSLATION, o);
  const int sh = ganc_aug_size(H, ratio), sw = ganc_aug_size(W, ratio);
  ganc_aug_shift d;
  d.di = ganc_aug_below(o[0], 2u * (uint32_t)sh + 1u) - sh;
  d.dj = ganc_aug_below(o[1], 2u * (uint32_t)sw + 1u) - sw;
  if (!ganc_aug_on(o[3], prob)) d.di = d.dj = 0;
  return d;
}

// Cutout: rows [i0, i1) × columns [j0, j1) are multiplied by 0 (the reference's mask), the
// window clipped to the image. The reference clamps each window index into the image, which is
// the same set: its window [o − cut/2, o − cut/2 + cut) always meets the image. Empty when the
// side rounds to 0, or when the cutout is not applied to this image.
typedef struct {
  int i0, i1, j0, j1;
} ganc_aug_window;

GANC_HD static inline int ganc_aug_clip(int v, int size) { return v < 0 ? 0 : v > size ? size : v; }

GANC_HD static inline ganc_aug_window ganc_aug_window_draw(uint64_t seed, uint64_t counter, int n,
                                                           int H, int W, float ratio,
                                                           const float *prob) {
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
  if (!ganc_aug_on(o[3], prob)) w.i0 = w.i1 = w.j0 = w.j1 = 0;
  return w;
}

// Blit (ADA's x-flip and rotate90, each with its own apply draw; the dataset's own mirroring,
// train.mirror, is separate and happens before): y = R^k(F^f(x)) as a gather, y[i, j] =
// x[s(i, j)] with s = fl^f ∘ r^k, where r(i, j) = (j, S − 1 − i) is one counter-clockwise
// quarter turn's gather map (square images, S = H = W) and fl(i, j) = (i, W − 1 − j). A
// permutation of the pixels, so the backward is the inverse gather: dx[q] = dy[r^(4−k)(fl^f(q))].
// Mode bits: GANC_AUG_BLIT_FLIP (f = 1 with probability p/2), GANC_AUG_BLIT_ROT90 (k uniform in
// [0, 4) with probability p, else 0).
typedef struct {
  int flip, rot;
} ganc_aug_blit;

GANC_HD static inline ganc_aug_blit ganc_aug_blit_draw(uint64_t seed, uint64_t counter, int n,
                                                       int modes, const float *prob) {
  uint32_t o[4];
  ganc_aug_words(seed, counter, n, GANC_AUG_BLIT, o);
  ganc_aug_blit b;
  b.flip = (modes & GANC_AUG_BLIT_FLIP) && ganc_aug_on(o[3], prob) ? (int)(o[0] >> 31) : 0;
  b.rot = (modes & GANC_AUG_BLIT_ROT90) && ganc_aug_on(o[2], prob) ? ganc_aug_below(o[1], 4u) : 0;
  return b;
}

// The source pixel (*si, *sj) of output pixel (i, j): the forward's gather (backward = 0) or the
// backward's (backward = 1). H == W whenever b.rot != 0 (ganc_aug_blit_invalid checks).
GANC_HD static inline void ganc_aug_blit_src(int i, int j, int H, int W, ganc_aug_blit b,
                                             int backward, int *si, int *sj) {
  int k = backward ? (4 - b.rot) & 3 : b.rot;
  if (backward && b.flip) j = W - 1 - j;
  for (; k > 0; k--) { // r: (i, j) -> (j, S − 1 − i)
    const int t = i;
    i = j;
    j = H - 1 - t;
  }
  if (!backward && b.flip) j = W - 1 - j;
  *si = i;
  *sj = j;
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

// ---- ADA's controller of p (Karras et al. 2020, "Training Generative Adversarial Networks with
// Limited Data") -----------------------------------------------------------------------------
// The overfitting heuristic r_t = E[sign(D(x) − m)] over D's outputs on the reals it trains on
// (as augmented for it), m the mean of its outputs on this step's fakes (the global batch's): near
// 0 while D cannot tell its reals from fakes, towards 1 as it puts every real above the fakes. ADA
// raises p while r_t is above a target (0.6) and lowers it below. ADA's own r_t has m = 0, which
// suits its logistic loss, whose gradient pins D's outputs around 0; under the hinge loss (with
// every output inside the margins) a shift of all of D's outputs changes nothing, D's level drifts
// freely, and sign(D(x)) would measure that drift instead of how well D tells reals from fakes.
//   ada_sum     fsum[0] = Σ of the n logits on fakes (in double, in index order), fsum[1] = n;
//               ranks sum theirs (core/comm.h), so m = fsum[0] / fsum[1] is the global batch's
//               mean (to rounding: another grouping of the same double sums)
//   ada_signs   out[0] = Σ sign(l − m) over the n logits on reals (a NaN counts 0), out[1] = n:
//               integers, exact in double in any order, so ranks may sum them too
//   ada_adjust  state[0..1] += out[0..1]; once state[1] (images since the last adjustment)
//               reaches `interval`: r = state[0] / state[1], p ← clamp(p + sign(r − target) ·
//               state[1] · per_image, 0, 1) (per_image = 1 / the images over which p may move by
//               1), state[2] = r (for the logs), state[0..1] = 0.
// state: double [3], backend memory (saved in checkpoints: a resume continues it exactly); p: the
// float the augmentation ops read. Both sides compute the same double expression (products
// through ganc_dmul), so the CPU and the GPU give the same p.

GANC_HD static inline int ganc_ada_sign(float l, double m) {
  const double d = (double)l - m;
  return d > 0.0 ? 1 : d < 0.0 ? -1 : 0;
}

// ada_sum's Σ fake [n], in double, in index order.
GANC_HD static inline double ganc_ada_sum(int n, const float *fake) {
  double s = 0.0;
  for (int i = 0; i < n; i++)
    s += (double)fake[i];
  return s;
}

GANC_HD static inline void ganc_ada_adjust(const double *out, double *state, float *p, float target,
                                           double per_image, double interval) {
  state[0] += out[0];
  state[1] += out[1];
  if (state[1] < interval) return;
  const double r = state[0] / state[1];
  const double dir = r > (double)target ? 1.0 : r < (double)target ? -1.0 : 0.0;
  double v = (double)*p + ganc_dmul(ganc_dmul(dir, state[1]), per_image);
  v = v < 0.0 ? 0.0 : v > 1.0 ? 1.0 : v;
  *p = (float)v;
  state[2] = r;
  state[0] = state[1] = 0.0;
}

// NULL when ada_adjust's settings are valid, else what is wrong, written to buf.
static inline const char *ganc_ada_invalid(float target, double per_image, double interval,
                                           char *buf, size_t len) {
  if (!(target >= -1.0f && target <= 1.0f) || !(per_image >= 0.0 && per_image <= 1e300) ||
      !(interval >= 1.0 && interval <= 1e15)) {
    snprintf(buf, len, "target %g (in [-1, 1]), per_image %g (finite, >= 0), interval %g (>= 1)",
             (double)target, per_image, interval);
    return buf;
  }
  return NULL;
}

// ---- argument checks (host) ---------------------------------------------------------------------

// NULL when in and out [N, H, W, C] do not overlap.
static inline const char *ganc_aug_overlap(int N, int H, int W, int C, const void *in,
                                           const void *out, char *buf, size_t len) {
  const uintptr_t a = (uintptr_t)in, b = (uintptr_t)out;
  const uintptr_t bytes = (uintptr_t)((int64_t)N * H * W * C) * sizeof(float);
  if (a < b + bytes && b < a + bytes) {
    snprintf(buf, len, "output %p overlaps input %p (%llu bytes each; the ops are out-of-place)",
             out, in, (unsigned long long)bytes);
    return buf;
  }
  return NULL;
}

// NULL when the arguments of an augmentation op are valid, else what is wrong, written to buf.
// ratio is checked for translation and cutout (color and the blit pass 0; the blit's modes and
// square images are ganc_aug_blit_invalid's). in and out [N, H, W, C] must not overlap: every op
// reads other positions than it writes (the colour means, the shifts).
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
  return ganc_aug_overlap(N, H, W, C, in, out, buf, len);
}

// The blit's checks: modes in [0, 3], rotations only on square images.
static inline const char *ganc_aug_blit_invalid(int N, int H, int W, int C, int modes,
                                                const void *in, const void *out, char *buf,
                                                size_t len) {
  const char *why = ganc_aug_invalid(N, H, W, C, 0.0f, in, out, buf, len);
  if (why) return why;
  if (modes < 0 || modes > (GANC_AUG_BLIT_FLIP | GANC_AUG_BLIT_ROT90)) {
    snprintf(buf, len, "blit modes %d outside [0, 3]", modes);
    return buf;
  }
  if ((modes & GANC_AUG_BLIT_ROT90) && H != W) {
    snprintf(buf, len, "90-degree rotations of %dx%d images (they need square ones)", H, W);
    return buf;
  }
  return NULL;
}

#endif
