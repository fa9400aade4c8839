// spectral.cu — spectral normalization of a weight on the GPU: the power iteration, W / sigma, and
// the gradient through it; the CUDA twin of src/ops/spectral.c, same arguments plus the stream.
// W [M, K] is the weight's storage seen as a matrix; u [K] and v [M] the iteration's state.
//
// Gradient rule (ops.h): dw ACCUMULATES (+=).
//
// Agreement with the CPU twin: bit-identical. Every sum is a double tree of ops/sum_order.h that
// the twin walks in the same order, products of a double that is not a widened float go through
// ganc_dmul (never fused), and the float expressions (w / sigma, the gradient) use the _rn
// intrinsics in the twin's order (elementwise.cuh). No atomics: every run gives the same bits.
//
// The work (M up to 3·3·1024 = 9216 rows, K up to 1024 and more; every pass reads W once):
//   W u     sn_wu: a warp per row, lane l sums k = l, l + 32, ... (coalesced along the row), the
//           32 lanes added by the halving tree in shared memory; 8 rows per block.
//   Wᵀ v    sn_wtv_partial: block (chunk of 64 rows, 256 columns), thread k sums its column over
//           the chunk's rows (a warp reads 128 contiguous bytes per row; v[m] is broadcast) into
//           part [nchunk, K]; sn_wtv_total: thread k adds its column's partials in order.
//   ‖a‖     sn_normalize: one block of 256 lanes over the vector, the tree, then each lane scales
//           its own elements (a vector is at most M doubles: one block reads it in microseconds).
//   sigma   sn_sigma: one block, uᵀ (Wᵀ v) as a long sum, from the last iteration's Wᵀ v.
//   w / σ   sn_scale: elementwise, float4s while aligned, then a scalar tail.
// A training forward (iters = 1) reads W three times and writes w_sn once: memory-bound, about
// 4·M·K·4 bytes (150 MB for 9216 x 1024, ~40 µs at 4 TB/s).
// Backward: Σ dw_sn ⊙ w_sn as a flat sum (a block per 4096 elements, then one block), then one
// elementwise pass dw += (g − (s·v[m])·u[k]) / sigma with (m, k) tracked, float4s while aligned.
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
  SN_COLS = 256,         // sn_wtv_*: columns per block
  SN_ROWS_PER_BLOCK = 8, // sn_wu: rows (warps) per block
};

// ---------------------------------------------------------------------------------------------
// kernels

// grid (nchunk, ceil(K/256)), block 256: part [nchunk, K], chunk j of column k of Wᵀ v.
__global__ static void __launch_bounds__(SN_COLS)
    sn_wtv_partial_kernel(int M, int K, const float *__restrict__ w, const float *__restrict__ v,
                          double *__restrict__ part) {
  const int64_t j = blockIdx.x, k = (int64_t)blockIdx.y * SN_COLS + threadIdx.x;
  if (k < K) part[j * K + k] = ganc_chunk_wsum(w, K, v, M, j, k);
}

// grid ceil(K/256), block 256: b [K] = the partials of each column in order.
__global__ static void __launch_bounds__(SN_COLS)
    sn_wtv_total_kernel(int K, int64_t nchunk, const double *__restrict__ part,
                        double *__restrict__ b) {
  const int64_t k = (int64_t)blockIdx.x * SN_COLS + threadIdx.x;
  if (k < K) b[k] = ganc_chunk_total(part, nchunk, K, k);
}

// grid ceil(M/8), block (32, 8): a [M] = W u, a warp per row.
__global__ static void __launch_bounds__(GANC_DOT_LANES *SN_ROWS_PER_BLOCK)
    sn_wu_kernel(int M, int K, const float *__restrict__ w, const float *__restrict__ u,
                 double *__restrict__ a) {
  __shared__ double s[SN_ROWS_PER_BLOCK * GANC_DOT_LANES];
  const int lane = threadIdx.x, row = threadIdx.y;
  const int64_t m = (int64_t)blockIdx.x * SN_ROWS_PER_BLOCK + row;
  double *sr = s + row * GANC_DOT_LANES;
  sr[lane] = m < M ? ganc_dot_lane(w + m * K, u, K, lane) : 0.0; // rows past M join the tree
  __syncthreads();
  for (int half = GANC_DOT_LANES / 2; half > 0; half >>= 1) {
    ganc_tree_level(sr, lane, half);
    __syncthreads();
  }
  if (lane == 0 && m < M) a[m] = sr[0];
}

// The long-sum tree over s [256] after every lane has written s[t]; returns the total to all.
__device__ static double long_tree(double *s) {
  const int t = threadIdx.x;
  __syncthreads();
  for (int half = GANC_LONG_LANES / 2; half > 0; half >>= 1) {
    ganc_tree_level(s, t, half);
    __syncthreads();
  }
  return s[0];
}

// One block of 256: out [n] = a / max(‖a‖, eps), in double, each element rounded once.
__global__ static void __launch_bounds__(GANC_LONG_LANES)
    sn_normalize_kernel(int64_t n, const double *__restrict__ a, float eps,
                        float *__restrict__ out) {
  __shared__ double s[GANC_LONG_LANES];
  const int t = threadIdx.x;
  s[t] = ganc_long_lane_sq(a, n, t);
  const double nrm = sqrt(long_tree(s));
  const double d = nrm > (double)eps ? nrm : (double)eps;
  for (int64_t i = t; i < n; i += GANC_LONG_LANES)
    out[i] = (float)(a[i] / d);
}

// One block of 256: sigma [1] = uᵀ b (b = Wᵀ v).
__global__ static void __launch_bounds__(GANC_LONG_LANES)
    sn_sigma_kernel(int64_t n, const float *__restrict__ u, const double *__restrict__ b,
                    float *__restrict__ sigma) {
  __shared__ double s[GANC_LONG_LANES];
  const int t = threadIdx.x;
  s[t] = ganc_long_lane_dot(u, b, n, t);
  const double total = long_tree(s);
  if (t == 0) *sigma = (float)total;
}

// w_sn = w / sigma: float4s while both pointers are aligned, then a scalar tail.
__host__ __device__ static void sn_scale_body(int64_t tid, int64_t T, int64_t n, int vec,
                                              const float *w, const float *sigma, float *w_sn) {
  const float sg = *sigma;
  const int64_t nv = vec ? n / 4 : 0;
  const float4 *w4 = (const float4 *)w;
  float4 *o4 = (float4 *)w_sn;
  for (int64_t i = tid; i < nv; i += T) {
    const float4 a = w4[i];
    o4[i] = make_float4(rn_div(a.x, sg), rn_div(a.y, sg), rn_div(a.z, sg), rn_div(a.w, sg));
  }
  for (int64_t i = 4 * nv + tid; i < n; i += T)
    w_sn[i] = rn_div(w[i], sg);
}

__global__ static void sn_scale_kernel(int64_t n, int vec, const float *__restrict__ w,
                                       const float *__restrict__ sigma, float *__restrict__ w_sn) {
  sn_scale_body((int64_t)blockIdx.x * blockDim.x + threadIdx.x, (int64_t)gridDim.x * blockDim.x, n,
                vec, w, sigma, w_sn);
}

// grid nchunk, block 256: part [nchunk] = the flat sum's chunks of Σ g ⊙ w_sn.
__global__ static void __launch_bounds__(GANC_LONG_LANES)
    sn_flat_partial_kernel(int64_t n, const float *__restrict__ g, const float *__restrict__ w_sn,
                           double *__restrict__ part) {
  __shared__ double s[GANC_LONG_LANES];
  const int t = threadIdx.x;
  s[t] = ganc_flat_lane_dot(g, w_sn, n, blockIdx.x, t);
  const double total = long_tree(s);
  if (t == 0) part[blockIdx.x] = total;
}

// One block of 256: *out = the chunks' partials as one long sum.
__global__ static void __launch_bounds__(GANC_LONG_LANES)
    sn_flat_total_kernel(int64_t nchunk, const double *__restrict__ part,
                         double *__restrict__ out) {
  __shared__ double s[GANC_LONG_LANES];
  const int t = threadIdx.x;
  s[t] = ganc_long_lane_sum(part, nchunk, t);
  const double total = long_tree(s);
  if (t == 0) *out = total;
}

// One element of the gradient, in the twin's order: dw + (g − (s·v[m])·u[k]) / sigma.
__host__ __device__ static inline float sn_grad(float dw, float g, float s, float vm, float uk,
                                                float sg) {
  return rn_add(dw, rn_div(rn_sub(g, rn_mul(rn_mul(s, vm), uk)), sg));
}

// Element i = m·K + k as (m, k), advanced without dividing.
struct sn_pos {
  int64_t m, k;
};
__host__ __device__ static inline sn_pos sn_pos_of(int64_t i, int K) {
  sn_pos p = {i / K, i % K};
  return p;
}
__host__ __device__ static inline void sn_pos_add(sn_pos &p, const sn_pos &step, int K) {
  p.k += step.k;
  const int carry = p.k >= K;
  if (carry) p.k -= K;
  p.m += step.m + carry;
}
__host__ __device__ static inline void sn_pos_next(sn_pos &p, int K) {
  if (++p.k == K) {
    p.k = 0;
    p.m++;
  }
}

// dw [M, K] += the gradient: float4s of (g, dw) while both are aligned, then a scalar tail.
__host__ __device__ static void sn_grad_body(int64_t tid, int64_t T, int M, int K, int vec,
                                             const float *g, const float *u, const float *v,
                                             const double *s_sum, const float *sigma, float *dw) {
  const int64_t n = (int64_t)M * K, nv = vec ? n / 4 : 0;
  const float s = (float)*s_sum, sg = *sigma;
  if (tid < nv) {
    const float4 *g4 = (const float4 *)g;
    float4 *d4 = (float4 *)dw;
    sn_pos p = sn_pos_of(4 * tid, K);
    const sn_pos step = sn_pos_of(4 * T, K);
    for (int64_t i = tid; i < nv; i += T) {
      const float4 a = g4[i];
      float4 d = d4[i];
      sn_pos e = p;
      d.x = sn_grad(d.x, a.x, s, v[e.m], u[e.k], sg);
      sn_pos_next(e, K);
      d.y = sn_grad(d.y, a.y, s, v[e.m], u[e.k], sg);
      sn_pos_next(e, K);
      d.z = sn_grad(d.z, a.z, s, v[e.m], u[e.k], sg);
      sn_pos_next(e, K);
      d.w = sn_grad(d.w, a.w, s, v[e.m], u[e.k], sg);
      d4[i] = d;
      sn_pos_add(p, step, K);
    }
  }
  if (4 * nv + tid < n) {
    sn_pos p = sn_pos_of(4 * nv + tid, K);
    const sn_pos step = sn_pos_of(T, K);
    for (int64_t i = 4 * nv + tid; i < n; i += T) {
      dw[i] = sn_grad(dw[i], g[i], s, v[p.m], u[p.k], sg);
      sn_pos_add(p, step, K);
    }
  }
}

__global__ static void sn_grad_kernel(int M, int K, int vec, const float *__restrict__ g,
                                      const float *__restrict__ u, const float *__restrict__ v,
                                      const double *__restrict__ s_sum,
                                      const float *__restrict__ sigma, float *__restrict__ dw) {
  sn_grad_body((int64_t)blockIdx.x * blockDim.x + threadIdx.x, (int64_t)gridDim.x * blockDim.x, M,
               K, vec, g, u, v, s_sum, sigma, dw);
}

// ---------------------------------------------------------------------------------------------
// launchers

static void sn_require(const char *op, int M, int K) {
  KERNEL_REQUIRE(M >= 1 && K >= 1, "spectral norm", "%s: weight matrix [%d, %d]", op, M, K);
  // Column tiles ride on gridDim.y.
  KERNEL_REQUIRE((K + SN_COLS - 1) / SN_COLS <= 65535, "spectral norm", "%s: K = %d columns", op,
                 K);
}

// Device scratch of `doubles` doubles (cudaMalloc'd: 256-byte aligned).
static double *sn_scratch(ganc_ctx *ctx, size_t doubles) {
  return (double *)ganc_cuda_scratch(ctx, doubles * (sizeof(double) / sizeof(float)));
}

// b [K] = Wᵀ v through part [nchunk, K].
static void launch_wtv(ganc_stream st, int M, int K, const float *w, const float *v, double *part,
                       double *b) {
  const int64_t nchunk = ganc_row_chunks(M);
  const int col_tiles = (K + SN_COLS - 1) / SN_COLS;
  GANC_LAUNCH(sn_wtv_partial_kernel, dim3((unsigned)nchunk, (unsigned)col_tiles), SN_COLS, st)
  (M, K, w, v, part);
  CUDA_CHECK_LAUNCH();
  GANC_LAUNCH(sn_wtv_total_kernel, col_tiles, SN_COLS, st)(K, nchunk, part, b);
  CUDA_CHECK_LAUNCH();
}

// a [M] = W u.
static void launch_wu(ganc_stream st, int M, int K, const float *w, const float *u, double *a) {
  GANC_LAUNCH(sn_wu_kernel, (M + SN_ROWS_PER_BLOCK - 1) / SN_ROWS_PER_BLOCK,
              dim3(GANC_DOT_LANES, SN_ROWS_PER_BLOCK), st)
  (M, K, w, u, a);
  CUDA_CHECK_LAUNCH();
}

extern "C" void spectral_norm_forward_cuda(ganc_ctx *ctx, ganc_stream st, int M, int K,
                                           const float *w, float *u, float *v, int iters, float eps,
                                           float *sigma, float *w_sn) {
  sn_require("spectral_norm_forward_cuda", M, K);
  KERNEL_REQUIRE(iters >= 0, "spectral_norm_forward_cuda", "iters = %d", iters);
  const int64_t nchunk = ganc_row_chunks(M);
  // Scratch (doubles): part [nchunk, K], b [K], a [M].
  double *part = sn_scratch(ctx, (size_t)((nchunk + 1) * K + M));
  double *b = part + nchunk * K, *a = b + K;
  for (int it = 0; it < iters; it++) {
    launch_wu(st, M, K, w, u, a);
    GANC_LAUNCH(sn_normalize_kernel, 1, GANC_LONG_LANES, st)(M, a, eps, v);
    CUDA_CHECK_LAUNCH();
    launch_wtv(st, M, K, w, v, part, b);
    GANC_LAUNCH(sn_normalize_kernel, 1, GANC_LONG_LANES, st)(K, b, eps, u);
    CUDA_CHECK_LAUNCH();
  }
  if (iters == 0) launch_wtv(st, M, K, w, v, part, b);
  GANC_LAUNCH(sn_sigma_kernel, 1, GANC_LONG_LANES, st)(K, u, b, sigma);
  CUDA_CHECK_LAUNCH();
  const int64_t n = (int64_t)M * K;
  const int vec = aligned16(w) && aligned16(w_sn);
  GANC_LAUNCH(sn_scale_kernel, ew_blocks(vec ? n / 4 + n % 4 : n), EW_THREADS, st)
  (n, vec, w, sigma, w_sn);
  CUDA_CHECK_LAUNCH();
}

extern "C" void spectral_norm_backward_cuda(ganc_ctx *ctx, ganc_stream st, int M, int K,
                                            const float *w_sn, const float *dw_sn, const float *u,
                                            const float *v, const float *sigma, float *dw) {
  sn_require("spectral_norm_backward_cuda", M, K);
  const int64_t n = (int64_t)M * K, nchunk = ganc_flat_chunks(n);
  KERNEL_REQUIRE(nchunk <= 0x7FFFFFFF, "spectral_norm_backward_cuda", "%lld chunks",
                 (long long)nchunk);
  // Scratch (doubles): part [nchunk], the sum [1].
  double *part = sn_scratch(ctx, (size_t)nchunk + 1), *s_sum = part + nchunk;
  GANC_LAUNCH(sn_flat_partial_kernel, (unsigned)nchunk, GANC_LONG_LANES, st)(n, dw_sn, w_sn, part);
  CUDA_CHECK_LAUNCH();
  GANC_LAUNCH(sn_flat_total_kernel, 1, GANC_LONG_LANES, st)(nchunk, part, s_sum);
  CUDA_CHECK_LAUNCH();
  const int vec = aligned16(dw_sn) && aligned16(dw);
  GANC_LAUNCH(sn_grad_kernel, ew_blocks(vec ? n / 4 + n % 4 : n), EW_THREADS, st)
  (M, K, vec, dw_sn, u, v, s_sum, sigma, dw);
  CUDA_CHECK_LAUNCH();
}
