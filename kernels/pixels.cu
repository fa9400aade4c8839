// pixels.cu — images and latents on the GPU: uint8 pixels ↔ floats in [−1, 1] (with the optional
// horizontal flip of augmentation), and the latents z of core/philox.h; the CUDA twins of
// src/ops/pixels.c and of ganc_latent in src/core/philox.c.
//
// Agreement with the CPU:
//   pixels_to_float: exact. Each byte's float is (float)(v / 127.5 − 1) from double, as pixels.c's
//     table; each block builds the same 256-entry table in shared memory.
//   pixels_to_uint8: exact. round((v + 1)·127.5) half away from zero, in double, NaN → 0,
//     clamped, in pixels.c's expression.
//   latents: Philox4x32-10 with the same counter (block of 4 columns, row lo, row hi, stream) and
//     key (seed lo, seed hi), and Box-Muller in DOUBLE with philox.c's formulas in its order. The
//     integers are identical; the doubles differ from glibc's only where CUDA's log/sin/cos
//     (≤ 1–2 ulp in double) differ from glibc's, and the float rounded from them changes only when
//     the double lies within those ulps of a float rounding boundary: ~1e-8 per number.
//
// Without a GPU, tests/gpu/cudemu (the tests' CUDA emulator) runs this file, kernels and
// launchers, on the CPU: test_gpu_ops_emu checks it bit for bit against philox.c and pixels.c in
// CI (the counter/key layout, rounds, column blocking, index and flip math).
#include "kernels/cuda_check.h"    // CUDA_CHECK_LAUNCH, KERNEL_REQUIRE
#include "kernels/elementwise.cuh" // launch shape
#include "kernels/kernels.h"       // the launchers' declarations

extern "C" {
#include "core/philox.h"      // GANC_RNG_LATENT, the stream of latents
#include "core/philox_core.h" // the Philox rounds and Box-Muller step, shared with the CPU
}

#include <math.h>
#include <stdint.h>

// ---------------------------------------------------------------------------------------------
// pixels → floats

// Table entry v: 0 → −1 and 255 → 1 exactly, rounded once from double.
__host__ __device__ static inline float pixel_value(int v) { return (float)(v / 127.5 - 1.0); }

// Element i of dst [N, H, W, C]: its source byte, mirrored within the row when the image flips
// (pixels reverse, channels keep their order).
__host__ __device__ static inline int64_t pixel_src_index(int64_t i, int H, int W, int C,
                                                          const uint8_t *flip) {
  if (!flip) return i;
  const int64_t WC = (int64_t)W * C, nh = i / WC;
  if (!flip[nh / H]) return i;
  const int j = (int)(i - nh * WC), w = j / C, c = j - w * C;
  return nh * WC + (int64_t)(W - 1 - w) * C + c;
}

__host__ __device__ static void to_float_body(int64_t tid, int64_t T, int64_t n, int H, int W,
                                              int C, const uint8_t *src, const uint8_t *flip,
                                              const float *lut, float *dst) {
  for (int64_t i = tid; i < n; i += T)
    dst[i] = lut[src[pixel_src_index(i, H, W, C, flip)]];
}

__global__ static void __launch_bounds__(EW_THREADS)
    to_float_kernel(int64_t n, int H, int W, int C, const uint8_t *__restrict__ src,
                    const uint8_t *__restrict__ flip, float *__restrict__ dst) {
  __shared__ float lut[256];
  lut[threadIdx.x] = pixel_value(threadIdx.x); // blockDim.x == 256
  __syncthreads();
  to_float_body((int64_t)blockIdx.x * blockDim.x + threadIdx.x, (int64_t)gridDim.x * blockDim.x, n,
                H, W, C, src, flip, lut, dst);
}

// ---------------------------------------------------------------------------------------------
// floats → pixels

// round((v + 1)·127.5) half away from zero, in double so that 0 gives exactly 127.5 → 128 and no
// float rounding of the product moves a value across a half. !(t > 0) sends NaN (and −inf) to
// 0; +inf and anything above 1 clamp to 255.
__host__ __device__ static inline uint8_t pixel_byte(float v) {
  const double t = ((double)v + 1.0) * 127.5;
  return !(t > 0.0) ? 0 : t >= 255.0 ? 255 : (uint8_t)round(t);
}

__host__ __device__ static void to_uint8_body(int64_t tid, int64_t T, int64_t n, const float *src,
                                              uint8_t *dst) {
  for (int64_t i = tid; i < n; i += T)
    dst[i] = pixel_byte(src[i]);
}

__global__ static void to_uint8_kernel(int64_t n, const float *__restrict__ src,
                                       uint8_t *__restrict__ dst) {
  to_uint8_body((int64_t)blockIdx.x * blockDim.x + threadIdx.x, (int64_t)gridDim.x * blockDim.x, n,
                src, dst);
}

// ---------------------------------------------------------------------------------------------
// latents: Philox4x32-10 and Box-Muller, as src/core/philox.c

// Work item `item` of z [n, z_dim]: row item / nb (latent index first + row), columns
// 4·blk .. 4·blk + 3 with blk = item mod nb, nb = ceil(z_dim / 4) — one Philox block, two
// Box-Muller pairs, exactly ganc_rng_normals's iteration i = 4·blk.
__host__ __device__ static void latent_item(int64_t item, uint64_t seed, uint64_t first, int z_dim,
                                            float *z) {
  const int nb = (z_dim + 3) / 4;
  const int64_t row = item / nb;
  const int blk = (int)(item - row * nb);
  const uint64_t k = first + (uint64_t)row;
  uint32_t o[4] = {(uint32_t)blk, (uint32_t)k, (uint32_t)(k >> 32), (uint32_t)GANC_RNG_LATENT};
  ganc_philox_rounds(o, (uint32_t)seed, (uint32_t)(seed >> 32));
  float *out = z + row * z_dim;
  const int i = 4 * blk;
  for (int p = 0; p < 2; p++) {
    float n0, n1;
    ganc_box_muller(o[2 * p], o[2 * p + 1], &n0, &n1);
    if (i + 2 * p < z_dim) out[i + 2 * p] = n0;
    if (i + 2 * p + 1 < z_dim) out[i + 2 * p + 1] = n1;
  }
}

__global__ static void latents_kernel(uint64_t seed, uint64_t first, int64_t items, int z_dim,
                                      float *__restrict__ z) {
  for (int64_t it = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; it < items;
       it += (int64_t)gridDim.x * blockDim.x)
    latent_item(it, seed, first, z_dim, z);
}

// The step's draws: items [0, latent items) are latent_item's; the next N items are row i's flip
// and label (ganc_rng_u32_core, as core/philox.c). a->step and a->latent_first come from device
// memory: a replayed graph draws each step's.
__global__ static void step_draws_kernel(const ganc_step_args *a, uint64_t seed, int N, int row0,
                                         int z_dim, int mirror, int ncls, int64_t litems,
                                         float *__restrict__ z, uint8_t *__restrict__ flip,
                                         int32_t *__restrict__ labels) {
  const uint64_t step = a->step, first = a->latent_first;
  for (int64_t it = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; it < litems + N;
       it += (int64_t)gridDim.x * blockDim.x) {
    if (it < litems) {
      latent_item(it, seed, first, z_dim, z);
      continue;
    }
    const int i = (int)(it - litems);
    const uint32_t col = (uint32_t)(row0 + i);
    flip[i] = mirror ? (uint8_t)(ganc_rng_u32_core(seed, GANC_RNG_FLIP, step, col) & 1u) : 0;
    if (ncls > 0)
      labels[i] = (int32_t)(ganc_rng_u32_core(seed, GANC_RNG_LABEL, step, col) % (uint32_t)ncls);
  }
}

// ---------------------------------------------------------------------------------------------
// launchers: device memory; src/dst [N, H, W, C], flip [N] (NULL: no flips), z [n, z_dim]

static void pixels_check(int N, int H, int W, int C, const char *op) {
  if (N < 0 || H < 1 || W < 1 || C < 1)
    ganc_die(GANC_EXIT_RUNTIME, "%s: impossible image shape [%d, %d, %d, %d]", op, N, H, W, C);
}

extern "C" void pixels_to_float_cuda(ganc_ctx *ctx, ganc_stream st, int N, int H, int W, int C,
                                     const uint8_t *src, const uint8_t *flip, float *dst) {
  (void)ctx;
  pixels_check(N, H, W, C, "pixels_to_float_cuda");
  const int64_t n = (int64_t)N * H * W * C;
  if (n == 0) return;
  GANC_LAUNCH(to_float_kernel, ew_blocks(n), EW_THREADS, st)(n, H, W, C, src, flip, dst);
  CUDA_CHECK_LAUNCH();
}

extern "C" void pixels_to_uint8_cuda(ganc_ctx *ctx, ganc_stream st, int64_t n, const float *src,
                                     uint8_t *dst) {
  (void)ctx;
  KERNEL_REQUIRE(n >= 0, "pixels_to_uint8_cuda", "n = %lld", (long long)n);
  if (n == 0) return;
  GANC_LAUNCH(to_uint8_kernel, ew_blocks(n), EW_THREADS, st)(n, src, dst);
  CUDA_CHECK_LAUNCH();
}

extern "C" void latents_cuda(ganc_ctx *ctx, ganc_stream st, uint64_t seed, uint64_t first, int n,
                             int z_dim, float *z) {
  (void)ctx;
  KERNEL_REQUIRE(n >= 0 && z_dim >= 1, "latents_cuda", "n = %d, z_dim = %d", n, z_dim);
  const int64_t items = (int64_t)n * ((z_dim + 3) / 4);
  if (items == 0) return;
  GANC_LAUNCH(latents_kernel, ew_blocks(items), EW_THREADS, st)(seed, first, items, z_dim, z);
  CUDA_CHECK_LAUNCH();
}

extern "C" void step_draws_cuda(ganc_ctx *ctx, ganc_stream st, const ganc_step_args *a,
                                uint64_t seed, int N, int row0, int z_dim, int mirror, int ncls,
                                float *z, uint8_t *flip, int32_t *labels) {
  (void)ctx;
  KERNEL_REQUIRE(N >= 0 && z_dim >= 1 && ncls >= 0 && row0 >= 0 && a, "step_draws_cuda",
                 "N = %d, z_dim = %d, ncls = %d, row0 = %d", N, z_dim, ncls, row0);
  const int64_t litems = (int64_t)N * ((z_dim + 3) / 4);
  if (litems + N == 0) return;
  GANC_LAUNCH(step_draws_kernel, ew_blocks(litems + N), EW_THREADS, st)
  (a, seed, N, row0, z_dim, mirror, ncls, litems, z, flip, labels);
  CUDA_CHECK_LAUNCH();
}
