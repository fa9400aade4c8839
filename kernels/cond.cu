// cond.cu — the class-conditional ops on the GPU: conditional batch norm's per-class affine and the
// projection discriminator's class term; the CUDA twins of src/ops/cond.c, same arguments plus the
// stream. Labels int32 [N] in device memory; gamma, beta, embed [ncls, C].
//
// Gradient rule (ops.h): dgamma, dbeta, dembed ACCUMULATE (+=); dx, dh OVERWRITE (=).
//
// Labels must lie in [0, ncls) (ops.def). Checking that on the host would cost a copy back and a
// wait per call, so the kernels only guard their own reads: a sample whose label is outside gets
// NaN outputs (y, dx, dh: visible at once in every loss) and adds nothing to any gradient.
//
// Agreement with the CPU twin: bit-identical. Per element, single float operations with the _rn
// intrinsics (never fused; elementwise.cuh); the parameter gradients are the double trees of
// ops/sum_order.h that the twin walks ("chunked rows", then "per class"; embed_dot: lane dots).
// No atomics: classes are summed by one thread per (class, channel) — the thread of the class's
// first sample in the batch — so every run gives the same bits.
//
// The work:
//   cond_affine_forward: per sample (grid y) its HW·C elements grid-stride, float4s when C is a
//     multiple of 4 and x, y, gamma, beta are 16-byte aligned; the channel tracked incrementally.
//   cond_affine_backward: cond_bwd_partial, one thread per (sample, chunk of 64 rows, channel): a
//     warp reads 32 consecutive channels of a row; it writes dx for its rows and the chunk's two
//     sums to scratch [N, nchunk, C]. cond_bwd_class, one thread per (sample, channel), does the
//     class sums at each class's first sample (finding it scans the labels before it: N ≤ a few
//     hundred, read by the whole warp at once).
//   embed_dot_forward: a warp per sample, lanes along C, the halving tree in shared memory.
//   embed_dot_backward: dembed as the class sums above; dh one thread per element.
//
// Without a GPU, tests/gpu/cudemu (the tests' CUDA emulator) runs this file, kernels and
// launchers, on the CPU: test_gpu_ops_emu compares it with the CPU twin in CI.
#include "kernels/cuda_check.h"    // CUDA_CHECK_LAUNCH, KERNEL_REQUIRE
#include "kernels/elementwise.cuh" // unfused float arithmetic, launch shape, aligned16
#include "kernels/kernels.h"       // the launchers' declarations, ganc_cuda_scratch
#include "ops/sum_order.h"         // the trees

#include <math.h>
#include <stdint.h>

enum {
  ED_ROWS_PER_BLOCK = 8, // embed_dot_forward: samples (warps) per block
};

// A label the kernels may use to index gamma, beta or embed.
__host__ __device__ static inline bool label_ok(int32_t l, int ncls) {
  return (uint32_t)l < (uint32_t)ncls;
}

// ---------------------------------------------------------------------------------------------
// conditional affine, forward

// Sample n = blockIdx.y: y = x·g + b over its HW·C elements (in float4 units when vec).
__host__ __device__ static void cond_fwd_body(int64_t tid, int64_t T, int64_t n, int HW, int C,
                                              int ncls, int vec, const float *x,
                                              const int32_t *labels, const float *gamma,
                                              const float *beta, float *y) {
  const int32_t l = labels[n];
  const int64_t per = (int64_t)HW * C;
  const float *xs = x + n * per;
  float *ys = y + n * per;
  if (!label_ok(l, ncls)) { // outside gamma and beta: NaN, visibly
    for (int64_t i = tid; i < per; i += T)
      ys[i] = NAN;
    return;
  }
  const float *g = gamma + (int64_t)l * C, *b = beta + (int64_t)l * C;
  if (vec) { // C and every row 16-byte aligned: channel units of 4
    const int Cu = C / 4;
    const float4 *x4 = (const float4 *)xs, *g4 = (const float4 *)g, *b4 = (const float4 *)b;
    float4 *y4 = (float4 *)ys;
    int c = (int)(tid % Cu);
    const int step = (int)(T % Cu);
    for (int64_t i = tid; i < per / 4; i += T) {
      const float4 a = x4[i], gg = g4[c], bb = b4[c];
      y4[i] = make_float4(rn_add(rn_mul(a.x, gg.x), bb.x), rn_add(rn_mul(a.y, gg.y), bb.y),
                          rn_add(rn_mul(a.z, gg.z), bb.z), rn_add(rn_mul(a.w, gg.w), bb.w));
      c += step;
      if (c >= Cu) c -= Cu;
    }
    return;
  }
  int c = (int)(tid % C);
  const int step = (int)(T % C);
  for (int64_t i = tid; i < per; i += T) {
    ys[i] = rn_add(rn_mul(xs[i], g[c]), b[c]);
    c += step;
    if (c >= C) c -= C;
  }
}

__global__ static void cond_fwd_kernel(int HW, int C, int ncls, int vec, const float *x,
                                       const int32_t *__restrict__ labels,
                                       const float *__restrict__ gamma,
                                       const float *__restrict__ beta, float *y) {
  cond_fwd_body((int64_t)blockIdx.x * blockDim.x + threadIdx.x, (int64_t)gridDim.x * blockDim.x,
                blockIdx.y, HW, C, ncls, vec, x, labels, gamma, beta, y);
}

// ---------------------------------------------------------------------------------------------
// conditional affine, backward

// One thread per (n, j, c), q = (n·nchunk + j)·C + c: dx for the chunk's rows of channel c, and
// the chunk's Σ dy·x and Σ dy into pg[q], pb[q]. Each element is read, then written, by this
// thread alone: dx may alias dy.
__global__ static void cond_bwd_partial_kernel(int N, int HW, int C, int ncls, const float *x,
                                               const float *dy, const int32_t *__restrict__ labels,
                                               const float *__restrict__ gamma, float *dx,
                                               double *__restrict__ pg, double *__restrict__ pb) {
  const int64_t nchunk = ganc_row_chunks(HW);
  const int64_t q = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (q >= (int64_t)N * nchunk * C) return;
  const int64_t c = q % C, nj = q / C, n = nj / nchunk, j = nj % nchunk;
  const int32_t l = labels[n];
  const float g = label_ok(l, ncls) ? gamma[(int64_t)l * C + c] : NAN;
  const int64_t end = (j + 1) * GANC_CHUNK_ROWS < HW ? (j + 1) * GANC_CHUNK_ROWS : HW;
  double sg = 0.0, sb = 0.0;
  for (int64_t r = j * GANC_CHUNK_ROWS; r < end; r++) {
    const int64_t i = (n * HW + r) * C + c;
    const float d = dy[i];
    sg += (double)d * (double)x[i];
    sb += (double)d;
    dx[i] = rn_mul(d, g);
  }
  pg[q] = sg;
  pb[q] = sb;
}

// One thread per (n, c): at a class's first sample, dgamma/dbeta [label, c] += the class sums.
__global__ static void cond_bwd_class_kernel(int N, int HW, int C, int ncls,
                                             const int32_t *__restrict__ labels,
                                             const double *__restrict__ pg,
                                             const double *__restrict__ pb, float *dgamma,
                                             float *dbeta) {
  const int64_t q = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (q >= (int64_t)N * C) return;
  const int n = (int)(q / C);
  const int64_t c = q % C, nchunk = ganc_row_chunks(HW);
  const int32_t l = labels[n];
  if (!label_ok(l, ncls) || !ganc_class_head(labels, n)) return;
  dgamma[(int64_t)l * C + c] += (float)ganc_class_total(pg, labels, N, nchunk, C, n, c);
  dbeta[(int64_t)l * C + c] += (float)ganc_class_total(pb, labels, N, nchunk, C, n, c);
}

// ---------------------------------------------------------------------------------------------
// projection head

// grid ceil(N/8), block (32, 8): y[n] = the lane dot of h[n] and embed[label[n]], a warp per n.
__global__ static void __launch_bounds__(GANC_DOT_LANES *ED_ROWS_PER_BLOCK)
    embed_fwd_kernel(int N, int C, int ncls, const float *__restrict__ h,
                     const int32_t *__restrict__ labels, const float *__restrict__ embed,
                     float *__restrict__ y) {
  __shared__ double s[ED_ROWS_PER_BLOCK * GANC_DOT_LANES];
  const int lane = threadIdx.x, row = threadIdx.y;
  const int64_t n = (int64_t)blockIdx.x * ED_ROWS_PER_BLOCK + row;
  const bool ok = n < N && label_ok(labels[n < N ? n : 0], ncls);
  double *sr = s + row * GANC_DOT_LANES;
  // Rows past N and rows with a bad label join the tree with zeros (every thread reaches every
  // barrier).
  sr[lane] = ok ? ganc_dot_lane(h + n * C, embed + (int64_t)labels[n] * C, C, lane) : 0.0;
  __syncthreads();
  for (int half = GANC_DOT_LANES / 2; half > 0; half >>= 1) {
    ganc_tree_level(sr, lane, half);
    __syncthreads();
  }
  if (lane == 0 && n < N) y[n] = ok ? (float)sr[0] : NAN;
}

// One thread per (n, c): at a class's first sample, dembed [label, c] += Σ dy·h over the class.
__global__ static void embed_bwd_class_kernel(int N, int C, int ncls, const float *__restrict__ h,
                                              const float *__restrict__ dy,
                                              const int32_t *__restrict__ labels, float *dembed) {
  const int64_t q = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (q >= (int64_t)N * C) return;
  const int n = (int)(q / C);
  const int64_t c = q % C;
  const int32_t l = labels[n];
  if (!label_ok(l, ncls) || !ganc_class_head(labels, n)) return;
  dembed[(int64_t)l * C + c] += (float)ganc_class_dot(dy, h, labels, N, C, n, c);
}

// One thread per element q = n·C + c: dh = dy[n] · embed[label[n], c].
__global__ static void embed_bwd_dh_kernel(int N, int C, int ncls, const float *__restrict__ dy,
                                           const int32_t *__restrict__ labels,
                                           const float *__restrict__ embed,
                                           float *__restrict__ dh) {
  const int64_t q = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (q >= (int64_t)N * C) return;
  const int64_t n = q / C, c = q % C;
  const int32_t l = labels[n];
  dh[q] = label_ok(l, ncls) ? rn_mul(dy[n], embed[(int64_t)l * C + c]) : NAN;
}

// ---------------------------------------------------------------------------------------------
// launchers

static void cond_require(const char *op, int N, int HW, int C, int ncls) {
  KERNEL_REQUIRE(N >= 1 && HW >= 1 && C >= 1 && ncls >= 1, "conditional op",
                 "%s: N = %d, HW = %d, C = %d, ncls = %d", op, N, HW, C, ncls);
}

static int blocks_for(int64_t threads) { return (int)((threads + EW_THREADS - 1) / EW_THREADS); }

extern "C" void cond_affine_forward_cuda(ganc_ctx *ctx, ganc_stream st, int N, int HW, int C,
                                         int ncls, const float *x, const int32_t *labels,
                                         const float *gamma, const float *beta, float *y) {
  (void)ctx;
  cond_require("cond_affine_forward_cuda", N, HW, C, ncls);
  KERNEL_REQUIRE(N <= 65535, "cond_affine_forward_cuda", "N = %d samples ride on gridDim.y", N);
  const int vec = C % 4 == 0 && aligned16(x) && aligned16(y) && aligned16(gamma) && aligned16(beta);
  const int64_t per = (int64_t)HW * C / (vec ? 4 : 1);
  // Blocks per sample: enough for the sample, and N of them together about EW_MAX_BLOCKS.
  int64_t gx = blocks_for(per), cap = EW_MAX_BLOCKS / N;
  gx = gx < cap ? gx : cap;
  GANC_LAUNCH(cond_fwd_kernel, dim3((unsigned)(gx < 1 ? 1 : gx), (unsigned)N), EW_THREADS, st)
  (HW, C, ncls, vec, x, labels, gamma, beta, y);
  CUDA_CHECK_LAUNCH();
}

extern "C" void cond_affine_backward_cuda(ganc_ctx *ctx, ganc_stream st, int N, int HW, int C,
                                          int ncls, const float *x, const float *dy,
                                          const int32_t *labels, const float *gamma, float *dx,
                                          float *dgamma, float *dbeta) {
  cond_require("cond_affine_backward_cuda", N, HW, C, ncls);
  const int64_t nchunk = ganc_row_chunks(HW), np = (int64_t)N * nchunk * C;
  // Scratch (doubles): pg [N, nchunk, C], pb [N, nchunk, C].
  double *pg =
      (double *)ganc_cuda_scratch(ctx, (size_t)(2 * np) * (sizeof(double) / sizeof(float)));
  double *pb = pg + np;
  GANC_LAUNCH(cond_bwd_partial_kernel, blocks_for(np), EW_THREADS, st)
  (N, HW, C, ncls, x, dy, labels, gamma, dx, pg, pb);
  CUDA_CHECK_LAUNCH();
  GANC_LAUNCH(cond_bwd_class_kernel, blocks_for((int64_t)N * C), EW_THREADS, st)
  (N, HW, C, ncls, labels, pg, pb, dgamma, dbeta);
  CUDA_CHECK_LAUNCH();
}

extern "C" void embed_dot_forward_cuda(ganc_ctx *ctx, ganc_stream st, int N, int C, int ncls,
                                       const float *h, const int32_t *labels, const float *embed,
                                       float *y) {
  (void)ctx;
  cond_require("embed_dot_forward_cuda", N, 1, C, ncls);
  GANC_LAUNCH(embed_fwd_kernel, (N + ED_ROWS_PER_BLOCK - 1) / ED_ROWS_PER_BLOCK,
              dim3(GANC_DOT_LANES, ED_ROWS_PER_BLOCK), st)
  (N, C, ncls, h, labels, embed, y);
  CUDA_CHECK_LAUNCH();
}

extern "C" void embed_dot_backward_cuda(ganc_ctx *ctx, ganc_stream st, int N, int C, int ncls,
                                        const float *h, const float *dy, const int32_t *labels,
                                        const float *embed, float *dh, float *dembed) {
  (void)ctx;
  cond_require("embed_dot_backward_cuda", N, 1, C, ncls);
  const int64_t nc = (int64_t)N * C;
  GANC_LAUNCH(embed_bwd_class_kernel, blocks_for(nc), EW_THREADS, st)
  (N, C, ncls, h, dy, labels, dembed);
  CUDA_CHECK_LAUNCH();
  GANC_LAUNCH(embed_bwd_dh_kernel, blocks_for(nc), EW_THREADS, st)
  (N, C, ncls, dy, labels, embed, dh);
  CUDA_CHECK_LAUNCH();
}
