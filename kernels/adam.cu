// adam.cu — the optimizer step and the weight average over a whole parameter block on the GPU, one
// launch each; the CUDA twins of src/ops/adam.c, same arguments plus the stream.
//
// p, g, m, v, ema [n] are whole blocks (the network's parameters, their gradients and moments,
// mirrored tables), so one grid-stride launch covers every tensor of a network.
//
// Agreement with the CPU twin: bit-identical, by construction.
//   - The bias corrections are computed once on the host (ganc_adam_consts: pow and sqrt in
//     double, rounded to float) and read from device memory, the same floats the CPU twin reads.
//   - Per element, every float operation is written with the _rn intrinsics (__fmul_rn, __fadd_rn,
//     __fdiv_rn, __fsqrt_rn) in adam.c's order of evaluation: nvcc never fuses those into an FMA
//     and they stay IEEE-rounded under -use_fast_math, so each rounds exactly as the CPU's SSE
//     instructions do (x86-64 without -mfma has no FMA for gcc to contract into).
// The test (tests/gpu/test_gpu_ops.c) still allows 1e-6 relative, and prints the ulps it sees.
//
// Layout of the work: float4s when all four pointers are 16-byte aligned, then a scalar tail.
// Without a GPU, tests/gpu/cudemu (the tests' CUDA emulator) runs this file, kernels and
// launchers, on the CPU: test_gpu_ops_emu checks it against the CPU twin in CI.
#include "kernels/cuda_check.h"    // CUDA_CHECK_LAUNCH, KERNEL_REQUIRE
#include "kernels/elementwise.cuh" // launch shape, unfused float arithmetic
#include "kernels/kernels.h"       // the launchers' declarations
#include "ops/precision.h"         // the updated weights' bf16 halves

#include <math.h>
#include <stdint.h>

// ---------------------------------------------------------------------------------------------
// Adam

// The step's constants, made on the host by ganc_adam_consts (src/ops/adam.c) and read by every
// thread from device memory (ganc_step_args), so that a replayed graph takes each step's.
typedef struct adam_consts {
  float b1, b2;   // decays
  float c1, c2;   // 1 − b1, 1 − b2
  float step;     // lr / (1 − b1^t)
  float bc2_sqrt; // sqrt(1 − b2^t)
  float eps;
  float beta, cb; // the EMA's beta and 1 − beta (with an ema)
} adam_consts;

__host__ __device__ static inline adam_consts adam_load(const float *k) {
  adam_consts c;
  c.b1 = k[0];
  c.b2 = k[1];
  c.c1 = k[2];
  c.c2 = k[3];
  c.step = k[4];
  c.bc2_sqrt = k[5];
  c.eps = k[6];
  c.beta = k[7];
  c.cb = rn_sub(1.0f, c.beta);
  return c;
}

// One element, in adam.c's order: m = b1 m + c1 g; v = b2 v + (c2 g) g; p −= (step m) / (√v / bc +
// eps).
__host__ __device__ static inline void adam_elem(float &p, float g, float &m, float &v,
                                                 const adam_consts &k) {
  const float mi = rn_add(rn_mul(k.b1, m), rn_mul(k.c1, g));
  const float vi = rn_add(rn_mul(k.b2, v), rn_mul(rn_mul(k.c2, g), g));
  m = mi;
  v = vi;
  p = rn_sub(p, rn_div(rn_mul(k.step, mi), rn_add(rn_div(rn_sqrt(vi), k.bc2_sqrt), k.eps)));
}

// The EMA of an updated parameter, ema_update's arithmetic.
__host__ __device__ static inline float ema_elem(float e, float p, float beta, float c) {
  return rn_add(rn_mul(beta, e), rn_mul(c, p));
}

// Adam over the block (and, when ema is not NULL, the EMA of each updated parameter: the same
// arithmetic as ema_update after it, without reading p again; when ph is not NULL, the updated
// parameters' bf16 halves, four in one 8-byte store on the vector path).
__host__ __device__ static void adam_body(int64_t tid, int64_t T, int64_t n, int vec, float *p,
                                          const float *g, float *m, float *v, float *ema,
                                          uint16_t *ph, const adam_consts &k) {
  const int64_t nv = vec ? n / 4 : 0;
  float4 *p4 = (float4 *)p, *m4 = (float4 *)m, *v4 = (float4 *)v, *e4 = (float4 *)ema;
  const float4 *g4 = (const float4 *)g;
  for (int64_t i = tid; i < nv; i += T) {
    float4 pp = p4[i], mm = m4[i], vv = v4[i];
    const float4 gg = g4[i];
    adam_elem(pp.x, gg.x, mm.x, vv.x, k);
    adam_elem(pp.y, gg.y, mm.y, vv.y, k);
    adam_elem(pp.z, gg.z, mm.z, vv.z, k);
    adam_elem(pp.w, gg.w, mm.w, vv.w, k);
    p4[i] = pp;
    m4[i] = mm;
    v4[i] = vv;
    if (ema) {
      float4 e = e4[i];
      e.x = ema_elem(e.x, pp.x, k.beta, k.cb);
      e.y = ema_elem(e.y, pp.y, k.beta, k.cb);
      e.z = ema_elem(e.z, pp.z, k.beta, k.cb);
      e.w = ema_elem(e.w, pp.w, k.beta, k.cb);
      e4[i] = e;
    }
    if (ph) {
      uint2 h;
      h.x = (uint32_t)ganc_bf16_store(pp.x) | (uint32_t)ganc_bf16_store(pp.y) << 16;
      h.y = (uint32_t)ganc_bf16_store(pp.z) | (uint32_t)ganc_bf16_store(pp.w) << 16;
      ((uint2 *)ph)[i] = h;
    }
  }
  for (int64_t i = 4 * nv + tid; i < n; i += T) {
    adam_elem(p[i], g[i], m[i], v[i], k);
    if (ema) ema[i] = ema_elem(ema[i], p[i], k.beta, k.cb);
    if (ph) ph[i] = ganc_bf16_store(p[i]);
  }
}

__global__ static void adam_kernel(int64_t n, int vec, float *p, const float *g, float *m, float *v,
                                   float *ema, uint16_t *ph, const float *kp) {
  const adam_consts k = adam_load(kp);
  adam_body((int64_t)blockIdx.x * blockDim.x + threadIdx.x, (int64_t)gridDim.x * blockDim.x, n, vec,
            p, g, m, v, ema, ph, k);
}

// ---------------------------------------------------------------------------------------------
// EMA: ema = beta · ema + (1 − beta) · p

__host__ __device__ static void ema_body(int64_t tid, int64_t T, int64_t n, int vec, float *ema,
                                         const float *p, float beta) {
  const float c = 1.0f - beta;
  const int64_t nv = vec ? n / 4 : 0;
  float4 *e4 = (float4 *)ema;
  const float4 *p4 = (const float4 *)p;
  for (int64_t i = tid; i < nv; i += T) {
    float4 e = e4[i];
    const float4 q = p4[i];
    e.x = ema_elem(e.x, q.x, beta, c);
    e.y = ema_elem(e.y, q.y, beta, c);
    e.z = ema_elem(e.z, q.z, beta, c);
    e.w = ema_elem(e.w, q.w, beta, c);
    e4[i] = e;
  }
  for (int64_t i = 4 * nv + tid; i < n; i += T)
    ema[i] = ema_elem(ema[i], p[i], beta, c);
}

__global__ static void ema_kernel(int64_t n, int vec, float *ema, const float *p, float beta) {
  ema_body((int64_t)blockIdx.x * blockDim.x + threadIdx.x, (int64_t)gridDim.x * blockDim.x, n, vec,
           ema, p, beta);
}

// ---------------------------------------------------------------------------------------------
// launchers: p, g, m, v, ema [n] device memory

extern "C" void adam_update_cuda(ganc_ctx *ctx, ganc_stream st, size_t n, float *p, const float *g,
                                 float *m, float *v, float *ema, uint16_t *ph, const float *k) {
  (void)ctx;
  KERNEL_REQUIRE(n <= (size_t)INT64_MAX && k, "adam_update_cuda", "n = %zu floats", n);
  if (n == 0) return;
  const int vec = aligned16(p) && aligned16(g) && aligned16(m) && aligned16(v) &&
                  (!ema || aligned16(ema)) && (!ph || ((uintptr_t)ph & 7u) == 0);
  const int64_t work = vec ? (int64_t)(n / 4 + n % 4) : (int64_t)n;
  GANC_LAUNCH(adam_kernel, ew_blocks(work), EW_THREADS, st)
  ((int64_t)n, vec, p, g, m, v, ema, ph, k);
  CUDA_CHECK_LAUNCH();
}

extern "C" void ema_update_cuda(ganc_ctx *ctx, ganc_stream st, size_t n, float *ema, const float *p,
                                float beta) {
  (void)ctx;
  KERNEL_REQUIRE(n <= (size_t)INT64_MAX, "ema_update_cuda", "n = %zu floats", n);
  if (n == 0) return;
  const int vec = aligned16(ema) && aligned16(p);
  const int64_t work = vec ? (int64_t)(n / 4 + n % 4) : (int64_t)n;
  GANC_LAUNCH(ema_kernel, ew_blocks(work), EW_THREADS, st)((int64_t)n, vec, ema, p, beta);
  CUDA_CHECK_LAUNCH();
}
