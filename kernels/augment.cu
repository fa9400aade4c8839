// augment.cu — DiffAugment's colour, translation and cutout (Zhao et al. 2020), ADA's blit and
// its controller of p (Karras et al. 2020) on the GPU; the
// CUDA twins of src/ops/augment.c, same arguments plus the stream. Images [N, H, W, C] (C
// fastest). What each op computes, and the Philox draws behind it: ops/augment_core.h.
//
// Gradient rule (ops.h): every gradient here is an activation gradient and OVERWRITES.
//
// Agreement with the CPU twin: bit-identical, every op. The draws are the same function of
// (seed, counter, image, transform) on both sides (augment_core.h, made here by each thread
// without a host round trip); translation and cutout copy or multiply by 0; the colour is the
// same double expression (products through ganc_dmul, never fused into an FMA) over the image
// sum in the same tree. No atomics: every run gives the same bits.
//
// Layout of the work:
//   - colour: one block of GANC_LONG_LANES (256) threads per image (grid-stride over images):
//     lane t sums the image's elements t, t + 256, ... (coalesced), the halving tree in shared
//     memory gives the image mean, then thread t writes pixels t, t + 256, ... (each its C
//     channels: the pixel mean needs them together). The image is read twice.
//   - translation, cutout, blit: images on grid y (grid-stride past 65535), an image's elements
//     grid-stride over grid x; each thread makes its image's draw once (one Philox block) and
//     finds (row, column, channel) of each element by division.
//   - ADA's controller: single blocks (the batch's logits: latency, not bandwidth).
//
// Without a GPU, tests/gpu/cudemu (the tests' CUDA emulator) runs this file, kernels and
// launchers, on the CPU: test_gpu_ops_emu compares it with the CPU twin in CI.
#include "kernels/cuda_check.h"    // CUDA_CHECK_LAUNCH, KERNEL_REQUIRE
#include "kernels/elementwise.cuh" // launch shape, unfused float arithmetic
#include "kernels/kernels.h"       // the launchers' declarations
#include "ops/augment_core.h"      // the draws, the colour arithmetic, the argument checks

#include <stdint.h>

enum {
  AUG_MAX_IMAGE_BLOCKS = 65535, // grid y (translation, cutout), grid x (colour): then grid-stride
};

// ---------------------------------------------------------------------------------------------
// kernels

// grid (images), block GANC_LONG_LANES: out = the colour transform of in (bright = 1, forward)
// or its adjoint (bright = 0, backward on dy).
__global__ static void __launch_bounds__(GANC_LONG_LANES)
    color_kernel(int N, int64_t HW, int C, const float *__restrict__ in, float *__restrict__ out,
                 uint64_t seed, const uint64_t *counter_at, int n0, const float *prob, int bright) {
  const uint64_t counter = *counter_at; // this step's (backend memory: graphs replay it)
  __shared__ double s[GANC_LONG_LANES];
  const int t = threadIdx.x;
  const int64_t per = HW * C;
  for (int n = blockIdx.x; n < N; n += gridDim.x) {
    const float *a = in + n * per;
    float *o = out + n * per;
    const ganc_aug_color p = ganc_aug_color_draw(seed, counter, n0 + n, prob);
    if (!p.on) { // not applied to this image: a copy (the same branch in every lane)
      for (int64_t e = t; e < per; e += GANC_LONG_LANES)
        o[e] = a[e];
      continue;
    }
    s[t] = ganc_aug_lane_sum(a, per, t);
    __syncthreads();
    for (int half = GANC_LONG_LANES / 2; half > 0; half >>= 1) {
      ganc_tree_level(s, t, half);
      __syncthreads();
    }
    const double M = s[0] / (double)per;
    const double b = bright ? p.b : 0.0;
    for (int64_t q = t; q < HW; q += GANC_LONG_LANES)
      ganc_aug_color_pixel(a + q * C, o + q * C, C, M, p.s, p.c, b);
    __syncthreads(); // every lane has read s[0] before the next image's lanes overwrite it
  }
}

// grid (x: an image's elements, y: images): out[n, i, j, c] = in[n, i + sign·di, j + sign·dj, c],
// 0 outside the image.
__global__ static void shift_kernel(int N, int H, int W, int C, float ratio,
                                    const float *__restrict__ in, float *__restrict__ out,
                                    uint64_t seed, const uint64_t *counter_at, int n0,
                                    const float *prob, int sign) {
  const uint64_t counter = *counter_at; // this step's (backend memory: graphs replay it)
  const int64_t per = (int64_t)H * W * C;
  const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  const int64_t T = (int64_t)gridDim.x * blockDim.x;
  for (int n = blockIdx.y; n < N; n += gridDim.y) {
    const ganc_aug_shift d = ganc_aug_shift_draw(seed, counter, n0 + n, H, W, ratio, prob);
    const int di = sign * d.di, dj = sign * d.dj;
    const float *a = in + n * per;
    float *o = out + n * per;
    for (int64_t e = tid; e < per; e += T) {
      const int64_t pix = e / C;
      const int c = (int)(e - pix * C), i = (int)(pix / W), j = (int)(pix - (int64_t)i * W);
      const int si = i + di, sj = j + dj;
      o[e] = si >= 0 && si < H && sj >= 0 && sj < W ? a[((int64_t)si * W + sj) * C + c] : 0.0f;
    }
  }
}

// grid (x: an image's elements, y: images): out = in, times 0 inside the image's window.
__global__ static void cutout_kernel(int N, int H, int W, int C, float ratio,
                                     const float *__restrict__ in, float *__restrict__ out,
                                     uint64_t seed, const uint64_t *counter_at, int n0,
                                     const float *prob) {
  const uint64_t counter = *counter_at; // this step's (backend memory: graphs replay it)
  const int64_t per = (int64_t)H * W * C;
  const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  const int64_t T = (int64_t)gridDim.x * blockDim.x;
  for (int n = blockIdx.y; n < N; n += gridDim.y) {
    const ganc_aug_window w = ganc_aug_window_draw(seed, counter, n0 + n, H, W, ratio, prob);
    const float *a = in + n * per;
    float *o = out + n * per;
    for (int64_t e = tid; e < per; e += T) {
      const int64_t pix = e / C;
      const int i = (int)(pix / W), j = (int)(pix - (int64_t)i * W);
      const float v = a[e];
      o[e] = i >= w.i0 && i < w.i1 && j >= w.j0 && j < w.j1 ? rn_mul(v, 0.0f) : v;
    }
  }
}

// grid (x: an image's elements, y: images): out[n, i, j, c] = in[n, s(i, j), c], s the blit's
// forward or backward gather (augment_core.h).
__global__ static void blit_kernel(int N, int H, int W, int C, int modes,
                                   const float *__restrict__ in, float *__restrict__ out,
                                   uint64_t seed, const uint64_t *counter_at, int n0,
                                   const float *prob, int backward) {
  const uint64_t counter = *counter_at; // this step's (backend memory: graphs replay it)
  const int64_t per = (int64_t)H * W * C;
  const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  const int64_t T = (int64_t)gridDim.x * blockDim.x;
  for (int n = blockIdx.y; n < N; n += gridDim.y) {
    const ganc_aug_blit b = ganc_aug_blit_draw(seed, counter, n0 + n, modes, prob);
    const float *a = in + n * per;
    float *o = out + n * per;
    for (int64_t e = tid; e < per; e += T) {
      const int64_t pix = e / C;
      const int c = (int)(e - pix * C), i = (int)(pix / W), j = (int)(pix - (int64_t)i * W);
      int si, sj;
      ganc_aug_blit_src(i, j, H, W, b, backward, &si, &sj);
      o[e] = a[((int64_t)si * W + sj) * C + c];
    }
  }
}

// ADA: the fakes' sum by one thread in the CPU's order (n is a batch: a few hundred adds).
__global__ static void ada_sum_kernel(int n, const float *fake, double *fsum) {
  fsum[0] = ganc_ada_sum(n, fake);
  fsum[1] = (double)n;
}

// ADA: one block of GANC_LONG_LANES; thread t counts the signs of reals t, t + 256, ... against
// the mean, and a tree of integers adds them (exact: any order gives the CPU's sum).
__global__ static void __launch_bounds__(GANC_LONG_LANES)
    ada_signs_kernel(int n, const float *real, const double *fsum, double *out) {
  __shared__ int s[GANC_LONG_LANES];
  const int t = threadIdx.x;
  const double m = fsum[0] / fsum[1];
  int v = 0;
  for (int i = t; i < n; i += GANC_LONG_LANES)
    v += ganc_ada_sign(real[i], m);
  s[t] = v;
  __syncthreads();
  for (int half = GANC_LONG_LANES / 2; half > 0; half >>= 1) {
    if (t < half) s[t] += s[t + half];
    __syncthreads();
  }
  if (t == 0) {
    out[0] = (double)s[0];
    out[1] = (double)n;
  }
}

__global__ static void ada_adjust_kernel(const double *out, double *state, float *p, float target,
                                         double per_image, double interval) {
  ganc_ada_adjust(out, state, p, target, per_image, interval);
}

// ---------------------------------------------------------------------------------------------
// launchers

static void aug_require(const char *op, int N, int H, int W, int C, float ratio, const float *in,
                        const float *out) {
  char buf[200];
  const char *why = ganc_aug_invalid(N, H, W, C, ratio, in, out, buf, sizeof buf);
  if (why) ganc_die(GANC_EXIT_RUNTIME, "internal error in %s: %s", op, why);
}

static void launch_color(ganc_stream st, int N, int H, int W, int C, const float *in, float *out,
                         uint64_t seed, const uint64_t *counter, int n0, const float *p,
                         int bright) {
  const int blocks = N < AUG_MAX_IMAGE_BLOCKS ? N : AUG_MAX_IMAGE_BLOCKS;
  GANC_LAUNCH(color_kernel, blocks, GANC_LONG_LANES, st)
  (N, (int64_t)H * W, C, in, out, seed, counter, n0, p, bright);
  CUDA_CHECK_LAUNCH();
}

// Grid for the per-image elementwise kernels: images on y, and x enough blocks for an image but
// about EW_MAX_BLOCKS in all.
static dim3 image_grid(int N, int H, int W, int C) {
  const int64_t gy = N < AUG_MAX_IMAGE_BLOCKS ? N : AUG_MAX_IMAGE_BLOCKS;
  const int64_t per = (int64_t)H * W * C, cap = EW_MAX_BLOCKS / gy;
  int64_t gx = (per + EW_THREADS - 1) / EW_THREADS;
  gx = gx < cap ? gx : cap;
  return dim3((unsigned)(gx < 1 ? 1 : gx), (unsigned)gy);
}

extern "C" void augment_color_forward_cuda(ganc_ctx *ctx, ganc_stream st, int N, int H, int W,
                                           int C, const float *x, float *y, uint64_t seed,
                                           const uint64_t *counter, int n0, const float *p) {
  (void)ctx;
  aug_require("augment_color_forward_cuda", N, H, W, C, 0.0f, x, y);
  launch_color(st, N, H, W, C, x, y, seed, counter, n0, p, 1);
}

extern "C" void augment_color_backward_cuda(ganc_ctx *ctx, ganc_stream st, int N, int H, int W,
                                            int C, const float *dy, float *dx, uint64_t seed,
                                            const uint64_t *counter, int n0, const float *p) {
  (void)ctx;
  aug_require("augment_color_backward_cuda", N, H, W, C, 0.0f, dy, dx);
  launch_color(st, N, H, W, C, dy, dx, seed, counter, n0, p, 0);
}

extern "C" void augment_translation_forward_cuda(ganc_ctx *ctx, ganc_stream st, int N, int H, int W,
                                                 int C, float ratio, const float *x, float *y,
                                                 uint64_t seed, const uint64_t *counter, int n0,
                                                 const float *p) {
  (void)ctx;
  aug_require("augment_translation_forward_cuda", N, H, W, C, ratio, x, y);
  GANC_LAUNCH(shift_kernel, image_grid(N, H, W, C), EW_THREADS, st)
  (N, H, W, C, ratio, x, y, seed, counter, n0, p, 1);
  CUDA_CHECK_LAUNCH();
}

extern "C" void augment_translation_backward_cuda(ganc_ctx *ctx, ganc_stream st, int N, int H,
                                                  int W, int C, float ratio, const float *dy,
                                                  float *dx, uint64_t seed, const uint64_t *counter,
                                                  int n0, const float *p) {
  (void)ctx;
  aug_require("augment_translation_backward_cuda", N, H, W, C, ratio, dy, dx);
  GANC_LAUNCH(shift_kernel, image_grid(N, H, W, C), EW_THREADS, st)
  (N, H, W, C, ratio, dy, dx, seed, counter, n0, p, -1);
  CUDA_CHECK_LAUNCH();
}

extern "C" void augment_cutout_forward_cuda(ganc_ctx *ctx, ganc_stream st, int N, int H, int W,
                                            int C, float ratio, const float *x, float *y,
                                            uint64_t seed, const uint64_t *counter, int n0,
                                            const float *p) {
  (void)ctx;
  aug_require("augment_cutout_forward_cuda", N, H, W, C, ratio, x, y);
  GANC_LAUNCH(cutout_kernel, image_grid(N, H, W, C), EW_THREADS, st)
  (N, H, W, C, ratio, x, y, seed, counter, n0, p);
  CUDA_CHECK_LAUNCH();
}

extern "C" void augment_cutout_backward_cuda(ganc_ctx *ctx, ganc_stream st, int N, int H, int W,
                                             int C, float ratio, const float *dy, float *dx,
                                             uint64_t seed, const uint64_t *counter, int n0,
                                             const float *p) {
  (void)ctx;
  aug_require("augment_cutout_backward_cuda", N, H, W, C, ratio, dy, dx);
  GANC_LAUNCH(cutout_kernel, image_grid(N, H, W, C), EW_THREADS, st)
  (N, H, W, C, ratio, dy, dx, seed, counter, n0, p);
  CUDA_CHECK_LAUNCH();
}

static void blit_require(const char *op, int N, int H, int W, int C, int modes, const float *in,
                         const float *out) {
  char buf[200];
  const char *why = ganc_aug_blit_invalid(N, H, W, C, modes, in, out, buf, sizeof buf);
  if (why) ganc_die(GANC_EXIT_RUNTIME, "internal error in %s: %s", op, why);
}

extern "C" void augment_blit_forward_cuda(ganc_ctx *ctx, ganc_stream st, int N, int H, int W, int C,
                                          int modes, const float *x, float *y, uint64_t seed,
                                          const uint64_t *counter, int n0, const float *p) {
  (void)ctx;
  blit_require("augment_blit_forward_cuda", N, H, W, C, modes, x, y);
  GANC_LAUNCH(blit_kernel, image_grid(N, H, W, C), EW_THREADS, st)
  (N, H, W, C, modes, x, y, seed, counter, n0, p, 0);
  CUDA_CHECK_LAUNCH();
}

extern "C" void augment_blit_backward_cuda(ganc_ctx *ctx, ganc_stream st, int N, int H, int W,
                                           int C, int modes, const float *dy, float *dx,
                                           uint64_t seed, const uint64_t *counter, int n0,
                                           const float *p) {
  (void)ctx;
  blit_require("augment_blit_backward_cuda", N, H, W, C, modes, dy, dx);
  GANC_LAUNCH(blit_kernel, image_grid(N, H, W, C), EW_THREADS, st)
  (N, H, W, C, modes, dy, dx, seed, counter, n0, p, 1);
  CUDA_CHECK_LAUNCH();
}

extern "C" void ada_sum_cuda(ganc_ctx *ctx, ganc_stream st, int n, const float *fake,
                             double *fsum) {
  (void)ctx;
  KERNEL_REQUIRE(n >= 1, "ada_sum_cuda", "n = %d", n);
  GANC_LAUNCH(ada_sum_kernel, 1, 1, st)(n, fake, fsum);
  CUDA_CHECK_LAUNCH();
}

extern "C" void ada_signs_cuda(ganc_ctx *ctx, ganc_stream st, int n, const float *real,
                               const double *fsum, double *out) {
  (void)ctx;
  KERNEL_REQUIRE(n >= 1, "ada_signs_cuda", "n = %d", n);
  GANC_LAUNCH(ada_signs_kernel, 1, GANC_LONG_LANES, st)(n, real, fsum, out);
  CUDA_CHECK_LAUNCH();
}

extern "C" void ada_adjust_cuda(ganc_ctx *ctx, ganc_stream st, const double *out, double *state,
                                float *p, float target, double per_image, double interval) {
  (void)ctx;
  char why[200];
  KERNEL_REQUIRE(!ganc_ada_invalid(target, per_image, interval, why, sizeof why), "ada_adjust_cuda",
                 "%s", why);
  GANC_LAUNCH(ada_adjust_kernel, 1, 1, st)(out, state, p, target, per_image, interval);
  CUDA_CHECK_LAUNCH();
}
