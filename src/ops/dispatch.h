// dispatch.h — what model and training code call: each op by its plain name, and backend memory.
// The one place that chooses between the CPU twins (src/ops/*.c) and the CUDA launchers
// (kernels/*.cu) is dispatch.c; arguments are exactly those of ops.h.
#ifndef GANC_DISPATCH_H
#define GANC_DISPATCH_H

#include "ops/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

// ---- backend memory (host on CPU, device on CUDA) -------------------------------------------
float *ganc_alloc(ganc_ctx *ctx, size_t n);      // n floats, zeroed; fatal when out of memory
void *ganc_alloc_bytes(ganc_ctx *ctx, size_t n); // n bytes, zeroed
void ganc_upload_bytes(ganc_ctx *ctx, void *dst, const void *host, size_t n);
void ganc_download_bytes(ganc_ctx *ctx, void *host, const void *src, size_t n);
void ganc_free(ganc_ctx *ctx, void *p);
void ganc_zero(ganc_ctx *ctx, float *p, size_t n);
void ganc_upload(ganc_ctx *ctx, float *dst, const float *host, size_t n);
void ganc_download(ganc_ctx *ctx, float *host, const float *src, size_t n);
void ganc_copy(ganc_ctx *ctx, float *dst, const float *src, size_t n); // within the backend
// Waits until every op issued so far has finished (a no-op on the CPU).
void ganc_sync(ganc_ctx *ctx);

// ---- ops: the same arguments as the *_cpu functions of ops.h ---------------------------------
void conv2d_forward(ganc_ctx *ctx, const conv_shape *s, const float *x, const float *w, float *y);
void conv2d_backward_data(ganc_ctx *ctx, const conv_shape *s, const float *dy, const float *w,
                          float *dx);
void conv2d_backward_weight(ganc_ctx *ctx, const conv_shape *s, const float *x, const float *dy,
                            float *dw);
void batchnorm_forward_train(ganc_ctx *ctx, int64_t M, int C, const float *x, const float *gamma,
                             const float *beta, float eps, float momentum, float *y, float *mean,
                             float *rstd, float *run_mean, float *run_var);
void batchnorm_forward_eval(ganc_ctx *ctx, int64_t M, int C, const float *x, const float *gamma,
                            const float *beta, const float *run_mean, const float *run_var,
                            float eps, float *y);
void batchnorm_backward(ganc_ctx *ctx, int64_t M, int C, const float *x, const float *dy,
                        const float *gamma, const float *mean, const float *rstd, float *dx,
                        float *dgamma, float *dbeta);
void relu_forward(ganc_ctx *ctx, int64_t n, const float *x, float *y);
void relu_backward(ganc_ctx *ctx, int64_t n, const float *y, const float *dy, float *dx);
void lrelu_forward(ganc_ctx *ctx, int64_t n, float slope, const float *x, float *y);
void lrelu_backward(ganc_ctx *ctx, int64_t n, float slope, const float *y, const float *dy,
                    float *dx);
void tanh_forward(ganc_ctx *ctx, int64_t n, const float *x, float *y);
void tanh_backward(ganc_ctx *ctx, int64_t n, const float *y, const float *dy, float *dx);
void loss_logistic(ganc_ctx *ctx, int n, const float *logit, float target, float *dlogit,
                   float *loss);
void loss_hinge(ganc_ctx *ctx, int n, const float *logit, float target, int generator,
                float *dlogit, float *loss);
void adam_update(ganc_ctx *ctx, size_t n, float *p, const float *g, float *m, float *v, float lr,
                 float b1, float b2, float eps, int64_t t);
void ema_update(ganc_ctx *ctx, size_t n, float *ema, const float *p, float beta);
void pixels_to_float(ganc_ctx *ctx, int N, int H, int W, int C, const uint8_t *src,
                     const uint8_t *flip, float *dst);
void pixels_to_uint8(ganc_ctx *ctx, int64_t n, const float *src, uint8_t *dst);

#ifdef __cplusplus
}
#endif

#endif
