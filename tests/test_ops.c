// test_ops.c — every CPU op of ops.h against an independent reference written here in double:
// forward values against the ops' definitions (convolution as its 7-nested-loop sum, transposed
// convolution as its scatter definition), gradients against central finite differences of that
// double reference's scalar L = Σ r ⊙ op(inputs), plus the gradient rule (parameter gradients
// accumulate, activation gradients overwrite), determinism, and conv's chunking of the batch.
// Errors are normalized: max |got − want| / (max |want| + tiny). Outputs are poisoned with NaN
// before each call, so an element an op forgets to write fails the comparison.
// cmocka.h needs these three first, so the block is kept out of include sorting.
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
// clang-format on

#include "core/check.h"    // xmalloc
#include "core/ctx.h"      // ganc_ctx, ganc_scratch
#include "core/philox.h"   // ganc_rng_u32: the augmentations' draws, independently
#include "ops/ops.h"       // the ops under test
#include "ops/precision.h" // train.precision's rounding

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

// ---- helpers ----------------------------------------------------------------------------------

// splitmix64: a fixed seed gives the same inputs on every run and machine.
typedef struct {
  uint64_t s;
} rng;

static uint64_t rng_next(rng *r) {
  uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Uniform in [−1, 1).
static double rng_uniform(rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-52 - 1.0; }

static float *fnew(int64_t n) { return xmalloc((size_t)(n ? n : 1) * sizeof(float)); }
static double *dnew(int64_t n) { return xmalloc((size_t)(n ? n : 1) * sizeof(double)); }

static void fill(float *a, int64_t n, rng *r, double scale, double offset) {
  for (int64_t i = 0; i < n; i++)
    a[i] = (float)(offset + scale * rng_uniform(r));
}

static void fill_value(float *a, int64_t n, float v) {
  for (int64_t i = 0; i < n; i++)
    a[i] = v;
}

static void poison(float *a, int64_t n) { fill_value(a, n, NAN); }

// The double twin of a float tensor (the same values, exactly).
static double *widen(const float *a, int64_t n) {
  double *d = dnew(n);
  for (int64_t i = 0; i < n; i++)
    d[i] = a[i];
  return d;
}

// max |a − b| / (max |b| + tiny); a non-finite a (a poisoned, unwritten element) gives +inf.
static double nerr(const float *a, const double *b, int64_t n) {
  double num = 0.0, den = 0.0;
  for (int64_t i = 0; i < n; i++) {
    if (!isfinite(a[i])) return INFINITY;
    num = fmax(num, fabs((double)a[i] - b[i]));
    den = fmax(den, fabs(b[i]));
  }
  return num / (den + 1e-30);
}

static double nerr_ff(const float *a, const float *b, int64_t n) {
  double *bd = widen(b, n);
  double e = nerr(a, bd, n);
  free(bd);
  return e;
}

// nerr over the entries idx[0..k) of a against want[0..k).
static double nerr_at(const float *a, const int64_t *idx, int k, const double *want) {
  float *g = fnew(k);
  for (int j = 0; j < k; j++)
    g[j] = a[idx[j]];
  double e = nerr(g, want, k);
  free(g);
  return e;
}

#define EXPECT_NERR(what, e, tol)                                                                  \
  do {                                                                                             \
    double e_ = (e);                                                                               \
    if (!(e_ <= (tol))) fail_msg("%s: normalized error %.3g > %.3g", (what), e_, (double)(tol));   \
  } while (0)

// Which entries finite differences probe: all of them for small tensors, else `max` at random.
static int pick(int64_t n, int max, rng *r, int64_t *idx) {
  if (n <= max) {
    for (int64_t i = 0; i < n; i++)
      idx[i] = i;
    return (int)n;
  }
  for (int j = 0; j < max; j++)
    idx[j] = (int64_t)(rng_next(r) % (uint64_t)n);
  return max;
}

// Central differences of f(env), a double function reading `param`, at param[idx[j]].
typedef double (*scalar_fn)(void *env);

static void finite_diff(scalar_fn f, void *env, double *param, const int64_t *idx, int k, double h,
                        double *out) {
  for (int j = 0; j < k; j++) {
    double keep = param[idx[j]];
    param[idx[j]] = keep + h;
    double up = f(env);
    param[idx[j]] = keep - h;
    double down = f(env);
    param[idx[j]] = keep;
    out[j] = (up - down) / (2.0 * h);
  }
}

static double dot(const double *a, const double *b, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; i++)
    s += a[i] * b[i];
  return s;
}

enum { FD_MAX = 64 }; // entries per tensor probed by finite differences

// ---- context ----------------------------------------------------------------------------------

static int group_setup(void **state) {
  ganc_ctx *ctx = xmalloc(sizeof *ctx);
  ganc_ctx_init_cpu(ctx, 0);
  *state = ctx;
  return 0;
}

static int group_teardown(void **state) {
  ganc_ctx_free(*state);
  free(*state);
  return 0;
}

static void test_ctx_scratch(void **state) {
  (void)state;
  ganc_ctx c;
  ganc_ctx_init_cpu(&c, 0);
  assert_true(c.threads >= 1);
  assert_int_equal(c.backend, GANC_BACKEND_CPU);
  float *a = ganc_scratch(&c, 100);
  assert_non_null(a);
  assert_int_equal((uintptr_t)a % 64, 0);
  assert_true(c.scratch_floats >= 100);
  a[99] = 1.0f;
  assert_ptr_equal(ganc_scratch(&c, 10), a); // grow-only: a smaller request keeps the buffer
  float *b = ganc_scratch(&c, 1000000);
  assert_int_equal((uintptr_t)b % 64, 0);
  assert_true(c.scratch_floats >= 1000000);
  b[999999] = 2.0f; // the whole request is usable (ASan checks the bound)
  ganc_ctx_free(&c);
  assert_null(c.scratch);
  ganc_ctx_init_cpu(&c, 1);
  assert_int_equal(c.threads, 1);
  ganc_ctx_free(&c);
  ganc_ctx *main_ctx = *state;
  ganc_ctx_init_cpu(main_ctx, main_ctx->threads); // restore the library thread counts
}

// ---- convolution: the double references ---------------------------------------------------

// y [N,P,Q,K] = Σ_{r,s,c} x[n, p·st − pad + r, q·st − pad + s, c] · w[r,s,c,k], straight from the
// definition.
static void ref_conv(const conv_shape *s, const double *x, const double *w, double *y) {
  for (int n = 0; n < s->N; n++)
    for (int p = 0; p < s->P; p++)
      for (int q = 0; q < s->Q; q++)
        for (int k = 0; k < s->K; k++) {
          double acc = 0.0;
          for (int r = 0; r < s->R; r++)
            for (int sx = 0; sx < s->S; sx++)
              for (int c = 0; c < s->C; c++) {
                int h = p * s->stride - s->pad + r, ww = q * s->stride - s->pad + sx;
                if (h < 0 || h >= s->H || ww < 0 || ww >= s->W) continue;
                acc += x[(((int64_t)n * s->H + h) * s->W + ww) * s->C + c] *
                       w[(((int64_t)r * s->S + sx) * s->C + c) * s->K + k];
              }
          y[(((int64_t)n * s->P + p) * s->Q + q) * s->K + k] = acc;
        }
}

// The transposed convolution by its own (scatter) definition, as PyTorch's ConvTranspose2d: each
// input element in [N,P,Q,K] stamps the kernel into out [N,H,W,C] at (p·st − pad, q·st − pad).
static void ref_convT(const conv_shape *s, const double *in, const double *w, double *out) {
  memset(out, 0, sizeof(double) * (size_t)s->N * s->H * s->W * s->C);
  for (int n = 0; n < s->N; n++)
    for (int p = 0; p < s->P; p++)
      for (int q = 0; q < s->Q; q++)
        for (int k = 0; k < s->K; k++)
          for (int r = 0; r < s->R; r++)
            for (int sx = 0; sx < s->S; sx++)
              for (int c = 0; c < s->C; c++) {
                int h = p * s->stride - s->pad + r, ww = q * s->stride - s->pad + sx;
                if (h < 0 || h >= s->H || ww < 0 || ww >= s->W) continue;
                out[(((int64_t)n * s->H + h) * s->W + ww) * s->C + c] +=
                    in[(((int64_t)n * s->P + p) * s->Q + q) * s->K + k] *
                    w[(((int64_t)r * s->S + sx) * s->C + c) * s->K + k];
              }
}

// L = Σ r ⊙ conv(x, w) (transposed = 0) or Σ r ⊙ convT(x, w) (transposed = 1).
typedef struct {
  const conv_shape *s;
  int transposed;
  double *x, *w, *r, *tmp;
} conv_env;

static double conv_L(void *e) {
  conv_env *c = e;
  const conv_shape *s = c->s;
  if (!c->transposed) {
    ref_conv(s, c->x, c->w, c->tmp);
    return dot(c->r, c->tmp, (int64_t)s->N * s->P * s->Q * s->K);
  }
  ref_convT(s, c->x, c->w, c->tmp);
  return dot(c->r, c->tmp, (int64_t)s->N * s->H * s->W * s->C);
}

typedef struct {
  const char *name;
  int N, H, W, C, K, R, S, stride, pad;
} conv_case;

static const conv_case conv_cases[] = {
    {"D 8x8x3->4x4x5 s2 p1", 2, 8, 8, 3, 5, 4, 4, 2, 1},
    {"D 16x16x4->8x8x8 s2 p1", 2, 16, 16, 4, 8, 4, 4, 2, 1},
    {"D head 4x4x6->1x1x1", 3, 4, 4, 6, 1, 4, 4, 1, 0},
    {"G head adjoint 4x4x6->1x1x7", 2, 4, 4, 6, 7, 4, 4, 1, 0},
    {"3x3 s1 p1 5x7x3->6 batch 1", 1, 5, 7, 3, 6, 3, 3, 1, 1},
    {"odd 7x5x5->3 s2 p1 batch 3", 3, 7, 5, 5, 3, 4, 4, 2, 1},
    {"1x1 s1 3x5x6->5", 2, 3, 5, 6, 5, 1, 1, 1, 0},
    {"3x3 s2 p0 9x6x2->3", 1, 9, 6, 2, 3, 3, 3, 2, 0},
    {"5x3 s3 p2 5x5x3->2", 2, 5, 5, 3, 2, 5, 3, 3, 2},
    {"1x1 s2 6x5x3->4", 3, 6, 5, 3, 4, 1, 1, 2, 0},
    {"2x2 s2 p3 (pad > kernel) 3x4x2->3", 2, 3, 4, 2, 3, 2, 2, 2, 3},
    // 4·8·8 rows × 4·4·64 columns = 2^18 floats: im2col and col2im run on a thread team.
    {"D 16x16x64->8x8x8 s2 p1 batch 4 (threaded)", 4, 16, 16, 64, 8, 4, 4, 2, 1},
};

// One shape through all three roles, as a convolution and as a transposed convolution.
static void check_conv_case(ganc_ctx *ctx, const conv_case *cc, rng *rg) {
  conv_shape s;
  assert_int_equal(
      conv_shape_make(&s, cc->N, cc->H, cc->W, cc->C, cc->K, cc->R, cc->S, cc->stride, cc->pad), 0);
  const int64_t nx = (int64_t)s.N * s.H * s.W * s.C, ny = (int64_t)s.N * s.P * s.Q * s.K;
  const int64_t nw = (int64_t)s.R * s.S * s.C * s.K;
  float *x = fnew(nx), *w = fnew(nw), *r = fnew(ny), *y = fnew(ny), *y2 = fnew(ny);
  float *dx = fnew(nx), *dx2 = fnew(nx), *dw = fnew(nw), *dw2 = fnew(nw), *d0 = fnew(nw);
  float *rT = fnew(nx), *inT = fnew(ny), *din = fnew(ny), *dwT = fnew(nw);
  fill(x, nx, rg, 1, 0);
  fill(w, nw, rg, 1, 0);
  fill(r, ny, rg, 1, 0);
  fill(rT, nx, rg, 1, 0);
  fill(inT, ny, rg, 1, 0);
  double *xd = widen(x, nx), *wd = widen(w, nw), *rd = widen(r, ny), *rTd = widen(rT, nx);
  double *inTd = widen(inT, ny), *yd = dnew(ny), *outd = dnew(nx);
  int64_t *idx = xmalloc(FD_MAX * sizeof *idx);
  double *fd = dnew(FD_MAX);
  char what[160];

  // Forward against the definition; a second run is bit-identical.
  poison(y, ny);
  conv2d_forward_cpu(ctx, &s, x, w, y);
  ref_conv(&s, xd, wd, yd);
  snprintf(what, sizeof what, "%s: forward", cc->name);
  EXPECT_NERR(what, nerr(y, yd, ny), 1e-5);
  poison(y2, ny);
  conv2d_forward_cpu(ctx, &s, x, w, y2);
  assert_memory_equal(y, y2, ny * sizeof(float));

  // Backward data is the transposed convolution: against its scatter definition, with dy = r.
  poison(dx, nx);
  conv2d_backward_data_cpu(ctx, &s, r, w, dx);
  ref_convT(&s, rd, wd, outd);
  snprintf(what, sizeof what, "%s: backward data = convT forward", cc->name);
  EXPECT_NERR(what, nerr(dx, outd, nx), 1e-5);
  fill_value(dx2, nx, 1e30f); // overwrite, not accumulate: the old values must not show through
  conv2d_backward_data_cpu(ctx, &s, r, w, dx2);
  assert_memory_equal(dx, dx2, nx * sizeof(float));

  // Gradients of L = Σ r ⊙ conv(x, w): dx (computed above) and dw against finite differences.
  conv_env env = {&s, 0, xd, wd, rd, dnew(ny)};
  int k = pick(nx, FD_MAX, rg, idx);
  finite_diff(conv_L, &env, xd, idx, k, 1e-3, fd);
  snprintf(what, sizeof what, "%s: dx vs finite differences", cc->name);
  EXPECT_NERR(what, nerr_at(dx, idx, k, fd), 1e-4);
  fill_value(dw, nw, 0.0f);
  conv2d_backward_weight_cpu(ctx, &s, x, r, dw);
  k = pick(nw, FD_MAX, rg, idx);
  finite_diff(conv_L, &env, wd, idx, k, 1e-3, fd);
  snprintf(what, sizeof what, "%s: dw vs finite differences", cc->name);
  EXPECT_NERR(what, nerr_at(dw, idx, k, fd), 1e-4);
  free(env.tmp);

  // dw accumulates: from d0, two calls give d0 + 2·dw.
  fill(d0, nw, rg, 1, 0);
  memcpy(dw2, d0, nw * sizeof(float));
  conv2d_backward_weight_cpu(ctx, &s, x, r, dw2);
  conv2d_backward_weight_cpu(ctx, &s, x, r, dw2);
  double *want = dnew(nw);
  for (int64_t i = 0; i < nw; i++)
    want[i] = (double)d0[i] + 2.0 * dw[i];
  snprintf(what, sizeof what, "%s: dw accumulates", cc->name);
  EXPECT_NERR(what, nerr(dw2, want, nw), 1e-6);
  free(want);
  // and is deterministic: a second run from zero is bit-identical.
  fill_value(dw2, nw, 0.0f);
  conv2d_backward_weight_cpu(ctx, &s, x, r, dw2);
  assert_memory_equal(dw, dw2, nw * sizeof(float));

  // The transposed convolution's gradients through the identities of ops.h, for
  // L = Σ rT ⊙ convT(inT, w):  d_in = conv2d_forward(x = rT),  dw += backward_weight(rT, inT).
  conv_env envT = {&s, 1, inTd, wd, rTd, dnew(nx)};
  poison(din, ny);
  conv2d_forward_cpu(ctx, &s, rT, w, din);
  k = pick(ny, FD_MAX, rg, idx);
  finite_diff(conv_L, &envT, inTd, idx, k, 1e-3, fd);
  snprintf(what, sizeof what, "%s: convT d_in vs finite differences", cc->name);
  EXPECT_NERR(what, nerr_at(din, idx, k, fd), 1e-4);
  fill_value(dwT, nw, 0.0f);
  conv2d_backward_weight_cpu(ctx, &s, rT, inT, dwT);
  k = pick(nw, FD_MAX, rg, idx);
  finite_diff(conv_L, &envT, wd, idx, k, 1e-3, fd);
  snprintf(what, sizeof what, "%s: convT dw vs finite differences", cc->name);
  EXPECT_NERR(what, nerr_at(dwT, idx, k, fd), 1e-4);
  free(envT.tmp);

  float *bufs[] = {x, w, r, y, y2, dx, dx2, dw, dw2, d0, rT, inT, din, dwT};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
    free(bufs[i]);
  double *dbufs[] = {xd, wd, rd, rTd, inTd, yd, outd, fd};
  for (size_t i = 0; i < sizeof dbufs / sizeof *dbufs; i++)
    free(dbufs[i]);
  free(idx);
}

static void test_conv_cases(void **state) {
  rng rg = {1};
  for (size_t i = 0; i < sizeof conv_cases / sizeof *conv_cases; i++)
    check_conv_case(*state, &conv_cases[i], &rg);
}

// train.precision on the CPU (src/ops/conv.c): the operands rounded as the tensor cores round them
// (ops/precision.h), then the FP32 path. The rounding on values whose answer is known (ties to
// even for bf16, ties away for tf32), then every role in bf16 and tf32 equal, bit for bit, to the
// FP32 role on operands rounded here, and within (2u + u²)·Σ|products| of the FP32 result.
static float bits_f(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static void test_conv_precision(void **state) {
  ganc_ctx *ctx = *state;
  // bf16 keeps 7 fraction bits: 1 + 2^-8 is a tie (to 1), 1 + 3·2^-8 a tie (to 1 + 2^-6).
  assert_true(ganc_round_bf16(1.0f + 0x1p-8f) == 1.0f);
  assert_true(ganc_round_bf16(1.0f + 3 * 0x1p-8f) == 1.0f + 0x1p-6f);
  assert_true(ganc_round_bf16(-(1.0f + 0x1.8p-8f)) == -(1.0f + 0x1p-7f));
  assert_true(ganc_round_bf16(1.0f + 0x1p-9f) == 1.0f);
  // tf32 keeps 10: 1 + 2^-11 is a tie, away from zero (to 1 + 2^-10), also when negative.
  assert_true(ganc_round_tf32(1.0f + 0x1p-11f) == 1.0f + 0x1p-10f);
  assert_true(ganc_round_tf32(-(1.0f + 0x1p-11f)) == -(1.0f + 0x1p-10f));
  assert_true(ganc_round_tf32(1.0f + 0x1p-12f) == 1.0f);
  assert_true(isinf(ganc_round_bf16(INFINITY)) && isnan(ganc_round_bf16(NAN)));
  assert_true(isnan(ganc_round_tf32(bits_f(0x7FC00001u))));
  assert_true(ganc_round_bf16(FLT_MAX) == INFINITY); // rounds past the largest bf16

  conv_shape s;
  assert_int_equal(conv_shape_make(&s, 2, 7, 6, 5, 9, 3, 3, 2, 1), 0);
  const size_t nx = (size_t)s.N * s.H * s.W * s.C, nw = (size_t)s.R * s.S * s.C * s.K,
               ny = (size_t)s.N * s.P * s.Q * s.K;
  rng rg = {77};
  float *x = xmalloc(nx * 4), *w = xmalloc(nw * 4), *dy = xmalloc(ny * 4);
  float *rx = xmalloc(nx * 4), *rw = xmalloc(nw * 4), *rdy = xmalloc(ny * 4);
  float *ax = xmalloc(nx * 4), *aw = xmalloc(nw * 4), *ady = xmalloc(ny * 4);
  for (size_t i = 0; i < nx; i++)
    x[i] = (float)rng_uniform(&rg), ax[i] = fabsf(x[i]);
  for (size_t i = 0; i < nw; i++)
    w[i] = (float)rng_uniform(&rg), aw[i] = fabsf(w[i]);
  for (size_t i = 0; i < ny; i++)
    dy[i] = (float)rng_uniform(&rg), ady[i] = fabsf(dy[i]);
  const size_t nmax = nx > ny ? (nx > nw ? nx : nw) : (ny > nw ? ny : nw);
  float *got = xmalloc(nmax * 4), *want = xmalloc(nmax * 4), *f32 = xmalloc(nmax * 4),
        *sab = xmalloc(nmax * 4);
  const ganc_precision precs[2] = {GANC_PREC_BF16, GANC_PREC_TF32};
  for (int pi = 0; pi < 2; pi++) {
    const double u = precs[pi] == GANC_PREC_BF16 ? 0x1p-8 : 0x1p-11; // 8- and 11-bit significands
    for (size_t i = 0; i < nx; i++)
      rx[i] = precs[pi] == GANC_PREC_BF16 ? ganc_round_bf16(x[i]) : ganc_round_tf32(x[i]);
    for (size_t i = 0; i < nw; i++)
      rw[i] = precs[pi] == GANC_PREC_BF16 ? ganc_round_bf16(w[i]) : ganc_round_tf32(w[i]);
    for (size_t i = 0; i < ny; i++)
      rdy[i] = precs[pi] == GANC_PREC_BF16 ? ganc_round_bf16(dy[i]) : ganc_round_tf32(dy[i]);
    for (int role = 0; role < 3; role++) {
      const size_t n = role == 0 ? ny : role == 1 ? nx : nw;
      memset(got, 0, n * 4), memset(want, 0, n * 4), memset(f32, 0, n * 4), memset(sab, 0, n * 4);
      ctx->precision = precs[pi];
      if (role == 0) conv2d_forward_cpu(ctx, &s, x, w, got);
      if (role == 1) conv2d_backward_data_cpu(ctx, &s, dy, w, got);
      if (role == 2) conv2d_backward_weight_cpu(ctx, &s, x, dy, got);
      ctx->precision = GANC_PREC_FP32;
      if (role == 0) {
        conv2d_forward_cpu(ctx, &s, rx, rw, want);
        conv2d_forward_cpu(ctx, &s, x, w, f32);
        conv2d_forward_cpu(ctx, &s, ax, aw, sab);
      } else if (role == 1) {
        conv2d_backward_data_cpu(ctx, &s, rdy, rw, want);
        conv2d_backward_data_cpu(ctx, &s, dy, w, f32);
        conv2d_backward_data_cpu(ctx, &s, ady, aw, sab);
      } else {
        conv2d_backward_weight_cpu(ctx, &s, rx, rdy, want);
        conv2d_backward_weight_cpu(ctx, &s, x, dy, f32);
        conv2d_backward_weight_cpu(ctx, &s, ax, ady, sab);
      }
      assert_memory_equal(got, want, n * 4);
      double worst = 0, moved = 0;
      for (size_t i = 0; i < n; i++) {
        const double e = fabs((double)got[i] - f32[i]);
        moved = fmax(moved, e);
        worst = fmax(worst, e / ((2 * u + u * u) * sab[i] + 1e-6 * sab[i] + 1e-30));
      }
      if (worst > 1.0 || moved == 0.0)
        fail_msg("precision %d role %d: error %.3g of the bound (largest change %.3g)", pi, role,
                 worst, moved);
    }
  }
  float *bufs[] = {x, w, dy, rx, rw, rdy, ax, aw, ady, got, want, f32, sab};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
    free(bufs[i]);
}

// BF16 storage (train.bf16_activations): a stored half is the bf16 the tensor cores make of the
// value (ganc_round_bf16), the ops that write or read halves give the halves of / the results on
// their FP32 counterparts bit for bit, and conv2d_mixed is the role on the widened operand.
static void test_bf16_storage(void **state) {
  ganc_ctx *ctx = *state;
  rng rg = {2027};
  for (int i = 0; i < 100000; i++) {
    uint32_t u = (uint32_t)rng_next(&rg);
    if (i < 6) { // the edges: ±0, ±Inf, the largest float, a tie
      const uint32_t e[6] = {0u, 0x80000000u, 0x7F800000u, 0xFF800000u, 0x7F7FFFFFu, 0x3F808000u};
      u = e[i];
    }
    const float f = bits_f(u), r = ganc_bf16_load(ganc_bf16_store(f));
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) { // NaN stays NaN
      assert_true(isnan(r));
      continue;
    }
    const float want = ganc_round_bf16(f);
    assert_memory_equal(&r, &want, 4);
  }
  assert_true(ganc_bf16_load(ganc_bf16_store(0x1p-135f)) == 0.0f); // the documented loss
  assert_true(ganc_bf16_load(ganc_bf16_store(0x1p-133f)) == 0x1p-133f);

  // Batch norm writing halves, train and eval, with each activation.
  const int64_t M = 37;
  const int C = 6, n = (int)M * C;
  float *x = fnew(n), *g = fnew(C), *b = fnew(C), *rm = fnew(C), *rv = fnew(C), *y = fnew(n),
        *mu = fnew(C), *rs = fnew(C), *dy = fnew(n), *dx = fnew(n), *dx2 = fnew(n), *yw = fnew(n);
  uint16_t *h = xmalloc((size_t)n * 2);
  fill(x, n, &rg, 2, 0.3);
  fill(g, C, &rg, 1, 0);
  fill(b, C, &rg, 0.5, 0);
  fill(rm, C, &rg, 0.2, 0);
  fill(rv, C, &rg, 0.5, 1);
  fill(dy, n, &rg, 1, 0);
  for (int act = GANC_ACT_NONE; act <= GANC_ACT_LRELU; act++)
    for (int train = 0; train < 2; train++) {
      memset(h, 0xFF, (size_t)n * 2);
      poison(y, n);
      if (train) {
        batchnorm_forward_train_cpu(ctx, M, C, x, GANC_X_FP32, g, b, 1e-5f, 0.1f, act, 0.2f, y, 0,
                                    mu, rs, NULL, NULL, NULL, NULL);
        batchnorm_forward_train_cpu(ctx, M, C, x, GANC_X_FP32, g, b, 1e-5f, 0.1f, act, 0.2f, h, 1,
                                    mu, rs, NULL, NULL, NULL, NULL);
      } else {
        batchnorm_forward_eval_cpu(ctx, M, C, x, GANC_X_FP32, g, b, rm, rv, 1e-5f, act, 0.2f, y, 0);
        batchnorm_forward_eval_cpu(ctx, M, C, x, GANC_X_FP32, g, b, rm, rv, 1e-5f, act, 0.2f, h, 1);
      }
      for (int i = 0; i < n; i++)
        if (h[i] != ganc_bf16_store(y[i]))
          fail_msg("BN %s act %d: element %d stored 0x%04x, want 0x%04x", train ? "train" : "eval",
                   act, i, h[i], ganc_bf16_store(y[i]));
      if (act == GANC_ACT_NONE) continue;
      // The activation's backward on the halves: the same as on the widened values.
      for (int i = 0; i < n; i++)
        yw[i] = ganc_bf16_load(h[i]);
      poison(dx, n), poison(dx2, n);
      if (act == GANC_ACT_RELU) {
        relu_backward_cpu(ctx, n, h, 1, dy, dx);
        relu_backward_cpu(ctx, n, yw, 0, dy, dx2);
      } else {
        lrelu_backward_cpu(ctx, n, 0.2f, h, 1, dy, dx);
        lrelu_backward_cpu(ctx, n, 0.2f, yw, 0, dy, dx2);
      }
      assert_memory_equal(dx, dx2, (size_t)n * 4);
    }
  // Batch norm's backward with dx in bf16: the halves of the FP32 dx, the same dgamma and dbeta.
  {
    float *dg = fnew(C), *db = fnew(C), *dg2 = fnew(C), *db2 = fnew(C);
    batchnorm_forward_train_cpu(ctx, M, C, x, GANC_X_FP32, g, b, 1e-5f, 0.1f, 0, 0.2f, y, 0, mu, rs,
                                NULL, NULL, NULL, NULL);
    memset(dg, 0, C * 4), memset(db, 0, C * 4), memset(dg2, 0, C * 4), memset(db2, 0, C * 4);
    poison(dx, n);
    memset(h, 0xFF, (size_t)n * 2);
    batchnorm_backward_cpu(ctx, M, C, x, GANC_X_FP32, dy, GANC_X_FP32, g, mu, rs, dx, 0, dg, db);
    batchnorm_backward_cpu(ctx, M, C, x, GANC_X_FP32, dy, GANC_X_FP32, g, mu, rs, h, 1, dg2, db2);
    for (int i = 0; i < n; i++)
      if (h[i] != ganc_bf16_store(dx[i]))
        fail_msg("BN backward: dx element %d stored 0x%04x, want 0x%04x", i, h[i],
                 ganc_bf16_store(dx[i]));
    assert_memory_equal(dg, dg2, C * 4);
    assert_memory_equal(db, db2, C * 4);
    free(dg), free(db), free(dg2), free(db2);
  }

  // Batch norm reading x as halves (GANC_X_BF16) or rounding FP32 x as it reads (GANC_X_ROUND):
  // bit for bit the op on the widened halves, in training (y, mean, rstd, running statistics),
  // eval and backward (dx, dgamma, dbeta). x here has values that rounding moves, ties and NaN-free
  // edges (a large offset keeps the two-pass statistics honest).
  {
    float *xw = fnew(n), *xo = fnew(n), *y2 = fnew(n), *mu2 = fnew(C), *rs2 = fnew(C);
    float *rmw = fnew(C), *rvw = fnew(C), *rm2 = fnew(C), *rv2 = fnew(C);
    float *dg = fnew(C), *db = fnew(C), *dg2 = fnew(C), *db2 = fnew(C);
    uint16_t *hx = xmalloc((size_t)n * 2);
    fill(xo, n, &rg, 2, 3.0);
    xo[0] = bits_f(0x40408000u), xo[1] = bits_f(0x40418000u); // ties: to even, down and up
    xo[2] = -0.0f, xo[3] = 0x1p-140f;
    for (int i = 0; i < n; i++)
      hx[i] = ganc_bf16_store(xo[i]), xw[i] = ganc_bf16_load(hx[i]);
    assert_true(xw[0] != xo[0] && xw[1] != xo[1]);
    for (int mode = GANC_X_BF16; mode <= GANC_X_ROUND; mode++) {
      const void *xin = mode == GANC_X_BF16 ? (const void *)hx : (const void *)xo;
      for (int act = GANC_ACT_NONE; act <= GANC_ACT_LRELU; act++) {
        memcpy(rmw, rm, C * 4), memcpy(rvw, rv, C * 4), memcpy(rm2, rm, C * 4);
        memcpy(rv2, rv, C * 4);
        poison(y, n), poison(y2, n);
        batchnorm_forward_train_cpu(ctx, M, C, xw, GANC_X_FP32, g, b, 1e-5f, 0.1f, act, 0.2f, y, 0,
                                    mu, rs, rmw, rvw, NULL, NULL);
        batchnorm_forward_train_cpu(ctx, M, C, xin, mode, g, b, 1e-5f, 0.1f, act, 0.2f, y2, 0, mu2,
                                    rs2, rm2, rv2, NULL, NULL);
        assert_memory_equal(y, y2, (size_t)n * 4);
        assert_memory_equal(mu, mu2, C * 4), assert_memory_equal(rs, rs2, C * 4);
        assert_memory_equal(rmw, rm2, C * 4), assert_memory_equal(rvw, rv2, C * 4);
        poison(y, n), poison(y2, n);
        batchnorm_forward_eval_cpu(ctx, M, C, xw, GANC_X_FP32, g, b, rm, rv, 1e-5f, act, 0.2f, y,
                                   0);
        batchnorm_forward_eval_cpu(ctx, M, C, xin, mode, g, b, rm, rv, 1e-5f, act, 0.2f, y2, 0);
        assert_memory_equal(y, y2, (size_t)n * 4);
      }
      memset(dg, 0, C * 4), memset(db, 0, C * 4), memset(dg2, 0, C * 4), memset(db2, 0, C * 4);
      poison(dx, n), poison(dx2, n);
      batchnorm_backward_cpu(ctx, M, C, xw, GANC_X_FP32, dy, GANC_X_FP32, g, mu, rs, dx, 0, dg, db);
      batchnorm_backward_cpu(ctx, M, C, xin, mode, dy, GANC_X_FP32, g, mu, rs, dx2, 0, dg2, db2);
      assert_memory_equal(dx, dx2, (size_t)n * 4);
      assert_memory_equal(dg, dg2, C * 4), assert_memory_equal(db, db2, C * 4);
    }
    // dy likewise (a bf16 run's gradient from a convolution's backward-data): as halves or rounded
    // as read, alone and with x's halves, = the op on the widened halves bit for bit; the FP32 dy
    // gives another dx.
    {
      uint16_t *hdy = xmalloc((size_t)n * 2);
      float *dyw = fnew(n);
      for (int i = 0; i < n; i++)
        hdy[i] = ganc_bf16_store(dy[i]), dyw[i] = ganc_bf16_load(hdy[i]);
      for (int k = 0; k < 3; k++) { // dy halves, dy rounded, both halves
        const int dm = k == 1 ? GANC_X_ROUND : GANC_X_BF16, xm = k == 2 ? GANC_X_BF16 : GANC_X_FP32;
        const void *dyin = dm == GANC_X_BF16 ? (const void *)hdy : (const void *)dy;
        const void *xin = k == 2 ? (const void *)hx : (const void *)xw;
        memset(dg, 0, C * 4), memset(db, 0, C * 4), memset(dg2, 0, C * 4), memset(db2, 0, C * 4);
        poison(dx, n), poison(dx2, n);
        batchnorm_backward_cpu(ctx, M, C, xw, GANC_X_FP32, dyw, GANC_X_FP32, g, mu, rs, dx, 0, dg,
                               db);
        batchnorm_backward_cpu(ctx, M, C, xin, xm, dyin, dm, g, mu, rs, dx2, 0, dg2, db2);
        assert_memory_equal(dx, dx2, (size_t)n * 4);
        assert_memory_equal(dg, dg2, C * 4), assert_memory_equal(db, db2, C * 4);
      }
      batchnorm_backward_cpu(ctx, M, C, xw, GANC_X_FP32, dy, GANC_X_FP32, g, mu, rs, dx2, 0, dg2,
                             db2);
      assert_true(memcmp(dx, dx2, (size_t)n * 4) != 0);
      free(hdy), free(dyw);
    }
    // y over x (both FP32, x FP32 or rounded as read): the bits of the op out of place.
    for (int mode = GANC_X_FP32; mode <= GANC_X_ROUND; mode += GANC_X_ROUND)
      for (int train = 0; train < 2; train++) {
        memcpy(y2, xo, (size_t)n * 4);
        poison(y, n);
        if (train) {
          batchnorm_forward_train_cpu(ctx, M, C, xo, mode, g, b, 1e-5f, 0.1f, GANC_ACT_RELU, 0.2f,
                                      y, 0, mu, rs, NULL, NULL, NULL, NULL);
          batchnorm_forward_train_cpu(ctx, M, C, y2, mode, g, b, 1e-5f, 0.1f, GANC_ACT_RELU, 0.2f,
                                      y2, 0, mu2, rs2, NULL, NULL, NULL, NULL);
          assert_memory_equal(mu, mu2, C * 4), assert_memory_equal(rs, rs2, C * 4);
        } else {
          batchnorm_forward_eval_cpu(ctx, M, C, xo, mode, g, b, rm, rv, 1e-5f, GANC_ACT_RELU, 0.2f,
                                     y, 0);
          batchnorm_forward_eval_cpu(ctx, M, C, y2, mode, g, b, rm, rv, 1e-5f, GANC_ACT_RELU, 0.2f,
                                     y2, 0);
        }
        assert_memory_equal(y, y2, (size_t)n * 4);
      }
    // ... and rounding matters: the FP32 x gives other statistics.
    batchnorm_forward_train_cpu(ctx, M, C, xo, GANC_X_FP32, g, b, 1e-5f, 0.1f, 0, 0.2f, y2, 0, mu2,
                                rs2, NULL, NULL, NULL, NULL);
    assert_true(memcmp(mu, mu2, C * 4) != 0);
    float *fb[] = {xw, xo, y2, mu2, rs2, rmw, rvw, rm2, rv2, dg, db, dg2, db2};
    for (size_t i = 0; i < sizeof fb / sizeof *fb; i++)
      free(fb[i]);
    free(hx);
  }

  // act_forward_bf16: the halves of ReLU's and leaky ReLU's FP32 output (and of x for none), on
  // values across the range and the edges (NaN, infinities, signed zeros, subnormals).
  {
    const float edge[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 0x1p-140f, -0x1p-140f, 3.0e38f};
    float *xa = fnew(n + 8), *ya = fnew(n + 8);
    uint16_t *ha = xmalloc((size_t)(n + 8) * 2);
    memcpy(xa, x, (size_t)n * 4);
    memcpy(xa + n, edge, sizeof edge);
    for (int act = GANC_ACT_NONE; act <= GANC_ACT_LRELU; act++) {
      if (act == GANC_ACT_RELU) relu_forward_cpu(ctx, n + 8, xa, ya);
      if (act == GANC_ACT_LRELU) lrelu_forward_cpu(ctx, n + 8, 0.2f, xa, ya);
      if (act == GANC_ACT_NONE) memcpy(ya, xa, (size_t)(n + 8) * 4);
      memset(ha, 0xFF, (size_t)(n + 8) * 2);
      act_forward_bf16_cpu(ctx, n + 8, act, 0.2f, xa, ha);
      for (int i = 0; i < n + 8; i++)
        if (ha[i] != ganc_bf16_store(ya[i]))
          fail_msg("act_forward_bf16 act %d: element %d stored 0x%04x, want 0x%04x", act, i, ha[i],
                   ganc_bf16_store(ya[i]));
    }
    free(xa), free(ya), free(ha);
  }

  // conv2d_mixed: each role with each operand it takes in bf16, at FP32 and BF16 precision.
  conv_shape s;
  assert_int_equal(conv_shape_make(&s, 2, 6, 5, 8, 16, 3, 3, 2, 1), 0);
  const size_t nx = (size_t)s.N * s.H * s.W * s.C, nw = (size_t)s.R * s.S * s.C * s.K,
               ny = (size_t)s.N * s.P * s.Q * s.K, nmax = nx > nw ? nx : nw;
  float *cx = fnew((int64_t)nx), *cw = fnew((int64_t)nw), *cdy = fnew((int64_t)ny);
  float *wx = fnew((int64_t)nx), *wdy = fnew((int64_t)ny), *o1 = fnew((int64_t)nmax),
        *o2 = fnew((int64_t)nmax);
  uint16_t *hx = xmalloc(nx * 2), *hdy = xmalloc(ny * 2);
  fill(cx, (int64_t)nx, &rg, 1, 0);
  fill(cw, (int64_t)nw, &rg, 0.2, 0);
  fill(cdy, (int64_t)ny, &rg, 1, 0);
  for (size_t i = 0; i < nx; i++)
    hx[i] = ganc_bf16_store(cx[i]), wx[i] = ganc_bf16_load(hx[i]);
  for (size_t i = 0; i < ny; i++)
    hdy[i] = ganc_bf16_store(cdy[i]), wdy[i] = ganc_bf16_load(hdy[i]);
  const ganc_precision precs[2] = {GANC_PREC_FP32, GANC_PREC_BF16};
  for (int pi = 0; pi < 2; pi++) {
    ctx->precision = precs[pi];
    for (int c = 0; c < 5; c++) { // FWD x, BWD_DATA dy, BWD_WEIGHT x, dy, both
      const int role = c == 0 ? GANC_CONV_FWD : c == 1 ? GANC_CONV_BWD_DATA : GANC_CONV_BWD_WEIGHT;
      const size_t no = role == GANC_CONV_FWD ? ny : role == GANC_CONV_BWD_DATA ? nx : nw;
      fill(o1, (int64_t)no, &rg, 1, 0); // backward-weight accumulates onto what is there
      memcpy(o2, o1, no * 4);
      if (c == 0) {
        conv2d_mixed_cpu(ctx, role, &s, hx, 1, cw, 0, NULL, o1, 0, NULL);
        conv2d_forward_cpu(ctx, &s, wx, cw, o2);
      } else if (c == 1) {
        conv2d_mixed_cpu(ctx, role, &s, hdy, 1, cw, 0, NULL, o1, 0, NULL);
        conv2d_backward_data_cpu(ctx, &s, wdy, cw, o2);
      } else if (c == 2) {
        conv2d_mixed_cpu(ctx, role, &s, hx, 1, cdy, 0, NULL, o1, 0, NULL);
        conv2d_backward_weight_cpu(ctx, &s, wx, cdy, o2);
      } else if (c == 3) {
        conv2d_mixed_cpu(ctx, role, &s, cx, 0, hdy, 1, NULL, o1, 0, NULL);
        conv2d_backward_weight_cpu(ctx, &s, cx, wdy, o2);
      } else {
        conv2d_mixed_cpu(ctx, role, &s, hx, 1, hdy, 1, NULL, o1, 0, NULL);
        conv2d_backward_weight_cpu(ctx, &s, wx, wdy, o2);
      }
      if (memcmp(o1, o2, no * 4))
        fail_msg("conv2d_mixed_cpu case %d precision %d differs from the widened operand", c,
                 (int)precs[pi]);
      // The output asked in bf16 (forward, backward-data; operands in bf16 or FP32): the halves
      // of the FP32 output, nothing written past them.
      for (int b = 0; c < 2 && b < 2; b++) {
        const void *a0 = c == 0 ? (b ? (const void *)hx : cx) : (b ? (const void *)hdy : cdy);
        conv2d_mixed_cpu(ctx, role, &s, a0, b, cw, 0, NULL, o2, 0, NULL);
        uint16_t *ho = xmalloc((no + 2) * 2);
        memset(ho, 0xA5, (no + 2) * 2);
        conv2d_mixed_cpu(ctx, role, &s, a0, b, cw, 0, NULL, ho, 1, NULL);
        for (size_t i = 0; i < no; i++)
          if (ho[i] != ganc_bf16_store(o2[i]))
            fail_msg("conv2d_mixed_cpu case %d (bf16 in %d) precision %d: output in bf16 at %zu "
                     "is 0x%04x, want 0x%04x",
                     c, b, (int)precs[pi], i, ho[i], ganc_bf16_store(o2[i]));
        assert_true(ho[no] == 0xA5A5 && ho[no + 1] == 0xA5A5);
        // With an epilogue op (epi): ReLU and leaky ReLU forward, and their backward from an
        // activation output y in FP32 and in halves — the separate op on the FP32 output, then
        // its halves where the output is in bf16.
        float *ya = fnew((int64_t)no), *want = fnew((int64_t)no), *got = fnew((int64_t)no);
        uint16_t *yh = xmalloc(no * 2);
        fill(ya, (int64_t)no, &rg, 1, 0);
        for (size_t i = 0; i < no; i++)
          yh[i] = ganc_bf16_store(ya[i]);
        for (int e = 0; e < 4; e++) {
          const int act = e % 2 ? GANC_ACT_LRELU : GANC_ACT_RELU, bwd = e >= 2;
          const ganc_conv_epi epi = {act,    0.2f, bwd ? (e == 3 ? (const void *)yh : ya) : NULL,
                                     e == 3, NULL, 0};
          if (!bwd && act == GANC_ACT_RELU) relu_forward_cpu(ctx, (int64_t)no, o2, want);
          if (!bwd && act == GANC_ACT_LRELU) lrelu_forward_cpu(ctx, (int64_t)no, 0.2f, o2, want);
          if (bwd && act == GANC_ACT_RELU) relu_backward_cpu(ctx, (int64_t)no, ya, 0, o2, want);
          if (bwd && act == GANC_ACT_LRELU)
            lrelu_backward_cpu(ctx, (int64_t)no, 0.2f, yh, 1, o2, want);
          conv2d_mixed_cpu(ctx, role, &s, a0, b, cw, 0, NULL, got, 0, &epi);
          memset(ho, 0xA5, (no + 2) * 2);
          conv2d_mixed_cpu(ctx, role, &s, a0, b, cw, 0, NULL, ho, 1, &epi);
          int bad = memcmp(got, want, no * 4) != 0 || ho[no] != 0xA5A5 || ho[no + 1] != 0xA5A5;
          for (size_t i = 0; i < no; i++)
            bad |= ho[i] != ganc_bf16_store(want[i]);
          if (bad)
            fail_msg("conv2d_mixed_cpu case %d (bf16 in %d) precision %d: epilogue %d differs from "
                     "the separate op",
                     c, b, (int)precs[pi], e);
        }
        free(ya), free(want), free(got), free(yh);
        free(ho);
      }
    }
  }
  ctx->precision = GANC_PREC_FP32;
  float *bufs[] = {x, g, b, rm, rv, y, mu, rs, dy, dx, dx2, yw, cx, cw, cdy, wx, wdy, o1, o2};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
    free(bufs[i]);
  free(h), free(hx), free(hdy);
}

static void test_conv_shape_make(void **state) {
  (void)state;
  conv_shape s;
  assert_int_equal(conv_shape_make(&s, 64, 32, 32, 64, 128, 4, 4, 2, 1), 0);
  assert_int_equal(s.P, 16);
  assert_int_equal(s.Q, 16);
  assert_int_equal(conv_shape_make(&s, 1, 7, 5, 1, 1, 4, 4, 2, 1), 0);
  assert_int_equal(s.P, 3);
  assert_int_equal(s.Q, 2);
  // A kernel one larger than the padded input: (−1)/2 truncates to 0 in C, yet there is no output.
  assert_int_equal(conv_shape_make(&s, 1, 3, 3, 1, 1, 4, 4, 2, 0), -1);
  assert_int_equal(conv_shape_make(&s, 0, 4, 4, 1, 1, 3, 3, 1, 1), -1);
  assert_int_equal(conv_shape_make(&s, 1, 4, 4, 1, 1, 3, 3, 0, 1), -1);
  assert_int_equal(conv_shape_make(&s, 1, 4, 4, 1, 1, 3, 3, 1, -1), -1);
  assert_int_equal(conv_shape_make(&s, 1, 4, 4, 0, 1, 3, 3, 1, 1), -1);
  assert_int_equal(conv_shape_make(&s, 1 << 20, 1024, 1024, 3, 1, 3, 3, 1, 1), -1); // > int
}

// A batch gives, per sample, what single-sample calls give: the batch is split into chunks (and
// here, with a column buffer over the 8M-float cap, into chunks of 3 + 1), never mixed.
static void check_batch_vs_samples(ganc_ctx *ctx, const conv_case *cc, rng *rg) {
  conv_shape s, s1;
  assert_int_equal(
      conv_shape_make(&s, cc->N, cc->H, cc->W, cc->C, cc->K, cc->R, cc->S, cc->stride, cc->pad), 0);
  assert_int_equal(
      conv_shape_make(&s1, 1, cc->H, cc->W, cc->C, cc->K, cc->R, cc->S, cc->stride, cc->pad), 0);
  const int64_t sx = (int64_t)s.H * s.W * s.C, sy = (int64_t)s.P * s.Q * s.K;
  const int64_t nx = s.N * sx, ny = s.N * sy, nw = (int64_t)s.R * s.S * s.C * s.K;
  float *x = fnew(nx), *w = fnew(nw), *dy = fnew(ny), *y = fnew(ny), *y1 = fnew(ny);
  float *dx = fnew(nx), *dx1 = fnew(nx), *dw = fnew(nw), *dw1 = fnew(nw);
  float *again = fnew(nx > ny ? nx : ny);
  fill(x, nx, rg, 1, 0);
  fill(w, nw, rg, 0.1, 0);
  fill(dy, ny, rg, 1, 0);
  poison(y, ny);
  poison(y1, ny);
  poison(dx, nx);
  poison(dx1, nx);
  fill_value(dw, nw, 0.0f);
  fill_value(dw1, nw, 0.0f);

  conv2d_forward_cpu(ctx, &s, x, w, y);
  conv2d_backward_data_cpu(ctx, &s, dy, w, dx);
  conv2d_backward_weight_cpu(ctx, &s, x, dy, dw);
  for (int n = 0; n < s.N; n++) {
    conv2d_forward_cpu(ctx, &s1, x + n * sx, w, y1 + n * sy);
    conv2d_backward_data_cpu(ctx, &s1, dy + n * sy, w, dx1 + n * sx);
    conv2d_backward_weight_cpu(ctx, &s1, x + n * sx, dy + n * sy, dw1); // accumulates over n
  }
  char what[160];
  snprintf(what, sizeof what, "%s: forward, batch vs samples", cc->name);
  EXPECT_NERR(what, nerr_ff(y, y1, ny), 1e-6);
  snprintf(what, sizeof what, "%s: backward data, batch vs samples", cc->name);
  EXPECT_NERR(what, nerr_ff(dx, dx1, nx), 1e-6);
  snprintf(what, sizeof what, "%s: backward weight, batch vs samples", cc->name);
  EXPECT_NERR(what, nerr_ff(dw, dw1, nw), 1e-5);

  // Run to run, the batch's results are bit-identical.
  poison(again, nx);
  conv2d_forward_cpu(ctx, &s, x, w, again);
  assert_memory_equal(y, again, ny * sizeof(float));
  poison(again, nx);
  conv2d_backward_data_cpu(ctx, &s, dy, w, again);
  assert_memory_equal(dx, again, nx * sizeof(float));
  fill_value(dw1, nw, 0.0f);
  conv2d_backward_weight_cpu(ctx, &s, x, dy, dw1);
  assert_memory_equal(dw, dw1, nw * sizeof(float));

  float *bufs[] = {x, w, dy, y, y1, dx, dx1, dw, dw1, again};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
    free(bufs[i]);
}

static void test_conv_batching(void **state) {
  ganc_ctx *ctx = *state;
  rng rg = {2};
  const conv_case dcgan = {"D 16x16x4->8x8x8, batch 9", 9, 16, 16, 4, 8, 4, 4, 2, 1};
  check_batch_vs_samples(ctx, &dcgan, &rg);
  const conv_case ghead = {"G head adjoint, batch 9", 9, 4, 4, 6, 7, 4, 4, 1, 0};
  check_batch_vs_samples(ctx, &ghead, &rg);
  // One sample's columns: 64·64 rows × 3·3·64 = 2.36M floats, so 3 samples fit in 8M: chunks 3+1.
  const conv_case big = {"3x3 64x64x64->8, batch 4 (chunked)", 4, 64, 64, 64, 8, 3, 3, 1, 1};
  check_batch_vs_samples(ctx, &big, &rg);
  // The column buffer stayed within the cap (plus the scratch's cache-line rounding).
  assert_true(ctx->scratch_floats <= ((size_t)8 << 20) + 16);
}

// ---- batch normalization --------------------------------------------------------------------

// y = gamma·(x − mean)/sqrt(var + eps) + beta, with the biased variance (two-pass in double).
static void ref_bn(int64_t M, int C, const double *x, const double *g, const double *b, double eps,
                   double *y, double *mean, double *var) {
  for (int c = 0; c < C; c++) {
    double s = 0.0, ss = 0.0;
    for (int64_t i = 0; i < M; i++)
      s += x[i * C + c];
    double mu = s / M;
    for (int64_t i = 0; i < M; i++)
      ss += (x[i * C + c] - mu) * (x[i * C + c] - mu);
    double v = ss / M;
    if (mean) mean[c] = mu;
    if (var) var[c] = v;
    for (int64_t i = 0; i < M; i++)
      y[i * C + c] = g[c] * (x[i * C + c] - mu) / sqrt(v + eps) + b[c];
  }
}

typedef struct {
  int64_t M;
  int C;
  double eps, *x, *g, *b, *r, *tmp;
} bn_env;

static double bn_L(void *e) {
  bn_env *v = e;
  ref_bn(v->M, v->C, v->x, v->g, v->b, v->eps, v->tmp, NULL, NULL);
  return dot(v->r, v->tmp, v->M * v->C);
}

typedef struct {
  int64_t M;
  int C;
  double scale, offset; // x = offset + scale·U(−1, 1)
  int fd;               // gradients checked by finite differences
} bn_case;

static void check_bn_case(ganc_ctx *ctx, const bn_case *bc, rng *rg) {
  const int64_t M = bc->M, n = M * bc->C;
  const int C = bc->C;
  const float eps = 1e-5f, momentum = 0.1f;
  float *x = fnew(n), *y = fnew(n), *r = fnew(n), *dx = fnew(n), *g = fnew(C), *b = fnew(C);
  float *mean = fnew(C), *rstd = fnew(C), *rm = fnew(C), *rv = fnew(C), *rm0 = fnew(C);
  float *rv0 = fnew(C), *dg = fnew(C), *db = fnew(C), *dg0 = fnew(C), *db0 = fnew(C);
  fill(x, n, rg, bc->scale, bc->offset);
  fill(g, C, rg, 0.5, 1.0);
  fill(b, C, rg, 0.5, 0.0);
  fill(r, n, rg, 1, 0);
  fill(rm0, C, rg, 1, 0);
  fill(rv0, C, rg, 0.5, 1.0);
  memcpy(rm, rm0, C * sizeof(float));
  memcpy(rv, rv0, C * sizeof(float));
  double *xd = widen(x, n), *gd = widen(g, C), *bd = widen(b, C), *rd = widen(r, n);
  double *yd = dnew(n), *mud = dnew(C), *vard = dnew(C), *want = dnew(n > 2 * C ? n : 2 * C);
  char what[160];

  // Training forward: the output and the saved statistics.
  poison(y, n);
  poison(mean, C);
  poison(rstd, C);
  batchnorm_forward_train_cpu(ctx, M, C, x, GANC_X_FP32, g, b, eps, momentum, GANC_ACT_NONE, 0.0f,
                              y, 0, mean, rstd, rm, rv, NULL, NULL);
  ref_bn(M, C, xd, gd, bd, eps, yd, mud, vard);
  snprintf(what, sizeof what, "BN M=%lld C=%d: train forward", (long long)M, C);
  EXPECT_NERR(what, nerr(y, yd, n), 1e-5);
  EXPECT_NERR("BN mean", nerr(mean, mud, C), 1e-6);
  for (int c = 0; c < C; c++)
    want[c] = 1.0 / sqrt(vard[c] + eps);
  EXPECT_NERR("BN rstd", nerr(rstd, want, C), 1e-6);

  // Running statistics, as PyTorch: unbiased variance, momentum 0.1.
  for (int c = 0; c < C; c++) {
    want[c] = (1.0 - momentum) * rm0[c] + momentum * mud[c];
    want[C + c] = (1.0 - momentum) * rv0[c] + momentum * vard[c] * M / (M - 1.0);
  }
  EXPECT_NERR("BN running mean", nerr(rm, want, C), 1e-6);
  EXPECT_NERR("BN running var", nerr(rv, want + C, C), 1e-6);

  // Eval forward uses the running statistics.
  poison(y, n);
  batchnorm_forward_eval_cpu(ctx, M, C, x, GANC_X_FP32, g, b, rm, rv, eps, GANC_ACT_NONE, 0.0f, y,
                             0);
  for (int64_t i = 0; i < M; i++)
    for (int c = 0; c < C; c++)
      yd[i * C + c] = gd[c] * (xd[i * C + c] - rm[c]) / sqrt((double)rv[c] + eps) + bd[c];
  snprintf(what, sizeof what, "BN M=%lld C=%d: eval forward", (long long)M, C);
  EXPECT_NERR(what, nerr(y, yd, n), 1e-5);

  // NULL running statistics: no update, same output.
  float *y2 = fnew(n);
  poison(y2, n);
  batchnorm_forward_train_cpu(ctx, M, C, x, GANC_X_FP32, g, b, eps, momentum, GANC_ACT_NONE, 0.0f,
                              y2, 0, mean, rstd, NULL, NULL, NULL, NULL);
  ref_bn(M, C, xd, gd, bd, eps, yd, NULL, NULL);
  EXPECT_NERR("BN train forward without running stats", nerr(y2, yd, n), 1e-5);
  // A fused activation (act): the same bits as the activation op on the plain output, in
  // training and in eval, ReLU and leaky ReLU.
  {
    float *y3 = fnew(n), *y4 = fnew(n), *mu3 = fnew(C), *rs3 = fnew(C);
    for (int act = GANC_ACT_RELU; act <= GANC_ACT_LRELU; act++) {
      for (int train = 0; train < 2; train++) {
        poison(y3, n);
        if (train)
          batchnorm_forward_train_cpu(ctx, M, C, x, GANC_X_FP32, g, b, eps, momentum, act, 0.2f, y3,
                                      0, mu3, rs3, NULL, NULL, NULL, NULL);
        else
          batchnorm_forward_eval_cpu(ctx, M, C, x, GANC_X_FP32, g, b, rm, rv, eps, act, 0.2f, y3,
                                     0);
        if (train)
          batchnorm_forward_train_cpu(ctx, M, C, x, GANC_X_FP32, g, b, eps, momentum, GANC_ACT_NONE,
                                      0.0f, y4, 0, mu3, rs3, NULL, NULL, NULL, NULL);
        else
          batchnorm_forward_eval_cpu(ctx, M, C, x, GANC_X_FP32, g, b, rm, rv, eps, GANC_ACT_NONE,
                                     0.0f, y4, 0);
        if (act == GANC_ACT_RELU)
          relu_forward_cpu(ctx, (int64_t)n, y4, y4);
        else
          lrelu_forward_cpu(ctx, (int64_t)n, 0.2f, y4, y4);
        if (memcmp(y3, y4, n * sizeof(float)))
          fail_msg("BN M=%lld C=%d %s with a fused %s differs from the activation op after it",
                   (long long)M, C, train ? "train" : "eval",
                   act == GANC_ACT_RELU ? "ReLU" : "leaky ReLU");
      }
    }
    free(y3), free(y4), free(mu3), free(rs3);
  }
  free(y2);

  // Backward: dx overwrites, dgamma/dbeta accumulate onto what was there.
  fill(dg0, C, rg, 1, 0);
  fill(db0, C, rg, 1, 0);
  memcpy(dg, dg0, C * sizeof(float));
  memcpy(db, db0, C * sizeof(float));
  poison(dx, n);
  batchnorm_backward_cpu(ctx, M, C, x, GANC_X_FP32, r, GANC_X_FP32, g, mean, rstd, dx, 0, dg, db);
  if (bc->fd) {
    bn_env env = {M, C, eps, xd, gd, bd, rd, dnew(n)};
    int64_t idx[FD_MAX];
    double fd[FD_MAX];
    const double h = 1e-4 * bc->scale;
    int k = pick(n, FD_MAX, rg, idx);
    finite_diff(bn_L, &env, xd, idx, k, h, fd);
    snprintf(what, sizeof what, "BN M=%lld C=%d: dx vs finite differences", (long long)M, C);
    EXPECT_NERR(what, nerr_at(dx, idx, k, fd), 1e-4);
    // dgamma, dbeta: all channels; compare the increments.
    float *inc = fnew(C);
    k = pick(C, FD_MAX, rg, idx);
    finite_diff(bn_L, &env, gd, idx, k, 1e-5, fd);
    for (int c = 0; c < C; c++)
      inc[c] = dg[c] - dg0[c];
    EXPECT_NERR("BN dgamma vs finite differences", nerr_at(inc, idx, k, fd), 1e-4);
    finite_diff(bn_L, &env, bd, idx, k, 1e-5, fd);
    for (int c = 0; c < C; c++)
      inc[c] = db[c] - db0[c];
    EXPECT_NERR("BN dbeta vs finite differences", nerr_at(inc, idx, k, fd), 1e-4);
    free(inc);
    free(env.tmp);
  }
  // A second call adds the same increments again and writes the same dx.
  float *dx2 = fnew(n), *dg1 = fnew(C), *db1 = fnew(C);
  memcpy(dg1, dg, C * sizeof(float));
  memcpy(db1, db, C * sizeof(float));
  fill_value(dx2, n, 1e30f);
  batchnorm_backward_cpu(ctx, M, C, x, GANC_X_FP32, r, GANC_X_FP32, g, mean, rstd, dx2, 0, dg, db);
  assert_memory_equal(dx, dx2, n * sizeof(float));
  for (int c = 0; c < C; c++) {
    want[c] = dg0[c] + 2.0 * ((double)dg1[c] - dg0[c]);
    want[C + c] = db0[c] + 2.0 * ((double)db1[c] - db0[c]);
  }
  EXPECT_NERR("BN dgamma accumulates", nerr(dg, want, C), 1e-5);
  EXPECT_NERR("BN dbeta accumulates", nerr(db, want + C, C), 1e-5);

  // The thread count does not change a bit: one thread against the context's.
  ganc_ctx one = *ctx;
  one.threads = 1;
  one.scratch = NULL;
  one.scratch_floats = 0;
  float *y1 = fnew(n), *m1 = fnew(C), *s1 = fnew(C), *dx1 = fnew(n), *y0 = fnew(n);
  batchnorm_forward_train_cpu(ctx, M, C, x, GANC_X_FP32, g, b, eps, momentum, GANC_ACT_NONE, 0.0f,
                              y0, 0, mean, rstd, NULL, NULL, NULL, NULL);
  batchnorm_forward_train_cpu(&one, M, C, x, GANC_X_FP32, g, b, eps, momentum, GANC_ACT_NONE, 0.0f,
                              y1, 0, m1, s1, NULL, NULL, NULL, NULL);
  assert_memory_equal(y0, y1, n * sizeof(float));
  assert_memory_equal(mean, m1, C * sizeof(float));
  assert_memory_equal(rstd, s1, C * sizeof(float));
  fill_value(dg1, C, 0.0f);
  fill_value(db1, C, 0.0f);
  batchnorm_backward_cpu(&one, M, C, x, GANC_X_FP32, r, GANC_X_FP32, g, mean, rstd, dx1, 0, dg1,
                         db1);
  assert_memory_equal(dx, dx1, n * sizeof(float));
  ganc_ctx_free(&one);

  float *bufs[] = {x,  y,  r,   dx,  g,   b,   mean, rstd, rm, rv, rm0, rv0,
                   dg, db, dg0, db0, dx2, dg1, db1,  y1,   m1, s1, dx1, y0};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
    free(bufs[i]);
  double *dbufs[] = {xd, gd, bd, rd, yd, mud, vard, want};
  for (size_t i = 0; i < sizeof dbufs / sizeof *dbufs; i++)
    free(dbufs[i]);
}

// batchnorm_reapply (train.recompute_batchnorm): from the statistics a training forward kept, the
// forward's y again bit for bit — every x mode (FP32, halves, rounded as read), activation and
// y storage, over several row blocks and a mean far from 0; keeping them changes nothing the
// forward writes, and the kept mean and rstd are those it returns before their rounding.
static void test_batchnorm_reapply(void **state) {
  ganc_ctx *ctx = *state;
  rng rg = {17};
  const int64_t M = 700;
  const int C = 5, n = (int)M * C;
  float *x = fnew(n), *g = fnew(C), *b = fnew(C), *mu = fnew(C), *rs = fnew(C), *mu2 = fnew(C),
        *rs2 = fnew(C), *y = fnew(n), *y2 = fnew(n), *rm = fnew(C), *rv = fnew(C);
  double *keep = dnew(2 * C);
  uint16_t *xh = xmalloc((size_t)n * 2);
  fill(x, n, &rg, 0.7, 3.0);
  fill(g, C, &rg, 1, 0);
  fill(b, C, &rg, 0.5, 0);
  for (int i = 0; i < n; i++)
    xh[i] = ganc_bf16_store(x[i]);
  for (int mode = GANC_X_FP32; mode <= GANC_X_ROUND; mode++)
    for (int act = GANC_ACT_NONE; act <= GANC_ACT_LRELU; act++)
      for (int yb = 0; yb < 2; yb++) {
        const void *xin = mode == GANC_X_BF16 ? (const void *)xh : x;
        fill_value(rm, C, 0.5f), fill_value(rv, C, 2.0f);
        for (int k = 0; k < 2 * C; k++)
          keep[k] = NAN;
        poison(y, n), poison(y2, n);
        batchnorm_forward_train_cpu(ctx, M, C, xin, mode, g, b, 1e-5f, 0.1f, act, 0.2f, y, yb, mu,
                                    rs, rm, rv, keep, NULL);
        batchnorm_forward_train_cpu(ctx, M, C, xin, mode, g, b, 1e-5f, 0.1f, act, 0.2f, y2, yb, mu2,
                                    rs2, NULL, NULL, NULL, NULL);
        const size_t bytes = (size_t)n * (yb ? 2 : 4);
        assert_memory_equal(y, y2, bytes);
        assert_memory_equal(mu, mu2, C * 4);
        assert_memory_equal(rs, rs2, C * 4);
        for (int c = 0; c < C; c++) {
          assert_true((float)keep[c] == mu[c] && (float)keep[C + c] == rs[c]);
          assert_true(keep[C + c] > 0);
        }
        poison(y2, n);
        batchnorm_reapply_cpu(ctx, M, C, xin, mode, g, b, keep, act, 0.2f, y2, yb);
        assert_memory_equal(y, y2, bytes);
      }
  free(x), free(g), free(b), free(mu), free(rs), free(mu2), free(rs2), free(y), free(y2);
  free(rm), free(rv), free(keep), free(xh);
}

// Batch-norm statistics from slot sums (ops.h: ganc_bn_part, train.fuse_batchnorm_stats):
// batchnorm_slot_stats_cpu's slots are each 64-row block's Σ x and Σ x² in double (every x mode);
// the training forward from them gives the two-pass forward's statistics, running statistics and
// y to within the rounding of double (far below float resolution, also for a mean 10⁴ times the
// spread), and keeps its mean and rstd as the two-pass one does; conv2d_mixed_cpu with stats
// writes its output unchanged and the slots of that output as the batch norm reads it (FP32,
// rounded to bf16, or its halves).
static void test_batchnorm_slots(void **state) {
  ganc_ctx *ctx = *state;
  rng rg = {23};
  const struct {
    int64_t M;
    int C;
    double spread, mean;
  } cases[] = {{700, 5, 0.7, 3.0}, {3, 5, 1.0, 0.5}, {5000, 4, 0.01, 100.0}, {128, 9, 1.0, 0.0}};
  for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
    const int64_t M = cases[ci].M;
    const int C = cases[ci].C, n = (int)M * C;
    const int64_t cap = ganc_bn_part_slots(M), nslot = (M + 63) / 64;
    float *x = fnew(n), *g = fnew(C), *b = fnew(C), *y = fnew(n), *y2 = fnew(n), *mu = fnew(C),
          *rs = fnew(C), *mu2 = fnew(C), *rs2 = fnew(C), *rm = fnew(C), *rv = fnew(C),
          *rm2 = fnew(C), *rv2 = fnew(C);
    double *keep = dnew(2 * C);
    uint16_t *xh = xmalloc((size_t)n * 2);
    ganc_bn_part bp = {dnew(cap * 2 * C), cap, 0};
    fill(x, n, &rg, cases[ci].spread, cases[ci].mean);
    fill(g, C, &rg, 1, 0);
    fill(b, C, &rg, 0.5, 0);
    for (int i = 0; i < n; i++)
      xh[i] = ganc_bf16_store(x[i]);
    for (int mode = GANC_X_FP32; mode <= GANC_X_ROUND; mode++) {
      const void *xin = mode == GANC_X_BF16 ? (const void *)xh : x;
      for (int64_t k = 0; k < cap * 2 * C; k++)
        bp.part[k] = NAN;
      batchnorm_slot_stats_cpu(ctx, M, C, xin, mode, &bp);
      assert_int_equal(bp.nslot, nslot);
      for (int64_t sl = 0; sl < nslot; sl++)
        for (int c = 0; c < C; c++) {
          double sx = 0, sq = 0;
          for (int64_t r = sl * 64; r < M && r < (sl + 1) * 64; r++) {
            const double v = ganc_load_x(xin, mode, r * C + c);
            sx += v, sq += v * v;
          }
          assert_true(bp.part[2 * sl * C + c] == sx && bp.part[(2 * sl + 1) * C + c] == sq);
        }
      fill_value(rm, C, 0.5f), fill_value(rv, C, 2.0f), fill_value(rm2, C, 0.5f);
      fill_value(rv2, C, 2.0f);
      for (int k = 0; k < 2 * C; k++)
        keep[k] = NAN;
      poison(y, n), poison(y2, n);
      batchnorm_forward_train_cpu(ctx, M, C, xin, mode, g, b, 1e-5f, 0.1f, GANC_ACT_NONE, 0.0f, y,
                                  0, mu, rs, rm, rv, NULL, NULL);
      batchnorm_forward_train_cpu(ctx, M, C, xin, mode, g, b, 1e-5f, 0.1f, GANC_ACT_NONE, 0.0f, y2,
                                  0, mu2, rs2, rm2, rv2, keep, &bp);
      for (int c = 0; c < C; c++) {
        assert_float_equal(mu2[c], mu[c], 1e-6 * (fabs(mu[c]) + 1e-3));
        assert_float_equal(rs2[c], rs[c], 1e-6 * rs[c]);
        assert_float_equal(rm2[c], rm[c], 1e-6 * (fabs(rm[c]) + 1e-3));
        assert_float_equal(rv2[c], rv[c], 1e-6 * rv[c]);
        assert_true((float)keep[c] == mu2[c] && (float)keep[C + c] == rs2[c]);
      }
      for (int i = 0; i < n; i++)
        assert_float_equal(y2[i], y[i], 1e-5 * (fabs(y[i]) + 1));
    }
    free(x), free(g), free(b), free(y), free(y2), free(mu), free(rs), free(mu2), free(rs2);
    free(rm), free(rv), free(rm2), free(rv2), free(keep), free(xh), free(bp.part);
  }

  // conv2d_mixed_cpu with stats: forward and backward-data, into FP32 (as read, and rounded) and
  // into halves.
  conv_shape s;
  assert_int_equal(conv_shape_make(&s, 3, 9, 7, 5, 6, 3, 3, 2, 1), 0);
  const int64_t nx = (int64_t)s.N * s.H * s.W * s.C, ny = (int64_t)s.N * s.P * s.Q * s.K,
                nw = (int64_t)s.R * s.S * s.C * s.K;
  float *x = fnew(nx), *w = fnew(nw), *dy = fnew(ny), *ref = fnew(nx > ny ? nx : ny),
        *got = fnew(nx > ny ? nx : ny);
  uint16_t *gh = xmalloc((size_t)(nx > ny ? nx : ny) * 2);
  fill(x, nx, &rg, 1, 0.3), fill(w, nw, &rg, 0.2, 0), fill(dy, ny, &rg, 1, -0.2);
  for (int role = GANC_CONV_FWD; role <= GANC_CONV_BWD_DATA; role++) {
    const int64_t rows =
        role == GANC_CONV_FWD ? (int64_t)s.N * s.P * s.Q : (int64_t)s.N * s.H * s.W;
    const int C = role == GANC_CONV_FWD ? s.K : s.C;
    const int64_t no = rows * C, cap = ganc_bn_part_slots(rows);
    ganc_bn_part bp = {dnew(cap * 2 * C), cap, 0}, want = {dnew(cap * 2 * C), cap, 0};
    const void *in0 = role == GANC_CONV_FWD ? (const void *)x : dy;
    conv2d_mixed_cpu(ctx, role, &s, in0, 0, w, 0, NULL, ref, 0, NULL);
    for (int k = 0; k < 3; k++) {
      const ganc_conv_epi epi = {GANC_ACT_NONE, 0.0f, NULL, 0, &bp, k == 1};
      for (int64_t i = 0; i < cap * 2 * C; i++)
        bp.part[i] = NAN;
      poison(got, no);
      conv2d_mixed_cpu(ctx, role, &s, in0, 0, w, 0, NULL, k == 2 ? (void *)gh : got, k == 2, &epi);
      if (k == 2)
        for (int64_t i = 0; i < no; i++)
          assert_int_equal(gh[i], ganc_bf16_store(ref[i]));
      else
        assert_memory_equal(got, ref, (size_t)no * 4);
      batchnorm_slot_stats_cpu(ctx, rows, C, k == 2 ? (const void *)gh : ref,
                               k == 2 ? GANC_X_BF16
                               : k    ? GANC_X_ROUND
                                      : GANC_X_FP32,
                               &want);
      assert_int_equal(bp.nslot, want.nslot);
      assert_memory_equal(bp.part, want.part, (size_t)want.nslot * 2 * C * sizeof(double));
    }
    free(bp.part), free(want.part);
  }
  free(x), free(w), free(dy), free(ref), free(got), free(gh);
}

static void test_batchnorm(void **state) {
  rng rg = {3};
  const bn_case cases[] = {
      {30, 7, 1.0, 0.0, 1},      // a 2x3x5 batch, 7 channels
      {700, 3, 0.7, 2.0, 1},     // several row blocks, a mean away from 0
      {2, 5, 1.0, 0.5, 0},       // the fewest rows training allows (x̂ = ±1: dx is ~0)
      {3, 5, 1.0, 0.5, 1},       // a 3x1x1 batch
      {64 * 16, 6, 1.0, 0.0, 1}, // the G head's output at batch 64: 4x4x6
      // A mean 10⁴ times the spread: a one-pass float variance would lose every digit.
      {5000, 4, 0.01, 100.0, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    check_bn_case(*state, &cases[i], &rg);
}

// ---- activations ----------------------------------------------------------------------------

typedef enum { ACT_RELU, ACT_LRELU, ACT_TANH } act_kind;

static double ref_act(act_kind a, double slope, double x) {
  switch (a) {
  case ACT_RELU:
    return x > 0 ? x : 0;
  case ACT_LRELU:
    return x > 0 ? x : slope * x;
  default:
    return tanh(x);
  }
}

typedef struct {
  act_kind a;
  double slope;
  int64_t n;
  double *x, *r;
} act_env;

static double act_L(void *e) {
  act_env *v = e;
  double s = 0.0;
  for (int64_t i = 0; i < v->n; i++)
    s += v->r[i] * ref_act(v->a, v->slope, v->x[i]);
  return s;
}

static void act_forward(ganc_ctx *ctx, act_kind a, float slope, int64_t n, const float *x,
                        float *y) {
  if (a == ACT_RELU) relu_forward_cpu(ctx, n, x, y);
  if (a == ACT_LRELU) lrelu_forward_cpu(ctx, n, slope, x, y);
  if (a == ACT_TANH) tanh_forward_cpu(ctx, n, x, y);
}

static void act_backward(ganc_ctx *ctx, act_kind a, float slope, int64_t n, const float *y,
                         const float *dy, float *dx) {
  if (a == ACT_RELU) relu_backward_cpu(ctx, n, y, 0, dy, dx);
  if (a == ACT_LRELU) lrelu_backward_cpu(ctx, n, slope, y, 0, dy, dx);
  if (a == ACT_TANH) tanh_backward_cpu(ctx, n, y, dy, dx);
}

static void test_activations(void **state) {
  ganc_ctx *ctx = *state;
  rng rg = {4};
  const char *names[] = {"relu", "lrelu", "tanh"};
  const float slope = 0.2f;
  // 40000 elements: over the parallel threshold; the kinks at 0 are kept out of the FD probes.
  const int64_t n = 40000;
  float *x = fnew(n), *y = fnew(n), *r = fnew(n), *dx = fnew(n), *buf = fnew(n);
  fill(x, n, &rg, 3, 0);
  for (int64_t i = 0; i < n; i++)
    if (fabsf(x[i]) < 1e-2f) x[i] = x[i] < 0 ? -0.5f : 0.5f;
  fill(r, n, &rg, 1, 0);
  double *xd = widen(x, n), *rd = widen(r, n), *yd = dnew(n);
  int64_t idx[FD_MAX];
  double fd[FD_MAX];
  char what[80];
  for (int a = ACT_RELU; a <= ACT_TANH; a++) {
    poison(y, n);
    act_forward(ctx, a, slope, n, x, y);
    for (int64_t i = 0; i < n; i++)
      yd[i] = ref_act(a, slope, xd[i]);
    snprintf(what, sizeof what, "%s forward", names[a]);
    EXPECT_NERR(what, nerr(y, yd, n), 1e-6);
    // In place (y aliases x) gives the same bits.
    memcpy(buf, x, n * sizeof(float));
    act_forward(ctx, a, slope, n, buf, buf);
    assert_memory_equal(buf, y, n * sizeof(float));

    poison(dx, n);
    act_backward(ctx, a, slope, n, y, r, dx);
    act_env env = {a, slope, n, xd, rd};
    int k = pick(n, FD_MAX, &rg, idx);
    finite_diff(act_L, &env, xd, idx, k, 1e-6, fd);
    snprintf(what, sizeof what, "%s backward vs finite differences", names[a]);
    EXPECT_NERR(what, nerr_at(dx, idx, k, fd), 1e-5);
    // Whole-array check against the analytic derivative, and in place (dx aliases dy).
    for (int64_t i = 0; i < n; i++) {
      double d = a == ACT_TANH    ? 1.0 - tanh(xd[i]) * tanh(xd[i])
                 : xd[i] > 0      ? 1.0
                 : a == ACT_LRELU ? slope
                                  : 0.0;
      yd[i] = rd[i] * d;
    }
    snprintf(what, sizeof what, "%s backward", names[a]);
    EXPECT_NERR(what, nerr(dx, yd, n), 1e-6);
    memcpy(buf, r, n * sizeof(float));
    act_backward(ctx, a, slope, n, y, buf, buf);
    assert_memory_equal(buf, dx, n * sizeof(float));
  }
  // relu lets a NaN through rather than hiding it.
  float nan_in = NAN, out = 0.0f;
  relu_forward_cpu(ctx, 1, &nan_in, &out);
  assert_true(isnan(out));
  free(x);
  free(y);
  free(r);
  free(dx);
  free(buf);
  free(xd);
  free(rd);
  free(yd);
}

// ---- losses -----------------------------------------------------------------------------------

static double ref_softplus(double a) { return fmax(a, 0.0) + log1p(exp(-fabs(a))); }

typedef struct {
  int n, hinge, generator;
  double t, *l;
} loss_env;

static double loss_L(void *e) {
  loss_env *v = e;
  double s = 0.0;
  for (int i = 0; i < v->n; i++) {
    if (!v->hinge)
      s += ref_softplus(-v->t * v->l[i]);
    else if (v->generator)
      s -= v->l[i];
    else
      s += fmax(0.0, 1.0 - v->t * v->l[i]);
  }
  return s / v->n;
}

// The loss value and dlogit against the double reference; gradients also by finite differences.
static void check_loss(ganc_ctx *ctx, int hinge, int generator, float target, int n, const float *l,
                       int fd_ok) {
  float *dl = fnew(n), loss = NAN;
  poison(dl, n);
  if (hinge)
    loss_hinge_cpu(ctx, n, l, target, generator, dl, &loss);
  else
    loss_logistic_cpu(ctx, n, l, target, dl, &loss);
  double *ld = widen(l, n), *want = dnew(n);
  loss_env env = {n, hinge, generator, target, ld};
  char what[120];
  snprintf(what, sizeof what, "%s target %+g%s", hinge ? "hinge" : "logistic", (double)target,
           generator ? " (G)" : "");
  double lw = loss_L(&env);
  assert_true(isfinite(loss));
  if (!(fabs(loss - lw) <= 1e-6 * fabs(lw) + 1e-12))
    fail_msg("%s: loss %.9g, want %.9g", what, (double)loss, lw);
  for (int i = 0; i < n; i++) {
    assert_true(isfinite(dl[i]));
    double a = -target * ld[i];
    if (!hinge)
      want[i] = -target * (a >= 0 ? 1.0 / (1.0 + exp(-a)) : exp(a) / (1.0 + exp(a))) / n;
    else if (generator)
      want[i] = -1.0 / n;
    else
      want[i] = 1.0 + a > 0 ? -target / n : 0.0;
  }
  EXPECT_NERR(what, nerr(dl, want, n), 1e-6);
  if (fd_ok) {
    int64_t idx[FD_MAX];
    double fd[FD_MAX];
    rng rg = {5};
    int k = pick(n, FD_MAX, &rg, idx);
    finite_diff(loss_L, &env, ld, idx, k, 1e-6, fd);
    EXPECT_NERR(what, nerr_at(dl, idx, k, fd), 1e-5);
  }
  free(dl);
  free(ld);
  free(want);
}

static void test_losses(void **state) {
  ganc_ctx *ctx = *state;
  rng rg = {6};
  // Moderate logits, away from the hinge's kinks at ±1, for finite differences.
  enum { NM = 37 };
  float mod[NM];
  fill(mod, NM, &rg, 5, 0);
  for (int i = 0; i < NM; i++)
    if (fabsf(fabsf(mod[i]) - 1.0f) < 1e-2f) mod[i] *= 1.5f;
  mod[0] = 80.0f;
  mod[1] = -80.0f;
  // Extremes: no overflow, no NaN anywhere.
  const float ext[] = {0.0f, 1e4f, -1e4f, 80.0f, -80.0f, FLT_MAX, -FLT_MAX, 1e-3f, 30.0f, -30.0f};
  const int ne = sizeof ext / sizeof *ext;
  for (int t = 0; t < 2; t++) {
    float target = t ? -1.0f : 1.0f;
    check_loss(ctx, 0, 0, target, NM, mod, 1);
    check_loss(ctx, 0, 0, target, ne, ext, 0);
    check_loss(ctx, 1, 0, target, NM, mod, 1);
    check_loss(ctx, 1, 0, target, ne, ext, 0);
  }
  check_loss(ctx, 1, 1, 1.0f, NM, mod, 1);
  check_loss(ctx, 1, 1, -1.0f, ne, ext, 0); // G ignores the target

  // Known values: softplus(0) = log 2; a confident right answer costs ~0 with ~0 gradient.
  float l = 0.0f, dl = NAN, loss = NAN;
  loss_logistic_cpu(ctx, 1, &l, 1.0f, &dl, &loss);
  assert_float_equal(loss, (float)log(2.0), 1e-7);
  assert_float_equal(dl, -0.5f, 1e-7);
  l = 1e4f;
  loss_logistic_cpu(ctx, 1, &l, 1.0f, &dl, &loss);
  assert_true(loss == 0.0f && dl == 0.0f);
  loss_logistic_cpu(ctx, 1, &l, -1.0f, &dl, &loss);
  assert_float_equal(loss, 1e4f, 1e-3);
  assert_float_equal(dl, 1.0f, 1e-7);
  // The hinge at its kink: no loss, no gradient (relu'(0) = 0, as PyTorch).
  l = 1.0f;
  loss_hinge_cpu(ctx, 1, &l, 1.0f, 0, &dl, &loss);
  assert_true(loss == 0.0f && dl == 0.0f);
  l = 0.25f;
  loss_hinge_cpu(ctx, 1, &l, -1.0f, 0, &dl, &loss);
  assert_float_equal(loss, 1.25f, 1e-7);
  assert_float_equal(dl, 1.0f, 0);
}

// ---- LeCam ------------------------------------------------------------------------------------
// The regulariser against a double reference of its value (finite differences of w · mean
// relu(±(l − a))²), its averages against their definition, and the rule that it accumulates.

typedef struct {
  int n, fake;
  double w, a, *l;
} lecam_env;

static double lecam_R(void *e) {
  lecam_env *v = e;
  double s = 0.0;
  for (int i = 0; i < v->n; i++) {
    const double r = v->fake ? v->a - v->l[i] : v->l[i] - v->a;
    s += r > 0.0 ? r * r : 0.0;
  }
  return v->w * s / v->n;
}

static double mean_of(const float *l, int n) {
  double s = 0.0;
  for (int i = 0; i < n; i++)
    s += l[i];
  return s / n;
}

static void test_lecam(void **state) {
  ganc_ctx *ctx = *state;
  rng rg = {9};
  const float w = 0.3f, d = 0.9f;
  const int sizes[] = {1, 37, 600}; // one logit; fewer than the 256 lanes; several per lane
  for (int si = 0; si < 3; si++) {
    const int n = sizes[si];
    float *lr = fnew(n), *lf = fnew(n), *dl = fnew(n), *pre = fnew(n), *acc = fnew(n);
    double st[4] = {0.0, 0.0, 1.0, 0.0};
    // Step 1: no average yet, so nothing is added; the reals' mean is kept for the fakes' call,
    // which then starts both averages.
    fill(lr, n, &rg, 1.5, 0.5);
    fill(lf, n, &rg, 1.5, -0.5);
    fill(pre, n, &rg, 1e-2, 0);
    memcpy(dl, pre, sizeof(float) * n);
    loss_lecam_cpu(ctx, n, lr, 0, w, d, st, dl);
    assert_true(fabs(st[3] - mean_of(lr, n)) <= 1e-12);
    loss_lecam_cpu(ctx, n, lf, 1, w, d, st, dl);
    assert_memory_equal(dl, pre, sizeof(float) * n);
    double mr = mean_of(lr, n), mf = mean_of(lf, n);
    assert_true(fabs(st[0] - (1 - (double)d) * mr) <= 1e-12);
    assert_true(fabs(st[1] - (1 - (double)d) * mf) <= 1e-12);
    assert_true(st[2] == (double)d);
    // Step 2: the reals pulled towards α_F (= the fakes' mean so far, debiased), the fakes
    // towards α_R; gradients against the reference and finite differences; and accumulated.
    fill(lr, n, &rg, 1.5, 0.5);
    fill(lf, n, &rg, 1.5, -0.5);
    for (int fake = 0; fake < 2; fake++) {
      const float *l = fake ? lf : lr;
      const double a = fake ? st[0] / (1.0 - st[2]) : st[1] / (1.0 - st[2]);
      assert_true(fabs(a - (fake ? mr : mf)) <= 1e-12);
      double kept[4];
      memcpy(kept, st, sizeof kept);
      fill_value(dl, n, 0.0f);
      loss_lecam_cpu(ctx, n, l, fake, w, d, st, dl);
      double *ld = widen(l, n), *want = dnew(n), fd[FD_MAX];
      for (int i = 0; i < n; i++) {
        const double r = fake ? a - ld[i] : ld[i] - a;
        want[i] = r > 0.0 ? (fake ? -2.0 : 2.0) * w * r / n : 0.0;
      }
      const char *what = fake ? "lecam fakes" : "lecam reals";
      EXPECT_NERR(what, nerr(dl, want, n), 1e-6);
      lecam_env env = {n, fake, w, a, ld};
      int64_t idx[FD_MAX];
      const int k = pick(n, FD_MAX, &rg, idx);
      finite_diff(lecam_R, &env, ld, idx, k, 1e-6, fd);
      EXPECT_NERR(what, nerr_at(dl, idx, k, fd), 1e-5);
      // The same call onto a gradient already there adds to it, float by float.
      memcpy(st, kept, sizeof kept);
      memcpy(acc, pre, sizeof(float) * n);
      loss_lecam_cpu(ctx, n, l, fake, w, d, st, acc);
      for (int i = 0; i < n; i++)
        if (acc[i] != pre[i] + dl[i]) fail_msg("%s: logit %d not accumulated", what, i);
      free(ld);
      free(want);
    }
    assert_true(fabs(st[0] - (d * (1 - (double)d) * mr + (1 - (double)d) * mean_of(lr, n))) <=
                1e-12);
    assert_true(fabs(st[1] - (d * (1 - (double)d) * mf + (1 - (double)d) * mean_of(lf, n))) <=
                1e-12);
    assert_true(st[2] == (double)d * (double)d);
    free(lr), free(lf), free(dl), free(pre), free(acc);
  }
}

// ---- Adam and EMA ---------------------------------------------------------------------------

static void test_adam_ema(void **state) {
  ganc_ctx *ctx = *state;
  rng rg = {7};
  const int64_t n = 40000; // over the parallel threshold
  const float lr = 1e-2f, b1 = 0.5f, b2 = 0.999f, eps = 1e-8f;
  float *p = fnew(n), *g = fnew(n), *m = fnew(n), *v = fnew(n), *p0 = fnew(n), *dp = fnew(n);
  fill(p, n, &rg, 1, 0);
  memcpy(p0, p, n * sizeof(float));
  fill_value(m, n, 0.0f);
  fill_value(v, n, 0.0f);
  double *pd = widen(p, n), *md = dnew(n), *vd = dnew(n), *dpd = dnew(n);
  for (int64_t i = 0; i < n; i++)
    md[i] = vd[i] = 0.0;
  for (int64_t t = 1; t <= 3; t++) {
    fill(g, n, &rg, 1, 0);
    for (int64_t i = 0; i < n; i += 97)
      g[i] = i % 2 ? 0.0f : 1e-9f; // no gradient, and one below eps
    float k[GANC_ADAM_K];
    ganc_adam_consts(lr, b1, b2, eps, t, 0.0f, k);
    adam_update_cpu(ctx, (size_t)n, p, g, m, v, NULL, NULL, k);
    // PyTorch's formulas in double.
    double bc1 = 1.0 - pow(b1, (double)t), bc2 = 1.0 - pow(b2, (double)t);
    for (int64_t i = 0; i < n; i++) {
      md[i] = b1 * md[i] + (1.0 - b1) * g[i];
      vd[i] = b2 * vd[i] + (1.0 - b2) * (double)g[i] * g[i];
      pd[i] -= lr / bc1 * md[i] / (sqrt(vd[i]) / sqrt(bc2) + eps);
    }
    EXPECT_NERR("Adam m", nerr(m, md, n), 1e-6);
    EXPECT_NERR("Adam v", nerr(v, vd, n), 1e-6);
    // The step, not p itself: p's own rounding is 1e-7 against steps of ~lr.
    for (int64_t i = 0; i < n; i++) {
      dp[i] = p[i] - p0[i];
      dpd[i] = pd[i] - p0[i];
    }
    EXPECT_NERR("Adam p", nerr(dp, dpd, n), 1e-4);
  }
  // At t = 1 the bias corrections make the first step lr·sign(g) (to eps).
  float p1 = 0.0f, g1 = -3.0f, m1 = 0.0f, v1 = 0.0f;
  float k1[GANC_ADAM_K];
  ganc_adam_consts(lr, b1, b2, eps, 1, 0.5f, k1);
  float e1 = 1.0f;         // and the fused EMA: 0.5 · 1 + 0.5 · p1
  uint16_t h1[2] = {0, 7}; // and the updated weight's bf16 half, nothing past it
  adam_update_cpu(ctx, 1, &p1, &g1, &m1, &v1, &e1, h1, k1);
  assert_float_equal(p1, lr, 1e-8);
  assert_true(e1 == 0.5f + 0.5f * p1);
  assert_true(h1[0] == ganc_bf16_store(p1) && h1[1] == 7);

  // EMA: the values, and (at a beta where the step is visible above ema's own rounding) the step.
  float *ema = fnew(n), *e0 = fnew(n), *de = fnew(n);
  double *ed = dnew(n), *ded = dnew(n);
  const float betas[] = {0.999f, 0.9f};
  for (int b = 0; b < 2; b++) {
    fill(ema, n, &rg, 1, 0);
    memcpy(e0, ema, n * sizeof(float));
    ema_update_cpu(ctx, (size_t)n, ema, p, betas[b]);
    for (int64_t i = 0; i < n; i++) {
      ed[i] = betas[b] * (double)e0[i] + (1.0 - betas[b]) * p[i];
      ded[i] = ed[i] - e0[i];
      de[i] = ema[i] - e0[i];
    }
    EXPECT_NERR("EMA", nerr(ema, ed, n), 1e-6);
    if (b == 1) EXPECT_NERR("EMA step", nerr(de, ded, n), 1e-5);
  }

  float *bufs[] = {p, g, m, v, p0, dp, ema, e0, de};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
    free(bufs[i]);
  double *dbufs[] = {pd, md, vd, dpd, ed, ded};
  for (size_t i = 0; i < sizeof dbufs / sizeof *dbufs; i++)
    free(dbufs[i]);
}

// ---- pixels -----------------------------------------------------------------------------------

static void test_pixels(void **state) {
  ganc_ctx *ctx = *state;
  // Exact bytes: the ends, the middle (127.5 rounds half away from zero), NaN, clamping.
  const float in[] = {-1.0f,
                      1.0f,
                      0.0f,
                      NAN,
                      2.0f,
                      -2.0f,
                      INFINITY,
                      -INFINITY,
                      0.5f,
                      -0.5f,
                      -0.999f,
                      1e-30f,
                      1.0f / 127.5f - 1.0f};
  const uint8_t want[] = {0, 255, 128, 0, 255, 0, 255, 0, 191, 64, 0, 128, 1};
  const int n = sizeof in / sizeof *in;
  uint8_t out[sizeof in / sizeof *in];
  memset(out, 0xAA, sizeof out);
  pixels_to_uint8_cpu(ctx, n, in, out);
  assert_memory_equal(out, want, sizeof want);

  // Every byte survives byte → float → byte; and the floats are v/127.5 − 1.
  uint8_t all[256], back[256];
  float f[256];
  for (int v = 0; v < 256; v++)
    all[v] = (uint8_t)v;
  poison(f, 256);
  pixels_to_float_cpu(ctx, 1, 1, 256, 1, all, NULL, f);
  assert_true(f[0] == -1.0f && f[255] == 1.0f);
  for (int v = 0; v < 256; v++)
    assert_true(fabs(f[v] - (v / 127.5 - 1.0)) <= 6e-8);
  pixels_to_uint8_cpu(ctx, 256, f, back);
  assert_memory_equal(back, all, 256);

  // Flip mirrors an image's rows left-right, channels kept in order; others are untouched. Big
  // enough (4·64·64·3) for the parallel path.
  const int N = 4, H = 64, W = 64, C = 3;
  const int64_t np = (int64_t)N * H * W * C;
  uint8_t *src = xmalloc(np), flip[] = {0, 1, 0, 1};
  float *dst = fnew(np);
  rng rg = {8};
  for (int64_t i = 0; i < np; i++)
    src[i] = (uint8_t)(rng_next(&rg) & 255);
  poison(dst, np);
  pixels_to_float_cpu(ctx, N, H, W, C, src, flip, dst);
  for (int i = 0; i < N; i++)
    for (int h = 0; h < H; h++)
      for (int w = 0; w < W; w++)
        for (int c = 0; c < C; c++) {
          int ws = flip[i] ? W - 1 - w : w;
          float got = dst[(((int64_t)i * H + h) * W + w) * C + c];
          uint8_t s = src[(((int64_t)i * H + h) * W + ws) * C + c];
          if (got != f[s]) fail_msg("pixel (%d,%d,%d,%d): %g, want %g", i, h, w, c, got, f[s]);
        }
  free(src);
  free(dst);
}

// A fresh copy of a [n].
static float *fcopy(const float *a, int64_t n) {
  float *b = fnew(n);
  memcpy(b, a, (size_t)n * sizeof(float));
  return b;
}

// ---- death checks -----------------------------------------------------------------------------

// Runs fn(arg) in a child process with stderr captured: returns its exit status (-1 when it did
// not exit) and the start of what it wrote to stderr in msg. (The child dies before any OpenMP
// region, so forking under a live thread team is safe here.)
static int exit_status_of(void (*fn)(void *), void *arg, char *msg, size_t len) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], 2);
    fn(arg);
    _exit(0);
  }
  close(fds[1]);
  size_t got = 0;
  ssize_t k;
  while (got + 1 < len && (k = read(fds[0], msg + got, len - 1 - got)) > 0)
    got += (size_t)k;
  msg[got] = '\0';
  close(fds[0]);
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// ---- resampling: nearest 2x upsample, 2x2 average pool ---------------------------------------

// y [N,2H,2W,C] = x [N,H,W,C] at each window position, from the definition.
static void ref_upsample(int N, int H, int W, int C, const double *x, double *y) {
  for (int n = 0; n < N; n++)
    for (int i = 0; i < 2 * H; i++)
      for (int j = 0; j < 2 * W; j++)
        for (int c = 0; c < C; c++)
          y[(((int64_t)n * 2 * H + i) * 2 * W + j) * C + c] =
              x[(((int64_t)n * H + i / 2) * W + j / 2) * C + c];
}

// y [N,H/2,W/2,C] = the mean of each 2x2 window of x [N,H,W,C].
static void ref_avgpool(int N, int H, int W, int C, const double *x, double *y) {
  for (int n = 0; n < N; n++)
    for (int i = 0; i < H / 2; i++)
      for (int j = 0; j < W / 2; j++)
        for (int c = 0; c < C; c++) {
          double s = 0.0;
          for (int a = 0; a < 2; a++)
            for (int b = 0; b < 2; b++)
              s += x[(((int64_t)n * H + 2 * i + a) * W + 2 * j + b) * C + c];
          y[(((int64_t)n * (H / 2) + i) * (W / 2) + j) * C + c] = s / 4.0;
        }
}

// L = Σ r ⊙ op(x) for op = upsample (pool = 0) or average pool (pool = 1).
typedef struct {
  int N, H, W, C, pool;
  double *x, *r, *tmp;
  int64_t ny;
} rs_env;

static double rs_L(void *e) {
  rs_env *v = e;
  if (v->pool)
    ref_avgpool(v->N, v->H, v->W, v->C, v->x, v->tmp);
  else
    ref_upsample(v->N, v->H, v->W, v->C, v->x, v->tmp);
  return dot(v->r, v->tmp, v->ny);
}

static void check_window_case(ganc_ctx *ctx, int pool, int N, int H, int W, int C, rng *rg) {
  const int64_t nx = (int64_t)N * H * W * C, ny = pool ? nx / 4 : 4 * nx;
  float *x = fnew(nx), *y = fnew(ny), *r = fnew(ny), *dx = fnew(nx), *dx2 = fnew(nx);
  fill(x, nx, rg, 1, 0);
  fill(r, ny, rg, 1, 0);
  double *xd = widen(x, nx), *rd = widen(r, ny), *yd = dnew(ny), *want = dnew(nx);
  rs_env env = {N, H, W, C, pool, xd, rd, dnew(ny), ny};
  char what[160];
  const char *op = pool ? "avgpool2x" : "upsample2x";

  // Forward against the definition: upsampling copies (exact); pooling sums 4 floats in float.
  poison(y, ny);
  if (pool)
    avgpool2x_forward_cpu(ctx, N, H, W, C, x, y);
  else
    upsample2x_forward_cpu(ctx, N, H, W, C, x, y);
  if (pool)
    ref_avgpool(N, H, W, C, xd, yd);
  else
    ref_upsample(N, H, W, C, xd, yd);
  snprintf(what, sizeof what, "%s [%d,%d,%d,%d]: forward", op, N, H, W, C);
  EXPECT_NERR(what, nerr(y, yd, ny), pool ? 1e-6 : 0.0);

  // Backward (dy = r) against finite differences of L = Σ r ⊙ op(x), and against the adjoint
  // written out: the window's sum of dy (upsampling), dy / 4 at each position (pooling, exact).
  poison(dx, nx);
  if (pool)
    avgpool2x_backward_cpu(ctx, N, H, W, C, r, dx);
  else
    upsample2x_backward_cpu(ctx, N, H, W, C, r, dx);
  int64_t idx[FD_MAX];
  double fd[FD_MAX];
  const int k = pick(nx, FD_MAX, rg, idx);
  finite_diff(rs_L, &env, xd, idx, k, 1e-3, fd);
  snprintf(what, sizeof what, "%s [%d,%d,%d,%d]: dx vs finite differences", op, N, H, W, C);
  EXPECT_NERR(what, nerr_at(dx, idx, k, fd), 1e-6);
  for (int n = 0; n < N; n++)
    for (int i = 0; i < (pool ? H : 2 * H); i++)
      for (int j = 0; j < (pool ? W : 2 * W); j++)
        for (int c = 0; c < C; c++) {
          // (i, j) on the big side; its window's small position (i/2, j/2).
          const int h = pool ? H / 2 : H, w = pool ? W / 2 : W;
          const int64_t big = (((int64_t)n * 2 * h + i) * 2 * w + j) * C + c;
          const int64_t small = (((int64_t)n * h + i / 2) * w + j / 2) * C + c;
          if (pool)
            want[big] = rd[small] / 4.0;
          else if (i % 2 == 0 && j % 2 == 0)
            want[small] = rd[big] + rd[big + C] + rd[big + 2 * w * C] + rd[big + 2 * w * C + C];
        }
  snprintf(what, sizeof what, "%s [%d,%d,%d,%d]: dx", op, N, H, W, C);
  EXPECT_NERR(what, nerr(dx, want, nx), pool ? 0.0 : 1e-6);
  // dx is overwritten: old values never show through.
  fill_value(dx2, nx, 1e30f);
  if (pool)
    avgpool2x_backward_cpu(ctx, N, H, W, C, r, dx2);
  else
    upsample2x_backward_cpu(ctx, N, H, W, C, r, dx2);
  assert_memory_equal(dx, dx2, nx * sizeof(float));

  free(x), free(y), free(r), free(dx), free(dx2);
  free(xd), free(rd), free(yd), free(want), free(env.tmp);
}

static void call_avgpool_odd(void *arg) {
  ganc_ctx *ctx = arg;
  float x[3 * 4], y[4];
  fill_value(x, 12, 0.0f);
  avgpool2x_forward_cpu(ctx, 1, 3, 4, 1, x, y); // 3 rows: no whole windows
}

static void test_resample(void **state) {
  ganc_ctx *ctx = *state;
  rng rg = {9};
  static const int up[][4] = {
      {1, 1, 1, 1},  {2, 3, 5, 3},    {3, 4, 4, 8},
      {1, 2, 7, 13}, {2, 16, 16, 64}, // 32768 inputs: the parallel path
  };
  for (size_t i = 0; i < sizeof up / sizeof *up; i++)
    check_window_case(ctx, 0, up[i][0], up[i][1], up[i][2], up[i][3], &rg);
  static const int pool[][4] = {
      {1, 2, 2, 1},  {2, 6, 4, 5},    {3, 8, 8, 8},
      {1, 2, 10, 3}, {2, 32, 32, 32}, // 65536 inputs: the parallel path
  };
  for (size_t i = 0; i < sizeof pool / sizeof *pool; i++)
    check_window_case(ctx, 1, pool[i][0], pool[i][1], pool[i][2], pool[i][3], &rg);

  // An odd size is a checked error, not a silent half window.
  char msg[512];
  assert_int_equal(exit_status_of(call_avgpool_odd, ctx, msg, sizeof msg), 1);
  if (!strstr(msg, "must be even")) fail_msg("avgpool2x of a 3x4 input said: %s", msg);
}

// ---- tensor_add -------------------------------------------------------------------------------

static void test_tensor_add(void **state) {
  ganc_ctx *ctx = *state;
  rng rg = {10};
  const int64_t n = 40001; // over the parallel threshold, and odd
  float *a = fnew(n), *b = fnew(n), *y = fnew(n), *want = fnew(n), *buf = fnew(n);
  fill(a, n, &rg, 3, 0);
  fill(b, n, &rg, 3, 0);
  for (int64_t i = 0; i < n; i++)
    want[i] = a[i] + b[i];
  poison(y, n);
  tensor_add_cpu(ctx, n, a, b, y);
  assert_memory_equal(y, want, n * sizeof(float));
  // In place over either input.
  memcpy(buf, a, n * sizeof(float));
  tensor_add_cpu(ctx, n, buf, b, buf);
  assert_memory_equal(buf, want, n * sizeof(float));
  memcpy(buf, b, n * sizeof(float));
  tensor_add_cpu(ctx, n, a, buf, buf);
  assert_memory_equal(buf, want, n * sizeof(float));
  tensor_add_cpu(ctx, 0, NULL, NULL, NULL); // nothing to do, nothing touched
  free(a), free(b), free(y), free(want), free(buf);
}

// ---- global sum pooling -------------------------------------------------------------------------

typedef struct {
  int N, HW, C;
  double *x, *r;
} sp_env;

// L = Σ_{n,c} r[n,c] · Σ_hw x[n,hw,c].
static double sp_L(void *e) {
  sp_env *v = e;
  double L = 0.0;
  for (int n = 0; n < v->N; n++)
    for (int hw = 0; hw < v->HW; hw++)
      for (int c = 0; c < v->C; c++)
        L += v->r[(int64_t)n * v->C + c] * v->x[((int64_t)n * v->HW + hw) * v->C + c];
  return L;
}

static void test_sum_pool(void **state) {
  ganc_ctx *ctx = *state;
  rng rg = {11};
  // One chunk of 64 rows, several with a short last one, exactly whole chunks, the parallel path.
  static const int cases[][3] = {{1, 1, 1}, {3, 16, 7}, {2, 300, 5}, {4, 128, 9}, {64, 16, 32}};
  for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
    const int N = cases[ci][0], HW = cases[ci][1], C = cases[ci][2];
    const int64_t nx = (int64_t)N * HW * C, ny = (int64_t)N * C;
    float *x = fnew(nx), *y = fnew(ny), *y1 = fnew(ny), *r = fnew(ny), *dx = fnew(nx);
    fill(x, nx, &rg, 1, 0.5);
    fill(r, ny, &rg, 1, 0);
    double *xd = widen(x, nx), *rd = widen(r, ny), *yd = dnew(ny), *dxd = dnew(nx);
    char what[120];
    poison(y, ny);
    sum_pool_forward_cpu(ctx, N, HW, C, x, y);
    for (int n = 0; n < N; n++)
      for (int c = 0; c < C; c++) {
        double s = 0.0;
        for (int hw = 0; hw < HW; hw++)
          s += xd[((int64_t)n * HW + hw) * C + c];
        yd[(int64_t)n * C + c] = s;
      }
    snprintf(what, sizeof what, "sum_pool [%d,%d,%d]: forward", N, HW, C);
    EXPECT_NERR(what, nerr(y, yd, ny), 1e-7);
    // The order of the sum is fixed: one thread gives the same bits.
    ganc_ctx one = *ctx;
    one.threads = 1;
    one.scratch = NULL;
    one.scratch_floats = 0;
    sum_pool_forward_cpu(&one, N, HW, C, x, y1);
    ganc_ctx_free(&one);
    assert_memory_equal(y, y1, ny * sizeof(float));

    // Backward: dy broadcast to every position (exact), against finite differences too.
    poison(dx, nx);
    sum_pool_backward_cpu(ctx, N, HW, C, r, dx);
    for (int64_t i = 0; i < nx; i++)
      dxd[i] = rd[(i / ((int64_t)HW * C)) * C + i % C];
    snprintf(what, sizeof what, "sum_pool [%d,%d,%d]: dx", N, HW, C);
    EXPECT_NERR(what, nerr(dx, dxd, nx), 0.0);
    sp_env env = {N, HW, C, xd, rd};
    int64_t idx[FD_MAX];
    double fd[FD_MAX];
    const int k = pick(nx, FD_MAX, &rg, idx);
    finite_diff(sp_L, &env, xd, idx, k, 1e-3, fd);
    snprintf(what, sizeof what, "sum_pool [%d,%d,%d]: dx vs finite differences", N, HW, C);
    EXPECT_NERR(what, nerr_at(dx, idx, k, fd), 1e-6);
    free(x), free(y), free(y1), free(r), free(dx), free(xd), free(rd), free(yd), free(dxd);
  }
}

// ---- spectral normalization -----------------------------------------------------------------

// a [n] / max(‖a‖, eps), in double.
static void ref_normalize(double *a, int64_t n, double eps) {
  double s = 0.0;
  for (int64_t i = 0; i < n; i++)
    s += a[i] * a[i];
  const double d = fmax(sqrt(s), eps);
  for (int64_t i = 0; i < n; i++)
    a[i] /= d;
}

// vᵀ W u for W [M,K], in double.
static double ref_vwu(int M, int K, const double *w, const double *u, const double *v) {
  double s = 0.0;
  for (int m = 0; m < M; m++)
    for (int k = 0; k < K; k++)
      s += v[m] * w[(int64_t)m * K + k] * u[k];
  return s;
}

// L = Σ r ⊙ W / (vᵀ W u) with u, v held fixed (what spectral_norm_backward differentiates).
typedef struct {
  int M, K;
  double *w, *u, *v, *r;
} sn_env;

static double sn_L(void *e) {
  sn_env *s = e;
  const double sigma = ref_vwu(s->M, s->K, s->w, s->u, s->v);
  return dot(s->r, s->w, (int64_t)s->M * s->K) / sigma;
}

// Random unit vector of n floats.
static void unit_vector(float *a, int64_t n, rng *rg) {
  double *d = dnew(n);
  for (int64_t i = 0; i < n; i++)
    d[i] = rng_uniform(rg);
  ref_normalize(d, n, 1e-12);
  for (int64_t i = 0; i < n; i++)
    a[i] = (float)d[i];
  free(d);
}

static void check_sn_case(ganc_ctx *ctx, int M, int K, rng *rg) {
  const int64_t n = (int64_t)M * K;
  const float eps = 1e-12f;
  float *w = fnew(n), *u = fnew(K), *v = fnew(M), *u0 = fnew(K), *v0 = fnew(M), *wsn = fnew(n);
  float *r = fnew(n), *dw = fnew(n), *dw0 = fnew(n), *inc = fnew(n), sigma = NAN;
  fill(w, n, rg, 0.1, 0);
  fill(r, n, rg, 1, 0);
  unit_vector(u0, K, rg);
  unit_vector(v0, M, rg);
  double *wd = widen(w, n), *ud = dnew(K), *vd = dnew(M), *want = dnew(n);
  char what[120];

  // One training iteration against its formula, step by step (torch.nn.utils.spectral_norm's
  // order): v = normalize(W u0) from the stored u0; u = normalize(Wᵀ v) from the float v the op
  // stores; sigma = vᵀ W u from both.
  memcpy(u, u0, K * sizeof(float));
  memcpy(v, v0, M * sizeof(float));
  poison(wsn, n);
  spectral_norm_forward_cpu(ctx, M, K, w, u, v, 1, eps, &sigma, wsn);
  for (int m = 0; m < M; m++) {
    vd[m] = 0.0;
    for (int k = 0; k < K; k++)
      vd[m] += wd[(int64_t)m * K + k] * u0[k];
  }
  ref_normalize(vd, M, eps);
  snprintf(what, sizeof what, "spectral [%d,%d]: v after one iteration", M, K);
  EXPECT_NERR(what, nerr(v, vd, M), 1e-6);
  for (int k = 0; k < K; k++) {
    ud[k] = 0.0;
    for (int m = 0; m < M; m++)
      ud[k] += wd[(int64_t)m * K + k] * v[m];
  }
  ref_normalize(ud, K, eps);
  snprintf(what, sizeof what, "spectral [%d,%d]: u after one iteration", M, K);
  EXPECT_NERR(what, nerr(u, ud, K), 1e-6);
  double *uf = widen(u, K), *vf = widen(v, M);
  const double sg = ref_vwu(M, K, wd, uf, vf);
  snprintf(what, sizeof what, "spectral [%d,%d]: sigma", M, K);
  EXPECT_NERR(what, nerr(&sigma, &sg, 1), 1e-6);
  for (int64_t i = 0; i < n; i++)
    want[i] = wd[i] / sigma;
  snprintf(what, sizeof what, "spectral [%d,%d]: W / sigma", M, K);
  EXPECT_NERR(what, nerr(wsn, want, n), 1e-7);

  // The thread count changes no bit.
  ganc_ctx one = *ctx;
  one.threads = 1;
  one.scratch = NULL;
  one.scratch_floats = 0;
  float *u1 = fcopy(u0, K), *v1 = fcopy(v0, M), *wsn1 = fnew(n), sigma1 = NAN;
  spectral_norm_forward_cpu(&one, M, K, w, u1, v1, 1, eps, &sigma1, wsn1);
  assert_memory_equal(u, u1, K * sizeof(float));
  assert_memory_equal(v, v1, M * sizeof(float));
  assert_memory_equal(&sigma, &sigma1, sizeof(float));
  assert_memory_equal(wsn, wsn1, n * sizeof(float));

  // Eval (iters = 0): u and v stay as they are; sigma = vᵀ W u from them.
  memcpy(u1, u, K * sizeof(float));
  memcpy(v1, v, M * sizeof(float));
  poison(wsn1, n);
  spectral_norm_forward_cpu(ctx, M, K, w, u1, v1, 0, eps, &sigma1, wsn1);
  assert_memory_equal(u1, u, K * sizeof(float));
  assert_memory_equal(v1, v, M * sizeof(float));
  snprintf(what, sizeof what, "spectral [%d,%d]: eval sigma", M, K);
  EXPECT_NERR(what, nerr(&sigma1, &sg, 1), 1e-6);
  EXPECT_NERR("spectral eval W / sigma", nerr(wsn1, want, n), 1e-6);

  // Backward (dw_sn = r) from the eval forward: against finite differences of L(W) with u, v
  // fixed; dw accumulates onto dw0.
  fill(dw0, n, rg, 1, 0);
  memcpy(dw, dw0, n * sizeof(float));
  spectral_norm_backward_cpu(ctx, M, K, wsn1, r, u, v, &sigma1, dw);
  for (int64_t i = 0; i < n; i++)
    inc[i] = dw[i] - dw0[i];
  sn_env env = {M, K, wd, uf, vf, widen(r, n)};
  int64_t idx[FD_MAX];
  double fd[FD_MAX];
  const int k = pick(n, FD_MAX, rg, idx);
  finite_diff(sn_L, &env, wd, idx, k, 1e-4, fd);
  snprintf(what, sizeof what, "spectral [%d,%d]: dW vs finite differences", M, K);
  EXPECT_NERR(what, nerr_at(inc, idx, k, fd), 1e-4);
  // A second call adds the same again: d0 + 2·inc; and with one thread, the same bits.
  float *dw2 = fcopy(dw, n);
  spectral_norm_backward_cpu(ctx, M, K, wsn1, r, u, v, &sigma1, dw2);
  for (int64_t i = 0; i < n; i++)
    want[i] = (double)dw0[i] + 2.0 * ((double)dw[i] - dw0[i]);
  snprintf(what, sizeof what, "spectral [%d,%d]: dW accumulates", M, K);
  EXPECT_NERR(what, nerr(dw2, want, n), 1e-5);
  memcpy(dw2, dw0, n * sizeof(float));
  spectral_norm_backward_cpu(&one, M, K, wsn1, r, u, v, &sigma1, dw2);
  assert_memory_equal(dw2, dw, n * sizeof(float));
  ganc_ctx_free(&one);

  free(w), free(u), free(v), free(u0), free(v0), free(wsn), free(r), free(dw), free(dw0), free(inc),
      free(u1), free(v1), free(wsn1), free(dw2);
  free(wd), free(ud), free(vd), free(want), free(uf), free(vf), free(env.r);
}

// A Householder reflection I − 2 h hᵀ / ‖h‖² applied to the columns of a [n, cols] in place.
static void householder(double *a, int n, int cols, rng *rg) {
  double *h = dnew(n), hh = 0.0;
  for (int i = 0; i < n; i++) {
    h[i] = rng_uniform(rg);
    hh += h[i] * h[i];
  }
  for (int c = 0; c < cols; c++) {
    double d = 0.0;
    for (int i = 0; i < n; i++)
      d += h[i] * a[(int64_t)i * cols + c];
    for (int i = 0; i < n; i++)
      a[(int64_t)i * cols + c] -= 2.0 * d / hh * h[i];
  }
  free(h);
}

// The power iteration converges to the top singular value of a matrix built with a known one:
// W = P diag(s) Qᵀ with P [M,K] and Q [K,K] orthonormal (products of reflections), s = 3, 1.5,
// 1, 0.9, ...; and many calls of one iteration are the same bits as one call of many.
static void check_spectral_converges(ganc_ctx *ctx, int M, int K, rng *rg) {
  double *P = dnew((int64_t)M * K), *Q = dnew((int64_t)K * K), *s = dnew(K);
  memset(P, 0, sizeof(double) * (size_t)M * K);
  memset(Q, 0, sizeof(double) * (size_t)K * K);
  for (int k = 0; k < K; k++) {
    P[(int64_t)k * K + k] = 1.0; // the first K rows of the identity
    Q[(int64_t)k * K + k] = 1.0;
    s[k] = k == 0 ? 3.0 : k == 1 ? 1.5 : 1.0 - 0.1 * (k % 5);
  }
  for (int t = 0; t < 3; t++) {
    householder(P, M, K, rg);
    householder(Q, K, K, rg);
  }
  const int64_t n = (int64_t)M * K;
  float *w = fnew(n), *u = fnew(K), *v = fnew(M), *u2 = fnew(K), *v2 = fnew(M), *wsn = fnew(n);
  for (int m = 0; m < M; m++)
    for (int k = 0; k < K; k++) {
      double a = 0.0;
      for (int j = 0; j < K; j++)
        a += P[(int64_t)m * K + j] * s[j] * Q[(int64_t)k * K + j];
      w[(int64_t)m * K + k] = (float)a;
    }
  unit_vector(u, K, rg);
  unit_vector(v, M, rg);
  memcpy(u2, u, K * sizeof(float));
  memcpy(v2, v, M * sizeof(float));
  float sigma = NAN, sigma2 = NAN;
  spectral_norm_forward_cpu(ctx, M, K, w, u, v, 40, 1e-12f, &sigma, wsn);
  // Error ~ (1.5/3)^80 from the iteration, ~1e-7 from W's rounding to float.
  if (!(fabs(sigma - 3.0) <= 3e-6))
    fail_msg("spectral [%d,%d]: sigma %.9g after 40 iterations, want 3", M, K, (double)sigma);
  // u and v are the top singular vectors: ±Q's and ±P's first column.
  double du = 0.0, dv = 0.0;
  for (int k = 0; k < K; k++)
    du += u[k] * Q[(int64_t)k * K];
  for (int m = 0; m < M; m++)
    dv += v[m] * P[(int64_t)m * K];
  if (!(fabs(fabs(du) - 1.0) <= 1e-6 && fabs(fabs(dv) - 1.0) <= 1e-6))
    fail_msg("spectral [%d,%d]: |u·q1| = %.9f, |v·p1| = %.9f, want 1", M, K, fabs(du), fabs(dv));
  // Resume-exactness: the state between calls is what the loop keeps between iterations.
  for (int t = 0; t < 40; t++)
    spectral_norm_forward_cpu(ctx, M, K, w, u2, v2, 1, 1e-12f, &sigma2, wsn);
  assert_memory_equal(u, u2, K * sizeof(float));
  assert_memory_equal(v, v2, M * sizeof(float));
  assert_memory_equal(&sigma, &sigma2, sizeof(float));
  free(P), free(Q), free(s), free(w), free(u), free(v), free(u2), free(v2), free(wsn);
}

static void test_spectral(void **state) {
  ganc_ctx *ctx = *state;
  rng rg = {12};
  static const int cases[][2] = {
      {27, 16},  // a first D conv, 3x3x3 → 16
      {72, 5},   // 3x3x8 → 5 (K below a lane's 32)
      {37, 1},   // a dense layer C → 1 (D's head)
      {1, 7},    // a single row
      {130, 40}, // three chunks of rows, the last short
      {576, 64}, // 3x3x64 → 64: threaded, 9 chunks, 9 flat chunks
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    check_sn_case(ctx, cases[i][0], cases[i][1], &rg);
  check_spectral_converges(ctx, 20, 6, &rg);
  check_spectral_converges(ctx, 300, 9, &rg);
}

// ---- class-conditional affine and projection head ------------------------------------------

// L = Σ r ⊙ (x · gamma[label] + beta[label]).
typedef struct {
  int N, HW, C;
  const int32_t *labels;
  double *x, *g, *b, *r;
} ca_env;

static double ca_L(void *e) {
  ca_env *v = e;
  double L = 0.0;
  for (int n = 0; n < v->N; n++)
    for (int hw = 0; hw < v->HW; hw++)
      for (int c = 0; c < v->C; c++) {
        const int64_t i = ((int64_t)n * v->HW + hw) * v->C + c,
                      p = (int64_t)v->labels[n] * v->C + c;
        L += v->r[i] * (v->x[i] * v->g[p] + v->b[p]);
      }
  return L;
}

static void check_cond_affine(ganc_ctx *ctx, int N, int HW, int C, int ncls, const int32_t *labels,
                              rng *rg) {
  const int64_t n = (int64_t)N * HW * C, np = (int64_t)ncls * C;
  float *x = fnew(n), *y = fnew(n), *r = fnew(n), *dx = fnew(n), *buf = fnew(n);
  float *g = fnew(np), *b = fnew(np), *dg = fnew(np), *db = fnew(np), *dg0 = fnew(np),
        *db0 = fnew(np), *ig = fnew(np), *ib = fnew(np);
  fill(x, n, rg, 2, 0);
  fill(r, n, rg, 1, 0);
  fill(g, np, rg, 0.5, 1);
  fill(b, np, rg, 0.5, 0);
  fill(dg0, np, rg, 1, 0);
  fill(db0, np, rg, 1, 0);
  double *xd = widen(x, n), *gd = widen(g, np), *bd = widen(b, np), *rd = widen(r, n);
  double *want = dnew(n > 2 * np ? n : 2 * np);
  char what[120];

  poison(y, n);
  cond_affine_forward_cpu(ctx, N, HW, C, ncls, x, labels, g, b, y);
  for (int64_t i = 0; i < n; i++) {
    const int64_t p = (int64_t)labels[i / ((int64_t)HW * C)] * C + i % C;
    want[i] = xd[i] * gd[p] + bd[p];
  }
  snprintf(what, sizeof what, "cond_affine [%d,%d,%d] ncls %d: forward", N, HW, C, ncls);
  EXPECT_NERR(what, nerr(y, want, n), 1e-6);
  memcpy(buf, x, n * sizeof(float)); // in place: y aliases x
  cond_affine_forward_cpu(ctx, N, HW, C, ncls, buf, labels, g, b, buf);
  assert_memory_equal(buf, y, n * sizeof(float));

  // Backward (dy = r): dx overwrites; dgamma/dbeta accumulate per class.
  memcpy(dg, dg0, np * sizeof(float));
  memcpy(db, db0, np * sizeof(float));
  poison(dx, n);
  cond_affine_backward_cpu(ctx, N, HW, C, ncls, x, r, labels, g, dx, dg, db);
  for (int64_t i = 0; i < n; i++)
    want[i] = rd[i] * gd[(int64_t)labels[i / ((int64_t)HW * C)] * C + i % C];
  snprintf(what, sizeof what, "cond_affine [%d,%d,%d]: dx", N, HW, C);
  EXPECT_NERR(what, nerr(dx, want, n), 1e-6);
  memset(want, 0, sizeof(double) * 2 * np);
  for (int64_t i = 0; i < n; i++) {
    const int64_t p = (int64_t)labels[i / ((int64_t)HW * C)] * C + i % C;
    want[p] += rd[i] * xd[i];
    want[np + p] += rd[i];
  }
  for (int64_t p = 0; p < np; p++) {
    ig[p] = dg[p] - dg0[p];
    ib[p] = db[p] - db0[p];
  }
  snprintf(what, sizeof what, "cond_affine [%d,%d,%d]: dgamma increment", N, HW, C);
  EXPECT_NERR(what, nerr(ig, want, np), 1e-5);
  snprintf(what, sizeof what, "cond_affine [%d,%d,%d]: dbeta increment", N, HW, C);
  EXPECT_NERR(what, nerr(ib, want + np, np), 1e-5);
  // Classes absent from the batch: their rows untouched, bit for bit.
  for (int k = 0; k < ncls; k++) {
    int present = 0;
    for (int i = 0; i < N; i++)
      present |= labels[i] == k;
    if (!present) {
      assert_memory_equal(dg + (int64_t)k * C, dg0 + (int64_t)k * C, C * sizeof(float));
      assert_memory_equal(db + (int64_t)k * C, db0 + (int64_t)k * C, C * sizeof(float));
    }
  }
  // Finite differences of L for x, gamma and beta.
  ca_env env = {N, HW, C, labels, xd, gd, bd, rd};
  int64_t idx[FD_MAX];
  double fd[FD_MAX];
  int k = pick(n, FD_MAX, rg, idx);
  finite_diff(ca_L, &env, xd, idx, k, 1e-3, fd);
  snprintf(what, sizeof what, "cond_affine [%d,%d,%d]: dx vs finite differences", N, HW, C);
  EXPECT_NERR(what, nerr_at(dx, idx, k, fd), 1e-5);
  k = pick(np, FD_MAX, rg, idx);
  finite_diff(ca_L, &env, gd, idx, k, 1e-3, fd);
  EXPECT_NERR("cond_affine dgamma vs finite differences", nerr_at(ig, idx, k, fd), 1e-5);
  finite_diff(ca_L, &env, bd, idx, k, 1e-3, fd);
  EXPECT_NERR("cond_affine dbeta vs finite differences", nerr_at(ib, idx, k, fd), 1e-5);

  // In place (dx aliases dy): the same dx; a second call adds the same increments again.
  float *dg1 = fcopy(dg, np), *db1 = fcopy(db, np);
  memcpy(buf, r, n * sizeof(float));
  cond_affine_backward_cpu(ctx, N, HW, C, ncls, x, buf, labels, g, buf, dg1, db1);
  assert_memory_equal(buf, dx, n * sizeof(float));
  for (int64_t p = 0; p < np; p++) {
    want[p] = dg0[p] + 2.0 * ig[p];
    want[np + p] = db0[p] + 2.0 * ib[p];
  }
  EXPECT_NERR("cond_affine dgamma accumulates", nerr(dg1, want, np), 1e-5);
  EXPECT_NERR("cond_affine dbeta accumulates", nerr(db1, want + np, np), 1e-5);
  // One thread: the same bits.
  ganc_ctx one = *ctx;
  one.threads = 1;
  one.scratch = NULL;
  one.scratch_floats = 0;
  memcpy(dg1, dg0, np * sizeof(float));
  memcpy(db1, db0, np * sizeof(float));
  cond_affine_backward_cpu(&one, N, HW, C, ncls, x, r, labels, g, buf, dg1, db1);
  ganc_ctx_free(&one);
  assert_memory_equal(buf, dx, n * sizeof(float));
  assert_memory_equal(dg1, dg, np * sizeof(float));
  assert_memory_equal(db1, db, np * sizeof(float));

  float *bufs[] = {x, y, r, dx, buf, g, b, dg, db, dg0, db0, ig, ib, dg1, db1};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
    free(bufs[i]);
  free(xd), free(gd), free(bd), free(rd), free(want);
}

// L = Σ_n r[n] · Σ_c h[n,c] · embed[label[n], c].
typedef struct {
  int N, C;
  const int32_t *labels;
  double *h, *e, *r;
} ed_env;

static double ed_L(void *p) {
  ed_env *v = p;
  double L = 0.0;
  for (int n = 0; n < v->N; n++)
    for (int c = 0; c < v->C; c++)
      L += v->r[n] * v->h[(int64_t)n * v->C + c] * v->e[(int64_t)v->labels[n] * v->C + c];
  return L;
}

static void check_embed_dot(ganc_ctx *ctx, int N, int C, int ncls, const int32_t *labels, rng *rg) {
  const int64_t nh = (int64_t)N * C, ne = (int64_t)ncls * C;
  float *h = fnew(nh), *e = fnew(ne), *y = fnew(N), *r = fnew(N), *dh = fnew(nh), *de = fnew(ne),
        *de0 = fnew(ne), *inc = fnew(ne);
  fill(h, nh, rg, 1, 0);
  fill(e, ne, rg, 1, 0);
  fill(r, N, rg, 1, 0);
  fill(de0, ne, rg, 1, 0);
  double *hd = widen(h, nh), *ed = widen(e, ne), *rd = widen(r, N);
  double *want = dnew(nh > ne ? nh : ne);
  char what[120];

  poison(y, N);
  embed_dot_forward_cpu(ctx, N, C, ncls, h, labels, e, y);
  for (int n = 0; n < N; n++)
    want[n] = dot(hd + (int64_t)n * C, ed + (int64_t)labels[n] * C, C);
  snprintf(what, sizeof what, "embed_dot [%d,%d] ncls %d: forward", N, C, ncls);
  EXPECT_NERR(what, nerr(y, want, N), 1e-6);

  memcpy(de, de0, ne * sizeof(float));
  poison(dh, nh);
  embed_dot_backward_cpu(ctx, N, C, ncls, h, r, labels, e, dh, de);
  for (int64_t i = 0; i < nh; i++)
    want[i] = rd[i / C] * ed[(int64_t)labels[i / C] * C + i % C];
  snprintf(what, sizeof what, "embed_dot [%d,%d]: dh", N, C);
  EXPECT_NERR(what, nerr(dh, want, nh), 1e-6);
  memset(want, 0, sizeof(double) * ne);
  for (int64_t i = 0; i < nh; i++)
    want[(int64_t)labels[i / C] * C + i % C] += rd[i / C] * hd[i];
  for (int64_t p = 0; p < ne; p++)
    inc[p] = de[p] - de0[p];
  snprintf(what, sizeof what, "embed_dot [%d,%d]: dembed increment", N, C);
  EXPECT_NERR(what, nerr(inc, want, ne), 1e-5);
  ed_env env = {N, C, labels, hd, ed, rd};
  int64_t idx[FD_MAX];
  double fd[FD_MAX];
  int k = pick(nh, FD_MAX, rg, idx);
  finite_diff(ed_L, &env, hd, idx, k, 1e-3, fd);
  snprintf(what, sizeof what, "embed_dot [%d,%d]: dh vs finite differences", N, C);
  EXPECT_NERR(what, nerr_at(dh, idx, k, fd), 1e-5);
  k = pick(ne, FD_MAX, rg, idx);
  finite_diff(ed_L, &env, ed, idx, k, 1e-3, fd);
  snprintf(what, sizeof what, "embed_dot [%d,%d]: dembed vs finite differences", N, C);
  EXPECT_NERR(what, nerr_at(inc, idx, k, fd), 1e-5);
  for (int c = 0; c < ncls; c++) { // absent classes untouched
    int present = 0;
    for (int i = 0; i < N; i++)
      present |= labels[i] == c;
    if (!present) assert_memory_equal(de + (int64_t)c * C, de0 + (int64_t)c * C, C * sizeof(float));
  }
  // dh overwrites; dembed accumulates.
  float *de2 = fcopy(de, ne), *dh2 = fnew(nh);
  fill_value(dh2, nh, 1e30f);
  embed_dot_backward_cpu(ctx, N, C, ncls, h, r, labels, e, dh2, de2);
  assert_memory_equal(dh2, dh, nh * sizeof(float));
  for (int64_t p = 0; p < ne; p++)
    want[p] = de0[p] + 2.0 * inc[p];
  EXPECT_NERR("embed_dot dembed accumulates", nerr(de2, want, ne), 1e-5);

  free(h), free(e), free(y), free(r), free(dh), free(de), free(de0), free(inc), free(de2),
      free(dh2);
  free(hd), free(ed), free(rd), free(want);
}

typedef struct {
  ganc_ctx *ctx;
  int op;
} bad_label_arg;

static void call_bad_label(void *p) {
  bad_label_arg *a = p;
  const int32_t labels[2] = {1, 3}; // 3 is outside [0, 3)
  float x[2 * 4] = {0}, y[2 * 4], g[3 * 4] = {0}, h[2 * 4] = {0}, e[3 * 4] = {0};
  if (a->op == 0) cond_affine_forward_cpu(a->ctx, 2, 1, 4, 3, x, labels, g, g, y);
  if (a->op == 1) embed_dot_forward_cpu(a->ctx, 2, 4, 3, h, labels, e, y);
}

static void test_cond(void **state) {
  ganc_ctx *ctx = *state;
  rng rg = {13};
  // 7 samples of classes {2,0,2,3,0,2,1} out of 5: repeats, out of order, class 4 absent.
  static const int32_t lab7[] = {2, 0, 2, 3, 0, 2, 1};
  check_cond_affine(ctx, 7, 1, 5, 5, lab7, &rg);
  check_cond_affine(ctx, 7, 5, 3, 5, lab7, &rg);
  check_cond_affine(ctx, 7, 130, 4, 5, lab7, &rg); // three chunks of rows, the last short
  static const int32_t lab1[] = {0};
  check_cond_affine(ctx, 1, 16, 8, 1, lab1, &rg);
  int32_t lab64[64]; // the parallel path: 64·16·32 elements, 10 classes
  for (int i = 0; i < 64; i++)
    lab64[i] = (int32_t)(rng_next(&rg) % 10);
  check_cond_affine(ctx, 64, 16, 32, 10, lab64, &rg);

  check_embed_dot(ctx, 7, 5, 5, lab7, &rg);
  check_embed_dot(ctx, 7, 70, 5, lab7, &rg); // C past two lanes' worth of 32
  check_embed_dot(ctx, 1, 3, 1, lab1, &rg);
  check_embed_dot(ctx, 64, 128, 10, lab64, &rg);

  // A label outside [0, ncls) stops the CPU twin with an error that says so.
  char msg[512];
  for (int op = 0; op < 2; op++) {
    bad_label_arg a = {ctx, op};
    assert_int_equal(exit_status_of(call_bad_label, &a, msg, sizeof msg), 1);
    if (!strstr(msg, "label 3 of sample 1 is outside [0, 3)"))
      fail_msg("a bad label said: %s", msg);
  }
}

// ---- DiffAugment: colour, translation, cutout -----------------------------------------------
// The draws again, from core/philox.c's ganc_rng_u32 at the columns ops/augment_core.h documents
// (16·image + 4·transform + word of row = counter: an independent path to the same numbers), and
// the reference's algorithms in double as DiffAugment_pytorch.py writes them: colour in its
// three steps, translation by zero padding and clamped indices, cutout by a mask of clamped
// indices. Gradients: translation and cutout against the gather's exact transpose (a scatter),
// colour against finite differences and the adjoint identity <r, A x> = <Aᵀ r, x>.

static uint32_t aug_u32(uint64_t seed, uint64_t counter, int n, int t, int w) {
  return ganc_rng_u32(seed, GANC_RNG_AUGMENT, counter, (uint32_t)(16 * n + 4 * t + w));
}
static double aug_r(uint32_t u) { return (double)(u >> 8) / 16777216.0; } // U[0, 1)
// torch.randint(lo, hi): an integer in [lo, hi).
static int aug_randint(uint32_t u, int lo, int hi) {
  return lo + (int)(((uint64_t)u * (uint64_t)(hi - lo)) >> 32);
}
static int aug_side(int size, float ratio) { return (int)(size * (double)ratio + 0.5); }
static int iclamp(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

typedef enum { AUG_COLOR, AUG_TRANSLATION, AUG_CUTOUT, AUG_BLIT } aug_op;
static const char *AUG_NAMES[4] = {"augment_color", "augment_translation", "augment_cutout",
                                   "augment_blit"};

typedef struct {
  int N, H, W, C;
  float ratio;
  uint64_t seed, counter;
  const float *p; // ADA's probability (NULL: always)
  int modes;      // the blit's
} aug_case;

// Whether transform t applies to image n: word 3 of its block (word 2 for the blit's rotation)
// below p.
static int aug_applies(const aug_case *a, int n, int t, int w) {
  return !a->p || aug_r(aug_u32(a->seed, a->counter, n, t, w)) < (double)*a->p;
}

// The reference colour: brightness, saturation, contrast, each on the previous one's result.
static void ref_aug_color(const aug_case *a, const double *x, double *y) {
  const int64_t HW = (int64_t)a->H * a->W, per = HW * a->C;
  for (int n = 0; n < a->N; n++) {
    const double b = aug_r(aug_u32(a->seed, a->counter, n, 0, 0)) - 0.5;
    const double s = aug_r(aug_u32(a->seed, a->counter, n, 0, 1)) * 2.0;
    const double c = aug_r(aug_u32(a->seed, a->counter, n, 0, 2)) + 0.5;
    const double *xn = x + n * per;
    double *yn = y + n * per;
    if (!aug_applies(a, n, AUG_COLOR, 3)) { // not applied: the image itself
      memcpy(yn, xn, (size_t)per * sizeof(double));
      continue;
    }
    for (int64_t i = 0; i < per; i++)
      yn[i] = xn[i] + b;
    for (int64_t p = 0; p < HW; p++) {
      double m = 0.0;
      for (int k = 0; k < a->C; k++)
        m += yn[p * a->C + k];
      m /= a->C;
      for (int k = 0; k < a->C; k++)
        yn[p * a->C + k] = (yn[p * a->C + k] - m) * s + m;
    }
    double M = 0.0;
    for (int64_t i = 0; i < per; i++)
      M += yn[i];
    M /= (double)per;
    for (int64_t i = 0; i < per; i++)
      yn[i] = (yn[i] - M) * c + M;
  }
}

// src[q] = the index into x that output q reads (translation, cutout), or −1: a zero (the
// translation's padding) or, for cutout, a masked element (y = x · 0).
static void ref_aug_src(aug_op op, const aug_case *a, int64_t *src) {
  const int H = a->H, W = a->W, C = a->C;
  for (int n = 0; n < a->N; n++) {
    const uint32_t w0 = aug_u32(a->seed, a->counter, n, op, 0);
    const uint32_t w1 = aug_u32(a->seed, a->counter, n, op, 1);
    int64_t *sn = src + (int64_t)n * H * W * C;
    if (op == AUG_BLIT) {
      // The index image, x-flipped, then turned a quarter counter-clockwise k times as
      // numpy.rot90 does (rot90(m)[i, j] = m[j, S − 1 − i]), each step on a copy.
      const uint32_t w2 = aug_u32(a->seed, a->counter, n, op, 2);
      const int f = (a->modes & 1) && aug_applies(a, n, op, 3) ? (int)(w0 >> 31) : 0;
      const int k = (a->modes & 2) && aug_applies(a, n, op, 2) ? aug_randint(w1, 0, 4) : 0;
      (void)w2;
      int64_t *img = xmalloc(sizeof(int64_t) * (size_t)H * W),
              *tmp = xmalloc(sizeof(int64_t) * (size_t)H * W);
      for (int i = 0; i < H; i++)
        for (int j = 0; j < W; j++)
          img[i * W + j] = f ? (int64_t)i * W + (W - 1 - j) : (int64_t)i * W + j;
      for (int t = 0; t < k; t++) { // square here
        for (int i = 0; i < H; i++)
          for (int j = 0; j < W; j++)
            tmp[i * W + j] = img[j * W + (H - 1 - i)];
        memcpy(img, tmp, sizeof(int64_t) * (size_t)H * W);
      }
      for (int64_t q = 0; q < (int64_t)H * W; q++)
        for (int c = 0; c < C; c++)
          sn[q * C + c] = ((int64_t)n * H * W + img[q]) * C + c;
      free(img), free(tmp);
      continue;
    }
    if (!aug_applies(a, n, op, 3)) { // not applied: the identity gather
      for (int64_t q = 0; q < (int64_t)H * W * C; q++)
        sn[q] = (int64_t)n * H * W * C + q;
      continue;
    }
    if (op == AUG_TRANSLATION) {
      // x padded by one zero on each side; output (i, j) reads padded (clamp(i + tx + 1), ...).
      const int sh = aug_side(H, a->ratio), sw = aug_side(W, a->ratio);
      const int tx = aug_randint(w0, -sh, sh + 1), ty = aug_randint(w1, -sw, sw + 1);
      for (int i = 0; i < H; i++)
        for (int j = 0; j < W; j++) {
          const int pi = iclamp(i + tx + 1, 0, H + 1), pj = iclamp(j + ty + 1, 0, W + 1);
          const int inside = pi >= 1 && pi <= H && pj >= 1 && pj <= W;
          for (int c = 0; c < C; c++)
            sn[((int64_t)i * W + j) * C + c] =
                inside ? (((int64_t)n * H + pi - 1) * W + pj - 1) * C + c : -1;
        }
    } else {
      const int ch = aug_side(H, a->ratio), cw = aug_side(W, a->ratio);
      const int ox = aug_randint(w0, 0, H + (1 - ch % 2)),
                oy = aug_randint(w1, 0, W + (1 - cw % 2));
      char *mask = xmalloc((size_t)H * W);
      memset(mask, 1, (size_t)H * W);
      for (int gi = 0; gi < ch; gi++)
        for (int gj = 0; gj < cw; gj++)
          mask[iclamp(gi + ox - ch / 2, 0, H - 1) * W + iclamp(gj + oy - cw / 2, 0, W - 1)] = 0;
      for (int64_t q = 0; q < (int64_t)H * W * C; q++)
        sn[q] = mask[q / C] ? (int64_t)n * H * W * C + q : -1;
      free(mask);
    }
  }
}

static void aug_forward(ganc_ctx *ctx, aug_op op, const aug_case *a, const float *x, float *y) {
  if (op == AUG_COLOR)
    augment_color_forward_cpu(ctx, a->N, a->H, a->W, a->C, x, y, a->seed, &a->counter, 0, a->p);
  if (op == AUG_TRANSLATION)
    augment_translation_forward_cpu(ctx, a->N, a->H, a->W, a->C, a->ratio, x, y, a->seed,
                                    &a->counter, 0, a->p);
  if (op == AUG_CUTOUT)
    augment_cutout_forward_cpu(ctx, a->N, a->H, a->W, a->C, a->ratio, x, y, a->seed, &a->counter, 0,
                               a->p);
  if (op == AUG_BLIT)
    augment_blit_forward_cpu(ctx, a->N, a->H, a->W, a->C, a->modes, x, y, a->seed, &a->counter, 0,
                             a->p);
}

static void aug_backward(ganc_ctx *ctx, aug_op op, const aug_case *a, const float *dy, float *dx) {
  if (op == AUG_COLOR)
    augment_color_backward_cpu(ctx, a->N, a->H, a->W, a->C, dy, dx, a->seed, &a->counter, 0, a->p);
  if (op == AUG_TRANSLATION)
    augment_translation_backward_cpu(ctx, a->N, a->H, a->W, a->C, a->ratio, dy, dx, a->seed,
                                     &a->counter, 0, a->p);
  if (op == AUG_CUTOUT)
    augment_cutout_backward_cpu(ctx, a->N, a->H, a->W, a->C, a->ratio, dy, dx, a->seed, &a->counter,
                                0, a->p);
  if (op == AUG_BLIT)
    augment_blit_backward_cpu(ctx, a->N, a->H, a->W, a->C, a->modes, dy, dx, a->seed, &a->counter,
                              0, a->p);
}

// L = Σ r ⊙ colour(x) in double (finite differences).
typedef struct {
  const aug_case *a;
  double *x, *r, *tmp;
  int64_t n;
} aug_env;

static double aug_color_L(void *e) {
  aug_env *v = e;
  ref_aug_color(v->a, v->x, v->tmp);
  return dot(v->r, v->tmp, v->n);
}

// One op on one case: forward against the reference, backward against the exact transpose
// (translation, cutout) or finite differences and the adjoint identity (colour), poisoned
// outputs, dx overwritten, the same bits on a rerun and with one thread. fd: probe finite
// differences (colour).
static void check_aug(ganc_ctx *ctx, aug_op op, const aug_case *a, int fd, rng *rg) {
  const int64_t n = (int64_t)a->N * a->H * a->W * a->C;
  float *x = fnew(n), *y = fnew(n), *y2 = fnew(n), *r = fnew(n), *dx = fnew(n), *dx2 = fnew(n);
  fill(x, n, rg, 1.5, 0.25);
  fill(r, n, rg, 1, 0);
  double *xd = widen(x, n), *rd = widen(r, n), *want = dnew(n), *wdx = dnew(n);
  char what[200];
  snprintf(what, sizeof what, "%s [%d,%d,%d,%d] ratio %g modes %d p %g counter %llu", AUG_NAMES[op],
           a->N, a->H, a->W, a->C, (double)a->ratio, a->modes, a->p ? (double)*a->p : 1.0,
           (unsigned long long)a->counter);
  char msg[260];

  poison(y, n);
  aug_forward(ctx, op, a, x, y);
  poison(dx, n);
  aug_backward(ctx, op, a, r, dx);
  if (op == AUG_COLOR) {
    ref_aug_color(a, xd, want);
    snprintf(msg, sizeof msg, "%s: forward", what);
    EXPECT_NERR(msg, nerr(y, want, n), 1e-6);
    // The adjoint identity over every element: <r, A x> = <dx, x>, A x = colour(x) − colour(0).
    double *zero = dnew(n), *c0 = dnew(n);
    memset(zero, 0, (size_t)n * sizeof(double));
    ref_aug_color(a, zero, c0);
    double lhs = 0.0, rhs = 0.0, scale = 0.0;
    for (int64_t i = 0; i < n; i++) {
      lhs += rd[i] * (want[i] - c0[i]);
      rhs += (double)dx[i] * xd[i];
      scale += fabs(rd[i] * (want[i] - c0[i])) + fabs((double)dx[i] * xd[i]);
    }
    if (!(fabs(lhs - rhs) <= 1e-6 * scale))
      fail_msg("%s: <r, A x> = %.17g but <Aᵀ r, x> = %.17g", what, lhs, rhs);
    if (fd) {
      aug_env env = {a, xd, rd, dnew(n), n};
      int64_t idx[FD_MAX];
      double fdv[FD_MAX];
      const int k = pick(n, FD_MAX, rg, idx);
      finite_diff(aug_color_L, &env, xd, idx, k, 1e-3, fdv);
      snprintf(msg, sizeof msg, "%s: dx vs finite differences", what);
      EXPECT_NERR(msg, nerr_at(dx, idx, k, fdv), 1e-6);
      free(env.tmp);
    }
    free(zero), free(c0);
  } else {
    // Forward: the gather (exact); backward: its transpose, a scatter (exact: each x element is
    // read by at most one output).
    int64_t *src = xmalloc((size_t)n * sizeof(int64_t));
    ref_aug_src(op, a, src);
    for (int64_t i = 0; i < n; i++)
      wdx[i] = 0.0;
    for (int64_t q = 0; q < n; q++) {
      if (op == AUG_CUTOUT && src[q] < 0) {
        want[q] = xd[q] * 0.0; // the mask: x · 0
        continue;
      }
      want[q] = src[q] < 0 ? 0.0 : xd[src[q]];
      if (src[q] >= 0) wdx[src[q]] += rd[q];
    }
    snprintf(msg, sizeof msg, "%s: forward", what);
    EXPECT_NERR(msg, nerr(y, want, n), 0.0);
    snprintf(msg, sizeof msg, "%s: dx", what);
    EXPECT_NERR(msg, nerr(dx, wdx, n), 0.0);
    free(src);
  }

  // Rerun (same seed and counter: the same draws), dx over old values, one thread: same bits.
  ganc_ctx one = *ctx;
  one.threads = 1;
  one.scratch = NULL;
  one.scratch_floats = 0;
  aug_forward(&one, op, a, x, y2);
  if (memcmp(y, y2, (size_t)n * sizeof(float))) fail_msg("%s: rerun differs (one thread)", what);
  fill_value(dx2, n, 1e30f);
  aug_backward(ctx, op, a, r, dx2);
  if (memcmp(dx, dx2, (size_t)n * sizeof(float))) fail_msg("%s: dx not overwritten", what);
  ganc_ctx_free(&one);
  free(x), free(y), free(y2), free(r), free(dx), free(dx2), free(xd), free(rd), free(want),
      free(wdx);
}

// The four ops; the blit with both modes on square images, the x-flip alone otherwise.
static void check_aug_all(ganc_ctx *ctx, const aug_case *a, int fd, rng *rg) {
  for (int op = 0; op < 3; op++)
    check_aug(ctx, (aug_op)op, a, fd, rg);
  aug_case b = *a;
  b.modes = a->H == a->W ? 3 : 1;
  check_aug(ctx, AUG_BLIT, &b, 0, rg);
  if (b.modes == 3) {
    b.modes = 2;
    check_aug(ctx, AUG_BLIT, &b, 0, rg);
  }
}

typedef struct {
  ganc_ctx *ctx;
  int what; // 0: y overlaps x, 1: ratio outside [0, 1]
} aug_bad_arg;

static void call_aug_bad(void *p) {
  aug_bad_arg *b = p;
  float buf[2 * 4 * 4];
  const uint64_t two = 2;
  fill_value(buf, 32, 0.0f);
  if (b->what == 0)
    augment_cutout_forward_cpu(b->ctx, 2, 4, 4, 1, 0.5f, buf, buf + 3, 1, &two, 0, NULL);
  if (b->what == 1)
    augment_translation_forward_cpu(b->ctx, 1, 4, 4, 1, 1.5f, buf, buf + 16, 1, &two, 0, NULL);
  if (b->what == 2) // quarter turns of a non-square image
    augment_blit_forward_cpu(b->ctx, 1, 4, 2, 1, 3, buf, buf + 16, 1, &two, 0, NULL);
  if (b->what == 3) {
    double out[2] = {1, 1}, st[3] = {0, 0, 0};
    float p = 0.5f;
    ada_adjust_cpu(b->ctx, out, st, &p, 0.6f, 0.001, 0.5); // an interval below one image
  }
}

// A data-parallel rank's share: images [k, N) called with n0 = k draw what the whole batch's
// call drew for them (the same bits), forward and backward, for every transform.
static void test_augment_rows(void **state) {
  ganc_ctx *ctx = *state;
  const int N = 5, H = 8, W = 6, C = 3, k = 2;
  const int64_t per = (int64_t)H * W * C, n = N * per;
  rng rg = {77};
  const uint64_t four = 4;
  float *x = fnew(n), *all = fnew(n), *part = fnew(n);
  fill(x, n, &rg, 1, 0);
  const float half = 0.5f;
  for (int pi = 0; pi < 2; pi++) // p = 1 (NULL), then ADA's p = 0.5
    for (int op = 0; op < 4; op++)
      for (int bw = 0; bw < 2; bw++) {
        aug_case a = {N,
                      H,
                      W,
                      C,
                      op == AUG_COLOR ? 0.0f : op == AUG_CUTOUT ? 0.5f : 0.25f,
                      9,
                      4,
                      pi ? &half : NULL,
                      1};
        aug_case b = a;
        b.N = N - k;
        (bw ? aug_backward : aug_forward)(ctx, (aug_op)op, &a, x, all);
        // The share, called the way a rank calls it: its own images, first row k.
        if (op == AUG_COLOR)
          (bw ? augment_color_backward_cpu
              : augment_color_forward_cpu)(ctx, b.N, H, W, C, x + k * per, part, 9, &four, k, b.p);
        else if (op == AUG_TRANSLATION)
          (bw ? augment_translation_backward_cpu : augment_translation_forward_cpu)(
              ctx, b.N, H, W, C, b.ratio, x + k * per, part, 9, &four, k, b.p);
        else if (op == AUG_CUTOUT)
          (bw ? augment_cutout_backward_cpu : augment_cutout_forward_cpu)(
              ctx, b.N, H, W, C, b.ratio, x + k * per, part, 9, &four, k, b.p);
        else // the x-flip (8x6 is not square)
          (bw ? augment_blit_backward_cpu : augment_blit_forward_cpu)(
              ctx, b.N, H, W, C, b.modes, x + k * per, part, 9, &four, k, b.p);
        if (memcmp(all + k * per, part, sizeof(float) * (size_t)(b.N * per)))
          fail_msg("%s %s p %g: images [%d, %d) called with n0 = %d differ from the whole batch's "
                   "call",
                   AUG_NAMES[op], bw ? "backward" : "forward", pi ? 0.5 : 1.0, k, N, k);
        // ... and n0 = 0 on the share does not (the rows would repeat the first ranks' draws);
        // with p = 1 and a draw of many values (a flip is one of two: the rows could agree).
        if (!pi && op != AUG_BLIT && (op != AUG_COLOR || !bw)) {
          aug_forward(ctx, (aug_op)op, &b, x + k * per, part);
          if (!bw && !memcmp(all + k * per, part, sizeof(float) * (size_t)(b.N * per)))
            fail_msg("%s: n0 changes nothing", AUG_NAMES[op]);
        }
      }
  free(x);
  free(all);
  free(part);
}

static void test_augment(void **state) {
  ganc_ctx *ctx = *state;
  rng rg = {14};
  const uint64_t seed = 0x0123456789ABCDEFull;

  // Every border case of the windows and shifts: tiny and odd images, 1 and 3 channels, ratios
  // from none to the whole image (shifts past the frame), three counters of 64 images for each
  // channel count. Each (H, W, ratio) must have met every shift and every cutout offset its
  // range allows (bit v: row value v, bit 32 + v: column value v; shifts counted from −s).
  static const float ratios[] = {0.0f, 0.125f, 0.5f, 1.0f};
  for (int H = 1; H <= 5; H++)
    for (int W = 1; W <= 7; W++)
      for (int ri = 0; ri < 4; ri++) {
        const float ratio = ratios[ri];
        uint64_t seen_t = 0, seen_c = 0;
        for (int C = 1; C <= 3; C += 2)
          for (uint64_t ctr = 0; ctr < 3; ctr++) {
            const aug_case a = {64,   H, W, C, ratio, seed, ((uint64_t)1 << 40) + 3 * C + ctr,
                                NULL, 0};
            check_aug_all(ctx, &a, 0, &rg);
            for (int n = 0; n < a.N; n++) {
              const int sh = aug_side(H, ratio), sw = aug_side(W, ratio);
              seen_t |= 1ull << (aug_randint(aug_u32(seed, a.counter, n, 1, 0), -sh, sh + 1) + sh);
              seen_t |=
                  1ull << (32 + aug_randint(aug_u32(seed, a.counter, n, 1, 1), -sw, sw + 1) + sw);
              const int ch = aug_side(H, ratio), cw = aug_side(W, ratio);
              seen_c |= 1ull << aug_randint(aug_u32(seed, a.counter, n, 2, 0), 0, H + 1 - ch % 2);
              seen_c |=
                  1ull << (32 + aug_randint(aug_u32(seed, a.counter, n, 2, 1), 0, W + 1 - cw % 2));
            }
          }
        const int sh = aug_side(H, ratio), sw = aug_side(W, ratio);
        const int ch = aug_side(H, ratio), cw = aug_side(W, ratio);
        const int shifts_i = 2 * sh + 1, shifts_j = 2 * sw + 1;
        const int offsets_i = H + 1 - ch % 2, offsets_j = W + 1 - cw % 2;
        const uint64_t all_t = ((1ull << shifts_i) - 1) | ((1ull << shifts_j) - 1) << 32;
        const uint64_t all_c = ((1ull << offsets_i) - 1) | ((1ull << offsets_j) - 1) << 32;
        if (seen_t != all_t || seen_c != all_c)
          fail_msg("%dx%d ratio %g: shifts seen %#llx of %#llx, offsets %#llx of %#llx", H, W,
                   (double)ratio, (unsigned long long)seen_t, (unsigned long long)all_t,
                   (unsigned long long)seen_c, (unsigned long long)all_c);
      }

  // Odd shapes with finite differences; the real sizes (the parallel path at 64x64x3).
  static const aug_case cases[] = {
      {3, 5, 7, 3, 0.125f, 1, 0, NULL, 0},
      {2, 9, 6, 1, 0.5f, 2, 7, NULL, 0},
      {1, 17, 3, 4, 0.3f, 3, ~0ull, NULL, 0},
      {8, 32, 32, 1, 0.125f, 4, 123456789, NULL, 0},
      {4, 64, 64, 3, 0.125f, 5, 1ull << 32, NULL, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    check_aug_all(ctx, &cases[i], 1, &rg);
    aug_case c = cases[i];
    c.ratio = 0.5f; // DiffAugment's cutout ratio
    check_aug(ctx, AUG_CUTOUT, &c, 0, &rg);
  }

  // The draws: another counter, another seed, another image: other numbers. All images the
  // same, so each output image shows its own draws.
  {
    const int N = 8, H = 32, W = 32, C = 3;
    const int64_t per = (int64_t)H * W * C, n = N * per;
    float *x = fnew(n), *y0 = fnew(n), *y1 = fnew(n);
    fill(x, per, &rg, 1, 0);
    for (int i = 1; i < N; i++)
      memcpy(x + i * per, x, (size_t)per * sizeof(float));
    for (int op = 0; op < 3; op++) {
      const aug_case a = {N, H, W, C, op == AUG_CUTOUT ? 0.5f : 0.125f, seed, 77, NULL, 0};
      aug_case b = a;
      aug_forward(ctx, (aug_op)op, &a, x, y0);
      b.counter = 78;
      aug_forward(ctx, (aug_op)op, &b, x, y1);
      if (!memcmp(y0, y1, (size_t)n * sizeof(float)))
        fail_msg("%s: counters 77 and 78 gave the same batch", AUG_NAMES[op]);
      b.counter = 77, b.seed = seed + 1;
      aug_forward(ctx, (aug_op)op, &b, x, y1);
      if (!memcmp(y0, y1, (size_t)n * sizeof(float)))
        fail_msg("%s: seeds %#llx and %#llx gave the same batch", AUG_NAMES[op],
                 (unsigned long long)seed, (unsigned long long)b.seed);
      int distinct = 0;
      for (int i = 1; i < N; i++)
        distinct += memcmp(y0, y0 + i * per, (size_t)per * sizeof(float)) != 0;
      // Colour draws are continuous: every image differs from the first. Shifts and windows can
      // repeat (81 and 1089 choices here), but not for all 7.
      if (op == AUG_COLOR ? distinct != N - 1 : distinct == 0)
        fail_msg("%s: %d of %d images differ from image 0", AUG_NAMES[op], distinct, N - 1);
    }
    free(x), free(y0), free(y1);
  }
  // Over 16384 images, each shift of [−4, 4] and each cutout offset of [0, 33) comes about
  // equally often (images draw independently): every count within 25% of its mean.
  {
    int tcount[2][9] = {{0}}, ccount[2][33] = {{0}};
    for (int n = 0; n < 16384; n++)
      for (int w = 0; w < 2; w++) {
        tcount[w][aug_randint(aug_u32(seed, 5, n, 1, w), -4, 5) + 4]++;
        ccount[w][aug_randint(aug_u32(seed, 5, n, 2, w), 0, 33)]++;
      }
    for (int w = 0; w < 2; w++) {
      for (int v = 0; v < 9; v++)
        if (fabs(tcount[w][v] - 16384.0 / 9) > 0.25 * 16384.0 / 9)
          fail_msg("shift %d of word %d drawn %d times of 16384", v - 4, w, tcount[w][v]);
      for (int v = 0; v < 33; v++)
        if (fabs(ccount[w][v] - 16384.0 / 33) > 0.25 * 16384.0 / 33)
          fail_msg("cutout offset %d of word %d drawn %d times of 16384", v, w, ccount[w][v]);
    }
  }

  // Constant images: the colour is then the brightness alone, exactly (the pixel and image means
  // are the value itself, so saturation and contrast change nothing), for 1 and 3 channels.
  for (int C = 1; C <= 3; C += 2) {
    const aug_case a = {5, 6, 7, C, 0.0f, seed, 9, NULL, 0};
    const int64_t per = 6 * 7 * C, n = 5 * per;
    float *x = fnew(n), *y = fnew(n);
    for (int i = 0; i < 5; i++)
      fill_value(x + i * per, per, 0.375f * (float)(i - 2));
    augment_color_forward_cpu(ctx, a.N, a.H, a.W, a.C, x, y, a.seed, &a.counter, 0, NULL);
    for (int i = 0; i < 5; i++) {
      const float want = (float)((double)x[i * per] + aug_r(aug_u32(seed, 9, i, 0, 0)) - 0.5);
      for (int64_t k = 0; k < per; k++)
        if (memcmp(&y[i * per + k], &want, sizeof want))
          fail_msg("colour of a constant image, C = %d: %.9g, want %.9g", C, y[i * per + k], want);
    }
    free(x), free(y);
  }

  // Overlapping input and output, and a ratio outside [0, 1], are checked errors.
  char msg[512];
  aug_bad_arg b0 = {ctx, 0}, b1 = {ctx, 1};
  assert_int_equal(exit_status_of(call_aug_bad, &b0, msg, sizeof msg), 1);
  if (!strstr(msg, "overlaps")) fail_msg("augment_cutout_forward on itself said: %s", msg);
  assert_int_equal(exit_status_of(call_aug_bad, &b1, msg, sizeof msg), 1);
  if (!strstr(msg, "ratio 1.5 outside [0, 1]")) fail_msg("ratio 1.5 said: %s", msg);
  aug_bad_arg b2 = {ctx, 2}, b3 = {ctx, 3};
  assert_int_equal(exit_status_of(call_aug_bad, &b2, msg, sizeof msg), 1);
  if (!strstr(msg, "need square")) fail_msg("quarter turns of 4x2 said: %s", msg);
  assert_int_equal(exit_status_of(call_aug_bad, &b3, msg, sizeof msg), 1);
  if (!strstr(msg, "interval 0.5")) fail_msg("an interval of 0.5 images said: %s", msg);
}

// ADA's p (ops/augment_core.h): each transform applies to each image with probability p (its
// own draw), the image copied exactly otherwise; p = 1 is every image (the DiffAugment ops'
// bits before p existed: NULL), p = 0 none. Against the reference at several p, with finite
// differences for the colour; over many images each transform applies to about p of them.
static void test_augment_p(void **state) {
  ganc_ctx *ctx = *state;
  rng rg = {15};
  static const float ps[] = {0.0f, 0.25f, 0.5f, 0.9f, 1.0f};
  for (size_t i = 0; i < sizeof ps / sizeof *ps; i++) {
    aug_case a = {24, 8, 8, 3, 0.25f, 0xABCDull, 41 + i, &ps[i], 0};
    check_aug_all(ctx, &a, i == 2, &rg);
    aug_case b = {9, 6, 5, 1, 0.5f, 7, 3, &ps[i], 0}; // not square: the x-flip alone
    check_aug_all(ctx, &b, 0, &rg);
  }
  // p = 1 and NULL give the same bits; p = 0 copies every image.
  const int N = 16, H = 8, W = 8, C = 3;
  const int64_t per = (int64_t)H * W * C, n = N * per;
  float *x = fnew(n), *y0 = fnew(n), *y1 = fnew(n);
  fill(x, n, &rg, 1, 0);
  const float one = 1.0f, zero = 0.0f, half = 0.5f;
  for (int op = 0; op < 4; op++) {
    aug_case a = {N, H, W, C, 0.25f, 99, 5, NULL, 3};
    aug_forward(ctx, (aug_op)op, &a, x, y0);
    a.p = &one;
    aug_forward(ctx, (aug_op)op, &a, x, y1);
    if (memcmp(y0, y1, (size_t)n * sizeof(float)))
      fail_msg("%s: p = 1 differs from NULL (always)", AUG_NAMES[op]);
    a.p = &zero;
    aug_forward(ctx, (aug_op)op, &a, x, y1);
    if (memcmp(x, y1, (size_t)n * sizeof(float)))
      fail_msg("%s: p = 0 changed an image", AUG_NAMES[op]);
    // p = 0.5: some images changed, some not.
    a.p = &half;
    aug_forward(ctx, (aug_op)op, &a, x, y1);
    int changed = 0;
    for (int k = 0; k < N; k++)
      changed += memcmp(x + k * per, y1 + k * per, (size_t)per * sizeof(float)) != 0;
    if (changed == 0 || changed == N)
      fail_msg("%s: p = 0.5 changed %d of %d images", AUG_NAMES[op], changed, N);
  }
  free(x), free(y0), free(y1);
  // Through the ops, over 20000 4x4 images at p = 0.3: the images each op changed, within 5%
  // of what p makes (sd ~0.3% of 20000): colour and cutout (ratio 0.5: a 2x2 window) change an
  // image whenever applied, so 0.3; the x-flip alone 0.3 / 2; the quarter turns alone 0.3 · 3/4
  // (k = 0 is drawn too). Every image distinct under every flip and turn (values 16·k + i).
  {
    const float p3 = 0.3f;
    const int NF = 20000;
    const int64_t nf = (int64_t)NF * 16;
    float *xf = fnew(nf), *yf = fnew(nf);
    for (int64_t i = 0; i < nf; i++)
      xf[i] = (float)i;
    static const struct {
      aug_op op;
      int modes;
      double want;
    } fq[] = {{AUG_COLOR, 0, 0.3}, {AUG_CUTOUT, 0, 0.3}, {AUG_BLIT, 1, 0.15}, {AUG_BLIT, 2, 0.225}};
    for (size_t q = 0; q < sizeof fq / sizeof *fq; q++) {
      const aug_case f = {NF, 4, 4, 1, 0.5f, 0x5EEDull, 12, &p3, fq[q].modes};
      aug_forward(ctx, fq[q].op, &f, xf, yf);
      int changed = 0;
      for (int k = 0; k < NF; k++)
        changed += memcmp(xf + 16 * k, yf + 16 * k, 16 * sizeof(float)) != 0;
      if (fabs(changed / (double)NF - fq[q].want) > 0.05 * fq[q].want)
        fail_msg("%s modes %d at p = 0.3 changed %d of %d images (want about %g)",
                 AUG_NAMES[fq[q].op], fq[q].modes, changed, NF, fq[q].want * NF);
    }
    free(xf), free(yf);
  }
}

// ADA's controller (ops/augment_core.h): ada_signs counts the signs of the reals' outputs less
// the fakes' mean exactly (zeros and NaN count 0; a shift of every output changes nothing);
// ada_adjust accumulates until the interval, then moves p by sign(r_t − target) · images ·
// per_image, clamped to [0, 1], records r_t and restarts the counts.
static void test_ada(void **state) {
  ganc_ctx *ctx = *state;
  // Fakes of mean 0.25 (1.75 / 7): three reals above it, one below, two at it, a NaN.
  const float l[7] = {0.5f, -0.25f, 0.25f, 0.25f, NAN, 3.0f, 0.2500001f};
  const float f[7] = {0.5f, 0.0f, 0.0f, 1.0f, 0.25f, 0.0f, 0.0f};
  double out[2] = {-1, -1}, fs[2] = {-1, -1};
  ada_sum_cpu(ctx, 7, f, fs);
  if (fs[0] != 1.75 || fs[1] != 7.0) fail_msg("sum of 7 fakes: %g of %g", fs[0], fs[1]);
  ada_signs_cpu(ctx, 7, l, fs, out);
  if (out[0] != 2.0 || out[1] != 7.0) fail_msg("signs of 7 logits: %g of %g", out[0], out[1]);
  // Every output shifted by the same amount: the same count.
  float l2[7], f2[7];
  for (int i = 0; i < 7; i++)
    l2[i] = l[i] + 0.5f, f2[i] = f[i] + 0.5f;
  double out2[2], fs2[2];
  ada_sum_cpu(ctx, 7, f2, fs2);
  ada_signs_cpu(ctx, 7, l2, fs2, out2);
  if (out2[0] != out[0]) fail_msg("signs after a shift by 0.5: %g, before %g", out2[0], out[0]);
  double st[3] = {0, 0, NAN};
  float p = 0.5f;
  // r = 2/7 < 0.6: below the target; interval 14: the first call only accumulates.
  ada_adjust_cpu(ctx, out, st, &p, 0.6f, 0.001, 14);
  if (p != 0.5f || st[0] != 2 || st[1] != 7 || !isnan(st[2]))
    fail_msg("before the interval: p %g, state %g %g %g", p, st[0], st[1], st[2]);
  ada_adjust_cpu(ctx, out, st, &p, 0.6f, 0.001, 14);
  if (p != (float)(0.5 - 14 * 0.001) || st[0] != 0 || st[1] != 0 || st[2] != 4.0 / 14)
    fail_msg("at the interval (r below the target): p %.9g, state %g %g %g", p, st[0], st[1],
             st[2]);
  // Above the target: up; and clamped at 1, then at 0.
  const double sure[2] = {10, 10};
  ada_adjust_cpu(ctx, sure, st, &p, 0.6f, 0.001, 10);
  if (p != (float)((double)(float)(0.5 - 14 * 0.001) + 0.01)) fail_msg("r = 1 > 0.6: p %.9g", p);
  ada_adjust_cpu(ctx, sure, st, &p, 0.6f, 0.1, 10);
  if (p != 1.0f) fail_msg("clamped at 1: p %.9g", p);
  const double unsure[2] = {-10, 10};
  ada_adjust_cpu(ctx, unsure, st, &p, 0.6f, 0.5, 10);
  if (p != 0.0f || st[2] != -1.0) fail_msg("clamped at 0: p %.9g, r %g", p, st[2]);
  // r exactly at the target: p stays.
  const double at[2] = {5, 10};
  p = 0.25f;
  ada_adjust_cpu(ctx, at, st, &p, 0.5f, 0.01, 10);
  if (p != 0.25f) fail_msg("r = target: p %.9g", p);
}

// ---- feature-network ops (ops.def: pool2d, pad2d, channel_copy, resize_bilinear) -------------
// Each against a reference written here from the definitions (PyTorch's max_pool2d, avg_pool2d
// with and without count_include_pad, F.pad, torch.cat, F.interpolate bilinear with
// align_corners = False), outputs poisoned first, plus values worked out by hand.

static double ref_pool(const float *x, int H, int W, int C, int K, int st, int pad, int mode, int n,
                       int p, int q, int c) {
  double m = -INFINITY, s = 0;
  int cnt = 0;
  for (int a = 0; a < K; a++)
    for (int b = 0; b < K; b++) {
      const int i = p * st - pad + a, j = q * st - pad + b;
      if (i < 0 || i >= H || j < 0 || j >= W) continue;
      const double v = x[(((int64_t)n * H + i) * W + j) * C + c];
      m = v > m ? v : m;
      s += v;
      cnt++;
    }
  return mode == 0 ? m : s / (mode == 1 ? cnt : K * K);
}

static double ref_resize(const float *x, int H, int W, int C, int P, int Q, int n, int p, int q,
                         int c) {
  double sy = (p + 0.5) * H / P - 0.5, sx = (q + 0.5) * W / Q - 0.5;
  sy = sy < 0 ? 0 : sy;
  sx = sx < 0 ? 0 : sx;
  const int y0 = (int)floor(sy), x0 = (int)floor(sx);
  const int y1 = y0 + 1 < H ? y0 + 1 : H - 1, x1 = x0 + 1 < W ? x0 + 1 : W - 1;
  const double ly = sy - y0, lx = sx - x0;
#define X(i, j) ((double)x[(((int64_t)n * H + (i)) * W + (j)) * C + c])
  return (1 - ly) * ((1 - lx) * X(y0, x0) + lx * X(y0, x1)) +
         ly * ((1 - lx) * X(y1, x0) + lx * X(y1, x1));
#undef X
}

static void call_pool_bad(void *p) {
  float buf[16] = {0};
  pool2d_forward_cpu(p, 1, 4, 4, 1, 3, 1, 3, 0, buf, buf); // pad >= K
}

static void test_featops(void **state) {
  ganc_ctx *ctx = *state;
  rng rg = {91};
  // pool2d: Inception's windows (3x3 stride 2; 3x3 stride 1 pad 1 max and both means; the final
  // 8x8 mean) on odd sizes and channel counts.
  const int pc[][7] = {{2, 9, 11, 5, 3, 2, 0},
                       {1, 7, 7, 3, 3, 1, 1},
                       {2, 8, 8, 6, 8, 1, 0},
                       {1, 5, 4, 2, 2, 2, 1},
                       {3, 6, 6, 1, 1, 1, 0}};
  for (size_t t = 0; t < sizeof pc / sizeof pc[0]; t++)
    for (int mode = 0; mode < 3; mode++) {
      const int N = pc[t][0], H = pc[t][1], W = pc[t][2], C = pc[t][3], K = pc[t][4], st = pc[t][5],
                pad = pc[t][6];
      const int P = (H + 2 * pad - K) / st + 1, Q = (W + 2 * pad - K) / st + 1;
      const int64_t nx = (int64_t)N * H * W * C, ny = (int64_t)N * P * Q * C;
      float *x = fnew(nx), *y = fnew(ny);
      fill(x, nx, &rg, 2.0, -3.0); // mostly negative: zero padding must never win the maximum
      poison(y, ny);
      pool2d_forward_cpu(ctx, N, H, W, C, K, st, pad, mode, x, y);
      for (int n = 0; n < N; n++)
        for (int p = 0; p < P; p++)
          for (int q = 0; q < Q; q++)
            for (int c = 0; c < C; c++) {
              const float want = (float)ref_pool(x, H, W, C, K, st, pad, mode, n, p, q, c);
              const float got = y[(((int64_t)n * P + p) * Q + q) * C + c];
              if (got != want)
                fail_msg("pool2d mode %d [%d,%d,%d,%d] K%d s%d p%d at (%d,%d,%d,%d): %.9g, want "
                         "%.9g",
                         mode, N, H, W, C, K, st, pad, n, p, q, c, got, want);
            }
      free(x);
      free(y);
    }
  { // by hand: ones, 3x3 stride 1 pad 1: mean of the valid positions 1 everywhere; over all 9,
    // a corner 4/9, an edge 6/9, inside 1
    float x[16], y[16];
    fill_value(x, 16, 1.0f);
    pool2d_forward_cpu(ctx, 1, 4, 4, 1, 3, 1, 1, 1, x, y);
    for (int i = 0; i < 16; i++)
      assert_true(y[i] == 1.0f);
    pool2d_forward_cpu(ctx, 1, 4, 4, 1, 3, 1, 1, 2, x, y);
    assert_true(y[0] == (float)(4.0 / 9) && y[1] == (float)(6.0 / 9) && y[5] == 1.0f);
  }
  // pad2d: the frame is zero, the inside a copy.
  {
    const int N = 2, H = 3, W = 4, C = 3, ph = 1, pw = 3, Hp = H + 2, Wp = W + 6;
    float *x = fnew(N * H * W * C), *y = fnew(N * Hp * Wp * C);
    fill(x, N * H * W * C, &rg, 1.0, 0.5);
    poison(y, N * Hp * Wp * C);
    pad2d_forward_cpu(ctx, N, H, W, C, ph, pw, x, y);
    for (int n = 0; n < N; n++)
      for (int i = 0; i < Hp; i++)
        for (int j = 0; j < Wp; j++)
          for (int c = 0; c < C; c++) {
            const int si = i - ph, sj = j - pw;
            const float want =
                si >= 0 && si < H && sj >= 0 && sj < W ? x[((n * H + si) * W + sj) * C + c] : 0.0f;
            assert_true(y[((n * Hp + i) * Wp + j) * C + c] == want);
          }
    free(x);
    free(y);
  }
  // channel_copy: two branches into their slots of a concatenation; the rest untouched.
  {
    const int M = 37, Cy = 12;
    float *a = fnew(M * 5), *b = fnew(M * 4), *y = fnew(M * Cy);
    fill(a, M * 5, &rg, 1.0, 0.0);
    fill(b, M * 4, &rg, 1.0, 0.0);
    fill_value(y, M * Cy, 7.0f);
    channel_copy_cpu(ctx, M, 5, Cy, 0, a, y);
    channel_copy_cpu(ctx, M, 4, Cy, 8, b, y);
    for (int m = 0; m < M; m++)
      for (int c = 0; c < Cy; c++) {
        const float want = c < 5 ? a[m * 5 + c] : c >= 8 ? b[m * 4 + c - 8] : 7.0f;
        assert_true(y[m * Cy + c] == want);
      }
    free(a);
    free(b);
    free(y);
  }
  // resize_bilinear: up (FMNIST 28 → Inception's 299 along one axis, small here), down, and the
  // identity; within 1 ulp of the reference (its own operation order).
  const int rc[][6] = {
      {1, 5, 7, 3, 11, 13}, {2, 28, 9, 1, 57, 4}, {1, 9, 9, 2, 4, 5}, {1, 6, 6, 3, 6, 6}};
  for (size_t t = 0; t < sizeof rc / sizeof rc[0]; t++) {
    const int N = rc[t][0], H = rc[t][1], W = rc[t][2], C = rc[t][3], P = rc[t][4], Q = rc[t][5];
    const int64_t nx = (int64_t)N * H * W * C, ny = (int64_t)N * P * Q * C;
    float *x = fnew(nx), *y = fnew(ny);
    fill(x, nx, &rg, 1.0, 0.0);
    poison(y, ny);
    resize_bilinear_forward_cpu(ctx, N, H, W, C, P, Q, x, y);
    for (int n = 0; n < N; n++)
      for (int p = 0; p < P; p++)
        for (int q = 0; q < Q; q++)
          for (int c = 0; c < C; c++) {
            const double want = ref_resize(x, H, W, C, P, Q, n, p, q, c);
            const float got = y[(((int64_t)n * P + p) * Q + q) * C + c];
            if (!(fabs(got - want) <= 1.2e-7 * fabs(want) + 1e-30))
              fail_msg("resize [%d,%d]→[%d,%d] at (%d,%d,%d,%d): %.9g, want %.9g", H, W, P, Q, n, p,
                       q, c, got, want);
            if (P == H && Q == W && got != x[(((int64_t)n * H + p) * W + q) * C + c])
              fail_msg("resize to the same size is not the identity");
          }
    free(x);
    free(y);
  }
  { // by hand: [a, b] to 4 columns is [a, (3a + b)/4, (a + 3b)/4, b]
    const float x[2] = {1.0f, 5.0f};
    float y[4];
    resize_bilinear_forward_cpu(ctx, 1, 1, 2, 1, 1, 4, x, y);
    assert_true(y[0] == 1.0f && y[1] == 2.0f && y[2] == 4.0f && y[3] == 5.0f);
  }
  char msg[400];
  assert_int_equal(exit_status_of(call_pool_bad, ctx, msg, sizeof msg), 1);
  if (!strstr(msg, "pad")) fail_msg("pool2d with pad >= K said: %s", msg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ctx_scratch),
      cmocka_unit_test(test_conv_shape_make),
      cmocka_unit_test(test_conv_cases),
      cmocka_unit_test(test_conv_batching),
      cmocka_unit_test(test_conv_precision),
      cmocka_unit_test(test_bf16_storage),
      cmocka_unit_test(test_batchnorm),
      cmocka_unit_test(test_batchnorm_reapply),
      cmocka_unit_test(test_batchnorm_slots),
      cmocka_unit_test(test_activations),
      cmocka_unit_test(test_losses),
      cmocka_unit_test(test_lecam),
      cmocka_unit_test(test_adam_ema),
      cmocka_unit_test(test_pixels),
      cmocka_unit_test(test_resample),
      cmocka_unit_test(test_tensor_add),
      cmocka_unit_test(test_sum_pool),
      cmocka_unit_test(test_spectral),
      cmocka_unit_test(test_cond),
      cmocka_unit_test(test_augment),
      cmocka_unit_test(test_augment_p),
      cmocka_unit_test(test_ada),
      cmocka_unit_test(test_augment_rows),
      cmocka_unit_test(test_featops),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
