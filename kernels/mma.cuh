// mma.cuh — the warp-level tensor-core and asynchronous-copy primitives of ganc's kernels, one
// home for every inline PTX instruction they use (sm_80 and later; CMake builds sm_80 and sm_90a):
//   mma_bf16_16816    mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
//   mma_tf32_1688     mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32
//   ldmatrix_x1/x2/x4 ldmatrix.sync.aligned.m8n8.x{1,2,4}[.trans].shared.b16
//   cp_async          cp.async.ca.shared.global with src-size (zero fill past it)
//   cp_async_commit / cp_async_wait<N>
//   dynamic_shared    the block's dynamic shared memory (extern __shared__; GANC_LAUNCH_SMEM)
//   smem_addr         cvta.to.shared (the shared-window address cp.async and descriptors take)
//   wgmma_desc        a shared-memory matrix descriptor (start, LBO, SBO, swizzle)
//   wgmma_bf16_ss/_rs wgmma.mma_async.sync.aligned.m64n{64,128}k16.f32.bf16.bf16 (sm_90a)
//   wgmma_fence, wgmma_commit, wgmma_wait<N>, wgmma_fence_operand, fence_proxy_async
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

// A wgmma shared-memory matrix descriptor (the PTX ISA's "Matrix Descriptor Format"): start
// address, leading and stride byte offsets (all in the shared window, 16-byte units, 14 bits
// each), base offset 0, swizzle 0 (none) or 32, 64, 128 bytes (modes 3, 2, 1). The canonical
// layouts these describe are written out in tests/gpu/cudemu/cudemu.cc (desc_elem).
__host__ __device__ __forceinline__ uint64_t wgmma_desc(uint32_t saddr, uint32_t lbo, uint32_t sbo,
                                                        int swizzle) {
  const uint64_t mode = swizzle == 128 ? 1 : swizzle == 64 ? 2 : swizzle == 32 ? 3 : 0;
  return (uint64_t)((saddr >> 4) & 0x3FFF) | (uint64_t)((lbo >> 4) & 0x3FFF) << 16 |
         (uint64_t)((sbo >> 4) & 0x3FFF) << 32 | mode << 62;
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
__device__ __forceinline__ uint32_t smem_addr(const void *p, GANC_MMA_SITE) {
  return ::cudemu::shared_address(p, file, line);
}
__device__ __forceinline__ void wgmma_fence() { ::cudemu::wgmma_fence(); }
__device__ __forceinline__ void fence_proxy_async() { ::cudemu::fence_proxy_async(); }
__device__ __forceinline__ void wgmma_commit() { ::cudemu::wgmma_commit(); }
template <int N> __device__ __forceinline__ void wgmma_wait(GANC_MMA_SITE) {
  ::cudemu::wgmma_wait(N, file, line);
}
template <int R> __device__ __forceinline__ void wgmma_fence_operand(float (&)[R]) {}
template <int TA, int TB, int R>
__device__ __forceinline__ void wgmma_bf16_ss(float (&d)[R], uint64_t da, uint64_t db, int scale_d,
                                              GANC_MMA_SITE) {
  static_assert(R == 32 || R == 64, "m64n64k16 or m64n128k16");
  ::cudemu::wgmma_bf16(d, 2 * R, nullptr, da, db, scale_d, TA, TB, file, line);
}
template <int TB, int R>
__device__ __forceinline__ void wgmma_bf16_rs(float (&d)[R], const uint32_t a[4], uint64_t db,
                                              int scale_d, GANC_MMA_SITE) {
  static_assert(R == 32 || R == 64, "m64n64k16 or m64n128k16");
  ::cudemu::wgmma_bf16(d, 2 * R, a, 0, db, scale_d, 0, TB, file, line);
}
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

// Warpgroup MMA (sm_90a only: nvcc builds it for the "90a" architecture; any other device traps,
// and the launchers choose a wgmma kernel only on compute capability 9.0).
#define WGMMA_UNAVAILABLE __trap();
__device__ __forceinline__ void wgmma_fence() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#endif
}
__device__ __forceinline__ void fence_proxy_async() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
#endif
}
__device__ __forceinline__ void wgmma_commit() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
#endif
}
template <int N> __device__ __forceinline__ void wgmma_wait() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(N) : "memory");
#endif
}
// Pins the accumulators in their registers across the asynchronous window: without it the
// compiler may copy or re-define them between a wgmma and its wait, and ptxas then serializes
// every wgmma of the function (its warning C7515). No instruction is emitted.
template <int R> __device__ __forceinline__ void wgmma_fence_operand(float (&d)[R]) {
#pragma unroll
  for (int i = 0; i < R; i++)
    asm volatile("" : "+f"(d[i])::"memory");
}
// wgmma.mma_async.sync.aligned.m64n{64,128}k16.f32.bf16.bf16, the accumulators' count (32 or 64
// per thread) choosing N: _ss with A and B by descriptor, _rs with A's fragment in registers. The
// accumulators are the asm's first operands (%0..): GANC_WG_D* lists them, GANC_WG_R* names them.
#define GANC_WG_D8(d, o)                                                                           \
  "+f"(d[o]), "+f"(d[o + 1]), "+f"(d[o + 2]), "+f"(d[o + 3]), "+f"(d[o + 4]), "+f"(d[o + 5]),      \
      "+f"(d[o + 6]), "+f"(d[o + 7])
#define GANC_WG_D32(d) GANC_WG_D8(d, 0), GANC_WG_D8(d, 8), GANC_WG_D8(d, 16), GANC_WG_D8(d, 24)
#define GANC_WG_D64(d)                                                                             \
  GANC_WG_D32(d), GANC_WG_D8(d, 32), GANC_WG_D8(d, 40), GANC_WG_D8(d, 48), GANC_WG_D8(d, 56)
// clang-format off
#define GANC_WG_R32 \
  "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15," \
  "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}"
#define GANC_WG_R64 \
  "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15," \
  "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31," \
  "%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47," \
  "%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}"
// clang-format on
template <int TA, int TB>
__device__ __forceinline__ void wgmma_bf16_ss(float (&d)[32], uint64_t da, uint64_t db,
                                              int scale_d) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
               "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " GANC_WG_R32
               ", %32, %33, p, 1, 1, %35, %36;\n}\n"
               : GANC_WG_D32(d)
               : "l"(da), "l"(db), "r"(scale_d), "n"(TA), "n"(TB));
#else
  (void)d, (void)da, (void)db, (void)scale_d;
  WGMMA_UNAVAILABLE
#endif
}
template <int TB>
__device__ __forceinline__ void wgmma_bf16_rs(float (&d)[32], const uint32_t a[4], uint64_t db,
                                              int scale_d) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
               "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " GANC_WG_R32
               ", {%32,%33,%34,%35}, %36, p, 1, 1, %38;\n}\n"
               : GANC_WG_D32(d)
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(scale_d), "n"(TB));
#else
  (void)d, (void)a, (void)db, (void)scale_d;
  WGMMA_UNAVAILABLE
#endif
}
template <int TA, int TB>
__device__ __forceinline__ void wgmma_bf16_ss(float (&d)[64], uint64_t da, uint64_t db,
                                              int scale_d) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
               "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " GANC_WG_R64
               ", %64, %65, p, 1, 1, %67, %68;\n}\n"
               : GANC_WG_D64(d)
               : "l"(da), "l"(db), "r"(scale_d), "n"(TA), "n"(TB));
#else
  (void)d, (void)da, (void)db, (void)scale_d;
  WGMMA_UNAVAILABLE
#endif
}
template <int TB>
__device__ __forceinline__ void wgmma_bf16_rs(float (&d)[64], const uint32_t a[4], uint64_t db,
                                              int scale_d) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
               "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " GANC_WG_R64
               ", {%64,%65,%66,%67}, %68, p, 1, 1, %70;\n}\n"
               : GANC_WG_D64(d)
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(scale_d), "n"(TB));
#else
  (void)d, (void)a, (void)db, (void)scale_d;
  WGMMA_UNAVAILABLE
#endif
}
#undef GANC_WG_D8
#undef GANC_WG_D32
#undef GANC_WG_D64
#undef GANC_WG_R32
#undef GANC_WG_R64
#undef WGMMA_UNAVAILABLE

#endif

} // namespace ganc_mma

#endif
