// conv.cu — convolution on the GPU: the three roles of ops.h as tiled implicit GEMMs, FP32, NHWC.
//
//   role             GEMM                                             A gathered from
//   forward          y  [NPQ, K]  = A [NPQ, RSC] · w  [RSC, K]        x  (im2col, zero padding)
//   backward_data    dx [NHW, C]  = A [NHW, RSK] · B  [RSK, C]        dy (taps that reach h, w)
//   backward_weight  dw [RSC, K] += A [RSC, NPQ] · dy [NPQ, K]        x  (im2col transposed)
// (NPQ = N·P·Q, RSC = R·S·C, ...)
//
// No column matrix is ever built: every block gathers its A and B tiles straight from the NHWC
// tensors and the [R,S,C,K] weights (B of backward_data is w read with C and K exchanged per tap).
// These are the same functions as the CPU twins in src/ops/conv.c (im2col + sgemm, col2im), up to
// the order of the float sums.
//
// Gradient rule (ops.h): y and dx are overwritten, dw accumulates (dw += ...).
// Determinism: no atomics. Every output element is summed by one thread in a fixed k order; the
// split-K partial sums of backward_weight are added in split order by one thread per element
// (the first split's into dw as it finishes, the others' after), and the number of splits depends
// only on the shape (not on the GPU), so a result is the same bit for bit from run to run and from
// one GPU model to another.
//
// Tiling, the same for all three roles (one kernel template, three "role" structs that say how
// to gather the tiles and where the result goes):
//   a block of 256 threads computes a 64x64 tile of the GEMM result, walking the reduction in
//   slices of 16: each slice, every thread fetches 4 elements of the 64x16 A tile and 4 of the
//   16x64 B tile into registers, while the block multiplies the previous slice out of shared
//   memory (double-buffered: one __syncthreads per slice); each thread owns a 4x4 register block
//   of the result (rows ty·4.., columns tx·4.. with ty, tx = tid / 16, tid % 16).
// Fetch patterns follow memory order: where the A tile's contiguous direction is k (channels of x
// or dy under one tap) the 16 threads of a half-warp fetch 16 consecutive k; where it is m (the
// channels c of backward_weight's rows) a warp fetches 32 consecutive m.
// The tensor-core variants (the table below) share these tiles and loaders, except
// mma-bf16-g128: 128x128 tiles of its own for forward and backward-weight (its section says how),
// which its pipelined twins (-cp3) and the warpgroup-MMA ones (wgmma-bf16-g128*, sm_90a) share.
//
// Without a GPU, tests/gpu/cudemu (the CUDA emulator of the tests) runs this file, kernel and
// launchers, on the CPU: test_gpu_conv_emu in CI.
#include "kernels/cuda_check.h" // CUDA_CHECK, CUDA_CHECK_LAUNCH, KERNEL_REQUIRE
#include "kernels/kernels.h"    // the launchers' declarations, ganc_cuda_scratch
#include "ops/ops.h"            // conv_shape, conv_shape_make
#include "ops/precision.h"      // bf16 storage: ganc_bf16_load

#include "core/util.h"     // ganc_mkdir_p
#include "kernels/mma.cuh" // mma.sync, operand rounding

#include <cuda_runtime.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <type_traits>

// ---- tiling -------------------------------------------------------------------------------------
namespace {

constexpr int BM = 64;       // rows of the result tile (M)
constexpr int BN = 64;       // columns of the result tile (the GEMM's N: K or C)
constexpr int BK = 16;       // depth of one reduction slice
constexpr int TM = 4;        // rows per thread
constexpr int TN = 4;        // columns per thread
constexpr int THREADS = 256; // (BM / TM) · (BN / TN)
// Shared rows are padded by 4 floats: stores with k fastest across a half-warp (A of forward and
// backward_data, B of backward_data) would otherwise all hit one bank (row stride 64 floats); with
// 68 they spread over 16 banks (2-way at worst), and rows stay 16-byte aligned for float4 reads.
constexpr int SPAD = 4;

static_assert((BM / TM) * (BN / TN) == THREADS, "one thread per TMxTN block of the result");
static_assert(BM * BK == 4 * THREADS && BN * BK == 4 * THREADS, "4 A and 4 B fetches per thread");
static_assert(THREADS / BK == 16 && THREADS / BM == 4 && BM == BN, "the fetch maps below");

// Two slices of A (k-major: a[buf][k][m]) and of B (b[buf][k][n]).
struct Smem {
  float a[2][BK][BM + SPAD];
  float b[2][BK][BN + SPAD];
};

// The same two slices in bf16 for the ldmatrix variant: rows of 64 + 8 halves (144 bytes, 16-byte
// aligned for ldmatrix; 36 words apart, so the 8 rows of one 8x8 matrix fall on banks 4r..4r+3,
// all 32 distinct).
constexpr int HPAD = 8;
struct SmemH {
  uint16_t a[2][BK][BM + HPAD];
  uint16_t b[2][BK][BN + HPAD];
};

// The kernels' shared tiles. The kernels are templates, and GCC drops the section attribute of a
// static in a function template, where the tests' emulator (tests/gpu/cudemu) finds shared memory
// (to poison it before every block, and to check ldmatrix and cp.async addresses): so the tiles
// live in this plain function, one union for both kinds.
union ConvShared {
  Smem f;
  SmemH h;
};
__device__ __forceinline__ ConvShared &conv_shared() {
  __shared__ __align__(16) ConvShared s;
  return s;
}
// The cp.async variants' FP32 tiles, STAGES slices deep (a plain function for the same reason).
constexpr int STAGES = 3;
struct SmemS {
  float a[STAGES][BK][BM + SPAD];
  float b[STAGES][BK][BN + SPAD];
};
__device__ __forceinline__ SmemS &conv_shared_staged() {
  __shared__ __align__(16) SmemS s;
  return s;
}

// How a kernel holds its slices: FP32 tiles double-buffered through registers (F32), the same in
// bf16 (BF16, for ldmatrix), or FP32 tiles STAGES deep filled by cp.async (CP).
enum {
  TILES_F32 = 0,
  TILES_BF16 = 1,
  TILES_CP = 2,
  TILES_G128 = 3,
  TILES_THIN = 4
}; // G128: conv_g128_fwd_kernel
template <int TILES> struct TilesOf;
template <> struct TilesOf<TILES_F32> {
  typedef Smem T;
  __device__ static Smem &get() { return conv_shared().f; }
};
template <> struct TilesOf<TILES_BF16> {
  typedef SmemH T;
  __device__ static SmemH &get() { return conv_shared().h; }
};
template <> struct TilesOf<TILES_CP> {
  typedef SmemS T;
  __device__ static SmemS &get() { return conv_shared_staged(); }
};

// A slice element into shared memory: FP32 as it is, or rounded to bf16 (to nearest even).
__host__ __device__ __forceinline__ void sts(float &d, float v) { d = v; }
__host__ __device__ __forceinline__ void sts(uint16_t &d, float v) {
  d = (uint16_t)ganc_mma::bf16_bits(v);
}

// Above this, the index arithmetic (int) of a tile could wrap: m0 + 63, k + 16 + 12, ... must stay
// inside int. conv_shape_make keeps every tensor's element count within INT_MAX already, so only
// shapes within a few hundred of that limit are refused.
constexpr int64_t DIM_MAX = (int64_t)INT_MAX - 4 * (BM + BK);

// A mixed-radix counter v = (hi·B + mid)·L + lo (0 <= mid < B, 0 <= lo < L) and a fixed step in the
// same digits: advancing by BK costs two compares instead of two divisions per slice.
struct Digits {
  int hi, mid, lo;
};
struct Step {
  int hi, mid, lo; // the step's digits: step = (hi·B + mid)·L + lo
  int B, L;        // the radices of mid and lo
};

__host__ __device__ __forceinline__ Step make_step(int step, int B, int L) {
  return Step{step / L / B, (step / L) % B, step % L, B, L};
}

__host__ __device__ __forceinline__ Digits digits_of(int v, int B, int L) {
  const int hm = v / L;
  return Digits{hm / B, hm - (hm / B) * B, v - hm * L};
}

// v += step. Each digit sum is below twice its radix (lo + step.lo <= 2L − 2, mid + step.mid +
// carry <= 2B − 1), so one conditional subtraction per digit normalizes it.
__host__ __device__ __forceinline__ void digits_add(Digits &v, const Step &s) {
  v.lo += s.lo;
  int carry = v.lo >= s.L;
  if (carry) v.lo -= s.L;
  v.mid += s.mid + carry;
  carry = v.mid >= s.B;
  if (carry) v.mid -= s.B;
  v.hi += s.hi + carry;
}

// 4 consecutive floats of a shared row (16-byte aligned). The host branch serves cudemu (the tests'
// CUDA emulator), where casting a float array to float4 would break strict aliasing.
__host__ __device__ __forceinline__ float4 lds4(const float *p) {
#ifdef __CUDA_ARCH__
  return *reinterpret_cast<const float4 *>(p);
#else
  return make_float4(p[0], p[1], p[2], p[3]);
#endif
}

// acc [TM][TN] += A slice [16, rows ty·4..+3] ⊗ B slice [16, columns tx·4..+3]. The k order is
// fixed (0..15 within a slice, slices in order), which is what makes results deterministic.
template <class SM>
__host__ __device__ __forceinline__ void tile_fma(const SM &sm, int buf, int tid,
                                                  float acc[TM][TN]) {
  const int ty = tid / (BN / TN), tx = tid % (BN / TN);
#pragma unroll
  for (int k = 0; k < BK; k++) {
    const float4 a4 = lds4(&sm.a[buf][k][ty * TM]);
    const float4 b4 = lds4(&sm.b[buf][k][tx * TN]);
    const float a[TM] = {a4.x, a4.y, a4.z, a4.w};
    const float b[TN] = {b4.x, b4.y, b4.z, b4.w};
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
      for (int j = 0; j < TN; j++)
        acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
  }
}

__host__ __device__ __forceinline__ void acc_zero(float acc[TM][TN]) {
#pragma unroll
  for (int i = 0; i < TM; i++)
#pragma unroll
    for (int j = 0; j < TN; j++)
      acc[i][j] = 0.0f;
}

// Geometry shared by the roles (a copy of the conv_shape the kernels read).
struct Geom {
  int H, W, C, K, R, S, stride, pad, P, Q;
};

static Geom geom_of(const conv_shape *s) {
  return Geom{s->H, s->W, s->C, s->K, s->R, s->S, s->stride, s->pad, s->P, s->Q};
}

// ---- where a thread's slice elements go in the tiles ------------------------------------------
// Element i of a thread's four, in a [k][column] tile: k-fast puts the 16 threads of a half-warp on
// 16 consecutive k of one column (fetches whose memory runs along k), column-fast puts 64 threads
// on 64 consecutive columns (fetches whose memory runs along the columns). Each role declares its
// maps as a_slot and b_slot (both k-fast, both column-fast, or its own pair).
template <class T> __host__ __device__ __forceinline__ auto &k_fast(T &tile, int tid, int i) {
  return tile[tid % BK][tid / BK + 16 * i];
}
template <class T> __host__ __device__ __forceinline__ auto &col_fast(T &tile, int tid, int i) {
  return tile[tid / BM + 4 * i][tid % BM];
}
struct KFastSlots {
  template <class SM>
  __host__ __device__ __forceinline__ static auto &a_slot(SM &sm, int buf, int tid, int i) {
    return k_fast(sm.a[buf], tid, i);
  }
  template <class SM>
  __host__ __device__ __forceinline__ static auto &b_slot(SM &sm, int buf, int tid, int i) {
    return k_fast(sm.b[buf], tid, i);
  }
};
struct ColFastSlots {
  template <class SM>
  __host__ __device__ __forceinline__ static auto &a_slot(SM &sm, int buf, int tid, int i) {
    return col_fast(sm.a[buf], tid, i);
  }
  template <class SM>
  __host__ __device__ __forceinline__ static auto &b_slot(SM &sm, int buf, int tid, int i) {
    return col_fast(sm.b[buf], tid, i);
  }
};

// B of backward-data: the weights read with C and K exchanged, element i of this thread being
// w[r, s, c, k] for c = n0 + tid / BK + 16 i (k-fast: consecutive k of one weight row, coalesced).
template <class F>
__host__ __device__ __forceinline__ void fetch_w_transposed(const float *w, const Geom &g, int r,
                                                            int s, int k, int n0, int tid, bool kin,
                                                            F &f) {
  const int64_t wrs = (int64_t)(r * g.S + s) * g.C; // w row of (r, s, c = 0), in units of K
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const int c = n0 + tid / BK + 16 * i;
    const bool ok = kin && c < g.C;
    f(1, i, ok ? w + (wrs + c) * g.K + k : w, ok);
  }
}

// Forward's A row m (output pixel n, p, q), when m < M: sample n's offset in x and the input row
// and column under kernel tap (0, 0). Returns 0 (and zeros) outside M.
__host__ __device__ __forceinline__ int fwd_row(const Geom &g, int M, int m, int64_t &xn, int &h0,
                                                int &w0) {
  xn = 0, h0 = 0, w0 = 0;
  if (m >= M) return 0;
  const int PQ = g.P * g.Q;
  const int n = m / PQ, pq = m - n * PQ, p = pq / g.Q, q = pq - p * g.Q;
  xn = (int64_t)n * g.H * g.W * g.C;
  h0 = p * g.stride - g.pad;
  w0 = q * g.stride - g.pad;
  return 1;
}

// An output element of forward or backward-data: FP32 into y, or, where the caller asked for the
// output in bf16 (yh), rounded as stored — the bits act_forward_bf16 gives the FP32 value, with no
// FP32 copy written and read again.
// Before that, the epilogue op (ops.h: ganc_conv_epi): the activation's forward, or its backward
// from the activation's output at the same index — the separate ops' arithmetic (act_core.h).
__host__ __device__ __forceinline__ float epi_apply(const ganc_conv_epi &ep, int64_t e, float v) {
  if (ep.act == GANC_ACT_NONE) return v;
  if (!ep.dact_y) return ganc_act(ep.act, ep.slope, v);
  return ganc_act_grad(ep.act, ep.slope, ganc_load_as(ep.dact_y, ep.dact_y_bf16, e), v);
}
__host__ __device__ __forceinline__ void store_out(float *y, uint16_t *yh, const ganc_conv_epi &ep,
                                                   int64_t e, float v) {
  v = epi_apply(ep, e, v);
  if (yh)
    yh[e] = ganc_bf16_store(v);
  else
    y[e] = v;
}

// ---- forward: y [NPQ, K] = A [NPQ, RSC] · w [RSC, K] -----------------------------------
// Row m = (n·P + p)·Q + q is output pixel (n, p, q); column k = (r·S + s)·C + c is tap (r, s) of
// input channel c, the weights' own row order, so B is w as stored. A[m, k] is the input pixel
// under that tap, x[n, h, w, c] with h = p·stride − pad + r, w = q·stride − pad + s, or 0
// (padding) when h or w falls outside the image.
// Fetch maps: A — k = k0 + tid % 16 (consecutive c: coalesced), rows tid / 16 + 16 i;
//             B — n = n0 + tid % 64 (consecutive K: coalesced), rows k0 + tid / 64 + 4 i.
template <class TA> struct FwdT { // TA: x's element type (float, or bf16 stored as uint16_t)
  struct Args {
    const TA *x;      // [N, H, W, C]
    const float *w;   // [R, S, C, K]
    float *y;         // [N, P, Q, K]
    uint16_t *yh;     // [N, P, Q, K] in bf16 instead of y, each value rounded as stored (or NULL)
    ganc_conv_epi ep; // applied to each output value before it is stored (act NONE: nothing)
    Geom g;
    int M, Kd;  // M = N·P·Q, Kd = R·S·C
    Step kstep; // BK in (r, s, c) digits
  };
  struct Thread {
    int m0, n0;
    int64_t xn[4]; // A rows: offset of sample n in x, n·H·W·C
    int h0[4];     // p·stride − pad: input row under kernel row 0
    int w0[4];     // q·stride − pad
    int amask;     // bit i: A row i is inside M
    int k;         // the k of this thread's next A fetch ...
    Digits kd;     // ... as (r, s, c)
    int bk;        // first of this thread's next B rows (bk + 4 i)
    float ra[4], rb[4];
    float acc[TM][TN];
  };

  static Args args(const conv_shape *s, const TA *x, const float *w, float *y) {
    Args a;
    a.x = x, a.w = w, a.y = y, a.yh = nullptr, a.g = geom_of(s);
    a.ep = ganc_conv_epi{GANC_ACT_NONE, 0.0f, nullptr, 0, nullptr, 0};
    a.M = s->N * s->P * s->Q;
    a.Kd = s->R * s->S * s->C;
    a.kstep = make_step(BK, s->S, s->C);
    return a;
  }
  static dim3 grid(const Args &a) { return dim3((a.M + BM - 1) / BM, (a.g.K + BN - 1) / BN, 1); }

  // Returns the number of reduction slices (the same for every thread of the block).
  __host__ __device__ __forceinline__ static int begin(const Args &a, int bx, int by, int bz,
                                                       int tid, Thread &t) {
    (void)bz;
    const Geom &g = a.g;
    t.m0 = bx * BM, t.n0 = by * BN;
    t.amask = 0;
#pragma unroll
    for (int i = 0; i < 4; i++)
      t.amask |= fwd_row(g, a.M, t.m0 + tid / BK + 16 * i, t.xn[i], t.h0[i], t.w0[i]) << i;
    t.k = tid % BK;
    t.kd = digits_of(t.k, g.S, g.C);
    t.bk = tid / BN;
    acc_zero(t.acc);
    return (a.Kd + BK - 1) / BK;
  }

  // Walks this thread's elements of the next slice: f(0, i, p, ok) for A element i and f(1, i,
  // p, ok) for B element i, where p is the element's address when ok (else the tensor's start,
  // for cp.async's zero fill) — then moves on to the slice after.
  template <class F>
  __host__ __device__ __forceinline__ static void fetch(const Args &a, int tid, Thread &t, F f) {
    const Geom &g = a.g;
    const int r = t.kd.hi, s = t.kd.mid, c = t.kd.lo;
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const int h = t.h0[i] + r, w = t.w0[i] + s;
      // unsigned compares reject negative h, w (padding above and left) with the same test
      const bool ok = t.k < a.Kd && ((t.amask >> i) & 1) && (unsigned)h < (unsigned)g.H &&
                      (unsigned)w < (unsigned)g.W;
      f(0, i, ok ? a.x + t.xn[i] + ((int64_t)h * g.W + w) * g.C + c : a.x, ok);
    }
    t.k += BK;
    digits_add(t.kd, a.kstep);
    const int n = t.n0 + tid % BN;
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const int k = t.bk + 4 * i;
      const bool ok = k < a.Kd && n < g.K;
      f(1, i, ok ? a.w + (int64_t)k * g.K + n : a.w, ok);
    }
    t.bk += BK;
  }

  // Where this thread's elements i of a slice go in the tiles (the fetch maps above).
  template <class SM>
  __host__ __device__ __forceinline__ static auto &a_slot(SM &sm, int buf, int tid, int i) {
    return k_fast(sm.a[buf], tid, i);
  }
  template <class SM>
  __host__ __device__ __forceinline__ static auto &b_slot(SM &sm, int buf, int tid, int i) {
    return col_fast(sm.b[buf], tid, i);
  }

  // y [m, n] = v (overwrites; in bf16 where yh is set); outside the GEMM, nothing.
  __host__ __device__ __forceinline__ static void put(const Args &a, int bz, int m, int n,
                                                      float v) {
    (void)bz;
    if (m < a.M && n < a.g.K) store_out(a.y, a.yh, a.ep, (int64_t)m * a.g.K + n, v);
  }
};
using Fwd = FwdT<float>;

// ---- backward_data: dx [NHW, C] = A [NHW, RSK] · B [RSK, C] ----------------------------
// Row m = (n·H + h)·W + w is input pixel (n, h, w); column kk = (r·S + s)·K + k is tap (r, s) of
// output channel k. The forward pass read x[n, h, w] through tap (r, s) at output (p, q) exactly
// when h = p·stride − pad + r, i.e. p = (h + pad − r) / stride where that division is exact and
// 0 <= p < P (q likewise), so
//   A[m, kk] = dy[n, p, q, k] for such (p, q), else 0;    B[kk, c] = w[r, s, c, k].
// Summing over kk is col2im's gather (conv.c): dx[n,h,w,c] = Σ_{r,s,k} dy[n,p,q,k] · w[r,s,c,k].
// Fetch maps: A — kk = k0 + tid % 16 (consecutive k of dy: coalesced), rows tid / 16 + 16 i;
//             B — kk = k0 + tid % 16 (consecutive k of w: coalesced), columns tid / 16 + 16 i.
template <class TA> struct BwdDataT : KFastSlots { // TA: dy's element type
  struct Args {
    const TA *dy;     // [N, P, Q, K]
    const float *w;   // [R, S, C, K]
    float *dx;        // [N, H, W, C]
    uint16_t *dxh;    // [N, H, W, C] in bf16 instead of dx, each value rounded as stored (or NULL)
    ganc_conv_epi ep; // applied to each output value before it is stored (act NONE: nothing)
    Geom g;
    int M, Kd;  // M = N·H·W, Kd = R·S·K
    Step kstep; // BK in (r, s, k) digits
  };
  struct Thread {
    int m0, n0;
    int64_t dyn[4]; // A rows: offset of sample n in dy, n·P·Q·K
    int hp[4];      // h + pad
    int wp[4];      // w + pad
    int amask;
    int kk;    // next column of this thread's fetches ...
    Digits kd; // ... as (r, s, k)
    float ra[4], rb[4];
    float acc[TM][TN];
  };

  static Args args(const conv_shape *s, const TA *dy, const float *w, float *dx) {
    Args a;
    a.dy = dy, a.w = w, a.dx = dx, a.dxh = nullptr, a.g = geom_of(s);
    a.ep = ganc_conv_epi{GANC_ACT_NONE, 0.0f, nullptr, 0, nullptr, 0};
    a.M = s->N * s->H * s->W;
    a.Kd = s->R * s->S * s->K;
    a.kstep = make_step(BK, s->S, s->K);
    return a;
  }
  static dim3 grid(const Args &a) { return dim3((a.M + BM - 1) / BM, (a.g.C + BN - 1) / BN, 1); }

  __host__ __device__ __forceinline__ static int begin(const Args &a, int bx, int by, int bz,
                                                       int tid, Thread &t) {
    (void)bz;
    const Geom &g = a.g;
    t.m0 = bx * BM, t.n0 = by * BN;
    const int HW = g.H * g.W;
    t.amask = 0;
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const int m = t.m0 + tid / BK + 16 * i;
      t.dyn[i] = 0, t.hp[i] = 0, t.wp[i] = 0;
      if (m < a.M) {
        const int n = m / HW, hw = m - n * HW, h = hw / g.W, w = hw - h * g.W;
        t.dyn[i] = (int64_t)n * g.P * g.Q * g.K;
        t.hp[i] = h + g.pad;
        t.wp[i] = w + g.pad;
        t.amask |= 1 << i;
      }
    }
    t.kk = tid % BK;
    t.kd = digits_of(t.kk, g.S, g.K);
    acc_zero(t.acc);
    return (a.Kd + BK - 1) / BK;
  }

  template <class F>
  __host__ __device__ __forceinline__ static void fetch(const Args &a, int tid, Thread &t, F f) {
    const Geom &g = a.g;
    const int r = t.kd.hi, s = t.kd.mid, k = t.kd.lo;
    const bool kin = t.kk < a.Kd;
#pragma unroll
    for (int i = 0; i < 4; i++) {
      // th = p·stride for the output row p whose kernel row r covers input row h (if any)
      const int th = t.hp[i] - r, tw = t.wp[i] - s;
      bool ok = false;
      int p = 0, q = 0;
      if (kin && ((t.amask >> i) & 1) && th >= 0 && tw >= 0) {
        p = th / g.stride, q = tw / g.stride; // both non-negative: plain division
        ok = p * g.stride == th && q * g.stride == tw && p < g.P && q < g.Q;
      }
      f(0, i, ok ? a.dy + t.dyn[i] + ((int64_t)p * g.Q + q) * g.K + k : a.dy, ok);
    }
    fetch_w_transposed(a.w, g, r, s, k, t.n0, tid, kin, f);
    t.kk += BK;
    digits_add(t.kd, a.kstep);
  }

  // dx [m, c] = v (overwrites; in bf16 where dxh is set).
  __host__ __device__ __forceinline__ static void put(const Args &a, int bz, int m, int c,
                                                      float v) {
    (void)bz;
    if (m < a.M && c < a.g.C) store_out(a.dx, a.dxh, a.ep, (int64_t)m * a.g.C + c, v);
  }
};
using BwdData = BwdDataT<float>;

// ---- backward_data by sub-pixel phases: no zero taps ------------------------------------------
// At stride > 1 BwdData's reduction runs over all R·S·K taps of every input pixel, though only the
// taps r ≡ h + pad (mod stride) (and s ≡ w + pad) reach an output pixel: one in four at 4x4
// stride 2, the transposed convolutions of every DCGAN generator. The input pixels of one phase
// (φh, φw) = ((h + pad) mod stride, (w + pad) mod stride) form a GEMM of their own over exactly
// their taps r = φh + stride·i, s = φw + stride·j (i < Rφ, j < Sφ):
//   row m = (n·Hφ + hi)·Wφ + wi is pixel h = hf + stride·hi, w = wf + stride·wi (hf, wf: the
//   phase's first row and column), column kk = (i·Sφ + j)·K + k, and
//   A[m, kk] = dy[n, p, q, k], p = hi + ch − i, q = wi + cw − j (0 outside [0,P)x[0,Q)), where
//   ch = (hf + pad − φh) / stride ≥ 0 (exact: hf + pad ≡ φh);   B[kk, c] = w[r, s, c, k].
// The grid's z is the phase; phases of unequal sizes (H or R not a multiple of the stride) each
// keep their own M and reduction length (a phase without taps writes zeros). Per output element
// the same products as BwdData's minus its zeros, summed in the same (r, s, k) order.
constexpr int PHASE_MAX_STRIDE = 4;
struct Phase {
  int hf, wf, Hp, Wp; // first row and column; rows and columns of the phase
  int ph, pw, Rp, Sp; // φh, φw; taps of the phase
  int ch, cw;         // p = hi + ch − i, q = wi + cw − j
  int M, Kd;          // N·Hp·Wp, Rp·Sp·K
};
// Phase P's A row m (pixel hi, wi of sample n), when m < P.M: sample n's offset in dy and
// hi + ch, wi + cw. Returns 0 (and zeros) outside the phase.
__host__ __device__ __forceinline__ int phase_row(const Phase &P, const Geom &g, int m,
                                                  int64_t &dyn, int &hq, int &wq) {
  dyn = 0, hq = 0, wq = 0;
  if (m >= P.M) return 0;
  const int HWp = P.Hp * P.Wp;
  const int n = m / HWp, hw = m - n * HWp, hi = hw / P.Wp, wi = hw - hi * P.Wp;
  dyn = (int64_t)n * g.P * g.Q * g.K;
  hq = hi + P.ch;
  wq = wi + P.cw;
  return 1;
}
template <class TA> struct BwdDataPhaseT : KFastSlots { // TA: dy's element type
  struct Args {
    const TA *dy;
    const float *w;
    float *dx;
    uint16_t *dxh;    // dx in bf16 instead, rounded as stored (or NULL; args zeroes it)
    ganc_conv_epi ep; // applied to each output value before it is stored (zeroed: nothing)
    Geom g;
    int N, nph, Mmax;
    Phase ph[PHASE_MAX_STRIDE * PHASE_MAX_STRIDE];
  };
  struct Thread {
    int m0, n0;
    int Kd, ph, pw; // the phase's reduction length and its (φh, φw)
    int64_t dyn[4]; // A rows: offset of sample n in dy
    int hq[4];      // hi + ch
    int wq[4];      // wi + cw
    int amask;
    int kk;    // next column of this thread's fetches ...
    Digits kd; // ... as (i, j, k)
    Step kstep;
    float ra[4], rb[4];
    float acc[TM][TN];
  };

  // Phases of one axis: the first index ≥ 0 of phase φ, how many of [0, L) are in it, and taps.
  static void axis(int L, int R, int stride, int pad, int phi, int *first, int *count, int *taps,
                   int *c) {
    const int f = ((phi - pad) % stride + stride) % stride; // (f + pad) mod stride = phi
    *first = f;
    *count = f < L ? (L - f + stride - 1) / stride : 0;
    *taps = phi < R ? (R - phi + stride - 1) / stride : 0;
    *c = (f + pad - phi) / stride;
  }

  static Args args(const conv_shape *s, const TA *dy, const float *w, float *dx) {
    Args a;
    memset(&a, 0, sizeof a);
    a.dy = dy, a.w = w, a.dx = dx, a.g = geom_of(s), a.N = s->N;
    a.nph = s->stride * s->stride;
    a.Mmax = 0;
    for (int z = 0; z < a.nph; z++) {
      Phase &P = a.ph[z];
      P.ph = z / s->stride, P.pw = z % s->stride;
      axis(s->H, s->R, s->stride, s->pad, P.ph, &P.hf, &P.Hp, &P.Rp, &P.ch);
      axis(s->W, s->S, s->stride, s->pad, P.pw, &P.wf, &P.Wp, &P.Sp, &P.cw);
      P.M = s->N * P.Hp * P.Wp;
      P.Kd = P.Rp * P.Sp * s->K;
      if (P.M > a.Mmax) a.Mmax = P.M;
    }
    return a;
  }
  static dim3 grid(const Args &a) {
    return dim3((a.Mmax + BM - 1) / BM > 0 ? (a.Mmax + BM - 1) / BM : 1, (a.g.C + BN - 1) / BN,
                a.nph);
  }

  __host__ __device__ __forceinline__ static int begin(const Args &a, int bx, int by, int bz,
                                                       int tid, Thread &t) {
    const Geom &g = a.g;
    const Phase &P = a.ph[bz];
    t.Kd = P.Kd, t.ph = P.ph, t.pw = P.pw;
    t.m0 = bx * BM, t.n0 = by * BN;
    t.amask = 0;
#pragma unroll
    for (int i = 0; i < 4; i++)
      t.amask |= phase_row(P, g, t.m0 + tid / BK + 16 * i, t.dyn[i], t.hq[i], t.wq[i]) << i;
    t.kk = tid % BK;
    t.kd = digits_of(t.kk, P.Sp > 0 ? P.Sp : 1, g.K);
    t.kstep = make_step(BK, P.Sp > 0 ? P.Sp : 1, g.K);
    acc_zero(t.acc);
    return t.m0 < P.M ? (P.Kd + BK - 1) / BK : 0;
  }

  template <class F>
  __host__ __device__ __forceinline__ static void fetch(const Args &a, int tid, Thread &t, F f) {
    const Geom &g = a.g;
    const int i_r = t.kd.hi, j_s = t.kd.mid, k = t.kd.lo;
    const bool kin = t.kk < t.Kd;
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const int p = t.hq[i] - i_r, q = t.wq[i] - j_s;
      const bool ok =
          kin && ((t.amask >> i) & 1) && (unsigned)p < (unsigned)g.P && (unsigned)q < (unsigned)g.Q;
      f(0, i, ok ? a.dy + t.dyn[i] + ((int64_t)p * g.Q + q) * g.K + k : a.dy, ok);
    }
    fetch_w_transposed(a.w, g, t.ph + g.stride * i_r, t.pw + g.stride * j_s, k, t.n0, tid, kin, f);
    t.kk += BK;
    digits_add(t.kd, t.kstep);
  }

  // The element of dx at [pixel of phase row m, c], or -1 outside the phase's GEMM.
  __host__ __device__ __forceinline__ static int64_t index(const Args &a, int bz, int m, int c) {
    const Phase &P = a.ph[bz];
    if (m >= P.M || c >= a.g.C) return -1;
    const int HWp = P.Hp * P.Wp;
    const int n = m / HWp, hw = m - n * HWp, hi = hw / P.Wp, wi = hw - hi * P.Wp;
    const int h = P.hf + a.g.stride * hi, w = P.wf + a.g.stride * wi;
    return (((int64_t)n * a.g.H + h) * a.g.W + w) * a.g.C + c;
  }
  // dx [pixel of phase row m, c] = v (overwrites; in bf16 where dxh is set).
  __host__ __device__ __forceinline__ static void put(const Args &a, int bz, int m, int c,
                                                      float v) {
    const int64_t e = index(a, bz, m, c);
    if (e >= 0) store_out(a.dx, a.dxh, a.ep, e, v);
  }
};
using BwdDataPhase = BwdDataPhaseT<float>;

// ---- backward_weight: dw [RSC, K] += A [RSC, NPQ] · dy [NPQ, K] -----------------------
// Row m = (r·S + s)·C + c is weight row (r, s, c); column j = (n·P + p)·Q + q is output pixel
// (n, p, q), so A[m, j] = x[n, p·stride − pad + r, q·stride − pad + s, c] (0 outside the
// image) — forward's A transposed — and B = dy as stored, [N·P·Q, K].
// The reduction N·P·Q is long (batch × pixels) while M·K can be one tile (the first D layer:
// 4·4·3 rows), so it is split: block z of the grid's z sums columns [z·chunk, (z+1)·chunk); split
// 0 adds its sum into dw directly, split z >= 1 writes its own partial result part[z − 1]
// [R·S·C, K] in device scratch, and wgrad_reduce then adds part[0], part[1], ... into dw one by
// one (so dw = ((dw + s0) + s1) + ...: one partial fewer in scratch than splits, 8.4 MB less at
// dcgan64's 4x4x256x512 layers; where dw was zero, the bits of s0 + s1 + ... as when every split
// had its partial). With one split the GEMM adds into dw and nothing else.
// Fetch maps: A — m = m0 + tid % 64 (consecutive c of one pixel: coalesced), columns
//             j0 + tid / 64 + 4 i; B — n = n0 + tid % 64 (consecutive K), the same rows j.
template <class TA, class TB> struct BwdWeightT : ColFastSlots { // x's, dy's element types
  struct Args {
    const TA *x;  // [N, H, W, C]
    const TB *dy; // [N, P, Q, K]
    float *out;   // dw [R,S,C,K]: split 0 adds its sum to it
    float *part; // [splits − 1, R·S·C, K]: split z >= 1 overwrites part[z − 1] (NULL: one split)
    Geom g;
    int M, Kd;  // M = R·S·C, Kd = N·P·Q
    int chunk;  // columns per split, a multiple of BK
    Step jstep; // BK in (n, p, q) digits
  };
  struct Thread {
    int m0, n0;
    int j, jend;  // this thread's next columns are j + 4 i; this split ends at jend
    Digits jd[4]; // (n, p, q) of j + 4 i
    int roff;     // r − pad of this thread's A row, so h = p·stride + roff
    int soff;     // s − pad
    int c;        // c of this thread's A row
    bool arow;    // the A row is inside M
    float ra[4], rb[4];
    float acc[TM][TN];
  };

  static Args args(const conv_shape *s, const TA *x, const TB *dy, float *dw, float *part,
                   int chunk) {
    Args a;
    a.x = x, a.dy = dy, a.out = dw, a.part = part, a.g = geom_of(s);
    a.M = s->R * s->S * s->C;
    a.Kd = s->N * s->P * s->Q;
    a.chunk = chunk;
    a.jstep = make_step(BK, s->P, s->Q);
    return a;
  }
  static dim3 grid(const Args &a) {
    return dim3((a.M + BM - 1) / BM, (a.g.K + BN - 1) / BN, (a.Kd + a.chunk - 1) / a.chunk);
  }

  __host__ __device__ __forceinline__ static int begin(const Args &a, int bx, int by, int bz,
                                                       int tid, Thread &t) {
    const Geom &g = a.g;
    t.m0 = bx * BM, t.n0 = by * BN;
    const int64_t jbeg = (int64_t)bz * a.chunk, jend = jbeg + a.chunk;
    t.jend = (int)(jend < a.Kd ? jend : a.Kd);
    t.j = (int)jbeg + tid / BM;
#pragma unroll
    for (int i = 0; i < 4; i++)
      t.jd[i] = digits_of(t.j + 4 * i, g.P, g.Q);
    const int m = t.m0 + tid % BM;
    t.arow = m < a.M;
    const Digits rsc = digits_of(t.arow ? m : 0, g.S, g.C);
    t.roff = rsc.hi - g.pad, t.soff = rsc.mid - g.pad, t.c = rsc.lo;
    acc_zero(t.acc);
    return t.jend > jbeg ? (int)((t.jend - jbeg + BK - 1) / BK) : 0;
  }

  template <class F>
  __host__ __device__ __forceinline__ static void fetch(const Args &a, int tid, Thread &t, F f) {
    const Geom &g = a.g;
    const int n = t.n0 + tid % BN;
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const int j = t.j + 4 * i;
      const bool jin = j < t.jend;
      const int h = t.jd[i].mid * g.stride + t.roff, w = t.jd[i].lo * g.stride + t.soff;
      const bool ok = jin && t.arow && (unsigned)h < (unsigned)g.H && (unsigned)w < (unsigned)g.W;
      f(0, i, ok ? a.x + (((int64_t)t.jd[i].hi * g.H + h) * g.W + w) * g.C + t.c : a.x, ok);
      const bool okb = jin && n < g.K;
      f(1, i, okb ? a.dy + (int64_t)j * g.K + n : a.dy, okb);
      digits_add(t.jd[i], a.jstep);
    }
    t.j += BK;
  }

  // Split 0: dw [m, n] += v; split z >= 1: part[z − 1] [m, n] = v. Every element of part[z − 1]
  // is written, even by a split with no columns (v = 0), so the reduction never reads stale
  // scratch.
  __host__ __device__ __forceinline__ static void put(const Args &a, int bz, int m, int n,
                                                      float v) {
    if (m >= a.M || n >= a.g.K) return;
    const int64_t e = (int64_t)m * a.g.K + n;
    if (bz == 0)
      a.out[e] += v;
    else
      a.part[(int64_t)(bz - 1) * a.M * a.g.K + e] = v;
  }
};
using BwdWeight = BwdWeightT<float, float>;

// ---- split-K plan and reduction of backward_weight --------------------------------------
// Splits are chosen from the shape alone (see the determinism note at the top): enough blocks to
// fill a large GPU twice over (H100: 132 SMs, 2 blocks each at 256 threads), but at least
// WGRAD_MIN_COLS columns per split so each block's slices amortize its start and partial store.
constexpr int WGRAD_TARGET_BLOCKS = 512;
constexpr int WGRAD_MIN_COLS = 512;
constexpr int WGRAD_MAX_SPLITS = 256;

struct WgradPlan {
  int splits, chunk;
};

// Tiles of bm x bn and slices of bk; `target` blocks in all (the 128x128 kernel runs one block
// per SM where the 64x64 ones run two: half the target).
static WgradPlan wgrad_plan(const conv_shape *s, int bm = BM, int bn = BN, int bk = BK,
                            int64_t target = WGRAD_TARGET_BLOCKS) {
  const int64_t M = (int64_t)s->R * s->S * s->C, Kd = (int64_t)s->N * s->P * s->Q;
  const int64_t tiles = ((M + bm - 1) / bm) * ((s->K + bn - 1) / bn);
  int64_t splits = 1;
  if (tiles < target) {
    splits = (target + tiles - 1) / tiles;
    const int64_t by_cols = Kd / WGRAD_MIN_COLS;
    if (splits > by_cols) splits = by_cols;
    if (splits > WGRAD_MAX_SPLITS) splits = WGRAD_MAX_SPLITS;
    if (splits < 1) splits = 1;
  }
  // Whole slices per split; recount so that no split is left without columns.
  int64_t chunk = (Kd + splits - 1) / splits;
  chunk = (chunk + bk - 1) / bk * bk;
  splits = (Kd + chunk - 1) / chunk;
  return WgradPlan{(int)splits, (int)chunk};
}

// dw[i] = ((dw[i] + part[0][i]) + part[1][i]) + ... in split order (the partials of splits 1, 2,
// ...: split 0 has added its own into dw already), for one element i of [R·S·C·K]. Added one by
// one into dw, so that where dw was zero before the GEMM the result is the plain sum s0 + s1 + ...
// in split order, bit for bit what summing every split's partial before adding to dw gives.
__host__ __device__ __forceinline__ void wgrad_reduce_one(const float *part, int nparts, int64_t n,
                                                          int64_t i, float *dw) {
  float acc = dw[i];
  for (int z = 0; z < nparts; z++)
    acc += part[(int64_t)z * n + i];
  dw[i] = acc;
}

} // namespace

// ---- kernels ------------------------------------------------------------------------------------

// One 64x64 tile of a role's GEMM per block. The slice loop is double-buffered: while the block
// multiplies slice `it` out of buffer cur, each thread already holds slice it+1 in registers and
// writes it to buffer cur^1 (last read during slice it−1, before the previous barrier), so one
// __syncthreads per slice separates every write from every read of the same buffer.
// A slice into this thread's registers, and from them into tiles (any element type: sts).
// An operand element as FP32: a float as it is, a stored bf16 (uint16_t) widened exactly.
__host__ __device__ __forceinline__ float widen(float v) { return v; }
__host__ __device__ __forceinline__ float widen(uint16_t h) { return ganc_bf16_load(h); }
template <class Role>
__host__ __device__ __forceinline__ void load(const typename Role::Args &a, int tid,
                                              typename Role::Thread &t) {
  Role::fetch(a, tid, t, [&](int op, int i, auto p, bool ok) {
    (op ? t.rb : t.ra)[i] = ok ? widen(*p) : 0.0f;
  });
}
template <class Role, class SM>
__host__ __device__ __forceinline__ void stash(const typename Role::Thread &t, SM &sm, int buf,
                                               int tid) {
#pragma unroll
  for (int i = 0; i < 4; i++) {
    sts(Role::a_slot(sm, buf, tid, i), t.ra[i]);
    sts(Role::b_slot(sm, buf, tid, i), t.rb[i]);
  }
}

// Every variant runs this loop; `product(cur)` is its product step on buffer cur.
template <class Role, class SM, class Product>
__device__ __forceinline__ void slice_loop(const typename Role::Args &a, typename Role::Thread &t,
                                           SM &sm, int tid, Product product) {
  const int nk = Role::begin(a, blockIdx.x, blockIdx.y, blockIdx.z, tid, t);
  if (nk > 0) {
    load<Role>(a, tid, t);
    stash<Role>(t, sm, 0, tid);
  }
  __syncthreads();
  for (int it = 0; it < nk; it++) {
    const int cur = it & 1;
    const bool more = it + 1 < nk;
    if (more) load<Role>(a, tid, t); // global → registers, overlapping the math below
    product(cur);
    if (more) stash<Role>(t, sm, cur ^ 1, tid);
    __syncthreads();
  }
}

// The cp.async pipeline: slices go straight from global to shared memory (cp.async.ca, 4 bytes per
// element; an element outside the tensor is a zero fill, src-size 0), STAGES − 1 slices ahead of
// the product step. Slice it is waited for (its group and all before it complete: wait_group
// STAGES − 2, one group committed per slice, empty ones too) and made visible to the block by the
// barrier, which also tells every thread that stage (it − 1) % STAGES is no longer read — the
// stage slice it + STAGES − 1 then goes to. One barrier per slice, no registers holding slices.
template <class Role, class Product>
__device__ __forceinline__ void staged_loop(const typename Role::Args &a, typename Role::Thread &t,
                                            SmemS &sm, int tid, Product product) {
  const int nk = Role::begin(a, blockIdx.x, blockIdx.y, blockIdx.z, tid, t);
  auto issue = [&](int stage) {
    Role::fetch(a, tid, t, [&](int op, int i, const float *p, bool ok) {
      float &dst = op ? Role::b_slot(sm, stage, tid, i) : Role::a_slot(sm, stage, tid, i);
      ganc_mma::cp_async<4>(&dst, p, ok ? 4 : 0);
    });
  };
  for (int st = 0; st < STAGES - 1; st++) {
    if (st < nk) issue(st);
    ganc_mma::cp_async_commit();
  }
  for (int it = 0; it < nk; it++) {
    ganc_mma::cp_async_wait<STAGES - 2>();
    __syncthreads();
    if (it + STAGES - 1 < nk) issue((it + STAGES - 1) % STAGES);
    ganc_mma::cp_async_commit();
    product(it % STAGES);
  }
}

template <class Role, int TILES, class SM, class Product>
__device__ __forceinline__ void run_slices(const typename Role::Args &a, typename Role::Thread &t,
                                           SM &sm, int tid, Product product) {
  if constexpr (TILES == TILES_CP)
    staged_loop<Role>(a, t, sm, tid, product);
  else
    slice_loop<Role>(a, t, sm, tid, product);
}

template <class Role, int TILES>
__global__ void __launch_bounds__(THREADS, 2) conv_igemm_kernel(const typename Role::Args a) {
  auto &sm = TilesOf<TILES>::get();
  typename Role::Thread t;
  const int tid = threadIdx.x;
  run_slices<Role, TILES>(a, t, sm, tid, [&](int cur) { tile_fma(sm, cur, tid, t.acc); });
  const int ty = tid / (BN / TN), tx = tid % (BN / TN);
#pragma unroll
  for (int i = 0; i < TM; i++)
#pragma unroll
    for (int j = 0; j < TN; j++)
      Role::put(a, blockIdx.z, t.m0 + ty * TM + i, t.n0 + tx * TN + j, t.acc[i][j]);
}

// ---- tensor-core variants: the same roles, tiles and slices, the products on mma.sync ----------
// The block's 8 warps split the 64x64 tile 2 x 4: warp w owns rows (w / 4)·32.. +32 and columns
// (w % 4)·16.. +16, i.e. 2 x 2 mma tiles of 16x8. The slices arrive in shared memory exactly as for
// the FP32 kernel (FP32, [k][m] and [k][n]); each lane builds its fragments from them (PTX ISA
// layouts: kernels/mma.cuh), rounding to the variant's input precision on the way:
//   bf16  one m16n8k16 per 16x8 tile and slice, operands rounded to nearest even (8-bit
//         significand, unit roundoff 2⁻⁸), cvt.rn.bf16x2 packs a pair per register;
//   tf32  two m16n8k8 per tile and slice, operands rounded to nearest, ties away (cvt.rna.tf32;
//         11-bit significand, unit roundoff 2⁻¹¹).
// Products are exact, accumulation FP32 (in the tensor core's order, fixed for a given GPU: the
// result is the same bit for bit from run to run). bf16 fragment reads hit 32 distinct banks: lane
// (g, t) reads row 2t (+1) at column g of a 68-float row, bank (8t + g) mod 32; tf32's (row t)
// are 2-way, bank (4t + g) mod 32.
// The FP32 master data stay FP32 in memory; what the variants change is the products' precision
// and speed, and for bf16 the operands' (activations kept in bf16 are read as halves where a
// variant takes them: launch_bf16op, PERF.md).
enum { PREC_FP32 = 0, PREC_TF32 = 1, PREC_BF16 = 2 };

// Warp tiling: WR warps along the tile's rows, 8 / WR along its columns; each warp owns MI x NI mma
// tiles of 16x8 (WR = 2: 32x16 per warp, 2x2 tiles; WR = 4: 16x32, 1x4).
template <int WR> struct WarpTiling {
  static constexpr int WC = 8 / WR, ROWS = BM / WR, COLS = BN / WC, MI = ROWS / 16, NI = COLS / 8;
  static_assert(WR * WC == THREADS / 32 && MI >= 1 && NI >= 1, "8 warps cover the tile");
};

template <int PREC, int WR, class SM>
__device__ __forceinline__ void tile_mma(const SM &sm, int buf, int warp, int lane,
                                         float acc[WarpTiling<WR>::MI][WarpTiling<WR>::NI][4]) {
  typedef WarpTiling<WR> W;
  const int g = lane / 4, t = lane % 4;
  const int wm = (warp / W::WC) * W::ROWS, wn = (warp % W::WC) * W::COLS;
  if (PREC == PREC_BF16) {
    uint32_t a[W::MI][4], b[W::NI][2];
#pragma unroll
    for (int mi = 0; mi < W::MI; mi++) {
      const int r = wm + mi * 16 + g;
      a[mi][0] = ganc_mma::pack_bf16x2(sm.a[buf][2 * t][r], sm.a[buf][2 * t + 1][r]);
      a[mi][1] = ganc_mma::pack_bf16x2(sm.a[buf][2 * t][r + 8], sm.a[buf][2 * t + 1][r + 8]);
      a[mi][2] = ganc_mma::pack_bf16x2(sm.a[buf][2 * t + 8][r], sm.a[buf][2 * t + 9][r]);
      a[mi][3] = ganc_mma::pack_bf16x2(sm.a[buf][2 * t + 8][r + 8], sm.a[buf][2 * t + 9][r + 8]);
    }
#pragma unroll
    for (int ni = 0; ni < W::NI; ni++) {
      const int c = wn + ni * 8 + g;
      b[ni][0] = ganc_mma::pack_bf16x2(sm.b[buf][2 * t][c], sm.b[buf][2 * t + 1][c]);
      b[ni][1] = ganc_mma::pack_bf16x2(sm.b[buf][2 * t + 8][c], sm.b[buf][2 * t + 9][c]);
    }
#pragma unroll
    for (int mi = 0; mi < W::MI; mi++)
#pragma unroll
      for (int ni = 0; ni < W::NI; ni++)
        ganc_mma::mma_bf16_16816(acc[mi][ni], a[mi], b[ni], acc[mi][ni]);
  } else {
#pragma unroll
    for (int k0 = 0; k0 < BK; k0 += 8) {
      uint32_t a[W::MI][4], b[W::NI][2];
#pragma unroll
      for (int mi = 0; mi < W::MI; mi++) {
        const int r = wm + mi * 16 + g;
        a[mi][0] = ganc_mma::to_tf32(sm.a[buf][k0 + t][r]);
        a[mi][1] = ganc_mma::to_tf32(sm.a[buf][k0 + t][r + 8]);
        a[mi][2] = ganc_mma::to_tf32(sm.a[buf][k0 + t + 4][r]);
        a[mi][3] = ganc_mma::to_tf32(sm.a[buf][k0 + t + 4][r + 8]);
      }
#pragma unroll
      for (int ni = 0; ni < W::NI; ni++) {
        const int c = wn + ni * 8 + g;
        b[ni][0] = ganc_mma::to_tf32(sm.b[buf][k0 + t][c]);
        b[ni][1] = ganc_mma::to_tf32(sm.b[buf][k0 + t + 4][c]);
      }
#pragma unroll
      for (int mi = 0; mi < W::MI; mi++)
#pragma unroll
        for (int ni = 0; ni < W::NI; ni++)
          ganc_mma::mma_tf32_1688(acc[mi][ni], a[mi], b[ni], acc[mi][ni]);
    }
  }
}

// The ldmatrix variant (bf16): the slices are stored as bf16 by the stash, k-major as before
// ([k][m] and [k][n]), and each 8x8 block of a fragment comes in with one ldmatrix .trans: lane l
// gives the address of row k of its block, and receives (PTX ISA) element (row 2(l % 4) + e,
// column l / 4) of the stored block — A[m = g][k = 2t + e] and B[k = 2t + e][n = g], exactly the
// a and b fragments of mma.m16n8k16. One .x4 per 16x16 A tile (blocks (k, m) = (0, 0), (0, 8),
// (8, 0), (8, 8) → a[0..3]) and one per two 8-column B tiles ((0, 0), (8, 0), (0, 8), (8, 8) →
// b[0][0..1], b[1][0..1]): 3 shared-memory instructions per warp and slice instead of 24 loads.
template <int WR>
__device__ __forceinline__ void tile_ldm(const SmemH &sm, int buf, int warp, int lane,
                                         float acc[WarpTiling<WR>::MI][WarpTiling<WR>::NI][4]) {
  typedef WarpTiling<WR> W;
  static_assert(W::NI % 2 == 0, "B tiles come in pairs");
  const int wm = (warp / W::WC) * W::ROWS, wn = (warp % W::WC) * W::COLS;
  const int j = lane / 8, r = lane % 8; // the block this lane addresses, and its row
  uint32_t a[W::MI][4], b[W::NI][2];
#pragma unroll
  for (int mi = 0; mi < W::MI; mi++)
    ganc_mma::ldmatrix<4, true>(a[mi], &sm.a[buf][(j / 2) * 8 + r][wm + mi * 16 + (j % 2) * 8]);
#pragma unroll
  for (int np = 0; np < W::NI / 2; np++) {
    uint32_t q[4];
    ganc_mma::ldmatrix<4, true>(q, &sm.b[buf][(j % 2) * 8 + r][wn + np * 16 + (j / 2) * 8]);
    b[2 * np][0] = q[0], b[2 * np][1] = q[1], b[2 * np + 1][0] = q[2], b[2 * np + 1][1] = q[3];
  }
#pragma unroll
  for (int mi = 0; mi < W::MI; mi++)
#pragma unroll
    for (int ni = 0; ni < W::NI; ni++)
      ganc_mma::mma_bf16_16816(acc[mi][ni], a[mi], b[ni], acc[mi][ni]);
}

// One product step of a slice, by the kind of shared tiles: fragments by loads (FP32 tiles) or
// by ldmatrix (bf16 tiles).
template <int PREC, int WR, class SM>
__device__ __forceinline__ void tile_tc(const SM &sm, int buf, int warp, int lane,
                                        float acc[WarpTiling<WR>::MI][WarpTiling<WR>::NI][4]) {
  if constexpr (std::is_same<SM, SmemH>::value) {
    static_assert(PREC == PREC_BF16, "bf16 tiles are for bf16 products");
    tile_ldm<WR>(sm, buf, warp, lane, acc);
  } else {
    tile_mma<PREC, WR>(sm, buf, warp, lane, acc);
  }
}

// The FP32 kernel's slice loops with a tensor-core product step for tile_fma: the fragments are
// read from buffer cur before the barrier that ends the slice, as tile_fma's operands are. TILES:
// FP32 tiles and fragment loads (tile_mma), bf16 tiles and ldmatrix (tile_ldm), or FP32 tiles by
// cp.async (tile_mma).
template <class Role, int PREC, int WR, int TILES>
__global__ void __launch_bounds__(THREADS, 2) conv_mma_kernel(const typename Role::Args a) {
  typedef WarpTiling<WR> W;
  auto &sm = TilesOf<TILES>::get();
  typename Role::Thread t;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  float acc[W::MI][W::NI][4];
#pragma unroll
  for (int mi = 0; mi < W::MI; mi++)
#pragma unroll
    for (int ni = 0; ni < W::NI; ni++)
#pragma unroll
      for (int i = 0; i < 4; i++)
        acc[mi][ni][i] = 0.0f;
  run_slices<Role, TILES>(a, t, sm, tid,
                          [&](int cur) { tile_tc<PREC, WR>(sm, cur, warp, lane, acc); });
  // D fragment (PTX ISA): element i of tile (mi, ni) is row g + 8 (i / 2), column 2q + i % 2.
  const int g = lane / 4, q = lane % 4;
  const int m0 = t.m0 + (warp / W::WC) * W::ROWS, n0 = t.n0 + (warp % W::WC) * W::COLS;
#pragma unroll
  for (int mi = 0; mi < W::MI; mi++)
#pragma unroll
    for (int ni = 0; ni < W::NI; ni++)
#pragma unroll
      for (int i = 0; i < 4; i++)
        Role::put(a, blockIdx.z, m0 + mi * 16 + g + 8 * (i / 2), n0 + ni * 8 + 2 * q + i % 2,
                  acc[mi][ni][i]);
}

// ---- 128x128 tiles, bf16 operands by ldmatrix on both sides (forward, backward-weight) --------
// Each element the 64x64 kernels above stage in shared memory feeds 64 multiply-adds; with the
// tile doubled both ways (128x128, slices 32 deep, 8 warps of 64x32 = 4x4 mma tiles each) it
// feeds 128, and the staging moves whole 8-channel rows: a thread fetches 8 consecutive floats
// of x (one tap's channels c..c+7), w or dy (outputs n..n+7) as two float4 loads, rounds them to
// bf16 and stores 16 bytes (PERF.md counts the data path). Forward's A is stored [m][k] (80-byte
// rows: the 8 rows of an 8x8 block fall on distinct banks, 20 words apart) and comes in with plain
// ldmatrix (lane l receives row l / 4, k 2(l % 4) + e: A[g][2t + e], the a fragment as stored);
// B as in tile_ldm, [k][n] with ldmatrix.trans. Needs C and K multiples of 8 (a row of 8 never
// straddles two taps or the end of a weight row); vector loads where x and w are 16-byte aligned,
// 8 scalar loads otherwise (Args::vec). Products and rounding are mma-bf16's; the k order within
// an output is fixed, so results are deterministic.
namespace {
constexpr int GM = 128, GN = 128, GK = 32, GPAD = 8;
constexpr int G128_PIPE_STAGES = 3; // conv_g128_pipe_kernel's slices in shared memory

// Forward split over the reduction (the -sk variants, 128x128 tiles): where the output has too few
// tiles to give every SM of a large GPU a block (D b3's forward at dcgan64: 2,048 x 512 is 16 x 4
// = 64 tiles for an H200's 132 SMs), up to enough splits of whole slices to reach
// FWD_SPLIT_TARGET blocks, planned at least FWD_SPLIT_MIN_SLICES deep (a split shorter than the
// pipeline is mostly its start and its partial store; rounding to whole slices may leave fewer
// splits, and the last one shallower). From the shape alone, as wgrad_plan (deterministic); the
// partials take at most (FWD_SPLIT_TARGET + tiles) x 64 KB of scratch (8.4 MB at D b3, where
// backward-weight's split-K already takes as much). splits == 1: the variant does not run here.
constexpr int FWD_SPLIT_TARGET = 128;
constexpr int FWD_SPLIT_MIN_SLICES = 4;
constexpr int FWD_SPLIT_MAX = 16;

static WgradPlan fwd_plan(const conv_shape *s) {
  const int64_t M = (int64_t)s->N * s->P * s->Q, Kd = (int64_t)s->R * s->S * s->C;
  const int64_t tiles = ((M + GM - 1) / GM) * ((s->K + GN - 1) / GN), slices = (Kd + GK - 1) / GK;
  // (an empty GEMM, from a shape no launcher accepts, does not split: shape_ok stops it there)
  if (tiles <= 0 || slices <= 0 || 2 * tiles > FWD_SPLIT_TARGET)
    return WgradPlan{1, (int)(slices * GK)};
  int64_t splits = (FWD_SPLIT_TARGET + tiles - 1) / tiles;
  if (splits > slices / FWD_SPLIT_MIN_SLICES) splits = slices / FWD_SPLIT_MIN_SLICES;
  if (splits > FWD_SPLIT_MAX) splits = FWD_SPLIT_MAX;
  if (splits < 1) splits = 1;
  const int64_t chunk = (slices + splits - 1) / splits * GK; // whole slices; no split left empty
  return WgradPlan{(int)((Kd + chunk - 1) / chunk), (int)chunk};
}

// The tiles of S slices (2: conv_g128_kernel's double buffer; more: conv_g128_pipe_kernel's
// stages). A_KM: A stored [k][m]; B_NK: B stored [n][k] (tile_g128 reads them accordingly).
template <int S> struct SmemGT {
  enum { A_KM = 0, B_NK = 0 };
  uint16_t a[S][GM][GK + GPAD]; // [m][k]
  uint16_t b[S][GK][GN + GPAD]; // [k][n]
};
// backward-weight's A runs along m in memory (8 channels of one tap), so it is stored [k][m]
// and comes in with ldmatrix.trans, as tile_ldm's.
template <int S> struct SmemGWT {
  enum { A_KM = 1, B_NK = 0 };
  uint16_t a[S][GK][GM + GPAD]; // [k][m]
  uint16_t b[S][GK][GN + GPAD]; // [k][n]
};
// backward-data's B (the weights with C and K exchanged) runs along k in memory, so it is stored
// [n][k] and comes in with plain ldmatrix (lane l receives row n = l / 4, k 2(l % 4) + e: the b
// fragment B[2t + e][g]).
template <int S> struct SmemGPT {
  enum { A_KM = 0, B_NK = 1 };
  uint16_t a[S][GM][GK + GPAD]; // [m][k]
  uint16_t b[S][GN][GK + GPAD]; // [n][k]
};
typedef SmemGT<2> SmemG;
typedef SmemGWT<2> SmemGW;
typedef SmemGPT<2> SmemGP;
// What the three roles below share: which operands (0: A, 1: B) are stored in bf16.
template <class TA, class TB> struct G128Operands {
  __host__ __device__ static constexpr bool bf16_operand(int op) {
    return op == 0 ? std::is_same<TA, uint16_t>::value : std::is_same<TB, uint16_t>::value;
  }
  static constexpr bool ANY_BF16 =
      std::is_same<TA, uint16_t>::value || std::is_same<TB, uint16_t>::value;
};
union SharedG {
  SmemG f;
  SmemGW w;
  SmemGP p;
};
__device__ __forceinline__ SharedG &conv_shared_g128() {
  __shared__ __align__(16) SharedG s;
  return s;
}

// 4 consecutive floats of global memory (16-byte aligned; cudemu reads them one by one).
__host__ __device__ __forceinline__ float4 ldg4(const float *p) {
#ifdef __CUDA_ARCH__
  return __ldg(reinterpret_cast<const float4 *>(p));
#else
  return make_float4(p[0], p[1], p[2], p[3]);
#endif
}
// A row of 8 operand elements as bf16 pairs (the a/b fragments' element type), loaded at p when
// ok (else zeros): 8 floats rounded to nearest even (two float4 loads where vec: p 16-byte
// aligned), or 8 bf16 already stored so (one 16-byte load where vec) — the same bits either way
// for the same values, which is what lets a layer store its output in bf16 (PERF.md).
__host__ __device__ __forceinline__ void row8(int vec, const float *p, bool ok, uint32_t q[4]) {
  float v[8];
  if (!ok) {
#pragma unroll
    for (int e = 0; e < 8; e++)
      v[e] = 0.0f;
  } else if (vec) {
    const float4 lo = ldg4(p), hi = ldg4(p + 4);
    v[0] = lo.x, v[1] = lo.y, v[2] = lo.z, v[3] = lo.w;
    v[4] = hi.x, v[5] = hi.y, v[6] = hi.z, v[7] = hi.w;
  } else {
#pragma unroll
    for (int e = 0; e < 8; e++)
      v[e] = p[e];
  }
#pragma unroll
  for (int e = 0; e < 4; e++)
    q[e] = ganc_mma::pack_bf16x2(v[2 * e], v[2 * e + 1]);
}
__host__ __device__ __forceinline__ void row8(int vec, const uint16_t *p, bool ok, uint32_t q[4]) {
  if (!ok) {
#pragma unroll
    for (int e = 0; e < 4; e++)
      q[e] = 0;
  } else if (vec) {
#ifdef __CUDA_ARCH__
    const uint4 u = __ldg(reinterpret_cast<const uint4 *>(p));
    q[0] = u.x, q[1] = u.y, q[2] = u.z, q[3] = u.w;
#else
    memcpy(q, p, 16);
#endif
  } else {
#pragma unroll
    for (int e = 0; e < 4; e++)
      q[e] = (uint32_t)p[2 * e] | (uint32_t)p[2 * e + 1] << 16;
  }
}
// The 16 bytes of a row into shared memory (16-byte aligned).
__host__ __device__ __forceinline__ void sts8(uint16_t *d, const uint32_t q[4]) {
#ifdef __CUDA_ARCH__
  *reinterpret_cast<uint4 *>(d) = make_uint4(q[0], q[1], q[2], q[3]);
#else
  memcpy(d, q, 16);
#endif
}

// Where a thread's rows of 8 go in a tile stored across them ([m][k] or [n][k], 80-byte rows of
// 4 chunks of 16 bytes): lanes 8c .. 8c + 7 of a warp take chunk c of 8 consecutive rows, so each
// 8-lane phase of a 16-byte store writes one chunk column, banks 20r + 4c: all 32 distinct (lanes
// on 2 rows x 4 chunks would meet on 4 banks, 2-way). A warp still reads 4 whole chunks of 8 rows.
__host__ __device__ __forceinline__ int row80(int tid) { return 8 * (tid / 32) + tid % 8; }
__host__ __device__ __forceinline__ int chunk80(int tid) { return (tid / 8) % 4; }
// A row of 8 in a stage, as the role stores its operand ([m][k], [k][m], [k][n] or [n][k]: the
// Tiles' A_KM and B_NK): the stored row and the column of its first element (a multiple of 8).
struct TilePos {
  int row, col;
};
template <class SM>
__host__ __device__ __forceinline__ uint16_t *slot_at(SM &sm, int buf, int op, TilePos p) {
  return op == 0 ? &sm.a[buf][p.row][p.col] : &sm.b[buf][p.row][p.col];
}

// Forward, y [NPQ, K] = A [NPQ, RSC] · w [RSC, K] (Fwd's GEMM). Fetch maps per slice: A — rows
// m0 + row80(tid) + 64 i (i < 2), k = k0 + 8 chunk80(tid); B — rows k0 + tid / 16 + 16 i, n = n0
// + 8 (tid % 16). Split over the reduction where `part` is set (the -sk variants: fwd_plan):
// block z sums k in [z·chunk, (z + 1)·chunk) and writes its FP32 sums to part[z] — no epilogue,
// no halves — and fwd_reduce_kernel adds the splits in order and stores y as the unsplit kernel
// would (epilogue, bf16 or FP32).
template <class TA, class TB> struct FwdG : G128Operands<TA, TB> {
  struct Args {
    const TA *x; // [N, H, W, C], float or bf16
    const TB *w; // [R, S, C, K]
    float *y;
    uint16_t *yh;     // y in bf16 instead, rounded as stored (or NULL)
    ganc_conv_epi ep; // applied to each output value before it is stored (act NONE: nothing)
    float *part;      // [splits, NPQ, K]: the splits' sums (NULL: one split, into y or yh)
    double *bnp;      // batch-norm slot sums of y (ops.h ganc_bn_part; NULL: none): store_tiles
    int bnround;      // ... of y's values rounded to bf16 (an FP32 y read as GANC_X_ROUND)
    Geom g;
    int M, Kd;
    int chunk;  // k per split, a multiple of GK (>= Kd: one split)
    Step kstep; // GK in (r, s, c) digits
    int vec;    // x and w 16-byte aligned: float4 loads
  };
  struct Thread {
    int m0, n0;
    int64_t xn[2];
    int h0[2], w0[2];
    int amask;
    int kend;            // the end of this block's k (Kd, or its split's)
    int k;               // this thread's next A k ...
    Digits kd;           // ... as (r, s, c)
    int bk;              // its next B row (bk + 16 i)
    uint32_t r[2][2][4]; // [A, B][i]: rows of 8 as bf16 pairs
  };
  template <int S> using Tiles = SmemGT<S>;
  static Args args(const conv_shape *s, const TA *x, const TB *w, float *y) {
    Args a;
    a.x = x, a.w = w, a.y = y, a.yh = nullptr, a.part = nullptr, a.g = geom_of(s);
    a.ep = ganc_conv_epi{GANC_ACT_NONE, 0.0f, nullptr, 0, nullptr, 0};
    a.bnp = nullptr, a.bnround = 0;
    a.M = s->N * s->P * s->Q;
    a.Kd = s->R * s->S * s->C;
    a.chunk = (a.Kd + GK - 1) / GK * GK;
    a.kstep = make_step(GK, s->S, s->C);
    a.vec = ((uintptr_t)x % 16 == 0) && ((uintptr_t)w % 16 == 0);
    return a;
  }
  static int splits(const Args &a) { return a.part ? (a.Kd + a.chunk - 1) / a.chunk : 1; }
  static dim3 grid(const Args &a) {
    return dim3((a.M + GM - 1) / GM, (a.g.K + GN - 1) / GN, splits(a));
  }

  __host__ __device__ __forceinline__ static int begin(const Args &a, int bx, int by, int bz,
                                                       int tid, Thread &t) {
    const Geom &g = a.g;
    t.m0 = bx * GM, t.n0 = by * GN;
    t.amask = 0;
#pragma unroll
    for (int i = 0; i < 2; i++)
      t.amask |= fwd_row(g, a.M, t.m0 + row80(tid) + 64 * i, t.xn[i], t.h0[i], t.w0[i]) << i;
    const int k0 = bz * a.chunk; // 0 unsplit
    t.kend = a.Kd - k0 < a.chunk ? a.Kd : k0 + a.chunk;
    t.k = k0 + 8 * chunk80(tid);
    t.kd = digits_of(t.k, g.S, g.C);
    t.bk = k0 + tid / 16;
    return (t.kend - k0 + GK - 1) / GK;
  }

  // The next slice's rows of 8: f(op, i, p, ok) for A (op 0) and B (op 1), i < 2, with p the
  // row's first element where ok (else the operand itself, a valid address); then t moves on.
  template <class F>
  __host__ __device__ __forceinline__ static void rows(const Args &a, int tid, Thread &t, F &&f) {
    const Geom &g = a.g;
    const int r = t.kd.hi, s = t.kd.mid, c = t.kd.lo;
#pragma unroll
    for (int i = 0; i < 2; i++) {
      const int h = t.h0[i] + r, w = t.w0[i] + s;
      const bool ok = t.k < t.kend && ((t.amask >> i) & 1) && (unsigned)h < (unsigned)g.H &&
                      (unsigned)w < (unsigned)g.W;
      f(0, i, ok ? a.x + t.xn[i] + ((int64_t)h * g.W + w) * g.C + c : a.x, ok);
    }
    t.k += GK;
    digits_add(t.kd, a.kstep);
    const int n = t.n0 + 8 * (tid % 16);
#pragma unroll
    for (int i = 0; i < 2; i++) {
      const int k = t.bk + 16 * i;
      const bool ok = k < t.kend && n < g.K;
      f(1, i, ok ? a.w + (int64_t)k * g.K + n : a.w, ok);
    }
    t.bk += GK;
  }
  // Where row (op, i) of this thread goes in a stage: the stored row and its first column.
  __host__ __device__ __forceinline__ static TilePos place(int op, int i, int tid) {
    return op == 0 ? TilePos{row80(tid) + 64 * i, 8 * chunk80(tid)}
                   : TilePos{tid / 16 + 16 * i, 8 * (tid % 16)};
  }
  template <class SM>
  __host__ __device__ __forceinline__ static uint16_t *slot(SM &sm, int buf, int op, int i,
                                                            int tid) {
    return slot_at(sm, buf, op, place(op, i, tid));
  }
  // &y [m, n] (split: &part[z][m, n]), or NULL outside the GEMM; overwritten.
  __host__ __device__ __forceinline__ static float *at(const Args &a, int bz, int m, int n) {
    if (m >= a.M || n >= a.g.K) return nullptr;
    const int64_t e = (int64_t)m * a.g.K + n;
    return a.part ? a.part + (int64_t)bz * a.M * a.g.K + e : a.y + e;
  }
  // The bf16 output (NULL: FP32 through at), and its element [m, n] (-1 outside the GEMM); a
  // split's partial sums have neither halves nor epilogue (fwd_reduce_kernel applies them): the
  // epilogue op is &a.ep, applied where epi_on. (Never a pointer that is either NULL or a
  // parameter's address: ptxas answers that by copying the whole Args into a stack frame.)
  __host__ __device__ static uint16_t *halves(const Args &a) { return a.part ? nullptr : a.yh; }
  __host__ __device__ static const ganc_conv_epi *epi(const Args &a) { return &a.ep; }
  __host__ __device__ static bool epi_on(const Args &a) { return !a.part; }
  // Batch-norm slot sums (NULL: none; a split's partial sums have none either), their rounding,
  // and the output's channels (the GEMM's columns).
  __host__ __device__ static double *stats(const Args &a) { return a.part ? nullptr : a.bnp; }
  __host__ __device__ static bool stats_round(const Args &a) { return a.bnround != 0; }
  __host__ __device__ static int channels(const Args &a) { return a.g.K; }
  __host__ __device__ __forceinline__ static int64_t index(const Args &a, int bz, int m, int n) {
    (void)bz;
    return m < a.M && n < a.g.K ? (int64_t)m * a.g.K + n : -1;
  }
  __host__ __device__ static constexpr bool accumulates(const Args &, int) { return false; }
  __device__ static SmemG &smem() { return conv_shared_g128().f; }
};

// Backward-weight, dw [RSC, K] += A [RSC, NPQ] · dy [NPQ, K] (BwdWeight's GEMM), split over the
// reduction as BwdWeight (wgrad_plan with this kernel's tiles; part[z], then wgrad_reduce).
// Fetch maps per slice: A — columns j0 + tid / 16 + 16 i (i < 2), rows m0 + 8 (tid % 16): the 8
// channels c..c+7 of tap (r, s) at pixel j; B — the same columns j, n = n0 + 8 (tid % 16).
template <class TA, class TB> struct WgradG : G128Operands<TA, TB> {
  struct Args {
    const TA *x;  // float or bf16
    const TB *dy; // float or bf16
    float *out;   // dw: split 0 adds its sum to it
    float *part; // [splits − 1, R·S·C, K]: split z >= 1 overwrites part[z − 1] (as BwdWeight)
    Geom g;
    int M, Kd;  // R·S·C, N·P·Q
    int chunk;  // columns per split, a multiple of GK
    Step jstep; // GK in (n, p, q) digits
    int vec;
  };
  struct Thread {
    int m0, n0;
    int j, jend;
    Digits jd[2]; // (n, p, q) of j + 16 i
    int roff, soff, c;
    bool arow;
    uint32_t r[2][2][4]; // [A, B][i]: rows of 8 as bf16 pairs
  };
  template <int S> using Tiles = SmemGWT<S>;
  static Args args(const conv_shape *s, const TA *x, const TB *dy, float *dw, float *part,
                   int chunk) {
    Args a;
    a.x = x, a.dy = dy, a.out = dw, a.part = part, a.g = geom_of(s);
    a.M = s->R * s->S * s->C;
    a.Kd = s->N * s->P * s->Q;
    a.chunk = chunk;
    a.jstep = make_step(GK, s->P, s->Q);
    a.vec = ((uintptr_t)x % 16 == 0) && ((uintptr_t)dy % 16 == 0);
    return a;
  }
  static dim3 grid(const Args &a) {
    return dim3((a.M + GM - 1) / GM, (a.g.K + GN - 1) / GN, (a.Kd + a.chunk - 1) / a.chunk);
  }
  __host__ __device__ __forceinline__ static int begin(const Args &a, int bx, int by, int bz,
                                                       int tid, Thread &t) {
    const Geom &g = a.g;
    t.m0 = bx * GM, t.n0 = by * GN;
    const int64_t jbeg = (int64_t)bz * a.chunk, jend = jbeg + a.chunk;
    t.jend = (int)(jend < a.Kd ? jend : a.Kd);
    t.j = (int)jbeg + tid / 16;
#pragma unroll
    for (int i = 0; i < 2; i++)
      t.jd[i] = digits_of(t.j + 16 * i, g.P, g.Q);
    const int m = t.m0 + 8 * (tid % 16);
    t.arow = m < a.M;
    const Digits rsc = digits_of(t.arow ? m : 0, g.S, g.C);
    t.roff = rsc.hi - g.pad, t.soff = rsc.mid - g.pad, t.c = rsc.lo;
    return t.jend > jbeg ? (int)((t.jend - jbeg + GK - 1) / GK) : 0;
  }
  template <class F> // as FwdG::rows
  __host__ __device__ __forceinline__ static void rows(const Args &a, int tid, Thread &t, F &&f) {
    const Geom &g = a.g;
    const int n = t.n0 + 8 * (tid % 16);
#pragma unroll
    for (int i = 0; i < 2; i++) {
      const int j = t.j + 16 * i;
      const bool jin = j < t.jend;
      const int h = t.jd[i].mid * g.stride + t.roff, w = t.jd[i].lo * g.stride + t.soff;
      const bool ok = jin && t.arow && (unsigned)h < (unsigned)g.H && (unsigned)w < (unsigned)g.W;
      f(0, i, ok ? a.x + (((int64_t)t.jd[i].hi * g.H + h) * g.W + w) * g.C + t.c : a.x, ok);
      const bool okb = jin && n < g.K;
      f(1, i, okb ? a.dy + (int64_t)j * g.K + n : a.dy, okb);
      digits_add(t.jd[i], a.jstep);
    }
    t.j += GK;
  }
  __host__ __device__ __forceinline__ static TilePos place(int op, int i, int tid) {
    (void)op;
    return TilePos{tid / 16 + 16 * i, 8 * (tid % 16)};
  }
  template <class SM>
  __host__ __device__ __forceinline__ static uint16_t *slot(SM &sm, int buf, int op, int i,
                                                            int tid) {
    return slot_at(sm, buf, op, place(op, i, tid));
  }
  // &dw [m, n] (split 0: added to) or &part[z − 1] [m, n] (overwritten), or NULL outside the GEMM.
  __host__ __device__ __forceinline__ static float *at(const Args &a, int bz, int m, int n) {
    if (m >= a.M || n >= a.g.K) return nullptr;
    const int64_t e = (int64_t)m * a.g.K + n;
    return bz == 0 ? a.out + e : a.part + (int64_t)(bz - 1) * a.M * a.g.K + e;
  }
  __host__ __device__ static bool accumulates(const Args &, int bz) { return bz == 0; }
  __host__ __device__ static uint16_t *halves(const Args &) { return nullptr; } // dw is FP32
  __host__ __device__ static const ganc_conv_epi *epi(const Args &) { return nullptr; }
  __host__ __device__ static constexpr bool epi_on(const Args &) { return false; }
  __host__ __device__ static double *stats(const Args &) { return nullptr; }
  __host__ __device__ static bool stats_round(const Args &) { return false; }
  __host__ __device__ static int channels(const Args &a) { return a.g.K; }
  __host__ __device__ static int64_t index(const Args &, int, int, int) { return -1; }
  __device__ static SmemGW &smem() { return conv_shared_g128().w; }
};

// Backward-data by sub-pixel phases (BwdDataPhase's GEMMs, grid z = phase; at stride 1 the one
// phase is the whole backward-data), dx [phase pixels, C] = A [·, Rφ·Sφ·K] · B [Rφ·Sφ·K, C]:
// A[m, (i, j, k)] = dy[n, p, q, k] as BwdDataPhase, B[(i, j, k), c] = w[r, s, c, k]. Both run
// along k in memory. Fetch maps per slice (the same k for both): A — rows m0 + row80(tid) + 64 i
// (i < 2), B — columns c = n0 + row80(tid) + 64 i; k = kk0 + 8 chunk80(tid), a row of 8
// channels k.
template <class TA, class TB> struct PhaseG : G128Operands<TA, TB> {
  struct Args {
    BwdDataPhase::Args b; // the phases (computed once on the host) and dx
    const TA *dy;         // float or bf16
    const TB *w;
    int vec;     // dy and w 16-byte aligned
    double *bnp; // batch-norm slot sums of dx (NULL: none), as FwdG's
    int bnround;
  };
  static Args args(const conv_shape *s, const TA *dy, const TB *w, float *dx) {
    Args a;
    a.b = BwdDataPhase::args(s, nullptr, nullptr, dx);
    a.dy = dy, a.w = w;
    a.bnp = nullptr, a.bnround = 0;
    a.vec = ((uintptr_t)dy % 16 == 0) && ((uintptr_t)w % 16 == 0);
    return a;
  }
  struct Thread {
    int m0, n0;
    int Kd, ph, pw;
    int64_t dyn[2];
    int hq[2], wq[2];
    int amask;
    int kk;
    Digits kd; // (i, j, k)
    Step kstep;
    uint32_t r[2][2][4]; // [A, B][i]: rows of 8 as bf16 pairs
  };
  template <int S> using Tiles = SmemGPT<S>;
  static dim3 grid(const Args &a) {
    return dim3((a.b.Mmax + GM - 1) / GM > 0 ? (a.b.Mmax + GM - 1) / GM : 1,
                (a.b.g.C + GN - 1) / GN, a.b.nph);
  }
  __host__ __device__ __forceinline__ static int begin(const Args &a, int bx, int by, int bz,
                                                       int tid, Thread &t) {
    const Geom &g = a.b.g;
    const Phase &P = a.b.ph[bz];
    t.Kd = P.Kd, t.ph = P.ph, t.pw = P.pw;
    t.m0 = bx * GM, t.n0 = by * GN;
    t.amask = 0;
#pragma unroll
    for (int i = 0; i < 2; i++)
      t.amask |= phase_row(P, g, t.m0 + row80(tid) + 64 * i, t.dyn[i], t.hq[i], t.wq[i]) << i;
    t.kk = 8 * chunk80(tid);
    t.kd = digits_of(t.kk, P.Sp > 0 ? P.Sp : 1, g.K);
    t.kstep = make_step(GK, P.Sp > 0 ? P.Sp : 1, g.K);
    return t.m0 < P.M ? (P.Kd + GK - 1) / GK : 0;
  }
  template <class F> // as FwdG::rows
  __host__ __device__ __forceinline__ static void rows(const Args &a, int tid, Thread &t, F &&f) {
    const Geom &g = a.b.g;
    const int i_r = t.kd.hi, j_s = t.kd.mid, k = t.kd.lo;
    const bool kin = t.kk < t.Kd;
#pragma unroll
    for (int i = 0; i < 2; i++) {
      const int p = t.hq[i] - i_r, q = t.wq[i] - j_s;
      const bool ok =
          kin && ((t.amask >> i) & 1) && (unsigned)p < (unsigned)g.P && (unsigned)q < (unsigned)g.Q;
      f(0, i, ok ? a.dy + t.dyn[i] + ((int64_t)p * g.Q + q) * g.K + k : a.dy, ok);
    }
    const int64_t wrs = (int64_t)((t.ph + g.stride * i_r) * g.S + t.pw + g.stride * j_s) * g.C;
#pragma unroll
    for (int i = 0; i < 2; i++) {
      const int c = t.n0 + row80(tid) + 64 * i;
      const bool ok = kin && c < g.C;
      f(1, i, ok ? a.w + (wrs + c) * g.K + k : a.w, ok);
    }
    t.kk += GK;
    digits_add(t.kd, t.kstep);
  }
  __host__ __device__ __forceinline__ static TilePos place(int op, int i, int tid) {
    (void)op;
    return TilePos{row80(tid) + 64 * i, 8 * chunk80(tid)};
  }
  template <class SM>
  __host__ __device__ __forceinline__ static uint16_t *slot(SM &sm, int buf, int op, int i,
                                                            int tid) {
    return slot_at(sm, buf, op, place(op, i, tid));
  }
  __host__ __device__ __forceinline__ static float *at(const Args &a, int bz, int m, int c) {
    const int64_t e = BwdDataPhase::index(a.b, bz, m, c);
    return e < 0 ? nullptr : a.b.dx + e;
  }
  __host__ __device__ static uint16_t *halves(const Args &a) { return a.b.dxh; }
  __host__ __device__ static const ganc_conv_epi *epi(const Args &a) { return &a.b.ep; }
  __host__ __device__ static constexpr bool epi_on(const Args &) { return true; }
  __host__ __device__ static double *stats(const Args &a) { return a.bnp; }
  __host__ __device__ static bool stats_round(const Args &a) { return a.bnround != 0; }
  __host__ __device__ static int channels(const Args &a) { return a.b.g.C; }
  __host__ __device__ __forceinline__ static int64_t index(const Args &a, int bz, int m, int c) {
    return BwdDataPhase::index(a.b, bz, m, c);
  }
  __host__ __device__ static constexpr bool accumulates(const Args &, int) { return false; }
  __device__ static SmemGP &smem() { return conv_shared_g128().p; }
};

// o[0], o[1] = v0, v1: one 8-byte store where o is 8-byte aligned.
__host__ __device__ __forceinline__ void st2(float *o, float v0, float v1) {
#ifdef __CUDA_ARCH__
  if ((uintptr_t)o % 8 == 0) {
    *reinterpret_cast<float2 *>(o) = make_float2(v0, v1);
    return;
  }
#endif
  o[0] = v0, o[1] = v1;
}

// One slice's products: two k16 steps; warp w owns rows (w / 4)·64.. +64, columns (w % 4)·32..
// +32. A blocks of one .x4 (lane l addresses row l % 8 of block l / 8): (m, k) = (0, 0), (8, 0),
// (0, 8), (8, 8) → a[0..3]; B pairs as tile_ldm.
template <class SM>
__device__ __forceinline__ void tile_g128(const SM &sm, int buf, int warp, int lane,
                                          float acc[4][4][4]) {
  const int wm = (warp / 4) * 64, wn = (warp % 4) * 32;
  const int j = lane / 8, r = lane % 8;
#pragma unroll
  for (int kk = 0; kk < GK; kk += 16) {
    uint32_t a[4][4], b[4][2];
#pragma unroll
    for (int mi = 0; mi < 4; mi++) {
      if constexpr (SM::A_KM) // [k][m]: blocks as tile_ldm's
        ganc_mma::ldmatrix<4, true>(a[mi],
                                    &sm.a[buf][kk + (j / 2) * 8 + r][wm + mi * 16 + (j % 2) * 8]);
      else
        ganc_mma::ldmatrix<4, false>(a[mi],
                                     &sm.a[buf][wm + mi * 16 + (j % 2) * 8 + r][kk + (j / 2) * 8]);
    }
#pragma unroll
    for (int np = 0; np < 2; np++) {
      uint32_t q[4];
      if constexpr (SM::B_NK) // [n][k]: (n, k) = (0, 0), (0, 8), (8, 0), (8, 8)
        ganc_mma::ldmatrix<4, false>(q,
                                     &sm.b[buf][wn + np * 16 + (j / 2) * 8 + r][kk + (j % 2) * 8]);
      else
        ganc_mma::ldmatrix<4, true>(q,
                                    &sm.b[buf][kk + (j % 2) * 8 + r][wn + np * 16 + (j / 2) * 8]);
      b[2 * np][0] = q[0], b[2 * np][1] = q[1], b[2 * np + 1][0] = q[2], b[2 * np + 1][1] = q[3];
    }
#pragma unroll
    for (int mi = 0; mi < 4; mi++)
#pragma unroll
      for (int ni = 0; ni < 4; ni++)
        ganc_mma::mma_bf16_16816(acc[mi][ni], a[mi], b[ni], acc[mi][ni]);
  }
}

// The next slice's rows into this thread's registers (packed to bf16 pairs as they load), and
// from there into stage buf of the tiles.
template <class Role>
__host__ __device__ __forceinline__ void load_rows(const typename Role::Args &a, int tid,
                                                   typename Role::Thread &t) {
  Role::rows(a, tid, t, [&](int op, int i, auto p, bool ok) { row8(a.vec, p, ok, t.r[op][i]); });
}
// Where this thread's rows of a slice go in stage buf of g128's tiles: slot(op, i).
template <class Role, class SM>
__host__ __device__ __forceinline__ auto g128_slots(SM &sm, int buf, int tid) {
  return [&sm, buf, tid](int op, int i) { return Role::slot(sm, buf, op, i, tid); };
}
// Every row of r ([A, B][i]) into slot(op, i), or with SKIP_BF16 those of the operands stored in
// FP32 (the bf16 ones are copied by cp.async: issue_rows).
template <class Role, bool SKIP_BF16, class Slot>
__host__ __device__ __forceinline__ void stash_rows(const uint32_t (&r)[2][2][4], Slot slot) {
#pragma unroll
  for (int op = 0; op < 2; op++)
    if (!(SKIP_BF16 && Role::bf16_operand(op)))
#pragma unroll
      for (int i = 0; i < 2; i++)
        sts8(slot(op, i), r[op][i]);
}
// The next slice's rows (Role::rows): with ASYNC those of an operand stored in bf16 by 16-byte
// cp.async straight into slot(op, i) (src-size 0: the zero fill of padding and edges), the others
// into registers r, packed to bf16 as they load (stash_rows stores them later).
template <class Role, bool ASYNC, class Slot>
__host__ __device__ __forceinline__ void issue_rows(const typename Role::Args &a, int tid,
                                                    typename Role::Thread &t,
                                                    uint32_t (&r)[2][2][4], Slot slot) {
  Role::rows(a, tid, t, [&](int op, int i, auto p, bool ok) {
    typedef typename std::remove_cv<typename std::remove_pointer<decltype(p)>::type>::type T;
    if constexpr (ASYNC && std::is_same<T, uint16_t>::value)
      ganc_mma::cp_async<16>(slot(op, i), p, ok ? 16 : 0);
    else
      row8(a.vec, p, ok, r[op][i]);
  });
}
// The pipelined kernels' order of slices: slice 0 into stage 0 whole; slice 1's copies into stage
// 1, its register rows into set 1 (stored after slice 0's products); one commit group per slice,
// empty or not (wait_group counts slices); then step(it, set) for every slice, set = it & 1 as a
// constant (the loop unrolled by two, so that the register sets stay registers).
template <class Issue, class Stash, class Step>
__device__ __forceinline__ void run_slices(int nk, Issue &&issue, Stash &&stash, Step &&step) {
  typedef std::integral_constant<int, 0> Even;
  typedef std::integral_constant<int, 1> Odd;
  if (nk > 0) issue(0, Even()), stash(0, Even());
  ganc_mma::cp_async_commit();
  if (nk > 1) issue(1, Odd());
  ganc_mma::cp_async_commit();
  for (int it = 0; it < nk; it += 2) {
    step(it, Even());
    if (it + 1 < nk) step(it + 1, Odd());
  }
}
__device__ __forceinline__ void zero_acc(float acc[4][4][4]) {
#pragma unroll
  for (int mi = 0; mi < 4; mi++)
#pragma unroll
    for (int ni = 0; ni < 4; ni++)
#pragma unroll
      for (int i = 0; i < 4; i++)
        acc[mi][ni][i] = 0.0f;
}

// Results out of accumulators in mma's D-fragment layout: MI x NI tiles of 16x8 from row m0 and
// column n0, tile (mi, ni)'s elements 2h, 2h + 1 (acc[(mi·NI + ni)·4 + 2h + e]) at row g + 8h,
// columns 2q and 2q + 1 — a pair inside the GEMM together (its columns are a multiple of 8),
// stored as one 8-byte float2 where the address is 8-byte aligned. g128's warps (4 x 4 tiles) and
// wgmma's (1 x 16: a warp's 16 rows of the warpgroup's m64n128 accumulators) alike.
// Where the role has batch-norm slot sums (Role::stats), each lane adds up, in double, the values
// as the batch norm will read them (the stored halves, or FP32 rounded to bf16 where asked) of its
// two columns per tile over its MI·2 rows; a butterfly over the 8 lanes of a column (xor 4, 8, 16:
// the same sum on each, in a fixed order) makes the warp's MI·16-row sums. MI = 4 (g128: 64 rows)
// writes them as slot z·(2·gridDim.x) + m0 / 64 of ganc_bn_part's [nslot, 2, C]; with stat_sm
// (wgmma's 16-row warps) they go to stat_sm [2][NI·8] instead, for the kernel to add up the
// warpgroup's four in order. Every warp writes its slot, zeros where its rows lie outside the
// GEMM, so the launcher's nslot = gridDim.z·gridDim.x·2 are all written.
template <class Role, int MI, int NI>
__device__ __forceinline__ void store_tiles(const typename Role::Args &a, int m0, int n0, int lane,
                                            const float *acc, double *stat_sm = nullptr) {
  const int g = lane / 4, q = lane % 4;
  const bool acc_in = Role::accumulates(a, blockIdx.z);
  uint16_t *const hb = Role::halves(a);
  const ganc_conv_epi *const ep = Role::epi(a); // forward and backward-data only, where epi_on
  const bool use_ep = Role::epi_on(a);
  double *const bnp = Role::stats(a);
  const bool bnround = Role::stats_round(a);
  const int C = Role::channels(a);
  const int64_t slot = (int64_t)blockIdx.z * (2 * gridDim.x) + m0 / 64;
  // Column pair by column pair (ni outer), so that only its four sums are live at a time: wgmma's
  // 16 pairs at once would cost ~40 registers.
#pragma unroll
  for (int ni = 0; ni < NI; ni++) {
    double cs[2] = {0.0, 0.0}, cq[2] = {0.0, 0.0}; // Σ v, Σ v² of this lane's two columns
    auto tally = [&](float s0, float s1) {
      const double d0 = s0, d1 = s1;
      cs[0] += d0, cq[0] += d0 * d0;
      cs[1] += d1, cq[1] += d1 * d1;
    };
#pragma unroll
    for (int mi = 0; mi < MI; mi++)
#pragma unroll
      for (int h = 0; h < 2; h++) {
        const float *v = acc + (mi * NI + ni) * 4 + 2 * h;
        if (hb) { // a bf16 output: the pair rounded as stored
          const int64_t e =
              Role::index(a, blockIdx.z, m0 + mi * 16 + g + 8 * h, n0 + ni * 8 + 2 * q);
          if (e < 0) continue;
          float v0 = v[0], v1 = v[1];
          if (use_ep) v0 = epi_apply(*ep, e, v0), v1 = epi_apply(*ep, e + 1, v1);
          const uint16_t h0 = ganc_bf16_store(v0), h1 = ganc_bf16_store(v1);
          hb[e] = h0;
          hb[e + 1] = h1;
          if (bnp) tally(ganc_bf16_load(h0), ganc_bf16_load(h1));
          continue;
        }
        float *o = Role::at(a, blockIdx.z, m0 + mi * 16 + g + 8 * h, n0 + ni * 8 + 2 * q);
        if (!o) continue;
        float v0 = v[0], v1 = v[1];
        if (acc_in) v0 = o[0] + v0, v1 = o[1] + v1;
        if (use_ep && ep->act != GANC_ACT_NONE) {
          const int64_t e =
              Role::index(a, blockIdx.z, m0 + mi * 16 + g + 8 * h, n0 + ni * 8 + 2 * q);
          v0 = epi_apply(*ep, e, v0), v1 = epi_apply(*ep, e + 1, v1);
        }
        st2(o, v0, v1);
        if (bnp)
          tally(bnround ? ganc_bf16_load(ganc_bf16_store(v0)) : v0,
                bnround ? ganc_bf16_load(ganc_bf16_store(v1)) : v1);
      }
    if (!bnp) continue;
#pragma unroll
    for (int e = 0; e < 2; e++) {
      double x = cs[e], x2 = cq[e];
#pragma unroll
      for (int m = 4; m < 32; m *= 2) {
        x += __shfl_xor_sync(0xffffffffu, x, m);
        x2 += __shfl_xor_sync(0xffffffffu, x2, m);
      }
      const int col = ni * 8 + 2 * q + e;
      if (g != 0) continue;
      if (stat_sm) {
        stat_sm[col] = x;
        stat_sm[NI * 8 + col] = x2;
      } else if (n0 + col < C) {
        bnp[2 * slot * C + n0 + col] = x;
        bnp[(2 * slot + 1) * C + n0 + col] = x2;
      }
    }
  }
}
// g128's block: warp w owns rows (w / 4)·64.. +64, columns (w % 4)·32.. +32.
template <class Role>
__device__ __forceinline__ void store_g128(const typename Role::Args &a,
                                           const typename Role::Thread &t, int warp, int lane,
                                           const float acc[4][4][4]) {
  store_tiles<Role, 4, 4>(a, t.m0 + (warp / 4) * 64, t.n0 + (warp % 4) * 32, lane, &acc[0][0][0]);
}

} // namespace

// Double-buffered through registers as slice_loop: one barrier per slice. Role: FwdG, WgradG or
// PhaseG.
template <class Role>
__global__ void __launch_bounds__(THREADS, 1) conv_g128_kernel(const typename Role::Args a) {
  auto &sm = Role::smem();
  typename Role::Thread t;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  float acc[4][4][4];
  zero_acc(acc);
  const int nk = Role::begin(a, blockIdx.x, blockIdx.y, blockIdx.z, tid, t);
  if (nk > 0) {
    load_rows<Role>(a, tid, t);
    stash_rows<Role, false>(t.r, g128_slots<Role>(sm, 0, tid));
  }
  __syncthreads();
  for (int it = 0; it < nk; it++) {
    const int cur = it & 1;
    const bool more = it + 1 < nk;
    if (more) load_rows<Role>(a, tid, t);
    tile_g128(sm, cur, warp, lane, acc);
    if (more) stash_rows<Role, false>(t.r, g128_slots<Role>(sm, cur ^ 1, tid));
    __syncthreads();
  }
  store_g128<Role>(a, t, warp, lane, acc);
}

// The same tiles three slices deep in dynamic shared memory: slice it + 2 is fetched while slice
// it is multiplied, so two slices of products (not one, as conv_g128_kernel) hide a fetch's
// latency. With ASYNC (the launcher's choice: the operands 16-byte aligned), an operand stored in
// bf16 (Role's TA or TB uint16_t: training's bf16 activations and gradients) is copied by 16-byte
// cp.async straight from global into its stage — no registers, no stash, zero fill for padding
// and edges by src-size 0 — one commit group per slice, waited for with wait_group 1 (slice it's
// group complete, slice it + 1's in flight). An FP32 operand (the weights) goes through registers,
// packed at the load, in two sets (rr[slice & 1]): slice it + 2's rows load into one while slice
// it + 1's, loaded a slice earlier, wait in the other to be stored into their stage after slice
// it's products — so its loads are two slices ahead too (the loop is unrolled by two, so that the
// set is a constant and the registers stay registers). One barrier per slice: after it every
// thread's copies and stores of slice it are in place, and no warp still reads the stage slice
// it + 2 overwrites (slice it − 1's). Products, k order and results are conv_g128_kernel's, bit
// for bit.
template <class Role, bool ASYNC>
__global__ void __launch_bounds__(THREADS, 1) conv_g128_pipe_kernel(const typename Role::Args a) {
  constexpr int S = G128_PIPE_STAGES;
  static_assert(S == 3, "the register sets below are built for three stages");
  typedef typename Role::template Tiles<S> SM;
  SM &sm = *static_cast<SM *>(ganc_mma::dynamic_shared());
  typename Role::Thread t;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  float acc[4][4][4];
  zero_acc(acc);
  uint32_t rr[2][2][2][4]; // [slice & 1][A, B][i]: the register rows of two slices
  const int nk = Role::begin(a, blockIdx.x, blockIdx.y, blockIdx.z, tid, t);
  // The next slice into stage buf: the bf16 rows by cp.async now, the others into register set
  // `set`; stash: register set `set` (its rows) into stage buf.
  auto issue = [&](int buf, auto set) {
    issue_rows<Role, ASYNC>(a, tid, t, rr[decltype(set)::value], g128_slots<Role>(sm, buf, tid));
  };
  auto stash = [&](int buf, auto set) {
    stash_rows<Role, ASYNC>(rr[decltype(set)::value], g128_slots<Role>(sm, buf, tid));
  };
  // Slice it (set: it & 1, a constant): wait for its copies, fetch slice it + 2 ((it + 2) & 1 ==
  // it & 1: the set slice it's rows left), multiply, then store slice it + 1's register rows.
  auto step = [&](int it, auto set) {
    typedef std::integral_constant<int, 1 - decltype(set)::value> Other;
    ganc_mma::cp_async_wait<1>();
    __syncthreads();
    if (it + 2 < nk) issue((it + 2) % S, set);
    ganc_mma::cp_async_commit();
    tile_g128(sm, it % S, warp, lane, acc);
    if (it + 1 < nk) stash((it + 1) % S, Other());
  };
  run_slices(nk, issue, stash, step);
  store_g128<Role>(a, t, warp, lane, acc);
}

// ---- warpgroup MMA (sm_90a): g128's roles, rows and tiles, products on wgmma --------------------
// The same 128x128 block, 32-deep slices and 8-channel rows as conv_g128_pipe_kernel (the roles'
// begin / rows / place / at are shared), but the products are wgmma.mma_async m64n128k16: each
// warpgroup (threads 0-127, 128-255) multiplies its 64 rows of the tile by all 128 columns
// straight from shared memory, 2 instructions per slice instead of a warp's 32 mma.sync and 12
// ldmatrix; the accumulators (64 floats a thread) stay in registers from slice to slice.
// Shared memory holds each stage's operands in the ISA's canonical layouts (kernels/mma.cuh's
// wgmma_desc; tests/gpu/cudemu/cudemu.cc writes them out), as each role stores them:
//   K-major (forward's and backward-data's A [m][k], backward-data's B [n][k]): 64-byte rows of a
//     slice's 32 k, 64-byte swizzle: chunk (row, kc) at (row%8)·64 + (row/8)·512 + kc·16, SBO
//     512; k-step s starts 32·s bytes in, warpgroup w's rows 4096·w;
//   MN-major (backward-weight's A [k][m], forward's and backward-weight's B [k][n]): 128-byte
//     swizzle, atoms of 8 k x 64 m (or n): chunk (k, c) at (k/8)·2048 + (c/8)·1024 + (k%8)·128 +
//     (c%8)·16, LBO 1024 (the next 64 columns), SBO 2048 (the next 8 k); k-step s at 4096·s,
//     warpgroup w's rows 1024·w;
// then the swizzle XORs byte-offset bits 7.. into bits 4.. from a 1024-byte aligned base (the
// chunks a 16-byte store or cp.async writes stay whole). A stage is 16 KB (A, then B), four
// stages (65 KB with the alignment). The pipeline is conv_g128_pipe_kernel's (operands in bf16
// by cp.async where ASYNC, FP32 ones through two register sets, slice it + 2 fetched while slice
// it is multiplied) with one more stage, because wgmma reads its stage asynchronously: the
// products of slice it are waited for (wait_group 1) only after slice it + 1's are issued, so
// stage it % 4 is refilled at slice it + 4's fetch, after step it + 2's barrier. Every thread
// runs fence.proxy.async after its copies landed and its stores, before the barrier that hands
// the stage to wgmma (which reads through the async proxy). Results: FP32 sums of exact bf16
// products in the tensor cores' order, fixed for a GPU (deterministic); the epilogue is g128's.
constexpr int WG_STAGES = 4;
constexpr uint32_t WG_STAGE_BYTES = 2 * GM * GK * 2;          // A and B, 8 KB each
constexpr size_t WG_SMEM = WG_STAGES * WG_STAGE_BYTES + 1024; // + the 1024-byte alignment

// Byte offset of a row of 8 (p: the role's stored row and first column) in a stage's operand.
template <bool K_MAJOR> __host__ __device__ __forceinline__ uint32_t wg_offset(TilePos p) {
  uint32_t o;
  if (K_MAJOR) { // row = m or n, col = k (0..31)
    o = (uint32_t)((p.row % 8) * 64 + (p.row / 8) * 512 + (p.col / 8) * 16);
    return o ^ (((o >> 7) & 3u) << 4);
  }
  const int c = p.col / 8; // row = k, col = m or n (0..127)
  o = (uint32_t)((p.row / 8) * 2048 + (c / 8) * 1024 + (p.row % 8) * 128 + (c % 8) * 16);
  return o ^ (((o >> 7) & 7u) << 4);
}

template <class Role, bool ASYNC>
__global__ void __launch_bounds__(THREADS, 1) conv_wg_kernel(const typename Role::Args a) {
  constexpr int S = WG_STAGES;
  typedef typename Role::template Tiles<2> Orient; // how the role stores A and B
  constexpr bool A_K = !Orient::A_KM, B_K = Orient::B_NK;
  unsigned char *const raw = static_cast<unsigned char *>(ganc_mma::dynamic_shared());
  unsigned char *const sm = raw + ((1024u - (ganc_mma::smem_addr(raw) & 1023u)) & 1023u);
  const uint32_t sbase = ganc_mma::smem_addr(sm);
  typename Role::Thread t;
  const int tid = threadIdx.x, wg = tid / 128, lane = tid % 32;
  // Not zeroed: the first k-step of slice 0 ignores them (scale-d 0), and a zero fill here would
  // be a non-wgmma definition of accumulators that ptxas answers by serializing every wgmma.
  float acc[64];
  uint32_t rr[2][2][2][4]; // [slice & 1][A, B][i]: the register rows of two slices
  const int nk = Role::begin(a, blockIdx.x, blockIdx.y, blockIdx.z, tid, t);
  auto slots = [&](int buf) { // where this thread's rows go in stage buf
    return [&, buf](int op, int i) {
      const TilePos p = Role::place(op, i, tid);
      const uint32_t o = op == 0 ? wg_offset<A_K>(p) : wg_offset<B_K>(p) + WG_STAGE_BYTES / 2;
      return reinterpret_cast<uint16_t *>(sm + (uint32_t)buf * WG_STAGE_BYTES + o);
    };
  };
  auto issue = [&](int buf, auto set) {
    issue_rows<Role, ASYNC>(a, tid, t, rr[decltype(set)::value], slots(buf));
  };
  auto stash = [&](int buf, auto set) {
    stash_rows<Role, ASYNC>(rr[decltype(set)::value], slots(buf));
  };
  // The two k16 steps of the slice in stage buf, for this warpgroup's 64 rows.
  auto product = [&](int buf, bool first) {
    const uint32_t st = sbase + (uint32_t)buf * WG_STAGE_BYTES, sb = st + WG_STAGE_BYTES / 2;
#pragma unroll
    for (int s = 0; s < GK / 16; s++) {
      const uint64_t da = A_K ? ganc_mma::wgmma_desc(st + 4096u * wg + 32u * s, 16, 512, 64)
                              : ganc_mma::wgmma_desc(st + 1024u * wg + 4096u * s, 1024, 2048, 128);
      const uint64_t db = B_K ? ganc_mma::wgmma_desc(sb + 32u * s, 16, 512, 64)
                              : ganc_mma::wgmma_desc(sb + 4096u * s, 1024, 2048, 128);
      ganc_mma::wgmma_bf16_ss<A_K ? 0 : 1, B_K ? 0 : 1>(acc, da, db, !(first && s == 0));
    }
  };
  auto step = [&](int it, auto set) {
    typedef std::integral_constant<int, 1 - decltype(set)::value> Other;
    ganc_mma::cp_async_wait<1>();
    ganc_mma::fence_proxy_async(); // slice it's copies and stores, for wgmma's async proxy
    __syncthreads();
    if (it + 2 < nk) issue((it + 2) % S, set);
    ganc_mma::cp_async_commit();
    ganc_mma::wgmma_fence_operand(acc);
    ganc_mma::wgmma_fence();
    product(it % S, it == 0);
    ganc_mma::wgmma_commit();
    ganc_mma::wgmma_wait<1>(); // slice it − 1's products done: its stage is free after the barrier
    ganc_mma::wgmma_fence_operand(acc);
    if (it + 1 < nk) stash((it + 1) % S, Other());
  };
  run_slices(nk, issue, stash, step);
  ganc_mma::wgmma_wait<0>();
  ganc_mma::wgmma_fence_operand(acc);
  if (nk <= 0) // no slice, no product: the GEMM's sum is empty
#pragma unroll
    for (int i = 0; i < 64; i++)
      acc[i] = 0.0f;
  double *const bnp = Role::stats(a);
  if (!bnp) {
    store_tiles<Role, 1, 16>(a, t.m0 + 64 * wg + 16 * ((tid % 128) / 32), t.n0, lane, acc);
    return;
  }
  // Batch-norm slot sums: each warp's 16 rows into shared memory (the stages are free once every
  // warpgroup's products are done: the barrier), then thread c of each warpgroup adds its four
  // warps' sums of column c in warp order into its 64-row slot — g128's slots.
  double *const ss = reinterpret_cast<double *>(sm); // [warp][Σ v, Σ v²][128], 16 KB
  __syncthreads();
  store_tiles<Role, 1, 16>(a, t.m0 + 64 * wg + 16 * ((tid % 128) / 32), t.n0, lane, acc,
                           ss + (tid / 32) * 2 * GN);
  __syncthreads();
  const int c = tid % 128, C = Role::channels(a);
  double x = 0.0, x2 = 0.0;
#pragma unroll
  for (int w = 0; w < 4; w++) {
    x += ss[(4 * wg + w) * 2 * GN + c];
    x2 += ss[(4 * wg + w) * 2 * GN + GN + c];
  }
  const int64_t slot = (int64_t)blockIdx.z * (2 * gridDim.x) + (t.m0 + 64 * wg) / 64;
  if (t.n0 + c < C) {
    bnp[2 * slot * C + t.n0 + c] = x;
    bnp[(2 * slot + 1) * C + t.n0 + c] = x2;
  }
}

static __global__ void wgrad_reduce_kernel(const float *part, int nparts, int64_t n, float *dw) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    wgrad_reduce_one(part, nparts, n, i, dw);
}
// The split reductions' grid: grid-stride beyond 65,536 blocks.
constexpr int REDUCE_THREADS = 256;
static int reduce_blocks(int64_t n) {
  const int64_t b = (n + REDUCE_THREADS - 1) / REDUCE_THREADS;
  return (int)(b < 65536 ? b : 65536);
}
// A split forward's output (FwdG with part): y[i] = ((part[0][i] + part[1][i]) + ...) in split
// order, then the epilogue and the store as the unsplit kernel's (store_out: the op, bf16 or FP32).
static __global__ void fwd_reduce_kernel(const float *part, int splits, int64_t n, float *y,
                                         uint16_t *yh, const ganc_conv_epi ep) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    float v = part[i];
    for (int z = 1; z < splits; z++)
      v += part[(int64_t)z * n + i];
    store_out(y, yh, ep, i, v);
  }
}

// ---- thin outputs: no tiles ----------------------------------------------------------------
// The tile kernels give every output channel a tile column and every output pixel a tile row, so a
// layer with a handful of output channels computes 61 of 64 columns for nothing (DCGAN's RGB
// layers: G's last forward, D's first backward-data), and a layer with a handful of output pixels
// runs its whole reduction in one or two blocks (D's 4x4 → 1x1 head: 128 rows of 8,192). On the
// H200 those took 0.16–0.59 ms each where their work is a few microseconds' (docs/PERF.md,
// 2026-12-04). The thin variants compute each output from its own taps alone, the operands as the
// bf16 variants take them (activations stored in bf16 as they are, FP32 ones and the weights
// rounded as mma's cvt.rn does; products exact in FP32, sums in FP32 in a fixed order):
//   forward, K <= THIN_MAX: a warp per output pixel, its lanes splitting the reduction over
//     (r, s, c) — consecutive c on consecutive lanes, coalesced — then a butterfly per channel;
//   backward-data, C <= THIN_MAX: a thread per input pixel and group of THIN_MAX channels, over
//     the taps that reach an output pixel only (r ≡ h + pad mod stride), so no zero taps either.
//     (Until 2026-12-04 also any C under a 1x1 output, for G b0: 0.6 ms in FP32 on the H200, its
//     lanes' weights a line apart each. The dispatch now runs such shapes as dense layers:
//     dense_view.)
constexpr int THIN_MAX = 8, THIN_THREADS = 128;
// An operand of the products in precision PREC: FP32 as it is, or rounded as the CPU twin and the
// tensor-core variants round it (TF32, BF16); an activation stored in bf16 as it is.
template <int PREC> __device__ __forceinline__ float thin_op(float v) {
  return PREC == PREC_BF16 ? ganc_round_bf16(v) : PREC == PREC_TF32 ? ganc_round_tf32(v) : v;
}
template <int PREC> __device__ __forceinline__ float thin_op(uint16_t h) {
  return ganc_bf16_load(h);
}
// Weight i as a product operand: its half where the caller has them (the same bits), else rounded.
template <int PREC>
__device__ __forceinline__ float thin_w(const float *w, const uint16_t *wh, int64_t i) {
  return wh ? ganc_bf16_load(wh[i]) : thin_op<PREC>(w[i]);
}
static bool thin_fits(ganc_conv_role role, const conv_shape *s) {
  if (role == GANC_CONV_FWD) return s->K <= THIN_MAX;
  return role == GANC_CONV_BWD_DATA && s->C <= THIN_MAX;
}

// TPP threads per output pixel: one where the reduction is short (an RGB layer's 3x3 or 4x4 taps
// over a few dozen channels: no lanes idle, no shuffles) or the pixels alone fill the GPU, a warp
// where there are pixels enough to fill it with warps, the whole block (4 warps, then shared
// memory) where there are few (the head's 128), so that each thread's loads — 4 in flight per
// round — are fewer than the reduction's 8,192 / 32.
constexpr int THIN_WARP_PIXELS = 4096, THIN_THREAD_PIXELS = 65536, THIN_THREAD_REDUCTION = 256;
template <class TA, int TPP, int PREC>
static __global__ void __launch_bounds__(THIN_THREADS)
    conv_thin_fwd_kernel(const typename FwdT<TA>::Args a, const uint16_t *wh) {
  static_assert(TPP == 1 || TPP == 32 || TPP == THIN_THREADS, "a thread, a warp or the block");
  __shared__ float red[THIN_THREADS / 32][THIN_MAX];
  const Geom &g = a.g;
  const int tid = threadIdx.x, lane = tid % 32, i = tid % TPP;
  const int m = blockIdx.x * (THIN_THREADS / TPP) + tid / TPP;
  if (m >= a.M) return; // a thread, a whole warp (TPP = 32); with the block per pixel, none
  int64_t xn;
  int h0, w0;
  fwd_row(g, a.M, m, xn, h0, w0);
  float acc[THIN_MAX];
#pragma unroll
  for (int k = 0; k < THIN_MAX; k++)
    acc[k] = 0.0f;
  Digits d = digits_of(i, g.S, g.C);
  const Step by = make_step(TPP, g.S, g.C);
  for (int j = i; j < a.Kd;) {
    float xv[4];
    int64_t wi[4];
    bool ok[4];
#pragma unroll
    for (int u = 0; u < 4; u++) { // the loads of 4 reduction elements first, then their products
      const int h = h0 + d.hi, w = w0 + d.mid;
      ok[u] = j < a.Kd && (unsigned)h < (unsigned)g.H && (unsigned)w < (unsigned)g.W;
      xv[u] = ok[u] ? thin_op<PREC>(a.x[xn + ((int64_t)h * g.W + w) * g.C + d.lo]) : 0.0f;
      wi[u] = (int64_t)j * g.K; // w [R, S, C, K]: row j = (r·S + s)·C + c
      j += TPP;
      digits_add(d, by);
    }
#pragma unroll
    for (int u = 0; u < 4; u++)
#pragma unroll
      for (int k = 0; k < THIN_MAX; k++)
        if (ok[u] && k < g.K) acc[k] = fmaf(xv[u], thin_w<PREC>(a.w, wh, wi[u] + k), acc[k]);
  }
  if constexpr (TPP == 1) {
#pragma unroll
    for (int k = 0; k < THIN_MAX; k++)
      if (k < g.K) FwdT<TA>::put(a, 0, m, k, acc[k]);
  } else {
#pragma unroll
    for (int k = 0; k < THIN_MAX; k++) {
      if (k >= g.K) break; // the same for the whole warp
#pragma unroll
      for (int o = 16; o > 0; o >>= 1)
        acc[k] += __shfl_xor_sync(0xffffffffu, acc[k], o);
    }
    if constexpr (TPP == THIN_THREADS) { // the block's 4 warp sums, added in warp order by warp 0
      if (lane == 0) {
#pragma unroll
        for (int k = 0; k < THIN_MAX; k++)
          red[tid / 32][k] = acc[k];
      }
      __syncthreads();
      if (tid >= 32) return;
#pragma unroll
      for (int k = 0; k < THIN_MAX; k++) {
        acc[k] = red[0][k];
#pragma unroll
        for (int q = 1; q < THIN_THREADS / 32; q++)
          acc[k] += red[q][k];
      }
    }
    // lane k stores channel k (a constant index: no local memory)
#pragma unroll
    for (int k = 0; k < THIN_MAX; k++)
      if (lane == k && k < g.K) FwdT<TA>::put(a, 0, m, k, acc[k]);
  }
}

template <class TA, int PREC>
static __global__ void __launch_bounds__(THIN_THREADS)
    conv_thin_bwd_data_kernel(const typename BwdDataT<TA>::Args a, const uint16_t *wh) {
  const Geom &g = a.g;
  const int groups = (g.C + THIN_MAX - 1) / THIN_MAX;
  const int64_t t = (int64_t)blockIdx.x * THIN_THREADS + threadIdx.x;
  if (t >= (int64_t)a.M * groups) return;
  const int m = (int)(t / groups), c0 = (int)(t - (int64_t)m * groups) * THIN_MAX;
  const int HW = g.H * g.W;
  const int n = m / HW, hw = m - n * HW, h = hw / g.W, w = hw - h * g.W;
  const int64_t dyn = (int64_t)n * g.P * g.Q * g.K;
  float acc[THIN_MAX];
#pragma unroll
  for (int j = 0; j < THIN_MAX; j++)
    acc[j] = 0.0f;
  // Tap r reaches output row p = (h + pad − r) / stride where that is exact and 0 <= p < P.
  for (int r = (h + g.pad) % g.stride; r < g.R; r += g.stride) {
    const int p = (h + g.pad - r) / g.stride;
    if (h + g.pad - r < 0) break; // r only grows
    if (p >= g.P) continue;
    for (int s = (w + g.pad) % g.stride; s < g.S; s += g.stride) {
      const int q = (w + g.pad - s) / g.stride;
      if (w + g.pad - s < 0) break;
      if (q >= g.Q) continue;
      const TA *dyp = a.dy + dyn + ((int64_t)p * g.Q + q) * g.K;
      const int64_t wrow = ((int64_t)(r * g.S + s) * g.C + c0) * g.K; // w [r, s, c0, 0]
      for (int k = 0; k < g.K; k++) { // (unrolled, 8 channels' weights in flight spill: ptxas)
        const float dv = thin_op<PREC>(dyp[k]);
#pragma unroll
        for (int j = 0; j < THIN_MAX; j++)
          if (c0 + j < g.C)
            acc[j] = fmaf(dv, thin_w<PREC>(a.w, wh, wrow + (int64_t)j * g.K + k), acc[j]);
      }
    }
  }
#pragma unroll
  for (int j = 0; j < THIN_MAX; j++)
    if (c0 + j < g.C) BwdDataT<TA>::put(a, 0, m, c0 + j, acc[j]);
}

// The same sums from shared memory, for thin outputs (C <= THIN_MAX) whose dy rows fit there. The
// kernel above reads dy through L1 as each thread needs it: a warp's load of one k touches 16–32
// dy pixels 2·K bytes apart, a line each, and all 8 weights are separate loads — 0.46 ms for
// DCGAN64's RGB layers on the H200 (docs/PERF.md), where the sums are 0.8 GFLOP. Here a block
// takes `th` input rows of one image: it first copies, coalesced and converted to the product
// operands, the dy rows those input rows reach (all Q columns) and every weight, then each thread
// sums its pixels from shared memory, 4 k at a time (float4: one load for 4 products). The rows
// are padded by 4 floats so that the lanes' different dy pixels and taps fall in different banks.
// Products and their order (r, s, then k ascending) are the kernel above's: the same bits.
struct ThinTile {
  int th;    // input rows per block
  int rows;  // the most dy rows a block reaches
  int bytes; // dynamic shared memory per block
};
constexpr int THIN_PAD = 4, THIN_TILE_MAX_BYTES = 48 * 1024, THIN_TILE_PIXELS = 512;
static int thin_tile_rows(const Geom &g, int th) { return (th - 1 + g.R - 1) / g.stride + 1; }
static int64_t thin_tile_bytes(const Geom &g, int th) {
  return 4 * ((int64_t)thin_tile_rows(g, th) * g.Q * (g.K + THIN_PAD) +
              (int64_t)g.R * g.S * (g.C * g.K + THIN_PAD));
}
// The tile for this shape: the most input rows (at most THIN_TILE_PIXELS pixels) whose dy rows
// and weights fit in THIN_TILE_MAX_BYTES; th = 0 where none does, or where k cannot go 4 at a
// time (K not a multiple of 4): then the kernel above.
static ThinTile thin_tile(const Geom &g) {
  ThinTile t = {0, 0, 0};
  if (g.C > THIN_MAX || g.K % 4) return t;
  for (int th = 8; th >= 1; th /= 2) {
    if (th > 1 && ((int64_t)th * g.W > THIN_TILE_PIXELS || th > g.H)) continue;
    const int64_t bytes = thin_tile_bytes(g, th);
    if (bytes <= THIN_TILE_MAX_BYTES) return ThinTile{th, thin_tile_rows(g, th), (int)bytes};
  }
  return t;
}
template <class TA, int PREC> __device__ __forceinline__ void thin_load4(const TA *p, float *o) {
  if constexpr (std::is_same<TA, float>::value) {
    const float4 v = *reinterpret_cast<const float4 *>(p);
    o[0] = thin_op<PREC>(v.x), o[1] = thin_op<PREC>(v.y), o[2] = thin_op<PREC>(v.z);
    o[3] = thin_op<PREC>(v.w);
  } else {
    const uint2 v =
        *reinterpret_cast<const uint2 *>(p); // stored halves: BF16's operands as they are
    ganc_bf16x2_load(v.x, o), ganc_bf16x2_load(v.y, o + 2);
  }
}

// grid (ceil(H / th), N), THIN_THREADS threads, t.bytes of dynamic shared memory.
template <class TA, int PREC>
static __global__ void __launch_bounds__(THIN_THREADS)
    conv_thin_bwd_data_tiled_kernel(const typename BwdDataT<TA>::Args a, const uint16_t *wh,
                                    const ThinTile t) {
  const Geom &g = a.g;
  float *ws = static_cast<float *>(ganc_mma::dynamic_shared()); // [R·S][C·K + pad]
  const int wrow = g.C * g.K + THIN_PAD, drow = g.K + THIN_PAD;
  float *ds = ws + g.R * g.S * wrow; // [rows][Q][K + pad]
  const int n = blockIdx.y, h0 = blockIdx.x * t.th;
  const int h1 = h0 + t.th < g.H ? h0 + t.th : g.H;
  // The dy rows [p0, p1] that rows [h0, h1) reach: p = (h + pad − r) / stride for some r < R.
  const int lo = h0 + g.pad - (g.R - 1), hi = h1 - 1 + g.pad;
  const int p0 = lo <= 0 ? 0 : (lo + g.stride - 1) / g.stride;
  const int p1 = hi / g.stride < g.P - 1 ? hi / g.stride : g.P - 1;
  const int nrows = p1 - p0 + 1; // at most t.rows; may be 0 or less (no taps: zeros)
  const int K4 = g.K / 4;
  for (int e = threadIdx.x; e < g.R * g.S * g.C * K4; e += THIN_THREADS) {
    const int rsc = e / K4, k = (e - rsc * K4) * 4, rs = rsc / g.C, c = rsc - rs * g.C;
    const int64_t src = (int64_t)rsc * g.K + k; // w [r, s, c, k]
#pragma unroll
    for (int u = 0; u < 4; u++)
      ws[rs * wrow + c * g.K + k + u] = thin_w<PREC>(a.w, wh, src + u);
  }
  if (nrows > 0) {
    const TA *dyb = a.dy + ((int64_t)n * g.P + p0) * g.Q * g.K; // rows p0.. are contiguous
    for (int e = threadIdx.x; e < nrows * g.Q * K4; e += THIN_THREADS) {
      const int pq = e / K4, k = (e - pq * K4) * 4;
      thin_load4<TA, PREC>(dyb + (int64_t)pq * g.K + k, ds + pq * drow + k);
    }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < (h1 - h0) * g.W; i += THIN_THREADS) {
    const int h = h0 + i / g.W, w = i % g.W;
    float acc[THIN_MAX];
#pragma unroll
    for (int j = 0; j < THIN_MAX; j++)
      acc[j] = 0.0f;
    for (int r = (h + g.pad) % g.stride; r < g.R; r += g.stride) {
      if (h + g.pad - r < 0) break; // r only grows
      const int p = (h + g.pad - r) / g.stride;
      if (p >= g.P) continue;
      for (int s = (w + g.pad) % g.stride; s < g.S; s += g.stride) {
        if (w + g.pad - s < 0) break;
        const int q = (w + g.pad - s) / g.stride;
        if (q >= g.Q) continue;
        const float *dp = ds + ((p - p0) * g.Q + q) * drow;
        const float *wp = ws + (r * g.S + s) * wrow;
        for (int k = 0; k < g.K; k += 4) {
          const float4 d = *reinterpret_cast<const float4 *>(dp + k);
#pragma unroll
          for (int j = 0; j < THIN_MAX; j++)
            if (j < g.C) {
              const float4 v = *reinterpret_cast<const float4 *>(wp + j * g.K + k);
              acc[j] = fmaf(d.x, v.x, acc[j]);
              acc[j] = fmaf(d.y, v.y, acc[j]);
              acc[j] = fmaf(d.z, v.z, acc[j]);
              acc[j] = fmaf(d.w, v.w, acc[j]);
            }
        }
      }
    }
    const int m = (n * g.H + h) * g.W + w;
#pragma unroll
    for (int j = 0; j < THIN_MAX; j++)
      if (j < g.C) BwdDataT<TA>::put(a, 0, m, j, acc[j]);
  }
}
// The thin kernels' launches in precision PREC (thin_by_prec below picks it).
// The thin kernels in the variant's precision: activations stored in bf16 are BF16's alone.
template <class TA, int PREC>
static void launch_thin_fwd(const typename FwdT<TA>::Args &a, const uint16_t *wh, cudaStream_t st) {
  if (a.Kd <= THIN_THREAD_REDUCTION || a.M >= THIN_THREAD_PIXELS) {
    const int64_t blocks = ((int64_t)a.M + THIN_THREADS - 1) / THIN_THREADS;
    GANC_LAUNCH((conv_thin_fwd_kernel<TA, 1, PREC>), (unsigned)blocks, THIN_THREADS, st)(a, wh);
  } else if (a.M < THIN_WARP_PIXELS) {
    GANC_LAUNCH((conv_thin_fwd_kernel<TA, THIN_THREADS, PREC>), (unsigned)a.M, THIN_THREADS, st)
    (a, wh);
  } else {
    const int64_t blocks = ((int64_t)a.M + THIN_THREADS / 32 - 1) / (THIN_THREADS / 32);
    GANC_LAUNCH((conv_thin_fwd_kernel<TA, 32, PREC>), (unsigned)blocks, THIN_THREADS, st)(a, wh);
  }
  CUDA_CHECK_LAUNCH();
}
template <class TA, int PREC>
static void launch_thin_bwd_data(const typename BwdDataT<TA>::Args &a, const uint16_t *wh,
                                 cudaStream_t st) {
  // The tiled kernel where a tile fits, the batch fits gridDim.y and dy's vector loads are aligned.
  const ThinTile t = thin_tile(a.g);
  const int N = a.M / (a.g.H * a.g.W);
  if (t.th && N <= 65535 && (uintptr_t)a.dy % 16 == 0) {
    const dim3 grid((unsigned)((a.g.H + t.th - 1) / t.th), (unsigned)N);
    GANC_LAUNCH_SMEM((conv_thin_bwd_data_tiled_kernel<TA, PREC>), grid, THIN_THREADS, t.bytes, st)
    (a, wh, t);
    CUDA_CHECK_LAUNCH();
    return;
  }
  const int64_t n = (int64_t)a.M * ((a.g.C + THIN_MAX - 1) / THIN_MAX);
  const int64_t blocks = (n + THIN_THREADS - 1) / THIN_THREADS;
  KERNEL_REQUIRE(blocks <= INT_MAX, "conv2d_backward_data_cuda", "%lld threads", (long long)n);
  GANC_LAUNCH((conv_thin_bwd_data_kernel<TA, PREC>), (unsigned)blocks, THIN_THREADS, st)(a, wh);
  CUDA_CHECK_LAUNCH();
}
// f(std::integral_constant<int, PREC>) for the variant's precision `prec`: activations stored in
// bf16 (TA = uint16_t) are BF16's alone.
template <class TA, class F> static void thin_by_prec(int prec, F f) {
  if constexpr (std::is_same<TA, float>::value) {
    if (prec == PREC_FP32) return f(std::integral_constant<int, PREC_FP32>());
    if (prec == PREC_TF32) return f(std::integral_constant<int, PREC_TF32>());
  }
  f(std::integral_constant<int, PREC_BF16>());
}

// ---- the variant table ------------------------------------------------------------------------
// One row per implementation (kernels.h says what the fields mean); `prec` and `wr` pick the
// kernel template. A new variant is one kernel and one row here.
namespace {
struct VariantRow {
  ganc_conv_variant v;
  int prec;  // PREC_*: which product step
  int wr;    // the tensor-core kernels' warp rows (0 for the FP32 kernel)
  int tiles; // TILES_*: how the slices reach shared memory
  int phase; // 1: backward_data by sub-pixel phases (BwdDataPhase), stride 2..4 only
  int pipe;  // TILES_G128: 1 conv_g128_pipe_kernel, 0 conv_g128_kernel
  int wg;    // TILES_G128 with pipe: 1 conv_wg_kernel (wgmma; sm_90a code: compute capability 9.0
             // alone)
  int split; // TILES_G128 forward: 1 split over the reduction by fwd_plan (only where it splits)
  int thin;  // TILES_THIN: conv_thin_*_kernel, only where thin_fits
};
// clang-format off
constexpr unsigned ALL = 7, BWD_DATA_ONLY = 1u << GANC_CONV_BWD_DATA,
                   G128_ROLES = 1u << GANC_CONV_FWD | 1u << GANC_CONV_BWD_WEIGHT,
                   FWD_ONLY = 1u << GANC_CONV_FWD;
const VariantRow VARIANTS[] = {
  // First: FP32 takes the first variant that fits a shape (a fixed rule), and thin-fp32 is the one
  // for its thin shapes (ten times faster there on the H200, docs/PERF.md).
  {{"thin-fp32", GANC_PREC_FP32, 0, 1, 0x1p-24, FWD_ONLY | BWD_DATA_ONLY, 1, 1 << 30,
    "no tiles, for outputs of at most 8 channels, as thin-bf16, FP32 FMA", 1},
   PREC_FP32, 0, TILES_THIN, 0, 0, 0, 0, 1},
  {{"simt-fp32-phase", GANC_PREC_FP32, 0, 1, 0x1p-24, BWD_DATA_ONLY, 2, PHASE_MAX_STRIDE,
    "backward-data by sub-pixel phases (no zero taps), FP32 FMA as simt-fp32", 1},
   PREC_FP32, 0, TILES_F32, 1, 0, 0, 0, 0},
  {{"simt-fp32", GANC_PREC_FP32, 0, 1, 0x1p-24, ALL, 1, 1 << 30,
    "FP32 FMA implicit GEMM, 64x64 tiles, 4x4 outputs per thread", 1}, PREC_FP32, 0, TILES_F32, 0, 0, 0, 0, 0},
  {{"simt-fp32-cp3", GANC_PREC_FP32, 80, 1, 0x1p-24, ALL, 1, 1 << 30,
    "as simt-fp32, slices by cp.async 3 deep", 1}, PREC_FP32, 0, TILES_CP, 0, 0, 0, 0, 0},
  {{"mma-tf32", GANC_PREC_TF32, 80, 1, 0x1p-11, ALL, 1, 1 << 30,
    "TF32 mma.sync m16n8k8, 64x64 tiles, 2x4 warps of 32x16", 1}, PREC_TF32, 2, TILES_F32, 0, 0, 0, 0, 0},
  {{"mma-tf32-cp3", GANC_PREC_TF32, 80, 1, 0x1p-11, ALL, 1, 1 << 30,
    "as mma-tf32, slices by cp.async 3 deep", 1}, PREC_TF32, 2, TILES_CP, 0, 0, 0, 0, 0},
  {{"mma-tf32-w4x2", GANC_PREC_TF32, 80, 1, 0x1p-11, ALL, 1, 1 << 30,
    "TF32 mma.sync m16n8k8, 64x64 tiles, 4x2 warps of 16x32", 1}, PREC_TF32, 4, TILES_F32, 0, 0, 0, 0, 0},
  {{"mma-tf32-phase", GANC_PREC_TF32, 80, 1, 0x1p-11, BWD_DATA_ONLY, 2, PHASE_MAX_STRIDE,
    "backward-data by sub-pixel phases, as mma-tf32", 1}, PREC_TF32, 2, TILES_F32, 1, 0, 0, 0, 0},
  {{"mma-bf16", GANC_PREC_BF16, 80, 1, 0x1p-8, ALL, 1, 1 << 30,
    "BF16 mma.sync m16n8k16, 64x64 tiles, 2x4 warps of 32x16", 1}, PREC_BF16, 2, TILES_F32, 0, 0, 0, 0, 0},
  {{"mma-bf16-cp3", GANC_PREC_BF16, 80, 1, 0x1p-8, ALL, 1, 1 << 30,
    "as mma-bf16, slices by cp.async 3 deep", 1}, PREC_BF16, 2, TILES_CP, 0, 0, 0, 0, 0},
  {{"mma-bf16-w4x2", GANC_PREC_BF16, 80, 1, 0x1p-8, ALL, 1, 1 << 30,
    "BF16 mma.sync m16n8k16, 64x64 tiles, 4x2 warps of 16x32", 1}, PREC_BF16, 4, TILES_F32, 0, 0, 0, 0, 0},
  {{"mma-bf16-ldm", GANC_PREC_BF16, 80, 1, 0x1p-8, ALL, 1, 1 << 30,
    "BF16 mma.sync m16n8k16, bf16 tiles in shared memory, fragments by ldmatrix.trans, 2x4 "
    "warps of 32x16", 1}, PREC_BF16, 2, TILES_BF16, 0, 0, 0, 0, 0},
  {{"mma-bf16-phase", GANC_PREC_BF16, 80, 1, 0x1p-8, BWD_DATA_ONLY, 2, PHASE_MAX_STRIDE,
    "backward-data by sub-pixel phases, as mma-bf16", 1}, PREC_BF16, 2, TILES_F32, 1, 0, 0, 0, 0},
  {{"mma-bf16-g128", GANC_PREC_BF16, 80, 1, 0x1p-8, G128_ROLES, 1, 1 << 30,
    "BF16 mma.sync m16n8k16, 128x128x32 tiles, 8-channel rows, ldmatrix on both operands, "
    "2x4 warps of 64x32 (forward, backward-weight; C, K multiples of 8)", 8},
   PREC_BF16, 2, TILES_G128, 0, 0, 0, 0, 0},
  {{"mma-bf16-g128-phase", GANC_PREC_BF16, 80, 1, 0x1p-8, BWD_DATA_ONLY, 1, PHASE_MAX_STRIDE,
    "backward-data by sub-pixel phases (stride 1: one phase) with mma-bf16-g128's tiles and "
    "rows (C, K multiples of 8)", 8},
   PREC_BF16, 2, TILES_G128, 1, 0, 0, 0, 0},
  {{"mma-bf16-g128-cp3", GANC_PREC_BF16, 80, 1, 0x1p-8, G128_ROLES, 1, 1 << 30,
    "as mma-bf16-g128, 3 slices deep in 52-56 KB of dynamic shared memory: activations stored in "
    "bf16 by 16-byte cp.async, FP32 operands through registers", 8},
   PREC_BF16, 2, TILES_G128, 0, 1, 0, 0, 0},
  {{"mma-bf16-g128-cp3-phase", GANC_PREC_BF16, 80, 1, 0x1p-8, BWD_DATA_ONLY, 1, PHASE_MAX_STRIDE,
    "backward-data as mma-bf16-g128-phase, 3 slices deep as mma-bf16-g128-cp3 (60 KB)", 8},
   PREC_BF16, 2, TILES_G128, 1, 1, 0, 0, 0},
  {{"wgmma-bf16-g128", GANC_PREC_BF16, 90, 1, 0x1p-8, G128_ROLES, 1, 1 << 30,
    "BF16 wgmma.mma_async m64n128k16 (sm_90a), mma-bf16-g128's tiles and rows, 4 slices deep in "
    "65 KB of swizzled dynamic shared memory, 2 warpgroups of 64x128 (forward, backward-weight; "
    "C, K multiples of 8)", 8},
   PREC_BF16, 2, TILES_G128, 0, 1, 1, 0, 0},
  {{"wgmma-bf16-g128-phase", GANC_PREC_BF16, 90, 1, 0x1p-8, BWD_DATA_ONLY, 1, PHASE_MAX_STRIDE,
    "backward-data by sub-pixel phases as mma-bf16-g128-phase, products as wgmma-bf16-g128", 8},
   PREC_BF16, 2, TILES_G128, 1, 1, 1, 0, 0},
  {{"mma-bf16-g128-cp3-sk", GANC_PREC_BF16, 80, 1, 0x1p-8, FWD_ONLY, 1, 1 << 30,
    "forward as mma-bf16-g128-cp3, split over the reduction where the output has under 65 "
    "tiles (to 128 blocks; partials summed in split order after)", 8},
   PREC_BF16, 2, TILES_G128, 0, 1, 0, 1, 0},
  {{"wgmma-bf16-g128-sk", GANC_PREC_BF16, 90, 1, 0x1p-8, FWD_ONLY, 1, 1 << 30,
    "forward as wgmma-bf16-g128, split over the reduction as mma-bf16-g128-cp3-sk", 8},
   PREC_BF16, 2, TILES_G128, 0, 1, 1, 1, 0},
  {{"thin-bf16", GANC_PREC_BF16, 80, 1, 0x1p-8, FWD_ONLY | BWD_DATA_ONLY, 1, 1 << 30,
    "no tiles, for outputs of at most 8 channels (forward: a warp per output pixel, the reduction "
    "across its lanes; backward-data: a thread per input pixel and 8 channels, over the taps that "
    "reach it; also any C where the output is 1x1); BF16 operands, FP32 FMA", 1},
   PREC_BF16, 0, TILES_THIN, 0, 0, 0, 0, 1},
  {{"thin-tf32", GANC_PREC_TF32, 80, 1, 0x1p-11, FWD_ONLY | BWD_DATA_ONLY, 1, 1 << 30,
    "no tiles, for outputs of at most 8 channels, as thin-bf16, TF32 operands, FP32 FMA", 1},
   PREC_TF32, 0, TILES_THIN, 0, 0, 0, 0, 1},
};
// clang-format on
constexpr int NVARIANTS = (int)(sizeof VARIANTS / sizeof VARIANTS[0]);

const char *const ROLE_NAME[3] = {"fwd", "bwd_data", "bwd_weight"};
const char *const PREC_NAME[3] = {"fp32", "tf32", "bf16"};

// A 64x64-tile bf16 variant on a role whose activation operand is stored in bf16 (Role's TA or
// TB uint16_t: the slices widen it exactly, and the product step rounds it to the same bits): the
// register-staged tiles only — cp.async copies 4-byte elements (mma-bf16-cp3 reads FP32 alone).
template <class Role> void launch_bf16op(int vi, const typename Role::Args &a, cudaStream_t st) {
  const VariantRow &r = VARIANTS[vi];
  KERNEL_REQUIRE(r.prec == PREC_BF16 && (r.tiles == TILES_F32 || r.tiles == TILES_BF16),
                 "launch_bf16op", "variant %s is no register-staged bf16 variant", r.v.name);
  const dim3 grid = Role::grid(a);
  if (r.tiles == TILES_BF16)
    GANC_LAUNCH((conv_mma_kernel<Role, PREC_BF16, 2, TILES_BF16>), grid, THREADS, st)(a);
  else if (r.wr == 2)
    GANC_LAUNCH((conv_mma_kernel<Role, PREC_BF16, 2, TILES_F32>), grid, THREADS, st)(a);
  else
    GANC_LAUNCH((conv_mma_kernel<Role, PREC_BF16, 4, TILES_F32>), grid, THREADS, st)(a);
  CUDA_CHECK_LAUNCH();
}

template <class Role> void launch(int vi, const typename Role::Args &a, cudaStream_t st) {
  const VariantRow &r = VARIANTS[vi];
  const dim3 grid = Role::grid(a);
  // One line per row of the table (its kernel template's arguments).
  if (r.prec == PREC_FP32 && r.tiles == TILES_F32)
    GANC_LAUNCH((conv_igemm_kernel<Role, TILES_F32>), grid, THREADS, st)(a);
  else if (r.prec == PREC_FP32)
    GANC_LAUNCH((conv_igemm_kernel<Role, TILES_CP>), grid, THREADS, st)(a);
  else if (r.prec == PREC_TF32 && r.tiles == TILES_CP)
    GANC_LAUNCH((conv_mma_kernel<Role, PREC_TF32, 2, TILES_CP>), grid, THREADS, st)(a);
  else if (r.prec == PREC_TF32 && r.wr == 2)
    GANC_LAUNCH((conv_mma_kernel<Role, PREC_TF32, 2, TILES_F32>), grid, THREADS, st)(a);
  else if (r.prec == PREC_TF32)
    GANC_LAUNCH((conv_mma_kernel<Role, PREC_TF32, 4, TILES_F32>), grid, THREADS, st)(a);
  else if (r.tiles == TILES_CP)
    GANC_LAUNCH((conv_mma_kernel<Role, PREC_BF16, 2, TILES_CP>), grid, THREADS, st)(a);
  else
    return launch_bf16op<Role>(vi, a, st); // the same kernels as for bf16 operands
  CUDA_CHECK_LAUNCH();
}
// A 128x128-tile variant: conv_g128_kernel, or conv_g128_pipe_kernel in its dynamic shared memory
// (its limit raised past 48 KB once per device by ganc_conv_cuda_init), with its cp.async path
// where an operand is bf16 and both are 16-byte aligned.
template <class R> void launch_g128(int vi, const typename R::Args &a, cudaStream_t st) {
  const dim3 grid = R::grid(a);
  constexpr size_t bytes = sizeof(typename R::template Tiles<G128_PIPE_STAGES>);
  if (!VARIANTS[vi].pipe)
    GANC_LAUNCH(conv_g128_kernel<R>, grid, THREADS, st)(a);
  else if (VARIANTS[vi].wg && R::ANY_BF16 && a.vec)
    GANC_LAUNCH_SMEM((conv_wg_kernel<R, R::ANY_BF16>), grid, THREADS, WG_SMEM, st)(a);
  else if (VARIANTS[vi].wg)
    GANC_LAUNCH_SMEM((conv_wg_kernel<R, false>), grid, THREADS, WG_SMEM, st)(a);
  else if (R::ANY_BF16 && a.vec) // (an FP32-only role has one instantiation: ASYNC false)
    GANC_LAUNCH_SMEM((conv_g128_pipe_kernel<R, R::ANY_BF16>), grid, THREADS, bytes, st)(a);
  else
    GANC_LAUNCH_SMEM((conv_g128_pipe_kernel<R, false>), grid, THREADS, bytes, st)(a);
  CUDA_CHECK_LAUNCH();
}

// The dynamic shared memory conv_g128_pipe_kernel<R, ...> asks for, allowed; false (the error
// cleared) where the device refuses.
template <class R> bool allow_pipe_smem() {
  constexpr int bytes = (int)sizeof(typename R::template Tiles<G128_PIPE_STAGES>);
  auto allow = [](auto kernel) {
    return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes) ==
           cudaSuccess;
  };
  const bool ok =
      allow(conv_g128_pipe_kernel<R, false>) && allow(conv_g128_pipe_kernel<R, R::ANY_BF16>);
  if (!ok) (void)cudaGetLastError();
  return ok;
}
// f(role) for every role instantiation the launchers make (their operand types); true if all are.
template <class F> bool every_role(F f) {
  return f(FwdG<float, float>()) && f(FwdG<uint16_t, float>()) && f(FwdG<uint16_t, uint16_t>()) &&
         f(WgradG<float, float>()) && f(WgradG<uint16_t, float>()) &&
         f(WgradG<float, uint16_t>()) && f(WgradG<uint16_t, uint16_t>()) &&
         f(PhaseG<float, float>()) && f(PhaseG<uint16_t, float>()) &&
         f(PhaseG<uint16_t, uint16_t>());
}
// 1 where the code this device runs has sm_90a's wgmma: a build whose architectures include
// "90a" (CMake's default); a build directory configured for "90" compiled conv_wg_kernel's
// products as traps. Under cudemu the emulator runs them.
__global__ void wg_code_kernel(int *out) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL) || defined(GANC_CUDEMU)
  *out = 1;
#else
  *out = 0;
#endif
}
// The same for conv_wg_kernel<R, ...> (WG_SMEM).
template <class R> bool allow_wg_smem() {
  auto allow = [](auto kernel) {
    return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                (int)WG_SMEM) == cudaSuccess;
  };
  const bool ok = allow(conv_wg_kernel<R, false>) && allow(conv_wg_kernel<R, R::ANY_BF16>);
  if (!ok) (void)cudaGetLastError();
  return ok;
}
} // namespace

// The phase variants: BwdDataPhase with FP32 tiles only.
void launch_phase(int vi, const BwdDataPhase::Args &a, cudaStream_t st) {
  const VariantRow &r = VARIANTS[vi];
  const dim3 grid = BwdDataPhase::grid(a);
  if (r.prec == PREC_FP32)
    GANC_LAUNCH((conv_igemm_kernel<BwdDataPhase, TILES_F32>), grid, THREADS, st)(a);
  else if (r.prec == PREC_TF32)
    GANC_LAUNCH((conv_mma_kernel<BwdDataPhase, PREC_TF32, 2, TILES_F32>), grid, THREADS, st)(a);
  else
    GANC_LAUNCH((conv_mma_kernel<BwdDataPhase, PREC_BF16, 2, TILES_F32>), grid, THREADS, st)(a);
  CUDA_CHECK_LAUNCH();
}

// Once per context, before any launch (and so outside any stream capture): every instantiation
// of conv_g128_pipe_kernel the launchers make (the role launchers' operand types) may take its
// stages' dynamic shared memory. cudemu fails a launch whose kernel is missing here.
// Returns 0, or -1 where the device refuses (then device_runs leaves those variants out; nothing
// else is affected).
extern "C" int ganc_conv_cuda_init(ganc_ctx *ctx) {
  if (ganc_cuda_cc(ctx) < 80) return -1; // no tensor-core variant runs here (device_runs)
  return every_role([](auto role) { return allow_pipe_smem<decltype(role)>(); }) ? 0 : -1;
}

// Once per context (ctx.cu, before any launch): whether the wgmma variants may run here —
// compute capability 9.0 and sm_90a code in this build (wg_code_kernel asked on the device).
extern "C" int ganc_conv_cuda_wg_ok(ganc_ctx *ctx) {
  if (ganc_cuda_cc(ctx) != 90) return 0;
  // Their 65 KB of dynamic shared memory, allowed (as ganc_conv_cuda_init's for the -cp3 twins).
  if (!every_role([](auto role) { return allow_wg_smem<decltype(role)>(); })) return 0;
  int *d = nullptr, h = 0;
  if (cudaMalloc((void **)&d, sizeof(int)) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  cudaStream_t st = ganc_cuda_stream(ctx);
  GANC_LAUNCH(wg_code_kernel, 1, 1, st)(d);
  const bool ok = cudaGetLastError() == cudaSuccess &&
                  cudaMemcpyAsync(&h, d, sizeof(int), cudaMemcpyDeviceToHost, st) == cudaSuccess &&
                  cudaStreamSynchronize(st) == cudaSuccess;
  (void)cudaGetLastError();
  cudaFree(d);
  return ok && h == 1;
}

extern "C" int ganc_conv_variant_count(void) { return NVARIANTS; }
extern "C" int ganc_conv_variant_supports(int v, ganc_conv_role role, const conv_shape *s) {
  if (v < 0 || v >= NVARIANTS || role < 0 || role > 2 || !s) return 0;
  const ganc_conv_variant &x = VARIANTS[v].v;
  return ((x.roles >> role) & 1) && s->stride >= x.min_stride && s->stride <= x.max_stride &&
         (x.chan_multiple <= 1 || (s->C % x.chan_multiple == 0 && s->K % x.chan_multiple == 0)) &&
         (!VARIANTS[v].split || fwd_plan(s).splits > 1) && // a split variant only where it splits
         (!VARIANTS[v].thin || thin_fits(role, s));
}
extern "C" const ganc_conv_variant *ganc_conv_variant_at(int i) {
  return i >= 0 && i < NVARIANTS ? &VARIANTS[i].v : NULL;
}
extern "C" int ganc_conv_variant_find(const char *name) {
  for (int i = 0; name && i < NVARIANTS; i++)
    if (!strcmp(VARIANTS[i].v.name, name)) return i;
  return -1;
}

// ---- launchers ----------------------------------------------------------------------------------

// The shape came from conv_shape_make and was not edited since (the kernels index by it).
static bool shape_ok(const conv_shape *s) {
  conv_shape t;
  return s &&
         conv_shape_make(&t, s->N, s->H, s->W, s->C, s->K, s->R, s->S, s->stride, s->pad) == 0 &&
         t.P == s->P && t.Q == s->Q;
}

// ---- a kernel over its whole input: a dense layer (ops.h: conv_shape_dense) --------------------
// The tile kernels, given such a shape as it is, run every input pixel's backward-data over all
// R·S taps, R·S − 1 of them outside the 1x1 output: G b0's forward took 0.16–0.6 ms on the H200
// (docs/PERF.md, 2026-12-04) where its GEMM is 128 x 8192 x 100. The dispatch (the launchers,
// conv2d_mixed_cuda, conv2d_reads_bf16_cuda) runs such shapes in the view; a variant run by name
// (conv2d_run_variant_*: the tests, the tuner) gets the shape as given.
static bool dense_view(const conv_shape *s, conv_shape *d) { return conv_shape_dense(s, d) != 0; }

static bool dims_ok(int64_t M, int64_t Ncols, int64_t Kd) {
  return M <= DIM_MAX && Ncols <= DIM_MAX && Kd <= DIM_MAX;
}

// The role launchers take the activation operands as float or, for the bf16 variants (g128's own
// tiles, or the 64x64 ones by launch_bf16op), as bf16
// (uint16_t: conv2d_run_variant_mixed_cuda); the weights are FP32 (w), and for g128's family with
// bf16 activations also their halves where the caller has them (wh: the bf16 pairs the kernel
// would round w to, read as they are and by cp.async — the same bits). Forward and
// backward-data write their output in FP32, or in bf16 (yh / dxh not NULL: every variant's
// epilogue rounds as it stores), each value after the epilogue op ep (NULL: none) where asked.
template <class Args> static Args with_halves(Args a, uint16_t *h, const ganc_conv_epi *ep) {
  a.yh = h;
  if (ep) a.ep = *ep;
  return a;
}
template <class Args> static Args with_dx_halves(Args a, uint16_t *h, const ganc_conv_epi *ep) {
  a.dxh = h;
  if (ep) a.ep = *ep;
  return a;
}
// A forward of g128's family: in one pass, or (a split variant) into fwd_plan's partials in the
// context's scratch, then fwd_reduce_kernel stores y (the epilogue, bf16 or FP32).
template <class R>
static void launch_fwd_g128(ganc_ctx *ctx, int v, const conv_shape *s, typename R::Args a,
                            cudaStream_t st) {
  if (!VARIANTS[v].split) return launch_g128<R>(v, a, st);
  const WgradPlan plan = fwd_plan(s);
  KERNEL_REQUIRE(plan.splits > 1, "conv2d_forward_cuda", "variant %s on a shape it does not split",
                 VARIANTS[v].v.name);
  const int64_t n = (int64_t)a.M * a.g.K;
  // The scratch is the context's; ops on one context run one at a time, in stream order.
  a.part = ganc_cuda_scratch(ctx, (size_t)plan.splits * (size_t)n);
  a.chunk = plan.chunk;
  launch_g128<R>(v, a, st);
  GANC_LAUNCH(fwd_reduce_kernel, reduce_blocks(n), REDUCE_THREADS, st)
  (a.part, plan.splits, n, a.y, a.yh, a.ep);
  CUDA_CHECK_LAUNCH();
}

// Batch-norm slot sums (ep->stats) in the epilogue of g128's family (store_tiles) — not a split
// forward's, whose reduction stores y — where the slots fit: the kernel's args point at them and
// stats' nslot is the grid's slots. False: the caller sums them after the kernel.
template <class R> static bool with_stats(typename R::Args &a, const ganc_conv_epi *ep) {
  if (!ep || !ep->stats) return false;
  const dim3 gr = R::grid(a);
  const int64_t nslot = (int64_t)gr.z * gr.x * (GM / 64);
  if (nslot > ep->stats->cap) return false;
  a.bnp = ep->stats->part, a.bnround = ep->stats_round;
  ep->stats->nslot = nslot;
  return true;
}

// Returns whether the kernel summed ep->stats (with_stats).
template <class TA>
static bool run_forward(ganc_ctx *ctx, int v, cudaStream_t st, const conv_shape *s, const TA *x,
                        const float *w, float *y, uint16_t *yh = nullptr,
                        const ganc_conv_epi *ep = nullptr, const uint16_t *wh = nullptr) {
  KERNEL_REQUIRE(shape_ok(s), "conv2d_forward_cuda", "invalid conv_shape (use conv_shape_make)");
  const Fwd::Args a = Fwd::args(s, nullptr, w, y);
  KERNEL_REQUIRE(dims_ok(a.M, s->K, a.Kd), "conv2d_forward_cuda", "GEMM sizes near INT_MAX");
  KERNEL_REQUIRE(Fwd::grid(a).y <= 65535, "conv2d_forward_cuda", "K = %d > 65535·64", s->K);
  if (VARIANTS[v].thin) {
    const typename FwdT<TA>::Args t = with_halves(FwdT<TA>::args(s, x, w, y), yh, ep);
    thin_by_prec<TA>(VARIANTS[v].prec,
                     [&](auto p) { launch_thin_fwd<TA, decltype(p)::value>(t, wh, st); });
    return false;
  }
  if (VARIANTS[v].tiles == TILES_G128) {
    auto go = [&](auto role, auto wp) {
      typedef decltype(role) R;
      typename R::Args g = with_halves(R::args(s, x, wp, y), yh, ep);
      const bool done = !VARIANTS[v].split && with_stats<R>(g, ep);
      launch_fwd_g128<R>(ctx, v, s, g, st);
      return done;
    };
    if constexpr (std::is_same<TA, uint16_t>::value) { // both operands' halves: all by cp.async
      if (wh) return go(FwdG<TA, uint16_t>(), wh);
    }
    return go(FwdG<TA, float>(), w);
  }
  if constexpr (std::is_same<TA, float>::value)
    launch<Fwd>(v, with_halves(Fwd::args(s, x, w, y), yh, ep), st);
  else
    launch_bf16op<FwdT<TA>>(v, with_halves(FwdT<TA>::args(s, x, w, y), yh, ep), st);
  return false;
}

// Returns whether the kernel summed ep->stats (with_stats).
template <class TA>
static bool run_backward_data(int v, cudaStream_t st, const conv_shape *s, const TA *dy,
                              const float *w, float *dx, uint16_t *dxh = nullptr,
                              const ganc_conv_epi *ep = nullptr, const uint16_t *wh = nullptr) {
  KERNEL_REQUIRE(shape_ok(s), "conv2d_backward_data_cuda",
                 "invalid conv_shape (use conv_shape_make)");
  const BwdData::Args a = BwdData::args(s, nullptr, w, dx);
  KERNEL_REQUIRE(dims_ok(a.M, s->C, a.Kd), "conv2d_backward_data_cuda", "GEMM sizes near INT_MAX");
  KERNEL_REQUIRE(BwdData::grid(a).y <= 65535, "conv2d_backward_data_cuda", "C = %d > 65535·64",
                 s->C);
  if (VARIANTS[v].thin) {
    const typename BwdDataT<TA>::Args t = with_dx_halves(BwdDataT<TA>::args(s, dy, w, dx), dxh, ep);
    thin_by_prec<TA>(VARIANTS[v].prec,
                     [&](auto p) { launch_thin_bwd_data<TA, decltype(p)::value>(t, wh, st); });
    return false;
  }
  if (VARIANTS[v].phase && VARIANTS[v].tiles == TILES_G128) {
    auto go = [&](auto role, auto wp) {
      typedef decltype(role) R;
      typename R::Args g = R::args(s, dy, wp, dx);
      g.b.dxh = dxh;
      if (ep) g.b.ep = *ep;
      const bool done = with_stats<R>(g, ep);
      launch_g128<R>(v, g, st);
      return done;
    };
    if constexpr (std::is_same<TA, uint16_t>::value) { // as run_forward
      if (wh) return go(PhaseG<TA, uint16_t>(), wh);
    }
    return go(PhaseG<TA, float>(), w);
  } else if constexpr (std::is_same<TA, float>::value) {
    if (VARIANTS[v].phase) // the same sizes, split by phase
      launch_phase(v, with_dx_halves(BwdDataPhase::args(s, dy, w, dx), dxh, ep), st);
    else
      launch<BwdData>(v, with_dx_halves(BwdData::args(s, dy, w, dx), dxh, ep), st);
  } else if (VARIANTS[v].phase) {
    launch_bf16op<BwdDataPhaseT<TA>>(
        v, with_dx_halves(BwdDataPhaseT<TA>::args(s, dy, w, dx), dxh, ep), st);
  } else {
    launch_bf16op<BwdDataT<TA>>(v, with_dx_halves(BwdDataT<TA>::args(s, dy, w, dx), dxh, ep), st);
  }
  return false;
}

template <class TA, class TB>
static void run_backward_weight(ganc_ctx *ctx, int v, cudaStream_t st, const conv_shape *s,
                                const TA *x, const TB *dy, float *dw) {
  KERNEL_REQUIRE(shape_ok(s), "conv2d_backward_weight_cuda",
                 "invalid conv_shape (use conv_shape_make)");
  const int64_t M = (int64_t)s->R * s->S * s->C, Kd = (int64_t)s->N * s->P * s->Q;
  KERNEL_REQUIRE(dims_ok(M, s->K, Kd), "conv2d_backward_weight_cuda", "GEMM sizes near INT_MAX");
  KERNEL_REQUIRE((s->K + BN - 1) / BN <= 65535, "conv2d_backward_weight_cuda", "K = %d > 65535·64",
                 s->K);
  const bool g128 = VARIANTS[v].tiles == TILES_G128;
  const WgradPlan plan = g128 ? wgrad_plan(s, GM, GN, GK, WGRAD_TARGET_BLOCKS / 2) : wgrad_plan(s);
  // One pass of the variant's GEMM: split 0 into dw, the others into part (NULL: one split).
  auto gemm = [&](float *part) {
    if (g128) {
      typedef WgradG<TA, TB> R;
      launch_g128<R>(v, R::args(s, x, dy, dw, part, plan.chunk), st);
    } else if constexpr (std::is_same<TA, float>::value && std::is_same<TB, float>::value) {
      launch<BwdWeight>(v, BwdWeight::args(s, x, dy, dw, part, plan.chunk), st);
    } else {
      typedef BwdWeightT<TA, TB> R;
      launch_bf16op<R>(v, R::args(s, x, dy, dw, part, plan.chunk), st);
    }
  };
  if (plan.splits == 1) {
    gemm(nullptr);
    return;
  }
  // The scratch is the context's; ops on one context run one at a time, in stream order.
  const int64_t n = M * s->K;
  float *part = ganc_cuda_scratch(ctx, (size_t)(plan.splits - 1) * (size_t)n);
  gemm(part);
  GANC_LAUNCH(wgrad_reduce_kernel, reduce_blocks(n), REDUCE_THREADS, st)
  (part, plan.splits - 1, n, dw);
  CUDA_CHECK_LAUNCH();
}

// This device runs variant v: its compute capability, and for the pipelined ones the dynamic
// shared memory ganc_conv_cuda_init was allowed.
static bool device_runs(ganc_ctx *ctx, int v) {
  const int cc = ganc_cuda_cc(ctx);
  return cc >= VARIANTS[v].v.min_cc && (!VARIANTS[v].wg || ganc_cuda_conv_wg_ok(ctx)) &&
         (!VARIANTS[v].pipe || ganc_cuda_conv_pipe_ok(ctx));
}
extern "C" int ganc_conv_variant_runs(ganc_ctx *ctx, int v) {
  return v >= 0 && v < NVARIANTS && device_runs(ctx, v);
}

// The variant exists, implements the role and shape, and runs on this device.
static void require_variant(ganc_ctx *ctx, int v, ganc_conv_role role, const conv_shape *s) {
  KERNEL_REQUIRE(v >= 0 && v < NVARIANTS && role >= 0 && role <= 2, "conv2d_run_variant_cuda",
                 "variant %d, role %d", v, (int)role);
  KERNEL_REQUIRE(ganc_conv_variant_supports(v, role, s), "conv2d_run_variant_cuda",
                 "variant %s does not implement role %d at stride %d", VARIANTS[v].v.name,
                 (int)role, s ? s->stride : 0);
  const int cc = ganc_cuda_cc(ctx);
  if (cc < VARIANTS[v].v.min_cc)
    ganc_die(
        GANC_EXIT_RUNTIME,
        "the convolution variant %s needs a GPU of compute capability %d.%d or later; this one "
        "is %d.%d\n---> HINT: use train.precision = fp32 (or train.conv_variant = simt-fp32)",
        VARIANTS[v].v.name, VARIANTS[v].v.min_cc / 10, VARIANTS[v].v.min_cc % 10, cc / 10, cc % 10);
  if (VARIANTS[v].wg && cc != 90)
    ganc_die(GANC_EXIT_RUNTIME,
             "the convolution variant %s runs on compute capability 9.0 (H100/H200) only; this "
             "GPU is %d.%d\n---> HINT: use train.conv_variant = mma-bf16-g128-cp3 (or auto)",
             VARIANTS[v].v.name, cc / 10, cc % 10);
  if (VARIANTS[v].wg && !ganc_cuda_conv_wg_ok(ctx))
    ganc_die(GANC_EXIT_RUNTIME,
             "the convolution variant %s needs sm_90a code, which this build lacks (built for "
             "CUDA architectures without \"90a\")\n---> HINT: rebuild with "
             "-DCMAKE_CUDA_ARCHITECTURES=\"80;90a\" (the default of a new build folder), or use "
             "train.conv_variant = mma-bf16-g128-cp3 (or auto)",
             VARIANTS[v].v.name);
  if (!device_runs(ctx, v))
    ganc_die(GANC_EXIT_RUNTIME,
             "the convolution variant %s needs more than 48 KB of shared memory per block, which "
             "this GPU refused\n---> HINT: use train.conv_variant = mma-bf16-g128 (or auto)",
             VARIANTS[v].v.name);
}

extern "C" void conv2d_run_variant_cuda(ganc_ctx *ctx, ganc_stream st, int v, ganc_conv_role role,
                                        const conv_shape *s, const float *in0, const float *in1,
                                        float *out) {
  require_variant(ctx, v, role, s);
  if (role == GANC_CONV_FWD)
    run_forward(ctx, v, st, s, in0, in1, out);
  else if (role == GANC_CONV_BWD_DATA)
    run_backward_data(v, st, s, in0, in1, out);
  else
    run_backward_weight(ctx, v, st, s, in0, in1, out);
}

extern "C" int ganc_conv_variant_reads_bf16(int v) {
  return v >= 0 && v < NVARIANTS && VARIANTS[v].prec == PREC_BF16 && VARIANTS[v].tiles != TILES_CP;
}

extern "C" void conv2d_run_variant_mixed_cuda(ganc_ctx *ctx, ganc_stream st, int v,
                                              ganc_conv_role role, const conv_shape *s,
                                              const void *in0, int in0_bf16, const void *in1,
                                              int in1_bf16, const uint16_t *wh, void *out_,
                                              int out_bf16, const ganc_conv_epi *epi) {
  require_variant(ctx, v, role, s);
  KERNEL_REQUIRE(!(in0_bf16 || in1_bf16) || ganc_conv_variant_reads_bf16(v),
                 "conv2d_run_variant_mixed_cuda", "variant %s reads no bf16 operands",
                 VARIANTS[v].v.name);
  KERNEL_REQUIRE(!in1_bf16 || role == GANC_CONV_BWD_WEIGHT, "conv2d_run_variant_mixed_cuda",
                 "the weights are FP32 (role %d, operand 1 in bf16)", (int)role);
  KERNEL_REQUIRE(!wh || role != GANC_CONV_BWD_WEIGHT, "conv2d_run_variant_mixed_cuda",
                 "weight halves given to backward-weight");
  KERNEL_REQUIRE(!out_bf16 || role != GANC_CONV_BWD_WEIGHT, "conv2d_run_variant_mixed_cuda",
                 "backward-weight accumulates FP32 dw (output in bf16 asked)");
  KERNEL_REQUIRE(!epi || epi->act == GANC_ACT_NONE || role != GANC_CONV_BWD_WEIGHT,
                 "conv2d_run_variant_mixed_cuda", "an epilogue activation on backward-weight");
  KERNEL_REQUIRE(!epi || !epi->stats || (epi->act == GANC_ACT_NONE && role != GANC_CONV_BWD_WEIGHT),
                 "conv2d_run_variant_mixed_cuda",
                 "batch-norm statistics with an epilogue activation or on backward-weight");
  const float *f0 = (const float *)in0, *f1 = (const float *)in1;
  const uint16_t *h0 = (const uint16_t *)in0, *h1 = (const uint16_t *)in1;
  // The weights' halves only where 16-byte aligned (a parameter tensor at an offset that is not a
  // multiple of 8 keeps the FP32 weights, and so the activations' cp.async path).
  if (wh && (uintptr_t)wh % 16) wh = nullptr;
  float *out = out_bf16 ? nullptr : (float *)out_;
  uint16_t *oh = out_bf16 ? (uint16_t *)out_ : nullptr;
  bool stats_done = false;
  if (role == GANC_CONV_FWD)
    stats_done = in0_bf16 ? run_forward(ctx, v, st, s, h0, f1, out, oh, epi, wh)
                          : run_forward(ctx, v, st, s, f0, f1, out, oh, epi);
  else if (role == GANC_CONV_BWD_DATA)
    stats_done = in0_bf16 ? run_backward_data(v, st, s, h0, f1, out, oh, epi, wh)
                          : run_backward_data(v, st, s, f0, f1, out, oh, epi);
  // A variant without the sums in its epilogue: one pass over the output after it.
  if (epi && epi->stats && !stats_done) {
    int64_t rows;
    int ch;
    const int mode = ganc_conv_stats_input(s, role, out_bf16, epi, &rows, &ch);
    batchnorm_slot_stats_cuda(ctx, st, rows, ch, out_, mode, epi->stats);
  }
  if (role != GANC_CONV_BWD_WEIGHT) return;
  if (in0_bf16 && in1_bf16)
    run_backward_weight(ctx, v, st, s, h0, h1, out);
  else if (in0_bf16)
    run_backward_weight(ctx, v, st, s, h0, f1, out);
  else if (in1_bf16)
    run_backward_weight(ctx, v, st, s, f0, h1, out);
  else
    run_backward_weight(ctx, v, st, s, f0, f1, out);
}

// ---- choosing a variant -------------------------------------------------------------------------
namespace {
struct TuneEntry {
  int role, v;
  int dims[9]; // N H W C K R S stride pad
  int logged;  // already in this run's tune log
  int bf16op;  // chosen among the variants that read a bf16 operand (kept in memory only)
  int forced;  // train.conv_variant's choice, kept only so that the tune log has it once
};
struct Tune {
  TuneEntry *e;
  int n, cap;
  char cache[1024];  // the device's cache file ("" when there is none)
  int cache_read;    // its choices read (not for a run that train.conv_variant fixes)
  int disagreements; // variants the agreement check left out (ganc_conv_disagreements)
};

void dims_of(const conv_shape *s, int d[9]) {
  const int v[9] = {s->N, s->H, s->W, s->C, s->K, s->R, s->S, s->stride, s->pad};
  memcpy(d, v, sizeof v);
}

// The median of a role's time with variant v over 3 runs after a warm-up, into `out`. Under the
// tests' emulator (cudemu) the times say nothing about a GPU: one run, no warm-up — the same code
// path, a quarter of the emulated work of tuning.
#ifdef GANC_CUDEMU
constexpr bool TIME_ONCE = true;
#else
constexpr bool TIME_ONCE = false;
#endif
double time_variant(ganc_ctx *ctx, ganc_stream st, int v, ganc_conv_role role, const conv_shape *s,
                    const void *in0, int in0_bf16, const void *in1, int in1_bf16,
                    const uint16_t *wh, float *out) {
  double t[3];
  if (TIME_ONCE) {
    ganc_cuda_stopwatch_start(ctx);
    conv2d_run_variant_mixed_cuda(ctx, st, v, role, s, in0, in0_bf16, in1, in1_bf16, wh, out, 0,
                                  NULL);
    return ganc_cuda_stopwatch_ms(ctx);
  }
  conv2d_run_variant_mixed_cuda(ctx, st, v, role, s, in0, in0_bf16, in1, in1_bf16, wh, out, 0,
                                NULL);
  for (int i = 0; i < 3; i++) {
    ganc_cuda_stopwatch_start(ctx);
    conv2d_run_variant_mixed_cuda(ctx, st, v, role, s, in0, in0_bf16, in1, in1_bf16, wh, out, 0,
                                  NULL);
    t[i] = ganc_cuda_stopwatch_ms(ctx);
  }
  const double lo = fmin(t[0], fmin(t[1], t[2])), hi = fmax(t[0], fmax(t[1], t[2]));
  return t[0] + t[1] + t[2] - lo - hi;
}
} // namespace

static void tune_add(Tune *tune, int role, const int d[9], int v, int logged, int bf16op,
                     int forced = 0) {
  if (tune->n == tune->cap) {
    tune->cap = tune->cap ? 2 * tune->cap : 32;
    tune->e = (TuneEntry *)xrealloc(tune->e, (size_t)tune->cap * sizeof *tune->e);
  }
  TuneEntry &e = tune->e[tune->n++];
  e.role = role, e.v = v, e.logged = logged, e.bf16op = bf16op, e.forced = forced;
  memcpy(e.dims, d, sizeof e.dims);
}

// The lines conv2d_pick_variant_cuda writes, read back as choices; returns how many were taken.
// A line train.conv_variant wrote is kept as its entry (so that a resumed run with the same
// setting does not log it again), never as a timed choice: a run resumed with auto times anew.
static int read_lines(Tune *tune, FILE *f, int logged) {
  char line[512], role[16], name[64];
  int taken = 0;
  while (fgets(line, sizeof line, f)) {
    int d[9], P, Q;
    // "conv fwd N16 32x32x1 -> 16x16x4 k4x4 s2 p1: mma-bf16 (...)", as written below
    if (sscanf(line, "conv %15s N%d %dx%dx%d -> %dx%dx%d k%dx%d s%d p%d: %63[^ (\n]", role, &d[0],
               &d[1], &d[2], &d[3], &P, &Q, &d[4], &d[5], &d[6], &d[7], &d[8], name) != 13)
      continue;
    int r = -1;
    for (int i = 0; i < 3; i++)
      if (!strcmp(role, ROLE_NAME[i])) r = i;
    const int v = ganc_conv_variant_find(name);
    if (r < 0 || v < 0) continue;
    const int forced = strstr(line, "(train.conv_variant") != NULL;
    tune_add(tune, r, d, v, logged, 0, forced);
    taken += !forced;
  }
  return taken;
}

// The device's tuning cache: the choices every run on this kind of GPU timed, so that the next run
// reuses them (its numbers then repeat too). ${GANC_CACHE_DIR:-$HOME/.cache/ganc}/conv-variants-
// <GPU name>-sm<cc>-<hash of the ganc version and the variant table>.log: a new build with other
// variants starts a new file. Without a home, or where it cannot be written, there is none.
static void cache_path(ganc_ctx *ctx, char *buf, size_t n) {
  buf[0] = 0;
  const char *dir = getenv("GANC_CACHE_DIR"), *home = getenv("HOME");
  char d[700];
  if (dir && *dir)
    snprintf(d, sizeof d, "%s", dir);
  else if (home && *home)
    snprintf(d, sizeof d, "%s/.cache/ganc", home);
  else
    return;
  uint64_t hash = 1469598103934665603ull; // FNV-1a
  const char *ver = GANC_VERSION;
  for (const char *c = ver; *c; c++)
    hash = (hash ^ (unsigned char)*c) * 1099511628211ull;
  for (int i = 0; i < NVARIANTS; i++)
    for (const char *c = VARIANTS[i].v.name; *c; c++)
      hash = (hash ^ (unsigned char)*c) * 1099511628211ull;
  // The tuner's rules: choices made before the agreement check (2026-12-03) were never checked.
  for (const char *c = "agreement-check-1"; *c; c++)
    hash = (hash ^ (unsigned char)*c) * 1099511628211ull;
  char dev[64];
  snprintf(dev, sizeof dev, "%s", ganc_cuda_device_name(ctx));
  for (char *c = dev; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
      *c = '_';
  if (ganc_mkdir_p(d) != 0) return;
  snprintf(buf, n, "%s/conv-variants-%s-sm%d-%016llx.log", d, dev, ganc_cuda_cc(ctx),
           (unsigned long long)hash);
}

// The context's choices; with cache, the device cache's read in first (once). train.conv_variant's
// own log entries need none of it (nor the cache folder cache_path makes).
static Tune *tune_of(ganc_ctx *ctx, bool cache = true) {
  Tune **slot = (Tune **)ganc_cuda_tune_slot(ctx);
  if (!*slot) *slot = (Tune *)xcalloc(1, sizeof(Tune));
  Tune *t = *slot;
  if (cache && !t->cache_read) {
    t->cache_read = 1;
    cache_path(ctx, t->cache, sizeof t->cache);
    FILE *f = t->cache[0] ? fopen(t->cache, "r") : NULL;
    if (f) {
      read_lines(t, f, 0);
      fclose(f);
    }
  }
  return t;
}

extern "C" int ganc_conv_tune_read(ganc_ctx *ctx, FILE *f) {
  return read_lines(tune_of(ctx), f, 1);
}

extern "C" int ganc_conv_disagreements(ganc_ctx *ctx) { return tune_of(ctx, false)->disagreements; }

extern "C" void ganc_conv_tune_free(void *tune) {
  Tune *t = (Tune *)tune;
  if (!t) return;
  free(t->e);
  free(t);
}

// The start of a choice's line (read_lines parses it back).
// A shape as the tune log, the agreement check's warnings and its stop name it.
static void shape_text(const conv_shape *s, char *buf, size_t n) {
  snprintf(buf, n, "N%d %dx%dx%d -> %dx%dx%d k%dx%d s%d p%d", s->N, s->H, s->W, s->C, s->P, s->Q,
           s->K, s->R, s->S, s->stride, s->pad);
}

static void log_choice(FILE *f, ganc_conv_role role, const conv_shape *s, int v) {
  char shp[160];
  shape_text(s, shp, sizeof shp);
  fprintf(f, "conv %-10s %s: %s", ROLE_NAME[role], shp, VARIANTS[v].v.name);
}

// train.conv_variant = NAME for this role and shape: NAME where it implements them, else the first
// of its family (the variants whose names begin with NAME: mma-bf16-g128 → mma-bf16-g128-phase
// for backward-data), else of its parent's (NAME less its last "-part": wgmma-bf16-g128-sk, a
// forward alone, → wgmma-bf16-g128 and -phase for the other roles, and for a forward it does not
// split), and so on, else the precision's first; with need_bf16, that choice only if it reads a
// bf16 operand, else -1 (the operand is then widened: the user's choice stands). A wrong name or
// precision stops the run.
static int pick_override(ganc_ctx *ctx, ganc_conv_role role, const conv_shape *s, int need_bf16) {
  const int prec = (int)ctx->precision;
  const int v = ganc_conv_variant_find(ctx->conv_variant);
  if (v < 0) {
    char list[512] = "";
    for (int i = 0; i < NVARIANTS; i++)
      snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
               VARIANTS[i].v.name);
    ganc_die(GANC_EXIT_USAGE,
             "train.conv_variant = %s: no such convolution variant\n---> HINT: use auto or one "
             "of: %s (ganc-bench --variants describes them)",
             ctx->conv_variant, list);
  }
  if ((int)VARIANTS[v].v.precision != prec)
    ganc_die(GANC_EXIT_USAGE,
             "train.conv_variant = %s computes in %s, but train.precision = %s\n---> HINT: set "
             "train.precision = %s, or train.conv_variant = auto",
             ctx->conv_variant, PREC_NAME[VARIANTS[v].v.precision], PREC_NAME[prec],
             PREC_NAME[VARIANTS[v].v.precision]);
  const char *const name = VARIANTS[v].v.name;
  auto choose = [&](int i) { return !need_bf16 || ganc_conv_variant_reads_bf16(i) ? i : -1; };
  if (ganc_conv_variant_supports(v, role, s)) return choose(v);
  for (size_t len = strlen(name); len > 0;) { // the family of the first len characters
    for (int i = 0; i < NVARIANTS; i++)
      if (!strncmp(VARIANTS[i].v.name, name, len) && (int)VARIANTS[i].v.precision == prec &&
          ganc_conv_variant_supports(i, role, s))
        return choose(i);
    while (len > 0 && name[--len] != '-') { // the parent: up to the last '-'
    }
  }
  for (int i = 0; i < NVARIANTS; i++)
    if ((int)VARIANTS[i].v.precision == prec && ganc_conv_variant_supports(i, role, s))
      return choose(i);
  return -1;
}

// The variants of the context's precision this device runs for the role and shape (need_bf16:
// only those that read a bf16 operand), in table order, into cand; returns how many.
static int candidates(ganc_ctx *ctx, ganc_conv_role role, const conv_shape *s, int need_bf16,
                      int cand[NVARIANTS]) {
  const int prec = (int)ctx->precision;
  int nc = 0;
  for (int i = 0; i < NVARIANTS; i++)
    if ((int)VARIANTS[i].v.precision == prec && device_runs(ctx, i) &&
        ganc_conv_variant_supports(i, role, s) && (!need_bf16 || ganc_conv_variant_reads_bf16(i)))
      cand[nc++] = i;
  return nc;
}

// ---- the agreement check: no variant is chosen whose results disagree with the FP32 kernel -----
// Every variant is proven under cudemu in CI, but the first run on a new GPU is where a fragment
// layout or a descriptor the emulator got wrong would show — as wrong numbers, which training would
// take silently. So before the tuner may choose among the variants of a precision for a role and
// shape, each candidate runs once on the caller's operands and is compared with the first FP32
// variant (simt-fp32, or -phase: no fragments, no tensor cores) on the same operands rounded as the
// precision rounds them (bf16 to nearest even, tf32 to nearest, ties away). What is left between
// the two is the order of FP32 additions: each output may differ by at most 2^-12 of the sum of its
// products' magnitudes (the FP32 kernel on |operands|), plus n·2^-22 of its own magnitude (n
// products per output — an overcount for strided backward-data: a long run of like products of
// one sign can round the same way at each addition, up to ~n·2^-24 of the sum with round to
// nearest and ~n·2^-23 where tensor cores truncate: 2.6x margin on both together), plus 2^-30 of
// the largest magnitudes' sum (the outputs whose products are all tiny). A correct variant stays
// far inside that on data of mixed signs (sums of n terms err by ~2^-24·sqrt(n) of the
// magnitudes' sum; n = 2^17 gives 2^-15.5). A wrong fragment index moves outputs by about the root
// of the sum of squared products, ~1/sqrt(n) of the magnitudes' sum for mixed signs (~10x the
// tolerance at n = 2^17) and a whole share of the output where the signs agree; a lost slice of s
// of the n products by ~sqrt(s/n) of that, so it shows in the outputs where its share lands large
// (a reduction missing its last of 4–16 splits: 1433 of 1728 outputs off). A variant
// that disagrees is left out (a warning, and a line in kernels.log); if none agrees, an operand
// stored in bf16 is widened (the variants reading FP32 are then checked), else the run stops.
// The check runs once per role and shape, with the timing; a choice read back from kernels.log or
// the device cache was checked when it was timed (by a build of the same version and variant
// table: cache_path). train.conv_variant's choice is not checked
// (the user's pick stands; ganc-bench and the tests fix variants that way).
//
// GANC_TEST_CONV_FAULT=NAME[,NAME...] (or "*"): the tests' fault injection — the named
// variants' outputs, as the check reads them back, get the output with the largest magnitudes'
// sum moved by 8 times what it may be off.

// op = round(v) to the precision's operand values and ap = |op|, v from f or widened from h.
__global__ static void agree_operand_kernel(int64_t n, const float *f, const uint16_t *h, int prec,
                                            float *op, float *ap) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    const float v = h ? ganc_bf16_load(h[i]) : f[i];
    const float r = prec == PREC_TF32 ? ganc_round_tf32(v) : ganc_round_bf16(v);
    op[i] = r;
    ap[i] = fabsf(r);
  }
}

namespace {
struct Agreement {
  size_t n;          // outputs
  float *ref, *mag;  // host: the FP32 kernel's outputs, and its sums of |products|
  float mag_max;     // the largest finite sum of |products|
  size_t mag_argmax; // where it is (the fault injection's output)
  double nred;       // products per output: the reduction's length
};
} // namespace

// The three tensors of a role: in0, in1, out elements.
static void role_counts(ganc_conv_role role, const conv_shape *s, int64_t n[3]) {
  const int64_t nx = (int64_t)s->N * s->H * s->W * s->C, ny = (int64_t)s->N * s->P * s->Q * s->K,
                nw = (int64_t)s->R * s->S * s->C * s->K;
  n[0] = role == GANC_CONV_BWD_DATA ? ny : nx;
  n[1] = role == GANC_CONV_BWD_WEIGHT ? ny : nw;
  n[2] = role == GANC_CONV_FWD ? ny : role == GANC_CONV_BWD_DATA ? nx : nw;
}

static void agree_reference(ganc_ctx *ctx, ganc_stream st, ganc_conv_role role, const conv_shape *s,
                            const void *in0, int in0_bf16, const void *in1, int in1_bf16,
                            Agreement *a) {
  int64_t n[3];
  role_counts(role, s, n);
  int vf = -1; // the FP32 kernel: the first FP32 variant of the table that takes the role and shape
  for (int i = 0; i < NVARIANTS && vf < 0; i++)
    if (VARIANTS[i].prec == PREC_FP32 && device_runs(ctx, i) &&
        ganc_conv_variant_supports(i, role, s))
      vf = i;
  KERNEL_REQUIRE(vf >= 0, "conv agreement check", "no FP32 variant for role %d", (int)role);
  float *op[2], *ap[2];
  const void *src[2] = {in0, in1};
  const int bf[2] = {in0_bf16, in1_bf16};
  for (int k = 0; k < 2; k++) {
    op[k] = (float *)ganc_cuda_malloc(ctx, (size_t)(n[k] ? n[k] : 1) * sizeof(float));
    ap[k] = (float *)ganc_cuda_malloc(ctx, (size_t)(n[k] ? n[k] : 1) * sizeof(float));
    const int64_t blocks = (n[k] + 255) / 256;
    GANC_LAUNCH(agree_operand_kernel, (unsigned)(blocks < 4096 ? blocks > 0 ? blocks : 1 : 4096),
                256, st)
    (n[k], bf[k] ? nullptr : (const float *)src[k], bf[k] ? (const uint16_t *)src[k] : nullptr,
     (int)ctx->precision == GANC_PREC_TF32 ? PREC_TF32 : PREC_BF16, op[k], ap[k]);
    CUDA_CHECK_LAUNCH();
  }
  const size_t bytes = (size_t)(n[2] ? n[2] : 1) * sizeof(float);
  float *out = (float *)ganc_cuda_malloc(ctx, bytes);
  a->n = (size_t)n[2];
  a->nred = role == GANC_CONV_FWD        ? (double)s->R * s->S * s->C
            : role == GANC_CONV_BWD_DATA ? (double)s->R * s->S * s->K
                                         : (double)s->N * s->P * s->Q;
  a->ref = (float *)xmalloc(bytes);
  a->mag = (float *)xmalloc(bytes);
  ganc_cuda_memset0(ctx, out, bytes); // backward-weight accumulates
  conv2d_run_variant_cuda(ctx, st, vf, role, s, op[0], op[1], out);
  ganc_cuda_d2h(ctx, a->ref, out, (size_t)n[2] * sizeof(float));
  ganc_cuda_memset0(ctx, out, bytes);
  conv2d_run_variant_cuda(ctx, st, vf, role, s, ap[0], ap[1], out);
  ganc_cuda_d2h(ctx, a->mag, out, (size_t)n[2] * sizeof(float));
  ganc_cuda_free(ctx, out);
  for (int k = 0; k < 2; k++)
    ganc_cuda_free(ctx, op[k]), ganc_cuda_free(ctx, ap[k]);
  a->mag_max = 0.0f;
  a->mag_argmax = 0;
  for (size_t i = 0; i < a->n; i++)
    if (isfinite(a->mag[i]) && a->mag[i] > a->mag_max) a->mag_max = a->mag[i], a->mag_argmax = i;
}

// Whether GANC_TEST_CONV_FAULT names variant v.
static bool fault_injected(int v) {
  const char *e = getenv("GANC_TEST_CONV_FAULT");
  if (!e || !*e) return false;
  if (!strcmp(e, "*")) return true;
  const char *name = VARIANTS[v].v.name;
  const size_t len = strlen(name);
  for (const char *p = e; *p;) {
    const char *c = strchr(p, ',');
    const size_t l = c ? (size_t)(c - p) : strlen(p);
    if (l == len && !strncmp(p, name, len)) return true;
    p += l + (c != nullptr);
  }
  return false;
}

// The largest difference from the reference output i may show (above).
static double agree_limit(const Agreement *a, size_t i) {
  return 0x1p-12 * (double)a->mag[i] + a->nred * 0x1p-22 * fabs((double)a->ref[i]) +
         0x1p-30 * (double)a->mag_max;
}

// How many of o's outputs disagree with the reference; the worst's index and its error over the
// tolerance into *worst, *ratio.
static size_t agree_count(const Agreement *a, const float *o, size_t *worst, double *ratio) {
  size_t bad = 0;
  *worst = 0, *ratio = 0.0;
  for (size_t i = 0; i < a->n; i++) {
    if (!isfinite(a->mag[i]) || !isfinite(a->ref[i])) continue; // nothing to judge by
    const double d = fabs((double)o[i] - (double)a->ref[i]), lim = agree_limit(a, i);
    if (!(d <= lim)) { // NaN in o counts
      bad++;
      const double r = lim > 0 && d == d ? d / lim : INFINITY;
      if (r > *ratio) *ratio = r, *worst = i;
    }
  }
  return bad;
}

// Keeps in cand the candidates that agree (above); returns how many. Each one that does not is
// said on stderr and in the run's kernels.log ("#" lines, which read_lines skips).
static int agreeing(ganc_ctx *ctx, ganc_stream st, ganc_conv_role role, const conv_shape *s,
                    const void *in0, int in0_bf16, const void *in1, int in1_bf16,
                    const uint16_t *wh, int cand[NVARIANTS], int nc) {
  Agreement a;
  agree_reference(ctx, st, role, s, in0, in0_bf16, in1, in1_bf16, &a);
  const size_t bytes = (a.n ? a.n : 1) * sizeof(float);
  float *dev = (float *)ganc_cuda_malloc(ctx, bytes);
  float *o = (float *)xmalloc(bytes);
  int kept = 0;
  for (int c = 0; c < nc; c++) {
    const int v = cand[c];
    ganc_cuda_memset0(ctx, dev, bytes);
    conv2d_run_variant_mixed_cuda(ctx, st, v, role, s, in0, in0_bf16, in1, in1_bf16, wh, dev, 0,
                                  NULL);
    ganc_cuda_d2h(ctx, o, dev, a.n * sizeof(float));
    if (fault_injected(v) && a.n) // 8 times what that output may be off
      o[a.mag_argmax] = (float)((double)a.ref[a.mag_argmax] + 8 * agree_limit(&a, a.mag_argmax)) +
                        0x1p-9f * (a.mag_max == 0.0f);
    size_t worst;
    double ratio;
    const size_t bad = agree_count(&a, o, &worst, &ratio);
    if (!bad) {
      cand[kept++] = v;
      continue;
    }
    tune_of(ctx, false)->disagreements++;
    char what[256];
    snprintf(what, sizeof what,
             "%zu of %zu outputs off by more than the FP32 sums' rounding allows, the worst %.3g "
             "times that at output %zu: %.9g, the FP32 kernel %.9g",
             bad, a.n, ratio, worst, (double)o[worst], (double)a.ref[worst]);
    char shp[160];
    shape_text(s, shp, sizeof shp);
    fprintf(stderr,
            "warning: the convolution variant %s disagrees with the FP32 kernel on conv %s %s "
            "(%s): not used on this GPU\n---> HINT: please report it with the run's kernels.log; "
            "training goes on with the variants that agree\n",
            VARIANTS[v].v.name, ROLE_NAME[role], shp, what);
    if (ctx->tune_log) {
      fprintf(ctx->tune_log, "# conv %s %s: %s disagrees with the FP32 kernel (%s): not used\n",
              ROLE_NAME[role], shp, VARIANTS[v].v.name, what);
      fflush(ctx->tune_log);
    }
  }
  ganc_cuda_free(ctx, dev);
  free(o), free(a.ref), free(a.mag);
  return kept;
}

static bool use_override(const ganc_ctx *ctx) {
  return ctx->conv_variant && *ctx->conv_variant && strcmp(ctx->conv_variant, "auto") != 0;
}

extern "C" int conv2d_reads_bf16_cuda(ganc_ctx *ctx, ganc_conv_role role, const conv_shape *s) {
  if (ctx->cudnn_conv) return 0;
  conv_shape d; // as conv2d_mixed_cuda runs it
  if (dense_view(s, &d)) s = &d;
  if (use_override(ctx)) return pick_override(ctx, role, s, 1) >= 0;
  int cand[NVARIANTS];
  return candidates(ctx, role, s, 1, cand) > 0;
}

// The choice for a role and shape, as kernels.h says; in0_bf16 / in1_bf16: that operand is stored
// in bf16, and only a variant that reads it may be chosen (-1 when none can: the caller widens).
// Such choices are timed with the bf16 operand and kept in the context alone: the files record the
// choices among all variants, which a run with FP32 operands may reuse.
static int pick(ganc_ctx *ctx, ganc_stream st, ganc_conv_role role, const conv_shape *s,
                const void *in0, int in0_bf16, const void *in1, int in1_bf16,
                const uint16_t *wh = nullptr) {
  const int prec = (int)ctx->precision, need_bf16 = in0_bf16 || in1_bf16;
  KERNEL_REQUIRE(prec >= 0 && prec <= 2, "conv2d_pick_variant_cuda", "precision %d", prec);
  int d[9];
  dims_of(s, d);
  if (use_override(ctx)) {
    const int v = pick_override(ctx, role, s, need_bf16);
    if (v >= 0 && ctx->tune_log) { // the run folder records what the override chose, once
      Tune *tune = tune_of(ctx, false);
      bool seen = false;
      for (int i = 0; i < tune->n && !seen; i++)
        seen = tune->e[i].forced && tune->e[i].role == (int)role && tune->e[i].v == v &&
               !memcmp(tune->e[i].dims, d, sizeof d);
      if (!seen) {
        tune_add(tune, (int)role, d, v, 1, need_bf16, 1);
        log_choice(ctx->tune_log, role, s, v);
        fprintf(ctx->tune_log, " (train.conv_variant = %s)\n", ctx->conv_variant);
        fflush(ctx->tune_log);
      }
    }
    if (v >= 0 || need_bf16) return v;
  }
  const int cc = ganc_cuda_cc(ctx);
  int cand[NVARIANTS];
  const int nc = candidates(ctx, role, s, need_bf16, cand);
  if (nc == 0 && need_bf16) return -1;
  if (nc == 0)
    ganc_die(GANC_EXIT_USAGE,
             "train.precision = %s needs tensor cores of compute capability 8.0 or later (A100, "
             "H100, RTX 30xx and newer); this GPU is %d.%d\n---> HINT: use train.precision = fp32",
             PREC_NAME[prec], cc / 10, cc % 10);
  // FP32 by a fixed rule (the first of the table), so that FP32 runs repeat their bits.
  if (prec == GANC_PREC_FP32) return cand[0];
  Tune *tune = tune_of(ctx);
  // Newest first: this run's own choices (read back on resume, or timed) over the device cache's.
  for (int i = tune->n - 1; i >= 0; i--) {
    TuneEntry &e = tune->e[i];
    if (e.forced || e.role != (int)role || memcmp(e.dims, d, sizeof d)) continue;
    const int v = e.v; // a choice read back from a file is checked like a new one
    if (v < 0) {       // no variant reading the bf16 operand agreed: widen it (above)
      if (need_bf16 && e.bf16op) return -1;
      continue;
    }
    if ((int)VARIANTS[v].v.precision != prec || !device_runs(ctx, v) ||
        !ganc_conv_variant_supports(v, role, s) || (e.bf16op && !need_bf16) ||
        (need_bf16 && !ganc_conv_variant_reads_bf16(v)))
      continue;
    if (!e.logged && ctx->tune_log) { // the run folder records every choice it used
      log_choice(ctx->tune_log, role, s, v);
      fprintf(ctx->tune_log, " (from %s)\n", tune->cache);
      fflush(ctx->tune_log);
      e.logged = 1;
    }
    return v;
  }
  // Only the candidates whose results agree with the FP32 kernel's (above) may be chosen.
  const int nk = agreeing(ctx, st, role, s, in0, in0_bf16, in1, in1_bf16, wh, cand, nc);
  if (nk == 0 && need_bf16) { // the caller widens the operand; the plain pick checks the rest
    tune_add(tune, (int)role, d, -1, 1, 1);
    return -1;
  }
  if (nk == 0) {
    char shp[160];
    shape_text(s, shp, sizeof shp);
    ganc_die(GANC_EXIT_RUNTIME,
             "no %s convolution variant agrees with the FP32 kernel on this GPU for the %s "
             "role of a layer of shape %s (the warnings above say how far each is off)\n---> "
             "HINT: train.precision = fp32 trains with the FP32 kernels; please report this with "
             "the run's kernels.log",
             PREC_NAME[prec], ROLE_NAME[role], shp);
  }
  // Time each candidate once on this shape, into a scratch output of the role's size (the real
  // output is written once, by the caller, with the choice); one alone is taken untimed.
  int64_t counts[3];
  role_counts(role, s, counts);
  const size_t n_out = (size_t)counts[2];
  double ms[NVARIANTS];
  int bi = 0;
  if (nk > 1) {
    float *tmp = (float *)ganc_cuda_malloc(ctx, n_out * sizeof(float));
    ganc_cuda_memset0(ctx, tmp, n_out * sizeof(float));
    for (int i = 0; i < nk; i++) {
      ms[i] = time_variant(ctx, st, cand[i], role, s, in0, in0_bf16, in1, in1_bf16, wh, tmp);
      if (ms[i] < ms[bi]) bi = i;
    }
    ganc_cuda_free(ctx, tmp);
  }
  const int best = cand[bi];
  tune_add(tune, (int)role, d, best, need_bf16 || ctx->tune_log != NULL, need_bf16);
  if (need_bf16) return best;
  FILE *cf = tune->cache[0] ? fopen(tune->cache, "a") : NULL; // for the next run on this GPU
  FILE *logs[2] = {ctx->tune_log, cf};
  for (int k = 0; k < 2; k++) {
    if (!logs[k]) continue;
    log_choice(logs[k], role, s, best);
    if (nk == 1) fprintf(logs[k], " (the only candidate%s)", nc > 1 ? " that agrees" : "");
    for (int i = 0; i < nk && nk > 1; i++)
      fprintf(logs[k], "%s%s %.4f ms", i ? ", " : " (", VARIANTS[cand[i]].v.name, ms[i]);
    fprintf(logs[k], "%s\n", nk > 1 ? ")" : "");
    fflush(logs[k]);
  }
  if (cf) fclose(cf);
  return best;
}

extern "C" int conv2d_pick_variant_cuda(ganc_ctx *ctx, ganc_stream st, ganc_conv_role role,
                                        const conv_shape *s, const float *in0, const float *in1) {
  return pick(ctx, st, role, s, in0, 0, in1, 0);
}

// ---- the launchers of ops.def: the chosen variant -----------------------------------------------

extern "C" void conv2d_forward_cuda(ganc_ctx *ctx, ganc_stream st, const conv_shape *s,
                                    const float *x, const float *w, float *y) {
  conv_shape d;
  if (dense_view(s, &d)) s = &d;
  const int v = conv2d_pick_variant_cuda(ctx, st, GANC_CONV_FWD, s, x, w);
  conv2d_run_variant_cuda(ctx, st, v, GANC_CONV_FWD, s, x, w, y);
}

extern "C" void conv2d_backward_data_cuda(ganc_ctx *ctx, ganc_stream st, const conv_shape *s,
                                          const float *dy, const float *w, float *dx) {
  conv_shape d;
  if (dense_view(s, &d)) s = &d;
  const int v = conv2d_pick_variant_cuda(ctx, st, GANC_CONV_BWD_DATA, s, dy, w);
  conv2d_run_variant_cuda(ctx, st, v, GANC_CONV_BWD_DATA, s, dy, w, dx);
}

extern "C" void conv2d_backward_weight_cuda(ganc_ctx *ctx, ganc_stream st, const conv_shape *s,
                                            const float *x, const float *dy, float *dw) {
  conv_shape d;
  if (dense_view(s, &d)) s = &d;
  const int v = conv2d_pick_variant_cuda(ctx, st, GANC_CONV_BWD_WEIGHT, s, x, dy);
  conv2d_run_variant_cuda(ctx, st, v, GANC_CONV_BWD_WEIGHT, s, x, dy, dw);
}

// bf16 halves → FP32 (exact), for a role no variant of the precision runs on a bf16 operand.
__global__ static void widen_bf16_kernel(int64_t n, const uint16_t *h, float *f) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    f[i] = ganc_bf16_load(h[i]);
}

// n bf16 values widened to floats in memory of their own (the caller frees it).
static float *widen(ganc_ctx *ctx, ganc_stream st, const void *h, int64_t n) {
  float *f = (float *)ganc_cuda_malloc(ctx, (size_t)(n ? n : 1) * sizeof(float));
  const int64_t blocks = (n + 255) / 256;
  GANC_LAUNCH(widen_bf16_kernel, (unsigned)(blocks < 4096 ? blocks : 4096), 256, st)
  (n, (const uint16_t *)h, f);
  CUDA_CHECK_LAUNCH();
  return f;
}

extern "C" void conv2d_mixed_cuda(ganc_ctx *ctx, ganc_stream st, int role, const conv_shape *s,
                                  const void *in0, int in0_bf16, const void *in1, int in1_bf16,
                                  const uint16_t *wh, void *out, int out_bf16,
                                  const ganc_conv_epi *epi) {
  KERNEL_REQUIRE(role >= GANC_CONV_FWD && role <= GANC_CONV_BWD_WEIGHT, "conv2d_mixed_cuda",
                 "role %d", role);
  KERNEL_REQUIRE(!in1_bf16 || role == GANC_CONV_BWD_WEIGHT, "conv2d_mixed_cuda",
                 "role %d with operands in bf16 (%d, %d)", role, in0_bf16, in1_bf16);
  KERNEL_REQUIRE(!wh || role != GANC_CONV_BWD_WEIGHT, "conv2d_mixed_cuda",
                 "weight halves given to backward-weight");
  KERNEL_REQUIRE(!out_bf16 || role != GANC_CONV_BWD_WEIGHT, "conv2d_mixed_cuda",
                 "backward-weight accumulates FP32 dw (output in bf16 asked)");
  KERNEL_REQUIRE(shape_ok(s), "conv2d_mixed_cuda", "invalid conv_shape (use conv_shape_make)");
  const int has_epi = epi && epi->act != GANC_ACT_NONE;
  KERNEL_REQUIRE(!has_epi || role != GANC_CONV_BWD_WEIGHT, "conv2d_mixed_cuda",
                 "an epilogue activation on backward-weight");
  const int stats = epi && epi->stats;
  KERNEL_REQUIRE(!stats || (!has_epi && role != GANC_CONV_BWD_WEIGHT), "conv2d_mixed_cuda",
                 "batch-norm statistics with an epilogue activation or on backward-weight");
  const ganc_conv_role r = (ganc_conv_role)role;
  conv_shape d;
  if (dense_view(s, &d)) {
    // Backward-data's output channels are C in the shape and R·S·C in the view: its batch-norm
    // sums then come from a pass over the output by the shape (the forward's K are the same).
    ganc_conv_epi e = epi ? *epi : ganc_conv_epi{GANC_ACT_NONE, 0.0f, nullptr, 0, nullptr, 0};
    if (r == GANC_CONV_BWD_DATA) e.stats = nullptr;
    conv2d_mixed_cuda(ctx, st, role, &d, in0, in0_bf16, in1, in1_bf16, wh, out, out_bf16,
                      epi ? &e : nullptr);
    if (stats && r == GANC_CONV_BWD_DATA) {
      int64_t rows;
      int ch;
      const int mode = ganc_conv_stats_input(s, r, out_bf16, epi, &rows, &ch);
      batchnorm_slot_stats_cuda(ctx, st, rows, ch, out, mode, epi->stats);
    }
    return;
  }
  // An operand in bf16 wants a variant that reads it; an output in bf16 or an epilogue op, any
  // variant (every epilogue rounds and applies it as it stores): the precision's choice for FP32
  // operands — the one conv2d_forward_cuda and the others make.
  const int v = in0_bf16 || in1_bf16 || out_bf16 || has_epi || stats
                    ? pick(ctx, st, r, s, in0, in0_bf16, in1, in1_bf16, wh)
                    : -1;
  if (v >= 0) {
    conv2d_run_variant_mixed_cuda(ctx, st, v, r, s, in0, in0_bf16, in1, in1_bf16, wh, out, out_bf16,
                                  epi);
    return;
  }
  // FP32 operands, or none of the precision's variants reads the stored ones: the plain role, on
  // each bf16 operand widened into memory of its own (not the scratch, which split-K uses), into
  // an FP32 output of its own first where the output is asked in bf16.
  const int64_t ny = (int64_t)s->N * s->P * s->Q * s->K, nx = (int64_t)s->N * s->H * s->W * s->C;
  float *w0 = in0_bf16 ? widen(ctx, st, in0, r == GANC_CONV_BWD_DATA ? ny : nx) : NULL;
  float *w1 = in1_bf16 ? widen(ctx, st, in1, ny) : NULL;
  const float *a = in0_bf16 ? w0 : (const float *)in0, *b = in1_bf16 ? w1 : (const float *)in1;
  const int64_t n_out = r == GANC_CONV_FWD ? ny : nx;
  float *o = out_bf16 ? (float *)ganc_cuda_malloc(ctx, (size_t)(n_out ? n_out : 1) * sizeof(float))
                      : (float *)out;
  if (r == GANC_CONV_FWD)
    conv2d_forward_cuda(ctx, st, s, a, b, o);
  else if (r == GANC_CONV_BWD_DATA)
    conv2d_backward_data_cuda(ctx, st, s, a, b, o);
  else
    conv2d_backward_weight_cuda(ctx, st, s, a, b, o);
  // The epilogue op as the separate ops (the same arithmetic, ops/act_core.h), then the halves.
  const int fwd_act = has_epi && !epi->dact_y ? epi->act : GANC_ACT_NONE;
  if (has_epi && epi->dact_y) {
    if (epi->act == GANC_ACT_RELU)
      relu_backward_cuda(ctx, st, n_out, epi->dact_y, epi->dact_y_bf16, o, o);
    else
      lrelu_backward_cuda(ctx, st, n_out, epi->slope, epi->dact_y, epi->dact_y_bf16, o, o);
  }
  if (out_bf16) { // its halves, as the epilogues round them (ops.def's act_forward_bf16)
    act_forward_bf16_cuda(ctx, st, n_out, fwd_act, has_epi ? epi->slope : 0.0f, o, out);
    ganc_cuda_free(ctx, o);
  } else if (fwd_act == GANC_ACT_RELU) {
    relu_forward_cuda(ctx, st, n_out, o, o);
  } else if (fwd_act == GANC_ACT_LRELU) {
    lrelu_forward_cuda(ctx, st, n_out, epi->slope, o, o);
  }
  if (stats) { // the batch-norm slot sums of the output as stored, as a variant's launch makes them
    int64_t rows;
    int ch;
    const int mode = ganc_conv_stats_input(s, r, out_bf16, epi, &rows, &ch);
    batchnorm_slot_stats_cuda(ctx, st, rows, ch, out, mode, epi->stats);
  }
  if (w0) ganc_cuda_free(ctx, w0);
  if (w1) ganc_cuda_free(ctx, w1);
}
