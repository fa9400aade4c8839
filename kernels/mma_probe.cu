// mma_probe.cu — one-warp probes of the primitives of kernels/mma.cuh, for test_gpu_mma: they prove
// that the fragment layouts the tensor-core kernels assume are those of the hardware (on a GPU)
// and of the emulator (under tests/gpu/cudemu), and that the emulator tells a wrong layout, an
// early read of a cp.async destination, diverging lanes and a lane gone missing from a warp
// collective from the right thing.
//
// Every probe is one block of 32 threads (one warp). Matrices are small and dense:
//   A [16][16] row-major, B [16][8] (k rows, n columns), D [16][8], for bf16 (m16n8k16);
//   A [16][8], B [8][8], D [16][8] for tf32 (m16n8k8).
// `mutation` (0 = correct) perturbs one index the way a kernel author might get it wrong; the test
// expects mutation 0 to match the reference and every other mutation to miss it.
#include "kernels/cuda_check.h"
#include "kernels/kernels.h"
#include "kernels/mma.cuh"

#include <cuda_runtime.h>
#include <stdint.h>

using namespace ganc_mma;

namespace {

// bf16 mma from FP32 matrices in global memory, fragments built by each lane (as conv.cu's
// tensor-core variants build them from shared memory).
__global__ void probe_bf16(const float *A, const float *B, float *D, int mutation) {
  const int l = threadIdx.x, g = l / 4, t = l % 4;
  uint32_t a[4], b[2];
  a[0] = pack_bf16x2(A[g * 16 + 2 * t], A[g * 16 + 2 * t + 1]);
  a[1] = pack_bf16x2(A[(g + 8) * 16 + 2 * t], A[(g + 8) * 16 + 2 * t + 1]);
  a[2] = pack_bf16x2(A[g * 16 + 2 * t + 8], A[g * 16 + 2 * t + 9]);
  a[3] = pack_bf16x2(A[(g + 8) * 16 + 2 * t + 8], A[(g + 8) * 16 + 2 * t + 9]);
  b[0] = pack_bf16x2(B[(2 * t) * 8 + g], B[(2 * t + 1) * 8 + g]);
  b[1] = pack_bf16x2(B[(2 * t + 8) * 8 + g], B[(2 * t + 9) * 8 + g]);
  if (mutation == 1) { // rows + 8 and columns + 8 exchanged
    const uint32_t s = a[1];
    a[1] = a[2], a[2] = s;
  }
  if (mutation == 2) b[0] = (b[0] >> 16) | (b[0] << 16); // the pair's halves swapped
  const float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  float d[4];
  mma_bf16_16816(d, a, b, c);
  const int r0 = mutation == 3 ? g + 8 : g, r1 = mutation == 3 ? g : g + 8; // 3: halves swapped
  D[r0 * 8 + 2 * t] = d[0], D[r0 * 8 + 2 * t + 1] = d[1];
  D[r1 * 8 + 2 * t] = d[2], D[r1 * 8 + 2 * t + 1] = d[3];
}

__global__ void probe_tf32(const float *A, const float *B, float *D, int mutation) {
  const int l = threadIdx.x, g = l / 4, t = l % 4;
  uint32_t a[4], b[2];
  a[0] = to_tf32(A[g * 8 + t]);
  a[1] = to_tf32(A[(g + 8) * 8 + t]);
  a[2] = to_tf32(A[g * 8 + t + 4]);
  a[3] = to_tf32(A[(g + 8) * 8 + t + 4]);
  b[0] = to_tf32(B[t * 8 + g]);
  b[1] = to_tf32(B[(t + 4) * 8 + g]);
  if (mutation == 1) {
    const uint32_t s = a[1];
    a[1] = a[2], a[2] = s;
  }
  if (mutation == 2) {
    const uint32_t s = b[0];
    b[0] = b[1], b[1] = s;
  }
  const float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  float d[4];
  mma_tf32_1688(d, a, b, c);
  const int col = mutation == 3 ? 2 * t + 1 : 2 * t; // the column pair written in reverse
  D[g * 8 + col] = d[0], D[g * 8 + (4 * t + 1 - col)] = d[1];
  D[(g + 8) * 8 + 2 * t] = d[2], D[(g + 8) * 8 + 2 * t + 1] = d[3];
}

// bf16 operands in global memory (A [16][16], B [16][8] as bf16 bits), staged into shared memory
// by cp.async (16 bytes per lane), then fragments by ldmatrix: A with .x4 (lane l gives row l % 16
// of column block l / 16, so the four 8x8 matrices are a[0..3]), B with .x2.trans from its k rows.
__global__ void probe_ldmatrix(const uint16_t *A, const uint16_t *B, float *D, int mutation) {
  __shared__ __align__(16) uint16_t sa[16][16];
  __shared__ __align__(16) uint16_t sb[16][8];
  const int l = threadIdx.x, g = l / 4, t = l % 4;
  cp_async<16>(&sa[l / 2][(l % 2) * 8], A + (l / 2) * 16 + (l % 2) * 8, 16);
  if (l < 16) cp_async<16>(&sb[l][0], B + l * 8, 16);
  cp_async_commit();
  if (mutation != 3) cp_async_wait<0>(); // 3: reads the destination before the copy landed
  __syncthreads();
  uint32_t a[4], b[2];
  const int arow = mutation == 1 ? (l % 8) * 2 % 16 + (l / 8) % 2 : l % 16;
  ldmatrix<4, false>(a, &sa[arow][(l / 16) * 8]);
  if (mutation == 2)
    ldmatrix<2, false>(b, &sb[l % 16][0]); // without .trans
  else
    ldmatrix<2, true>(b, &sb[l % 16][0]);
  const float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  float d[4];
  mma_bf16_16816(d, a, b, c);
  D[g * 8 + 2 * t] = d[0], D[g * 8 + 2 * t + 1] = d[1];
  D[(g + 8) * 8 + 2 * t] = d[2], D[(g + 8) * 8 + 2 * t + 1] = d[3];
}

// Shuffles: lane l's value v = A[l]; D[4l..4l+3] = xor 1, down 3, up 5, index 31 − l.
__global__ void probe_shfl(const float *A, float *D) {
  const int l = threadIdx.x;
  const float v = A[l];
  D[4 * l + 0] = __shfl_xor_sync(0xffffffffu, v, 1);
  D[4 * l + 1] = __shfl_down_sync(0xffffffffu, v, 3);
  D[4 * l + 2] = __shfl_up_sync(0xffffffffu, v, 5);
  D[4 * l + 3] = __shfl_sync(0xffffffffu, v, 31 - l);
}

// Static shared memory read before it is written (GANC_PROBE_SHARED; under the emulator only).
__global__ void probe_shared(float *D) {
  __shared__ float s[32];
  const int l = threadIdx.x, b = blockIdx.x;
  const float before = s[l];
  __syncthreads();
  s[l] = (float)(100 * b + l);
  __syncthreads();
  D[64 * b + l] = before;
  D[64 * b + 32 + l] = s[(l + 1) % 32];
}

// Faults the emulator must stop with a message (never run on a GPU: they hang or are undefined).
__global__ void probe_fault(float *D, int which) {
  const int l = threadIdx.x;
  float v = (float)l;
  if (which == 0) { // half the warp at one shuffle, half at another
    if (l < 16)
      v = __shfl_xor_sync(0xffffffffu, v, 1);
    else
      v = __shfl_xor_sync(0xffffffffu, v, 2);
  } else if (which == 1) { // a lane returns while the others wait at a collective
    if (l == 5) return;
    v = __shfl_xor_sync(0xffffffffu, v, 1);
  } else if (which == 2) { // ldmatrix from global memory
    uint32_t r[1];
    ldmatrix<1, false>(r, D + 8 * (l % 8));
    v = (float)r[0];
  } else { // a plain store into 16 bytes a cp.async of another lane is still copying into
    __shared__ __align__(16) float s[32][4];
    cp_async<16>(&s[l][0], D + 4 * l, 16);
    cp_async_commit();
    __syncwarp();
    s[(l + 1) % 32][0] = 1.0f; // the neighbour's copy is in flight until its wait
    cp_async_wait<0>();
    __syncwarp();
    v = s[l][1];
  }
  D[l] = v;
}

// ---- warpgroup MMA (sm_90a)
// ----------------------------------------------------------------------- One warpgroup computes D
// [64][128] = A [64][64] · B [64][128] in bf16 with m64n128k16: four chained k-steps in two commit
// groups (k 0-31, then 32-63; wait<1>, then wait<0>). `a` holds A row-major then Aᵀ, `b` holds B (k
// rows of n) then Bᵀ, all as bf16 bits, so every operand chunk (8 elements, 16 bytes) is contiguous
// in global memory for either major-ness and cp.async stages it. cfg: bit 0 A from registers (then
// A's layout bits are unused); bit 1 A M-major; bits 2-3 A's swizzle (0 none, 1: 32, 2: 64, 3: 128
// bytes); bit 4 B N-major; bits 5-6 B's swizzle. The tiles are the ISA's canonical layouts
// (mma.cuh's wgmma_desc; cudemu.cc writes them out):
//   K-major, none: chunk (r, kc) at (r%8)*16 + (r/8)*SBO + kc*LBO — A packs an 8-row group's
//     chunks together (LBO 128, SBO 1024), B the k-chunk planes (LBO rows/8*128, SBO 128);
//   K-major, W-byte swizzle: W/16 chunks per row, chunk column block kc/(W/16) of rows*W bytes;
//     SBO 8W; a k-step starts at its two chunks' column;
//   MN-major, none: chunk (k, mc) at (k%8)*16 + mc*128 + (k/8)*(rows/8*128): SBO 128, LBO the
//     k-plane;
//   MN-major, W-byte swizzle: atoms of 8 k-rows x W bytes, chunk (k, mc) at (k/8)*rows*16 +
//     (mc/(W/16))*8W + (k%8)*W + (mc%(W/16))*16: LBO 8W (the next W/2 of M or N), SBO rows*16.
// then XOR the swizzle into the byte offset from a 1024-byte aligned base.
// Mutations (results must miss): 1 the swizzle's XOR left out when staging; 2 A's LBO and SBO
// exchanged; 3 D's rows g and g+8 exchanged; 4 B's transpose flag flipped; 5 A's register
// fragment with words 1 and 2 exchanged (rows +8 and columns +8). Faults (the emulator must stop
// them; never launched on a GPU): 10 no fence.proxy.async after the copies; 11 no wgmma.fence; 12 a
// store into A's tile before the wait; 13 a store into the accumulators in flight; 14 warp 3 skips
// the first k-step; 15 no wait_group; 16 B's descriptor starts inside its swizzle pattern; 17 A's
// registers rewritten for the next k-step without a wgmma.fence (A from registers).
struct WgTile {
  uint32_t off0;  // the tile's byte offset in the block's aligned shared memory
  int rows;       // M or N (64 / 128)
  bool mn;        // MN-major
  int w;          // swizzle width in bytes, 0 none
  bool pack_rows; // K-major, none: an 8-row group's chunks together (else k-chunk planes)
  __device__ uint32_t lbo() const {
    if (!mn) return w ? 16u : pack_rows ? 128u : (uint32_t)rows / 8 * 128;
    return w ? 8u * (uint32_t)w : (uint32_t)rows / 8 * 128;
  }
  __device__ uint32_t sbo() const {
    if (!mn) return w ? 8u * (uint32_t)w : pack_rows ? 1024u : 128u;
    return w ? (uint32_t)rows * 16 : 128u;
  }
  // Byte offset of chunk (r, kc) (K-major) or (k, mc) (MN-major), before the swizzle.
  __device__ uint32_t chunk(int i, int j) const {
    if (!mn) {
      const int r = i, kc = j;
      if (!w) return (uint32_t)((r % 8) * 16 + kc * (int)lbo()) + (uint32_t)(r / 8) * sbo();
      const int per = w / 16;
      return (uint32_t)((kc / per) * rows * w + r * w + (kc % per) * 16);
    }
    const int k = i, mc = j;
    if (!w) return (uint32_t)((k % 8) * 16 + mc * 128 + (k / 8) * (int)lbo());
    const int per = w / 16;
    return (uint32_t)((k / 8) * rows * 16 + (mc / per) * 8 * w + (k % 8) * w + (mc % per) * 16);
  }
  // The descriptor's start offset for k-step s (k 16s..16s+15).
  __device__ uint32_t step(int s) const {
    if (!mn) {
      if (!w) return (uint32_t)(2 * s) * lbo();
      const int per = w / 16;
      return (uint32_t)(((2 * s) / per) * rows * w + ((2 * s) % per) * 16);
    }
    return (uint32_t)(2 * s) * (w ? sbo() : lbo());
  }
};

__device__ __forceinline__ uint32_t swizzled(uint32_t off, int w) {
  return w ? off ^ (((off >> 7) & (uint32_t)(w / 16 - 1)) << 4) : off;
}

template <int TA, int TB>
__global__ void __launch_bounds__(128)
    probe_wgmma(const uint16_t *A, const uint16_t *B, float *D, int cfg, int mutation) {
  const int tid = threadIdx.x, w = tid / 32, l = tid % 32, g = l / 4, q = l % 4;
  const bool a_regs = cfg & 1;
  const int wa = (cfg >> 2) & 3, wb = (cfg >> 5) & 3; // 1, 2, 3: 32, 64, 128 bytes
  WgTile ta = {0, 64, (cfg & 2) != 0, wa ? 16 << wa : 0, true};
  WgTile tb = {8192, 128, (cfg & 16) != 0, wb ? 16 << wb : 0, false};
  unsigned char *raw = (unsigned char *)dynamic_shared();
  const uint32_t pad = (1024u - (smem_addr(raw) & 1023u)) & 1023u;
  unsigned char *base = raw + pad;
  const uint32_t sbase = smem_addr(base);
  const bool no_xor = mutation == 1;
  // Stage A (unless in registers) and B by cp.async, 16 bytes per chunk.
  if (!a_regs)
    for (int c = tid; c < 64 * 8; c += 128) {
      const int i = c / 8, j = c % 8; // K-major (r, kc); M-major (k, mc): 64 x 8 either way
      const uint16_t *src = ta.mn ? A + 64 * 64 + i * 64 + j * 8 : A + i * 64 + j * 8;
      const uint32_t off = ta.off0 + (no_xor ? ta.chunk(i, j) : swizzled(ta.chunk(i, j), ta.w));
      cp_async<16>(base + off, src, 16);
    }
  for (int c = tid; c < 128 * 8; c += 128) {
    int i, j;
    const uint16_t *src;
    if (!tb.mn) { // (n, kc) from Bᵀ [128][64]
      i = c / 8, j = c % 8;
      src = B + 64 * 128 + i * 64 + j * 8;
    } else { // (k, nc) from B [64][128]
      i = c / 16, j = c % 16;
      src = B + i * 128 + j * 8;
    }
    const uint32_t off = tb.off0 + (no_xor ? tb.chunk(i, j) : swizzled(tb.chunk(i, j), tb.w));
    cp_async<16>(base + off, src, 16);
  }
  cp_async_commit();
  cp_async_wait<0>();
  if (mutation != 10) fence_proxy_async(); // the copies, visible to wgmma's async proxy
  __syncthreads();
  float d[64];
  for (int i = 0; i < 64; i++)
    d[i] = 0.0f;
  if (mutation != 11) wgmma_fence();
  for (int s = 0; s < 4; s++) {
    uint32_t lbo_a = ta.lbo(), sbo_a = ta.sbo();
    const uint32_t lbo_b = tb.lbo(), sbo_b = tb.sbo();
    if (mutation == 2) {
      const uint32_t x = lbo_a;
      lbo_a = sbo_a, sbo_a = x;
    }
    const uint32_t b_start = sbase + tb.off0 + tb.step(s) + (mutation == 16 ? 128u : 0u);
    const uint64_t db = wgmma_desc(b_start, lbo_b, sbo_b, tb.w);
    if (mutation == 14 && w == 3 && s == 0) continue;
    if (a_regs) {
      uint32_t a[4];
      for (int j = 0; j < 4; j++) {
        const int row = 16 * w + g + 8 * (j % 2), col = 16 * s + 2 * q + 8 * (j / 2);
        a[j] = (uint32_t)A[row * 64 + col] | (uint32_t)A[row * 64 + col + 1] << 16;
      }
      if (mutation == 5) {
        const uint32_t x = a[1];
        a[1] = a[2], a[2] = x;
      }
      // A's registers were just written: a wgmma.fence before the wgmma that reads them (the
      // previous k-step's may still be reading the previous values).
      if (mutation != 17) wgmma_fence();
      wgmma_bf16_rs<TB>(d, a, db, 1);
    } else {
      const uint64_t da = wgmma_desc(sbase + ta.off0 + ta.step(s), lbo_a, sbo_a, ta.w);
      wgmma_bf16_ss<TA, TB>(d, da, db, 1);
    }
    if (s == 1) {
      wgmma_commit();
      if (mutation == 12 && tid == 0) base[ta.off0] ^= 1;
      if (mutation == 13) d[0] = 1.0f;
    }
  }
  wgmma_commit();
  if (mutation != 15) {
    wgmma_wait<1>();
    wgmma_wait<0>();
  }
  for (int v = 0; v < 64; v++) {
    const int hi = (v / 2) % 2, row = 16 * w + g + 8 * (mutation == 3 ? 1 - hi : hi),
              col = 8 * (v / 4) + 2 * q + v % 2;
    D[row * 128 + col] = d[v];
  }
}

} // namespace

extern "C" void mma_probe_cuda(ganc_ctx *ctx, ganc_stream st, int kind, int mutation, const void *a,
                               const void *b, float *d) {
  (void)ctx;
  switch (kind) {
  case GANC_PROBE_BF16:
    GANC_LAUNCH(probe_bf16, 1, 32, st)((const float *)a, (const float *)b, d, mutation);
    break;
  case GANC_PROBE_TF32:
    GANC_LAUNCH(probe_tf32, 1, 32, st)((const float *)a, (const float *)b, d, mutation);
    break;
  case GANC_PROBE_LDMATRIX:
    GANC_LAUNCH(probe_ldmatrix, 1, 32, st)((const uint16_t *)a, (const uint16_t *)b, d, mutation);
    break;
  case GANC_PROBE_SHFL:
    GANC_LAUNCH(probe_shfl, 1, 32, st)((const float *)a, d);
    break;
  case GANC_PROBE_SHARED:
    GANC_LAUNCH(probe_shared, 3, 32, st)(d);
    break;
  default:
    if (kind >= GANC_PROBE_WGMMA) {
      const int cfg = kind - GANC_PROBE_WGMMA;
      const bool ta = (cfg & 3) == 2, tb = ((cfg & 16) != 0) != (mutation == 4);
      const size_t bytes = 8192 + 16384 + 1024; // A, B tiles and the 1024-byte alignment
      const uint16_t *A = (const uint16_t *)a, *B = (const uint16_t *)b;
      if (ta && tb)
        GANC_LAUNCH_SMEM((probe_wgmma<1, 1>), 1, 128, bytes, st)(A, B, d, cfg, mutation);
      else if (ta)
        GANC_LAUNCH_SMEM((probe_wgmma<1, 0>), 1, 128, bytes, st)(A, B, d, cfg, mutation);
      else if (tb)
        GANC_LAUNCH_SMEM((probe_wgmma<0, 1>), 1, 128, bytes, st)(A, B, d, cfg, mutation);
      else
        GANC_LAUNCH_SMEM((probe_wgmma<0, 0>), 1, 128, bytes, st)(A, B, d, cfg, mutation);
      break;
    }
    GANC_LAUNCH(probe_fault, 1, 32, st)(d, kind - GANC_PROBE_FAULT_DIVERGE);
    break;
  }
  CUDA_CHECK_LAUNCH();
}
