// dispatch.c — the one place that chooses the backend for every op and for backend memory.
// A CPU context runs the CPU twins (src/ops/*.c); a CUDA context runs the launchers of
// kernels/*.cu on its stream (and, for convolutions with ctx->cudnn_conv, cuDNN). A build without
// CUDA has no CUDA contexts, and says so if asked for one.
#include "ops/dispatch.h"

#include "core/check.h"
#include "core/prof.h" // ganc-bench --step --profile: each op between two marks

#include <stdlib.h>
#include <string.h>

#ifdef GANC_HAVE_CUDA
#include "kernels/kernels.h"
#define IS_CUDA(ctx) ((ctx)->backend == GANC_BACKEND_CUDA)
// args is an entry's parenthesised argument list: `op##_cpu GANC_OP_ARGS args` calls the twin.
#define GANC_OP_ARGS_CUDA(...) (ctx, ganc_cuda_stream(ctx), __VA_ARGS__)
#define GANC_DISPATCH_PLAIN(op, args)                                                              \
  do {                                                                                             \
    if (IS_CUDA(ctx))                                                                              \
      op##_cuda GANC_OP_ARGS_CUDA args;                                                            \
    else                                                                                           \
      op##_cpu GANC_OP_ARGS args;                                                                  \
  } while (0)
// Convolutions may go to cuDNN instead (train.backend = cudnn).
#define GANC_DISPATCH_CONV(op, args)                                                               \
  do {                                                                                             \
    if (IS_CUDA(ctx) && ctx->cudnn_conv)                                                           \
      op##_cudnn GANC_OP_ARGS_CUDA args;                                                           \
    else                                                                                           \
      GANC_DISPATCH_PLAIN(op, args);                                                               \
  } while (0)
#else
#define IS_CUDA(ctx) 0
// Stand-ins that are never reached: a CPU-only build never makes a CUDA context.
static void *ganc_cuda_malloc(ganc_ctx *ctx, size_t n) {
  (void)ctx;
  (void)n;
  return NULL;
}
static void ganc_cuda_free(ganc_ctx *ctx, void *p) { (void)ctx, (void)p; }
static void ganc_cuda_memset0(ganc_ctx *ctx, void *p, size_t n) { (void)ctx, (void)p, (void)n; }
static void ganc_cuda_h2d(ganc_ctx *c, void *d, const void *s, size_t n) {
  (void)c, (void)d, (void)s, (void)n;
}
static void ganc_cuda_d2h(ganc_ctx *c, void *d, const void *s, size_t n) {
  (void)c, (void)d, (void)s, (void)n;
}
static void ganc_cuda_d2d(ganc_ctx *c, void *d, const void *s, size_t n) {
  (void)c, (void)d, (void)s, (void)n;
}
static void ganc_cuda_sync(ganc_ctx *ctx) { (void)ctx; }
static void ganc_cuda_stage_begin(ganc_ctx *c, size_t n) { (void)c, (void)n; }
static void ganc_cuda_stage_copy(ganc_ctx *c, void *d, const void *s, size_t n) {
  (void)c, (void)d, (void)s, (void)n;
}
static void ganc_cuda_stage_end(ganc_ctx *ctx) { (void)ctx; }
static void ganc_cuda_stage_wait(ganc_ctx *ctx) { (void)ctx; }
static void ganc_cuda_capture_begin(ganc_ctx *ctx) { (void)ctx; }
static ganc_graph *ganc_cuda_capture_end(ganc_ctx *ctx) {
  (void)ctx;
  return NULL;
}
static void ganc_cuda_graph_launch(ganc_ctx *ctx, ganc_graph *g) { (void)ctx, (void)g; }
static void ganc_cuda_graph_free(ganc_graph *g) { (void)g; }
static unsigned ganc_cuda_memory_generation(ganc_ctx *ctx) {
  (void)ctx;
  return 0;
}
static int conv2d_reads_bf16_cuda(ganc_ctx *ctx, ganc_conv_role role, const conv_shape *s) {
  (void)ctx, (void)role, (void)s;
  return 0;
}
#define GANC_DISPATCH_PLAIN(op, args) op##_cpu GANC_OP_ARGS args
#define GANC_DISPATCH_CONV(op, args) op##_cpu GANC_OP_ARGS args
#endif

// ---- memory -------------------------------------------------------------------------------------
void *ganc_alloc_bytes(ganc_ctx *ctx, size_t n) {
  if (IS_CUDA(ctx)) {
    void *p = ganc_cuda_malloc(ctx, n ? n : 1);
    ganc_cuda_memset0(ctx, p, n ? n : 1);
    return p;
  }
  return xcalloc(n ? n : 1, 1);
}
float *ganc_alloc(ganc_ctx *ctx, size_t n) { return ganc_alloc_bytes(ctx, n * sizeof(float)); }
void ganc_free(ganc_ctx *ctx, void *p) {
  if (IS_CUDA(ctx))
    ganc_cuda_free(ctx, p);
  else
    free(p);
}
void ganc_zero(ganc_ctx *ctx, float *p, size_t n) {
  const int rec = ctx->prof ? ganc_prof_begin(ctx, "zero") : -1;
  if (IS_CUDA(ctx))
    ganc_cuda_memset0(ctx, p, n * sizeof(float));
  else
    memset(p, 0, n * sizeof(float));
  if (rec != -1) ganc_prof_end(ctx, rec);
}
void ganc_upload_bytes(ganc_ctx *ctx, void *dst, const void *host, size_t n) {
  if (IS_CUDA(ctx))
    ganc_cuda_h2d(ctx, dst, host, n);
  else if (dst != host)
    memcpy(dst, host, n);
}
void ganc_download_bytes(ganc_ctx *ctx, void *host, const void *src, size_t n) {
  if (IS_CUDA(ctx))
    ganc_cuda_d2h(ctx, host, src, n);
  else if (host != src)
    memcpy(host, src, n);
}
void ganc_upload(ganc_ctx *ctx, float *dst, const float *host, size_t n) {
  ganc_upload_bytes(ctx, dst, host, n * sizeof(float));
}
void ganc_download(ganc_ctx *ctx, float *host, const float *src, size_t n) {
  ganc_download_bytes(ctx, host, src, n * sizeof(float));
}
void ganc_copy(ganc_ctx *ctx, float *dst, const float *src, size_t n) {
  const int rec = ctx->prof ? ganc_prof_begin(ctx, "copy") : -1;
  if (IS_CUDA(ctx))
    ganc_cuda_d2d(ctx, dst, src, n * sizeof(float));
  else if (dst != src)
    memmove(dst, src, n * sizeof(float));
  if (rec != -1) ganc_prof_end(ctx, rec);
}
void ganc_sync(ganc_ctx *ctx) {
  if (IS_CUDA(ctx)) ganc_cuda_sync(ctx);
}
void ganc_stage_begin(ganc_ctx *ctx, size_t bytes) {
  if (IS_CUDA(ctx)) ganc_cuda_stage_begin(ctx, bytes);
}
void ganc_stage_copy(ganc_ctx *ctx, void *dst, const void *host, size_t n) {
  if (IS_CUDA(ctx))
    ganc_cuda_stage_copy(ctx, dst, host, n);
  else if (dst != host)
    memcpy(dst, host, n);
}
void ganc_stage_end(ganc_ctx *ctx) {
  if (IS_CUDA(ctx)) ganc_cuda_stage_end(ctx);
}
void ganc_stage_wait(ganc_ctx *ctx) {
  if (IS_CUDA(ctx)) ganc_cuda_stage_wait(ctx);
}
int ganc_capture_begin(ganc_ctx *ctx) {
  if (!IS_CUDA(ctx)) return -1;
  ganc_cuda_capture_begin(ctx);
  return 0;
}
ganc_graph *ganc_capture_end(ganc_ctx *ctx) {
  if (!IS_CUDA(ctx)) ganc_die(GANC_EXIT_RUNTIME, "internal error: no capture on the CPU backend");
  return ganc_cuda_capture_end(ctx);
}
void ganc_graph_launch(ganc_ctx *ctx, ganc_graph *g) {
  if (!IS_CUDA(ctx) || !g) ganc_die(GANC_EXIT_RUNTIME, "internal error: no graph to launch");
  ganc_cuda_graph_launch(ctx, g);
}
void ganc_graph_free(ganc_graph *g) {
  if (g) ganc_cuda_graph_free(g);
}
unsigned ganc_memory_generation(ganc_ctx *ctx) {
  return IS_CUDA(ctx) ? ganc_cuda_memory_generation(ctx) : 0;
}

int conv2d_reads_bf16(ganc_ctx *ctx, ganc_conv_role role, const conv_shape *s) {
  return IS_CUDA(ctx) ? conv2d_reads_bf16_cuda(ctx, role, s) : 0;
}

// ---- ops: one definition per entry of ops.def ---------------------------------------------------
#define GANC_OP_ARGS(...) (ctx, __VA_ARGS__)
// With a profile on the context (core/prof.h), each op between two marks.
#define GANC_OP(name, dispatch, params, args)                                                      \
  void name GANC_OP_PARAMS params {                                                                \
    const int rec_ = ctx->prof ? ganc_prof_begin(ctx, #name) : -1;                                 \
    GANC_DISPATCH_##dispatch(name, args);                                                          \
    if (rec_ != -1) ganc_prof_end(ctx, rec_);                                                      \
  }
#include "ops/ops.def"
#undef GANC_OP
