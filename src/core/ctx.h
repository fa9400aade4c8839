// ctx.h — the context every op takes: which backend runs, how many threads, and the scratch arena.
// No global mutable state: everything an op may need beyond its arguments lives here.
#ifndef GANC_CTX_H
#define GANC_CTX_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { GANC_BACKEND_CPU = 0, GANC_BACKEND_CUDA = 1 } ganc_backend;

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
  // statistics over all of them (train.batchnorm = sync; set by the trainer around the forwards it syncs).
  // NULL / 0: this process's batch alone.
  struct ganc_comm *comm;
  int bn_sync;
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
