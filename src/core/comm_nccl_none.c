// comm_nccl_none.c — a build without NCCL: the CUDA backend's sums go through host memory.
#include "core/comm_nccl.h"

void *ganc_comm_nccl_init(ganc_comm *c, ganc_ctx *ctx) {
  (void)c;
  (void)ctx;
  return NULL;
}

void ganc_comm_nccl_sum(void *nccl, ganc_ctx *ctx, void *buf, size_t n, int dbl) {
  (void)nccl, (void)ctx, (void)buf, (void)n, (void)dbl;
  ganc_die(GANC_EXIT_RUNTIME, "internal error: NCCL sum in a build without NCCL");
}

void ganc_comm_nccl_free(void *nccl) { (void)nccl; }
