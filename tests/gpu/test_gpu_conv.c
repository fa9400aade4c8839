// test_gpu_conv.c — the CUDA convolutions (kernels/conv.cu) against their CPU twins
// (src/ops/conv.c) and against cuDNN (kernels/cudnn.cu), role by role, on every conv layer shape
// of the shipped DCGAN configs and on awkward shapes. Needs a GPU: without one it prints
// "SKIP: <reason>" and exits 77, which ctest reports as skipped (label "gpu").
//
// Per case: fresh random inputs (a fixed seed), every output POISONED with NaN before each call
// (an element a kernel forgets to write, or reads before writing, fails the comparison), then
//   ours vs CPU      the CPU twin on host copies (a CPU context), the independent reference;
//   ours vs cuDNN    cuDNN's fastest FP32 algorithm (kernels/cudnn.cu forces FMA math, no TF32);
//   cuDNN vs CPU     printed for information, so that a failure can be pinned on the right side;
//   determinism      our kernel twice on the same inputs gives the same bits.
// backward_weight checks the accumulate rule: dw starts at a known nonzero pattern and must end
// at pattern + gradient; the comparison is on the increment dw_after − pattern against the
// gradient (the CPU twin from dw = 0), so a kernel that overwrote dw would be off by the pattern.
//
// Thresholds on the normalized error max |a − b| / max |r|, where r is the same role computed by
// the CPU twin on the absolute values of its inputs (|x|, |w|, |dy|): each output's Σ |products|,
// the scale that bounds the rounding of a sum in any order. (Dividing by max |b| instead fails by
// chance where the few outputs of a small case happen to cancel: the D head at batch 1 has a
// single output, a sum of 8192 products of either sign.)
//   role              ours vs CPU   ours vs cuDNN   compared tensor
//   forward           1e-5          1e-5            y  [N,P,Q,K]
//   backward_data     1e-5          1e-5            dx [N,H,W,C]
//   backward_weight   1e-5          1e-5            dw − pattern [R,S,C,K]
// FP32 sums of up to R·S·C = 8192 terms (the 64x64 D head) in different orders differ by well
// under 1e-6 of that scale; 1e-5 leaves room for that and none for an indexing error, which moves
// whole products.
//
// Built as test_gpu_conv_emu (GANC_CUDEMU), the same cases run under tests/gpu/cudemu, the CUDA
// emulator of the tests, in CI: against the CPU twin only (no cuDNN there), every output buffer of
// exactly its size so that a write past it is caught.
//
// Then every variant of the table (kernels/conv.cu) on the same inputs: run_variants says how.
//
// Usage: test_gpu_conv [--list] [--match TEXT]... [--no-cudnn]   (--list prints the cases and
// exits, needs no GPU; --match, up to 16 times, runs only the cases whose name contains one of the
// TEXTs; --no-cudnn compares with the CPU twin only and never initialises cuDNN, for the
// compute-sanitizer runs, where cuDNN's own kernels would be instrumented too)
// Exit: 0 all passed, 1 a case failed, 2 bad usage, 77 no usable GPU.
#include "core/check.h"      // xmalloc
#include "core/ctx.h"        // ganc_ctx, ganc_ctx_init_cpu
#include "core/util.h"       // ganc_read_file
#include "kernels/kernels.h" // the CUDA and cuDNN launchers, device memory, ganc_cuda_ctx_init
#include "ops/ops.h"         // conv_shape, the CPU twins
#include "ops/precision.h"   // ganc_round_bf16: operands stored in bf16
#include "testutil.h"        // tu_tmpdir

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SKIP = 77 };

// Built against tests/gpu/cudemu (test_gpu_conv_emu: the CUDA emulator of the tests, in CI), the
// kernels run on the CPU and there is no cuDNN to compare with: the CPU twin is the reference.
#ifdef GANC_CUDEMU
#define HAVE_CUDNN 0
#define EMULATED 1
#else
#define HAVE_CUDNN 1
#define EMULATED 0
#endif
static int use_cudnn = HAVE_CUDNN; // 0 with --no-cudnn

// Thresholds of the table above, indexed by role.
enum { FWD = 0, BWD_DATA = 1, BWD_WEIGHT = 2, NROLES = 3 };
static const char *const role_name[NROLES] = {"fwd", "bwd_data", "bwd_weight"};
static const double tol_cpu[NROLES] = {1e-5, 1e-5, 1e-5};
static const double tol_cudnn[NROLES] = {1e-5, 1e-5, 1e-5};

// ---- the cases ----------------------------------------------------------------------------------

typedef struct {
  char name[64]; // where the shape comes from: "fmnist32 D b1.conv", "odd 3x3 s1 p1"
  conv_shape s;
} conv_case;

typedef struct {
  conv_case *v;
  int n, cap;
} case_list;

static void add_case(case_list *l, const char *name, int N, int H, int W, int C, int K, int R,
                     int S, int stride, int pad) {
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 64;
    l->v = xrealloc(l->v, (size_t)l->cap * sizeof *l->v);
  }
  conv_case *c = &l->v[l->n];
  snprintf(c->name, sizeof c->name, "%s", name);
  if (conv_shape_make(&c->s, N, H, W, C, K, R, S, stride, pad) != 0)
    ganc_die(GANC_EXIT_RUNTIME, "test table: impossible shape for %s", name);
  l->n++;
}

// splitmix64: a fixed seed gives the same inputs on every run and machine.
static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static int imin(int a, int b) { return a < b ? a : b; }

// The conv layers of one DCGAN config at batch N, as src/model/dcgan.c builds them (z_dim 100,
// g_max = d_max = 512: the defaults, unchanged by the shipped recipes) and as net.c runs them:
// a generator layer, the transposed conv in [h,h,c_in] → out [2h,2h,c_out] (or 1x1 → 4x4 for the
// first), is run as its adjoint, the ordinary conv out [N,2h,2h,c_out] → in [N,h,h,c_in]
// (ops.h); the discriminator's are 4x4 stride-2 pad-1 convs down to 4x4 and the 4x4 stride-1
// pad-0 head to one logit.
static void add_dcgan(case_list *l, const char *cfg, int res, int channels, int base, int N) {
  const int z_dim = 100, g_max = 512, d_max = 512;
  int L = 0; // upsamplings from 4x4 = downsamplings to 4x4
  while ((4 << L) < res)
    L++;
  char nm[64];
  int in_c = z_dim, hw = 1; // the generator's input: z as [1, 1, z_dim]
  for (int j = 0; j < L; j++) {
    const int ch = imin(base << (L - 1 - j), g_max);
    snprintf(nm, sizeof nm, "%s G b%d.conv", cfg, j);
    if (j == 0) {
      add_case(l, nm, N, 4, 4, ch, in_c, 4, 4, 1, 0); // convT 1x1 → 4x4
      hw = 4;
    } else {
      add_case(l, nm, N, 2 * hw, 2 * hw, ch, in_c, 4, 4, 2, 1); // convT h → 2h
      hw *= 2;
    }
    in_c = ch;
  }
  snprintf(nm, sizeof nm, "%s G out.conv", cfg);
  add_case(l, nm, N, 2 * hw, 2 * hw, channels, in_c, 4, 4, 2, 1);
  int c = channels;
  hw = res;
  for (int i = 0; i < L; i++) {
    const int k = imin(base << i, d_max);
    snprintf(nm, sizeof nm, "%s D b%d.conv", cfg, i);
    add_case(l, nm, N, hw, hw, c, k, 4, 4, 2, 1);
    c = k;
    hw /= 2;
  }
  snprintf(nm, sizeof nm, "%s D head.conv", cfg);
  add_case(l, nm, N, hw, hw, c, 1, 4, 4, 1, 0);
}

static void build_cases(case_list *l) {
  // configs/fmnist32.ini (and the defaults at 32x32x1), configs/cpu-demo.ini, configs/dcgan64.ini
  add_dcgan(l, "fmnist32", 32, 1, 64, 4);
  add_dcgan(l, "cpu-demo", 32, 1, 32, 4);
  add_dcgan(l, "dcgan64", 64, 3, 64, 4);
  // Batches 1 and 3 (odd, below a tile of rows at the small layers) on the default family.
  add_dcgan(l, "fmnist32/N1", 32, 1, 64, 1);
  add_dcgan(l, "fmnist32/N3", 32, 1, 64, 3);
  // Awkward shapes: channel counts 1, 3, 5, 7, 13 and just over a tile (65, 67, 70, 130), H != W,
  // 1x1 outputs, 3x3 stride 1 pad 1, stride 2 and 3, pad 0/1/2, a non-square kernel.
  add_case(l, "odd 3x3 s1 p1", 3, 7, 5, 3, 5, 3, 3, 1, 1);
  add_case(l, "odd 3x3 s2 p1", 2, 9, 13, 7, 13, 3, 3, 2, 1);
  add_case(l, "odd 4x4 s2 p1", 1, 5, 6, 13, 7, 4, 4, 2, 1);
  add_case(l, "odd 4x4 s1 p0 to 1x1", 3, 4, 4, 5, 3, 4, 4, 1, 0);
  add_case(l, "odd 3x3 s1 p1 K>tile", 2, 2, 3, 13, 67, 3, 3, 1, 1);
  add_case(l, "odd 4x4 s2 p1 K=130", 2, 11, 6, 5, 130, 4, 4, 2, 1);
  add_case(l, "odd 3x3 s1 p0 C=70", 3, 17, 9, 70, 3, 3, 3, 1, 0);
  add_case(l, "odd 4x4 s2 p0", 1, 6, 10, 3, 7, 4, 4, 2, 0);
  add_case(l, "odd 3x3 s1 p1 C=K=1", 2, 8, 8, 1, 1, 3, 3, 1, 1);
  add_case(l, "odd 3x3 s1 p1 C=67 K=65", 2, 5, 5, 67, 65, 3, 3, 1, 1);
  add_case(l, "odd 3x4 s2 p1", 2, 6, 9, 5, 6, 3, 4, 2, 1);
  add_case(l, "odd 5x3 s3 p2", 1, 5, 12, 9, 8, 5, 3, 3, 2);
  // Long reductions for backward_weight's split-K: 3 uneven splits; 8 splits of a DCGAN-like layer.
  add_case(l, "split-K 3x3 s1 p1", 5, 15, 15, 3, 9, 3, 3, 1, 1);
  add_case(l, "split-K 4x4 s2 p1 N64", 64, 16, 16, 3, 5, 4, 4, 2, 1);
  // Channels in multiples of 8 (variants that move 8-channel rows: mma-bf16-g128) at the edges of
  // its 128x128x32 tiles: M below one row tile and K over one column tile with a partial second
  // (Kd 72: a partial last slice), three row tiles of stride 2 with padding, a 1x1 whose last
  // slice holds one row of 8; uneven backward-weight splits.
  add_case(l, "odd8 3x3 s1 p1 K=136", 2, 9, 7, 8, 136, 3, 3, 1, 1);
  add_case(l, "odd8 4x4 s2 p1 M=330", 3, 20, 22, 24, 16, 4, 4, 2, 1);
  add_case(l, "odd8 1x1 s1 p0 C=40", 1, 13, 13, 40, 48, 1, 1, 1, 0);
  // One slice in every role (fewer than a pipeline's stages: mma-bf16-g128-cp3), three phases
  // without taps at stride 2.
  add_case(l, "odd8 1x1 s2 p0 C=8 K=16", 2, 8, 6, 8, 16, 1, 1, 2, 0);
  add_case(l, "split-K8 3x3 s1 p1", 5, 23, 23, 8, 8, 3, 3, 1, 1); // 5 splits, the last shorter
  // The forward split over its reduction (the -sk variants): 14 slices in 3 splits of 5, 5 and
  // 3.5 (the last slice partial); 16 splits of 4 slices at a deep DCGAN-like layer.
  add_case(l, "split-K8 fwd 3x3 C=48", 2, 6, 6, 48, 24, 3, 3, 1, 1);
  add_case(l, "split-K8 fwd 4x4 s2 C=128", 2, 8, 8, 128, 16, 4, 4, 2, 1);
  // Random small shapes (a fixed seed): strides 1-3, pads 0-2, kernels 1-5 (also larger than the
  // image), channel counts 1-40 and 1-80, batches 1-4.
  uint64_t rs = 7;
  for (int i = 0, added = 0; added < 60 && i < 1000; i++) {
    int v[9];
    static const int span[9] = {4, 12, 12, 40, 80, 5, 5, 3, 3}; // N H W C K R S stride pad
    for (int j = 0; j < 9; j++)
      v[j] = (int)(rng_next(&rs) % (uint64_t)span[j]) + (j == 8 ? 0 : 1);
    conv_shape probe;
    if (conv_shape_make(&probe, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]) != 0)
      continue; // no output pixel: not a convolution
    char nm[64];
    snprintf(nm, sizeof nm, "random %d", ++added);
    add_case(l, nm, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]);
  }
  // The thin forward (thin-*) a warp per output pixel: 4,096 pixels and more (under 65,536), a
  // reduction over 256 (the shapes above take a thread or the block per pixel), 2 channels out.
  // After the random shapes, whose seeds follow their places.
  add_case(l, "odd thin warp 1x1 C=257 K=2", 1, 64, 64, 257, 2, 1, 1, 1, 0);
}

static void shape_str(const conv_shape *s, char *buf, size_t n) {
  snprintf(buf, n, "N%d %dx%dx%d -> %dx%dx%d k%dx%d s%d p%d", s->N, s->H, s->W, s->C, s->P, s->Q,
           s->K, s->R, s->S, s->stride, s->pad);
}

// ---- helpers ------------------------------------------------------------------------------------

// Uniform in [−1, 1).
static void fill_uniform(float *a, size_t n, uint64_t *s) {
  for (size_t i = 0; i < n; i++)
    a[i] = (float)((double)(rng_next(s) >> 11) * 0x1.0p-52 - 1.0);
}

// The accumulate rule's starting point: nonzero, exact in float, not constant.
static float pattern(size_t i) { return 0.5f + 0.125f * (float)(i % 7); }

static float *fnew(size_t n) { return xmalloc((n ? n : 1) * sizeof(float)); }

// max |a − b| / (scale + tiny); a non-finite element on either side (an unwritten, poisoned
// element) gives +inf, so a NaN can never hide behind fmax.
static double nerr(const float *a, const float *b, size_t n, double scale) {
  double num = 0.0;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(a[i]) || !isfinite(b[i])) return INFINITY;
    num = fmax(num, fabs((double)a[i] - (double)b[i]));
  }
  return num / (scale + 1e-30);
}

static double maxabs(const float *a, size_t n) {
  double m = 0.0;
  for (size_t i = 0; i < n; i++)
    m = fmax(m, fabs((double)a[i]));
  return m;
}

static float *abs_copy(const float *a, size_t n) {
  float *b = fnew(n);
  for (size_t i = 0; i < n; i++)
    b[i] = fabsf(a[i]);
  return b;
}

// dst = a − pattern, the increment backward_weight added to the pattern (exact in double, then
// rounded once).
static void minus_pattern(const float *a, float *dst, size_t n) {
  for (size_t i = 0; i < n; i++)
    dst[i] = (float)((double)a[i] - (double)pattern(i));
}

// ---- one shape, three roles ---------------------------------------------------------------------

typedef struct {
  ganc_ctx *gpu, *cpu;
  ganc_stream st;
  int passed, failed;
  int variants; // walk the variant table on this case: 0 no, 1 the first of each kind, 2 all
                // (see run_variants and main)
} run_state;

typedef enum { OURS, CUDNN } impl;

// Runs one role with one implementation on device buffers: out is poisoned (or set to the
// pattern for backward_weight) first and copied back to host `got` after.
static void run_role(run_state *r, const conv_shape *s, int role, impl which, const float *d_x,
                     const float *d_w, const float *d_dy, float *d_out, const float *host_init,
                     float *got, size_t n_out) {
  ganc_cuda_h2d(r->gpu, d_out, host_init, n_out * sizeof(float));
  switch (role) {
  case FWD:
    if (which == OURS)
      conv2d_forward_cuda(r->gpu, r->st, s, d_x, d_w, d_out);
    else
      conv2d_forward_cudnn(r->gpu, r->st, s, d_x, d_w, d_out);
    break;
  case BWD_DATA:
    if (which == OURS)
      conv2d_backward_data_cuda(r->gpu, r->st, s, d_dy, d_w, d_out);
    else
      conv2d_backward_data_cudnn(r->gpu, r->st, s, d_dy, d_w, d_out);
    break;
  default:
    if (which == OURS)
      conv2d_backward_weight_cuda(r->gpu, r->st, s, d_x, d_dy, d_out);
    else
      conv2d_backward_weight_cudnn(r->gpu, r->st, s, d_x, d_dy, d_out);
    break;
  }
  ganc_cuda_d2h(r->gpu, got, d_out, n_out * sizeof(float)); // synchronizes the stream
}

// h[0], h[1], h[2]: x, dy and w rounded to bf16 (to nearest even) and stored as bf16 in device
// memory; [.][0] 16-byte aligned, [.][1] one element past it (a copy, for the scalar path).
static void make_bf16_copies(run_state *r, const float *x, size_t nx, const float *dy, size_t ny,
                             const float *w, size_t nw, uint16_t *h[3][2]) {
  const float *src[3] = {x, dy, w};
  const size_t cnt[3] = {nx, ny, nw};
  for (int i = 0; i < 3; i++) {
    uint16_t *t = xmalloc((cnt[i] + 1) * sizeof(uint16_t));
    t[0] = 0;
    for (size_t k = 0; k < cnt[i]; k++)
      t[k + 1] = ganc_bf16_store(src[i][k]);
    h[i][0] = ganc_cuda_malloc(r->gpu, cnt[i] * sizeof(uint16_t));
    ganc_cuda_h2d(r->gpu, h[i][0], t + 1, cnt[i] * sizeof(uint16_t));
    h[i][1] = (uint16_t *)ganc_cuda_malloc(r->gpu, (cnt[i] + 1) * sizeof(uint16_t)) + 1;
    ganc_cuda_h2d(r->gpu, h[i][1] - 1, t, (cnt[i] + 1) * sizeof(uint16_t));
    free(t);
  }
}

// Every variant of kernels/conv.cu's table the device supports, role by role, against
//   the CPU twin in the variant's precision (a CPU context with the same train.precision: the
//   operands rounded as the variant rounds them, then FP32 GEMMs): the products are then exactly
//   the variant's, only the order of the FP32 sums differs, so the FP32 threshold of the table
//   above (1e-5 of Σ|products|) applies to every precision, and a wrong fragment index, which moves
//   whole products, fails it as it fails the FP32 kernel;
//   the FP32 reference: within the precision's bound (2u + u²)·Σ|products| + 1e-5, u the unit
//   roundoff of the operands (each product of two rounded operands is within (2u + u²)|a·b| of the
//   exact one);
//   itself: the same bits twice (every variant of the table is deterministic);
//   and a variant that needs channel multiples (it moves whole rows, with vector loads where the
//   pointers are 16-byte aligned) once more with its inputs one float off that alignment.
static void run_variants(run_state *r, const conv_case *cc, const float *x, const float *w,
                         const float *dy, const float *d_x, const float *d_w, const float *d_dy,
                         float *const ref[NROLES], const double scale[NROLES], const float *nan,
                         const float *pat) {
  const conv_shape *s = &cc->s;
  const size_t nx = (size_t)s->N * s->H * s->W * s->C, ny = (size_t)s->N * s->P * s->Q * s->K,
               nw = (size_t)s->R * s->S * s->C * s->K;
  const size_t nmax = nx > ny ? (nx > nw ? nx : nw) : (ny > nw ? ny : nw);
  float *got = fnew(nmax), *again = fnew(nmax);
  // The CPU twin in each precision and role, computed once (the FP32 one is ref): [prec][role].
  float *pref[3][NROLES] = {{ref[FWD], ref[BWD_DATA], ref[BWD_WEIGHT]}};
  char shp[96];
  shape_str(s, shp, sizeof shp);
  // Copies of x, w and dy one float past a 16-byte boundary, for the variants that load whole
  // rows with vector loads where the pointers allow (chan_multiple > 1): their other path.
  float *mis[3] = {NULL, NULL, NULL};
  // x, dy and w stored in bf16 (and one element past alignment), for the variants that read them
  // so.
  uint16_t *h16[3][2] = {{NULL, NULL}, {NULL, NULL}, {NULL, NULL}}; // [x, dy, w][aligned, shifted]
  for (int v = 0; v < ganc_conv_variant_count(); v++) {
    const ganc_conv_variant *var = ganc_conv_variant_at(v);
    // simt-fp32 is the dispatch's FP32 choice, compared above (with cuDNN on a GPU).
    if (!ganc_conv_variant_runs(r->gpu, v) || !strcmp(var->name, "simt-fp32")) continue;
    // Level 1: not the variants that differ from another only in warp tiling or pipeline.
    if (r->variants < 2 && (strstr(var->name, "-w4x2") || strstr(var->name, "-cp3"))) continue;
    for (int rr = 0; rr < 2 * NROLES; rr++) {
      const int role = rr % NROLES, shifted = rr >= NROLES;
      if (!ganc_conv_variant_supports(v, (ganc_conv_role)role, s)) continue; // e.g. phases
      if (shifted && var->chan_multiple <= 1) continue;
      const size_t n = role == FWD ? ny : role == BWD_DATA ? nx : nw;
      const float *init = role == BWD_WEIGHT ? pat : nan;
      if (shifted && !mis[0]) {
        const float *src[3] = {d_x, d_w, d_dy};
        const size_t cnt[3] = {nx, nw, ny};
        for (int i = 0; i < 3; i++) {
          mis[i] = ganc_cuda_malloc(r->gpu, (cnt[i] + 1) * sizeof(float));
          ganc_cuda_d2d(r->gpu, mis[i] + 1, src[i], cnt[i] * sizeof(float));
        }
      }
      const float *ax = shifted ? mis[0] + 1 : d_x, *aw = shifted ? mis[1] + 1 : d_w,
                  *ady = shifted ? mis[2] + 1 : d_dy;
      const float *in0 = role == BWD_DATA ? ady : ax, *in1 = role == BWD_WEIGHT ? ady : aw;
      float *d_out = ganc_cuda_malloc(r->gpu, n * sizeof(float));
      float *outs[2] = {got, again};
      for (int k = 0; k < 2; k++) {
        ganc_cuda_h2d(r->gpu, d_out, init, n * sizeof(float));
        conv2d_run_variant_cuda(r->gpu, r->st, v, (ganc_conv_role)role, s, in0, in1, d_out);
        ganc_cuda_d2h(r->gpu, outs[k], d_out, n * sizeof(float));
      }
      ganc_cuda_free(r->gpu, d_out);
      int deterministic = memcmp(got, again, n * sizeof(float)) == 0;
      // The activation operands stored in bf16 (in0 of every role, and backward-weight's dy,
      // alone and with x), and forward's and backward-data's with the weights' halves too (which
      // g128's family reads instead of w): the same bits as from the float operands, which the
      // variant rounds the same way.
      int same16 = 1, runs16 = 0;
      if (ganc_conv_variant_reads_bf16(v)) {
        if (!h16[0][0]) make_bf16_copies(r, x, nx, dy, ny, w, nw, h16);
        const int wg = role == BWD_WEIGHT;
        for (int which = 0; which < (wg ? 3 : 2); which++) {
          const void *a0 = in0, *a1 = in1;
          if (!wg || which != 1) a0 = h16[role == BWD_DATA][shifted];
          if (wg && which >= 1) a1 = h16[1][shifted];
          // (the halves' alignment the other way round: aligned x with shifted halves, which g128
          // leaves for the FP32 weights, and shifted x with aligned halves, read through registers)
          const uint16_t *wh = !wg && which == 1 ? h16[2][!shifted] : NULL;
          float *d16 = ganc_cuda_malloc(r->gpu, n * sizeof(float));
          ganc_cuda_h2d(r->gpu, d16, init, n * sizeof(float));
          conv2d_run_variant_mixed_cuda(r->gpu, r->st, v, (ganc_conv_role)role, s, a0,
                                        !wg || which != 1, a1, wg && which >= 1, wh, d16, 0, NULL);
          ganc_cuda_d2h(r->gpu, again, d16, n * sizeof(float));
          ganc_cuda_free(r->gpu, d16);
          same16 &= memcmp(got, again, n * sizeof(float)) == 0;
          runs16++;
        }
      }
      // The output in bf16 (forward and backward-data, every variant; from float operands, and
      // from bf16 ones where the variant reads them): the halves of the FP32 output bit for bit,
      // and nothing written past them (two poisoned guard halves).
      int sameout = 1, runsout = 0;
      if (role != BWD_WEIGHT) {
        uint16_t *hh = xmalloc((n + 2) * sizeof(uint16_t));
        uint16_t *d_h = (uint16_t *)ganc_cuda_malloc(r->gpu, (n + 2) * sizeof(uint16_t));
        for (int which = 0; which < (ganc_conv_variant_reads_bf16(v) ? 2 : 1); which++) {
          if (which && !h16[0][0]) make_bf16_copies(r, x, nx, dy, ny, w, nw, h16);
          const void *a0 = which ? (const void *)h16[role == BWD_DATA][shifted] : in0;
          memset(hh, 0xA5, (n + 2) * sizeof(uint16_t));
          ganc_cuda_h2d(r->gpu, d_h, hh, (n + 2) * sizeof(uint16_t));
          conv2d_run_variant_mixed_cuda(r->gpu, r->st, v, (ganc_conv_role)role, s, a0, which, in1,
                                        0, NULL, d_h, 1, NULL);
          ganc_cuda_d2h(r->gpu, hh, d_h, (n + 2) * sizeof(uint16_t));
          for (size_t i = 0; i < n; i++)
            sameout &= hh[i] == ganc_bf16_store(got[i]);
          sameout &= hh[n] == 0xA5A5 && hh[n + 1] == 0xA5A5;
          runsout++;
        }
        ganc_cuda_free(r->gpu, d_h);
        free(hh);
      }
      // With an epilogue op (ops.h: ganc_conv_epi; forward and backward-data, every variant):
      // the separate op's arithmetic (ops/act_core.h) on the variant's own FP32 output, once
      // into an FP32 output and once into halves (two poisoned guard halves untouched): leaky
      // ReLU's backward from y in FP32 and in halves, both activations' forward; and where the
      // variant reads bf16 operands, once more from the operand's halves into halves (the bf16
      // instantiation of the role), with ReLU's backward or forward.
      int sameepi = 1, runsepi = 0;
      if (role != BWD_WEIGHT) {
        float *yv = fnew(n), *want = fnew(n);
        uint16_t *yh = xmalloc((n + 2) * sizeof(uint16_t));
        for (size_t i = 0; i < n; i++) // −2 .. 2: negative, zero and positive signs of y
          yv[i] = (float)((int)(((uint32_t)i * 2654435761u) >> 7) % 5 - 2) * 0.75f;
        for (size_t i = 0; i < n; i++)
          yh[i] = ganc_bf16_store(yv[i]);
        float *d_yv = ganc_cuda_malloc(r->gpu, n * sizeof(float));
        uint16_t *d_yh = (uint16_t *)ganc_cuda_malloc(r->gpu, n * sizeof(uint16_t));
        ganc_cuda_h2d(r->gpu, d_yv, yv, n * sizeof(float));
        ganc_cuda_h2d(r->gpu, d_yh, yh, n * sizeof(uint16_t));
        float *d_o = ganc_cuda_malloc(r->gpu, (n + 1) * sizeof(float));
        const int e = (role == FWD) ^ shifted;
        const int nk = ganc_conv_variant_reads_bf16(v) ? 3 : 2;
        if (nk == 3 && !h16[0][0]) make_bf16_copies(r, x, nx, dy, ny, w, nw, h16);
        for (int k = 0; k < nk; k++) {
          const int act = k == 2 || (k && e) ? GANC_ACT_RELU : GANC_ACT_LRELU;
          const int bwd = k == 2 ? e : k ? !e : e, ybf = k > 0;
          const void *op0 = k == 2 ? (const void *)h16[role == BWD_DATA][shifted] : in0;
          const ganc_conv_epi epi = {
              act, 0.2f, bwd ? (ybf ? (const void *)d_yh : (const void *)d_yv) : NULL,
              ybf, NULL, 0};
          for (size_t i = 0; i < n; i++)
            want[i] = bwd ? ganc_act_grad(act, 0.2f, ybf ? ganc_bf16_load(yh[i]) : yv[i], got[i])
                          : ganc_act(act, 0.2f, got[i]);
          if (!k) {
            ganc_cuda_h2d(r->gpu, d_o, init, n * sizeof(float));
            conv2d_run_variant_mixed_cuda(r->gpu, r->st, v, (ganc_conv_role)role, s, in0, 0, in1, 0,
                                          NULL, d_o, 0, &epi);
            ganc_cuda_d2h(r->gpu, again, d_o, n * sizeof(float));
            sameepi &= memcmp(again, want, n * sizeof(float)) == 0;
          } else {
            uint16_t *hh = xmalloc((n + 2) * sizeof(uint16_t));
            memset(hh, 0xA5, (n + 2) * sizeof(uint16_t));
            ganc_cuda_h2d(r->gpu, d_o, hh, (n + 2) * sizeof(uint16_t));
            // (from the operand's halves, with the weights' aligned halves too: both bf16 in g128's
            // family, by cp.async where the operand is aligned)
            conv2d_run_variant_mixed_cuda(r->gpu, r->st, v, (ganc_conv_role)role, s, op0, k == 2,
                                          in1, 0, k == 2 ? h16[2][0] : NULL, d_o, 1, &epi);
            ganc_cuda_d2h(r->gpu, hh, d_o, (n + 2) * sizeof(uint16_t));
            for (size_t i = 0; i < n; i++)
              sameepi &= hh[i] == ganc_bf16_store(want[i]);
            sameepi &= hh[n] == 0xA5A5 && hh[n + 1] == 0xA5A5;
            free(hh);
          }
          runsepi++;
        }
        ganc_cuda_free(r->gpu, d_o);
        ganc_cuda_free(r->gpu, d_yv);
        ganc_cuda_free(r->gpu, d_yh);
        free(yv), free(want), free(yh);
      }
      // With batch-norm slot sums (ops.h: ganc_bn_part; forward and backward-data, every variant,
      // aligned operands): the output's bits unchanged, every slot the launch reports written
      // (the buffer poisoned with NaN first), and per channel the slots' Σ v and Σ v² equal, to
      // the rounding of double, the host's sums of the values as a batch norm reads them — once
      // into FP32 (rounded for the statistics, GANC_X_ROUND, for every other variant; as they
      // are for the rest), once into halves (from the operand's
      // halves where the variant reads them: g128's family sums them in its epilogue, the others
      // by batchnorm_slot_stats after the kernel).
      // (Every variant outside g128's family takes the same pass after its kernel: under the
      // emulator one of them stands for the rest — mma-bf16 —, on a GPU all are checked.)
      int samestats = 1, runsstats = 0;
      const int stats_here =
          !EMULATED || strstr(var->name, "g128") || !strcmp(var->name, "mma-bf16");
      if (role != BWD_WEIGHT && !shifted && stats_here) {
        const int64_t rows =
            role == FWD ? (int64_t)s->N * s->P * s->Q : (int64_t)s->N * s->H * s->W;
        const int C = role == FWD ? s->K : s->C;
        // (room for g128's slots on every shape: ganc_bn_part_slots may leave odd ones to the pass)
        ganc_bn_part bp = {NULL, 4 * ganc_bn_part_slots(rows), 0};
        const size_t nd = (size_t)bp.cap * 2 * (size_t)C;
        double *hp = xmalloc(nd * sizeof(double));
        bp.part = (double *)ganc_cuda_malloc(r->gpu, nd * sizeof(double));
        uint16_t *hh = xmalloc((n + 2) * sizeof(uint16_t));
        float *d_o = ganc_cuda_malloc(r->gpu, (n + 1) * sizeof(float));
        const int bf = ganc_conv_variant_reads_bf16(v);
        if (bf && !h16[0][0]) make_bf16_copies(r, x, nx, dy, ny, w, nw, h16);
        for (int k = 0; k < 2; k++) {
          const int rnd = k == 1 || v % 2; // the values as read: rounded to bf16, or FP32
          const ganc_conv_epi epi = {GANC_ACT_NONE, 0.0f, NULL, 0, &bp, k == 0 && rnd};
          for (size_t i = 0; i < nd; i++)
            hp[i] = NAN;
          ganc_cuda_h2d(r->gpu, bp.part, hp, nd * sizeof(double));
          bp.nslot = -1;
          const void *op0 = k && bf ? (const void *)h16[role == BWD_DATA][0] : in0;
          memset(hh, 0xA5, (n + 2) * sizeof(uint16_t));
          if (k)
            ganc_cuda_h2d(r->gpu, d_o, hh, (n + 2) * sizeof(uint16_t));
          else
            ganc_cuda_h2d(r->gpu, d_o, init, n * sizeof(float));
          conv2d_run_variant_mixed_cuda(r->gpu, r->st, v, (ganc_conv_role)role, s, op0, k && bf,
                                        in1, 0, k && bf ? h16[2][0] : NULL, d_o, k, &epi);
          if (k) {
            ganc_cuda_d2h(r->gpu, hh, d_o, (n + 2) * sizeof(uint16_t));
            for (size_t i = 0; i < n; i++)
              samestats &= hh[i] == ganc_bf16_store(got[i]);
            samestats &= hh[n] == 0xA5A5 && hh[n + 1] == 0xA5A5;
          } else {
            ganc_cuda_d2h(r->gpu, again, d_o, n * sizeof(float));
            samestats &= memcmp(again, got, n * sizeof(float)) == 0;
          }
          samestats &= bp.nslot >= 1 && bp.nslot <= bp.cap;
          if (bp.nslot >= 1 && bp.nslot <= bp.cap) {
            ganc_cuda_d2h(r->gpu, hp, bp.part, (size_t)bp.nslot * 2 * C * sizeof(double));
            for (int c = 0; c < C; c++) {
              double sx = 0, sq = 0, ax = 0, gx = 0, gq = 0;
              for (int64_t m = 0; m < rows; m++) {
                const double val =
                    rnd ? ganc_bf16_load(ganc_bf16_store(got[m * C + c])) : got[m * C + c];
                sx += val, sq += val * val, ax += fabs(val);
              }
              for (int64_t b = 0; b < bp.nslot; b++)
                gx += hp[2 * b * C + c], gq += hp[(2 * b + 1) * C + c];
              samestats &= fabs(gx - sx) <= 1e-10 * ax && fabs(gq - sq) <= 1e-10 * sq;
            }
          }
          runsstats++;
        }
        ganc_cuda_free(r->gpu, d_o);
        ganc_cuda_free(r->gpu, bp.part);
        free(hp), free(hh);
      }
      // the CPU twin in the variant's precision (a CPU context of that precision, same scratch)
      float **pr = &pref[var->precision][role];
      if (!*pr) {
        ganc_ctx pcpu = *r->cpu;
        pcpu.precision = var->precision;
        *pr = fnew(n);
        if (role == BWD_WEIGHT) memset(*pr, 0, n * sizeof(float));
        if (role == FWD) conv2d_forward_cpu(&pcpu, s, x, w, *pr);
        if (role == BWD_DATA) conv2d_backward_data_cpu(&pcpu, s, dy, w, *pr);
        if (role == BWD_WEIGHT) conv2d_backward_weight_cpu(&pcpu, s, x, dy, *pr);
      }
      if (role == BWD_WEIGHT) minus_pattern(got, got, n);
      const double u = var->unit_roundoff;
      const double e_p = nerr(got, *pr, n, scale[role]),
                   e_32 = nerr(got, ref[role], n, scale[role]);
      const double bound = 2 * u + u * u + 1e-5;
      const int ok = e_p < tol_cpu[role] && e_32 < bound && deterministic && same16 && sameout &&
                     sameepi && samestats;
      printf("%s %-10s %-26s %-40s %-14s%s cpu(%s) %.1e  fp32 %.1e (bound %.1e)%s%s%s%s%s\n",
             ok ? "ok  " : "FAIL", role_name[role], cc->name, shp, var->name,
             shifted ? " unaligned" : "",
             var->precision == GANC_PREC_BF16   ? "bf16"
             : var->precision == GANC_PREC_TF32 ? "tf32"
                                                : "fp32",
             e_p, e_32, bound, deterministic ? "" : "  NOT DETERMINISTIC",
             !runs16  ? ""
             : same16 ? (role == BWD_WEIGHT ? "  bf16 x, dy: same bits" : "  bf16 in, w: same bits")
                      : "  BF16-STORED OPERANDS DIFFER",
             !runsout  ? ""
             : sameout ? "  bf16 out: same bits"
                       : "  BF16 OUTPUT DIFFERS",
             !runsepi  ? ""
             : sameepi ? "  epi: same bits"
                       : "  EPILOGUE DIFFERS",
             !runsstats  ? ""
             : samestats ? "  bn stats: ok"
                         : "  BATCH-NORM SLOT SUMS WRONG");
      fflush(stdout);
      if (ok)
        r->passed++;
      else
        r->failed++;
    }
  }
  for (int i = 0; i < 3; i++)
    if (mis[i]) ganc_cuda_free(r->gpu, mis[i]);
  for (int i = 0; i < 3; i++)
    if (h16[i][0]) ganc_cuda_free(r->gpu, h16[i][0]), ganc_cuda_free(r->gpu, h16[i][1] - 1);
  for (int p = 1; p < 3; p++) // [0] is ref, the caller's
    for (int i = 0; i < NROLES; i++)
      free(pref[p][i]);
  free(got), free(again);
}

// conv2d_mixed_cuda (ops.def), which training calls on an operand kept in bf16: at FP32 and BF16
// precision, each role with each operand it takes in bf16, against the role on the operand's
// widened values. Where a variant of the precision reads bf16 (conv2d_reads_bf16_cuda), it runs
// that variant on the halves, so the reference is the variant on the FP32 operands (the same bits,
// as run_variants shows for the variant itself); elsewhere it widens the operand and runs the
// role's op, so the reference is that op on the widened values (the same choice of kernel).
// A dense shape (ops.h: conv_shape_dense) the dispatch runs as its 1x1 view: the variant's own run
// is then on that view too (the same memory; on the shape as given an mma slice may group the
// products otherwise).
static void run_mixed(run_state *r, const conv_case *cc, const float *x, const float *w,
                      const float *dy, const float *d_x, const float *d_w, const float *d_dy,
                      const float *nan, const float *pat) {
  const conv_shape *s = &cc->s;
  const size_t nx = (size_t)s->N * s->H * s->W * s->C, ny = (size_t)s->N * s->P * s->Q * s->K,
               nw = (size_t)s->R * s->S * s->C * s->K;
  uint16_t *h16[3][2] = {{NULL, NULL}, {NULL, NULL}, {NULL, NULL}};
  make_bf16_copies(r, x, nx, dy, ny, w, nw, h16);
  float *wide[2], *hw = fnew(nx > ny ? nx : ny);
  for (int i = 0; i < 2; i++) {
    const size_t n = i ? ny : nx;
    for (size_t k = 0; k < n; k++)
      hw[k] = ganc_round_bf16((i ? dy : x)[k]);
    wide[i] = ganc_cuda_malloc(r->gpu, n * sizeof(float));
    ganc_cuda_h2d(r->gpu, wide[i], hw, n * sizeof(float));
  }
  size_t nmax = nx > ny ? nx : ny;
  if (nw > nmax) nmax = nw;
  float *got = fnew(nmax), *want = fnew(nmax);
  char shp[96];
  shape_str(s, shp, sizeof shp);
  static const char *const what[5] = {"x", "dy", "x", "dy", "x and dy"};
  conv_shape dense;
  const conv_shape *sv = conv_shape_dense(s, &dense) ? &dense : s;
  const ganc_precision saved = r->gpu->precision;
  for (int p = 0; p < 2; p++) {
    const ganc_precision prec = p ? GANC_PREC_BF16 : GANC_PREC_FP32;
    if (prec == GANC_PREC_BF16 && ganc_cuda_cc(r->gpu) < 80) continue;
    r->gpu->precision = prec;
    for (int c = 0; c < 5; c++) { // FWD x, BWD_DATA dy, BWD_WEIGHT x, dy, both
      const int role = c == 0 ? FWD : c == 1 ? BWD_DATA : BWD_WEIGHT;
      const int b0 = c != 3, b1 = c >= 3; // which operands are in bf16
      const size_t n = role == FWD ? ny : role == BWD_DATA ? nx : nw;
      const float *init = role == BWD_WEIGHT ? pat : nan;
      const void *a0 = c == 1 ? (const void *)h16[1][0] : c == 3 ? (const void *)d_x : h16[0][0];
      const void *a1 = c < 2 ? (const void *)d_w : c == 2 ? (const void *)d_dy : h16[1][0];
      // The weights' halves beside w (forward, backward-data): the results below are the same
      // bits with them (the variant's, or ignored where the operand is widened) as without (d_h).
      const uint16_t *wh = c < 2 ? h16[2][0] : NULL;
      float *d1 = ganc_cuda_malloc(r->gpu, n * sizeof(float)),
            *d2 = ganc_cuda_malloc(r->gpu, n * sizeof(float));
      ganc_cuda_h2d(r->gpu, d1, init, n * sizeof(float));
      ganc_cuda_h2d(r->gpu, d2, init, n * sizeof(float));
      const int direct = conv2d_reads_bf16_cuda(r->gpu, (ganc_conv_role)role, s);
      int v = -1;
      for (int i = 0; direct && v < 0 && i < ganc_conv_variant_count(); i++)
        if (ganc_conv_variant_at(i)->precision == prec && ganc_conv_variant_reads_bf16(i) &&
            ganc_conv_variant_supports(i, (ganc_conv_role)role, sv) &&
            ganc_conv_variant_runs(r->gpu, i))
          v = i;
      // The dispatch names v (train.conv_variant): in bf16 and tf32 it otherwise takes the
      // fastest variant on this GPU, whose FP32 sums may be in another order than v's (a -sk
      // split, say) — the question here is the mixed path against v's own run, bit for bit.
      const char *const saved_variant = r->gpu->conv_variant;
      if (v >= 0 && prec != GANC_PREC_FP32) r->gpu->conv_variant = ganc_conv_variant_at(v)->name;
      conv2d_mixed_cuda(r->gpu, r->st, role, s, a0, b0, a1, b1, wh, d1, 0, NULL);
      if (v >= 0) {
        conv2d_run_variant_cuda(r->gpu, r->st, v, (ganc_conv_role)role, sv,
                                role == BWD_DATA ? d_dy : d_x, role == BWD_WEIGHT ? d_dy : d_w, d2);
      } else {
        const float *f0 = c == 1 ? wide[1] : c == 3 ? d_x : wide[0];
        const float *f1 = c < 2 ? d_w : c == 2 ? d_dy : wide[1];
        if (role == FWD) conv2d_forward_cuda(r->gpu, r->st, s, f0, f1, d2);
        if (role == BWD_DATA) conv2d_backward_data_cuda(r->gpu, r->st, s, f0, f1, d2);
        if (role == BWD_WEIGHT) conv2d_backward_weight_cuda(r->gpu, r->st, s, f0, f1, d2);
      }
      ganc_cuda_d2h(r->gpu, got, d1, n * sizeof(float));
      ganc_cuda_d2h(r->gpu, want, d2, n * sizeof(float));
      ganc_cuda_free(r->gpu, d1);
      ganc_cuda_free(r->gpu, d2);
      // The output asked in bf16 (forward, backward-data): the halves of the FP32 output, written
      // by the variant's epilogue or, where the operand is widened, rounded after; nothing past.
      int sameout = 1;
      if (role != BWD_WEIGHT) {
        uint16_t *hh = xmalloc((n + 2) * sizeof(uint16_t));
        uint16_t *d_h = (uint16_t *)ganc_cuda_malloc(r->gpu, (n + 2) * sizeof(uint16_t));
        memset(hh, 0xA5, (n + 2) * sizeof(uint16_t));
        ganc_cuda_h2d(r->gpu, d_h, hh, (n + 2) * sizeof(uint16_t));
        conv2d_mixed_cuda(r->gpu, r->st, role, s, a0, b0, a1, b1, NULL, d_h, 1, NULL);
        ganc_cuda_d2h(r->gpu, hh, d_h, (n + 2) * sizeof(uint16_t));
        for (size_t i = 0; i < n; i++)
          sameout &= hh[i] == ganc_bf16_store(got[i]);
        sameout &= hh[n] == 0xA5A5 && hh[n + 1] == 0xA5A5;
        // With an epilogue op, through the variant or the widened fallback alike: leaky ReLU's
        // forward into FP32, and ReLU's backward from halves of y (the output's own halves:
        // every sign) into bf16 — the separate op on the FP32 output.
        const ganc_conv_epi fw = {GANC_ACT_LRELU, 0.2f, NULL, 0, NULL, 0},
                            bw = {GANC_ACT_RELU, 0.0f, d_h, 1, NULL, 0};
        float *d_f = ganc_cuda_malloc(r->gpu, n * sizeof(float));
        uint16_t *d_b = (uint16_t *)ganc_cuda_malloc(r->gpu, (n + 2) * sizeof(uint16_t));
        uint16_t *hb = xmalloc((n + 2) * sizeof(uint16_t));
        float *ef = fnew(n);
        conv2d_mixed_cuda(r->gpu, r->st, role, s, a0, b0, a1, b1, wh, d_f, 0, &fw);
        memset(hb, 0xA5, (n + 2) * sizeof(uint16_t));
        ganc_cuda_h2d(r->gpu, d_b, hb, (n + 2) * sizeof(uint16_t));
        conv2d_mixed_cuda(r->gpu, r->st, role, s, a0, b0, a1, b1, wh, d_b, 1, &bw);
        ganc_cuda_d2h(r->gpu, ef, d_f, n * sizeof(float));
        ganc_cuda_d2h(r->gpu, hb, d_b, (n + 2) * sizeof(uint16_t));
        for (size_t i = 0; i < n; i++) {
          const float f = ganc_act(GANC_ACT_LRELU, 0.2f, got[i]);
          sameout &= memcmp(&ef[i], &f, sizeof f) == 0;
          sameout &= hb[i] == ganc_bf16_store(ganc_act_grad(GANC_ACT_RELU, 0.0f,
                                                            ganc_bf16_load(hh[i]), got[i]));
        }
        sameout &= hb[n] == 0xA5A5 && hb[n + 1] == 0xA5A5;
        ganc_cuda_free(r->gpu, d_f);
        ganc_cuda_free(r->gpu, d_b);
        free(hb), free(ef);
        ganc_cuda_free(r->gpu, d_h);
        free(hh);
      }
      r->gpu->conv_variant = saved_variant;
      const int ok = (direct == (v >= 0)) && memcmp(got, want, n * sizeof(float)) == 0 && sameout;
      printf("%s %-10s %-26s %-40s mixed %s, %s in bf16: %s%s%s\n", ok ? "ok  " : "FAIL",
             role_name[role], cc->name, shp, p ? "bf16" : "fp32", what[c],
             v >= 0 ? ganc_conv_variant_at(v)->name : "widened", ok ? ", same bits" : ", DIFFERS",
             role == BWD_WEIGHT ? ""
             : sameout          ? " (bf16 out: same bits)"
                                : " (BF16 OUTPUT DIFFERS)");
      fflush(stdout);
      if (ok)
        r->passed++;
      else
        r->failed++;
    }
  }
  r->gpu->precision = saved;
  for (int i = 0; i < 3; i++) {
    if (i < 2) ganc_cuda_free(r->gpu, wide[i]);
    ganc_cuda_free(r->gpu, h16[i][0]), ganc_cuda_free(r->gpu, h16[i][1] - 1);
  }
  free(hw), free(got), free(want);
}

static void run_case(run_state *r, const conv_case *cc, uint64_t seed) {
  const conv_shape *s = &cc->s;
  const size_t nx = (size_t)s->N * s->H * s->W * s->C, ny = (size_t)s->N * s->P * s->Q * s->K,
               nw = (size_t)s->R * s->S * s->C * s->K;
  size_t nmax = nx > ny ? nx : ny;
  if (nw > nmax) nmax = nw;

  float *x = fnew(nx), *w = fnew(nw), *dy = fnew(ny);
  fill_uniform(x, nx, &seed);
  fill_uniform(w, nw, &seed);
  fill_uniform(dy, ny, &seed);
  float *nan = fnew(nmax), *pat = fnew(nw);
  for (size_t i = 0; i < nmax; i++)
    nan[i] = NAN;
  for (size_t i = 0; i < nw; i++)
    pat[i] = pattern(i);

  // CPU references: y, dx (poisoned first, like ours), and the plain gradient from dw = 0.
  float *ref[NROLES] = {fnew(ny), fnew(nx), fnew(nw)};
  memcpy(ref[FWD], nan, ny * sizeof(float));
  memcpy(ref[BWD_DATA], nan, nx * sizeof(float));
  memset(ref[BWD_WEIGHT], 0, nw * sizeof(float));
  conv2d_forward_cpu(r->cpu, s, x, w, ref[FWD]);
  conv2d_backward_data_cpu(r->cpu, s, dy, w, ref[BWD_DATA]);
  conv2d_backward_weight_cpu(r->cpu, s, x, dy, ref[BWD_WEIGHT]);
  // The error scale of each role: the role on |inputs| (see the thresholds above).
  double scale[NROLES];
  {
    float *ax = abs_copy(x, nx), *aw = abs_copy(w, nw), *ady = abs_copy(dy, ny), *t = fnew(nmax);
    conv2d_forward_cpu(r->cpu, s, ax, aw, t);
    scale[FWD] = maxabs(t, ny);
    conv2d_backward_data_cpu(r->cpu, s, ady, aw, t);
    scale[BWD_DATA] = maxabs(t, nx);
    memset(t, 0, nw * sizeof(float));
    conv2d_backward_weight_cpu(r->cpu, s, ax, ady, t);
    scale[BWD_WEIGHT] = maxabs(t, nw);
    free(ax), free(aw), free(ady), free(t);
  }

  float *d_x = ganc_cuda_malloc(r->gpu, nx * sizeof(float));
  float *d_w = ganc_cuda_malloc(r->gpu, nw * sizeof(float));
  float *d_dy = ganc_cuda_malloc(r->gpu, ny * sizeof(float));
  ganc_cuda_h2d(r->gpu, d_x, x, nx * sizeof(float));
  ganc_cuda_h2d(r->gpu, d_w, w, nw * sizeof(float));
  ganc_cuda_h2d(r->gpu, d_dy, dy, ny * sizeof(float));

  float *ours = fnew(nmax), *again = fnew(nmax), *dnn = fnew(nmax);
  char shp[96];
  shape_str(s, shp, sizeof shp);
  for (int role = 0; role < NROLES; role++) {
    const size_t n = role == FWD ? ny : role == BWD_DATA ? nx : nw;
    const float *init = role == BWD_WEIGHT ? pat : nan; // dw accumulates; y and dx overwrite
    // The output buffer has exactly the role's size: a write past its end is caught (by
    // compute-sanitizer on a GPU, by the guard page under cudemu).
    float *d_out = ganc_cuda_malloc(r->gpu, n * sizeof(float));
    run_role(r, s, role, OURS, d_x, d_w, d_dy, d_out, init, ours, n);
    run_role(r, s, role, OURS, d_x, d_w, d_dy, d_out, init, again, n);
    const int deterministic = memcmp(ours, again, n * sizeof(float)) == 0;
    if (use_cudnn) run_role(r, s, role, CUDNN, d_x, d_w, d_dy, d_out, init, dnn, n);
    ganc_cuda_free(r->gpu, d_out);
    if (role == BWD_WEIGHT) { // compare the increments over the pattern
      minus_pattern(ours, ours, n);
      if (use_cudnn) minus_pattern(dnn, dnn, n);
    }
    const double e_cpu = nerr(ours, ref[role], n, scale[role]);
    const double e_dnn = use_cudnn ? nerr(ours, dnn, n, scale[role]) : 0.0,
                 e_info = use_cudnn ? nerr(dnn, ref[role], n, scale[role]) : 0.0;
    const int ok = e_cpu < tol_cpu[role] && e_dnn < tol_cudnn[role] && deterministic;
    if (use_cudnn)
      printf("%s %-10s %-26s %-40s cpu %.1e  cudnn %.1e  (cudnn vs cpu %.1e)%s\n",
             ok ? "ok  " : "FAIL", role_name[role], cc->name, shp, e_cpu, e_dnn, e_info,
             deterministic ? "" : "  NOT DETERMINISTIC");
    else
      printf("%s %-10s %-26s %-40s cpu %.1e  (%s)%s\n", ok ? "ok  " : "FAIL", role_name[role],
             cc->name, shp, e_cpu, HAVE_CUDNN ? "--no-cudnn" : "no cuDNN under cudemu",
             deterministic ? "" : "  NOT DETERMINISTIC");
    fflush(stdout);
    if (ok)
      r->passed++;
    else
      r->failed++;
  }

  if (r->variants) run_variants(r, cc, x, w, dy, d_x, d_w, d_dy, ref, scale, nan, pat);
  if (r->variants == 2) run_mixed(r, cc, x, w, dy, d_x, d_w, d_dy, nan, pat);

  ganc_cuda_free(r->gpu, d_x);
  ganc_cuda_free(r->gpu, d_w);
  ganc_cuda_free(r->gpu, d_dy);
  for (int i = 0; i < NROLES; i++)
    free(ref[i]);
  free(x), free(w), free(dy), free(nan), free(pat), free(ours), free(again), free(dnn);
}

// The tuner's agreement check (kernels/conv.cu): before the bf16 variants are timed for a role and
// shape, each runs once and is compared with the FP32 kernel; one that disagrees is never chosen,
// and kernels.log says so. On a fresh context (no choices yet, an empty device cache): with
// GANC_TEST_CONV_FAULT naming every forward candidate but the last of the table, the pick is that
// one, the launcher's output is its output bit for bit, and the log has one "disagrees" line per
// named variant and none else; backward-weight picks with no fault — a 2,048-term reduction of
// mixed signs, and 8,192 like products of one sign per output (the FP32 sums' worst case) — find
// no candidate in disagreement (nlines counts them all). Needs tensor cores.
static void run_agreement(run_state *r) {
  if (ganc_cuda_cc(r->gpu) < 80) {
    printf("skip agreement check: no tensor cores (compute capability %d)\n", ganc_cuda_cc(r->gpu));
    return;
  }
  char *dir = tu_tmpdir("agree");
  setenv("GANC_CACHE_DIR", dir, 1);
  ganc_ctx g;
  memset(&g, 0, sizeof g);
  char why[256] = "";
  if (ganc_cuda_ctx_init(&g, 0, why, sizeof why) != 0) {
    printf("FAIL agreement check: a second context: %s\n", why);
    r->failed++;
    tu_rmdir(dir);
    return;
  }
  g.precision = GANC_PREC_BF16;
  char logp[4200];
  snprintf(logp, sizeof logp, "%s/kernels.log", dir);
  g.tune_log = fopen(logp, "w");
  const ganc_stream st = ganc_cuda_stream(&g);
  conv_shape s;
  conv_shape_make(&s, 8, 16, 16, 24, 16, 3, 3, 1, 1);
  const size_t nx = (size_t)s.N * s.H * s.W * s.C, ny = (size_t)s.N * s.P * s.Q * s.K,
               nw = (size_t)s.R * s.S * s.C * s.K;
  float *x = fnew(nx), *w = fnew(nw), *dy = fnew(ny), *y1 = fnew(ny), *y2 = fnew(ny);
  uint64_t seed = 0xA9EE;
  fill_uniform(x, nx, &seed), fill_uniform(w, nw, &seed), fill_uniform(dy, ny, &seed);
  float *d_x = ganc_cuda_malloc(&g, nx * 4), *d_w = ganc_cuda_malloc(&g, nw * 4),
        *d_dy = ganc_cuda_malloc(&g, ny * 4), *d_y = ganc_cuda_malloc(&g, ny * 4);
  ganc_cuda_h2d(&g, d_x, x, nx * 4), ganc_cuda_h2d(&g, d_w, w, nw * 4);
  ganc_cuda_h2d(&g, d_dy, dy, ny * 4);
  int cand[64], nc = 0;
  for (int i = 0; i < ganc_conv_variant_count() && nc < 64; i++)
    if (ganc_conv_variant_at(i)->precision == GANC_PREC_BF16 && ganc_conv_variant_runs(&g, i) &&
        ganc_conv_variant_supports(i, GANC_CONV_FWD, &s))
      cand[nc++] = i;
  char faults[1024] = "";
  for (int i = 0; i + 1 < nc; i++)
    snprintf(faults + strlen(faults), sizeof faults - strlen(faults), "%s%s", i ? "," : "",
             ganc_conv_variant_at(cand[i])->name);
  setenv("GANC_TEST_CONV_FAULT", faults, 1);
  const int v = conv2d_pick_variant_cuda(&g, st, GANC_CONV_FWD, &s, d_x, d_w);
  unsetenv("GANC_TEST_CONV_FAULT");
  conv2d_forward_cuda(&g, st, &s, d_x, d_w, d_y);
  ganc_cuda_d2h(&g, y1, d_y, ny * 4);
  conv2d_run_variant_cuda(&g, st, cand[nc - 1], GANC_CONV_FWD, &s, d_x, d_w, d_y);
  ganc_cuda_d2h(&g, y2, d_y, ny * 4);
  const int vw = conv2d_pick_variant_cuda(&g, st, GANC_CONV_BWD_WEIGHT, &s, d_x, d_dy);
  // The FP32 sums' worst case for the tolerance: backward-weight over 8,192 products per output,
  // all alike and of one sign (x and dy constant, not powers of two), where every addition of a
  // long run rounds the same way — no variant may be taken for faulty there either.
  conv_shape sc;
  conv_shape_make(&sc, 8, 32, 32, 8, 8, 3, 3, 1, 1);
  const size_t cx = (size_t)sc.N * sc.H * sc.W * sc.C, cy = (size_t)sc.N * sc.P * sc.Q * sc.K;
  float *hx = fnew(cx), *hy = fnew(cy);
  for (size_t i = 0; i < cx; i++)
    hx[i] = 0.7f;
  for (size_t i = 0; i < cy; i++)
    hy[i] = 0.3f;
  float *d_cx = ganc_cuda_malloc(&g, cx * 4), *d_cy = ganc_cuda_malloc(&g, cy * 4);
  ganc_cuda_h2d(&g, d_cx, hx, cx * 4), ganc_cuda_h2d(&g, d_cy, hy, cy * 4);
  const int vc = conv2d_pick_variant_cuda(&g, st, GANC_CONV_BWD_WEIGHT, &sc, d_cx, d_cy);
  ganc_cuda_free(&g, d_cx), ganc_cuda_free(&g, d_cy);
  free(hx), free(hy);
  const int before = ganc_conv_disagreements(&g); // nc - 1: the faulted forwards alone
  // x stored in bf16 with every variant that reads it faulted (on a shape not picked yet): the
  // pick for the halves finds none and the launcher widens them, so the plain pick runs the
  // variants that read FP32 alone (mma-bf16-cp3): its output on the widened x, and a second call
  // asks nothing again (the "none agree" answer is kept).
  conv_shape sw;
  conv_shape_make(&sw, 4, 12, 12, 16, 16, 3, 3, 1, 1);
  const size_t wx = (size_t)sw.N * sw.H * sw.W * sw.C, wy = (size_t)sw.N * sw.P * sw.Q * sw.K;
  char readers[1024] = "";
  int nread = 0, plain = -1;
  for (int i = 0; i < ganc_conv_variant_count(); i++) {
    const ganc_conv_variant *var = ganc_conv_variant_at(i);
    if (var->precision != GANC_PREC_BF16 || !ganc_conv_variant_runs(&g, i) ||
        !ganc_conv_variant_supports(i, GANC_CONV_FWD, &sw))
      continue;
    if (ganc_conv_variant_reads_bf16(i))
      snprintf(readers + strlen(readers), sizeof readers - strlen(readers), "%s%s",
               nread++ ? "," : "", var->name);
    else if (plain < 0)
      plain = i;
  }
  uint16_t *xh = xmalloc(wx * sizeof(uint16_t));
  float *xw = fnew(wx), *o1 = fnew(wy), *o2 = fnew(wy);
  for (size_t i = 0; i < wx; i++)
    xh[i] = ganc_bf16_store(x[i % nx]), xw[i] = ganc_bf16_load(xh[i]);
  uint16_t *d_xh = ganc_cuda_malloc(&g, wx * sizeof(uint16_t));
  float *d_xw = ganc_cuda_malloc(&g, wx * 4), *d_o = ganc_cuda_malloc(&g, wy * 4);
  ganc_cuda_h2d(&g, d_xh, xh, wx * sizeof(uint16_t)), ganc_cuda_h2d(&g, d_xw, xw, wx * 4);
  setenv("GANC_TEST_CONV_FAULT", readers, 1);
  conv2d_mixed_cuda(&g, st, GANC_CONV_FWD, &sw, d_xh, 1, d_w, 0, NULL, d_o, 0, NULL);
  ganc_cuda_d2h(&g, o1, d_o, wy * 4);
  const int mid = ganc_conv_disagreements(&g);
  conv2d_mixed_cuda(&g, st, GANC_CONV_FWD, &sw, d_xh, 1, d_w, 0, NULL, d_o, 0, NULL);
  unsetenv("GANC_TEST_CONV_FAULT");
  const int after = ganc_conv_disagreements(&g);
  if (plain >= 0) conv2d_run_variant_cuda(&g, st, plain, GANC_CONV_FWD, &sw, d_xw, d_w, d_o);
  ganc_cuda_d2h(&g, o2, d_o, wy * 4);
  const int widened = plain >= 0 && nread > 0 && memcmp(o1, o2, wy * 4) == 0 &&
                      mid == before + 2 * nread && after == mid;
  ganc_cuda_free(&g, d_xh), ganc_cuda_free(&g, d_xw), ganc_cuda_free(&g, d_o);
  free(xh), free(xw), free(o1), free(o2);
  fclose(g.tune_log);
  g.tune_log = NULL;
  uint8_t *text = NULL;
  size_t n = 0;
  int nlines = 0, named = 1, only = 0;
  if (ganc_read_file(logp, 1 << 20, &text, &n) == 0) {
    text = xrealloc(text, n + 1);
    text[n] = 0;
    for (const char *p = (const char *)text; (p = strstr(p, " disagrees with the FP32 kernel"));
         p++)
      nlines++;
    char want[200]; // "# conv fwd ...: NAME disagrees": the name as a whole
    for (int i = 0; i + 1 < nc; i++) {
      snprintf(want, sizeof want, ": %s disagrees", ganc_conv_variant_at(cand[i])->name);
      named &= strstr((const char *)text, want) != NULL;
    }
    // the forward's choice line (kernels/conv.cu: log_choice), untimed: one candidate was left
    snprintf(want, sizeof want,
             "conv %-10s N%d %dx%dx%d -> %dx%dx%d k%dx%d s%d p%d: %s (the only candidate that "
             "agrees)\n",
             "fwd", s.N, s.H, s.W, s.C, s.P, s.Q, s.K, s.R, s.S, s.stride, s.pad,
             nc ? ganc_conv_variant_at(cand[nc - 1])->name : "-");
    only = strstr((const char *)text, want) != NULL;
  }
  const int ok = nc >= 2 && v == cand[nc - 1] && memcmp(y1, y2, ny * 4) == 0 && before == nc - 1 &&
                 nlines == nc - 1 + 2 * nread && named && only && vw >= 0 &&
                 ganc_conv_variant_at(vw)->precision == GANC_PREC_BF16 && vc >= 0 && widened;
  printf("%s agreement check: %d bf16 forward candidates, all but %s faulted: picked %s%s; %d "
         "\"disagrees\" lines in kernels.log (want %d)%s%s; backward-weight with no fault: %s, on "
         "8,192 like products: %s; x in bf16, its %d readers faulted: %s\n",
         ok ? "ok  " : "FAIL", nc, nc ? ganc_conv_variant_at(cand[nc - 1])->name : "-",
         v >= 0 ? ganc_conv_variant_at(v)->name : "none",
         memcmp(y1, y2, ny * 4) ? " (OUTPUT DIFFERS)" : ", same bits", nlines, nc - 1 + 2 * nread,
         named ? "" : ", A FAULTED NAME MISSING",
         only ? "" : ", NO \"only candidate that agrees\" LINE",
         vw >= 0 ? ganc_conv_variant_at(vw)->name : "none",
         vc >= 0 ? ganc_conv_variant_at(vc)->name : "none", nread,
         widened ? "widened, the FP32-reading variant's bits, asked once"
                 : "NOT WIDENED AS EXPECTED");
  if (ok)
    r->passed++;
  else
    r->failed++;
  free(text);
  ganc_cuda_free(&g, d_x), ganc_cuda_free(&g, d_w), ganc_cuda_free(&g, d_dy);
  ganc_cuda_free(&g, d_y);
  free(x), free(w), free(dy), free(y1), free(y2);
  ganc_cuda_ctx_free(&g);
  unsetenv("GANC_CACHE_DIR");
  tu_rmdir(dir);
}

int main(int argc, char **argv) {
  int list = 0;
  const char *match[16];
  int nmatch = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--list") == 0) {
      list = 1;
    } else if (strcmp(argv[i], "--match") == 0 && i + 1 < argc && nmatch < 16) {
      match[nmatch++] = argv[++i];
    } else if (strcmp(argv[i], "--no-cudnn") == 0) {
      use_cudnn = 0;
    } else {
      FILE *f = strcmp(argv[i], "--help") ? stderr : stdout;
      fprintf(f, "usage: %s [--list] [--match TEXT]... [--no-cudnn]\n", argv[0]);
      return f == stdout ? 0 : GANC_EXIT_USAGE;
    }
  }
  case_list cases = {0};
  build_cases(&cases);
  if (nmatch) { // keep the cases whose name contains one of the TEXTs
    int k = 0;
    for (int i = 0; i < cases.n; i++)
      for (int j = 0; j < nmatch; j++)
        if (strstr(cases.v[i].name, match[j])) {
          cases.v[k++] = cases.v[i];
          break;
        }
    cases.n = k;
  }
  if (list) {
    char shp[96];
    for (int i = 0; i < cases.n; i++) {
      shape_str(&cases.v[i].s, shp, sizeof shp);
      printf("%-26s %s\n", cases.v[i].name, shp);
    }
    printf("%d shapes, %d cases\n", cases.n, NROLES * cases.n);
    free(cases.v);
    return 0;
  }

  ganc_ctx gpu;
  memset(&gpu, 0, sizeof gpu);
  char why[256] = "";
  if (ganc_cuda_ctx_init(&gpu, 0, why, sizeof why) != 0) {
    printf("SKIP: %s\n", why);
    free(cases.v);
    return SKIP;
  }
  char desc[256];
  ganc_cuda_describe(&gpu, desc, sizeof desc);
  printf("device: %s\n", desc);
  ganc_ctx cpu;
  ganc_ctx_init_cpu(&cpu, 0);

  run_state r = {.gpu = &gpu, .cpu = &cpu, .st = ganc_cuda_stream(&gpu)};
  for (int i = 0; i < cases.n; i++) {
    // The variant table on every case on a GPU; under the emulator, where a tensor-core variant
    // runs 5-8 times slower than the FP32 kernel, on the cases of at most 2^21 multiply-adds per
    // role (the awkward, split-K and random shapes, and the DCGAN layers at batch 1 and 3 and the
    // small ones at batch 4; the larger DCGAN layers differ from those only in their counts).
    // The warp-tiling (w4x2) and pipeline (cp3) twins, whose fetches and fragments are those of
    // a variant already run, only on the awkward and split-K shapes there.
    const conv_shape *cs = &cases.v[i].s;
    const double macs = (double)cs->N * cs->P * cs->Q * cs->K * cs->R * cs->S * cs->C;
    const char *nm = cases.v[i].name;
    const int awkward = !strncmp(nm, "odd", 3) || !strncmp(nm, "split-K", 7);
    // Under the emulator a shape an earlier case had (D's first conv is G's last, run as its
    // adjoint) walks the table once: the same launches again would prove nothing new.
    int again = 0;
    for (int j = 0; j < i && !again; j++)
      again = !memcmp(&cases.v[j].s, cs, sizeof *cs);
    r.variants = !EMULATED || awkward ? 2 : macs <= 0x1p21 && !again ? 1 : 0;
    run_case(&r, &cases.v[i], 0x5EED0000ull + (uint64_t)i);
  }
  int agree = !nmatch; // the agreement check: with the cases, or when a TEXT names it
  for (int j = 0; j < nmatch; j++)
    agree |= strstr("agreement check", match[j]) != NULL;
  // No variant left out by the agreement check in every case above (no fault was asked): a
  // correct variant never disagrees with the FP32 kernel (kernels/conv.cu says why).
  const int dis = ganc_conv_disagreements(&gpu);
  printf("%s agreement check: %d variants left out over the cases (want 0)\n",
         dis ? "FAIL" : "ok  ", dis);
  if (dis)
    r.failed++;
  else
    r.passed++;
  if (agree) run_agreement(&r);
  printf("%d passed, %d failed\n", r.passed, r.failed);

  ganc_cuda_ctx_free(&gpu);
  ganc_ctx_free(&cpu);
  free(cases.v);
  return r.failed ? GANC_EXIT_RUNTIME : 0;
}
