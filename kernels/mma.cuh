// mma.cuh — the warp-level tensor-core and asynchronous-copy primitives of ganc's kernels, one
// home for every inline PTX instruction they use (sm_80 and later; CMake builds sm_80 and sm_90):
//   mma_bf16_16816    mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
//   mma_tf32_1688     mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32
//   ldmatrix_x1/x2/x4 ldmatrix.sync.aligned.m8n8.x{1,2,4}[.trans].shared.b16
//   cp_async          cp.async.ca.shared.global with src-size (zero fill past it)
//   cp_async_commit / cp_async_wait<N>
//   dynamic_shared    the block's dynamic shared memory (extern __shared__; GANC_LAUNCH_SMEM)
//   pack_bf16x2, to_tf32  operand conversions (cvt.rn.bf16x2.f32, cvt.rna.tf32.f32)
// The fragment layouts are the PTX ISA's; tests/gpu/cudemu/cudemu.cc writes them out, and
// test_gpu_mma (kernels/mma_probe.cu) checks the emulation against a GPU where one is present.
//
// Under tests/gpu/cudemu (GANC_CUDEMU) each primitive calls the emulator, which runs the warp's 32
// fibers to the instruction and computes it as the ISA defines; the conversions are plain bit
// arithmetic with the instructions' rounding (round to nearest even for bf16, to nearest with ties
// away from zero for tf32), and are used as such on the host too.
#ifndef GANC_MMA_CUH
#define GANC_MMA_CUH

#include <cuda_runtime.h>
#include <stdint.h>
#include <string.h>

namespace ganc_mma {

__host__ __device__ __forceinline__ uint32_t f32_bits(float f) {
#ifdef __CUDA_ARCH__
  return __float_as_uint(f);
#else
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
#endif
}

// bf16 of f rounded to nearest even (cvt.rn.bf16.f32); NaN stays NaN (quiet).
__host__ __device__ __forceinline__ uint32_t bf16_bits(float f) {
  const uint32_t u = f32_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (u >> 16) | 0x40u;
  return (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
}

// Two bf16 in one word, lo in the low half (the lower column or k of a fragment pair).
__host__ __device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  uint32_t r;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
#else
  return bf16_bits(lo) | bf16_bits(hi) << 16;
#endif
}

// f rounded to tf32 (10 fraction bits) to nearest, ties away from zero (cvt.rna.tf32.f32).
__host__ __device__ __forceinline__ uint32_t to_tf32(float f) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(f));
  return r;
#else
  const uint32_t u = f32_bits(f);
  if ((u & 0x7F800000u) == 0x7F800000u) return u; // Inf, NaN
  return (u + 0x1000u) & 0xFFFFE000u;
#endif
}

#ifdef GANC_CUDEMU

#define GANC_MMA_SITE const char *file = __builtin_FILE(), int line = __builtin_LINE()
__device__ __forceinline__ void mma_bf16_16816(float d[4], const uint32_t a[4], const uint32_t b[2],
                                               const float c[4], GANC_MMA_SITE) {
  ::cudemu::mma_bf16_m16n8k16(d, a, b, c, file, line);
}
__device__ __forceinline__ void mma_tf32_1688(float d[4], const uint32_t a[4], const uint32_t b[2],
                                              const float c[4], GANC_MMA_SITE) {
  ::cudemu::mma_tf32_m16n8k8(d, a, b, c, file, line);
}
template <int NUM, bool TRANS>
__device__ __forceinline__ void ldmatrix(uint32_t r[NUM], const void *row, GANC_MMA_SITE) {
  ::cudemu::ldmatrix(r, NUM, TRANS, row, file, line);
}
template <int BYTES>
__device__ __forceinline__ void cp_async(void *smem, const void *gmem, int src_bytes,
                                         GANC_MMA_SITE) {
  ::cudemu::cp_async(smem, gmem, BYTES, src_bytes, file, line);
}
__device__ __forceinline__ void cp_async_commit() { ::cudemu::cp_async_commit(); }
template <int N> __device__ __forceinline__ void cp_async_wait() { ::cudemu::cp_async_wait(N); }
__device__ __forceinline__ void *dynamic_shared() { return ::cudemu::dynamic_shared(); }
#undef GANC_MMA_SITE

#else // nvcc

__device__ __forceinline__ void mma_bf16_16816(float d[4], const uint32_t a[4], const uint32_t b[2],
                                               const float c[4]) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, "
               "{%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};"
               : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]),
                 "f"(c[1]), "f"(c[2]), "f"(c[3]));
}
__device__ __forceinline__ void mma_tf32_1688(float d[4], const uint32_t a[4], const uint32_t b[2],
                                              const float c[4]) {
  asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, "
               "{%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};"
               : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]),
                 "f"(c[1]), "f"(c[2]), "f"(c[3]));
}

__device__ __forceinline__ uint32_t smem_addr(const void *p) {
  return (uint32_t)__cvta_generic_to_shared(p);
}

template <int NUM, bool TRANS>
__device__ __forceinline__ void ldmatrix(uint32_t r[NUM], const void *row) {
  const uint32_t a = smem_addr(row);
  if (NUM == 1 && !TRANS)
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];" : "=r"(r[0]) : "r"(a));
  else if (NUM == 1)
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];"
                 : "=r"(r[0])
                 : "r"(a));
  else if (NUM == 2 && !TRANS)
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];"
                 : "=r"(r[0]), "=r"(r[NUM > 1 ? 1 : 0])
                 : "r"(a));
  else if (NUM == 2)
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];"
                 : "=r"(r[0]), "=r"(r[NUM > 1 ? 1 : 0])
                 : "r"(a));
  else if (!TRANS)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[NUM > 1 ? 1 : 0]), "=r"(r[NUM > 2 ? 2 : 0]),
                   "=r"(r[NUM > 2 ? 3 : 0])
                 : "r"(a));
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[NUM > 1 ? 1 : 0]), "=r"(r[NUM > 2 ? 2 : 0]),
                   "=r"(r[NUM > 2 ? 3 : 0])
                 : "r"(a));
}

template <int BYTES>
__device__ __forceinline__ void cp_async(void *smem, const void *gmem, int src_bytes) {
  static_assert(BYTES == 4 || BYTES == 8 || BYTES == 16, "cp.async copies 4, 8 or 16 bytes");
  asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;" ::"r"(smem_addr(smem)), "l"(gmem),
               "n"(BYTES), "r"(src_bytes)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;" ::: "memory");
}
template <int N> __device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}
__device__ __forceinline__ void *dynamic_shared() {
  extern __shared__ __align__(128) unsigned char ganc_dynamic_smem[];
  return ganc_dynamic_smem;
}

#endif

} // namespace ganc_mma

#endif
