// norm.cu — batch normalization on the GPU over x [M, C] (M = N·H·W rows, C channels fastest);
// the CUDA twin of src/ops/norm.c, same arguments plus the stream.
//
// Gradient rule (ops.h): dgamma, dbeta ACCUMULATE (+=); dx OVERWRITES (=).
//
// Statistics: two passes like the CPU twin (the mean, then Σ (x − mean)² from the exact mean), so
// a channel whose mean is large next to its spread keeps its variance. Accumulators are DOUBLE,
// per thread and in every combine: this is what the CPU twin does, it leaves the split of the rows
// (ours vs the CPU's blocks of 256) a difference far below float resolution, and it costs
// nothing we can see — each element brings 4 bytes and a few FP64 operations, well under the
// FP64 rate of the sm_80/sm_90 parts we build for (1/2 of FP32). (Kahan-compensated float would
// be the choice for 1/64-rate consumer parts.)
//
// Determinism: no atomics. A reduction is two fixed-shape stages, both a function of (M, C) only,
// never of the device or the launch:
//   1. partial: block (32 channels × 8 lanes) per (chunk of rows, tile of 32 channels). A warp
//      reads 32 consecutive channels of one row (128 coalesced bytes); lane y sums rows
//      y, y + 8, ... of its chunk; the 8 lanes are added by a fixed shared-memory tree. The
//      chunk's sums go to scratch part [nchunk, C] (double).
//   2. combine: block (32 channels × 32 lanes) per tile; lane y sums chunks y, y + 32, ...; a
//      fixed tree adds the lanes; thread y = 0 finalises its channel (mean; or variance, rstd,
//      running statistics; or the backward's coefficients and dgamma/dbeta).
// Then one elementwise pass (normalise, or dx), grid-stride, the channel tracked incrementally.
//
// Without a GPU, tests/gpu/cudemu (the tests' CUDA emulator) runs this file, kernels and
// launchers, on the CPU: test_gpu_ops_emu compares it with the CPU twin in CI (chunking, tails,
// tree order, finalisation). Only the device's own FMA contraction in double differs there, which
// is below float resolution.
#include "core/comm.h"          // train.batchnorm = sync: the partials of every rank
#include "kernels/cuda_check.h" // CUDA_CHECK, CUDA_CHECK_LAUNCH, KERNEL_REQUIRE
#include "kernels/kernels.h"    // the launchers' declarations, ganc_cuda_scratch
#include "ops/act_core.h"       // a fused activation: the activation ops' arithmetic
#include "ops/precision.h"      // x and y stored in bf16, x rounded to bf16 as it is read

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

// "#pragma unroll" for the device pass only (the host compiler of cudemu, the tests' emulator,
// would warn about it).
// Unrolled, a thread's loads are all issued before its first add: the sums are single chains in a
// fixed order (the CPU twin's), so the loads in flight are what hides their latency. A lane of a
// 64-row chunk has 8 rows; a combine lane 16 and more chunks (DCGAN64's G b3: 2,048 slots).
#ifdef __CUDA_ARCH__
#define UNROLL8 _Pragma("unroll 8")
#define UNROLL16 _Pragma("unroll 16")
#else
#define UNROLL8
#define UNROLL16
#endif

// ---------------------------------------------------------------------------------------------
// plan: how the rows are split (a function of M only)

enum {
  BN_TILE_C = 32,         // channels per block: one warp = one 128-byte row segment
  BN_LANES = 8,           // rows in flight per block in the partial stage (blockDim.y)
  BN_MIN_CHUNK_ROWS = 64, // at least 8 rows per lane, so a lane's loads overlap
  BN_MAX_CHUNKS = 4096,   // bounds the scratch (nchunk·C doubles) and the combine's length
  BN_COMBINE_LANES = 32,  // chunks in flight per block in the combine stage (blockDim.y)
  // Threads per block of the two stages. __launch_bounds__ holds the compiler to them: 1024
  // threads leave 64 registers each (ptxas uses 32 today; docs/PERF.md has the table).
  BN_PARTIAL_THREADS = BN_TILE_C * BN_LANES,
  BN_COMBINE_THREADS = BN_TILE_C * BN_COMBINE_LANES,
  EW_THREADS = 256,     // elementwise passes
  EW_MAX_BLOCKS = 4096, // grid-stride beyond this: ~4 waves of resident blocks on an H100
};

typedef struct bn_plan {
  int64_t M;          // rows
  int C;              // channels
  int64_t chunk_rows; // rows per chunk, a multiple of BN_LANES
  int64_t nchunk;     // chunks (the last may be short)
} bn_plan;

static bn_plan bn_make_plan(int64_t M, int C) {
  bn_plan p;
  p.M = M;
  p.C = C;
  int64_t rows = (M + BN_MAX_CHUNKS - 1) / BN_MAX_CHUNKS;
  rows = (rows + BN_LANES - 1) / BN_LANES * BN_LANES;
  p.chunk_rows = rows < BN_MIN_CHUNK_ROWS ? (int64_t)BN_MIN_CHUNK_ROWS : rows;
  p.nchunk = (M + p.chunk_rows - 1) / p.chunk_rows;
  return p;
}

static int ew_blocks(int64_t n) {
  int64_t b = (n + EW_THREADS - 1) / EW_THREADS;
  return b < 1 ? 1 : b > EW_MAX_BLOCKS ? EW_MAX_BLOCKS : (int)b;
}

// ---------------------------------------------------------------------------------------------
// per-thread bodies

enum { BN_PASS_SUM = 0, BN_PASS_SQDEV = 1 };

// Lane `lane` of chunk `chunk`, channel c: Σ x (PASS_SUM) or Σ (x − mu)² (PASS_SQDEV) over rows
// lane, lane + BN_LANES, ... of the chunk. Channels past C sum nothing (they still join the tree).
template <int PASS>
__host__ __device__ static double bn_lane_sum(const void *__restrict__ x, int xm,
                                              const double *__restrict__ mu, bn_plan p,
                                              int64_t chunk, int c, int lane) {
  double acc = 0.0;
  if (c >= p.C) return acc;
  const int64_t end = (chunk + 1) * p.chunk_rows < p.M ? (chunk + 1) * p.chunk_rows : p.M;
  const double m = PASS == BN_PASS_SQDEV ? mu[c] : 0.0;
  UNROLL8
  for (int64_t r = chunk * p.chunk_rows + lane; r < end; r += BN_LANES) {
    double v = ganc_load_x(x, xm, r * p.C + c);
    if (PASS == BN_PASS_SQDEV) {
      v -= m;
      v *= v;
    }
    acc += v;
  }
  return acc;
}

// Backward: Σ dy and Σ dy·(x − mean) over the same rows (dy read as dym says: GANC_X_*).
__host__ __device__ static void bn_lane_sum_bwd(const void *__restrict__ x, int xm,
                                                const void *__restrict__ dy, int dym,
                                                const float *__restrict__ mean, bn_plan p,
                                                int64_t chunk, int c, int lane, double *s_dy,
                                                double *s_dyx) {
  double a = 0.0, b = 0.0;
  if (c < p.C) {
    const int64_t end = (chunk + 1) * p.chunk_rows < p.M ? (chunk + 1) * p.chunk_rows : p.M;
    const double m = mean[c];
    UNROLL8
    for (int64_t r = chunk * p.chunk_rows + lane; r < end; r += BN_LANES) {
      const double g = ganc_load_x(dy, dym, r * p.C + c);
      a += g;
      b += g * ((double)ganc_load_x(x, xm, r * p.C + c) - m);
    }
  }
  *s_dy = a;
  *s_dyx = b;
}

// Lane `lane` of the combine: Σ part[k·stride + c] over chunks k = lane, lane +
// BN_COMBINE_LANES, ... (stride C; 2C for a slot's Σ x or Σ x², ops.h ganc_bn_part).
__host__ __device__ static double bn_combine_lane(const double *__restrict__ part, int64_t nchunk,
                                                  int64_t stride, int C, int c, int lane) {
  double acc = 0.0;
  if (c >= C) return acc;
  UNROLL16
  for (int64_t k = lane; k < nchunk; k += BN_COMBINE_LANES)
    acc += part[k * stride + c];
  return acc;
}

// batchnorm_slot_stats: Σ x and Σ x² over rows lane, lane + BN_LANES, ... of 64-row slot `slot`.
__host__ __device__ static void bn_lane_sum_sq(const void *__restrict__ x, int xm, int64_t M, int C,
                                               int64_t slot, int c, int lane, double *s,
                                               double *sq) {
  double a = 0.0, b = 0.0;
  if (c < C) {
    const int64_t r0 = slot * GANC_BN_SLOT_ROWS;
    const int64_t end = r0 + GANC_BN_SLOT_ROWS < M ? r0 + GANC_BN_SLOT_ROWS : M;
    UNROLL8
    for (int64_t r = r0 + lane; r < end; r += BN_LANES) {
      const double v = ganc_load_x(x, xm, r * C + c);
      a += v;
      b += v * v;
    }
  }
  *s = a;
  *sq = b;
}

// One level of the lane tree on sm [lanes][BN_TILE_C]: lane y < half takes lane y + half. The
// kernels run the levels half = lanes/2 .. 1 with a barrier between: a fixed order of additions.
__host__ __device__ static inline void bn_tree_level(double *sm, int lane, int tx, int half) {
  if (lane < half) sm[lane * BN_TILE_C + tx] += sm[(lane + half) * BN_TILE_C + tx];
}

// Channel c's statistics from its sum of squared deviations, exactly as norm.c orders them.
__host__ __device__ static void
bn_var_finalize(int c, double ss, int64_t M, const double *__restrict__ mu,
                const float *__restrict__ gamma, float eps, float momentum, float *mean,
                float *rstd, float *run_mean, float *run_var, double *k, double *keep_rs) {
  const double v = ss / (double)M;
  if (run_mean) run_mean[c] = (float)((1.0 - momentum) * run_mean[c] + momentum * mu[c]);
  if (run_var) {
    const double unbiased = v * (double)M / (double)(M - 1);
    run_var[c] = (float)((1.0 - momentum) * run_var[c] + momentum * unbiased);
  }
  const double rs = 1.0 / sqrt(v + eps);
  mean[c] = (float)mu[c];
  rstd[c] = (float)rs;
  k[c] = rs * gamma[c];         // the normalise pass's scale: (x − mean)·rstd·gamma
  if (keep_rs) keep_rs[c] = rs; // batchnorm_reapply's (its mean is mu itself: the launcher)
}

// Backward, channel c: accumulate dgamma/dbeta; coef [3, C] = (Σdy/M, Σdy·x̂/M, gamma·rstd).
__host__ __device__ static void bn_bwd_finalize(int c, int C, double sdy, double sdyx, int64_t M,
                                                const float *__restrict__ gamma,
                                                const float *__restrict__ rstd, float *dgamma,
                                                float *dbeta, double *coef) {
  sdyx *= rstd[c]; // Σ dy·x̂
  dgamma[c] += (float)sdyx;
  dbeta[c] += (float)sdy;
  coef[c] = sdy / (double)M;
  coef[C + c] = sdyx / (double)M;
  coef[2 * C + c] = (double)gamma[c] * rstd[c];
}

// Elementwise passes over n = M·C, in groups of V consecutive elements (V = 4 where C is a
// multiple of 4 and the buffers allow 16-byte FP32 or 8-byte bf16 loads, else 1): thread `tid` of
// T takes groups g = tid, tid + T, ..., elements V·g .. V·g + V − 1, channels c .. c + V − 1; c
// advances by V·T mod C per step, so there is one 64-bit modulo per thread, not per element.
// One element to a thread per step left each thread a single 2-byte load in flight: on the H200
// the passes ran 4–6 times their bytes' time (docs/PERF.md). The arithmetic per element is the
// same either way (the same bits).
// The normalisation's scale is k[c], or with kg (batchnorm_reapply: k the kept rstd, kg gamma)
// k[c]·kg[c], the product bn_var_finalize makes (one rounding in double: the same bits), so the
// reapply needs no launch to make it.
template <int V>
__host__ __device__ static inline void bn_load(const void *x, int xm, int64_t i, float *o) {
  if constexpr (V == 1) {
    o[0] = ganc_load_x(x, xm, i);
  } else if (xm == GANC_X_BF16) {
    static_assert(V == 4, "groups of 1 or 4");
    const uint2 v = *reinterpret_cast<const uint2 *>((const uint16_t *)x + i);
    ganc_bf16x2_load(v.x, o), ganc_bf16x2_load(v.y, o + 2);
  } else {
    const float4 v = *reinterpret_cast<const float4 *>((const float *)x + i);
    o[0] = v.x, o[1] = v.y, o[2] = v.z, o[3] = v.w;
    if (xm == GANC_X_ROUND)
      for (int j = 0; j < 4; j++)
        o[j] = ganc_bf16_load(ganc_bf16_store(o[j]));
  }
}
template <int V>
__host__ __device__ static inline void bn_store(void *y, int bf16, int64_t i, const float *v) {
  if constexpr (V == 1) {
    ganc_store_as(y, bf16, i, v[0]);
  } else if (bf16) {
    uint2 h;
    h.x = ganc_bf16x2_store(v[0], v[1]), h.y = ganc_bf16x2_store(v[2], v[3]);
    *reinterpret_cast<uint2 *>((uint16_t *)y + i) = h;
  } else {
    *reinterpret_cast<float4 *>((float *)y + i) = make_float4(v[0], v[1], v[2], v[3]);
  }
}

template <int V>
__host__ __device__ static void
bn_normalize_body(int64_t tid, int64_t T, int64_t n, int C, const void *x, int xm,
                  const double *__restrict__ mu, const double *__restrict__ k,
                  const float *__restrict__ kg, const float *__restrict__ beta, int act,
                  float slope, void *y, int y_bf16) {
  int c = (int)(tid * V % C);
  const int step = (int)(T * V % C);
  for (int64_t g = tid; g < n / V; g += T) {
    float v[V];
    bn_load<V>(x, xm, g * V, v);
    for (int j = 0; j < V; j++) {
      const double scale = kg ? k[c + j] * kg[c + j] : k[c + j];
      v[j] =
          ganc_act(act, slope, (float)(((double)v[j] - mu[c + j]) * scale + (double)beta[c + j]));
    }
    bn_store<V>(y, y_bf16, g * V, v);
    c += step;
    if (c >= C) c -= C;
  }
}

template <int V>
__host__ __device__ static void
bn_eval_body(int64_t tid, int64_t T, int64_t n, int C, const void *x, int xm,
             const float *__restrict__ run_mean, const double *__restrict__ scale,
             const float *__restrict__ beta, int act, float slope, void *y, int y_bf16) {
  int c = (int)(tid * V % C);
  const int step = (int)(T * V % C);
  for (int64_t g = tid; g < n / V; g += T) {
    float v[V];
    bn_load<V>(x, xm, g * V, v);
    for (int j = 0; j < V; j++)
      v[j] =
          ganc_act(act, slope,
                   (float)(((double)v[j] - run_mean[c + j]) * scale[c + j] + (double)beta[c + j]));
    bn_store<V>(y, y_bf16, g * V, v);
    c += step;
    if (c >= C) c -= C;
  }
}

// dx = gamma·rstd·(dy − mean(dy) − x̂·mean(dy·x̂)), x̂ = (x − mean)·rstd.
template <int V>
__host__ __device__ static void
bn_dx_body(int64_t tid, int64_t T, int64_t n, int C, const void *x, int xm, const void *dy, int dym,
           const float *__restrict__ mean, const float *__restrict__ rstd,
           const double *__restrict__ coef, void *dx, int dx_bf16) {
  int c = (int)(tid * V % C);
  const int step = (int)(T * V % C);
  for (int64_t g = tid; g < n / V; g += T) {
    float xv[V], gv[V];
    bn_load<V>(x, xm, g * V, xv);
    bn_load<V>(dy, dym, g * V, gv);
    for (int j = 0; j < V; j++) {
      const int cj = c + j;
      const double xh = ((double)xv[j] - mean[cj]) * rstd[cj];
      const double d = gv[j] - coef[cj] - xh * coef[C + cj];
      gv[j] = (float)(coef[2 * C + cj] * d);
    }
    bn_store<V>(dx, dx_bf16, g * V, gv);
    c += step;
    if (c >= C) c -= C;
  }
}

// 4 where C is a multiple of 4 and every buffer of an elementwise pass is aligned for bn_load's
// and bn_store's vectors (8 bytes for halves, 16 for floats), else 1.
static bool bn_vec_ok(const void *p, int bf16) { return (uintptr_t)p % (bf16 ? 8 : 16) == 0; }
static int bn_vec(int C, const void *x, int xm, const void *y, int y_bf16, const void *z = nullptr,
                  int zm = GANC_X_FP32) {
  return C % 4 == 0 && bn_vec_ok(x, xm == GANC_X_BF16) && bn_vec_ok(y, y_bf16) &&
                 (!z || bn_vec_ok(z, zm == GANC_X_BF16))
             ? 4
             : 1;
}

// ---------------------------------------------------------------------------------------------
// kernels

// grid (nchunk, ceil(C/32)), block (32, BN_LANES): part [nchunk, C] = per-chunk sums.
// The tree of bn_partial_kernel, a template: its shared memory comes from this plain function
// because GCC drops the section attribute of a static in a function template, where the tests'
// emulator (tests/gpu/cudemu) finds shared memory to poison before every block.
static __device__ __forceinline__ double *bn_partial_smem() {
  __shared__ double sm[BN_LANES * BN_TILE_C];
  return sm;
}

template <int PASS>
__global__ static void __launch_bounds__(BN_PARTIAL_THREADS)
    bn_partial_kernel(const void *__restrict__ x, int xm, const double *__restrict__ mu, bn_plan p,
                      double *__restrict__ part) {
  double *sm = bn_partial_smem();
  const int tx = threadIdx.x, ty = threadIdx.y, c = blockIdx.y * BN_TILE_C + tx;
  const int64_t chunk = blockIdx.x;
  sm[ty * BN_TILE_C + tx] = bn_lane_sum<PASS>(x, xm, mu, p, chunk, c, ty);
  __syncthreads();
  for (int half = BN_LANES / 2; half > 0; half >>= 1) {
    bn_tree_level(sm, ty, tx, half);
    __syncthreads();
  }
  if (ty == 0 && c < p.C) part[chunk * p.C + c] = sm[tx];
}

// As bn_partial_kernel for the backward's two sums: part [2, nchunk, C] (Σ dy, then Σ dy·(x −
// mean)).
__global__ static void __launch_bounds__(BN_PARTIAL_THREADS)
    bn_partial_bwd_kernel(const void *__restrict__ x, int xm, const void *__restrict__ dy, int dym,
                          const float *__restrict__ mean, bn_plan p, double *__restrict__ part) {
  __shared__ double sa[BN_LANES * BN_TILE_C], sb[BN_LANES * BN_TILE_C];
  const int tx = threadIdx.x, ty = threadIdx.y, c = blockIdx.y * BN_TILE_C + tx;
  const int64_t chunk = blockIdx.x;
  bn_lane_sum_bwd(x, xm, dy, dym, mean, p, chunk, c, ty, &sa[ty * BN_TILE_C + tx],
                  &sb[ty * BN_TILE_C + tx]);
  __syncthreads();
  for (int half = BN_LANES / 2; half > 0; half >>= 1) {
    bn_tree_level(sa, ty, tx, half);
    bn_tree_level(sb, ty, tx, half);
    __syncthreads();
  }
  if (ty == 0 && c < p.C) {
    part[chunk * p.C + c] = sa[tx];
    part[(p.nchunk + chunk) * p.C + c] = sb[tx];
  }
}

// The combine stage's tree: returns the column total in lane 0 (other lanes: unspecified).
__device__ static double bn_combine_block(double *sm, const double *part, int64_t nchunk,
                                          int64_t stride, int C, int c) {
  const int tx = threadIdx.x, ty = threadIdx.y;
  sm[ty * BN_TILE_C + tx] = bn_combine_lane(part, nchunk, stride, C, c, ty);
  __syncthreads();
  for (int half = BN_COMBINE_LANES / 2; half > 0; half >>= 1) {
    bn_tree_level(sm, ty, tx, half);
    __syncthreads();
  }
  return sm[tx];
}

// grid ceil(C/32), block (32, BN_COMBINE_LANES): mu [C] = Σ x / M.
__global__ static void __launch_bounds__(BN_COMBINE_THREADS)
    bn_mean_kernel(const double *__restrict__ part, bn_plan p, double *__restrict__ mu) {
  __shared__ double sm[BN_COMBINE_LANES * BN_TILE_C];
  const int c = blockIdx.x * BN_TILE_C + threadIdx.x;
  const double s = bn_combine_block(sm, part, p.nchunk, p.C, p.C, c);
  if (threadIdx.y == 0 && c < p.C) mu[c] = s / (double)p.M;
}

// grid ceil(C/32), block (32, BN_COMBINE_LANES): variance → mean, rstd, running stats, k.
__global__ static void __launch_bounds__(BN_COMBINE_THREADS)
    bn_var_kernel(const double *__restrict__ part, bn_plan p, const double *__restrict__ mu,
                  const float *__restrict__ gamma, float eps, float momentum, float *mean,
                  float *rstd, float *run_mean, float *run_var, double *k, double *keep_rs) {
  __shared__ double sm[BN_COMBINE_LANES * BN_TILE_C];
  const int c = blockIdx.x * BN_TILE_C + threadIdx.x;
  const double ss = bn_combine_block(sm, part, p.nchunk, p.C, p.C, c);
  if (threadIdx.y == 0 && c < p.C)
    bn_var_finalize(c, ss, p.M, mu, gamma, eps, momentum, mean, rstd, run_mean, run_var, k,
                    keep_rs);
}

// grid ceil(C/32), block (32, BN_COMBINE_LANES): the backward's sums → dgamma, dbeta, coef.
__global__ static void __launch_bounds__(BN_COMBINE_THREADS)
    bn_bwd_stats_kernel(const double *__restrict__ part, bn_plan p, const float *__restrict__ gamma,
                        const float *__restrict__ rstd, float *dgamma, float *dbeta, double *coef) {
  __shared__ double sm[BN_COMBINE_LANES * BN_TILE_C];
  const int c = blockIdx.x * BN_TILE_C + threadIdx.x;
  const double sdy = bn_combine_block(sm, part, p.nchunk, p.C, p.C, c);
  __syncthreads(); // lane 0 has read its total before the second sum reuses sm
  const double sdyx = bn_combine_block(sm, part + p.nchunk * p.C, p.nchunk, p.C, p.C, c);
  if (threadIdx.y == 0 && c < p.C)
    bn_bwd_finalize(c, p.C, sdy, sdyx, p.M, gamma, rstd, dgamma, dbeta, coef);
}

// grid (nslot, ceil(C/32)), block (32, BN_LANES): part [nslot, 2, C] = each 64-row slot's Σ x
// and Σ x² (batchnorm_slot_stats), the lanes added by the partial stage's fixed tree.
__global__ static void __launch_bounds__(BN_PARTIAL_THREADS)
    bn_slot_stats_kernel(const void *__restrict__ x, int xm, int64_t M, int C,
                         double *__restrict__ part) {
  __shared__ double sa[BN_LANES * BN_TILE_C], sb[BN_LANES * BN_TILE_C];
  const int tx = threadIdx.x, ty = threadIdx.y, c = blockIdx.y * BN_TILE_C + tx;
  const int64_t slot = blockIdx.x;
  bn_lane_sum_sq(x, xm, M, C, slot, c, ty, &sa[ty * BN_TILE_C + tx], &sb[ty * BN_TILE_C + tx]);
  __syncthreads();
  for (int half = BN_LANES / 2; half > 0; half >>= 1) {
    bn_tree_level(sa, ty, tx, half);
    bn_tree_level(sb, ty, tx, half);
    __syncthreads();
  }
  if (ty == 0 && c < C) {
    part[2 * slot * C + c] = sa[tx];
    part[(2 * slot + 1) * C + c] = sb[tx];
  }
}

// grid ceil(C/32), block (32, BN_COMBINE_LANES): the training forward from slot sums (ganc_bn_part
// [nslot, 2, C]): mu = Σ x / M, Σ (x − mu)² = Σ x² − mu·Σ x (not below 0), then bn_var_kernel's
// finalisation.
__global__ static void __launch_bounds__(BN_COMBINE_THREADS)
    bn_slot_var_kernel(const double *__restrict__ part, int64_t nslot, bn_plan p, double *mu,
                       const float *__restrict__ gamma, float eps, float momentum, float *mean,
                       float *rstd, float *run_mean, float *run_var, double *k, double *keep_rs) {
  __shared__ double sm[BN_COMBINE_LANES * BN_TILE_C];
  const int c = blockIdx.x * BN_TILE_C + threadIdx.x;
  const double sx = bn_combine_block(sm, part, nslot, 2 * (int64_t)p.C, p.C, c);
  __syncthreads(); // lane 0 has read its total before the second sum reuses sm
  const double sq = bn_combine_block(sm, part + p.C, nslot, 2 * (int64_t)p.C, p.C, c);
  if (threadIdx.y == 0 && c < p.C) {
    mu[c] = sx / (double)p.M;
    double ss = sq - mu[c] * sx;
    if (!(ss > 0.0)) ss = 0.0; // the cancellation's rounding, never a negative variance
    bn_var_finalize(c, ss, p.M, mu, gamma, eps, momentum, mean, rstd, run_mean, run_var, k,
                    keep_rs);
  }
}

__global__ static void bn_memset_kernel(int n, float *p) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) p[i] = 0.0f;
}

template <int V>
__global__ static void
bn_normalize_kernel(int64_t n, int C, const void *x, int xm, const double *__restrict__ mu,
                    const double *__restrict__ k, const float *__restrict__ kg,
                    const float *__restrict__ beta, int act, float slope, void *y, int y_bf16) {
  bn_normalize_body<V>((int64_t)blockIdx.x * blockDim.x + threadIdx.x,
                       (int64_t)gridDim.x * blockDim.x, n, C, x, xm, mu, k, kg, beta, act, slope, y,
                       y_bf16);
}

// scale [C] = gamma / sqrt(run_var + eps), in double as the CPU twin.
__global__ static void bn_eval_scale_kernel(int C, const float *__restrict__ gamma,
                                            const float *__restrict__ run_var, float eps,
                                            double *__restrict__ scale) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c < C) scale[c] = gamma[c] / sqrt((double)run_var[c] + eps);
}

template <int V>
__global__ static void
bn_eval_kernel(int64_t n, int C, const void *x, int xm, const float *__restrict__ run_mean,
               const double *__restrict__ scale, const float *__restrict__ beta, int act,
               float slope, void *y, int y_bf16) {
  bn_eval_body<V>((int64_t)blockIdx.x * blockDim.x + threadIdx.x, (int64_t)gridDim.x * blockDim.x,
                  n, C, x, xm, run_mean, scale, beta, act, slope, y, y_bf16);
}

template <int V>
__global__ static void bn_dx_kernel(int64_t n, int C, const void *x, int xm, const void *dy,
                                    int dym, const float *__restrict__ mean,
                                    const float *__restrict__ rstd, const double *__restrict__ coef,
                                    void *dx, int dx_bf16) {
  bn_dx_body<V>((int64_t)blockIdx.x * blockDim.x + threadIdx.x, (int64_t)gridDim.x * blockDim.x, n,
                C, x, xm, dy, dym, mean, rstd, coef, dx, dx_bf16);
}

// The elementwise launches, in groups of V.
static void bn_normalize(cudaStream_t st, int64_t n, int C, const void *x, int xm, const double *mu,
                         const double *k, const float *kg, const float *beta, int act, float slope,
                         void *y, int y_bf16) {
  if (bn_vec(C, x, xm, y, y_bf16) == 4) {
    GANC_LAUNCH(bn_normalize_kernel<4>, ew_blocks(n / 4), EW_THREADS, st)
    (n, C, x, xm, mu, k, kg, beta, act, slope, y, y_bf16);
  } else {
    GANC_LAUNCH(bn_normalize_kernel<1>, ew_blocks(n), EW_THREADS, st)
    (n, C, x, xm, mu, k, kg, beta, act, slope, y, y_bf16);
  }
  CUDA_CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------
// launchers

static void bn_require(int64_t M, int C, int x_mode, const char *op) {
  if (M < 1 || C < 1)
    ganc_die(GANC_EXIT_RUNTIME, "%s: empty input (M = %lld, C = %d)", op, (long long)M, C);
  if (x_mode < GANC_X_FP32 || x_mode > GANC_X_ROUND)
    ganc_die(GANC_EXIT_RUNTIME, "internal error in %s: x_mode %d is none of GANC_X_*", op, x_mode);
  // Channel tiles ride on gridDim.y (at most 65535).
  KERNEL_REQUIRE((C + BN_TILE_C - 1) / BN_TILE_C <= 65535, "batch norm",
                 "C = %d channels is more than a grid can tile", C);
}

// train.batchnorm = sync (core/comm.h): every rank's chunk partials summed elementwise (the ranks'
// batches have the same shape, so the same chunks), and the plan's rows those of all ranks — the
// combine kernels then give the statistics of the whole global batch. Without it, the plan
// unchanged.
static bn_plan bn_sync_partials(ganc_ctx *ctx, double *part, size_t n, bn_plan p) {
  if (!ganc_bn_synced(ctx)) return p;
  ganc_comm_sum(ctx->comm, ctx, part, n, 1);
  p.M *= ctx->comm->size;
  return p;
}

// Device scratch of `doubles` doubles (the arena is cudaMalloc'd: 256-byte aligned).
static double *bn_scratch(ganc_ctx *ctx, size_t doubles) {
  return (double *)ganc_cuda_scratch(ctx, doubles * (sizeof(double) / sizeof(float)));
}

extern "C" void batchnorm_forward_train_cuda(ganc_ctx *ctx, ganc_stream st, int64_t M, int C,
                                             const void *x, int x_mode, const float *gamma,
                                             const float *beta, float eps, float momentum, int act,
                                             float slope, void *y, int y_bf16, float *mean,
                                             float *rstd, float *run_mean, float *run_var,
                                             double *keep, const ganc_bn_part *stats) {
  bn_require(M, C, x_mode, "batchnorm_forward_train_cuda");
  KERNEL_REQUIRE(y != x || (!y_bf16 && x_mode != GANC_X_BF16), "batchnorm_forward_train_cuda",
                 "y in x's buffer needs both in FP32");
  // As PyTorch and the CPU twin: one value per channel has no variance to normalize by.
  if (M < 2)
    ganc_die(GANC_EXIT_USAGE,
             "batch norm in training needs more than one value per channel (M = %lld)\n"
             "---> HINT: use a batch size above 1",
             (long long)M);
  const bn_plan p = bn_make_plan(M, C);
  const int tiles = (C + BN_TILE_C - 1) / BN_TILE_C;
  const dim3 pgrid((unsigned)p.nchunk, (unsigned)tiles), pblock(BN_TILE_C, BN_LANES);
  const dim3 cblock(BN_TILE_C, BN_COMBINE_LANES);
  const int64_t n = M * C;
  if (stats) { // the convolution's slot sums: one combine, no pass over x before the normalisation
    KERNEL_REQUIRE(!ganc_bn_synced(ctx), "batchnorm_forward_train_cuda",
                   "slot statistics under sync batch norm");
    KERNEL_REQUIRE(stats->nslot >= 1 && stats->nslot <= stats->cap, "batchnorm_forward_train_cuda",
                   "%lld slots of %lld", (long long)stats->nslot, (long long)stats->cap);
    double *sc = bn_scratch(ctx, 2 * (size_t)C); // mu [C] (or keep), k [C]
    double *mu = keep ? keep : sc, *k = sc + C;
    GANC_LAUNCH(bn_slot_var_kernel, tiles, cblock, st)
    (stats->part, stats->nslot, p, mu, gamma, eps, momentum, mean, rstd, run_mean, run_var, k,
     keep ? keep + C : NULL);
    CUDA_CHECK_LAUNCH();
    bn_normalize(st, n, C, x, x_mode, mu, k, NULL, beta, act, slope, y, y_bf16);
    return;
  }
  // Scratch (doubles): part [nchunk, C] (reused by both passes), mu [C], k [C]; mu in keep instead
  // when the statistics are kept (batchnorm_reapply reads it and rstd there).
  double *part = bn_scratch(ctx, (size_t)(p.nchunk + 2) * (size_t)C);
  double *mu = keep ? keep : part + p.nchunk * C, *k = part + (p.nchunk + 1) * C;

  GANC_LAUNCH(bn_partial_kernel<BN_PASS_SUM>, pgrid, pblock, st)(x, x_mode, NULL, p, part);
  CUDA_CHECK_LAUNCH();
  const bn_plan pg = bn_sync_partials(ctx, part, (size_t)p.nchunk * C, p); // M: all ranks' rows
  GANC_LAUNCH(bn_mean_kernel, tiles, cblock, st)(part, pg, mu);
  CUDA_CHECK_LAUNCH();
  GANC_LAUNCH(bn_partial_kernel<BN_PASS_SQDEV>, pgrid, pblock, st)(x, x_mode, mu, p, part);
  CUDA_CHECK_LAUNCH();
  bn_sync_partials(ctx, part, (size_t)p.nchunk * C, p);
  GANC_LAUNCH(bn_var_kernel, tiles, cblock, st)
  (part, pg, mu, gamma, eps, momentum, mean, rstd, run_mean, run_var, k, keep ? keep + C : NULL);
  CUDA_CHECK_LAUNCH();
  bn_normalize(st, n, C, x, x_mode, mu, k, NULL, beta, act, slope, y, y_bf16);
}

extern "C" void batchnorm_slot_stats_cuda(ganc_ctx *ctx, ganc_stream st, int64_t M, int C,
                                          const void *x, int x_mode, ganc_bn_part *stats) {
  (void)ctx;
  bn_require(M, C, x_mode, "batchnorm_slot_stats_cuda");
  const int64_t nslot = (M + GANC_BN_SLOT_ROWS - 1) / GANC_BN_SLOT_ROWS;
  KERNEL_REQUIRE(nslot <= stats->cap && nslot <= 0x7fffffff, "batchnorm_slot_stats_cuda",
                 "%lld slots, room for %lld", (long long)nslot, (long long)stats->cap);
  const dim3 grid((unsigned)nslot, (unsigned)((C + BN_TILE_C - 1) / BN_TILE_C));
  GANC_LAUNCH(bn_slot_stats_kernel, grid, dim3(BN_TILE_C, BN_LANES), st)
  (x, x_mode, M, C, stats->part);
  CUDA_CHECK_LAUNCH();
  stats->nslot = nslot;
}

extern "C" void batchnorm_reapply_cuda(ganc_ctx *ctx, ganc_stream st, int64_t M, int C,
                                       const void *x, int x_mode, const float *gamma,
                                       const float *beta, const double *keep, int act, float slope,
                                       void *y, int y_bf16) {
  bn_require(M, C, x_mode, "batchnorm_reapply_cuda");
  KERNEL_REQUIRE(y != x || (!y_bf16 && x_mode != GANC_X_BF16), "batchnorm_reapply_cuda",
                 "y in x's buffer needs both in FP32");
  (void)ctx;
  const int64_t n = M * C;
  bn_normalize(st, n, C, x, x_mode, keep, keep + C, gamma, beta, act, slope, y, y_bf16);
}

extern "C" void batchnorm_forward_eval_cuda(ganc_ctx *ctx, ganc_stream st, int64_t M, int C,
                                            const void *x, int x_mode, const float *gamma,
                                            const float *beta, const float *run_mean,
                                            const float *run_var, float eps, int act, float slope,
                                            void *y, int y_bf16) {
  bn_require(M, C, x_mode, "batchnorm_forward_eval_cuda");
  KERNEL_REQUIRE(y != x || (!y_bf16 && x_mode != GANC_X_BF16), "batchnorm_forward_eval_cuda",
                 "y in x's buffer needs both in FP32");
  double *scale = bn_scratch(ctx, (size_t)C);
  GANC_LAUNCH(bn_eval_scale_kernel, (C + 255) / 256, 256, st)(C, gamma, run_var, eps, scale);
  CUDA_CHECK_LAUNCH();
  const int64_t n = M * C;
  if (bn_vec(C, x, x_mode, y, y_bf16) == 4) {
    GANC_LAUNCH(bn_eval_kernel<4>, ew_blocks(n / 4), EW_THREADS, st)
    (n, C, x, x_mode, run_mean, scale, beta, act, slope, y, y_bf16);
  } else {
    GANC_LAUNCH(bn_eval_kernel<1>, ew_blocks(n), EW_THREADS, st)
    (n, C, x, x_mode, run_mean, scale, beta, act, slope, y, y_bf16);
  }
  CUDA_CHECK_LAUNCH();
}

extern "C" void batchnorm_backward_cuda(ganc_ctx *ctx, ganc_stream st, int64_t M, int C,
                                        const void *x, int x_mode, const void *dy, int dy_mode,
                                        const float *gamma, const float *mean, const float *rstd,
                                        void *dx, int dx_bf16, float *dgamma, float *dbeta) {
  bn_require(M, C, x_mode, "batchnorm_backward_cuda");
  bn_require(M, C, dy_mode, "batchnorm_backward_cuda");
  KERNEL_REQUIRE(dy_mode != GANC_X_BF16 || dx != dy, "batchnorm_backward_cuda",
                 "dx cannot be the buffer of dy's halves");
  KERNEL_REQUIRE(!dx_bf16 || (dx != (const void *)x && dx != (const void *)dy),
                 "batchnorm_backward_cuda", "dx in bf16 cannot be x's or dy's buffer");
  KERNEL_REQUIRE(x_mode != GANC_X_BF16 || dx != x, "batchnorm_backward_cuda",
                 "dx cannot be the buffer of x's halves");
  const bn_plan p = bn_make_plan(M, C);
  // Scratch (doubles): part [2, nchunk, C], coef [3, C], and under train.batchnorm = sync a place
  // [C] for the second pass's dgamma and dbeta (floats, two to a double).
  double *part = bn_scratch(ctx, (size_t)(2 * p.nchunk + 4) * (size_t)C);
  double *coef = part + 2 * p.nchunk * C;
  const int tiles = (C + BN_TILE_C - 1) / BN_TILE_C;
  GANC_LAUNCH(bn_partial_bwd_kernel, dim3((unsigned)p.nchunk, (unsigned)tiles),
              dim3(BN_TILE_C, BN_LANES), st)
  (x, x_mode, dy, dy_mode, mean, p, part);
  CUDA_CHECK_LAUNCH();
  GANC_LAUNCH(bn_bwd_stats_kernel, tiles, dim3(BN_TILE_C, BN_COMBINE_LANES), st)
  (part, p, gamma, rstd, dgamma, dbeta, coef);
  CUDA_CHECK_LAUNCH();
  if (ganc_bn_synced(ctx)) {
    // dgamma, dbeta stay this rank's own sums (the trainer sums parameter gradients over the
    // ranks afterwards); dx's coefficients come again from the whole global batch's sums.
    const bn_plan pg = bn_sync_partials(ctx, part, 2 * (size_t)p.nchunk * C, p);
    float *spare = (float *)(coef + 3 * C);
    GANC_LAUNCH(bn_memset_kernel, (2 * C + 255) / 256, 256, st)(2 * C, spare);
    CUDA_CHECK_LAUNCH();
    GANC_LAUNCH(bn_bwd_stats_kernel, tiles, dim3(BN_TILE_C, BN_COMBINE_LANES), st)
    (part, pg, gamma, rstd, spare, spare + C, coef);
    CUDA_CHECK_LAUNCH();
  }
  const int64_t n = M * C;
  if (bn_vec(C, x, x_mode, dx, dx_bf16, dy, dy_mode) == 4) {
    GANC_LAUNCH(bn_dx_kernel<4>, ew_blocks(n / 4), EW_THREADS, st)
    (n, C, x, x_mode, dy, dy_mode, mean, rstd, coef, dx, dx_bf16);
  } else {
    GANC_LAUNCH(bn_dx_kernel<1>, ew_blocks(n), EW_THREADS, st)
    (n, C, x, x_mode, dy, dy_mode, mean, rstd, coef, dx, dx_bf16);
  }
  CUDA_CHECK_LAUNCH();
}
