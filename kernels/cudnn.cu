// cudnn.cu — the three convolution roles of ops.h through cuDNN's legacy convolution API: the
// oracle of tests/gpu/test_gpu_conv.c, the baseline of ganc-bench and the `backend = cudnn` path.
//
//   forward          y  = conv(x, w)        cudnnConvolutionForward
//   backward_data    dx = ∂L/∂x             cudnnConvolutionBackwardData     (overwrites dx)
//   backward_weight  dw += ∂L/∂w            cudnnConvolutionBackwardFilter   (accumulates dw)
//
// Layouts: activations are NHWC, which cuDNN takes as they are (CUDNN_TENSOR_NHWC). Our weights
// are [R,S,C,K] (K fastest) but cuDNN's NHWC filters are [K,R,S,C] (C fastest): the launchers
// transpose w, a [R·S·C, K] matrix, into a [K, R·S·C] copy in device scratch; backward_weight
// computes the gradient into a KRSC scratch (beta = 0) and one kernel transposes it back while
// adding it to dw, which is the accumulate rule.
//
// Math: CUDNN_FMA_MATH on every convolution descriptor. With the default math type cuDNN may run
// FP32 convolutions on TF32 tensor cores on Ampere and newer (10-bit mantissa inputs, ~1e-3
// relative error), which would make it useless as an oracle for FP32 kernels and an unfair
// baseline; FMA math restricts it to true FP32 kernels. Algorithms reported as tensor-op math
// are skipped for the same reason.
//
// Algorithms: cudnnFind*Algorithm (cuDNN times every algorithm on scratch buffers of its own, so
// no caller data is touched) once per shape and role, preferring the fastest deterministic one
// (this backend also trains, and ganc promises same seed, same result), else the fastest. The
// choice, with the shape's descriptors, is cached in a table per cuDNN handle (one per ganc
// context: ctx.cu's state is private, so the table lives here, keyed by the handle pointer and
// the device).
#include <cudnn.h> // before cuda_check.h, which defines CUDNN_CHECK only when cuDNN is included

#include "kernels/cuda_check.h" // CUDA_CHECK, CUDNN_CHECK, CUDA_CHECK_LAUNCH, KERNEL_REQUIRE
#include "kernels/kernels.h"    // the launchers, ganc_cuda_scratch, ganc_cuda_cudnn_handle
#include "ops/ops.h"            // conv_shape, conv_shape_make

#include <cuda_runtime.h>
#include <mutex>
#include <stdint.h>
#include <stdlib.h>

namespace {

enum Role { FWD = 0, BWD_DATA = 1, BWD_FILTER = 2, NROLES = 3 };

// One conv_shape's descriptors and, per role, the algorithm chosen (−1: not chosen yet) and its
// workspace size in bytes.
struct Plan {
  conv_shape s;
  cudnnTensorDescriptor_t x, y; // [N,H,W,C], [N,P,Q,K] as NHWC
  cudnnFilterDescriptor_t w;    // [K,R,S,C] (cuDNN's NHWC filter layout)
  cudnnConvolutionDescriptor_t conv;
  int algo[NROLES];
  size_t ws[NROLES];
};

// The plans of one handle. Plans are allocated one by one so that a pointer to one stays valid
// while the table grows.
struct Cache {
  cudnnHandle_t handle;
  int device;
  Plan **plans;
  int n, cap;
};

// The table of caches, shared by all contexts of the process; the lock guards lookups and
// insertions only (a context runs its ops one at a time, so a plan is never used by two threads).
// A handle destroyed with its context leaves its cache behind; a new handle at the same address
// on the same device would find valid plans (descriptors are host objects, and algorithm choices
// depend on the device and shape only).
std::mutex g_lock;
Cache *g_caches = nullptr;
int g_ncaches = 0, g_capcaches = 0;

bool same_shape(const conv_shape &a, const conv_shape &b) {
  return a.N == b.N && a.H == b.H && a.W == b.W && a.C == b.C && a.K == b.K && a.R == b.R &&
         a.S == b.S && a.stride == b.stride && a.pad == b.pad && a.P == b.P && a.Q == b.Q;
}

template <class T> void grow(T **p, int *cap, int need) {
  if (need <= *cap) return;
  int c = *cap ? *cap * 2 : 8;
  while (c < need)
    c *= 2;
  *p = (T *)xrealloc(*p, (size_t)c * sizeof(T));
  *cap = c;
}

Plan *plan_new(const conv_shape *s) {
  Plan *p = (Plan *)xcalloc(1, sizeof(Plan));
  p->s = *s;
  for (int r = 0; r < NROLES; r++)
    p->algo[r] = -1;
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x));
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y));
  CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w));
  CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p->conv));
  // 4-d descriptors take dimensions in N, C, H, W order whatever the memory format.
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, s->N, s->C,
                                         s->H, s->W));
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, s->N, s->K,
                                         s->P, s->Q));
  CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, s->K, s->C,
                                         s->R, s->S));
  // Cross-correlation (no kernel flip), as conv.c's im2col: y[p,q] = Σ x[p·stride − pad + r, ...]
  // · w[r, ...].
  CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p->conv, s->pad, s->pad, s->stride, s->stride, 1, 1,
                                              CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, CUDNN_FMA_MATH)); // true FP32: see the top
  int n, c, h, w;
  CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &n, &c, &h, &w));
  KERNEL_REQUIRE(n == s->N && c == s->K && h == s->P && w == s->Q, "cudnn conv plan",
                 "cuDNN's output %dx%dx%dx%d differs from the shape's %dx%dx%dx%d", n, h, w, c,
                 s->N, s->P, s->Q, s->K);
  return p;
}

// The plan of shape s for this context's handle (created on first use).
Plan *plan_for(ganc_ctx *ctx, cudnnHandle_t h, const conv_shape *s) {
  (void)ctx;
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  std::lock_guard<std::mutex> lock(g_lock);
  Cache *c = nullptr;
  for (int i = 0; i < g_ncaches && !c; i++)
    if (g_caches[i].handle == h && g_caches[i].device == device) c = &g_caches[i];
  if (!c) {
    grow(&g_caches, &g_capcaches, g_ncaches + 1);
    c = &g_caches[g_ncaches++];
    *c = Cache{h, device, nullptr, 0, 0};
  }
  for (int i = 0; i < c->n; i++)
    if (same_shape(c->plans[i]->s, *s)) return c->plans[i];
  grow(&c->plans, &c->cap, c->n + 1);
  c->plans[c->n] = plan_new(s);
  return c->plans[c->n++];
}

bool is_tensor_op(cudnnMathType_t m) {
  return m == CUDNN_TENSOR_OP_MATH || m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

// Index into cudnnFind's results (sorted fastest first) of the fastest usable deterministic
// algorithm, else the fastest usable one, else −1.
template <class Perf> int pick(const Perf *perf, int n) {
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < n; i++) {
      if (perf[i].status != CUDNN_STATUS_SUCCESS || is_tensor_op(perf[i].mathType)) continue;
      if (pass == 0 && perf[i].determinism != CUDNN_DETERMINISTIC) continue;
      return i;
    }
  return -1;
}

// Chooses the algorithm of one role for plan p (once) and its workspace size.
void choose(cudnnHandle_t h, Plan *p, Role role) {
  if (p->algo[role] >= 0) return;
  const conv_shape *s = &p->s;
  int n = 0, i = -1;
  size_t ws = 0;
  if (role == FWD) {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithm(h, p->x, p->w, p->conv, p->y,
                                                     CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf));
    if ((i = pick(perf, n)) >= 0) {
      p->algo[role] = (int)perf[i].algo;
      CUDNN_CHECK(
          cudnnGetConvolutionForwardWorkspaceSize(h, p->x, p->w, p->conv, p->y, perf[i].algo, &ws));
    }
  } else if (role == BWD_DATA) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithm(
        h, p->w, p->y, p->conv, p->x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, perf));
    if ((i = pick(perf, n)) >= 0) {
      p->algo[role] = (int)perf[i].algo;
      CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(h, p->w, p->y, p->conv, p->x,
                                                               perf[i].algo, &ws));
    }
  } else {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithm(
        h, p->x, p->y, p->conv, p->w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, perf));
    if ((i = pick(perf, n)) >= 0) {
      p->algo[role] = (int)perf[i].algo;
      CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p->x, p->y, p->conv, p->w,
                                                                 perf[i].algo, &ws));
    }
  }
  static const char *names[NROLES] = {"forward", "backward-data", "backward-filter"};
  if (i < 0)
    ganc_die(GANC_EXIT_RUNTIME,
             "cuDNN has no FP32 (non-tensor-op) %s algorithm for the convolution N=%d H=%d W=%d "
             "C=%d K=%d R=%d S=%d stride=%d pad=%d (%d candidates tried)\n"
             "---> HINT: use the built-in kernels (train.backend = cuda)",
             names[role], s->N, s->H, s->W, s->C, s->K, s->R, s->S, s->stride, s->pad, n);
  p->ws[role] = ws;
}

// The handle of ctx, set to run on st, and the plan of s with the role's algorithm chosen.
Plan *prepare(ganc_ctx *ctx, ganc_stream st, const conv_shape *s, Role role, cudnnHandle_t *h) {
  *h = (cudnnHandle_t)ganc_cuda_cudnn_handle(ctx);
  // The handle stays bound to st after the call; callers pass the context's own stream, to which
  // ctx.cu bound it already, so in practice this changes nothing.
  CUDNN_CHECK(cudnnSetStream(*h, (cudaStream_t)st));
  Plan *p = plan_for(ctx, *h, s);
  choose(*h, p, role);
  return p;
}

// Scratch for `weights` floats of KRSC weights followed by the role's workspace, which starts on
// a 256-byte boundary (cudaMalloc's alignment, which cuDNN's kernels may assume).
float *scratch_for(ganc_ctx *ctx, size_t weights, size_t ws_bytes, void **ws) {
  const size_t wfl = (weights + 63) / 64 * 64, wsfl = (ws_bytes + 3) / 4;
  float *base = ganc_cuda_scratch(ctx, wfl + wsfl);
  *ws = ws_bytes ? (void *)(base + wfl) : nullptr;
  return base;
}

} // namespace

// ---- the transpose between [RSC, K] and [K, RSC] ----------------------------------------

// out [cols, rows] = inᵀ, or out += inᵀ when acc, for in [rows, cols] (row-major). A 32x32 tile
// goes through shared memory so that both the read and the write are coalesced; the 33rd column
// keeps the column read of the tile free of bank conflicts.
static __global__ void transpose_kernel(const float *in, int rows, int cols, float *out, int acc) {
  __shared__ float tile[32][33];
  const int c0 = blockIdx.x * 32, r0 = blockIdx.y * 32;
  for (int i = threadIdx.y; i < 32; i += blockDim.y) {
    const int r = r0 + i, c = c0 + threadIdx.x;
    if (r < rows && c < cols) tile[i][threadIdx.x] = in[(int64_t)r * cols + c];
  }
  __syncthreads();
  for (int i = threadIdx.y; i < 32; i += blockDim.y) {
    const int c = c0 + i, r = r0 + threadIdx.x; // out[c, r] = in[r, c]
    if (c < cols && r < rows) {
      float *o = out + (int64_t)c * rows + r;
      const float v = tile[threadIdx.x][i];
      *o = acc ? *o + v : v;
    }
  }
}

static void transpose(cudaStream_t st, const float *in, int rows, int cols, float *out, int acc) {
  KERNEL_REQUIRE((rows + 31) / 32 <= 65535, "cudnn weight transpose", "%d rows > 65535·32", rows);
  const dim3 grid((cols + 31) / 32, (rows + 31) / 32), block(32, 8);
  GANC_LAUNCH(transpose_kernel, grid, block, st)(in, rows, cols, out, acc);
  CUDA_CHECK_LAUNCH();
}

// ---- launchers ----------------------------------------------------------------------------------

static bool shape_ok(const conv_shape *s) {
  conv_shape t;
  return s &&
         conv_shape_make(&t, s->N, s->H, s->W, s->C, s->K, s->R, s->S, s->stride, s->pad) == 0 &&
         t.P == s->P && t.Q == s->Q;
}

extern "C" void conv2d_forward_cudnn(ganc_ctx *ctx, ganc_stream st, const conv_shape *s,
                                     const float *x, const float *w, float *y) {
  KERNEL_REQUIRE(shape_ok(s), "conv2d_forward_cudnn", "invalid conv_shape (use conv_shape_make)");
  cudnnHandle_t h;
  Plan *p = prepare(ctx, st, s, FWD, &h);
  const int rsc = s->R * s->S * s->C;
  void *ws;
  float *wT = scratch_for(ctx, (size_t)rsc * s->K, p->ws[FWD], &ws); // [K, R, S, C]
  transpose((cudaStream_t)st, w, rsc, s->K, wT, 0);
  const float one = 1.0f, zero = 0.0f;
  CUDNN_CHECK(cudnnConvolutionForward(h, &one, p->x, x, p->w, wT, p->conv,
                                      (cudnnConvolutionFwdAlgo_t)p->algo[FWD], ws, p->ws[FWD],
                                      &zero, p->y, y));
}

extern "C" void conv2d_backward_data_cudnn(ganc_ctx *ctx, ganc_stream st, const conv_shape *s,
                                           const float *dy, const float *w, float *dx) {
  KERNEL_REQUIRE(shape_ok(s), "conv2d_backward_data_cudnn",
                 "invalid conv_shape (use conv_shape_make)");
  cudnnHandle_t h;
  Plan *p = prepare(ctx, st, s, BWD_DATA, &h);
  const int rsc = s->R * s->S * s->C;
  void *ws;
  float *wT = scratch_for(ctx, (size_t)rsc * s->K, p->ws[BWD_DATA], &ws); // [K, R, S, C]
  transpose((cudaStream_t)st, w, rsc, s->K, wT, 0);
  // beta = 0: dx is overwritten and never read (it may hold anything, NaN included).
  const float one = 1.0f, zero = 0.0f;
  CUDNN_CHECK(cudnnConvolutionBackwardData(h, &one, p->w, wT, p->y, dy, p->conv,
                                           (cudnnConvolutionBwdDataAlgo_t)p->algo[BWD_DATA], ws,
                                           p->ws[BWD_DATA], &zero, p->x, dx));
}

extern "C" void conv2d_backward_weight_cudnn(ganc_ctx *ctx, ganc_stream st, const conv_shape *s,
                                             const float *x, const float *dy, float *dw) {
  KERNEL_REQUIRE(shape_ok(s), "conv2d_backward_weight_cudnn",
                 "invalid conv_shape (use conv_shape_make)");
  cudnnHandle_t h;
  Plan *p = prepare(ctx, st, s, BWD_FILTER, &h);
  const int rsc = s->R * s->S * s->C;
  void *ws;
  float *gT = scratch_for(ctx, (size_t)rsc * s->K, p->ws[BWD_FILTER], &ws); // [K, R, S, C]
  const float one = 1.0f, zero = 0.0f;
  CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &one, p->x, x, p->y, dy, p->conv,
                                             (cudnnConvolutionBwdFilterAlgo_t)p->algo[BWD_FILTER],
                                             ws, p->ws[BWD_FILTER], &zero, p->w, gT));
  transpose((cudaStream_t)st, gT, s->K, rsc, dw, 1); // dw [R·S·C, K] += gTᵀ
}
