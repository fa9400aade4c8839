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
// Makes ctx a CUDA context on `device`: a stream, and a cuDNN handle (oracle, baseline and the
// optional cuDNN convolution backend) made when first asked for. Returns 0, or -1 with `why` set.
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
// A stopwatch of CUDA events on the context's stream (ganc-bench --step): _ms records the end,
// waits for it and returns the milliseconds since _start.
void ganc_cuda_stopwatch_start(ganc_ctx *ctx);
double ganc_cuda_stopwatch_ms(ganc_ctx *ctx);
// Device scratch of at least n floats (grows; contents not kept).
float *ganc_cuda_scratch(ganc_ctx *ctx, size_t n);
// Name, SM count, memory, measured-peak hints for reports.
void ganc_cuda_describe(ganc_ctx *ctx, char *buf, size_t n);

// ---- the launchers of every op of src/ops/ops.def (what each computes is written there) ---------
// <name>_cuda(ctx, stream, parameters) in kernels/<file>.cu; for the convolutions (dispatch CONV)
// also <name>_cudnn(ctx, stream, parameters) in kernels/cudnn.cu: the same roles through cuDNN with
// NHWC tensors and KRSC↔RSCK handled by a weight transpose, cuDNN's fastest true-FP32 algorithm
// (cudnnFind*, cached per shape): oracle for tests, baseline for ganc-bench, `backend = cudnn`.
#define GANC_OP_PARAMS_CUDA(...) (ganc_ctx * ctx, ganc_stream st, __VA_ARGS__)
#define GANC_OP_CUDNN_PLAIN(name, params)
#define GANC_OP_CUDNN_CONV(name, params) void name##_cudnn GANC_OP_PARAMS_CUDA params;
#define GANC_OP(name, dispatch, params, args)                                                      \
  void name##_cuda GANC_OP_PARAMS_CUDA params;                                                     \
  GANC_OP_CUDNN_##dispatch(name, params)
#include "ops/ops.def"
#undef GANC_OP

// ---- latents (kernels/pixels.cu): the GPU side of core/philox.h ---------------------------------
// z [n, z_dim]: row i is ganc_latent(seed, first + i) of core/philox.h, bit-identical to the CPU.
void latents_cuda(ganc_ctx *ctx, ganc_stream st, uint64_t seed, uint64_t first, int n, int z_dim,
                  float *z);

#ifdef __cplusplus
}
#endif

#endif
