// resample.cu — nearest 2x upsampling, 2x2 average pooling, global sum pooling and the sum of two
// tensors on the GPU; the CUDA twins of src/ops/resample.c, same arguments plus the stream.
// Activations [N, H, W, C] (C fastest).
//
// Gradient rule (ops.h): every gradient here is an activation gradient and OVERWRITES.
//
// Agreement with the CPU twin: bit-identical, every op.
//   - upsampling, the 2x2 windows, tensor_add: copies, and float sums of four in the twin's order
//     ((w00 + w01) + w10) + w11 times 0.25, written with the _rn intrinsics (never fused into an
//     FMA; elementwise.cuh).
//   - sum_pool_forward: the double tree of ops/sum_order.h ("chunked rows") that the twin walks.
//
// Layout of the work:
//   - the 2x2 ops: one thread per element (or float4 of channels) of the small side [N, h, w, C]
//     of the window, which reads or writes the 4 positions of its window on the big side
//     [N, 2h, 2w, C]; grid-stride, its (row, column, channel) position advanced by a fixed step
//     (one division per thread, not per element). float4 when C is a multiple of 4 and both
//     pointers are 16-byte aligned, else scalars.
//   - tensor_add: float4s while all three pointers are aligned, then a scalar tail (as act.cu).
//   - sum_pool_forward: one thread per (sample, channel) summing its chunks in order when there
//     are at most SP_FUSED_CHUNKS; past that, one thread per (sample, chunk, channel) writes the
//     chunk's partial to scratch and one per (sample, channel) adds them — the same order.
//   - sum_pool_backward: per sample (grid y), its HW·C outputs grid-stride, the channel tracked.
//
// Without a GPU, tests/gpu/cudemu (the tests' CUDA emulator) runs this file, kernels and
// launchers, on the CPU: test_gpu_ops_emu compares it with the CPU twin in CI.
#include "kernels/cuda_check.h"    // CUDA_CHECK_LAUNCH, KERNEL_REQUIRE
#include "kernels/elementwise.cuh" // launch shape, unfused float arithmetic, aligned16
#include "kernels/kernels.h"       // the launchers' declarations, ganc_cuda_scratch
#include "ops/sum_order.h"         // the summation order of sum_pool

#include <stdint.h>

enum {
  SP_FUSED_CHUNKS = 4, // sum_pool: up to 4·64 rows per thread in one kernel
};

// ---------------------------------------------------------------------------------------------
// float and float4 alike

__host__ __device__ static inline float vscale(float a, float s) { return rn_mul(a, s); }
__host__ __device__ static inline float4 vscale(float4 a, float s) {
  return make_float4(rn_mul(a.x, s), rn_mul(a.y, s), rn_mul(a.z, s), rn_mul(a.w, s));
}
__host__ __device__ static inline float vadd(float a, float b) { return rn_add(a, b); }
__host__ __device__ static inline float4 vadd(float4 a, float4 b) {
  return make_float4(rn_add(a.x, b.x), rn_add(a.y, b.y), rn_add(a.z, b.z), rn_add(a.w, b.w));
}

// ---------------------------------------------------------------------------------------------
// the 2x2 windows: small [N, h, w, Cu] and big [N, 2h, 2w, Cu] in units V (float or float4; Cu =
// C or C/4). Small row r = n·h + i is big rows 2r and 2r + 1 (n·2h + 2i = 2r).

// Element q = (r·w + j)·Cu + cu of the small side, as its digits.
struct win_pos {
  int64_t r;
  int j, cu;
};

__host__ __device__ static inline win_pos win_of(int64_t q, int w, int Cu) {
  win_pos p;
  p.cu = (int)(q % Cu);
  q /= Cu;
  p.j = (int)(q % w);
  p.r = q / w;
  return p;
}

// p += step, digit by digit with carries (each digit of both is below its radix).
__host__ __device__ static inline void win_add(win_pos &p, const win_pos &step, int w, int Cu) {
  p.cu += step.cu;
  int carry = p.cu >= Cu;
  if (carry) p.cu -= Cu;
  p.j += step.j + carry;
  carry = p.j >= w;
  if (carry) p.j -= w;
  p.r += step.r + carry;
}

// The window's (0,0) position on the big side; (0,1) is + Cu, (1,0) is + 2w·Cu.
__host__ __device__ static inline int64_t win_big(const win_pos &p, int w, int Cu) {
  return (2 * p.r * (2 * (int64_t)w) + 2 * (int64_t)p.j) * Cu + p.cu;
}

// What a launch moves (V: float or float4) and whether it scales by 0.25 (pooling) or copies and
// sums (upsampling): one template parameter, so that a launch names one type.
template <class V_, bool SCALE_> struct win_cfg {
  typedef V_ V;
  static const bool SCALE = SCALE_;
};

// big = small (· scale) at the window's 4 positions.
template <class Cfg, class V = typename Cfg::V>
__host__ __device__ static void spread_body(int64_t tid, int64_t T, int64_t items, int w, int Cu,
                                            const V *small, float scale, V *big) {
  if (tid >= items) return;
  win_pos p = win_of(tid, w, Cu);
  const win_pos step = win_of(T, w, Cu);
  const int64_t bw = 2 * (int64_t)w * Cu;
  for (int64_t q = tid; q < items; q += T) {
    V v = small[q];
    if (Cfg::SCALE) v = vscale(v, scale);
    V *b0 = big + win_big(p, w, Cu), *b1 = b0 + bw;
    b0[0] = v;
    b0[Cu] = v;
    b1[0] = v;
    b1[Cu] = v;
    win_add(p, step, w, Cu);
  }
}

// small = ((b00 + b01) + b10) + b11 (· scale).
template <class Cfg, class V = typename Cfg::V>
__host__ __device__ static void gather_body(int64_t tid, int64_t T, int64_t items, int w, int Cu,
                                            const V *big, float scale, V *small) {
  if (tid >= items) return;
  win_pos p = win_of(tid, w, Cu);
  const win_pos step = win_of(T, w, Cu);
  const int64_t bw = 2 * (int64_t)w * Cu;
  for (int64_t q = tid; q < items; q += T) {
    const V *b0 = big + win_big(p, w, Cu), *b1 = b0 + bw;
    V s = vadd(vadd(vadd(b0[0], b0[Cu]), b1[0]), b1[Cu]);
    if (Cfg::SCALE) s = vscale(s, scale);
    small[q] = s;
    win_add(p, step, w, Cu);
  }
}

template <class Cfg>
__global__ static void spread_kernel(int64_t items, int w, int Cu, const typename Cfg::V *small,
                                     float scale, typename Cfg::V *big) {
  spread_body<Cfg>((int64_t)blockIdx.x * blockDim.x + threadIdx.x, (int64_t)gridDim.x * blockDim.x,
                   items, w, Cu, small, scale, big);
}

template <class Cfg>
__global__ static void gather_kernel(int64_t items, int w, int Cu, const typename Cfg::V *big,
                                     float scale, typename Cfg::V *small) {
  gather_body<Cfg>((int64_t)blockIdx.x * blockDim.x + threadIdx.x, (int64_t)gridDim.x * blockDim.x,
                   items, w, Cu, big, scale, small);
}

static void win_require(const char *op, int N, int H, int W, int C, int pool) {
  KERNEL_REQUIRE(N >= 1 && H >= 1 && W >= 1 && C >= 1, "2x2 resampling",
                 "%s: empty or negative shape [%d,%d,%d,%d]", op, N, H, W, C);
  // As the CPU twin: the network builders size every pooled layer, so this is a builder's bug.
  if (pool && (H % 2 || W % 2))
    ganc_die(GANC_EXIT_RUNTIME,
             "internal error in %s: 2x2 average pooling of a %dx%d input (H and W must be even)\n"
             "---> HINT: the network's resolution must halve evenly at every pooled block",
             op, H, W);
}

// small [N, h, w, C] → big, or big → small (gather), with or without the 0.25.
template <class Cfg>
static void launch_window_cfg(ganc_stream st, int gather, int64_t items, int w, int Cu,
                              const float *src, float *dst) {
  typedef typename Cfg::V V;
  if (gather) {
    GANC_LAUNCH(gather_kernel<Cfg>, ew_blocks(items), EW_THREADS, st)
    (items, w, Cu, (const V *)src, 0.25f, (V *)dst);
  } else {
    GANC_LAUNCH(spread_kernel<Cfg>, ew_blocks(items), EW_THREADS, st)
    (items, w, Cu, (const V *)src, 0.25f, (V *)dst);
  }
  CUDA_CHECK_LAUNCH();
}

static void launch_window(ganc_stream st, int gather, int scale, int N, int h, int w, int C,
                          const float *src, float *dst) {
  const float *small = gather ? dst : src, *big = gather ? src : dst;
  const int vec = C % 4 == 0 && aligned16(small) && aligned16(big);
  const int Cu = vec ? C / 4 : C;
  const int64_t items = (int64_t)N * h * w * Cu;
  typedef win_cfg<float4, true> pool4;
  typedef win_cfg<float, true> pool1;
  typedef win_cfg<float4, false> up4;
  typedef win_cfg<float, false> up1;
  if (scale && vec) launch_window_cfg<pool4>(st, gather, items, w, Cu, src, dst);
  if (scale && !vec) launch_window_cfg<pool1>(st, gather, items, w, Cu, src, dst);
  if (!scale && vec) launch_window_cfg<up4>(st, gather, items, w, Cu, src, dst);
  if (!scale && !vec) launch_window_cfg<up1>(st, gather, items, w, Cu, src, dst);
}

extern "C" void upsample2x_forward_cuda(ganc_ctx *ctx, ganc_stream st, int N, int H, int W, int C,
                                        const float *x, float *y) {
  (void)ctx;
  win_require("upsample2x_forward_cuda", N, H, W, C, 0);
  launch_window(st, 0, 0, N, H, W, C, x, y);
}

extern "C" void upsample2x_backward_cuda(ganc_ctx *ctx, ganc_stream st, int N, int H, int W, int C,
                                         const float *dy, float *dx) {
  (void)ctx;
  win_require("upsample2x_backward_cuda", N, H, W, C, 0);
  launch_window(st, 1, 0, N, H, W, C, dy, dx);
}

extern "C" void avgpool2x_forward_cuda(ganc_ctx *ctx, ganc_stream st, int N, int H, int W, int C,
                                       const float *x, float *y) {
  (void)ctx;
  win_require("avgpool2x_forward_cuda", N, H, W, C, 1);
  launch_window(st, 1, 1, N, H / 2, W / 2, C, x, y);
}

extern "C" void avgpool2x_backward_cuda(ganc_ctx *ctx, ganc_stream st, int N, int H, int W, int C,
                                        const float *dy, float *dx) {
  (void)ctx;
  win_require("avgpool2x_backward_cuda", N, H, W, C, 1);
  launch_window(st, 0, 1, N, H / 2, W / 2, C, dy, dx);
}

// ---------------------------------------------------------------------------------------------
// tensor_add: y = a + b; a float4 is loaded whole before it is stored, so y may alias a or b.

__host__ __device__ static void add_body(int64_t tid, int64_t T, int64_t n, int vec, const float *a,
                                         const float *b, float *y) {
  const int64_t nv = vec ? n / 4 : 0;
  const float4 *a4 = (const float4 *)a, *b4 = (const float4 *)b;
  float4 *y4 = (float4 *)y;
  for (int64_t i = tid; i < nv; i += T)
    y4[i] = vadd(a4[i], b4[i]);
  for (int64_t i = 4 * nv + tid; i < n; i += T)
    y[i] = rn_add(a[i], b[i]);
}

__global__ static void add_kernel(int64_t n, int vec, const float *a, const float *b, float *y) {
  add_body((int64_t)blockIdx.x * blockDim.x + threadIdx.x, (int64_t)gridDim.x * blockDim.x, n, vec,
           a, b, y);
}

extern "C" void tensor_add_cuda(ganc_ctx *ctx, ganc_stream st, int64_t n, const float *a,
                                const float *b, float *y) {
  (void)ctx;
  KERNEL_REQUIRE(n >= 0, "tensor_add_cuda", "n = %lld", (long long)n);
  if (n == 0) return;
  const int vec = aligned16(a) && aligned16(b) && aligned16(y);
  const int64_t work = vec ? n / 4 + n % 4 : n;
  GANC_LAUNCH(add_kernel, ew_blocks(work), EW_THREADS, st)(n, vec, a, b, y);
  CUDA_CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------
// global sum pooling

// One thread per (n, c), q = n·C + c: y = Σ over the chunks in order of the chunk sums.
__global__ static void sum_pool_fused_kernel(int N, int HW, int C, const float *__restrict__ x,
                                             float *__restrict__ y) {
  const int64_t q = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (q >= (int64_t)N * C) return;
  const int64_t n = q / C, c = q % C, nchunk = ganc_row_chunks(HW);
  const float *xn = x + n * HW * C;
  double s = 0.0;
  for (int64_t j = 0; j < nchunk; j++)
    s += ganc_chunk_sum(xn, C, HW, j, c);
  y[q] = (float)s;
}

// One thread per (n, j, c), q = (n·nchunk + j)·C + c: part [N, nchunk, C] = the chunk sums.
__global__ static void sum_pool_partial_kernel(int N, int HW, int C, const float *__restrict__ x,
                                               double *__restrict__ part) {
  const int64_t nchunk = ganc_row_chunks(HW);
  const int64_t q = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (q >= (int64_t)N * nchunk * C) return;
  const int64_t c = q % C, nj = q / C, n = nj / nchunk, j = nj % nchunk;
  part[q] = ganc_chunk_sum(x + n * HW * C, C, HW, j, c);
}

// One thread per (n, c): y = the chunk partials added in order.
__global__ static void sum_pool_total_kernel(int N, int HW, int C, const double *__restrict__ part,
                                             float *__restrict__ y) {
  const int64_t q = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (q >= (int64_t)N * C) return;
  const int64_t n = q / C, c = q % C, nchunk = ganc_row_chunks(HW);
  y[q] = (float)ganc_chunk_total(part + n * nchunk * C, nchunk, C, c);
}

// dx [N, HW, C] = dy [N, C]: sample n = blockIdx.y; its HW·C outputs grid-stride over x, the
// channel tracked (one modulo per thread).
__global__ static void sum_pool_bwd_kernel(int HW, int C, const float *__restrict__ dy,
                                           float *__restrict__ dx) {
  const int64_t n = blockIdx.y, per = (int64_t)HW * C;
  const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  const int64_t T = (int64_t)gridDim.x * blockDim.x;
  const float *d = dy + n * C;
  float *o = dx + n * per;
  int c = (int)(tid % C);
  const int step = (int)(T % C);
  for (int64_t i = tid; i < per; i += T) {
    o[i] = d[c];
    c += step;
    if (c >= C) c -= C;
  }
}

static void sp_require(const char *op, int N, int HW, int C) {
  KERNEL_REQUIRE(N >= 1 && HW >= 1 && C >= 1, "sum pooling", "%s: N = %d, HW = %d, C = %d", op, N,
                 HW, C);
}

static int blocks_for(int64_t threads) { return (int)((threads + EW_THREADS - 1) / EW_THREADS); }

extern "C" void sum_pool_forward_cuda(ganc_ctx *ctx, ganc_stream st, int N, int HW, int C,
                                      const float *x, float *y) {
  sp_require("sum_pool_forward_cuda", N, HW, C);
  const int64_t nchunk = ganc_row_chunks(HW), nc = (int64_t)N * C;
  if (nchunk <= SP_FUSED_CHUNKS) {
    GANC_LAUNCH(sum_pool_fused_kernel, blocks_for(nc), EW_THREADS, st)(N, HW, C, x, y);
    CUDA_CHECK_LAUNCH();
    return;
  }
  double *part =
      (double *)ganc_cuda_scratch(ctx, (size_t)(nc * nchunk) * (sizeof(double) / sizeof(float)));
  GANC_LAUNCH(sum_pool_partial_kernel, blocks_for(nc * nchunk), EW_THREADS, st)(N, HW, C, x, part);
  CUDA_CHECK_LAUNCH();
  GANC_LAUNCH(sum_pool_total_kernel, blocks_for(nc), EW_THREADS, st)(N, HW, C, part, y);
  CUDA_CHECK_LAUNCH();
}

extern "C" void sum_pool_backward_cuda(ganc_ctx *ctx, ganc_stream st, int N, int HW, int C,
                                       const float *dy, float *dx) {
  (void)ctx;
  sp_require("sum_pool_backward_cuda", N, HW, C);
  KERNEL_REQUIRE(N <= 65535, "sum_pool_backward_cuda", "N = %d samples ride on gridDim.y", N);
  // Blocks per sample: enough for the sample, and N of them together about EW_MAX_BLOCKS.
  int64_t gx = blocks_for((int64_t)HW * C), cap = EW_MAX_BLOCKS / N;
  gx = gx < cap ? gx : cap;
  GANC_LAUNCH(sum_pool_bwd_kernel, dim3((unsigned)(gx < 1 ? 1 : gx), (unsigned)N), EW_THREADS, st)
  (HW, C, dy, dx);
  CUDA_CHECK_LAUNCH();
}
