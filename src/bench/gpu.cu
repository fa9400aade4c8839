// gpu.cu — ganc-bench's GPU modes: every convolution role of the shipped configs' layers, ganc's
// kernels against cuDNN's fastest algorithm and cuBLAS (for GEMM-shaped layers), timed with CUDA
// events after warm-up, L2 flushed before every run, medians of many runs; TFLOP/s and % of the
// device's FP32 peak as measured here by a large cuBLAS SGEMM.
#include <cudnn.h>
#include <dlfcn.h>

#include "bench/bench.h"
#include "kernels/cuda_check.h"
#include "kernels/kernels.h"
#include "model/arch.h"
#include "train/config.h"

#include <algorithm>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>

namespace {

// cuBLAS is loaded at run time (libcublas.so.13, .12 or plain): it is only a baseline here, and
// the device machines that run ganc-bench may carry another CUDA major version's cuBLAS. These
// entry points have the same ABI in cuBLAS 12 and 13.
typedef void *cublasHandle_t;
typedef int (*create_fn)(cublasHandle_t *);
typedef int (*destroy_fn)(cublasHandle_t);
typedef int (*stream_fn)(cublasHandle_t, cudaStream_t);
typedef int (*math_fn)(cublasHandle_t, int);
typedef int (*sgemm_fn)(cublasHandle_t, int, int, int, int, int, const float *, const float *, int,
                        const float *, int, const float *, float *, int);
enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_DEFAULT_MATH = 0 };
struct Cublas {
  void *lib = nullptr;
  create_fn create;
  destroy_fn destroy;
  stream_fn set_stream;
  math_fn set_math;
  sgemm_fn sgemm;
} cub;

bool load_cublas() {
  const char *names[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so"};
  for (const char *n : names)
    if ((cub.lib = dlopen(n, RTLD_NOW | RTLD_LOCAL))) break;
  if (!cub.lib) return false;
  cub.create = (create_fn)dlsym(cub.lib, "cublasCreate_v2");
  cub.destroy = (destroy_fn)dlsym(cub.lib, "cublasDestroy_v2");
  cub.set_stream = (stream_fn)dlsym(cub.lib, "cublasSetStream_v2");
  cub.set_math = (math_fn)dlsym(cub.lib, "cublasSetMathMode");
  cub.sgemm = (sgemm_fn)dlsym(cub.lib, "cublasSgemm_v2");
  return cub.create && cub.destroy && cub.set_stream && cub.set_math && cub.sgemm;
}

enum Role { FWD = 0, BWD_DATA = 1, BWD_WEIGHT = 2 };
const char *role_name[3] = {"fwd", "bwd-data", "bwd-weight"};

struct Bench {
  ganc_ctx ctx;
  cudaStream_t st;
  cublasHandle_t cublas = nullptr; // null when no cuBLAS library could be loaded
  void *flush = nullptr;           // 2x L2, overwritten before each timed run
  size_t flush_bytes = 0;
  cudaEvent_t e0, e1;
  double peak_tflops = 0;
};

void flush_l2(Bench &b) { CUDA_CHECK(cudaMemsetAsync(b.flush, 0, b.flush_bytes, b.st)); }

template <class F> double median_ms(Bench &b, int reps, F run) {
  for (int i = 0; i < 3; i++)
    run(); // warm-up (cuDNN's algorithm search happens here)
  std::vector<float> t(reps);
  for (int i = 0; i < reps; i++) {
    flush_l2(b);
    CUDA_CHECK(cudaEventRecord(b.e0, b.st));
    run();
    CUDA_CHECK(cudaEventRecord(b.e1, b.st));
    CUDA_CHECK(cudaEventSynchronize(b.e1));
    CUDA_CHECK(cudaEventElapsedTime(&t[i], b.e0, b.e1));
  }
  std::sort(t.begin(), t.end());
  return t[reps / 2];
}

// n values of device memory rounded to bf16 into halves of their own (the caller frees them).
uint16_t *halves_of(Bench &b, const float *d, size_t n) {
  uint16_t *h = (uint16_t *)ganc_cuda_malloc(&b.ctx, n * sizeof(uint16_t));
  act_forward_bf16_cuda(&b.ctx, (ganc_stream)b.st, (int64_t)n, GANC_ACT_NONE, 0.0f, d, h);
  return h;
}

float *random_device(Bench &b, size_t n, unsigned seed) {
  std::vector<float> h(n);
  unsigned s = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    h[i] = ((s >> 8) * (1.0f / 16777216.0f)) * 2 - 1;
  }
  float *d = (float *)ganc_cuda_malloc(&b.ctx, n * sizeof(float));
  ganc_cuda_h2d(&b.ctx, d, h.data(), n * sizeof(float));
  return d;
}

// The device's FP32 peak as cuBLAS reaches it: an 8192³ SGEMM (true FP32, no TF32).
double measure_peak(Bench &b) {
  const int n = 8192;
  float *A = random_device(b, (size_t)n * n, 1), *B = random_device(b, (size_t)n * n, 2),
        *C = random_device(b, (size_t)n * n, 3);
  float one = 1, zero = 0;
  double ms = median_ms(b, 10, [&] {
    CUBLAS_CHECK(
        cub.sgemm(b.cublas, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, A, n, B, n, &zero, C, n));
  });
  ganc_cuda_free(&b.ctx, A);
  ganc_cuda_free(&b.ctx, B);
  ganc_cuda_free(&b.ctx, C);
  return 2.0 * n * n * (double)n / (ms * 1e-3) / 1e12;
}

void bench_init(Bench &b) {
  char why[512];
  memset(&b.ctx, 0, sizeof b.ctx);
  ganc_ctx_init_cpu(&b.ctx, 1);
  if (ganc_cuda_ctx_init(&b.ctx, 0, why, sizeof why))
    ganc_die(GANC_EXIT_USAGE, "ganc-bench: %s (the GPU modes need a GPU)", why);
  b.st = (cudaStream_t)ganc_cuda_stream(&b.ctx);
  if (load_cublas()) {
    CUBLAS_CHECK(cub.create(&b.cublas));
    CUBLAS_CHECK(cub.set_stream(b.cublas, b.st));
    CUBLAS_CHECK(cub.set_math(b.cublas, CUBLAS_DEFAULT_MATH)); // FP32, not TF32
  }
  int l2 = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0));
  b.flush_bytes = (size_t)(l2 > 0 ? l2 : 50 << 20) * 2;
  b.flush = ganc_cuda_malloc(&b.ctx, b.flush_bytes);
  CUDA_CHECK(cudaEventCreate(&b.e0));
  CUDA_CHECK(cudaEventCreate(&b.e1));
  char d[512];
  ganc_cuda_describe(&b.ctx, d, sizeof d);
  if (b.cublas) {
    b.peak_tflops = measure_peak(b);
    fprintf(stderr, "device: %s; measured FP32 peak (cuBLAS SGEMM 8192^3): %.1f TFLOP/s\n", d,
            b.peak_tflops);
  } else {
    // Without cuBLAS, the nominal peak: 128 FP32 lanes per SM (Ampere/Hopper) x 2 x clock.
    cudaDeviceProp p;
    CUDA_CHECK(cudaGetDeviceProperties(&p, 0));
    int khz = 0;
    cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, 0);
    b.peak_tflops = 128.0 * 2 * p.multiProcessorCount * (khz * 1e3) / 1e12;
    fprintf(stderr,
            "device: %s; no cuBLAS library found: %% of peak uses the nominal FP32 peak "
            "%.1f TFLOP/s, and the cuBLAS column is empty\n",
            d, b.peak_tflops);
  }
}

void bench_free(Bench &b) {
  cudaEventDestroy(b.e0);
  cudaEventDestroy(b.e1);
  ganc_cuda_free(&b.ctx, b.flush);
  if (b.cublas) cub.destroy(b.cublas);
  ganc_cuda_ctx_free(&b.ctx);
  ganc_ctx_free(&b.ctx);
}

// One conv role with our kernels or cuDNN. For a transposed layer, `s` is the adjoint shape and
// the layer's roles map onto the conv roles as in ops.h.
void run_role(Bench &b, const conv_shape *s, int transposed, Role r, int cudnn, float *x, float *w,
              float *y) {
  ganc_stream st = (ganc_stream)b.st;
  ganc_ctx *c = &b.ctx;
  // conv role that implements the layer role
  int conv_role = r == BWD_WEIGHT ? BWD_WEIGHT : transposed ? (r == FWD ? BWD_DATA : FWD) : r;
  if (conv_role == FWD) {
    if (cudnn)
      conv2d_forward_cudnn(c, st, s, x, w, y);
    else
      conv2d_forward_cuda(c, st, s, x, w, y);
  } else if (conv_role == BWD_DATA) {
    if (cudnn)
      conv2d_backward_data_cudnn(c, st, s, y, w, x);
    else
      conv2d_backward_data_cuda(c, st, s, y, w, x);
  } else {
    if (cudnn)
      conv2d_backward_weight_cudnn(c, st, s, x, y, w);
    else
      conv2d_backward_weight_cuda(c, st, s, x, y, w);
  }
}

// GEMM-shaped layers: the input covers the whole kernel window with no padding and stride 1,
// i.e. a 1x1 output (D's head; G's first transposed layer). Then every role is one SGEMM.
bool gemm_shaped(const conv_shape *s) {
  return s->P == 1 && s->Q == 1 && s->pad == 0 && s->R == s->H && s->S == s->W;
}

double time_cublas(Bench &b, const conv_shape *s, Role r, float *x, float *w, float *y, int reps) {
  // Row-major views: X [N, RSC], W [RSC, K], Y [N, K]. cuBLAS is column-major, so compute the
  // transposed products.
  int N = s->N, Kd = s->R * s->S * s->C, K = s->K;
  float one = 1, zero = 0;
  return median_ms(b, reps, [&] {
    if (r == FWD) // Y = X W  →  Yᵀ = Wᵀ Xᵀ
      CUBLAS_CHECK(
          cub.sgemm(b.cublas, CUBLAS_OP_N, CUBLAS_OP_N, K, N, Kd, &one, w, K, x, Kd, &zero, y, K));
    else if (r == BWD_DATA) // dX = dY Wᵀ
      CUBLAS_CHECK(
          cub.sgemm(b.cublas, CUBLAS_OP_T, CUBLAS_OP_N, Kd, N, K, &one, w, K, y, K, &zero, x, Kd));
    else // dW += Xᵀ dY
      CUBLAS_CHECK(
          cub.sgemm(b.cublas, CUBLAS_OP_N, CUBLAS_OP_T, K, Kd, N, &one, y, K, x, Kd, &one, w, K));
  });
}

// Variants of kernels/conv.cu's table timed per row. The table outgrew an earlier 16, which cut the
// last rows (the wgmma ones) out of every column silently: nvariants() now stops instead.
constexpr int MAXV = 64;

// cuDNN at a reduced precision, the baseline of the tensor-core variants (issue 12: every role
// within 10% of cuDNN's fastest algorithm at the same precision): TF32 (FP32 tensors, tensor-op
// math) or BF16 (bf16 tensors, FP32 accumulation, buffers of its own), the fastest algorithm
// cudnnFind* reports for the conv role, then the median of `reps` runs. Timing only (the values
// are whatever the buffers hold), so nothing here is kernels/cudnn.cu's oracle. Any refusal or
// failure gives −1 (the table shows "-"): a baseline cuDNN lacks must not stop the table.
double time_cudnn_reduced(Bench &b, const conv_shape *s, int conv_role, int bf16, float *x,
                          float *w, float *y, int reps) {
  cudnnHandle_t h = (cudnnHandle_t)ganc_cuda_cudnn_handle(&b.ctx);
  if (cudnnSetStream(h, b.st) != CUDNN_STATUS_SUCCESS) return -1;
  const cudnnDataType_t dt = bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
  cudnnTensorDescriptor_t xd = nullptr, yd = nullptr;
  cudnnFilterDescriptor_t wd = nullptr;
  cudnnConvolutionDescriptor_t cd = nullptr;
  void *ws = nullptr, *xb = nullptr, *wb = nullptr, *yb = nullptr;
  double ms = -1;
  bool ok = cudnnCreateTensorDescriptor(&xd) == CUDNN_STATUS_SUCCESS &&
            cudnnCreateTensorDescriptor(&yd) == CUDNN_STATUS_SUCCESS &&
            cudnnCreateFilterDescriptor(&wd) == CUDNN_STATUS_SUCCESS &&
            cudnnCreateConvolutionDescriptor(&cd) == CUDNN_STATUS_SUCCESS &&
            cudnnSetTensor4dDescriptor(xd, CUDNN_TENSOR_NHWC, dt, s->N, s->C, s->H, s->W) ==
                CUDNN_STATUS_SUCCESS &&
            cudnnSetTensor4dDescriptor(yd, CUDNN_TENSOR_NHWC, dt, s->N, s->K, s->P, s->Q) ==
                CUDNN_STATUS_SUCCESS &&
            cudnnSetFilter4dDescriptor(wd, dt, CUDNN_TENSOR_NHWC, s->K, s->C, s->R, s->S) ==
                CUDNN_STATUS_SUCCESS &&
            cudnnSetConvolution2dDescriptor(cd, s->pad, s->pad, s->stride, s->stride, 1, 1,
                                            CUDNN_CROSS_CORRELATION,
                                            CUDNN_DATA_FLOAT) == CUDNN_STATUS_SUCCESS &&
            cudnnSetConvolutionMathType(cd, CUDNN_TENSOR_OP_MATH) == CUDNN_STATUS_SUCCESS;
  const size_t nx = (size_t)s->N * s->H * s->W * s->C, nw = (size_t)s->R * s->S * s->C * s->K,
               ny = (size_t)s->N * s->P * s->Q * s->K;
  void *X = x, *W = w, *Y = y;
  if (ok && bf16) { // bf16 copies of the buffers' sizes, filled with 1.0 (0x3F80)
    ok = cudaMalloc(&xb, 2 * nx) == cudaSuccess && cudaMalloc(&wb, 2 * nw) == cudaSuccess &&
         cudaMalloc(&yb, 2 * ny) == cudaSuccess && cudaMemset(xb, 0x3F, 2 * nx) == cudaSuccess &&
         cudaMemset(wb, 0x3F, 2 * nw) == cudaSuccess && cudaMemset(yb, 0x3F, 2 * ny) == cudaSuccess;
    X = xb, W = wb, Y = yb;
  }
  int algo = -1, n = 0;
  size_t wsz = 0;
  if (ok && conv_role == FWD) {
    cudnnConvolutionFwdAlgoPerf_t perf[8];
    ok = cudnnFindConvolutionForwardAlgorithm(h, xd, wd, cd, yd, 8, &n, perf) ==
         CUDNN_STATUS_SUCCESS;
    for (int i = 0; ok && i < n && algo < 0; i++)
      if (perf[i].status == CUDNN_STATUS_SUCCESS) algo = (int)perf[i].algo, wsz = perf[i].memory;
  } else if (ok && conv_role == BWD_DATA) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[8];
    ok = cudnnFindConvolutionBackwardDataAlgorithm(h, wd, yd, cd, xd, 8, &n, perf) ==
         CUDNN_STATUS_SUCCESS;
    for (int i = 0; ok && i < n && algo < 0; i++)
      if (perf[i].status == CUDNN_STATUS_SUCCESS) algo = (int)perf[i].algo, wsz = perf[i].memory;
  } else if (ok) {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[8];
    ok = cudnnFindConvolutionBackwardFilterAlgorithm(h, xd, yd, cd, wd, 8, &n, perf) ==
         CUDNN_STATUS_SUCCESS;
    for (int i = 0; ok && i < n && algo < 0; i++)
      if (perf[i].status == CUDNN_STATUS_SUCCESS) algo = (int)perf[i].algo, wsz = perf[i].memory;
  }
  ok = ok && algo >= 0 && (wsz == 0 || cudaMalloc(&ws, wsz) == cudaSuccess);
  if (ok) {
    const float one = 1.0f, zero = 0.0f;
    cudnnStatus_t st = CUDNN_STATUS_SUCCESS;
    auto run = [&] {
      if (conv_role == FWD)
        st = cudnnConvolutionForward(h, &one, xd, X, wd, W, cd, (cudnnConvolutionFwdAlgo_t)algo, ws,
                                     wsz, &zero, yd, Y);
      else if (conv_role == BWD_DATA)
        st = cudnnConvolutionBackwardData(
            h, &one, wd, W, yd, Y, cd, (cudnnConvolutionBwdDataAlgo_t)algo, ws, wsz, &zero, xd, X);
      else
        st = cudnnConvolutionBackwardFilter(h, &one, xd, X, yd, Y, cd,
                                            (cudnnConvolutionBwdFilterAlgo_t)algo, ws, wsz, &zero,
                                            wd, W);
    };
    run();
    if (st == CUDNN_STATUS_SUCCESS) ms = median_ms(b, reps, run);
    if (st != CUDNN_STATUS_SUCCESS) ms = -1;
  }
  (void)cudaGetLastError(); // a refused launch leaves nothing for the next check to trip on
  cudaFree(ws), cudaFree(xb), cudaFree(wb), cudaFree(yb);
  if (cd) cudnnDestroyConvolutionDescriptor(cd);
  if (wd) cudnnDestroyFilterDescriptor(wd);
  if (xd) cudnnDestroyTensorDescriptor(xd);
  if (yd) cudnnDestroyTensorDescriptor(yd);
  return ms;
}

struct Row {
  char config[64], net[4], layer[24];
  conv_shape s;
  int transposed;
  Role role;
  double ours, cudnn, cublas;    // ms (cublas < 0: not GEMM-shaped); ours = the FP32 dispatch
  double cudnn_tf32, cudnn_bf16; // cuDNN at the tensor-core variants' precisions (< 0: refused)
  double var[MAXV];              // ms of each variant of the table (< 0: not on this device)
  // ms of each variant that reads bf16 operands on those a bf16 training run keeps in bf16: the
  // activation and gradient operands as halves, and forward's and backward-data's weights as
  // halves too (the networks' copies) — the paths training takes (cp.async in the pipelined
  // twins); < 0: not such a variant, or not on this device
  double var16[MAXV];
};

int nvariants() {
  const int n = ganc_conv_variant_count();
  if (n > MAXV)
    ganc_die(GANC_EXIT_RUNTIME,
             "ganc-bench times %d convolution variants per row, the table has %d\n---> HINT: "
             "raise MAXV in src/bench/gpu.cu and rebuild",
             MAXV, n);
  return n;
}

// The fastest reduced-precision variant of a row (−1: none ran).
int best_reduced(const Row &r) {
  int best = -1;
  for (int v = 0; v < nvariants(); v++)
    if (ganc_conv_variant_at(v)->precision != GANC_PREC_FP32 && r.var[v] >= 0 &&
        (best < 0 || r.var[v] < r.var[best]))
      best = v;
  return best;
}

// The table goes to stdout unless the CSV does; the CSV rows to csv when it is not NULL.
void print_header(FILE *csv) {
  if (csv) {
    fprintf(csv, "config,net,layer,role,N,H,W,C,K,R,S,stride,pad,gflop,ours_ms,cudnn_ms,cublas_ms,"
                 "ours_tflops,ours_pct_peak,cudnn_over_ours,cudnn_tf32_ms,cudnn_bf16_ms");
    for (int v = 0; v < nvariants(); v++)
      fprintf(csv, ",%s_ms", ganc_conv_variant_at(v)->name);
    for (int v = 0; v < nvariants(); v++)
      fprintf(csv, ",%s_bf16in_ms", ganc_conv_variant_at(v)->name);
    fprintf(csv, "\n");
  }
  if (csv != stdout)
    printf("%-10s %-3s %-10s %-10s %-26s %8s %9s %9s %9s %8s %6s %9s  %-14s %9s %9s %9s\n",
           "config", "net", "layer", "role", "shape N,H,W,C->K RxS/s/p", "GFLOP", "ours ms",
           "cuDNN ms", "cuBLAS ms", "TFLOP/s", "%peak", "cuDNN/us", "best tc", "tc ms", "TFLOP/s",
           "cuDNN-bf16");
}

void print_row(const Row &r, double peak, FILE *csv) {
  const conv_shape *s = &r.s;
  double gflop = 2.0 * s->N * s->P * s->Q * (double)s->K * s->R * s->S * s->C / 1e9;
  double tf = gflop / r.ours; // GFLOP / ms = TFLOP/s
  if (csv) {
    fprintf(csv, "%s,%s,%s,%s,%d,%d,%d,%d,%d,%d,%d,%d,%d,%.4f,%.4f,%.4f,%.4f,%.3f,%.1f,%.3f",
            r.config, r.net, r.layer, role_name[r.role], s->N, s->H, s->W, s->C, s->K, s->R, s->S,
            s->stride, s->pad, gflop, r.ours, r.cudnn, r.cublas, tf, 100 * tf / peak,
            r.cudnn / r.ours);
    fprintf(csv, ",%.4f,%.4f", r.cudnn_tf32, r.cudnn_bf16);
    for (int v = 0; v < nvariants(); v++)
      fprintf(csv, ",%.4f", r.var[v]);
    for (int v = 0; v < nvariants(); v++)
      fprintf(csv, ",%.4f", r.var16[v]);
    fprintf(csv, "\n");
    fflush(csv);
  }
  if (csv != stdout) {
    char shape[64], cubs[16];
    snprintf(shape, sizeof shape, "%d,%d,%d,%d->%d %dx%d/%d/%d", s->N, s->H, s->W, s->C, s->K, s->R,
             s->S, s->stride, s->pad);
    if (r.cublas >= 0)
      snprintf(cubs, sizeof cubs, "%9.4f", r.cublas);
    else
      snprintf(cubs, sizeof cubs, "%9s", "-");
    const int bv = best_reduced(r);
    char dnn16[16];
    if (r.cudnn_bf16 >= 0)
      snprintf(dnn16, sizeof dnn16, "%9.4f", r.cudnn_bf16);
    else
      snprintf(dnn16, sizeof dnn16, "%9s", "-");
    printf("%-10s %-3s %-10s %-10s %-26s %8.3f %9.4f %9.4f %s %8.2f %5.1f%% %9.2f  %-14s %9.4f "
           "%9.2f %s\n",
           r.config, r.net, r.layer, role_name[r.role], shape, gflop, r.ours, r.cudnn, cubs, tf,
           100 * tf / peak, r.cudnn / r.ours, bv >= 0 ? ganc_conv_variant_at(bv)->name : "-",
           bv >= 0 ? r.var[bv] : 0.0, bv >= 0 ? gflop / r.var[bv] : 0.0, dnn16);
  }
}

Row bench_shape(Bench &b, const conv_shape *s, int transposed, Role role, int reps) {
  Row r;
  memset(&r, 0, sizeof r);
  r.s = *s;
  r.transposed = transposed;
  r.role = role;
  size_t nx = (size_t)s->N * s->H * s->W * s->C, nw = (size_t)s->R * s->S * s->C * s->K,
         ny = (size_t)s->N * s->P * s->Q * s->K;
  float *x = random_device(b, nx, 1), *w = random_device(b, nw, 2), *y = random_device(b, ny, 3);
  r.ours = median_ms(b, reps, [&] { run_role(b, s, transposed, role, 0, x, w, y); });
  // Every variant of the table the device supports, on the same buffers.
  const int conv_role = role == BWD_WEIGHT ? BWD_WEIGHT
                        : transposed       ? (role == FWD ? BWD_DATA : FWD)
                                           : role;
  for (int v = 0; v < MAXV; v++) {
    r.var[v] = -1;
    if (v >= nvariants() || !ganc_conv_variant_runs(&b.ctx, v) ||
        !ganc_conv_variant_supports(v, (ganc_conv_role)conv_role, s))
      continue;
    const float *in0 = conv_role == BWD_DATA ? y : x, *in1 = conv_role == BWD_WEIGHT ? y : w;
    float *out = conv_role == FWD ? y : conv_role == BWD_DATA ? x : w;
    r.var[v] = median_ms(b, reps, [&] {
      conv2d_run_variant_cuda(&b.ctx, (ganc_stream)b.st, v, (ganc_conv_role)conv_role, s, in0, in1,
                              out);
    });
  }
  uint16_t *xh = halves_of(b, x, nx), *wh = halves_of(b, w, nw), *yh = halves_of(b, y, ny);
  for (int v = 0; v < MAXV; v++) {
    r.var16[v] = -1;
    if (v >= nvariants() || r.var[v] < 0 || !ganc_conv_variant_reads_bf16(v)) continue;
    const bool wg = conv_role == BWD_WEIGHT;
    const void *in0 = conv_role == BWD_DATA ? yh : xh;
    const void *in1 = wg ? (const void *)yh : (const void *)w;
    float *out = conv_role == FWD ? y : conv_role == BWD_DATA ? x : w;
    r.var16[v] = median_ms(b, reps, [&] {
      conv2d_run_variant_mixed_cuda(&b.ctx, (ganc_stream)b.st, v, (ganc_conv_role)conv_role, s, in0,
                                    1, in1, wg, wg ? nullptr : wh, out, 0, nullptr);
    });
  }
  ganc_cuda_free(&b.ctx, xh);
  ganc_cuda_free(&b.ctx, wh);
  ganc_cuda_free(&b.ctx, yh);
  r.cudnn = median_ms(b, reps, [&] { run_role(b, s, transposed, role, 1, x, w, y); });
  r.cudnn_tf32 = time_cudnn_reduced(b, s, conv_role, 0, x, w, y, reps);
  r.cudnn_bf16 = time_cudnn_reduced(b, s, conv_role, 1, x, w, y, reps);
  r.cublas = -1;
  if (gemm_shaped(s) && b.cublas) {
    // The layer role's GEMM: for a transposed layer the conv roles are exchanged.
    Role g = role == BWD_WEIGHT ? BWD_WEIGHT : transposed ? (role == FWD ? BWD_DATA : FWD) : role;
    r.cublas = time_cublas(b, s, g, x, w, y, reps);
  }
  ganc_cuda_free(&b.ctx, x);
  ganc_cuda_free(&b.ctx, w);
  ganc_cuda_free(&b.ctx, y);
  return r;
}

} // namespace

extern "C" int ganc_bench_has_gpu_modes(void) { return 1; }

extern "C" int ganc_bench_layers(const char *const *configs, int nconfigs, int batch_override,
                                 int reps, FILE *csv) {
  Bench b;
  bench_init(b);
  print_header(csv);
  for (int k = 0; k < nconfigs; k++) {
    ganc_config c;
    ganc_err err = {0};
    ganc_config_defaults(&c);
    if (ganc_config_load_file(&c, configs[k], &err)) ganc_die_err(&err);
    if (!c.resolution) c.resolution = 64;
    if (!c.channels) c.channels = 3;
    int N = batch_override > 0 ? batch_override : c.batch;
    const char *base = strrchr(configs[k], '/');
    base = base ? base + 1 : configs[k];
    ganc_net nets[2];
    ganc_build_g(&nets[0], &c, "G");
    ganc_build_d(&nets[1], &c);
    for (int n = 0; n < 2; n++) {
      for (int i = 0; i < nets[n].nnodes; i++) {
        const ganc_node *L = &nets[n].nodes[i];
        int t;
        conv_shape s;
        if (!net_node_conv_shape(L, N, &s, &t)) continue;
        for (int r = 0; r < 3; r++) {
          Row row = bench_shape(b, &s, t, (Role)r, reps);
          snprintf(row.config, sizeof row.config, "%.*s", (int)(strlen(base) - 4), base);
          snprintf(row.net, sizeof row.net, "%s", n ? "D" : "G");
          snprintf(row.layer, sizeof row.layer, "%s", L->name);
          print_row(row, b.peak_tflops, csv);
          fflush(stdout);
        }
      }
      net_free(&b.ctx, &nets[n]);
    }
  }
  bench_free(b);
  return 0;
}

extern "C" int ganc_bench_op(const char *op, const char *shape, int reps, FILE *csv) {
  Role r;
  if (!op) ganc_die(GANC_EXIT_USAGE, "--op needs a name");
  if (!strcmp(op, "conv-fwd"))
    r = FWD;
  else if (!strcmp(op, "conv-bwd-data"))
    r = BWD_DATA;
  else if (!strcmp(op, "conv-bwd-weight"))
    r = BWD_WEIGHT;
  else
    ganc_die(GANC_EXIT_USAGE, "--op must be conv-fwd, conv-bwd-data or conv-bwd-weight, not '%s'",
             op);
  int v[9];
  if (!shape || sscanf(shape, "%d,%d,%d,%d,%d,%d,%d,%d,%d", &v[0], &v[1], &v[2], &v[3], &v[4],
                       &v[5], &v[6], &v[7], &v[8]) != 9)
    ganc_die(GANC_EXIT_USAGE, "--shape expects N,H,W,C,K,R,S,stride,pad");
  conv_shape s;
  if (conv_shape_make(&s, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]))
    ganc_die(GANC_EXIT_USAGE, "--shape %s has no output", shape);
  Bench b;
  bench_init(b);
  print_header(csv);
  Row row = bench_shape(b, &s, 0, r, reps);
  snprintf(row.config, sizeof row.config, "op");
  snprintf(row.net, sizeof row.net, "-");
  snprintf(row.layer, sizeof row.layer, "-");
  print_row(row, b.peak_tflops, csv);
  bench_free(b);
  return 0;
}

extern "C" void ganc_bench_variants(FILE *f) {
  // bf16 in: reads activation operands kept in bf16 (train.bf16_activations) as they are.
  fprintf(f, "%-19s %-5s %-13s %-13s %-7s %s\n", "variant", "prec", "needs", "deterministic",
          "bf16 in", "what");
  for (int v = 0; v < ganc_conv_variant_count(); v++) {
    const ganc_conv_variant *var = ganc_conv_variant_at(v);
    static const char *const prec[] = {"fp32", "tf32", "bf16"};
    char needs[32];
    int k = snprintf(needs, sizeof needs, var->min_cc ? "sm_%d" : "any", var->min_cc);
    if (var->chan_multiple > 1)
      snprintf(needs + k, sizeof needs - (size_t)k, " C,K%%%d", var->chan_multiple);
    fprintf(f, "%-19s %-5s %-13s %-13s %-7s %s\n", var->name, prec[var->precision], needs,
            var->deterministic ? "yes" : "no", ganc_conv_variant_reads_bf16(v) ? "yes" : "no",
            var->what);
  }
}
