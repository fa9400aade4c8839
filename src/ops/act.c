// act.c — elementwise activations on the CPU. Every loop reads element i before writing element i,
// so y may alias x and dx may alias dy, as ops.h allows.
#include "ops/ops.h"

#include "ops/act_core.h"  // the forward arithmetic, shared with the CUDA twins and batch norm
#include "ops/precision.h" // y stored in bf16

#include <math.h>
#include <stdint.h>

// Below this many elements a parallel region costs more than the loop.
#define ACT_PARALLEL_MIN 32768

void relu_forward_cpu(ganc_ctx *ctx, int64_t n, const float *x, float *y) {
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (n >= ACT_PARALLEL_MIN)
  for (int64_t i = 0; i < n; i++)
    y[i] = ganc_relu(x[i]);
}

void relu_backward_cpu(ganc_ctx *ctx, int64_t n, const void *y, int y_bf16, const float *dy,
                       float *dx) {
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (n >= ACT_PARALLEL_MIN)
  for (int64_t i = 0; i < n; i++)
    dx[i] = ganc_act_grad(GANC_ACT_RELU, 0.0f, ganc_load_as(y, y_bf16, i), dy[i]);
}

void lrelu_forward_cpu(ganc_ctx *ctx, int64_t n, float slope, const float *x, float *y) {
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (n >= ACT_PARALLEL_MIN)
  for (int64_t i = 0; i < n; i++)
    y[i] = ganc_lrelu(slope, x[i]);
}

void lrelu_backward_cpu(ganc_ctx *ctx, int64_t n, float slope, const void *y, int y_bf16,
                        const float *dy, float *dx) {
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (n >= ACT_PARALLEL_MIN)
  for (int64_t i = 0; i < n; i++)
    dx[i] = ganc_act_grad(GANC_ACT_LRELU, slope, ganc_load_as(y, y_bf16, i), dy[i]);
}

void act_forward_bf16_cpu(ganc_ctx *ctx, int64_t n, int act, float slope, const float *x, void *y) {
  uint16_t *h = y;
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (n >= ACT_PARALLEL_MIN)
  for (int64_t i = 0; i < n; i++)
    h[i] = ganc_bf16_store(ganc_act(act, slope, x[i]));
}

void tanh_forward_cpu(ganc_ctx *ctx, int64_t n, const float *x, float *y) {
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (n >= ACT_PARALLEL_MIN)
  for (int64_t i = 0; i < n; i++)
    y[i] = tanhf(x[i]);
}

// d tanh(x)/dx = 1 − tanh(x)², from the saved output.
void tanh_backward_cpu(ganc_ctx *ctx, int64_t n, const float *y, const float *dy, float *dx) {
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (n >= ACT_PARALLEL_MIN)
  for (int64_t i = 0; i < n; i++)
    dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}
