// kernels.h — the C-callable launchers of the CUDA backend (kernels/*.cu).
//
// Every op of src/ops/ops.h has a launcher here named <op>_cuda with the same arguments as its
// CPU twin <op>_cpu plus the stream after the context. Pointers are device memory. Launchers check
// their assumptions (sizes, alignment) and report violations through ganc_die with the op's
// name; kernel launch errors are checked by CUDA_CHECK (kernels/cuda_check.h).
//
// Gradient rule (as ops.h): parameter gradients accumulate (+=), activation gradients overwrite.
#ifndef GANC_KERNELS_H
#define GANC_KERNELS_H

#include "core/ctx.h"
#include "ops/ops.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// cudaStream_t without including CUDA headers in C code (the same type as CUDA's).
typedef struct CUstream_st *ganc_stream;

// ---- context and memory (kernels/ctx.cu) ------------------------------------------------------
// Makes ctx a CUDA context on `device`: a stream and a cuDNN handle (oracle, baseline and the
// optional cuDNN convolution backend). Returns 0, or -1 with `why` set.
int ganc_cuda_ctx_init(ganc_ctx *ctx, int device, char *why, size_t why_len);
void ganc_cuda_ctx_free(ganc_ctx *ctx);
void *ganc_cuda_cudnn_handle(ganc_ctx *ctx); // cudnnHandle_t
ganc_stream ganc_cuda_stream(ganc_ctx *ctx);
// Device memory. Out of memory is fatal with the size asked for, what is free, and a hint
// (a smaller batch); never a bare CUDA error string.
void *ganc_cuda_malloc(ganc_ctx *ctx, size_t bytes);
void ganc_cuda_free(ganc_ctx *ctx, void *p);
void ganc_cuda_memset0(ganc_ctx *ctx, void *p, size_t bytes);
void ganc_cuda_h2d(ganc_ctx *ctx, void *dst, const void *src, size_t bytes);
void ganc_cuda_d2h(ganc_ctx *ctx, void *dst, const void *src, size_t bytes);
void ganc_cuda_d2d(ganc_ctx *ctx, void *dst, const void *src, size_t bytes);
void ganc_cuda_sync(ganc_ctx *ctx);
// The most device memory ganc_cuda_malloc has held at once (bytes), for ganc-bench.
size_t ganc_cuda_peak_bytes(ganc_ctx *ctx);
// Device scratch of at least n floats (grows; contents not kept).
float *ganc_cuda_scratch(ganc_ctx *ctx, size_t n);
// Name, SM count, memory, measured-peak hints for reports.
void ganc_cuda_describe(ganc_ctx *ctx, char *buf, size_t n);

// ---- convolution (kernels/conv.cu): tiled implicit GEMM on NHWC ---------------------------------
void conv2d_forward_cuda(ganc_ctx *ctx, ganc_stream st, const conv_shape *s, const float *x,
                         const float *w, float *y);
void conv2d_backward_data_cuda(ganc_ctx *ctx, ganc_stream st, const conv_shape *s, const float *dy,
                               const float *w, float *dx);
void conv2d_backward_weight_cuda(ganc_ctx *ctx, ganc_stream st, const conv_shape *s, const float *x,
                                 const float *dy, float *dw);

// ---- cuDNN (kernels/cudnn.cu): oracle for tests, baseline for ganc-bench, `backend = cudnn`
// -------- The three roles through cuDNN with NHWC tensors and KRSC↔RSCK handled by a weight
// transpose. The algorithm is cuDNN's fastest true-FP32 one (cudnnFind*, cached per shape).
void conv2d_forward_cudnn(ganc_ctx *ctx, ganc_stream st, const conv_shape *s, const float *x,
                          const float *w, float *y);
void conv2d_backward_data_cudnn(ganc_ctx *ctx, ganc_stream st, const conv_shape *s, const float *dy,
                                const float *w, float *dx);
void conv2d_backward_weight_cudnn(ganc_ctx *ctx, ganc_stream st, const conv_shape *s,
                                  const float *x, const float *dy, float *dw);

// ---- batch norm (kernels/norm.cu)
// -------------------------------------------------------------------
void batchnorm_forward_train_cuda(ganc_ctx *ctx, ganc_stream st, int64_t M, int C, const float *x,
                                  const float *gamma, const float *beta, float eps, float momentum,
                                  float *y, float *mean, float *rstd, float *run_mean,
                                  float *run_var);
void batchnorm_forward_eval_cuda(ganc_ctx *ctx, ganc_stream st, int64_t M, int C, const float *x,
                                 const float *gamma, const float *beta, const float *run_mean,
                                 const float *run_var, float eps, float *y);
void batchnorm_backward_cuda(ganc_ctx *ctx, ganc_stream st, int64_t M, int C, const float *x,
                             const float *dy, const float *gamma, const float *mean,
                             const float *rstd, float *dx, float *dgamma, float *dbeta);

// ---- activations (kernels/act.cu)
// -------------------------------------------------------------------
void relu_forward_cuda(ganc_ctx *ctx, ganc_stream st, int64_t n, const float *x, float *y);
void relu_backward_cuda(ganc_ctx *ctx, ganc_stream st, int64_t n, const float *y, const float *dy,
                        float *dx);
void lrelu_forward_cuda(ganc_ctx *ctx, ganc_stream st, int64_t n, float slope, const float *x,
                        float *y);
void lrelu_backward_cuda(ganc_ctx *ctx, ganc_stream st, int64_t n, float slope, const float *y,
                         const float *dy, float *dx);
void tanh_forward_cuda(ganc_ctx *ctx, ganc_stream st, int64_t n, const float *x, float *y);
void tanh_backward_cuda(ganc_ctx *ctx, ganc_stream st, int64_t n, const float *y, const float *dy,
                        float *dx);

// ---- losses (kernels/loss.cu)
// -----------------------------------------------------------------------
void loss_logistic_cuda(ganc_ctx *ctx, ganc_stream st, int n, const float *logit, float target,
                        float *dlogit, float *loss);
void loss_hinge_cuda(ganc_ctx *ctx, ganc_stream st, int n, const float *logit, float target,
                     int generator, float *dlogit, float *loss);

// ---- optimizer (kernels/adam.cu): one launch per whole parameter block
// ----------------------------
void adam_update_cuda(ganc_ctx *ctx, ganc_stream st, size_t n, float *p, const float *g, float *m,
                      float *v, float lr, float b1, float b2, float eps, int64_t t);
void ema_update_cuda(ganc_ctx *ctx, ganc_stream st, size_t n, float *ema, const float *p,
                     float beta);

// ---- pixels and latents (kernels/pixels.cu)
// ----------------------------------------------------------
void pixels_to_float_cuda(ganc_ctx *ctx, ganc_stream st, int N, int H, int W, int C,
                          const uint8_t *src, const uint8_t *flip, float *dst);
void pixels_to_uint8_cuda(ganc_ctx *ctx, ganc_stream st, int64_t n, const float *src, uint8_t *dst);
// z [n, z_dim]: row i is ganc_latent(seed, first + i) of core/philox.h, bit-identical to the CPU.
void latents_cuda(ganc_ctx *ctx, ganc_stream st, uint64_t seed, uint64_t first, int n, int z_dim,
                  float *z);

#ifdef __cplusplus
}
#endif

#endif
