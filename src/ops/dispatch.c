// dispatch.c — the one place that chooses the backend for every op and for backend memory.
// A CPU context runs the CPU twins (src/ops/*.c); a CUDA context runs the launchers of
// kernels/*.cu on its stream (and, for convolutions with ctx->cudnn_conv, cuDNN). A build without
// CUDA has no CUDA contexts, and says so if asked for one.
#include "ops/dispatch.h"

#include "core/check.h"

#include <stdlib.h>
#include <string.h>

#ifdef GANC_HAVE_CUDA
#include "kernels/kernels.h"
#define IS_CUDA(ctx) ((ctx)->backend == GANC_BACKEND_CUDA)
#define GANC_DISPATCH(op, ...)                                                                     \
  do {                                                                                             \
    if (IS_CUDA(ctx))                                                                              \
      op##_cuda(ctx, ganc_cuda_stream(ctx), __VA_ARGS__);                                          \
    else                                                                                           \
      op##_cpu(ctx, __VA_ARGS__);                                                                  \
  } while (0)
// Convolutions may go to cuDNN instead (train.backend = cudnn).
#define GANC_DISPATCH_CONV(op, ...)                                                                \
  do {                                                                                             \
    if (IS_CUDA(ctx) && ctx->cudnn_conv)                                                           \
      op##_cudnn(ctx, ganc_cuda_stream(ctx), __VA_ARGS__);                                         \
    else                                                                                           \
      GANC_DISPATCH(op, __VA_ARGS__);                                                              \
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
#define GANC_DISPATCH(op, ...) op##_cpu(ctx, __VA_ARGS__)
#define GANC_DISPATCH_CONV(op, ...) op##_cpu(ctx, __VA_ARGS__)
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
  if (IS_CUDA(ctx))
    ganc_cuda_memset0(ctx, p, n * sizeof(float));
  else
    memset(p, 0, n * sizeof(float));
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
  if (IS_CUDA(ctx))
    ganc_cuda_d2d(ctx, dst, src, n * sizeof(float));
  else if (dst != src)
    memmove(dst, src, n * sizeof(float));
}
void ganc_sync(ganc_ctx *ctx) {
  if (IS_CUDA(ctx)) ganc_cuda_sync(ctx);
}

// ---- ops ----------------------------------------------------------------------------------------
void conv2d_forward(ganc_ctx *ctx, const conv_shape *s, const float *x, const float *w, float *y) {
  GANC_DISPATCH_CONV(conv2d_forward, s, x, w, y);
}
void conv2d_backward_data(ganc_ctx *ctx, const conv_shape *s, const float *dy, const float *w,
                          float *dx) {
  GANC_DISPATCH_CONV(conv2d_backward_data, s, dy, w, dx);
}
void conv2d_backward_weight(ganc_ctx *ctx, const conv_shape *s, const float *x, const float *dy,
                            float *dw) {
  GANC_DISPATCH_CONV(conv2d_backward_weight, s, x, dy, dw);
}
void batchnorm_forward_train(ganc_ctx *ctx, int64_t M, int C, const float *x, const float *gamma,
                             const float *beta, float eps, float momentum, float *y, float *mean,
                             float *rstd, float *run_mean, float *run_var) {
  GANC_DISPATCH(batchnorm_forward_train, M, C, x, gamma, beta, eps, momentum, y, mean, rstd,
                run_mean, run_var);
}
void batchnorm_forward_eval(ganc_ctx *ctx, int64_t M, int C, const float *x, const float *gamma,
                            const float *beta, const float *run_mean, const float *run_var,
                            float eps, float *y) {
  GANC_DISPATCH(batchnorm_forward_eval, M, C, x, gamma, beta, run_mean, run_var, eps, y);
}
void batchnorm_backward(ganc_ctx *ctx, int64_t M, int C, const float *x, const float *dy,
                        const float *gamma, const float *mean, const float *rstd, float *dx,
                        float *dgamma, float *dbeta) {
  GANC_DISPATCH(batchnorm_backward, M, C, x, dy, gamma, mean, rstd, dx, dgamma, dbeta);
}
void relu_forward(ganc_ctx *ctx, int64_t n, const float *x, float *y) {
  GANC_DISPATCH(relu_forward, n, x, y);
}
void relu_backward(ganc_ctx *ctx, int64_t n, const float *y, const float *dy, float *dx) {
  GANC_DISPATCH(relu_backward, n, y, dy, dx);
}
void lrelu_forward(ganc_ctx *ctx, int64_t n, float slope, const float *x, float *y) {
  GANC_DISPATCH(lrelu_forward, n, slope, x, y);
}
void lrelu_backward(ganc_ctx *ctx, int64_t n, float slope, const float *y, const float *dy,
                    float *dx) {
  GANC_DISPATCH(lrelu_backward, n, slope, y, dy, dx);
}
void tanh_forward(ganc_ctx *ctx, int64_t n, const float *x, float *y) {
  GANC_DISPATCH(tanh_forward, n, x, y);
}
void tanh_backward(ganc_ctx *ctx, int64_t n, const float *y, const float *dy, float *dx) {
  GANC_DISPATCH(tanh_backward, n, y, dy, dx);
}
void loss_logistic(ganc_ctx *ctx, int n, const float *logit, float target, float *dlogit,
                   float *loss) {
  GANC_DISPATCH(loss_logistic, n, logit, target, dlogit, loss);
}
void loss_hinge(ganc_ctx *ctx, int n, const float *logit, float target, int generator,
                float *dlogit, float *loss) {
  GANC_DISPATCH(loss_hinge, n, logit, target, generator, dlogit, loss);
}
void adam_update(ganc_ctx *ctx, size_t n, float *p, const float *g, float *m, float *v, float lr,
                 float b1, float b2, float eps, int64_t t) {
  GANC_DISPATCH(adam_update, n, p, g, m, v, lr, b1, b2, eps, t);
}
void ema_update(ganc_ctx *ctx, size_t n, float *ema, const float *p, float beta) {
  GANC_DISPATCH(ema_update, n, ema, p, beta);
}
void pixels_to_float(ganc_ctx *ctx, int N, int H, int W, int C, const uint8_t *src,
                     const uint8_t *flip, float *dst) {
  GANC_DISPATCH(pixels_to_float, N, H, W, C, src, flip, dst);
}
void pixels_to_uint8(ganc_ctx *ctx, int64_t n, const float *src, uint8_t *dst) {
  GANC_DISPATCH(pixels_to_uint8, n, src, dst);
}
