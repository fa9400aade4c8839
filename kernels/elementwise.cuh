// elementwise.cuh — what the elementwise kernels (act.cu, adam.cu, pixels.cu) share: the launch
// shape of their grid-stride loops, the float4 alignment test, and float arithmetic rounded to
// nearest that nvcc may neither fuse into an FMA nor approximate — the CPU twins round each
// operation separately, and these kernels promise their results bit for bit.
#ifndef GANC_ELEMENTWISE_CUH
#define GANC_ELEMENTWISE_CUH

#include <math.h>
#include <stdint.h>

enum {
  EW_THREADS = 256,     // threads per block (pixels_to_float's lookup table needs exactly 256)
  EW_MAX_BLOCKS = 4096, // grid-stride beyond this: ~4 waves of resident blocks on an H100
};

static inline int ew_blocks(int64_t work) {
  int64_t b = (work + EW_THREADS - 1) / EW_THREADS;
  return b < 1 ? 1 : b > EW_MAX_BLOCKS ? EW_MAX_BLOCKS : (int)b;
}

static inline int aligned16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

#ifdef __CUDA_ARCH__
#define GANC_RN(dev, host) return dev
#else
#define GANC_RN(dev, host) return host
#endif
__host__ __device__ static inline float rn_mul(float a, float b) {
  GANC_RN(__fmul_rn(a, b), a * b);
}
__host__ __device__ static inline float rn_add(float a, float b) {
  GANC_RN(__fadd_rn(a, b), a + b);
}
__host__ __device__ static inline float rn_sub(float a, float b) {
  GANC_RN(__fsub_rn(a, b), a - b);
}
__host__ __device__ static inline float rn_div(float a, float b) {
  GANC_RN(__fdiv_rn(a, b), a / b);
}
__host__ __device__ static inline float rn_sqrt(float a) { GANC_RN(__fsqrt_rn(a), sqrtf(a)); }
#undef GANC_RN

#endif
