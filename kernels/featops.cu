// featops.cu — the feature-network ops on the GPU (ops.def: pool2d, pad2d, channel_copy,
// resize_bilinear), the CUDA twins of src/ops/featops.c, forward only.
//
// Agreement with the CPU twin: bit-identical. Each output element is computed by the same
// function of ops/featops_core.h (double sums in window order, products through ganc_dmul, which
// the device never fuses); pad2d and channel_copy are copies.
//
// Layout of the work: one thread per output element, grid-stride (consecutive threads take
// consecutive channels, so a warp reads and writes contiguous memory in NHWC).
//
// Without a GPU, tests/gpu/cudemu (the tests' CUDA emulator) runs this file on the CPU:
// test_gpu_ops_emu compares it with the CPU twin in CI.
#include "kernels/cuda_check.h"    // CUDA_CHECK_LAUNCH
#include "kernels/elementwise.cuh" // EW_THREADS, ew_blocks
#include "kernels/kernels.h"       // the launchers' declarations
#include "ops/featops_core.h"      // the arithmetic, shared with the CPU twin

#include <stdint.h>

// Output element e of [N, P, Q, C] as its (n, p, q, c).
struct nhwc {
  int64_t n;
  int p, q, c;
};
__device__ static inline nhwc nhwc_of(int64_t e, int P, int Q, int C) {
  nhwc o;
  o.c = (int)(e % C);
  e /= C;
  o.q = (int)(e % Q);
  e /= Q;
  o.p = (int)(e % P);
  o.n = e / P;
  return o;
}

__global__ static void pool2d_kernel(int64_t total, int H, int W, int C, int K, int stride, int pad,
                                     int mode, int P, int Q, const float *__restrict__ x,
                                     float *__restrict__ y) {
  for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total;
       e += (int64_t)gridDim.x * blockDim.x) {
    const nhwc o = nhwc_of(e, P, Q, C);
    y[e] = ganc_pool_at(x, H, W, C, K, stride, pad, mode, o.n, o.p, o.q, o.c);
  }
}

__global__ static void pad2d_kernel(int64_t total, int H, int W, int C, int ph, int pw,
                                    const float *__restrict__ x, float *__restrict__ y) {
  const int Hp = H + 2 * ph, Wp = W + 2 * pw;
  for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total;
       e += (int64_t)gridDim.x * blockDim.x) {
    const nhwc o = nhwc_of(e, Hp, Wp, C);
    const int i = o.p - ph, j = o.q - pw;
    y[e] = i >= 0 && i < H && j >= 0 && j < W ? x[((o.n * H + i) * W + j) * C + o.c] : 0.0f;
  }
}

__global__ static void channel_copy_kernel(int64_t total, int C, int Cy, int at,
                                           const float *__restrict__ x, float *__restrict__ y) {
  for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total;
       e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t m = e / C;
    y[m * Cy + at + (e - m * C)] = x[e];
  }
}

__global__ static void resize_kernel(int64_t total, int H, int W, int C, int P, int Q,
                                     const float *__restrict__ x, float *__restrict__ y) {
  for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total;
       e += (int64_t)gridDim.x * blockDim.x) {
    const nhwc o = nhwc_of(e, P, Q, C);
    y[e] = ganc_resize_at(x, H, W, C, P, Q, o.n, o.p, o.q, o.c);
  }
}

static void fo_die(const char *op, const char *why) {
  ganc_die(GANC_EXIT_RUNTIME, "internal error in %s: %s", op, why);
}

extern "C" void pool2d_forward_cuda(ganc_ctx *ctx, ganc_stream st, int N, int H, int W, int C,
                                    int K, int stride, int pad, int mode, const float *x,
                                    float *y) {
  (void)ctx;
  char buf[200];
  const char *why = ganc_pool_invalid(N, H, W, C, K, stride, pad, mode, buf, sizeof buf);
  if (why) fo_die("pool2d_forward_cuda", why);
  const int P = ganc_pool_out(H, K, stride, pad), Q = ganc_pool_out(W, K, stride, pad);
  const int64_t total = (int64_t)N * P * Q * C;
  GANC_LAUNCH(pool2d_kernel, ew_blocks(total), EW_THREADS, st)
  (total, H, W, C, K, stride, pad, mode, P, Q, x, y);
  CUDA_CHECK_LAUNCH();
}

extern "C" void pad2d_forward_cuda(ganc_ctx *ctx, ganc_stream st, int N, int H, int W, int C,
                                   int ph, int pw, const float *x, float *y) {
  (void)ctx;
  if (N < 1 || H < 1 || W < 1 || C < 1 || ph < 0 || pw < 0)
    fo_die("pad2d_forward_cuda", "empty shape or negative padding");
  const int64_t total = (int64_t)N * (H + 2 * ph) * (W + 2 * pw) * C;
  GANC_LAUNCH(pad2d_kernel, ew_blocks(total), EW_THREADS, st)(total, H, W, C, ph, pw, x, y);
  CUDA_CHECK_LAUNCH();
}

extern "C" void channel_copy_cuda(ganc_ctx *ctx, ganc_stream st, int64_t M, int C, int Cy, int at,
                                  const float *x, float *y) {
  (void)ctx;
  if (M < 1 || C < 1 || at < 0 || at + C > Cy)
    fo_die("channel_copy_cuda", "channels outside the destination");
  const int64_t total = M * C;
  GANC_LAUNCH(channel_copy_kernel, ew_blocks(total), EW_THREADS, st)(total, C, Cy, at, x, y);
  CUDA_CHECK_LAUNCH();
}

extern "C" void resize_bilinear_forward_cuda(ganc_ctx *ctx, ganc_stream st, int N, int H, int W,
                                             int C, int P, int Q, const float *x, float *y) {
  (void)ctx;
  if (N < 1 || H < 1 || W < 1 || C < 1 || P < 1 || Q < 1)
    fo_die("resize_bilinear_forward_cuda", "empty or negative shape");
  const int64_t total = (int64_t)N * P * Q * C;
  GANC_LAUNCH(resize_kernel, ew_blocks(total), EW_THREADS, st)(total, H, W, C, P, Q, x, y);
  CUDA_CHECK_LAUNCH();
}
