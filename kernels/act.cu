// act.cu — elementwise activations on the GPU: ReLU, leaky ReLU, tanh, forward and backward; the
// CUDA twins of src/ops/act.c, same arguments plus the stream.
//
// Gradient rule (ops.h): dx OVERWRITES. y may alias x and dx may alias dy (or y): every element
// is read and written by one thread in one step (a float4 is loaded whole before it is stored), so
// in-place calls are safe; partially overlapping buffers are not.
//
// Layout of the work: grid-stride loops over float4s when every pointer is 16-byte aligned, then a
// scalar tail for the last n mod 4 elements (all scalar when a pointer is not aligned).
//
// Agreement with the CPU twin:
//   relu, lrelu, the backward passes: bit-identical. Products are written with __fmul_rn /
//     __fsub_rn, which nvcc never fuses into an FMA, so they round exactly as the CPU's separate
//     SSE multiply and subtract do (x86-64 without -mfma has no FMA to contract into).
//   tanh forward: tanh in DOUBLE, rounded once to float — the correctly rounded result in all but
//     ~2^-29 of inputs. glibc 2.36's tanhf (the CPU twin) is itself up to 2 ulp away from that
//     (measured over 6e8 floats), so the two agree to 2 ulp; CUDA's own tanhf would add up to 2
//     more. The double costs nothing that matters: tanh runs once per step on G's output image.
//
// Without a GPU, tests/gpu/cudemu (the tests' CUDA emulator) runs this file, kernels and
// launchers, on the CPU: test_gpu_ops_emu checks it against the CPU twin in CI.
#include "kernels/cuda_check.h"    // CUDA_CHECK_LAUNCH, KERNEL_REQUIRE
#include "kernels/elementwise.cuh" // launch shape, unfused float arithmetic
#include "kernels/kernels.h"       // the launchers' declarations
#include "ops/act_core.h"          // the forward arithmetic, shared with the CPU twins
#include "ops/precision.h"         // y stored in bf16 (the backward passes of ReLU, leaky ReLU)

#include <math.h>
#include <stdint.h>

// ---------------------------------------------------------------------------------------------
// the activations, one element each (same expressions as act.c)

struct relu_fwd { // ops/act_core.h, shared with act.c and batch norm's fused activation
  __host__ __device__ float operator()(float x) const { return ganc_relu(x); }
};
struct lrelu_fwd {
  float slope;
  __host__ __device__ float operator()(float x) const { return ganc_lrelu(slope, x); }
};
struct tanh_fwd {
  __host__ __device__ float operator()(float x) const { return (float)tanh((double)x); }
};
struct relu_bwd { // ops/act_core.h, shared with act.c and the convolutions' epilogues
  __host__ __device__ float operator()(float y, float dy) const {
    return ganc_act_grad(GANC_ACT_RELU, 0.0f, y, dy);
  }
};
struct lrelu_bwd { // y's sign: the same as x's for slope > 0
  float slope;
  __host__ __device__ float operator()(float y, float dy) const {
    return ganc_act_grad(GANC_ACT_LRELU, slope, y, dy);
  }
};
struct tanh_bwd { // d tanh(x)/dx = 1 − tanh(x)², from the saved output
  __host__ __device__ float operator()(float y, float dy) const {
    return rn_mul(dy, rn_sub(1.0f, rn_mul(y, y)));
  }
};

// ---------------------------------------------------------------------------------------------
// bodies: thread `tid` of T; vec = 1 when every pointer is 16-byte aligned

template <class F>
__host__ __device__ static void unary_body(int64_t tid, int64_t T, int64_t n, int vec,
                                           const float *x, float *y, F f) {
  const int64_t nv = vec ? n / 4 : 0;
  const float4 *x4 = (const float4 *)x;
  float4 *y4 = (float4 *)y;
  for (int64_t i = tid; i < nv; i += T) {
    float4 v = x4[i];
    v.x = f(v.x);
    v.y = f(v.y);
    v.z = f(v.z);
    v.w = f(v.w);
    y4[i] = v;
  }
  for (int64_t i = 4 * nv + tid; i < n; i += T)
    y[i] = f(x[i]);
}

template <class F>
__host__ __device__ static void binary_body(int64_t tid, int64_t T, int64_t n, int vec,
                                            const float *y, const float *dy, float *dx, F f) {
  const int64_t nv = vec ? n / 4 : 0;
  const float4 *y4 = (const float4 *)y, *dy4 = (const float4 *)dy;
  float4 *dx4 = (float4 *)dx;
  for (int64_t i = tid; i < nv; i += T) {
    const float4 a = y4[i], g = dy4[i];
    float4 r;
    r.x = f(a.x, g.x);
    r.y = f(a.y, g.y);
    r.z = f(a.z, g.z);
    r.w = f(a.w, g.w);
    dx4[i] = r;
  }
  for (int64_t i = 4 * nv + tid; i < n; i += T)
    dx[i] = f(y[i], dy[i]);
}

// The same with y stored in bf16 (ops/precision.h): 4 halves per 8-byte load where y is 8-byte
// aligned and dy, dx 16-byte aligned.
template <class F>
__host__ __device__ static void binary_bf16_body(int64_t tid, int64_t T, int64_t n, int vec,
                                                 const uint16_t *y, const float *dy, float *dx,
                                                 F f) {
  const int64_t nv = vec ? n / 4 : 0;
  const uint2 *y4 = (const uint2 *)y;
  const float4 *dy4 = (const float4 *)dy;
  float4 *dx4 = (float4 *)dx;
  for (int64_t i = tid; i < nv; i += T) {
    const uint2 a = y4[i];
    const float4 g = dy4[i];
    float v[4];
    ganc_bf16x2_load(a.x, v), ganc_bf16x2_load(a.y, v + 2);
    dx4[i] = make_float4(f(v[0], g.x), f(v[1], g.y), f(v[2], g.z), f(v[3], g.w));
  }
  for (int64_t i = 4 * nv + tid; i < n; i += T)
    dx[i] = f(ganc_bf16_load(y[i]), dy[i]);
}

// y = act(x) stored in bf16: 4 floats in, 4 halves (8 bytes) out where x is 16-byte aligned and
// y 8-byte aligned.
__host__ __device__ static void act_bf16_body(int64_t tid, int64_t T, int64_t n, int vec, int act,
                                              float slope, const float *x, uint16_t *y) {
  const int64_t nv = vec ? n / 4 : 0;
  const float4 *x4 = (const float4 *)x;
  uint2 *y4 = (uint2 *)y;
  for (int64_t i = tid; i < nv; i += T) {
    const float4 v = x4[i];
    uint2 r;
    r.x = ganc_bf16x2_store(ganc_act(act, slope, v.x), ganc_act(act, slope, v.y));
    r.y = ganc_bf16x2_store(ganc_act(act, slope, v.z), ganc_act(act, slope, v.w));
    y4[i] = r;
  }
  for (int64_t i = 4 * nv + tid; i < n; i += T)
    y[i] = ganc_bf16_store(ganc_act(act, slope, x[i]));
}

__global__ static void act_bf16_kernel(int64_t n, int vec, int act, float slope, const float *x,
                                       uint16_t *y) {
  act_bf16_body((int64_t)blockIdx.x * blockDim.x + threadIdx.x, (int64_t)gridDim.x * blockDim.x, n,
                vec, act, slope, x, y);
}

template <class F>
__global__ static void unary_kernel(int64_t n, int vec, const float *x, float *y, F f) {
  unary_body((int64_t)blockIdx.x * blockDim.x + threadIdx.x, (int64_t)gridDim.x * blockDim.x, n,
             vec, x, y, f);
}

template <class F>
__global__ static void binary_kernel(int64_t n, int vec, const float *y, const float *dy, float *dx,
                                     F f) {
  binary_body((int64_t)blockIdx.x * blockDim.x + threadIdx.x, (int64_t)gridDim.x * blockDim.x, n,
              vec, y, dy, dx, f);
}

template <class F>
__global__ static void binary_bf16_kernel(int64_t n, int vec, const uint16_t *y, const float *dy,
                                          float *dx, F f) {
  binary_bf16_body((int64_t)blockIdx.x * blockDim.x + threadIdx.x, (int64_t)gridDim.x * blockDim.x,
                   n, vec, y, dy, dx, f);
}

// Threads for n elements: one per float4 (plus the tail) or one per element.
static int64_t act_work(int64_t n, int vec) { return vec ? n / 4 + n % 4 : n; }

template <class F>
static void launch_unary(ganc_stream st, int64_t n, const float *x, float *y, F f) {
  if (n == 0) return;
  const int vec = aligned16(x) && aligned16(y);
  GANC_LAUNCH(unary_kernel<F>, ew_blocks(act_work(n, vec)), EW_THREADS, st)(n, vec, x, y, f);
  CUDA_CHECK_LAUNCH();
}

template <class F>
static void launch_binary(ganc_stream st, int64_t n, const float *y, const float *dy, float *dx,
                          F f) {
  if (n == 0) return;
  const int vec = aligned16(y) && aligned16(dy) && aligned16(dx);
  GANC_LAUNCH(binary_kernel<F>, ew_blocks(act_work(n, vec)), EW_THREADS, st)(n, vec, y, dy, dx, f);
  CUDA_CHECK_LAUNCH();
}

// y in FP32 or (y_bf16) in bf16; the latter may not alias dx.
template <class F>
static void launch_binary_as(ganc_stream st, int64_t n, const void *y, int y_bf16, const float *dy,
                             float *dx, F f) {
  if (!y_bf16) {
    launch_binary(st, n, (const float *)y, dy, dx, f);
    return;
  }
  if (n == 0) return;
  const int vec = ((uintptr_t)y & 7u) == 0 && aligned16(dy) && aligned16(dx);
  GANC_LAUNCH(binary_bf16_kernel<F>, ew_blocks(act_work(n, vec)), EW_THREADS, st)
  (n, vec, (const uint16_t *)y, dy, dx, f);
  CUDA_CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------
// launchers: x, y, dy, dx [n] device memory

extern "C" void relu_forward_cuda(ganc_ctx *ctx, ganc_stream st, int64_t n, const float *x,
                                  float *y) {
  (void)ctx;
  KERNEL_REQUIRE(n >= 0, "relu_forward_cuda", "n = %lld", (long long)n);
  launch_unary(st, n, x, y, relu_fwd{});
}

extern "C" void relu_backward_cuda(ganc_ctx *ctx, ganc_stream st, int64_t n, const void *y,
                                   int y_bf16, const float *dy, float *dx) {
  (void)ctx;
  KERNEL_REQUIRE(n >= 0, "relu_backward_cuda", "n = %lld", (long long)n);
  KERNEL_REQUIRE(!y_bf16 || n == 0 || (const void *)dx != y, "relu_backward_cuda",
                 "y in bf16 cannot be dx's buffer");
  launch_binary_as(st, n, y, y_bf16, dy, dx, relu_bwd{});
}

extern "C" void lrelu_forward_cuda(ganc_ctx *ctx, ganc_stream st, int64_t n, float slope,
                                   const float *x, float *y) {
  (void)ctx;
  KERNEL_REQUIRE(n >= 0, "lrelu_forward_cuda", "n = %lld", (long long)n);
  launch_unary(st, n, x, y, lrelu_fwd{slope});
}

extern "C" void lrelu_backward_cuda(ganc_ctx *ctx, ganc_stream st, int64_t n, float slope,
                                    const void *y, int y_bf16, const float *dy, float *dx) {
  (void)ctx;
  KERNEL_REQUIRE(n >= 0, "lrelu_backward_cuda", "n = %lld", (long long)n);
  KERNEL_REQUIRE(!y_bf16 || n == 0 || (const void *)dx != y, "lrelu_backward_cuda",
                 "y in bf16 cannot be dx's buffer");
  launch_binary_as(st, n, y, y_bf16, dy, dx, lrelu_bwd{slope});
}

extern "C" void act_forward_bf16_cuda(ganc_ctx *ctx, ganc_stream st, int64_t n, int act,
                                      float slope, const float *x, void *y) {
  (void)ctx;
  KERNEL_REQUIRE(n >= 0 && act >= GANC_ACT_NONE && act <= GANC_ACT_LRELU, "act_forward_bf16_cuda",
                 "n = %lld, act %d", (long long)n, act);
  KERNEL_REQUIRE(n == 0 || (const void *)x != y, "act_forward_bf16_cuda",
                 "y in bf16 cannot be x's buffer");
  if (n == 0) return;
  const int vec = aligned16(x) && ((uintptr_t)y & 7u) == 0;
  GANC_LAUNCH(act_bf16_kernel, ew_blocks(act_work(n, vec)), EW_THREADS, st)
  (n, vec, act, slope, x, (uint16_t *)y);
  CUDA_CHECK_LAUNCH();
}

extern "C" void tanh_forward_cuda(ganc_ctx *ctx, ganc_stream st, int64_t n, const float *x,
                                  float *y) {
  (void)ctx;
  KERNEL_REQUIRE(n >= 0, "tanh_forward_cuda", "n = %lld", (long long)n);
  launch_unary(st, n, x, y, tanh_fwd{});
}

extern "C" void tanh_backward_cuda(ganc_ctx *ctx, ganc_stream st, int64_t n, const float *y,
                                   const float *dy, float *dx) {
  (void)ctx;
  KERNEL_REQUIRE(n >= 0, "tanh_backward_cuda", "n = %lld", (long long)n);
  launch_binary(st, n, y, dy, dx, tanh_bwd{});
}
