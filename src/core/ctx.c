// ctx.c — the CPU context: thread counts for OpenMP and OpenBLAS, and the grow-only scratch arena.
#include "core/ctx.h"

#include "core/check.h" // ganc_die, the out-of-memory message

#include <cblas.h> // openblas_set_num_threads
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// Scratch holds im2col buffers that OpenBLAS streams through; 64 bytes is a cache line and an
// AVX-512 vector, so no packed load straddles two lines.
enum { SCRATCH_ALIGN = 64 };

void ganc_ctx_init_cpu(ganc_ctx *ctx, int threads) {
  if (threads < 0)
    ganc_die(GANC_EXIT_USAGE, "thread count %d is negative (0 = all cores)", threads);
  if (threads == 0) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    threads = online > 0 ? (int)online : 1;
  }
  memset(ctx, 0, sizeof *ctx);
  ctx->backend = GANC_BACKEND_CPU;
  ctx->threads = threads;
  // Both libraries keep process-wide thread counts; the ops also pass ctx->threads to every
  // OpenMP region, so a second context with another count still gets its own for our loops.
  openblas_set_num_threads(threads);
  omp_set_num_threads(threads);
}

void ganc_ctx_free(ganc_ctx *ctx) {
  if (!ctx) return;
  if (ctx->backend != GANC_BACKEND_CPU && ctx->scratch)
    ganc_die(GANC_EXIT_RUNTIME, "ganc_ctx_free: device scratch must be freed by the CUDA backend");
  free(ctx->scratch);
  ctx->scratch = NULL;
  ctx->scratch_floats = 0;
}

float *ganc_scratch(ganc_ctx *ctx, size_t n) {
  if (ctx->backend != GANC_BACKEND_CPU)
    ganc_die(GANC_EXIT_RUNTIME, "ganc_scratch: only the CPU backend's host scratch lives here");
  if (n <= ctx->scratch_floats && ctx->scratch) return ctx->scratch;
  // Round up to whole cache lines (and at least one) so tiny requests do not reallocate often.
  size_t per_line = SCRATCH_ALIGN / sizeof(float);
  if (n == 0) n = 1;
  if (n > (SIZE_MAX - per_line) / sizeof(float))
    ganc_die(GANC_EXIT_RUNTIME, "scratch of %zu floats does not fit in memory", n);
  n = (n + per_line - 1) / per_line * per_line;
  // Contents need not survive, so free first: the old and new buffers are never both held.
  free(ctx->scratch);
  ctx->scratch = NULL;
  ctx->scratch_floats = 0;
  void *p = NULL;
  int rc = posix_memalign(&p, SCRATCH_ALIGN, n * sizeof(float));
  if (rc != 0 || !p) {
    fprintf(stderr,
            "error: out of host memory asking for %zu bytes of scratch at %s:%d\n"
            "---> HINT: use smaller batches, or close other programs\n",
            n * sizeof(float), __FILE__, __LINE__);
    exit(GANC_EXIT_RUNTIME);
  }
  ctx->scratch = p;
  ctx->scratch_floats = n;
  return ctx->scratch;
}
