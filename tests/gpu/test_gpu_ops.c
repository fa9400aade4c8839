// test_gpu_ops.c — every CUDA launcher of kernels/kernels.h (batch norm, activations, losses, Adam
// and EMA, pixels, latents; resampling, sum pooling, tensor add, spectral norm, the
// class-conditional ops) against its CPU twin of src/ops/*.c and src/core/philox.c.
//
// The launchers on the GPU: fresh random inputs from a fixed-seed generator; every output buffer
// POISONED (0xFF bytes: NaN floats, 255 bytes) before each call so an element a kernel fails to
// write shows; the CPU twin on host copies; parameter gradients start from non-zero values (they
// must accumulate), activation gradients are poisoned (overwritten); in-place calls (y == x,
// dx == dy); reductions re-run for bit-identical results; Philox and Box-Muller bit for bit,
// index and flip math, vector/tail splits, batch-norm chunking (up to more than 4096 chunks).
// Built as test_gpu_ops_emu (GANC_CUDEMU), the same launchers run under tests/gpu/cudemu, the
// CUDA emulator of the tests, in CI; its lines say "emu", and only a GPU run says "gpu".
// Without a CUDA device: "SKIP: <reason>" and exit 77 (ctest's skip code). One line per case; a
// final "N passed, M failed".
//
// ---- thresholds
// ---------------------------------------------------------------------------------- err = max |got
// − want| / max |want| over the tensor (max-norm normalized error; absolute when want is all zero).
// ulp = largest distance in units in the last place.
//
//   op                                 compared                        threshold   (expect)
//   batchnorm_forward_train / _eval    y, mean, rstd, run_mean/var     err 1e-5    (~1e-7)
//   batchnorm_backward                 dx, dgamma, dbeta               err 1e-4    (~1e-7)
//   batchnorm_forward with act         vs the activation op after it   exact
//   batchnorm_forward, y in bf16       vs the halves of the FP32 y     exact
//   batchnorm_backward, dx in bf16     vs the halves of the FP32 dx    exact
//   act_forward_bf16 (none/relu/lrelu) vs the CPU twin's halves         exact
//   relu, lrelu forward and backward   out                             0 ulp       (exact)
//   relu, lrelu backward, y in bf16    dx                              0 ulp       (exact)
//   tanh_forward                       vs glibc tanhf (CPU twin)       2 ulp       glibc 2.36's
//                                      vs (float)tanh((double)x)       1 ulp       tanhf is 2 ulp
//   tanh_backward                      dx                              0 ulp       (exact)
//   loss_logistic, loss_hinge          loss, dlogit                    err 1e-6    (~1e-8)
//   loss_lecam (3 steps)               dlogit (accumulated), averages  bit-exact
//   adam_update, ema_update            p, m, v / ema                   err 1e-6    (0 ulp)
//   adam_update with ema (fused)       p, m, v, ema; = ema_update after exact
//   step_draws                         z, flips, labels                bit-exact
//   step_stats                         the sums                        err 1e-12   (exp in double)
//   graph capture and replay           Adam + memset, 3 replays        bit-exact
//   pixels_to_float, pixels_to_uint8   dst                             exact
//   latents                            z                               bit-exact
//   upsample2x, avgpool2x (fwd, bwd)   out                             0 ulp       (exact: copies,
//   tensor_add, sum_pool (fwd, bwd)    out                             0 ulp        one float op
//   spectral_norm forward              u, v, sigma, w_sn               0 ulp        order, or the
//   spectral_norm backward             dw                              0 ulp        same double
//   cond_affine forward, backward      y; dx, dgamma, dbeta            0 ulp        trees of
//   embed_dot forward, backward        y; dh, dembed                   0 ulp        sum_order.h)
//   augment_color, _translation,       out                             bit-exact   (the same draws
//   _cutout (fwd, bwd)                                                             and arithmetic:
//                                                                                  augment_core.h)
#include "core/check.h"      // xmalloc
#include "core/ctx.h"        // ganc_ctx, ganc_ctx_init_cpu
#include "core/philox.h"     // ganc_latent: the CPU latents
#include "kernels/kernels.h" // the CUDA launchers, device memory
#include "ops/ops.h"         // the CPU twins
#include "ops/precision.h"   // bf16 storage
#include "testutil.h"        // tu_run_child

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL_BN_FWD 1e-5
#define TOL_BN_BWD 1e-4
#define ULP_TANH_VS_CPU 2
#define ULP_TANH_VS_DOUBLE 1
#define TOL_LOSS 1e-6
#define TOL_ADAM 1e-6

// ---- shapes ----------------------------------------------------------------------------------
// Every batch-norm layer of the shipped DCGAN recipes (configs/*.ini): [H·W, C].
typedef struct bn_layer {
  int hw, c;
  const char *where;
} bn_layer;
static const bn_layer BN_LAYERS[] = {
    {4 * 4, 256, "fmnist32 G.b0 D.b2"},  {8 * 8, 128, "fmnist32 G.b1 D.b1"},
    {16 * 16, 64, "fmnist32 G.b2"},      {4 * 4, 128, "cpu-demo G.b0 D.b2"},
    {8 * 8, 64, "cpu-demo G.b1 D.b1"},   {16 * 16, 32, "cpu-demo G.b2"},
    {4 * 4, 512, "dcgan64 G.b0 D.b3"},   {8 * 8, 256, "dcgan64 G.b1 D.b2"},
    {16 * 16, 128, "dcgan64 G.b2 D.b1"}, {32 * 32, 64, "dcgan64 G.b3"},
};
static const int BN_BATCHES[] = {1, 3, 64, 128};
// Channel counts no layer has (tails of the 32-channel tiles) and row counts around the chunks.
static const int BN_ODD_C[] = {3, 5, 13};
static const int64_t BN_ODD_M[] = {2, 48, 1001, 3072, 131072};
static const float BN_EPS = 1e-5f, BN_MOMENTUM = 0.1f;

// ---- the test's own random numbers (splitmix64) ------------------------------------------------
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd64(void) {
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static float unif(float lo, float hi) {
  return lo + (hi - lo) * (float)((rnd64() >> 40) * 0x1p-24);
}
static void fill(float *a, size_t n, float lo, float hi) {
  for (size_t i = 0; i < n; i++)
    a[i] = unif(lo, hi);
}

static float *fnew(size_t n) { return xmalloc((n ? n : 1) * sizeof(float)); }
static float *fdup(const float *a, size_t n) {
  float *b = fnew(n);
  memcpy(b, a, n * sizeof(float));
  return b;
}

// ---- comparisons -------------------------------------------------------------------------------
// Max-norm normalized error; a NaN or infinity where `want` has none counts as infinite.
static double nerr(const float *got, const float *want, size_t n) {
  double dmax = 0.0, wmax = 0.0;
  for (size_t i = 0; i < n; i++) {
    if (isnan(want[i]) && isnan(got[i])) continue;
    const double d = fabs((double)got[i] - (double)want[i]);
    if (!(d <= dmax)) dmax = isnan(d) || isinf(d) ? INFINITY : d;
    if (fabs((double)want[i]) > wmax) wmax = fabs((double)want[i]);
  }
  return wmax > 0.0 ? dmax / wmax : dmax;
}

// Floats as integers in the order of their values, for distances in ulps. −0 sits one below +0,
// so "0 ulp" means bit-identical (relu must keep x = −0 as −0, as its CPU twin does).
static int64_t ordered(float f) {
  int32_t i;
  memcpy(&i, &f, sizeof i);
  return i < 0 ? (int64_t)INT32_MIN - i - 1 : (int64_t)i;
}
// Largest ulp distance; a NaN on one side only counts as INT64_MAX.
static int64_t max_ulp(const float *got, const float *want, size_t n) {
  int64_t worst = 0;
  for (size_t i = 0; i < n; i++) {
    if (isnan(got[i]) || isnan(want[i])) {
      if (!(isnan(got[i]) && isnan(want[i]))) return INT64_MAX;
      continue;
    }
    int64_t d = ordered(got[i]) - ordered(want[i]);
    if (d < 0) d = -d;
    if (d > worst) worst = d;
  }
  return worst;
}
static size_t count_diff_bytes(const void *a, const void *b, size_t n) {
  const uint8_t *x = a, *y = b;
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    k += x[i] != y[i];
  return k;
}

// ---- reporting ---------------------------------------------------------------------------------
static int n_pass, n_fail;

__attribute__((format(printf, 2, 3))) static void report(int ok, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char line[512];
  vsnprintf(line, sizeof line, fmt, ap);
#ifdef GANC_CUDEMU
  // test_gpu_ops_emu: the "device" is cudemu, the CUDA emulator of the tests; say so on each line.
  if (!strncmp(line, "gpu ", 4)) memcpy(line, "emu ", 4);
#endif
  printf("%s  %s\n", ok ? "PASS" : "FAIL", line);
  va_end(ap);
  fflush(stdout);
  if (ok)
    n_pass++;
  else
    n_fail++;
}

static ganc_ctx CPU; // the CPU twins' context

// ---- batch-norm inputs
// ---------------------------------------------------------------------------
typedef struct bn_case {
  int64_t M;
  int C;
  float *x, *gamma, *beta, *rm0, *rv0, *dy, *dg0, *db0; // inputs
  // CPU twin's results
  float *y, *mean, *rstd, *rm, *rv, *y_eval, *dx, *dg, *db;
} bn_case;

// x: per-channel offsets up to ±4 and spreads 0.05..2, so a channel's mean can be large next to
// its spread; gamma, beta, running statistics and upstream gradients random; dgamma/dbeta start
// non-zero (they accumulate).
static void bn_case_make(bn_case *b, int64_t M, int C) {
  memset(b, 0, sizeof *b);
  b->M = M;
  b->C = C;
  const size_t n = (size_t)M * C;
  b->x = fnew(n);
  b->dy = fnew(n);
  float *off = fnew(C), *spread = fnew(C);
  fill(off, C, -4.0f, 4.0f);
  fill(spread, C, 0.05f, 2.0f);
  for (size_t i = 0; i < n; i++) {
    b->x[i] = off[i % C] + spread[i % C] * unif(-1.0f, 1.0f);
    b->dy[i] = unif(-1.0f, 1.0f);
  }
  free(off);
  free(spread);
  b->gamma = fnew(C);
  b->beta = fnew(C);
  b->rm0 = fnew(C);
  b->rv0 = fnew(C);
  b->dg0 = fnew(C);
  b->db0 = fnew(C);
  fill(b->gamma, C, 0.5f, 1.5f);
  fill(b->beta, C, -0.5f, 0.5f);
  fill(b->rm0, C, -1.0f, 1.0f);
  fill(b->rv0, C, 0.5f, 2.0f);
  fill(b->dg0, C, -1.0f, 1.0f);
  fill(b->db0, C, -1.0f, 1.0f);

  // The CPU twin's answers: training forward, eval forward (with the updated running
  // statistics), backward (from the twin's saved mean and rstd).
  b->y = fnew(n);
  b->mean = fnew(C);
  b->rstd = fnew(C);
  b->rm = fdup(b->rm0, C);
  b->rv = fdup(b->rv0, C);
  batchnorm_forward_train_cpu(&CPU, M, C, b->x, GANC_X_FP32, b->gamma, b->beta, BN_EPS, BN_MOMENTUM,
                              GANC_ACT_NONE, 0.0f, b->y, 0, b->mean, b->rstd, b->rm, b->rv, NULL,
                              NULL);
  b->y_eval = fnew(n);
  batchnorm_forward_eval_cpu(&CPU, M, C, b->x, GANC_X_FP32, b->gamma, b->beta, b->rm, b->rv, BN_EPS,
                             GANC_ACT_NONE, 0.0f, b->y_eval, 0);
  b->dx = fnew(n);
  b->dg = fdup(b->dg0, C);
  b->db = fdup(b->db0, C);
  batchnorm_backward_cpu(&CPU, M, C, b->x, GANC_X_FP32, b->dy, GANC_X_FP32, b->gamma, b->mean,
                         b->rstd, b->dx, 0, b->dg, b->db);
}

static void bn_case_free(bn_case *b) {
  float *all[] = {b->x,    b->gamma, b->beta, b->rm0, b->rv0,    b->dy, b->dg0, b->db0, b->y,
                  b->mean, b->rstd,  b->rm,   b->rv,  b->y_eval, b->dx, b->dg,  b->db};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    free(all[i]);
}

static double max5(double a, double b, double c, double d, double e) {
  double m = a > b ? a : b;
  m = m > c ? m : c;
  m = m > d ? m : d;
  return m > e ? m : e;
}

// ---- inputs and CPU references shared by the cases -------------------------------------------

static const char *ACT_NAMES[3][2] = {{"relu_forward", "relu_backward"},
                                      {"lrelu_forward", "lrelu_backward"},
                                      {"tanh_forward", "tanh_backward"}};

// The CPU twin of act op (op, backward): out = f(a) or f'(y = a, dy = b).
static void act_cpu(int op, int backward, int64_t n, float slope, const float *a, const float *b,
                    float *out) {
  if (!backward) {
    if (op == 0) relu_forward_cpu(&CPU, n, a, out);
    if (op == 1) lrelu_forward_cpu(&CPU, n, slope, a, out);
    if (op == 2) tanh_forward_cpu(&CPU, n, a, out);
  } else {
    if (op == 0) relu_backward_cpu(&CPU, n, a, 0, b, out);
    if (op == 1) lrelu_backward_cpu(&CPU, n, slope, a, 0, b, out);
    if (op == 2) tanh_backward_cpu(&CPU, n, a, b, out);
  }
}

// Activation inputs: a in [−4, 4] with exact zeros and −0 sprinkled in; b in [−1, 1].
static void act_inputs(float *a, float *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    a[i] = unif(-4.0f, 4.0f);
    b[i] = unif(-1.0f, 1.0f);
    if (i % 97 == 5) a[i] = 0.0f;
    if (i % 89 == 7) a[i] = -0.0f;
    if (i % 83 == 3) a[i] = unif(-1e-6f, 1e-6f);
  }
}

// Logits: random with large magnitudes (±80, ±1e4) planted, as a saturated D produces.
static void loss_inputs(float *l, int n) {
  static const float big[] = {80.0f, -80.0f, 1e4f, -1e4f};
  for (int i = 0; i < n; i++)
    l[i] = i % 3 == 1 ? big[(i / 3) % 4] : unif(-6.0f, 6.0f);
  if (n == 1) l[0] = -80.0f; // a lone logit: saturated
}

// uint8 images, and floats to bytes with the awkward values first: NaN, ±inf, ±0, the ends of
// [−1, 1], just outside, and values whose (v + 1)·127.5 is a half.
static void pixel_floats(float *f, size_t n) {
  static const float special[] = {NAN,         INFINITY,   -INFINITY, 0.0f,  -0.0f, -1.0f, 1.0f,
                                  -1.0000001f, 1.0000001f, 2.0f,      -2.0f, 1e-8f, -1e-8f};
  const size_t ns = sizeof special / sizeof special[0];
  for (size_t i = 0; i < n; i++) {
    if (i < ns)
      f[i] = special[i];
    else if (i < ns + 256)
      f[i] = (float)(((double)(i - ns) + 0.5) / 127.5 - 1.0); // near the halves
    else
      f[i] = unif(-1.2f, 1.2f);
  }
}

// =================================================================================================
// The launchers on the GPU against the CPU twins
// =================================================================================================

static ganc_ctx G; // the CUDA context
static ganc_stream ST;

static void *dnew(size_t bytes) { return ganc_cuda_malloc(&G, bytes); }
static float *dup_to_device(const float *h, size_t n) {
  float *d = dnew(n * sizeof(float));
  ganc_cuda_h2d(&G, d, h, n * sizeof(float));
  return d;
}
static void up(void *d, const void *h, size_t bytes) { ganc_cuda_h2d(&G, d, h, bytes); }
static void down(void *h, const void *d, size_t bytes) { ganc_cuda_d2h(&G, h, d, bytes); }

// 0xFF in every byte: NaN as float, 255 as uint8.
static void poison(void *d, size_t bytes) {
  static uint8_t ff[1 << 20];
  if (ff[0] != 0xFF) memset(ff, 0xFF, sizeof ff);
  for (size_t off = 0; off < bytes; off += sizeof ff) {
    const size_t k = bytes - off < sizeof ff ? bytes - off : sizeof ff;
    ganc_cuda_h2d(&G, (uint8_t *)d + off, ff, k);
  }
}

// The allocation d0 [total bytes] holds an output at byte offset `off`, `bytes` long, and was
// poisoned whole before the call: are the bytes outside the output still 0xFF (nothing written
// past either end of the output inside the allocation, where no memory checker looks)?
static int untouched_around(const void *d0, size_t total, size_t off, size_t bytes) {
  uint8_t *h = xmalloc(total);
  down(h, d0, total);
  int ok = 1;
  for (size_t i = 0; i < total && ok; i++)
    if ((i < off || i >= off + bytes) && h[i] != 0xFF) ok = 0;
  free(h);
  return ok;
}

// The training forward on the device twice from the case's x (FP32), its running statistics
// reset before each: the first run's outputs (y, mean, rstd, running statistics) downloaded into
// hy, hm, hr, hrm, hrv and their largest error against the CPU twin's returned, the second's y
// into hy2 (keep, where given, the second run's only: keeping changes nothing it writes) and
// *same = whether the two y are the same bits. stats: batchnorm_forward_train's (NULL: two passes).
static double bn_train_twice(const bn_case *b, const float *x, const float *gamma,
                             const float *beta, float *y, float *mean, float *rstd, float *rm,
                             float *rv, double *keep, const ganc_bn_part *stats, float *hy,
                             float *hy2, float *hm, float *hr, float *hrm, float *hrv, int *same) {
  const int64_t M = b->M;
  const int C = b->C;
  const size_t n = (size_t)M * C, fb = n * sizeof(float), cb = (size_t)C * sizeof(float);
  double e = 0.0;
  for (int run = 0; run < 2; run++) {
    up(rm, b->rm0, cb);
    up(rv, b->rv0, cb);
    poison(y, fb);
    poison(mean, cb);
    poison(rstd, cb);
    batchnorm_forward_train_cuda(&G, ST, M, C, x, GANC_X_FP32, gamma, beta, BN_EPS, BN_MOMENTUM,
                                 GANC_ACT_NONE, 0.0f, y, 0, mean, rstd, rm, rv, run ? keep : NULL,
                                 stats);
    down(run ? hy2 : hy, y, fb);
    if (run == 0) {
      down(hm, mean, cb);
      down(hr, rstd, cb);
      down(hrm, rm, cb);
      down(hrv, rv, cb);
      e = max5(nerr(hy, b->y, n), nerr(hm, b->mean, C), nerr(hr, b->rstd, C), nerr(hrm, b->rm, C),
               nerr(hrv, b->rv, C));
    }
  }
  *same = memcmp(hy, hy2, fb) == 0;
  return e;
}

static void gpu_bn(int64_t M, int C, const char *where) {
  bn_case b;
  bn_case_make(&b, M, C);
  const size_t n = (size_t)M * C, fb = n * sizeof(float), cb = (size_t)C * sizeof(float);
  float *x = dup_to_device(b.x, n), *dy = dup_to_device(b.dy, n),
        *gamma = dup_to_device(b.gamma, C), *beta = dup_to_device(b.beta, C), *rm = dnew(cb),
        *rv = dnew(cb), *y = dnew(fb), *mean = dnew(cb), *rstd = dnew(cb), *dx = dnew(fb),
        *dg = dnew(cb), *db = dnew(cb);
  float *hy = fnew(n), *hy2 = fnew(n), *hm = fnew(C), *hr = fnew(C), *hrm = fnew(C), *hrv = fnew(C),
        *hg = fnew(C), *hb = fnew(C), *hg2 = fnew(C), *hb2 = fnew(C);

  // Training forward, twice: the second run must be bit-identical (no atomics anywhere).
  int same = 1;
  double e = bn_train_twice(&b, x, gamma, beta, y, mean, rstd, rm, rv, NULL, NULL, hy, hy2, hm, hr,
                            hrm, hrv, &same);
  report(e <= TOL_BN_FWD && same,
         "gpu   bn_forward_train   M=%-7lld C=%-4d %-20s err %.2e (tol %.0e)%s", (long long)M, C,
         where, e, TOL_BN_FWD, same ? ", rerun identical" : ", RERUN DIFFERS");

  // Eval forward with the CPU's updated running statistics.
  up(rm, b.rm, cb);
  up(rv, b.rv, cb);
  poison(y, fb);
  batchnorm_forward_eval_cuda(&G, ST, M, C, x, GANC_X_FP32, gamma, beta, rm, rv, BN_EPS,
                              GANC_ACT_NONE, 0.0f, y, 0);
  down(hy, y, fb);
  e = nerr(hy, b.y_eval, n);
  report(e <= TOL_BN_FWD, "gpu   bn_forward_eval    M=%-7lld C=%-4d %-20s err %.2e (tol %.0e)",
         (long long)M, C, where, e, TOL_BN_FWD);

  // A fused activation (act): the same bits as the activation's own kernel after the plain
  // forward, in training and in eval.
  for (int act = GANC_ACT_RELU; act <= GANC_ACT_LRELU; act++) {
    int fused_same = 1;
    for (int train = 0; train < 2; train++) {
      for (int fused = 0; fused < 2; fused++) {
        poison(y, fb);
        const int a = fused ? act : GANC_ACT_NONE;
        if (train)
          batchnorm_forward_train_cuda(&G, ST, M, C, x, GANC_X_FP32, gamma, beta, BN_EPS,
                                       BN_MOMENTUM, a, 0.2f, y, 0, mean, rstd, NULL, NULL, NULL,
                                       NULL);
        else
          batchnorm_forward_eval_cuda(&G, ST, M, C, x, GANC_X_FP32, gamma, beta, rm, rv, BN_EPS, a,
                                      0.2f, y, 0);
        if (!fused && act == GANC_ACT_RELU) relu_forward_cuda(&G, ST, M * C, y, y);
        if (!fused && act == GANC_ACT_LRELU) lrelu_forward_cuda(&G, ST, M * C, 0.2f, y, y);
        down(fused ? hy2 : hy, y, fb);
      }
      fused_same = fused_same && memcmp(hy, hy2, fb) == 0;
    }
    report(fused_same, "gpu   bn_forward+%-5s   M=%-7lld C=%-4d %-20s fused = separate: %s",
           act == GANC_ACT_RELU ? "relu" : "lrelu", (long long)M, C, where,
           fused_same ? "bit-exact" : "DIFFERS");
  }

  // y stored in bf16 (train.bf16_activations): the halves of the FP32 output, bit for bit, in
  // training and in eval, with each activation; the rest of the buffer untouched.
  {
    uint16_t *yh = dnew(n * sizeof(uint16_t) + 16), *h16 = xmalloc(n * sizeof(uint16_t) + 16);
    int halves_same = 1, fenced = 1;
    for (int act = GANC_ACT_NONE; act <= GANC_ACT_LRELU; act++)
      for (int train = 0; train < 2; train++) {
        poison(yh, n * sizeof(uint16_t) + 16);
        if (train) {
          batchnorm_forward_train_cuda(&G, ST, M, C, x, GANC_X_FP32, gamma, beta, BN_EPS,
                                       BN_MOMENTUM, act, 0.2f, y, 0, mean, rstd, NULL, NULL, NULL,
                                       NULL);
          batchnorm_forward_train_cuda(&G, ST, M, C, x, GANC_X_FP32, gamma, beta, BN_EPS,
                                       BN_MOMENTUM, act, 0.2f, yh, 1, mean, rstd, NULL, NULL, NULL,
                                       NULL);
        } else {
          batchnorm_forward_eval_cuda(&G, ST, M, C, x, GANC_X_FP32, gamma, beta, rm, rv, BN_EPS,
                                      act, 0.2f, y, 0);
          batchnorm_forward_eval_cuda(&G, ST, M, C, x, GANC_X_FP32, gamma, beta, rm, rv, BN_EPS,
                                      act, 0.2f, yh, 1);
        }
        down(hy, y, fb);
        down(h16, yh, n * sizeof(uint16_t) + 16);
        for (size_t i = 0; i < n; i++)
          halves_same &= h16[i] == ganc_bf16_store(hy[i]);
        for (size_t i = n; i < n + 8; i++)
          fenced &= h16[i] == 0xFFFFu;
      }
    report(halves_same && fenced,
           "gpu   bn_forward bf16 y  M=%-7lld C=%-4d %-20s halves of the FP32 y: %s%s",
           (long long)M, C, where, halves_same ? "bit-exact" : "DIFFER",
           fenced ? "" : ", WROTE PAST y");
    ganc_cuda_free(&G, yh);
    free(h16);
  }

  // batchnorm_reapply (train.recompute_batchnorm): from the statistics this device's training
  // forward kept, its y again bit for bit — x FP32 or rounded as read, each activation, y in
  // FP32 or halves, nothing written past y; the kept mean and rstd round to those it returned.
  {
    const size_t yb_bytes = n * sizeof(float) + 16;
    void *y1 = dnew(yb_bytes), *y2 = dnew(yb_bytes);
    double *keep = dnew(2 * (size_t)C * sizeof(double));
    unsigned char *h1 = xmalloc(yb_bytes), *h2 = xmalloc(yb_bytes);
    double *hk = xmalloc(2 * (size_t)C * sizeof(double));
    float *hm = xmalloc(cb), *hr = xmalloc(cb);
    int same = 1, kept = 1;
    // Every combination on the smaller shapes; on the larger (slow under cudemu) the bf16 run's
    // (x rounded as read, ReLU, y in halves).
    const int all = n <= 65536;
    for (int xm = all ? GANC_X_FP32 : GANC_X_ROUND; xm <= GANC_X_ROUND;
         xm += GANC_X_ROUND - GANC_X_FP32)
      for (int act = all ? GANC_ACT_NONE : GANC_ACT_RELU;
           act <= (all ? GANC_ACT_LRELU : GANC_ACT_RELU); act++)
        for (int yb = !all; yb < 2; yb++) {
          poison(y1, yb_bytes), poison(y2, yb_bytes), poison(keep, 2 * (size_t)C * sizeof(double));
          batchnorm_forward_train_cuda(&G, ST, M, C, x, xm, gamma, beta, BN_EPS, BN_MOMENTUM, act,
                                       0.2f, y1, yb, mean, rstd, NULL, NULL, keep, NULL);
          batchnorm_reapply_cuda(&G, ST, M, C, x, xm, gamma, beta, keep, act, 0.2f, y2, yb);
          down(h1, y1, yb_bytes);
          down(h2, y2, yb_bytes);
          same &= memcmp(h1, h2, yb_bytes) == 0; // the poisoned tails included
          down(hk, keep, 2 * (size_t)C * sizeof(double));
          down(hm, mean, cb);
          down(hr, rstd, cb);
          for (int c = 0; c < C; c++)
            kept &= (float)hk[c] == hm[c] && (float)hk[C + c] == hr[c];
        }
    report(same && kept, "gpu   bn_reapply         M=%-7lld C=%-4d %-20s = the forward's y: %s%s",
           (long long)M, C, where, same ? "bit-exact" : "DIFFERS",
           kept ? "" : ", KEPT STATISTICS WRONG");
    ganc_cuda_free(&G, y1), ganc_cuda_free(&G, y2), ganc_cuda_free(&G, keep);
    free(h1), free(h2), free(hk), free(hm), free(hr);
  }

  // Backward from the CPU's mean and rstd; dgamma/dbeta start non-zero (accumulate), dx poisoned
  // (overwritten). Twice, for bit-identical reruns.
  float *dmean = dup_to_device(b.mean, C), *drstd = dup_to_device(b.rstd, C);
  for (int run = 0; run < 2; run++) {
    up(dg, b.dg0, cb);
    up(db, b.db0, cb);
    poison(dx, fb);
    batchnorm_backward_cuda(&G, ST, M, C, x, GANC_X_FP32, dy, GANC_X_FP32, gamma, dmean, drstd, dx,
                            0, dg, db);
    down(run ? hy2 : hy, dx, fb);
    down(run ? hg2 : hg, dg, cb);
    down(run ? hb2 : hb, db, cb);
  }
  e = max5(nerr(hy, b.dx, n), nerr(hg, b.dg, C), nerr(hb, b.db, C), 0, 0);
  same = !memcmp(hy, hy2, fb) && !memcmp(hg, hg2, cb) && !memcmp(hb, hb2, cb);
  report(e <= TOL_BN_BWD && same,
         "gpu   bn_backward        M=%-7lld C=%-4d %-20s err %.2e (tol %.0e)%s", (long long)M, C,
         where, e, TOL_BN_BWD, same ? ", rerun identical" : ", RERUN DIFFERS");

  // dx stored in bf16 (train.bf16_activations): the halves of this device's FP32 dx, bit for bit,
  // the same dgamma and dbeta, and nothing written past dx.
  {
    uint16_t *dxh = dnew(n * sizeof(uint16_t) + 16), *h16 = xmalloc(n * sizeof(uint16_t) + 16);
    poison(dxh, n * sizeof(uint16_t) + 16);
    up(dg, b.dg0, cb);
    up(db, b.db0, cb);
    batchnorm_backward_cuda(&G, ST, M, C, x, GANC_X_FP32, dy, GANC_X_FP32, gamma, dmean, drstd, dxh,
                            1, dg, db);
    down(h16, dxh, n * sizeof(uint16_t) + 16);
    down(hg2, dg, cb);
    down(hb2, db, cb);
    int halves_same = 1, fenced = 1;
    for (size_t i = 0; i < n; i++)
      halves_same &= h16[i] == ganc_bf16_store(hy[i]);
    for (size_t i = n; i < n + 8; i++)
      fenced &= h16[i] == 0xFFFFu;
    same = !memcmp(hg, hg2, cb) && !memcmp(hb, hb2, cb);
    report(halves_same && fenced && same,
           "gpu   bn_backward bf16 dx M=%-7lld C=%-4d %-20s halves of the FP32 dx: %s%s%s",
           (long long)M, C, where, halves_same ? "bit-exact" : "DIFFER",
           same ? "" : ", DGAMMA/DBETA DIFFER", fenced ? "" : ", WROTE PAST dx");
    ganc_cuda_free(&G, dxh);
    free(h16);
  }

  // x read as halves (GANC_X_BF16: a bf16 run's stored convolution output) or rounded as it is
  // read (GANC_X_ROUND): bit for bit this device's op on the widened halves — training (y, mean,
  // rstd, running statistics), eval, backward (dx, dgamma, dbeta) — with the halves at a 2-byte
  // offset (the loads are scalar).
  {
    uint16_t *h16 = xmalloc(n * sizeof(uint16_t)), *xh = dnew(n * sizeof(uint16_t) + 16);
    float *xw = fnew(n), *ref = fnew(3 * n + 6 * (size_t)C), *got = fnew(3 * n + 6 * (size_t)C);
    for (size_t i = 0; i < n; i++)
      h16[i] = ganc_bf16_store(b.x[i]), xw[i] = ganc_bf16_load(h16[i]);
    up((uint8_t *)xh + 2, h16, n * sizeof(uint16_t));
    float *dxw = dup_to_device(xw, n);
    int all_same = 1;
    for (int mode = -1; mode <= GANC_X_ROUND; mode++) { // -1: the reference, x widened
      if (mode == GANC_X_FP32) continue;
      const void *xin = mode < 0              ? (const void *)dxw
                        : mode == GANC_X_BF16 ? (const void *)((uint8_t *)xh + 2)
                                              : (const void *)x;
      const int xm = mode < 0 ? GANC_X_FP32 : mode;
      float *out = mode < 0 ? ref : got;
      up(rm, b.rm0, cb);
      up(rv, b.rv0, cb);
      poison(y, fb);
      batchnorm_forward_train_cuda(&G, ST, M, C, xin, xm, gamma, beta, BN_EPS, BN_MOMENTUM,
                                   GANC_ACT_LRELU, 0.2f, y, 0, mean, rstd, rm, rv, NULL, NULL);
      down(out, y, fb);
      down(out + 3 * n, mean, cb);
      down(out + 3 * n + C, rstd, cb);
      down(out + 3 * n + 2 * C, rm, cb);
      down(out + 3 * n + 3 * C, rv, cb);
      poison(y, fb);
      batchnorm_forward_eval_cuda(&G, ST, M, C, xin, xm, gamma, beta, rm, rv, BN_EPS, GANC_ACT_RELU,
                                  0.0f, y, 0);
      down(out + n, y, fb);
      up(dg, b.dg0, cb);
      up(db, b.db0, cb);
      poison(dx, fb);
      batchnorm_backward_cuda(&G, ST, M, C, xin, xm, dy, GANC_X_FP32, gamma, dmean, drstd, dx, 0,
                              dg, db);
      down(out + 2 * n, dx, fb);
      down(out + 3 * n + 4 * C, dg, cb);
      down(out + 3 * n + 5 * C, db, cb);
      if (mode >= 0) all_same &= !memcmp(ref, got, (3 * n + 6 * (size_t)C) * sizeof(float));
    }
    // y over x (FP32 x, rounded as read): the bits of the op out of place, train and eval.
    float *xy = dnew(fb);
    for (int train = 0; train < 2; train++) {
      up(xy, b.x, fb);
      if (train) {
        batchnorm_forward_train_cuda(&G, ST, M, C, x, GANC_X_ROUND, gamma, beta, BN_EPS,
                                     BN_MOMENTUM, GANC_ACT_LRELU, 0.2f, y, 0, mean, rstd, NULL,
                                     NULL, NULL, NULL);
        batchnorm_forward_train_cuda(&G, ST, M, C, xy, GANC_X_ROUND, gamma, beta, BN_EPS,
                                     BN_MOMENTUM, GANC_ACT_LRELU, 0.2f, xy, 0, mean, rstd, NULL,
                                     NULL, NULL, NULL);
      } else {
        batchnorm_forward_eval_cuda(&G, ST, M, C, x, GANC_X_ROUND, gamma, beta, rm, rv, BN_EPS,
                                    GANC_ACT_RELU, 0.0f, y, 0);
        batchnorm_forward_eval_cuda(&G, ST, M, C, xy, GANC_X_ROUND, gamma, beta, rm, rv, BN_EPS,
                                    GANC_ACT_RELU, 0.0f, xy, 0);
      }
      down(ref, y, fb);
      down(got, xy, fb);
      all_same &= !memcmp(ref, got, fb);
    }
    ganc_cuda_free(&G, xy);
    report(all_same,
           "gpu   bn x in bf16/round M=%-7lld C=%-4d %-20s = the op on the widened x, in place: %s",
           (long long)M, C, where, all_same ? "bit-exact" : "DIFFERS");
    ganc_cuda_free(&G, xh);
    ganc_cuda_free(&G, dxw);
    free(h16), free(xw), free(ref), free(got);
  }

  // dy read as halves (GANC_X_BF16: a bf16 run's gradient that a convolution's backward-data
  // stored so) or rounded as it is read (GANC_X_ROUND), with x FP32 and with x's halves: bit for
  // bit this device's backward on the widened dy (dx, dgamma, dbeta), the halves at a 2-byte
  // offset; the FP32 dy gives another dx.
  {
    uint16_t *h16 = xmalloc(n * sizeof(uint16_t)), *dyh = dnew(n * sizeof(uint16_t) + 16);
    uint16_t *xh = dnew(n * sizeof(uint16_t) + 16);
    float *dyw = fnew(n), *xw = fnew(n), *ref = fnew(n + 2 * (size_t)C),
          *got = fnew(n + 2 * (size_t)C);
    for (size_t i = 0; i < n; i++)
      h16[i] = ganc_bf16_store(b.dy[i]), dyw[i] = ganc_bf16_load(h16[i]);
    up((uint8_t *)dyh + 2, h16, n * sizeof(uint16_t));
    for (size_t i = 0; i < n; i++)
      h16[i] = ganc_bf16_store(b.x[i]), xw[i] = ganc_bf16_load(h16[i]);
    up((uint8_t *)xh + 2, h16, n * sizeof(uint16_t));
    float *d_dyw = dup_to_device(dyw, n), *d_xw = dup_to_device(xw, n);
    int all_same = 1, moved = 0;
    for (int k = -1; k < 4; k++) { // -1: the reference (x, dy widened); 3: the FP32 dy
      const int dm = k == 1 ? GANC_X_ROUND : k == 0 || k == 2 ? GANC_X_BF16 : GANC_X_FP32;
      const void *dyin = k < 0               ? (const void *)d_dyw
                         : k == 3            ? (const void *)dy
                         : dm == GANC_X_BF16 ? (const void *)((uint8_t *)dyh + 2)
                                             : (const void *)dy;
      const void *xin = k == 2 ? (const void *)((uint8_t *)xh + 2) : (const void *)d_xw;
      const int xm = k == 2 ? GANC_X_BF16 : GANC_X_FP32;
      float *out = k < 0 ? ref : got;
      up(dg, b.dg0, cb);
      up(db, b.db0, cb);
      poison(dx, fb);
      batchnorm_backward_cuda(&G, ST, M, C, xin, xm, dyin, dm, gamma, dmean, drstd, dx, 0, dg, db);
      down(out, dx, fb);
      down(out + n, dg, cb);
      down(out + n + C, db, cb);
      if (k >= 0 && k < 3) all_same &= !memcmp(ref, got, (n + 2 * (size_t)C) * sizeof(float));
      if (k == 3) moved = memcmp(ref, got, fb) != 0;
    }
    report(all_same && moved,
           "gpu   bn dy in bf16/round M=%-7lld C=%-4d %-20s = the op on the widened dy: %s%s",
           (long long)M, C, where, all_same ? "bit-exact" : "DIFFERS",
           moved ? "" : ", THE FP32 dy GIVES THE SAME dx");
    ganc_cuda_free(&G, dyh);
    ganc_cuda_free(&G, xh);
    ganc_cuda_free(&G, d_dyw);
    ganc_cuda_free(&G, d_xw);
    free(h16), free(dyw), free(xw), free(ref), free(got);
  }

  float *dev[] = {x, dy, gamma, beta, rm, rv, y, mean, rstd, dx, dg, db, dmean, drstd};
  for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
    ganc_cuda_free(&G, dev[i]);
  free(hy), free(hy2), free(hm), free(hr), free(hrm), free(hrv), free(hg), free(hb), free(hg2),
      free(hb2);
  bn_case_free(&b);
}

// Batch-norm statistics from slot sums (ops.h: ganc_bn_part; a convolution's epilogue or
// batchnorm_slot_stats gives them): batchnorm_slot_stats_cuda's slots against the CPU twin's
// (the same 64-row slots, summed in another order: to the rounding of double), for x in FP32 and
// rounded to bf16 as read; then the training forward from the GPU's slots against the CPU twin's
// two-pass forward (the statistics differ only in the rounding of double), with the statistics
// kept, twice (the same bits), and against the CPU twin's forward from the same slots.
static void gpu_bn_slots(int64_t M, int C, const char *where) {
  bn_case b;
  bn_case_make(&b, M, C);
  const size_t n = (size_t)M * C, fb = n * sizeof(float), cb = (size_t)C * sizeof(float);
  const int64_t cap = ganc_bn_part_slots(M),
                nslot = (M + GANC_BN_SLOT_ROWS - 1) / GANC_BN_SLOT_ROWS;
  const size_t pd = (size_t)cap * 2 * (size_t)C;
  double *hp = malloc(pd * sizeof(double)), *cp = malloc(pd * sizeof(double));
  ganc_bn_part gp = {dnew(pd * sizeof(double)), cap, 0}, hpart = {cp, cap, 0};
  float *x = dup_to_device(b.x, n), *gamma = dup_to_device(b.gamma, C),
        *beta = dup_to_device(b.beta, C), *y = dnew(fb), *mean = dnew(cb), *rstd = dnew(cb),
        *rm = dnew(cb), *rv = dnew(cb);
  double *keep = dnew(2 * (size_t)C * sizeof(double));
  float *hy = fnew(n), *hy2 = fnew(n), *hm = fnew(C), *hr = fnew(C), *hrm = fnew(C), *hrv = fnew(C);
  for (int xm = GANC_X_FP32; xm <= GANC_X_ROUND; xm += GANC_X_ROUND - GANC_X_FP32) {
    poison(gp.part, pd * sizeof(double));
    gp.nslot = 0;
    batchnorm_slot_stats_cuda(&G, ST, M, C, x, xm, &gp);
    batchnorm_slot_stats_cpu(&CPU, M, C, b.x, xm, &hpart);
    down(hp, gp.part, (size_t)nslot * 2 * C * sizeof(double));
    double worst = 0.0;
    for (size_t i = 0; i < (size_t)nslot * 2 * C; i++) {
      const double d = fabs(hp[i] - cp[i]) / (fabs(cp[i]) + 1e-300);
      worst = isnan(hp[i]) || d > worst ? (isnan(hp[i]) ? INFINITY : d) : worst;
    }
    report(gp.nslot == nslot && hpart.nslot == nslot && worst <= 1e-12,
           "gpu   bn_slot_stats      M=%-7lld C=%-4d %-20s x %s: %lld slots, rel err %.1e",
           (long long)M, C, where, xm == GANC_X_FP32 ? "fp32 " : "round", (long long)gp.nslot,
           worst);
  }
  // (gp holds the FP32 slots again: the last loop's were rounded)
  batchnorm_slot_stats_cuda(&G, ST, M, C, x, GANC_X_FP32, &gp);
  batchnorm_slot_stats_cpu(&CPU, M, C, b.x, GANC_X_FP32, &hpart);
  int same = 1;
  const double e = bn_train_twice(&b, x, gamma, beta, y, mean, rstd, rm, rv, keep, &gp, hy, hy2, hm,
                                  hr, hrm, hrv, &same);
  // The CPU twin from its own slots: the same statistics to the rounding of double.
  float *cy = fnew(n), *cm = fnew(C), *cr = fnew(C);
  batchnorm_forward_train_cpu(&CPU, M, C, b.x, GANC_X_FP32, b.gamma, b.beta, BN_EPS, BN_MOMENTUM,
                              GANC_ACT_NONE, 0.0f, cy, 0, cm, cr, NULL, NULL, NULL, &hpart);
  const double ec = max5(nerr(hy, cy, n), nerr(hm, cm, C), nerr(hr, cr, C), 0, 0);
  report(e <= TOL_BN_FWD && ec <= TOL_BN_FWD && same,
         "gpu   bn_forward_train   M=%-7lld C=%-4d %-20s from slot sums: err %.2e against two "
         "passes, %.2e against the CPU's slots (tol %.0e)%s",
         (long long)M, C, where, e, ec, TOL_BN_FWD, same ? ", kept: identical" : ", KEPT DIFFERS");
  float *dev[] = {x, gamma, beta, y, mean, rstd, rm, rv};
  for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
    ganc_cuda_free(&G, dev[i]);
  ganc_cuda_free(&G, keep);
  ganc_cuda_free(&G, gp.part);
  free(hp), free(cp), free(hy), free(hy2), free(hm), free(hr), free(hrm), free(hrv), free(cy),
      free(cm), free(cr);
  bn_case_free(&b);
}

// Batch norm's optional arguments and in-place use on one real shape.
static void gpu_bn_special(void) {
  const int64_t M = 64 * 64;
  const int C = 128;
  bn_case b;
  bn_case_make(&b, M, C);
  const size_t n = (size_t)M * C, fb = n * sizeof(float), cb = (size_t)C * sizeof(float);
  float *x = dup_to_device(b.x, n), *gamma = dup_to_device(b.gamma, C),
        *beta = dup_to_device(b.beta, C), *y = dnew(fb), *mean = dnew(cb), *rstd = dnew(cb),
        *rv = dnew(cb);
  float *hy = fnew(n), *hm = fnew(C), *hr = fnew(C), *hrv = fnew(C);

  // No running statistics at all.
  poison(y, fb);
  poison(mean, cb);
  poison(rstd, cb);
  batchnorm_forward_train_cuda(&G, ST, M, C, x, GANC_X_FP32, gamma, beta, BN_EPS, BN_MOMENTUM,
                               GANC_ACT_NONE, 0.0f, y, 0, mean, rstd, NULL, NULL, NULL, NULL);
  down(hy, y, fb);
  down(hm, mean, cb);
  down(hr, rstd, cb);
  double e = max5(nerr(hy, b.y, n), nerr(hm, b.mean, C), nerr(hr, b.rstd, C), 0, 0);
  report(e <= TOL_BN_FWD,
         "gpu   bn_forward_train   M=%lld C=%d run_mean = run_var = NULL: err %.2e", (long long)M,
         C, e);

  // Only the running variance.
  up(rv, b.rv0, cb);
  batchnorm_forward_train_cuda(&G, ST, M, C, x, GANC_X_FP32, gamma, beta, BN_EPS, BN_MOMENTUM,
                               GANC_ACT_NONE, 0.0f, y, 0, mean, rstd, NULL, rv, NULL, NULL);
  down(hrv, rv, cb);
  e = nerr(hrv, b.rv, C);
  report(e <= TOL_BN_FWD,
         "gpu   bn_forward_train   M=%lld C=%d run_mean = NULL only: run_var err %.2e",
         (long long)M, C, e);

  // In place, y == x (the kernels read every statistic before the normalise pass writes).
  float *xy = dup_to_device(b.x, n);
  batchnorm_forward_train_cuda(&G, ST, M, C, xy, GANC_X_FP32, gamma, beta, BN_EPS, BN_MOMENTUM,
                               GANC_ACT_NONE, 0.0f, xy, 0, mean, rstd, NULL, NULL, NULL, NULL);
  down(hy, xy, fb);
  e = nerr(hy, b.y, n);
  report(e <= TOL_BN_FWD, "gpu   bn_forward_train   M=%lld C=%d in place (y == x): err %.2e",
         (long long)M, C, e);

  float *dev[] = {x, gamma, beta, y, mean, rstd, rv, xy};
  for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
    ganc_cuda_free(&G, dev[i]);
  free(hy), free(hm), free(hr), free(hrv);
  bn_case_free(&b);
}

static void act_gpu(int op, int bw, int64_t n, float slope, const float *a, const float *b,
                    float *out) {
  if (!bw) {
    if (op == 0) relu_forward_cuda(&G, ST, n, a, out);
    if (op == 1) lrelu_forward_cuda(&G, ST, n, slope, a, out);
    if (op == 2) tanh_forward_cuda(&G, ST, n, a, out);
  } else {
    if (op == 0) relu_backward_cuda(&G, ST, n, a, 0, b, out);
    if (op == 1) lrelu_backward_cuda(&G, ST, n, slope, a, 0, b, out);
    if (op == 2) tanh_backward_cuda(&G, ST, n, a, b, out);
  }
}

// Each op out of place (poisoned output) and in place (y == x forward, dx == dy backward).
static void gpu_act(int64_t n, int misalign) {
  const size_t N = (size_t)n, bytes = N * sizeof(float);
  float *ha = fnew(N), *hb = fnew(N), *want = fnew(N), *got = fnew(N), *ref = fnew(N);
  act_inputs(ha, hb, N);
  float *da0 = dnew(bytes + 16), *db0 = dnew(bytes + 16), *dout0 = dnew(bytes + 16);
  float *da = da0 + misalign, *db = db0 + misalign, *dout = dout0 + misalign;
  for (int op = 0; op < 3; op++)
    for (int bw = 0; bw < 2; bw++) {
      act_cpu(op, bw, n, 0.2f, ha, hb, want);
      up(da, ha, bytes);
      up(db, hb, bytes);
      poison(dout0, bytes + 16);
      act_gpu(op, bw, n, 0.2f, da, db, dout);
      down(got, dout, bytes);
      const int64_t u = max_ulp(got, want, N);
      const int fenced =
          untouched_around(dout0, bytes + 16, (size_t)misalign * sizeof(float), bytes);
      // In place: the input that the output may alias is overwritten.
      float *alias = bw ? db : da;
      act_gpu(op, bw, n, 0.2f, da, db, alias);
      down(got, alias, bytes);
      const int64_t ui = max_ulp(got, want, N);
      const int64_t tol = op == 2 && !bw ? ULP_TANH_VS_CPU : 0;
      int ok = u <= tol && ui <= tol && fenced;
      if (!fenced) printf("      (%s wrote outside its output)\n", ACT_NAMES[op][bw]);
      if (op == 2 && !bw) { // and against the correctly rounded tanh
        for (size_t i = 0; i < N; i++)
          ref[i] = (float)tanh((double)ha[i]);
        const int64_t ur = max_ulp(got, ref, N);
        ok = ok && ur <= ULP_TANH_VS_DOUBLE;
        report(ok,
               "gpu   %-16s n=%-8lld%s %lld ulp, in place %lld ulp (tol %d); vs tanh(double) "
               "%lld ulp (tol %d)",
               ACT_NAMES[op][bw], (long long)n, misalign ? " misaligned" : "", (long long)u,
               (long long)ui, ULP_TANH_VS_CPU, (long long)ur, ULP_TANH_VS_DOUBLE);
        continue;
      }
      report(ok, "gpu   %-16s n=%-8lld%s %lld ulp, in place %lld ulp (tol %lld)", ACT_NAMES[op][bw],
             (long long)n, misalign ? " misaligned" : "", (long long)u, (long long)ui,
             (long long)tol);
    }
  // ReLU and leaky ReLU backward with y stored in bf16 (train.bf16_activations), misaligned as the
  // others (the halves then off their 8-byte loads): the CPU twin's bits, out of place and with
  // dx == dy.
  uint16_t *hh = xmalloc(N * sizeof(uint16_t)), *dh0 = dnew(N * sizeof(uint16_t) + 16);
  uint16_t *dh = dh0 + misalign;
  for (size_t i = 0; i < N; i++)
    hh[i] = ganc_bf16_store(ha[i]);
  up(dh, hh, N * sizeof(uint16_t));
  for (int op = 0; op < 2; op++) {
    if (op == 0) relu_backward_cpu(&CPU, n, hh, 1, hb, want);
    if (op == 1) lrelu_backward_cpu(&CPU, n, 0.2f, hh, 1, hb, want);
    up(db, hb, bytes);
    poison(dout0, bytes + 16);
    if (op == 0) relu_backward_cuda(&G, ST, n, dh, 1, db, dout);
    if (op == 1) lrelu_backward_cuda(&G, ST, n, 0.2f, dh, 1, db, dout);
    down(got, dout, bytes);
    const int64_t u = max_ulp(got, want, N);
    const int fenced = untouched_around(dout0, bytes + 16, (size_t)misalign * sizeof(float), bytes);
    if (op == 0) relu_backward_cuda(&G, ST, n, dh, 1, db, db);
    if (op == 1) lrelu_backward_cuda(&G, ST, n, 0.2f, dh, 1, db, db);
    down(got, db, bytes);
    const int64_t ui = max_ulp(got, want, N);
    report(u == 0 && ui == 0 && fenced,
           "gpu   %-16s n=%-8lld%s y in bf16: %lld ulp, in place %lld ulp%s", ACT_NAMES[op][1],
           (long long)n, misalign ? " misaligned" : "", (long long)u, (long long)ui,
           fenced ? "" : " (WROTE OUTSIDE its output)");
  }
  // act_forward_bf16 (train.bf16_activations, an activation straight on a convolution): the CPU
  // twin's halves, bit for bit, for each activation; misaligned as the others, nothing written
  // outside y.
  uint16_t *wanth = xmalloc(N * sizeof(uint16_t) + 16), *goth = xmalloc(N * sizeof(uint16_t) + 16);
  for (int act = GANC_ACT_NONE; act <= GANC_ACT_LRELU; act++) {
    act_forward_bf16_cpu(&CPU, n, act, 0.2f, ha, wanth);
    up(da, ha, bytes);
    poison(dh0, N * sizeof(uint16_t) + 16);
    act_forward_bf16_cuda(&G, ST, n, act, 0.2f, da, dh);
    down(goth, dh0, N * sizeof(uint16_t) + 16);
    int same = memcmp(goth + misalign, wanth, N * sizeof(uint16_t)) == 0, fenced = 1;
    for (size_t i = 0; i < N + 8; i++)
      if (i < (size_t)misalign || i >= N + (size_t)misalign) fenced &= goth[i] == 0xFFFFu;
    report(same && fenced, "gpu   act_forward_bf16 %-5s n=%-8lld%s halves of the CPU's: %s%s",
           act == GANC_ACT_RELU    ? "relu"
           : act == GANC_ACT_LRELU ? "lrelu"
                                   : "none",
           (long long)n, misalign ? " misaligned" : "", same ? "bit-exact" : "DIFFER",
           fenced ? "" : " (WROTE OUTSIDE its output)");
  }
  free(wanth), free(goth);
  ganc_cuda_free(&G, dh0);
  free(hh);
  ganc_cuda_free(&G, da0);
  ganc_cuda_free(&G, db0);
  ganc_cuda_free(&G, dout0);
  free(ha), free(hb), free(want), free(got), free(ref);
}

static void gpu_loss(int n) {
  const size_t bytes = (size_t)n * sizeof(float);
  float *l = fnew(n), *dw = fnew(n), *d = fnew(n), *d2 = fnew(n), lossw, loss, loss2;
  loss_inputs(l, n);
  float *dl = dup_to_device(l, n), *dd = dnew(bytes), *dloss = dnew(sizeof(float));
  for (int kind = 0; kind < 3; kind++)
    for (int ti = 0; ti < 2; ti++) {
      if (kind == 2 && ti == 1) continue;
      const float t = ti ? -1.0f : 1.0f;
      if (kind == 0)
        loss_logistic_cpu(&CPU, n, l, t, dw, &lossw);
      else
        loss_hinge_cpu(&CPU, n, l, t, kind == 2, dw, &lossw);
      for (int run = 0; run < 2; run++) {
        poison(dd, bytes);
        poison(dloss, sizeof(float));
        if (kind == 0)
          loss_logistic_cuda(&G, ST, n, dl, t, dd, dloss);
        else
          loss_hinge_cuda(&G, ST, n, dl, t, kind == 2, dd, dloss);
        down(run ? d2 : d, dd, bytes);
        down(run ? &loss2 : &loss, dloss, sizeof(float));
      }
      const double e = max5(nerr(&loss, &lossw, 1), nerr(d, dw, n), 0, 0, 0);
      const int same = !memcmp(d, d2, bytes) && !memcmp(&loss, &loss2, sizeof loss);
      report(e <= TOL_LOSS && same,
             "gpu   %-16s n=%-6d target %+g: loss %.7g (cpu %.7g), err %.2e (tol %.0e)%s",
             kind == 0   ? "loss_logistic"
             : kind == 1 ? "loss_hinge D"
                         : "loss_hinge G",
             n, t, (double)loss, (double)lossw, e, TOL_LOSS, same ? "" : ", RERUN DIFFERS");
    }
  ganc_cuda_free(&G, dl);
  ganc_cuda_free(&G, dd);
  ganc_cuda_free(&G, dloss);
  free(l), free(dw), free(d), free(d2);
}

// LeCam: three steps (reals, then fakes) from the starting state, onto a gradient already there,
// against the CPU twin: the same tree, so the same bits (dlogit and the double state).
static void gpu_lecam(int n) {
  const size_t bytes = (size_t)n * sizeof(float);
  float *lr = fnew(n), *lf = fnew(n), *pre = fnew(n), *want = fnew(n), *got = fnew(n);
  double st[4] = {0.0, 0.0, 1.0, 0.0}, gst[4];
  float *dl = dnew(bytes), *dlog = dnew(bytes);
  double *dst = dnew(sizeof st);
  up(dst, st, sizeof st);
  int same = 1;
  for (int step = 0; step < 3; step++)
    for (int fake = 0; fake < 2; fake++) {
      float *l = fake ? lf : lr;
      loss_inputs(l, n);
      for (int i = 0; i < n; i++) // D's outputs apart, reals above fakes, some across
        l[i] = 0.05f * l[i] + (fake ? -0.4f : 0.4f);
      fill(pre, n, -1e-2f, 1e-2f);
      memcpy(want, pre, bytes);
      loss_lecam_cpu(&CPU, n, l, fake, 0.3f, 0.9f, st, want);
      up(dlog, l, bytes);
      up(dl, pre, bytes);
      loss_lecam_cuda(&G, ST, n, dlog, fake, 0.3f, 0.9f, dst, dl);
      down(got, dl, bytes);
      down(gst, dst, sizeof gst);
      same &= !memcmp(got, want, bytes) && !memcmp(gst, st, sizeof st);
    }
  int moved = 0; // the regulariser took effect (steps 2 and 3)
  for (int i = 0; i < n; i++)
    moved |= got[i] != pre[i];
  report(same && moved, "gpu   loss_lecam       n=%-6d 3 steps: dlogit and averages %s%s", n,
         same ? "bit-exact" : "DIFFER", moved ? "" : " (NOTHING ADDED)");
  ganc_cuda_free(&G, dl);
  ganc_cuda_free(&G, dlog);
  ganc_cuda_free(&G, dst);
  free(lr), free(lf), free(pre), free(want), free(got);
}

// The largest normalized error and ulp distance of k device buffers [n] against the host's.
static void worst_of(const float *const *want, const float *const *dev, int k, size_t n, float *got,
                     double *e, int64_t *u) {
  *e = 0.0;
  *u = 0;
  for (int q = 0; q < k; q++) {
    down(got, dev[q], n * sizeof(float));
    const double eq = nerr(got, want[q], n);
    const int64_t uq = max_ulp(got, want[q], n);
    *e = eq > *e ? eq : *e;
    *u = uq > *u ? uq : *u;
  }
}

static void gpu_adam(size_t n, int misalign) {
  const size_t bytes = n * sizeof(float);
  float *p = fnew(n), *g = fnew(n), *m = fnew(n), *v = fnew(n), *got = fnew(n);
  fill(p, n, -0.1f, 0.1f);
  fill(m, n, -0.01f, 0.01f);
  fill(v, n, 0.0f, 1e-4f);
  float *dp0 = dnew(bytes + 16), *dg0 = dnew(bytes + 16), *dm0 = dnew(bytes + 16),
        *dv0 = dnew(bytes + 16);
  float *dp = dp0 + misalign, *dg = dg0 + misalign, *dm = dm0 + misalign, *dv = dv0 + misalign;
  float *dk = dnew(GANC_ADAM_K * sizeof(float));
  up(dp, p, bytes);
  up(dm, m, bytes);
  up(dv, v, bytes);
  for (int64_t t = 1; t <= 3; t++) {
    fill(g, n, -0.05f, 0.05f);
    up(dg, g, bytes);
    float k[GANC_ADAM_K];
    ganc_adam_consts(2e-4f, 0.5f, 0.999f, 1e-8f, t, 0.0f, k);
    up(dk, k, sizeof k);
    adam_update_cpu(&CPU, n, p, g, m, v, NULL, NULL, k);
    adam_update_cuda(&G, ST, n, dp, dg, dm, dv, NULL, NULL, dk);
    double e;
    int64_t u;
    const float *want[] = {p, m, v};
    const float *dev[] = {dp, dm, dv};
    worst_of(want, dev, 3, n, got, &e, &u);
    report(e <= TOL_ADAM, "gpu   adam_update      n=%-8zu%s t=%lld: err %.2e (tol %.0e), %lld ulp",
           n, misalign ? " misaligned" : "", (long long)t, e, TOL_ADAM, (long long)u);
  }
  // EMA of the updated parameters.
  float *ema = fnew(n);
  fill(ema, n, -0.1f, 0.1f);
  up(dm, ema, bytes); // dm as the EMA buffer
  ema_update_cpu(&CPU, n, ema, p, 0.999f);
  ema_update_cuda(&G, ST, n, dm, dp, 0.999f);
  down(got, dm, bytes);
  const double e = nerr(got, ema, n);
  report(e <= TOL_ADAM, "gpu   ema_update       n=%-8zu%s: err %.2e (tol %.0e), %lld ulp", n,
         misalign ? " misaligned" : "", e, TOL_ADAM, (long long)max_ulp(got, ema, n));
  // Adam with the EMA fused (the trainer's G update): p, m, v and ema as the CPU twin's, and the
  // fused EMA equal to ema_update after an unfused step, bit for bit; with the updated weights'
  // bf16 halves written in the same pass: the CPU twin's, which are the rounded p, bit for bit,
  // and nothing written past them (two poisoned guard halves).
  {
    float k[GANC_ADAM_K];
    ganc_adam_consts(2e-4f, 0.5f, 0.999f, 1e-8f, 4, 0.9f, k);
    up(dk, k, sizeof k);
    float *dema0 = dnew(bytes + 16), *dema = dema0 + misalign;
    float *p2 = fnew(n), *m2 = fnew(n), *v2 = fnew(n), *ema2 = fnew(n);
    memcpy(p2, p, bytes), memcpy(m2, m, bytes), memcpy(v2, v, bytes), memcpy(ema2, ema, bytes);
    fill(g, n, -0.05f, 0.05f);
    up(dg, g, bytes);
    up(dema, ema, bytes);
    up(dm, m, bytes);
    uint16_t *ph = xmalloc((n + 2) * sizeof(uint16_t)), *gh = xmalloc((n + 2) * sizeof(uint16_t));
    uint16_t *dph0 = (uint16_t *)dnew((n + 3) * sizeof(uint16_t) + 16), *dph = dph0 + misalign;
    memset(gh, 0xA5, (n + 2) * sizeof(uint16_t));
    up(dph, gh, (n + 2) * sizeof(uint16_t));
    adam_update_cpu(&CPU, n, p, g, m, v, ema, ph, k);
    adam_update_cuda(&G, ST, n, dp, dg, dm, dv, dema, dph, dk);
    down(gh, dph, (n + 2) * sizeof(uint16_t));
    int halves = gh[n] == 0xA5A5 && gh[n + 1] == 0xA5A5;
    for (size_t i = 0; i < n; i++)
      halves &= ph[i] == ganc_bf16_store(p[i]) && gh[i] == ph[i];
    report(halves, "gpu   adam_update bf16 n=%-8zu%s: the updated weights' halves %s", n,
           misalign ? " misaligned" : "", halves ? "as the CPU's, = round(p)" : "DIFFER");
    free(ph), free(gh);
    ganc_cuda_free(&G, dph0);
    float k0[GANC_ADAM_K];
    ganc_adam_consts(2e-4f, 0.5f, 0.999f, 1e-8f, 4, 0.0f, k0);
    adam_update_cpu(&CPU, n, p2, g, m2, v2, NULL, NULL, k0);
    ema_update_cpu(&CPU, n, ema2, p2, 0.9f);
    double ef;
    int64_t uf;
    const float *want[] = {p, m, v, ema};
    const float *dev[] = {dp, dm, dv, dema};
    worst_of(want, dev, 4, n, got, &ef, &uf);
    const int same = !memcmp(p, p2, bytes) && !memcmp(ema, ema2, bytes);
    report(ef <= TOL_ADAM && same,
           "gpu   adam_update+ema  n=%-8zu%s: err %.2e (tol %.0e), %lld ulp; fused = unfused: %s",
           n, misalign ? " misaligned" : "", ef, TOL_ADAM, (long long)uf, same ? "yes" : "NO");
    ganc_cuda_free(&G, dema0);
    free(p2), free(m2), free(v2), free(ema2);
  }
  ganc_cuda_free(&G, dk);
  ganc_cuda_free(&G, dp0);
  ganc_cuda_free(&G, dg0);
  ganc_cuda_free(&G, dm0);
  ganc_cuda_free(&G, dv0);
  free(p), free(g), free(m), free(v), free(got), free(ema);
}

// ---- the training step's own ops, and CUDA graphs ---------------------------------------------

// step_draws: latents, flips and the fakes' labels of a step, read from device memory
// (ganc_step_args), against the CPU twin bit for bit; outputs poisoned first.
static void gpu_step_draws(int N, int row0, int z_dim, int mirror, int ncls, uint64_t step) {
  ganc_step_args a;
  memset(&a, 0, sizeof a);
  a.step = step;
  a.latent_first = step * 1000 + (uint64_t)row0;
  const size_t zn = (size_t)N * z_dim;
  float *z = fnew(zn), *gz = fnew(zn);
  uint8_t *fl = xmalloc((size_t)N + 1), *gfl = xmalloc((size_t)N + 1);
  int32_t *lb = xmalloc(sizeof(int32_t) * ((size_t)N + 1)),
          *glb = xmalloc(sizeof(int32_t) * ((size_t)N + 1));
  ganc_step_args *da = dnew(sizeof a);
  float *dz = dnew(zn * sizeof(float) + 4);
  uint8_t *dfl = dnew((size_t)N + 1);
  int32_t *dlb = dnew(sizeof(int32_t) * ((size_t)N + 1));
  up(da, &a, sizeof a);
  poison(dz, zn * sizeof(float) + 4);
  poison(dfl, (size_t)N + 1);
  poison(dlb, sizeof(int32_t) * ((size_t)N + 1));
  step_draws_cpu(&CPU, &a, 42, N, row0, z_dim, mirror, ncls, z, fl, ncls ? lb : NULL);
  step_draws_cuda(&G, ST, da, 42, N, row0, z_dim, mirror, ncls, dz, dfl, ncls ? dlb : NULL);
  down(gz, dz, zn * sizeof(float));
  down(gfl, dfl, (size_t)N + 1);
  down(glb, dlb, sizeof(int32_t) * ((size_t)N + 1));
  int ok = !memcmp(z, gz, zn * sizeof(float)) && !memcmp(fl, gfl, (size_t)N) && gfl[N] == 0xFF;
  if (ncls)
    ok = ok && !memcmp(lb, glb, sizeof(int32_t) * (size_t)N);
  else
    for (int i = 0; i < N && ok; i++)
      ok = glb[i] == -1; // not written without classes
  int flips = 0;
  for (int i = 0; i < N; i++)
    flips += fl[i];
  report(ok,
         "gpu   step_draws       N=%d row0=%d z=%d mirror=%d classes=%d step=%llu: bit-exact "
         "(%d flips)",
         N, row0, z_dim, mirror, ncls, (unsigned long long)step, flips);
  ganc_cuda_free(&G, da);
  ganc_cuda_free(&G, dz);
  ganc_cuda_free(&G, dfl);
  ganc_cuda_free(&G, dlb);
  free(z), free(gz), free(fl), free(gfl), free(lb), free(glb);
}

// step_stats: sums of loss, σ(logit) and logit added into doubles, against the CPU twin (exp in
// double may differ by an ulp on the GPU: 1e-12 relative), twice (it accumulates).
static void gpu_step_stats(int n) {
  float *l = fnew((size_t)n), loss = 0.75f;
  fill(l, (size_t)n, -30.0f, 30.0f);
  double acc[3] = {1.0, 2.0, 3.0}, gacc[3];
  float *dl = dnew((size_t)n * sizeof(float)), *dloss = dnew(sizeof(float));
  double *dacc = dnew(sizeof acc);
  up(dl, l, (size_t)n * sizeof(float));
  up(dloss, &loss, sizeof loss);
  up(dacc, acc, sizeof acc);
  for (int k = 0; k < 2; k++) {
    step_stats_cpu(&CPU, n, k ? NULL : l, &loss, acc);
    step_stats_cuda(&G, ST, n, k ? NULL : dl, dloss, dacc);
  }
  down(gacc, dacc, sizeof gacc);
  double e = 0;
  for (int i = 0; i < 3; i++)
    e = fmax(e, fabs(gacc[i] - acc[i]) / fmax(1.0, fabs(acc[i])));
  report(e <= 1e-12, "gpu   step_stats       n=%-6d: err %.2e (tol 1e-12)", n, e);
  ganc_cuda_free(&G, dl);
  ganc_cuda_free(&G, dloss);
  ganc_cuda_free(&G, dacc);
  free(l);
}

// CUDA graphs as the trainer uses them (kernels/ctx.cu): what is captured does not run while
// captured; each replay runs it again and its ops read device memory as it is then. Here a
// memset and an Adam step with EMA whose constants (device memory) change before every replay,
// against the CPU twin bit for bit at each replay.
static void gpu_graph(void) {
  const size_t n = 4099, bytes = n * sizeof(float);
  float *p = fnew(n), *g = fnew(n), *m = fnew(n), *v = fnew(n), *e = fnew(n), *got = fnew(n);
  fill(p, n, -0.1f, 0.1f);
  fill(g, n, -0.05f, 0.05f);
  fill(m, n, -0.01f, 0.01f);
  fill(v, n, 0.0f, 1e-4f);
  fill(e, n, -0.1f, 0.1f);
  float *dp = dnew(bytes), *dg = dnew(bytes), *dm = dnew(bytes), *dv = dnew(bytes),
        *de = dnew(bytes), *dk = dnew(GANC_ADAM_K * sizeof(float)), *dz = dnew(64);
  up(dp, p, bytes), up(dg, g, bytes), up(dm, m, bytes), up(dv, v, bytes), up(de, e, bytes);
  float k[GANC_ADAM_K];
  ganc_adam_consts(2e-4f, 0.5f, 0.999f, 1e-8f, 1, 0.9f, k);
  up(dk, k, sizeof k);
  ganc_cuda_capture_begin(&G);
  ganc_cuda_memset0(&G, dz, 64);
  adam_update_cuda(&G, ST, n, dp, dg, dm, dv, de, NULL, dk);
  ganc_graph *gr = ganc_cuda_capture_end(&G);
  down(got, dp, bytes);
  report(!memcmp(got, p, bytes), "gpu   graph            captured ops did not run while captured");
  int ok = 1;
  for (int64_t t = 1; t <= 3; t++) {
    ganc_adam_consts(2e-4f, 0.5f, 0.999f, 1e-8f, t, t == 2 ? 0.5f : 0.9f, k);
    up(dk, k, sizeof k);
    poison(dz, 64);
    ganc_cuda_graph_launch(&G, gr);
    adam_update_cpu(&CPU, n, p, g, m, v, e, NULL, k);
    const float *want[] = {p, m, v, e};
    const float *dev[] = {dp, dm, dv, de};
    for (int q = 0; q < 4; q++) {
      down(got, dev[q], bytes);
      ok = ok && !memcmp(got, want[q], bytes);
    }
    uint8_t z[64];
    down(z, dz, 64);
    for (int i = 0; i < 64; i++)
      ok = ok && z[i] == 0;
  }
  report(ok, "gpu   graph            3 replays, constants changed in between: bit-exact");
  ganc_cuda_graph_free(gr);
  float *bufs[] = {dp, dg, dm, dv, de, dk, dz};
  for (int i = 0; i < 7; i++)
    ganc_cuda_free(&G, bufs[i]);
  free(p), free(g), free(m), free(v), free(e), free(got);
}

// --quick (for compute-sanitizer, 10-100x slower): every case below 200,000 elements, which keeps
// every launcher, tail and tree shape but not the full-size layers.
static int quick;
static int big(int64_t n) { return quick && n >= 200000; }

// Inside a capture nothing has run, so waiting for the device is refused (CUDA's
// cudaErrorStreamCaptureUnsupported; cudemu the same): a step body that waits, or that grows the
// scratch (which waits first), stops with the call named instead of recording a wrong graph.
// Run in a fresh process of this binary (--capture-then-wait): CUDA does not survive fork().
static void capture_then_wait(void) {
  ganc_cuda_capture_begin(&G);
  ganc_cuda_sync(&G);
}
static void gpu_graph_refusal(void) {
  char msg[1024];
  const int rc = tu_run_self("--capture-then-wait", msg, sizeof msg);
  const int ok = rc == 1 && strstr(msg, "cudaStreamSynchronize") && strstr(msg, "capturing");
  report(ok, "gpu   graph            waiting inside a capture stops, naming the call");
  if (!ok) fprintf(stderr, "  child exit %d, message: %s\n", rc, msg);
}

static void gpu_pixels(int N, int H, int W, int C, const uint8_t *flip) {
  const size_t n = (size_t)N * H * W * C;
  uint8_t *src = xmalloc(n), *b = xmalloc(n), *bw = xmalloc(n);
  for (size_t i = 0; i < n; i++)
    src[i] = (uint8_t)rnd64();
  float *f = fnew(n), *fw = fnew(n);
  uint8_t *dsrc = dnew(n), *dflip = NULL, *db = dnew(n);
  float *df = dnew(n * sizeof(float));
  up(dsrc, src, n);
  if (flip) {
    dflip = dnew((size_t)N);
    up(dflip, flip, (size_t)N);
  }
  pixels_to_float_cpu(&CPU, N, H, W, C, src, flip, fw);
  poison(df, n * sizeof(float));
  pixels_to_float_cuda(&G, ST, N, H, W, C, dsrc, dflip, df);
  down(f, df, n * sizeof(float));
  size_t k = count_diff_bytes(f, fw, n * sizeof(float));
  report(k == 0, "gpu   pixels_to_float  [%d,%d,%d,%d] flip %s: %zu bytes differ", N, H, W, C,
         flip ? "yes" : "none", k);

  pixel_floats(f, n);
  up(df, f, n * sizeof(float));
  pixels_to_uint8_cpu(&CPU, (int64_t)n, f, bw);
  poison(db, n);
  pixels_to_uint8_cuda(&G, ST, (int64_t)n, df, db);
  down(b, db, n);
  k = count_diff_bytes(b, bw, n);
  report(k == 0, "gpu   pixels_to_uint8  n=%zu (NaN, inf, halves): %zu bytes differ", n, k);
  ganc_cuda_free(&G, dsrc);
  ganc_cuda_free(&G, dflip);
  ganc_cuda_free(&G, db);
  ganc_cuda_free(&G, df);
  free(src), free(b), free(bw), free(f), free(fw);
}

static void gpu_latents(uint64_t seed, uint64_t first, int n, int z_dim) {
  const size_t cnt = (size_t)n * z_dim, bytes = cnt * sizeof(float);
  float *z = fnew(cnt), *zw = fnew(cnt), *dz = dnew(bytes);
  for (int i = 0; i < n; i++)
    ganc_latent(seed, first + (uint64_t)i, z_dim, zw + (size_t)i * z_dim);
  poison(dz, bytes);
  latents_cuda(&G, ST, seed, first, n, z_dim, dz);
  down(z, dz, bytes);
  size_t k = 0;
  for (size_t i = 0; i < cnt; i++)
    k += memcmp(&z[i], &zw[i], sizeof(float)) != 0;
  report(k == 0, "gpu   latents          seed %#llx rows %llu..%llu z %d: %zu of %zu differ",
         (unsigned long long)seed, (unsigned long long)first,
         (unsigned long long)(first + (uint64_t)n - 1), z_dim, k, cnt);
  ganc_cuda_free(&G, dz);
  free(z), free(zw);
}

// =================================================================================================
// Resampling, spectral norm, class-conditional ops (kernels/resample.cu, spectral.cu, cond.cu):
// every one bit-identical to its CPU twin by construction (the same float operations in the same
// order; the same double trees of ops/sum_order.h), so each is compared at 0 ulp, its outputs
// poisoned, parameter gradients starting non-zero, and every one re-run for identical bits.
// =================================================================================================

// Under cudemu every CUDA thread is a fiber: the real layers at batch 1-2, the rest as on a GPU.
#ifdef GANC_CUDEMU
static const int EMU = 1;
#else
static const int EMU = 0;
#endif

static int32_t *labels_to_device(const int32_t *h, int n) {
  int32_t *d = dnew((size_t)n * sizeof(int32_t));
  up(d, h, (size_t)n * sizeof(int32_t));
  return d;
}

// got vs want at 0 ulp: the largest distance, for the report.
static int64_t ulp_of(const float *got, const float *want, size_t n) {
  return max_ulp(got, want, n);
}

// ---- 2x2 windows
// ---------------------------------------------------------------------------------

static const char *WIN_NAMES[4] = {"upsample2x_fwd", "upsample2x_bwd", "avgpool2x_fwd",
                                   "avgpool2x_bwd"};

static void win_cpu(int op, int N, int H, int W, int C, const float *src, float *dst) {
  if (op == 0) upsample2x_forward_cpu(&CPU, N, H, W, C, src, dst);
  if (op == 1) upsample2x_backward_cpu(&CPU, N, H, W, C, src, dst);
  if (op == 2) avgpool2x_forward_cpu(&CPU, N, H, W, C, src, dst);
  if (op == 3) avgpool2x_backward_cpu(&CPU, N, H, W, C, src, dst);
}
static void win_gpu(int op, int N, int H, int W, int C, const float *src, float *dst) {
  if (op == 0) upsample2x_forward_cuda(&G, ST, N, H, W, C, src, dst);
  if (op == 1) upsample2x_backward_cuda(&G, ST, N, H, W, C, src, dst);
  if (op == 2) avgpool2x_forward_cuda(&G, ST, N, H, W, C, src, dst);
  if (op == 3) avgpool2x_backward_cuda(&G, ST, N, H, W, C, src, dst);
}

// The window ops of mask `ops` (bit op) on input [N,H,W,C] (H, W as the op's own arguments);
// misalign shifts both buffers by one float (the scalar path).
static void gpu_window_ops(int ops, int N, int H, int W, int C, int misalign, const char *where) {
  const size_t nx = (size_t)N * H * W * C;
  for (int op = 0; op < 4; op++) {
    if (!(ops >> op & 1) || (op >= 2 && (H % 2 || W % 2))) continue;
    // Element counts of the op's source and destination.
    const size_t big = op < 2 ? 4 * nx : nx, small = op < 2 ? nx : nx / 4;
    const size_t ns = op == 0 || op == 3 ? small : big, nd = op == 0 || op == 3 ? big : small;
    float *hs = fnew(ns), *want = fnew(nd), *got = fnew(nd), *got2 = fnew(nd);
    fill(hs, ns, -2.0f, 2.0f);
    win_cpu(op, N, H, W, C, hs, want);
    float *ds0 = dnew((ns + 4) * sizeof(float)), *dd0 = dnew((nd + 4) * sizeof(float));
    float *ds = ds0 + misalign, *dd = dd0 + misalign;
    up(ds, hs, ns * sizeof(float));
    poison(dd0, (nd + 4) * sizeof(float));
    win_gpu(op, N, H, W, C, ds, dd);
    down(got, dd, nd * sizeof(float));
    const int fenced = untouched_around(dd0, (nd + 4) * sizeof(float),
                                        (size_t)misalign * sizeof(float), nd * sizeof(float));
    poison(dd, nd * sizeof(float));
    win_gpu(op, N, H, W, C, ds, dd);
    down(got2, dd, nd * sizeof(float));
    const int64_t u = ulp_of(got, want, nd);
    const int same = !memcmp(got, got2, nd * sizeof(float));
    report(u == 0 && fenced && same, "gpu   %-16s [%d,%d,%d,%d]%s %s: %lld ulp%s%s", WIN_NAMES[op],
           N, H, W, C, misalign ? " misaligned" : "", where, (long long)u,
           fenced ? "" : ", WROTE OUTSIDE", same ? "" : ", RERUN DIFFERS");
    ganc_cuda_free(&G, ds0);
    ganc_cuda_free(&G, dd0);
    free(hs), free(want), free(got), free(got2);
  }
}
static void gpu_window(int N, int H, int W, int C, int misalign, const char *where) {
  gpu_window_ops(15, N, H, W, C, misalign, where);
}

// ---- tensor_add
// ------------------------------------------------------------------------------------

static void gpu_tensor_add(int64_t n, int misalign) {
  const size_t N = (size_t)n, bytes = N * sizeof(float);
  float *a = fnew(N), *b = fnew(N), *want = fnew(N), *got = fnew(N);
  fill(a, N, -3.0f, 3.0f);
  fill(b, N, -3.0f, 3.0f);
  tensor_add_cpu(&CPU, n, a, b, want);
  float *da0 = dnew(bytes + 16), *db0 = dnew(bytes + 16), *dy0 = dnew(bytes + 16);
  float *da = da0 + misalign, *db = db0 + misalign, *dy = dy0 + misalign;
  up(da, a, bytes);
  up(db, b, bytes);
  poison(dy0, bytes + 16);
  tensor_add_cuda(&G, ST, n, da, db, dy);
  down(got, dy, bytes);
  int64_t u = ulp_of(got, want, N);
  const int fenced = untouched_around(dy0, bytes + 16, (size_t)misalign * sizeof(float), bytes);
  tensor_add_cuda(&G, ST, n, da, db, da); // y aliases a
  down(got, da, bytes);
  int64_t ua = ulp_of(got, want, N);
  up(da, a, bytes);
  tensor_add_cuda(&G, ST, n, da, db, db); // y aliases b
  down(got, db, bytes);
  const int64_t ub = ulp_of(got, want, N);
  ua = ua > ub ? ua : ub;
  report(u == 0 && ua == 0 && fenced,
         "gpu   tensor_add       n=%-8lld%s %lld ulp, in place %lld ulp%s", (long long)n,
         misalign ? " misaligned" : "", (long long)u, (long long)ua,
         fenced ? "" : ", WROTE OUTSIDE");
  ganc_cuda_free(&G, da0);
  ganc_cuda_free(&G, db0);
  ganc_cuda_free(&G, dy0);
  free(a), free(b), free(want), free(got);
}

// ---- global sum pooling
// --------------------------------------------------------------------------

static void gpu_sum_pool(int N, int HW, int C, const char *where) {
  const size_t nx = (size_t)N * HW * C, ny = (size_t)N * C;
  float *x = fnew(nx), *dy = fnew(ny), *y = fnew(ny), *dx = fnew(nx), *got = fnew(nx),
        *got2 = fnew(nx);
  fill(x, nx, -1.0f, 1.5f);
  fill(dy, ny, -1.0f, 1.0f);
  sum_pool_forward_cpu(&CPU, N, HW, C, x, y);
  sum_pool_backward_cpu(&CPU, N, HW, C, dy, dx);
  float *dxd = dup_to_device(x, nx), *dyd = dup_to_device(dy, ny), *yd = dnew(ny * sizeof(float)),
        *dxo = dnew(nx * sizeof(float));
  for (int run = 0; run < 2; run++) {
    poison(yd, ny * sizeof(float));
    sum_pool_forward_cuda(&G, ST, N, HW, C, dxd, yd);
    down(run ? got2 : got, yd, ny * sizeof(float));
  }
  int64_t u = ulp_of(got, y, ny);
  int same = !memcmp(got, got2, ny * sizeof(float));
  report(u == 0 && same, "gpu   sum_pool_fwd     [%d,%d,%d] %s: %lld ulp%s", N, HW, C, where,
         (long long)u, same ? ", rerun identical" : ", RERUN DIFFERS");
  poison(dxo, nx * sizeof(float));
  sum_pool_backward_cuda(&G, ST, N, HW, C, dyd, dxo);
  down(got, dxo, nx * sizeof(float));
  u = ulp_of(got, dx, nx);
  report(u == 0, "gpu   sum_pool_bwd     [%d,%d,%d] %s: %lld ulp", N, HW, C, where, (long long)u);
  ganc_cuda_free(&G, dxd);
  ganc_cuda_free(&G, dyd);
  ganc_cuda_free(&G, yd);
  ganc_cuda_free(&G, dxo);
  free(x), free(dy), free(y), free(dx), free(got), free(got2);
}

// ---- spectral normalization
// ----------------------------------------------------------------------

static void unit_fill(float *a, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; i++) {
    a[i] = unif(-1.0f, 1.0f);
    s += (double)a[i] * a[i];
  }
  for (size_t i = 0; i < n; i++)
    a[i] = (float)(a[i] / sqrt(s));
}

// Forward with `iters` iterations (and eval, iters = 0, from the result), backward; W and w_sn
// shifted by one float when misaligned (the scalar paths).
static void gpu_spectral(int M, int K, int iters, int misalign, const char *where) {
  const size_t n = (size_t)M * K, nb = n * sizeof(float);
  float *w = fnew(n), *u = fnew(K), *v = fnew(M), *wsn = fnew(n), sigma = 0.0f;
  float *g = fnew(n), *dw = fnew(n), *hu = fnew(K), *hv = fnew(M), *hw = fnew(n), *hw2 = fnew(n),
        hs = 0.0f, hs2 = 0.0f;
  fill(w, n, -0.1f, 0.1f);
  unit_fill(u, K);
  unit_fill(v, M);
  fill(g, n, -1.0f, 1.0f);
  fill(dw, n, -1.0f, 1.0f);
  float *dw0 = fdup(dw, n), *u0 = fdup(u, K), *v0 = fdup(v, M);
  float *wd0 = dnew(nb + 16), *wsnd0 = dnew(nb + 16), *gd0 = dnew(nb + 16), *dwd0 = dnew(nb + 16);
  float *wd = wd0 + misalign, *wsnd = wsnd0 + misalign, *gd = gd0 + misalign,
        *dwd = dwd0 + misalign;
  float *ud = dnew((size_t)K * sizeof(float)), *vd = dnew((size_t)M * sizeof(float)),
        *sd = dnew(sizeof(float));
  up(wd, w, nb);
  up(gd, g, nb);

  // Training forward (iters), twice from the same state: identical bits, and the CPU's.
  spectral_norm_forward_cpu(&CPU, M, K, w, u, v, iters, 1e-12f, &sigma, wsn);
  int same = 1;
  for (int run = 0; run < 2; run++) {
    up(ud, u0, (size_t)K * sizeof(float));
    up(vd, v0, (size_t)M * sizeof(float));
    poison(sd, sizeof(float));
    poison(wsnd0, nb + 16);
    spectral_norm_forward_cuda(&G, ST, M, K, wd, ud, vd, iters, 1e-12f, sd, wsnd);
    down(run ? hw2 : hw, wsnd, nb);
    down(run ? &hs2 : &hs, sd, sizeof(float));
    if (run) same = !memcmp(hw, hw2, nb) && !memcmp(&hs, &hs2, sizeof hs);
  }
  down(hu, ud, (size_t)K * sizeof(float));
  down(hv, vd, (size_t)M * sizeof(float));
  int64_t ul = ulp_of(hu, u, K), t;
  t = ulp_of(hv, v, M), ul = t > ul ? t : ul;
  t = ulp_of(&hs, &sigma, 1), ul = t > ul ? t : ul;
  t = ulp_of(hw, wsn, n), ul = t > ul ? t : ul;
  const int fenced = untouched_around(wsnd0, nb + 16, (size_t)misalign * sizeof(float), nb);
  report(ul == 0 && same && fenced,
         "gpu   spectral_fwd     [%d,%d] iters %d%s %s: sigma %.6g, u v sigma w_sn %lld ulp%s%s", M,
         K, iters, misalign ? " misaligned" : "", where, (double)hs, (long long)ul,
         same ? ", rerun identical" : ", RERUN DIFFERS", fenced ? "" : ", WROTE OUTSIDE");

  // Eval (iters = 0) from the trained state: u, v untouched.
  spectral_norm_forward_cpu(&CPU, M, K, w, u, v, 0, 1e-12f, &sigma, wsn);
  poison(wsnd, nb);
  spectral_norm_forward_cuda(&G, ST, M, K, wd, ud, vd, 0, 1e-12f, sd, wsnd);
  down(hw, wsnd, nb);
  down(&hs, sd, sizeof(float));
  float *hu2 = fnew(K), *hv2 = fnew(M);
  down(hu2, ud, (size_t)K * sizeof(float));
  down(hv2, vd, (size_t)M * sizeof(float));
  const int kept =
      !memcmp(hu, hu2, (size_t)K * sizeof(float)) && !memcmp(hv, hv2, (size_t)M * sizeof(float));
  ul = ulp_of(&hs, &sigma, 1);
  t = ulp_of(hw, wsn, n), ul = t > ul ? t : ul;
  report(ul == 0 && kept, "gpu   spectral_fwd     [%d,%d] eval%s %s: sigma w_sn %lld ulp%s", M, K,
         misalign ? " misaligned" : "", where, (long long)ul,
         kept ? ", u v kept" : ", U V CHANGED");
  free(hu2), free(hv2);

  // Backward from the eval forward: dw accumulates onto dw0; twice from dw0, identical.
  spectral_norm_backward_cpu(&CPU, M, K, wsn, g, u, v, &sigma, dw);
  for (int run = 0; run < 2; run++) {
    up(dwd, dw0, nb);
    spectral_norm_backward_cuda(&G, ST, M, K, wsnd, gd, ud, vd, sd, dwd);
    down(run ? hw2 : hw, dwd, nb);
  }
  ul = ulp_of(hw, dw, n);
  same = !memcmp(hw, hw2, nb);
  report(ul == 0 && same, "gpu   spectral_bwd     [%d,%d]%s %s: dw %lld ulp%s", M, K,
         misalign ? " misaligned" : "", where, (long long)ul,
         same ? ", rerun identical" : ", RERUN DIFFERS");

  float *dev[] = {wd0, wsnd0, gd0, dwd0, ud, vd, sd};
  for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
    ganc_cuda_free(&G, dev[i]);
  free(w), free(u), free(v), free(wsn), free(g), free(dw), free(hu), free(hv), free(hw), free(hw2),
      free(dw0), free(u0), free(v0);
}

// ---- class-conditional ops
// -----------------------------------------------------------------------

// Labels: random classes of ncls, or (pattern 1) all one class.
static void make_labels(int32_t *l, int N, int ncls, int pattern) {
  for (int i = 0; i < N; i++)
    l[i] = pattern == 1 ? ncls - 1 : (int32_t)(rnd64() % (uint64_t)ncls);
}

// Forward out of place and in place; backward out of place and in place (dx == dy), twice, with
// dgamma/dbeta from non-zero values. misalign shifts x, y, dy, dx by one float (scalar path).
static void gpu_cond_affine(int N, int HW, int C, int ncls, int pattern, int misalign,
                            const char *where) {
  const size_t n = (size_t)N * HW * C, np = (size_t)ncls * C, nb = n * sizeof(float),
               pb = np * sizeof(float);
  int32_t *lab = xmalloc((size_t)N * sizeof(int32_t));
  make_labels(lab, N, ncls, pattern);
  float *x = fnew(n), *dy = fnew(n), *g = fnew(np), *b = fnew(np), *dg0 = fnew(np), *db0 = fnew(np);
  fill(x, n, -3.0f, 3.0f);
  fill(dy, n, -1.0f, 1.0f);
  fill(g, np, 0.5f, 1.5f);
  fill(b, np, -0.5f, 0.5f);
  fill(dg0, np, -1.0f, 1.0f);
  fill(db0, np, -1.0f, 1.0f);
  float *y = fnew(n), *dx = fnew(n), *dg = fdup(dg0, np), *db = fdup(db0, np);
  cond_affine_forward_cpu(&CPU, N, HW, C, ncls, x, lab, g, b, y);
  cond_affine_backward_cpu(&CPU, N, HW, C, ncls, x, dy, lab, g, dx, dg, db);

  int32_t *ld = labels_to_device(lab, N);
  float *xd0 = dnew(nb + 16), *yd0 = dnew(nb + 16), *dyd0 = dnew(nb + 16), *dxd0 = dnew(nb + 16);
  float *xd = xd0 + misalign, *yd = yd0 + misalign, *dyd = dyd0 + misalign, *dxd = dxd0 + misalign;
  float *gd = dup_to_device(g, np), *bd = dup_to_device(b, np), *dgd = dnew(pb), *dbd = dnew(pb);
  float *got = fnew(n), *got2 = fnew(n), *hg = fnew(np), *hb = fnew(np), *hg2 = fnew(np),
        *hb2 = fnew(np);
  up(xd, x, nb);

  poison(yd0, nb + 16);
  cond_affine_forward_cuda(&G, ST, N, HW, C, ncls, xd, ld, gd, bd, yd);
  down(got, yd, nb);
  int64_t u = ulp_of(got, y, n);
  const int fenced = untouched_around(yd0, nb + 16, (size_t)misalign * sizeof(float), nb);
  up(yd, x, nb); // in place
  cond_affine_forward_cuda(&G, ST, N, HW, C, ncls, yd, ld, gd, bd, yd);
  down(got, yd, nb);
  const int64_t ui = ulp_of(got, y, n);
  report(u == 0 && ui == 0 && fenced,
         "gpu   cond_affine_fwd  [%d,%d,%d] ncls %d%s %s: %lld ulp, in place %lld ulp%s", N, HW, C,
         ncls, misalign ? " misaligned" : "", where, (long long)u, (long long)ui,
         fenced ? "" : ", WROTE OUTSIDE");

  // Backward: run 0 out of place, run 1 in place (dx == dy); both from dgamma0/dbeta0.
  for (int run = 0; run < 2; run++) {
    up(dyd, dy, nb);
    up(dgd, dg0, pb);
    up(dbd, db0, pb);
    poison(dxd, nb);
    float *out = run ? dyd : dxd;
    cond_affine_backward_cuda(&G, ST, N, HW, C, ncls, xd, dyd, ld, gd, out, dgd, dbd);
    down(run ? got2 : got, out, nb);
    down(run ? hg2 : hg, dgd, pb);
    down(run ? hb2 : hb, dbd, pb);
  }
  u = ulp_of(got, dx, n);
  int64_t t = ulp_of(got2, dx, n), up_ = ulp_of(hg, dg, np);
  u = t > u ? t : u;
  t = ulp_of(hb, db, np), up_ = t > up_ ? t : up_;
  const int same = !memcmp(hg, hg2, pb) && !memcmp(hb, hb2, pb);
  report(u == 0 && up_ == 0 && same,
         "gpu   cond_affine_bwd  [%d,%d,%d] ncls %d%s %s: dx %lld ulp (in place too), dgamma "
         "dbeta %lld ulp%s",
         N, HW, C, ncls, misalign ? " misaligned" : "", where, (long long)u, (long long)up_,
         same ? ", rerun identical" : ", RERUN DIFFERS");

  float *dev[] = {xd0, yd0, dyd0, dxd0, gd, bd, dgd, dbd};
  for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
    ganc_cuda_free(&G, dev[i]);
  ganc_cuda_free(&G, ld);
  free(lab), free(x), free(dy), free(g), free(b), free(dg0), free(db0), free(y), free(dx), free(dg),
      free(db), free(got), free(got2), free(hg), free(hb), free(hg2), free(hb2);
}

static void gpu_embed_dot(int N, int C, int ncls, int pattern, const char *where) {
  const size_t nh = (size_t)N * C, ne = (size_t)ncls * C;
  int32_t *lab = xmalloc((size_t)N * sizeof(int32_t));
  make_labels(lab, N, ncls, pattern);
  float *h = fnew(nh), *e = fnew(ne), *dy = fnew(N), *de0 = fnew(ne), *y = fnew(N), *dh = fnew(nh);
  fill(h, nh, -1.0f, 1.0f);
  fill(e, ne, -1.0f, 1.0f);
  fill(dy, N, -1.0f, 1.0f);
  fill(de0, ne, -1.0f, 1.0f);
  float *de = fdup(de0, ne);
  embed_dot_forward_cpu(&CPU, N, C, ncls, h, lab, e, y);
  embed_dot_backward_cpu(&CPU, N, C, ncls, h, dy, lab, e, dh, de);
  int32_t *ld = labels_to_device(lab, N);
  float *hd = dup_to_device(h, nh), *ed = dup_to_device(e, ne), *dyd = dup_to_device(dy, N),
        *yd = dnew((size_t)N * sizeof(float)), *dhd = dnew(nh * sizeof(float)),
        *ded = dnew(ne * sizeof(float));
  float *gy = fnew(N), *gy2 = fnew(N), *gdh = fnew(nh), *gde = fnew(ne), *gde2 = fnew(ne);
  for (int run = 0; run < 2; run++) {
    poison(yd, (size_t)N * sizeof(float));
    embed_dot_forward_cuda(&G, ST, N, C, ncls, hd, ld, ed, yd);
    down(run ? gy2 : gy, yd, (size_t)N * sizeof(float));
    up(ded, de0, ne * sizeof(float));
    poison(dhd, nh * sizeof(float));
    embed_dot_backward_cuda(&G, ST, N, C, ncls, hd, dyd, ld, ed, dhd, ded);
    down(gdh, dhd, nh * sizeof(float));
    down(run ? gde2 : gde, ded, ne * sizeof(float));
  }
  int64_t u = ulp_of(gy, y, N), t = ulp_of(gdh, dh, nh);
  u = t > u ? t : u;
  t = ulp_of(gde, de, ne), u = t > u ? t : u;
  const int same =
      !memcmp(gy, gy2, (size_t)N * sizeof(float)) && !memcmp(gde, gde2, ne * sizeof(float));
  report(u == 0 && same, "gpu   embed_dot        [%d,%d] ncls %d %s: y dh dembed %lld ulp%s", N, C,
         ncls, where, (long long)u, same ? ", rerun identical" : ", RERUN DIFFERS");
  float *dev[] = {hd, ed, dyd, yd, dhd, ded};
  for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
    ganc_cuda_free(&G, dev[i]);
  ganc_cuda_free(&G, ld);
  free(lab), free(h), free(e), free(dy), free(de0), free(y), free(dh), free(de), free(gy),
      free(gy2), free(gdh), free(gde), free(gde2);
}

// A label outside [0, ncls) (which the loader never lets through): the kernels read nothing
// outside gamma/beta/embed, that sample's outputs are NaN, and every other sample and class gets
// exactly what the CPU twin gives for the batch without it.
static void gpu_bad_label(void) {
  const int N = 5, HW = 3, C = 6, ncls = 3, bad = 1;
  // Far outside: a kernel that read gamma[label] would fault (on a GPU and under cudemu).
  const int32_t lab[5] = {1, 1 << 24, 0, 1, 2}, lab4[4] = {1, 0, 1, 2};
  const size_t n = (size_t)N * HW * C, per = (size_t)HW * C, np = (size_t)ncls * C;
  float *x = fnew(n), *dy = fnew(n), *g = fnew(np), *b = fnew(np), *dg = fnew(np), *db = fnew(np);
  fill(x, n, -1.0f, 1.0f);
  fill(dy, n, -1.0f, 1.0f);
  fill(g, np, 0.5f, 1.5f);
  fill(b, np, -0.5f, 0.5f);
  fill(dg, np, -1.0f, 1.0f);
  fill(db, np, -1.0f, 1.0f);
  // The CPU twin on the 4 good samples.
  float *x4 = fnew(n - per), *dy4 = fnew(n - per), *y4 = fnew(n - per), *dx4 = fnew(n - per);
  memcpy(x4, x, per * sizeof(float));
  memcpy(x4 + per, x + 2 * per, 3 * per * sizeof(float));
  memcpy(dy4, dy, per * sizeof(float));
  memcpy(dy4 + per, dy + 2 * per, 3 * per * sizeof(float));
  float *dg4 = fdup(dg, np), *db4 = fdup(db, np);
  cond_affine_forward_cpu(&CPU, 4, HW, C, ncls, x4, lab4, g, b, y4);
  cond_affine_backward_cpu(&CPU, 4, HW, C, ncls, x4, dy4, lab4, g, dx4, dg4, db4);
  // The GPU on all 5.
  int32_t *ld = labels_to_device(lab, N);
  float *xd = dup_to_device(x, n), *dyd = dup_to_device(dy, n), *gd = dup_to_device(g, np),
        *bd = dup_to_device(b, np), *dgd = dup_to_device(dg, np), *dbd = dup_to_device(db, np),
        *yd = dnew(n * sizeof(float)), *dxd = dnew(n * sizeof(float));
  float *hy = fnew(n), *hdx = fnew(n), *hg = fnew(np), *hb = fnew(np);
  poison(yd, n * sizeof(float));
  cond_affine_forward_cuda(&G, ST, N, HW, C, ncls, xd, ld, gd, bd, yd);
  poison(dxd, n * sizeof(float));
  cond_affine_backward_cuda(&G, ST, N, HW, C, ncls, xd, dyd, ld, gd, dxd, dgd, dbd);
  down(hy, yd, n * sizeof(float));
  down(hdx, dxd, n * sizeof(float));
  down(hg, dgd, np * sizeof(float));
  down(hb, dbd, np * sizeof(float));
  int nan_ok = 1;
  for (size_t i = bad * per; i < (bad + 1) * per; i++)
    nan_ok = nan_ok && isnan(hy[i]) && isnan(hdx[i]);
  int64_t u = ulp_of(hy, y4, per), t = ulp_of(hy + 2 * per, y4 + per, 3 * per);
  u = t > u ? t : u;
  t = ulp_of(hdx, dx4, per), u = t > u ? t : u;
  t = ulp_of(hdx + 2 * per, dx4 + per, 3 * per), u = t > u ? t : u;
  t = ulp_of(hg, dg4, np), u = t > u ? t : u;
  t = ulp_of(hb, db4, np), u = t > u ? t : u;
  report(nan_ok && u == 0,
         "gpu   cond_affine      label 2^24 of ncls 3: its sample NaN%s, the rest %lld ulp",
         nan_ok ? "" : " (NOT ALL)", (long long)u);

  // embed_dot likewise.
  float *e = fnew(np), *de = fnew(np), *hy5 = fnew(N), *hdh = fnew((size_t)N * C);
  fill(e, np, -1.0f, 1.0f);
  fill(de, np, -1.0f, 1.0f);
  float *de4 = fdup(de, np), *ey4 = fnew(4), *edh4 = fnew((size_t)4 * C), edy[5], edy4[4];
  fill(edy, 5, -1.0f, 1.0f);
  edy4[0] = edy[0], edy4[1] = edy[2], edy4[2] = edy[3], edy4[3] = edy[4];
  float *h4 = fnew((size_t)4 * C);
  memcpy(h4, x, (size_t)C * sizeof(float)); // h [5, C] = x's first 5·C values
  memcpy(h4 + C, x + 2 * C, (size_t)3 * C * sizeof(float));
  embed_dot_forward_cpu(&CPU, 4, C, ncls, h4, lab4, e, ey4);
  embed_dot_backward_cpu(&CPU, 4, C, ncls, h4, edy4, lab4, e, edh4, de4);
  float *edd = dup_to_device(e, np), *dedd = dup_to_device(de, np), *edyd = dup_to_device(edy, 5),
        *ey = dnew((size_t)N * sizeof(float)), *edh = dnew((size_t)N * C * sizeof(float));
  poison(ey, (size_t)N * sizeof(float));
  embed_dot_forward_cuda(&G, ST, N, C, ncls, xd, ld, edd, ey);
  poison(edh, (size_t)N * C * sizeof(float));
  embed_dot_backward_cuda(&G, ST, N, C, ncls, xd, edyd, ld, edd, edh, dedd);
  down(hy5, ey, (size_t)N * sizeof(float));
  down(hdh, edh, (size_t)N * C * sizeof(float));
  down(hg, dedd, np * sizeof(float));
  nan_ok = isnan(hy5[bad]);
  for (int c = 0; c < C; c++)
    nan_ok = nan_ok && isnan(hdh[bad * C + c]);
  const float hy5g[4] = {hy5[0], hy5[2], hy5[3], hy5[4]};
  u = ulp_of(hy5g, ey4, 4);
  t = ulp_of(hdh, edh4, (size_t)C), u = t > u ? t : u;
  t = ulp_of(hdh + 2 * C, edh4 + C, (size_t)3 * C), u = t > u ? t : u;
  t = ulp_of(hg, de4, np), u = t > u ? t : u;
  report(nan_ok && u == 0,
         "gpu   embed_dot        label 2^24 of ncls 3: its sample NaN%s, the rest %lld ulp",
         nan_ok ? "" : " (NOT ALL)", (long long)u);

  float *dev[] = {xd, dyd, gd, bd, dgd, dbd, yd, dxd, edd, dedd, edyd, ey, edh};
  for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
    ganc_cuda_free(&G, dev[i]);
  ganc_cuda_free(&G, ld);
  float *hbufs[] = {x,  dy,  g,  b,  dg, db, x4,  dy4, y4,  dx4, dg4,  db4,
                    hy, hdx, hg, hb, e,  de, hy5, hdh, de4, ey4, edh4, h4};
  for (size_t i = 0; i < sizeof hbufs / sizeof hbufs[0]; i++)
    free(hbufs[i]);
}

// The layers of the ResNet recipes (src/model/resnet.c) at their widest: G upsamples [H,W,C] and
// D pools them; D sums its last [4x4, C]; every 3x3 conv [3·3·Cin, Cout], the 1x1 skips, G's
// linear head [4·4·C, z] and D's dense C → 1 are spectral-normalized; conditional BN runs on G's
// every [H·W, C]; the projection head on D's [C].
typedef struct {
  int h, w, c, batch; // batch on a GPU
  const char *where;
} rs_layer;
static const rs_layer UP_LAYERS[] = {
    {4, 4, 256, 64, "resnet32 G.b0"},   {16, 16, 256, 64, "resnet32 G.b2"},
    {4, 4, 1024, 64, "resnet128 G.b0"}, {32, 32, 256, 16, "resnet128 G.b3"},
    {64, 64, 128, 8, "resnet128 G.b4"},
};
static const rs_layer POOL_LAYERS[] = {
    {32, 32, 128, 64, "resnet32 D.b0"},
    {8, 8, 128, 64, "resnet32 D.b2"},
    {128, 128, 64, 8, "resnet128 D.b0"},
    {16, 16, 512, 64, "resnet128 D.b3"},
};
typedef struct {
  int M, K;
  const char *where;
} sn_layer;
static const sn_layer SN_LAYERS[] = {
    {3 * 3 * 3, 128, "D.b0.conv1 3x3x3->128"}, {3 * 3 * 128, 128, "resnet32 3x3x128->128"},
    {128, 256, "1x1 skip 128->256"},           {4 * 4 * 512, 128, "G linear 4x4x512, z 128"},
    {3 * 3 * 1024, 1024, "3x3x1024->1024"},    {1024, 1, "D dense 1024->1"},
    {3 * 3 * 64, 3, "G out 3x3x64->3"},
};

// A case of `elems` elements is left out under cudemu past emu_max, and under --quick past
// big()'s limit.
static int skip_case(int64_t elems, int64_t emu_max) { return EMU ? elems > emu_max : big(elems); }

static void gpu_resnet_ops_part(void) {
  printf("-- resampling, spectral norm, class-conditional ops%s --\n", EMU ? " (emulated)" : "");
  // Windows: odd sizes (scalar path: C not a multiple of 4), float4 path, misaligned, and the
  // real layers.
  gpu_window(1, 1, 1, 1, 0, "tiny");
  gpu_window(2, 3, 5, 3, 0, "odd");
  gpu_window(3, 6, 2, 7, 0, "odd C");
  gpu_window(2, 4, 6, 8, 0, "float4");
  gpu_window(2, 4, 6, 8, 1, "float4 shape");
  gpu_window(5, 10, 14, 12, 0, "several blocks");
  // Past EW_MAX_BLOCKS·256 threads: threads take a second element, and the step of their
  // position carries across channels and columns (w = 5).
  gpu_window_ops(3, 1, 820, 5, 257, 0, "grid-stride");
  gpu_window_ops(3, 1, 820, 5, 1028, 0, "grid-stride float4");
  gpu_window_ops(12, 1, 1640, 10, 257, 0, "grid-stride");
  for (size_t i = 0; i < sizeof UP_LAYERS / sizeof UP_LAYERS[0]; i++) {
    const rs_layer *l = &UP_LAYERS[i];
    const int N = EMU ? 2 : l->batch;
    if (skip_case((int64_t)N * l->h * l->w * l->c * 4, 600000)) continue;
    gpu_window(N, l->h, l->w, l->c, 0, l->where);
  }
  for (size_t i = 0; i < sizeof POOL_LAYERS / sizeof POOL_LAYERS[0]; i++) {
    const rs_layer *l = &POOL_LAYERS[i];
    const int N = EMU ? 2 : l->batch;
    if (skip_case((int64_t)N * l->h * l->w * l->c, 300000)) continue;
    gpu_window(N, l->h, l->w, l->c, 0, l->where);
  }

  tensor_add_cuda(&G, ST, 0, NULL, NULL, NULL);
  ganc_cuda_sync(&G);
  report(1, "gpu   tensor_add       n=0: no launch, no fault");
  static const int64_t add_n[] = {1, 3, 4, 1001, 64 * 16 * 16 * 256};
  for (size_t i = 0; i < sizeof add_n / sizeof add_n[0]; i++)
    if (!skip_case(add_n[i], 1000000)) gpu_tensor_add(add_n[i], 0);
  gpu_tensor_add(1003, 1);
  gpu_tensor_add(EMU || quick ? 100003 : 64 * 32 * 32 * 128 + 3, 1);
  if (!big(4 * 1048576 + 403)) gpu_tensor_add(4 * 1048576 + 403, 0); // grid-stride float4s

  // Sum pool: one chunk (fused), 4 chunks (fused), past the fused limit with a short last chunk.
  gpu_sum_pool(1, 1, 1, "tiny");
  gpu_sum_pool(3, 16, 7, "odd");
  gpu_sum_pool(2, 256, 5, "4 chunks, fused");
  gpu_sum_pool(2, 300, 33, "5 chunks, two stages");
  gpu_sum_pool(EMU ? 4 : 64, 16, 128, "resnet32 D out 4x4x128");
  gpu_sum_pool(EMU ? 2 : 64, 16, 1024, "resnet128 D out 4x4x1024");
  gpu_sum_pool(2048, 7, 102, "2 blocks per sample: grid-stride");

  // Spectral norm: odd shapes (tails of rows, columns, lanes, chunks), iterations, misaligned.
  gpu_spectral(1, 1, 1, 0, "1x1");
  gpu_spectral(1, 7, 2, 0, "one row");
  gpu_spectral(37, 1, 1, 0, "one column");
  gpu_spectral(130, 40, 1, 0, "3 row chunks");
  gpu_spectral(130, 300, 3, 1, "2 column tiles");
  gpu_spectral(EMU ? 700 : 3000, 7, 1, 0, "flat sum > 1 chunk, K < 32");
  if (!big(8192 * 130)) gpu_spectral(8192, 130, 1, 1, "grid-stride scalars");
  for (size_t i = 0; i < sizeof SN_LAYERS / sizeof SN_LAYERS[0]; i++) {
    const sn_layer *l = &SN_LAYERS[i];
    if (skip_case((int64_t)l->M * l->K, 300000)) continue;
    gpu_spectral(l->M, l->K, 1, 0, l->where);
  }

  // Conditional affine: odd C (scalar), C % 4 == 0 (float4), misaligned, one class, several
  // chunks of rows; the real G layers.
  gpu_cond_affine(1, 1, 1, 1, 0, 0, "tiny");
  gpu_cond_affine(7, 5, 3, 5, 0, 0, "odd");
  gpu_cond_affine(6, 130, 8, 4, 0, 0, "3 row chunks, float4");
  gpu_cond_affine(6, 130, 8, 4, 0, 1, "3 row chunks");
  gpu_cond_affine(9, 20, 12, 3, 1, 0, "one class");
  gpu_cond_affine(EMU ? 4 : 64, 16, 256, 10, 0, 0, "resnet32 G.b0.bn1 4x4x256");
  gpu_cond_affine(EMU ? 2 : 64, 32 * 32, 256, 10, 0, 0, "resnet32 G 32x32x256");
  // 2048 and 4096 samples: 2 blocks, 1 block each, so threads take several elements and their
  // channel wraps around C.
  if (!big(2048 * 7 * 102)) gpu_cond_affine(2048, 7, 102, 10, 0, 0, "grid-stride");
  if (!big(4096 * 30 * 40)) gpu_cond_affine(4096, 30, 40, 10, 0, 0, "grid-stride float4");
  if (!skip_case(16 * 64 * 64 * 128, 0))
    gpu_cond_affine(16, 64 * 64, 128, 1000, 0, 0, "resnet128 G.b4 64x64x128, 1000 classes");

  gpu_embed_dot(1, 1, 1, 0, "tiny");
  gpu_embed_dot(7, 70, 5, 0, "odd");
  gpu_embed_dot(9, 33, 3, 1, "one class");
  gpu_embed_dot(EMU ? 16 : 64, 128, 10, 0, "resnet32 D 128");
  gpu_embed_dot(EMU ? 8 : 128, 1024, EMU ? 10 : 1000, 0, "resnet128 D 1024");

  gpu_bad_label();
}

// ---- DiffAugment: colour, translation, cutout
// ------------------------------------------------

static const char *AUG_NAMES[4] = {"augment_color", "augment_transl", "augment_cutout",
                                   "augment_blit"};

// op 3 (the blit) takes its modes in ratio. p: the augmentation probability (NULL = 1), host
// memory here, device memory for aug_gpu.
static void aug_cpu(int op, int bw, int N, int H, int W, int C, float ratio, const float *in,
                    float *out, uint64_t seed, uint64_t counter, const float *p) {
  if (op == 0 && !bw) augment_color_forward_cpu(&CPU, N, H, W, C, in, out, seed, &counter, 0, p);
  if (op == 0 && bw) augment_color_backward_cpu(&CPU, N, H, W, C, in, out, seed, &counter, 0, p);
  if (op == 1 && !bw)
    augment_translation_forward_cpu(&CPU, N, H, W, C, ratio, in, out, seed, &counter, 0, p);
  if (op == 1 && bw)
    augment_translation_backward_cpu(&CPU, N, H, W, C, ratio, in, out, seed, &counter, 0, p);
  if (op == 2 && !bw)
    augment_cutout_forward_cpu(&CPU, N, H, W, C, ratio, in, out, seed, &counter, 0, p);
  if (op == 2 && bw)
    augment_cutout_backward_cpu(&CPU, N, H, W, C, ratio, in, out, seed, &counter, 0, p);
  if (op == 3 && !bw)
    augment_blit_forward_cpu(&CPU, N, H, W, C, (int)ratio, in, out, seed, &counter, 0, p);
  if (op == 3 && bw)
    augment_blit_backward_cpu(&CPU, N, H, W, C, (int)ratio, in, out, seed, &counter, 0, p);
}
// The counter and p go to device memory, as the ops read them (a replayed graph's step).
static void aug_gpu(int op, int bw, int N, int H, int W, int C, float ratio, const float *in,
                    float *out, uint64_t seed, uint64_t counter_value, const float *p_host) {
  uint64_t *counter_dev = dnew(sizeof(uint64_t)), *counter = counter_dev;
  up(counter_dev, &counter_value, sizeof counter_value);
  float *p = NULL;
  if (p_host) {
    p = dnew(sizeof(float));
    up(p, p_host, sizeof(float));
  }
  if (op == 0 && !bw) augment_color_forward_cuda(&G, ST, N, H, W, C, in, out, seed, counter, 0, p);
  if (op == 0 && bw) augment_color_backward_cuda(&G, ST, N, H, W, C, in, out, seed, counter, 0, p);
  if (op == 1 && !bw)
    augment_translation_forward_cuda(&G, ST, N, H, W, C, ratio, in, out, seed, counter, 0, p);
  if (op == 1 && bw)
    augment_translation_backward_cuda(&G, ST, N, H, W, C, ratio, in, out, seed, counter, 0, p);
  if (op == 2 && !bw)
    augment_cutout_forward_cuda(&G, ST, N, H, W, C, ratio, in, out, seed, counter, 0, p);
  if (op == 2 && bw)
    augment_cutout_backward_cuda(&G, ST, N, H, W, C, ratio, in, out, seed, counter, 0, p);
  if (op == 3 && !bw)
    augment_blit_forward_cuda(&G, ST, N, H, W, C, (int)ratio, in, out, seed, counter, 0, p);
  if (op == 3 && bw)
    augment_blit_backward_cuda(&G, ST, N, H, W, C, (int)ratio, in, out, seed, counter, 0, p);
  ganc_cuda_free(&G, counter_dev);
  if (p) ganc_cuda_free(&G, p);
}

// The ops of mask `ops` (bit 0 colour, 1 translation, 2 cutout, 3 blit), forward (on x) and
// backward (on dy), against the CPU twin bit for bit; outputs poisoned with a poisoned float on
// either side that must stay so, every call run twice. ratio is the translation's; the cutout
// gets DiffAugment's 0.5 (ratio 1 for a tiny case: the whole image); the blit both modes on square
// images, the x-flip alone otherwise. p < 0: the ops get NULL (always applied), else p.
static void gpu_augment_ops(int ops, int N, int H, int W, int C, float ratio, uint64_t seed,
                            uint64_t counter, int misalign, float p, const char *where) {
  const size_t n = (size_t)N * H * W * C, bytes = n * sizeof(float);
  float *x = fnew(n), *want = fnew(n), *got = fnew(n), *got2 = fnew(n);
  fill(x, n, -1.5f, 1.5f);
  x[n / 2] = -0.0f; // a negative zero through the colour, the copies and the mask
  float *dx0 = dnew(bytes + 16), *dy0 = dnew(bytes + 16);
  float *dx = dx0 + misalign, *dy = dy0 + misalign + 1;
  const float *pp = p < 0 ? NULL : &p;
  up(dx, x, bytes);
  for (int op = 0; op < 4; op++)
    for (int bw = 0; bw < 2 && (ops >> op & 1); bw++) {
      const float r = op == 3   ? (H == W ? 3.0f : 1.0f)
                      : op == 2 ? (ratio == 1.0f ? 1.0f : 0.5f)
                      : op == 1 ? ratio
                                : 0.0f;
      aug_cpu(op, bw, N, H, W, C, r, x, want, seed, counter, pp);
      poison(dy0, bytes + 16);
      aug_gpu(op, bw, N, H, W, C, r, dx, dy, seed, counter, pp);
      down(got, dy, bytes);
      const int fenced =
          untouched_around(dy0, bytes + 16, (size_t)(misalign + 1) * sizeof(float), bytes);
      poison(dy, bytes);
      aug_gpu(op, bw, N, H, W, C, r, dx, dy, seed, counter, pp);
      down(got2, dy, bytes);
      const size_t k = count_diff_bytes(got, want, bytes);
      const int same = !memcmp(got, got2, bytes);
      report(k == 0 && fenced && same,
             "gpu   %-14s_%s [%d,%d,%d,%d] r %g p %g %s%s: %zu bytes differ%s%s", AUG_NAMES[op],
             bw ? "bwd" : "fwd", N, H, W, C, (double)r, (double)p, where,
             misalign ? " misaligned" : "", k, fenced ? "" : ", WROTE OUTSIDE",
             same ? "" : ", RERUN DIFFERS");
    }
  ganc_cuda_free(&G, dx0);
  ganc_cuda_free(&G, dy0);
  free(x), free(want), free(got), free(got2);
}
static void gpu_augment(int N, int H, int W, int C, float ratio, uint64_t seed, uint64_t counter,
                        int misalign, const char *where) {
  gpu_augment_ops(15, N, H, W, C, ratio, seed, counter, misalign, -1.0f, where);
}

// ADA's controller: ada_sum and ada_signs on reals' logits (one exactly at the fakes' mean when
// n = 1, a NaN when n > 3) against fakes of another range (n up to several rounds of 256 lanes),
// then a run of ada_adjust calls
// crossing the interval, p clamped at both ends; the outputs, the state and p bit for bit against
// the CPU twin.
static void gpu_ada(int n, float target, double interval, float p0, const char *where) {
  float *l = fnew((size_t)n), *f = fnew((size_t)n);
  fill(l, (size_t)n, -1.0f, 1.2f);
  fill(f, (size_t)n, -1.1f, 1.0f);
  if (n == 1) f[0] = l[0]; // a real exactly at the fakes' mean
  if (n > 3) f[0] = f[1] = 0.25f, l[1] = 0.25f, l[3] = NAN;
  float *dl = dnew(sizeof(float) * (size_t)n), *df = dnew(sizeof(float) * (size_t)n);
  up(dl, l, sizeof(float) * (size_t)n);
  up(df, f, sizeof(float) * (size_t)n);
  double out_c[2], st_c[3] = {0, 0, -7}, out_g[2], st_g[3], fs_c[2], fs_g[2];
  float p_c = p0, p_g;
  double *d_out = dnew(sizeof out_c), *d_st = dnew(sizeof st_c), *d_fs = dnew(sizeof fs_c);
  float *d_p = dnew(sizeof p_c);
  up(d_st, st_c, sizeof st_c);
  up(d_p, &p_c, sizeof p_c);
  int ok = 1;
  for (int call = 0; call < 7; call++) {
    ada_sum_cpu(&CPU, n, f, fs_c);
    ada_signs_cpu(&CPU, n, l, fs_c, out_c);
    ada_adjust_cpu(&CPU, out_c, st_c, &p_c, target, 0.01, interval);
    poison(d_out, sizeof out_c);
    poison(d_fs, sizeof fs_c);
    ada_sum_cuda(&G, ST, n, df, d_fs);
    ada_signs_cuda(&G, ST, n, dl, d_fs, d_out);
    ada_adjust_cuda(&G, ST, d_out, d_st, d_p, target, 0.01, interval);
    down(out_g, d_out, sizeof out_g);
    down(fs_g, d_fs, sizeof fs_g);
    down(st_g, d_st, sizeof st_g);
    down(&p_g, d_p, sizeof p_g);
    ok &= !memcmp(out_g, out_c, sizeof out_c) && !memcmp(fs_g, fs_c, sizeof fs_c) &&
          !memcmp(st_g, st_c, sizeof st_c) && !memcmp(&p_g, &p_c, sizeof p_c);
  }
  report(ok, "gpu   ada_signs/adjust n %d target %g interval %g p0 %g %s: p %g (cpu %g)", n,
         (double)target, interval, (double)p0, where, (double)p_g, (double)p_c);
  ganc_cuda_free(&G, dl);
  ganc_cuda_free(&G, df);
  ganc_cuda_free(&G, d_fs);
  ganc_cuda_free(&G, d_out);
  ganc_cuda_free(&G, d_st);
  ganc_cuda_free(&G, d_p);
  free(l), free(f);
}

static void gpu_augment_part(void) {
  printf("-- DiffAugment%s --\n", EMU ? " (emulated)" : "");
  const uint64_t seed = 0x0123456789ABCDEFull;
  gpu_augment(1, 1, 1, 1, 1.0f, seed, 0, 0, "tiny");
  gpu_augment(3, 5, 7, 3, 1.0f, seed, 1, 0, "odd, shifts past the frame");
  gpu_augment(5, 3, 2, 1, 0.5f, seed, 2, 1, "odd");
  gpu_augment(4, 9, 13, 3, 0.125f, 7, 0xFFFFFFFFull, 0, "counter 2^32 - 1");
  gpu_augment(4, 9, 13, 3, 0.125f, 7, 0x100000000ull, 0, "counter 2^32");
  gpu_augment(2, 17, 9, 5, 0.3f, ~0ull, ~0ull, 0, "C = 5");
  // Colour: images over 256 lanes with a short last round; and many images per block (grid x
  // of 65535 blocks, a GPU only).
  gpu_augment(3, 16, 17, 1, 0.125f, seed, 3, 0, "lanes wrap");
  if (!EMU && !big(70000 * 4)) gpu_augment(70000, 2, 2, 1, 0.125f, seed, 4, 0, "70000 images");
  // Translation and cutout: threads taking several elements of an image (2048 images get 2
  // blocks each, 512 threads for 576 elements).
  if (!big(2048 * 24 * 24))
    gpu_augment_ops(14, 2048, 24, 24, 1, 0.125f, seed, 5, 0, -1.0f, "grid-stride");
  // ADA's p: each transform applied to some images only (the others copied), never, always.
  gpu_augment_ops(15, 16, 8, 8, 3, 0.125f, seed, 9, 0, 0.5f, "ADA p");
  gpu_augment_ops(15, 6, 7, 5, 2, 0.25f, seed, 10, 1, 0.3f, "ADA p, not square");
  gpu_augment_ops(15, 5, 6, 6, 1, 0.125f, seed, 11, 0, 0.0f, "ADA p = 0");
  gpu_augment_ops(15, 5, 6, 6, 1, 0.125f, seed, 11, 0, 1.0f, "ADA p = 1");
  gpu_ada(1, 0.6f, 1, 0.0f, "one logit");
  gpu_ada(37, 0.6f, 80, 0.5f, "interval of 3 calls");
  gpu_ada(EMU ? 700 : 65536, 0.0f, 1, 0.995f, "many rounds, clamped at 1");
  gpu_ada(300, 0.99f, 300, 0.02f, "clamped at 0");
  // The real sizes.
  gpu_augment(EMU ? 4 : 64, 32, 32, 1, 0.125f, seed, 6, 0, "fmnist32 / resnet32 D input");
  gpu_augment(EMU ? 2 : 64, 64, 64, 3, 0.125f, seed, 7, 0, "dcgan64 / resnet64 D input");
  if (!skip_case(32 * 128 * 128 * 3, 0))
    gpu_augment(32, 128, 128, 3, 0.125f, seed, 8, 0, "resnet128 D input");
}

// ---- feature-network ops (kernels/featops.cu): bit-identical to the CPU twins ---------------
// op 0 pool2d (arg = mode), 1 pad2d, 2 channel_copy, 3 resize_bilinear; s = the shape's numbers.
static void featop_run(int gpu, int op, const int *s, const float *x, float *y) {
  if (op == 0) {
    if (gpu)
      pool2d_forward_cuda(&G, ST, s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], x, y);
    else
      pool2d_forward_cpu(&CPU, s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], x, y);
  } else if (op == 1) {
    if (gpu)
      pad2d_forward_cuda(&G, ST, s[0], s[1], s[2], s[3], s[4], s[5], x, y);
    else
      pad2d_forward_cpu(&CPU, s[0], s[1], s[2], s[3], s[4], s[5], x, y);
  } else if (op == 2) {
    if (gpu)
      channel_copy_cuda(&G, ST, s[0], s[1], s[2], s[3], x, y);
    else
      channel_copy_cpu(&CPU, s[0], s[1], s[2], s[3], x, y);
  } else {
    if (gpu)
      resize_bilinear_forward_cuda(&G, ST, s[0], s[1], s[2], s[3], s[4], s[5], x, y);
    else
      resize_bilinear_forward_cpu(&CPU, s[0], s[1], s[2], s[3], s[4], s[5], x, y);
  }
}

static void gpu_featop(int op, const int *s, const char *where) {
  static const char *names[4] = {"pool2d", "pad2d", "channel_copy", "resize_bilinear"};
  size_t nx, ny;
  if (op == 0) {
    const int P = (s[1] + 2 * s[6] - s[4]) / s[5] + 1, Q = (s[2] + 2 * s[6] - s[4]) / s[5] + 1;
    nx = (size_t)s[0] * s[1] * s[2] * s[3];
    ny = (size_t)s[0] * P * Q * s[3];
  } else if (op == 1) {
    nx = (size_t)s[0] * s[1] * s[2] * s[3];
    ny = (size_t)s[0] * (s[1] + 2 * s[4]) * (s[2] + 2 * s[5]) * s[3];
  } else if (op == 2) {
    nx = (size_t)s[0] * s[1];
    ny = (size_t)s[0] * s[2];
  } else {
    nx = (size_t)s[0] * s[1] * s[2] * s[3];
    ny = (size_t)s[0] * s[4] * s[5] * s[3];
  }
  float *hx = fnew(nx), *want = fnew(ny), *got = fnew(ny), *got2 = fnew(ny);
  fill(hx, nx, -3.0f, 1.0f);
  // channel_copy writes only its slot: the rest of y keeps what was there (7 on both sides).
  for (size_t i = 0; i < ny; i++)
    want[i] = 7.0f;
  featop_run(0, op, s, hx, want);
  float *dx = dnew(nx * sizeof(float)), *dy = dnew(ny * sizeof(float));
  up(dx, hx, nx * sizeof(float));
  for (int rep = 0; rep < 2; rep++) {
    if (op == 2) {
      float *sevens = fnew(ny);
      for (size_t i = 0; i < ny; i++)
        sevens[i] = 7.0f;
      up(dy, sevens, ny * sizeof(float));
      free(sevens);
    } else {
      poison(dy, ny * sizeof(float));
    }
    featop_run(1, op, s, dx, dy);
    down(rep ? got2 : got, dy, ny * sizeof(float));
  }
  const int same = !memcmp(got, got2, ny * sizeof(float));
  const int64_t u = ulp_of(got, want, ny);
  report(u == 0 && same, "gpu   %-16s %s: %lld ulp%s", names[op], where, (long long)u,
         same ? "" : ", RERUN DIFFERS");
  ganc_cuda_free(&G, dx);
  ganc_cuda_free(&G, dy);
  free(hx), free(want), free(got), free(got2);
}

static void gpu_featops_part(void) {
  printf("-- feature-network ops%s --\n", EMU ? " (emulated)" : "");
  // pool2d {N, H, W, C, K, stride, pad, mode}: Inception's windows at small and real sizes.
  static const int pools[][8] = {{2, 9, 11, 5, 3, 2, 0, 0}, {1, 7, 7, 3, 3, 1, 1, 0},
                                 {1, 7, 7, 3, 3, 1, 1, 1},  {1, 7, 7, 3, 3, 1, 1, 2},
                                 {2, 8, 8, 6, 8, 1, 0, 1},  {1, 5, 4, 2, 2, 2, 1, 1}};
  for (size_t i = 0; i < sizeof pools / sizeof pools[0]; i++)
    gpu_featop(0, pools[i], "small");
  static const int real_pools[][8] = {{1, 147, 147, 64, 3, 2, 0, 0}, // after Conv2d_2b
                                      {1, 35, 35, 192, 3, 1, 1, 1},  // Mixed_5b's branch_pool
                                      {1, 8, 8, 2048, 8, 1, 0, 1}};  // the features
  for (size_t i = 0; i < sizeof real_pools / sizeof real_pools[0]; i++) {
    const int *p = real_pools[i];
    if (!skip_case((int64_t)p[0] * p[1] * p[2] * p[3], 300000)) gpu_featop(0, p, "Inception");
  }
  static const int pads[][6] = {{2, 3, 4, 3, 1, 3}, {1, 17, 17, 8, 0, 3}, {1, 17, 17, 8, 3, 0}};
  for (size_t i = 0; i < sizeof pads / sizeof pads[0]; i++)
    gpu_featop(1, pads[i], i ? "1x7 / 7x1" : "small");
  static const int copies[][4] = {{37, 5, 12, 4}, {35 * 35, 64, 256, 192}};
  for (size_t i = 0; i < sizeof copies / sizeof copies[0]; i++)
    gpu_featop(2, copies[i], i ? "Mixed_5b's last branch" : "small");
  static const int resizes[][6] = {{1, 5, 7, 3, 11, 13}, {2, 28, 9, 1, 57, 4}, {1, 9, 9, 2, 4, 5}};
  for (size_t i = 0; i < sizeof resizes / sizeof resizes[0]; i++)
    gpu_featop(3, resizes[i], "small");
  static const int fid_in[6] = {1, 32, 32, 3, 299, 299}; // 32x32 images to Inception's input
  if (!skip_case(299 * 299 * 3, 300000)) gpu_featop(3, fid_in, "32 → 299");
}

static void gpu_part(void) {
  printf("-- part 2: the launchers on the GPU%s --\n", quick ? " (--quick)" : "");
  static const uint64_t seeds[] = {0, 0x0123456789ABCDEFull};
  static const int zdims[] = {100, 7, 1, 4};
  for (int s = 0; s < 2; s++)
    for (int zi = 0; zi < 4; zi++)
      gpu_latents(seeds[s], 0, 256, zdims[zi]);
  gpu_latents(seeds[1], 0xFFFFFF80ull, 256, 100); // rows across the counter's 32-bit boundary
  gpu_latents(42, 0xFFFFFFFFFFFFFF00ull, 256, 3);

  static const uint8_t flips[] = {1, 0, 1};
  gpu_pixels(3, 64, 64, 3, NULL);
  gpu_pixels(3, 64, 64, 3, flips);
  gpu_pixels(3, 32, 32, 1, flips);
  gpu_pixels(2, 5, 7, 3, flips + 1);

  // n = 0 launches nothing and touches no pointer.
  relu_forward_cuda(&G, ST, 0, NULL, NULL);
  tanh_backward_cuda(&G, ST, 0, NULL, NULL, NULL);
  ganc_cuda_sync(&G);
  report(1, "gpu   activations      n=0: no launch, no fault");
  // Odd lengths, and the sizes of the real layers' activations.
  static const int64_t act_n[] = {
      1, 3, 1000003, 3 * 16 * 512, 64 * 256 * 32, 128 * 64 * 256, 128 * 1024 * 64};
  for (size_t i = 0; i < sizeof act_n / sizeof act_n[0]; i++)
    if (!big(act_n[i])) gpu_act(act_n[i], 0);
  gpu_act(big(1000002) ? 100002 : 1000002, 1);

  static const int loss_n[] = {1, 3, 128, 1000, 65536};
  for (size_t i = 0; i < sizeof loss_n / sizeof loss_n[0]; i++)
    gpu_loss(loss_n[i]);
  for (size_t i = 0; i < sizeof loss_n / sizeof loss_n[0]; i++)
    gpu_lecam(loss_n[i]);

  // The allocation peak (ganc-bench --step reports it after the warm-up): a freed block still
  // counts until ganc_cuda_reset_peak, which starts it again from what is held.
  {
    float *a = ganc_cuda_malloc(&G, 1 << 20), *b = ganc_cuda_malloc(&G, 2 << 20);
    ganc_cuda_free(&G, b);
    const size_t before = ganc_cuda_peak_bytes(&G);
    ganc_cuda_reset_peak(&G);
    const size_t held = ganc_cuda_peak_bytes(&G);
    float *c = ganc_cuda_malloc(&G, 1 << 19);
    const size_t after = ganc_cuda_peak_bytes(&G);
    ganc_cuda_free(&G, c);
    ganc_cuda_free(&G, a);
    report(held + (2 << 20) <= before && after == held + (1 << 19),
           "gpu   allocation peak: %zu before the reset, %zu held at it, %zu after 512 KiB more",
           before, held, after);
  }

  gpu_adam(big(3600003) ? 100003 : 3600003, 0);
  gpu_adam(1001, 1);
  gpu_graph();
  // Its child provokes a CUDA error on purpose, which compute-sanitizer (the --quick runs) would
  // count as one of its errors.
  if (quick)
    printf("note  gpu   graph            the refusal inside a capture: not run under --quick\n");
  else
    gpu_graph_refusal();
  gpu_step_draws(16, 0, 100, 1, 0, 3);
  gpu_step_draws(7, 5, 13, 0, 10, 1ull << 33);
  gpu_step_draws(EMU ? 64 : 512, 64, 128, 1, 1000, 12345);
  gpu_step_stats(1);
  gpu_step_stats(128);
  gpu_step_stats(1000);

  // Under cudemu not the three layers past 2^21 values (dcgan64's G.b2 at batch 128 and G.b3 at
  // 64 and 128: half of this test's emulated time): the same kernels and plan regime as the
  // 2^21-value layers kept (grid-stride passes of two rounds, 2,048 chunks and more) and the
  // "> 4096 chunks" case; a GPU runs them all.
  for (size_t l = 0; l < sizeof BN_LAYERS / sizeof BN_LAYERS[0]; l++)
    for (size_t bi = 0; bi < sizeof BN_BATCHES / sizeof BN_BATCHES[0]; bi++) {
      char where[64];
      snprintf(where, sizeof where, "%s b%d", BN_LAYERS[l].where, BN_BATCHES[bi]);
      const int64_t n = (int64_t)BN_BATCHES[bi] * BN_LAYERS[l].hw * BN_LAYERS[l].c;
      if (big(n) || (EMU && n > (1 << 21))) continue;
      gpu_bn((int64_t)BN_BATCHES[bi] * BN_LAYERS[l].hw, BN_LAYERS[l].c, where);
    }
  // (under cudemu the 2,048-chunk row count with the first odd channel count only: the others'
  // tails of the channel tiles are those of the smaller row counts)
  for (size_t ci = 0; ci < sizeof BN_ODD_C / sizeof BN_ODD_C[0]; ci++)
    for (size_t mi = 0; mi < sizeof BN_ODD_M / sizeof BN_ODD_M[0]; mi++)
      if (!big(BN_ODD_M[mi] * BN_ODD_C[ci]) && !(EMU && ci > 0 && BN_ODD_M[mi] > 100000))
        gpu_bn(BN_ODD_M[mi], BN_ODD_C[ci], "odd");
  // Past 4096 chunks of 64 rows: longer chunks (a multiple of 8 rows), the last one short.
  if (!quick) gpu_bn(300000, 3, "> 4096 chunks");
  gpu_bn_special();
  gpu_bn_slots(64 * 64, 128, "dcgan64 D b1 / 4");
  gpu_bn_slots(1000, 37, "odd");
  gpu_resnet_ops_part();
  gpu_augment_part();
  gpu_featops_part();
}

int main(int argc, char **argv) {
  int capture_only = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick")) {
      quick = 1;
    } else if (!strcmp(argv[i], "--capture-then-wait")) {
      capture_only = 1; // gpu_graph_refusal's child: the refused wait, then nothing else
    } else if (!strcmp(argv[i], "--no-cudnn")) {
      // Accepted for symmetry with test_gpu_conv (tests/gpu/run.sh passes it to every
      // instrumented run): these launchers never call cuDNN, and its handle is made on first use.
    } else {
      FILE *f = strcmp(argv[i], "--help") ? stderr : stdout;
      fprintf(f, "usage: %s [--quick] [--no-cudnn]\n", argv[0]);
      return f == stdout ? 0 : 2;
    }
  }
  ganc_ctx_init_cpu(&CPU, 0);

  char why[256] = "";
  memset(&G, 0, sizeof G);
  if (ganc_cuda_ctx_init(&G, 0, why, sizeof why) != 0) {
    printf("SKIP: %s\n", why);
    return 77;
  }
  ST = ganc_cuda_stream(&G);
  if (capture_only) {
    capture_then_wait();
    return 0;
  }
  char desc[256];
  ganc_cuda_describe(&G, desc, sizeof desc);
  printf("device: %s\n", desc);
  gpu_part();
  ganc_cuda_ctx_free(&G);
  ganc_ctx_free(&CPU);
  printf("%d passed, %d failed\n", n_pass, n_fail);
  return n_fail ? 1 : 0;
}
