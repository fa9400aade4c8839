// ctx.h — the context every op takes: which backend runs, how many threads, and the scratch arena.
// No global mutable state: everything an op may need beyond its arguments lives here.
#ifndef GANC_CTX_H
#define GANC_CTX_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { GANC_BACKEND_CPU = 0, GANC_BACKEND_CUDA = 1 } ganc_backend;

// The precision of the convolutions' products (train.precision). FP32 master weights, Adam state,
// activations in memory (but see bf16_store) and every sum stay FP32; TF32 and BF16 round the
// convolutions' operands (to 11 and 8 significant bits) and multiply them on tensor cores (CUDA),
// or round them the same way before the FP32 GEMM (CPU twins), so that both backends compute the
// same function. BF16 also rounds each convolution output that only a batch norm reads to bf16
// before the batch norm sees it (model/net.c: round_out), as PyTorch's autocast convolution
// returns bf16.
typedef enum { GANC_PREC_FP32 = 0, GANC_PREC_TF32 = 1, GANC_PREC_BF16 = 2 } ganc_precision;

// A captured CUDA graph (kernels/ctx.cu); opaque to the host code.
typedef struct ganc_graph ganc_graph;

typedef struct ganc_ctx {
  ganc_backend backend;
  int threads; // CPU threads for OpenMP and OpenBLAS (>= 1)
  // Scratch: one growing buffer, reused by every op call (ops run one at a time per context).
  // Host memory on the CPU backend; device memory on CUDA.
  float *scratch;
  size_t scratch_floats;
  void *cuda;     // the CUDA backend's own state (streams, handles), NULL on the CPU
  int cudnn_conv; // CUDA only: convolutions through cuDNN instead of ganc's kernels (config
                  // train.backend = cudnn), to compare whole runs
  // Data-parallel training (core/comm.h): the ranks, and whether batch norm in training sums its
  // statistics over all of them (train.batchnorm = sync; set by the trainer around the forwards it
  // syncs). NULL / 0: this process's batch alone.
  struct ganc_comm *comm;
  int bn_sync;
  ganc_precision precision; // of the convolutions (see above); GANC_PREC_FP32 unless set
  // CUDA only: a convolution variant by name (kernels/conv.cu's table; train.conv_variant), or
  // NULL for the dispatch's own choice, and where that choice is written (NULL: nowhere).
  const char *conv_variant;
  FILE *tune_log;
  // train.bf16_activations: networks finalized for training on this context keep in bf16 the
  // activations and activation gradients whose every reader rounds them to bf16 anyway, and the
  // convolution outputs that BF16 rounds for batch norm (model/net.c: net_finalize; 0: all FP32).
  int bf16_store;
  // train.fuse_activations = false: no activation applied by the convolution beside it (its
  // forward on a convolution's output, its backward on the gradient the reading convolution
  // writes: model/net.c, ops.h's ganc_conv_epi); the same bits either way, to measure the fusion.
  int no_act_fusion;
  // train.fuse_batchnorm_stats = false: every batch norm in training makes its statistics in two
  // passes of its own over its input, also where a convolution that it alone reads could sum them
  // as it stores its output (model/net.c: bn_stats; ops.h's ganc_bn_part).
  int no_bn_stats_fusion;
  // train.recompute_batchnorm: networks finalized for training on this context do not keep the
  // batch-norm outputs a convolution alone reads; each is made again just before that
  // convolution's backward (model/net.c: net_finalize, net_backward); the same bits either way.
  int recompute_bn;
  // ganc-bench --step --profile: every op timed and attributed to its place (core/prof.h); NULL
  // (always, outside that benchmark's profiled steps): nothing recorded.
  struct ganc_prof *prof;
} ganc_ctx;

// A CPU context with `threads` threads (0 = all cores). Sets OpenBLAS/OpenMP thread counts.
void ganc_ctx_init_cpu(ganc_ctx *ctx, int threads);
void ganc_ctx_free(ganc_ctx *ctx);
// Scratch of at least n floats, valid until the next call (contents not preserved).
float *ganc_scratch(ganc_ctx *ctx, size_t n);

#ifdef __cplusplus
}
#endif

#endif
