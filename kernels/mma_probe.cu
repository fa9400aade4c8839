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
  default:
    GANC_LAUNCH(probe_fault, 1, 32, st)(d, kind - GANC_PROBE_FAULT_DIVERGE);
    break;
  }
  CUDA_CHECK_LAUNCH();
}
