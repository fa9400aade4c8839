// ops.h — every op of the engine, forward and backward, on float32 NHWC tensors.
//
// Each op has one home: its CPU twin `<op>_cpu(ctx, ...)` in src/ops/<file>.c and (later) its CUDA
// launcher `<op>_cuda(ctx, stream, ...)` in kernels/<file>.cu, with the same arguments less the
// stream. Callers use the plain name `<op>(ctx, ...)` from src/ops/dispatch.c, the one place that
// chooses the backend. Pointers live in the backend's memory (host for CPU, device for CUDA).
//
// Gradient rule, once for all ops: parameter gradients ACCUMULATE (+=), so a caller zeroes them
// once per step; activation gradients OVERWRITE (=).
//
// Layouts: activations [N, H, W, C] (NHWC, C fastest); convolution weights [R, S, C, K] =
// [kernel rows, kernel cols, input channels, output channels] (K fastest); per-channel vectors [C].
#ifndef GANC_OPS_H
#define GANC_OPS_H

#include "core/ctx.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---- convolution -------------------------------------------------------------------------------
// One shape describes a convolution x [N,H,W,C] → y [N,P,Q,K] with weights [R,S,C,K], stride and
// symmetric zero padding; P = (H + 2 pad − R) / stride + 1, Q likewise.
//
// A transposed convolution (DCGAN's generator) is the same three roles exchanged. With `s` the
// shape of the ordinary convolution that maps the transposed conv's OUTPUT [N,H,W,C] to its INPUT
// [N,P,Q,K] (its adjoint), for out = convT(in, w):
//   out   = conv2d_backward_data(s, dy = in, w)
//   d_in  = conv2d_forward(s, x = d_out, w)
//   dw   += conv2d_backward_weight(s, x = d_out, dy = in)
typedef struct conv_shape {
  int N, H, W, C; // input
  int K;          // output channels
  int R, S;       // kernel rows, cols
  int stride, pad;
  int P, Q; // output rows, cols (filled by conv_shape_make)
} conv_shape;

// Fills s; returns 0, or -1 when the shape is impossible (P or Q < 1, non-positive sizes).
int conv_shape_make(conv_shape *s, int N, int H, int W, int C, int K, int R, int S, int stride,
                    int pad);

// y [N,P,Q,K] = conv(x [N,H,W,C], w [R,S,C,K])                                    (overwrites y)
void conv2d_forward_cpu(ganc_ctx *ctx, const conv_shape *s, const float *x, const float *w,
                        float *y);
// dx [N,H,W,C] = ∂L/∂x given dy [N,P,Q,K]                                        (overwrites dx)
void conv2d_backward_data_cpu(ganc_ctx *ctx, const conv_shape *s, const float *dy, const float *w,
                              float *dx);
// dw [R,S,C,K] += ∂L/∂w given x and dy                                          (accumulates dw)
void conv2d_backward_weight_cpu(ganc_ctx *ctx, const conv_shape *s, const float *x, const float *dy,
                                float *dw);

// ---- batch normalization over M = N·H·W rows of C channels ----------------------------------
// Training: y = gamma · (x − mean) · rstd + beta with the batch's mean and biased variance;
// saves mean [C] and rstd [C] = 1/sqrt(var + eps) for backward; updates the running statistics
// like PyTorch: run = (1 − momentum) · run + momentum · batch (running variance unbiased, M/(M−1)).
// run_mean/run_var may be NULL (no update).
void batchnorm_forward_train_cpu(ganc_ctx *ctx, int64_t M, int C, const float *x,
                                 const float *gamma, const float *beta, float eps, float momentum,
                                 float *y, float *mean, float *rstd, float *run_mean,
                                 float *run_var);
// Eval: the running statistics instead of the batch's.
void batchnorm_forward_eval_cpu(ganc_ctx *ctx, int64_t M, int C, const float *x, const float *gamma,
                                const float *beta, const float *run_mean, const float *run_var,
                                float eps, float *y);
// dx = ∂L/∂x (overwrites); dgamma, dbeta += (accumulate). x, mean, rstd as in training forward.
void batchnorm_backward_cpu(ganc_ctx *ctx, int64_t M, int C, const float *x, const float *dy,
                            const float *gamma, const float *mean, const float *rstd, float *dx,
                            float *dgamma, float *dbeta);

// ---- activations (elementwise over n; y may alias x, dx may alias dy) ----------------------
void relu_forward_cpu(ganc_ctx *ctx, int64_t n, const float *x, float *y);
void relu_backward_cpu(ganc_ctx *ctx, int64_t n, const float *y, const float *dy, float *dx);
void lrelu_forward_cpu(ganc_ctx *ctx, int64_t n, float slope, const float *x, float *y);
void lrelu_backward_cpu(ganc_ctx *ctx, int64_t n, float slope, const float *y, const float *dy,
                        float *dx); // uses y's sign (same as x's for slope > 0)
void tanh_forward_cpu(ganc_ctx *ctx, int64_t n, const float *x, float *y);
void tanh_backward_cpu(ganc_ctx *ctx, int64_t n, const float *y, const float *dy, float *dx);

// ---- losses from logits [n]; the loss is a mean over n ------------------------------------------
// target +1 (real) or −1 (fake).
// logistic: loss = mean softplus(−target · l), the non-saturating GAN loss for both D and G,
//           computed stably (no overflow for |l| up to FLT_MAX).
// hinge:    loss = mean relu(1 − target · l) (D); generator = 1: loss = −mean l (G).
// dlogit [n] = ∂loss/∂l (overwrites); *loss (one float in backend memory) = the value.
void loss_logistic_cpu(ganc_ctx *ctx, int n, const float *logit, float target, float *dlogit,
                       float *loss);
void loss_hinge_cpu(ganc_ctx *ctx, int n, const float *logit, float target, int generator,
                    float *dlogit, float *loss);

// ---- optimizer and averaging over a whole parameter block ----------------------------------
// Adam as PyTorch: m = b1 m + (1−b1) g; v = b2 v + (1−b2) g²; p −= lr · m̂ / (sqrt(v̂) + eps) with
// m̂ = m / (1 − b1^t), v̂ = v / (1 − b2^t); t is the 1-based step count after this update.
void adam_update_cpu(ganc_ctx *ctx, size_t n, float *p, const float *g, float *m, float *v,
                     float lr, float b1, float b2, float eps, int64_t t);
// ema = beta · ema + (1 − beta) · p
void ema_update_cpu(ganc_ctx *ctx, size_t n, float *ema, const float *p, float beta);

// ---- pixels
// --------------------------------------------------------------------------------------- uint8
// [N,H,W,C] → float [N,H,W,C] in [−1, 1] (v / 127.5 − 1); flip [N] (may be NULL): 1 mirrors that
// image left-right.
void pixels_to_float_cpu(ganc_ctx *ctx, int N, int H, int W, int C, const uint8_t *src,
                         const uint8_t *flip, float *dst);
// float [n] in [−1, 1] → uint8 [n]: round((v + 1) · 127.5), clamped to 0..255; NaN → 0.
void pixels_to_uint8_cpu(ganc_ctx *ctx, int64_t n, const float *src, uint8_t *dst);

#ifdef __cplusplus
}
#endif

#endif
