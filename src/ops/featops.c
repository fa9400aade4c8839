// featops.c — the feature-network ops on the CPU (ops.def: pool2d, pad2d, channel_copy,
// resize_bilinear), forward only. The per-element arithmetic is ops/featops_core.h, shared with
// the CUDA twins (kernels/featops.cu), so both give the same bits.
#include "ops/ops.h"

#include "core/check.h"       // ganc_die
#include "ops/featops_core.h" // the arithmetic

#include <stdint.h>
#include <string.h>

// Below this many output elements a parallel region costs more than the loop.
#define FO_PARALLEL_MIN 32768

static void fo_die(const char *op, const char *why) {
  ganc_die(GANC_EXIT_RUNTIME, "internal error in %s: %s", op, why);
}

void pool2d_forward_cpu(ganc_ctx *ctx, int N, int H, int W, int C, int K, int stride, int pad,
                        int mode, const float *x, float *y) {
  char buf[200];
  const char *why = ganc_pool_invalid(N, H, W, C, K, stride, pad, mode, buf, sizeof buf);
  if (why) fo_die("pool2d_forward_cpu", why);
  const int P = ganc_pool_out(H, K, stride, pad), Q = ganc_pool_out(W, K, stride, pad);
  const int64_t rows = (int64_t)N * P;
#pragma omp parallel for num_threads(ctx->threads)                                                 \
    schedule(static) if (rows * Q * C >= FO_PARALLEL_MIN)
  for (int64_t r = 0; r < rows; r++) {
    const int64_t n = r / P;
    const int p = (int)(r % P);
    for (int q = 0; q < Q; q++)
      for (int c = 0; c < C; c++)
        y[(r * Q + q) * C + c] = ganc_pool_at(x, H, W, C, K, stride, pad, mode, n, p, q, c);
  }
}

void pad2d_forward_cpu(ganc_ctx *ctx, int N, int H, int W, int C, int ph, int pw, const float *x,
                       float *y) {
  if (N < 1 || H < 1 || W < 1 || C < 1 || ph < 0 || pw < 0)
    fo_die("pad2d_forward_cpu", "empty shape or negative padding");
  const int Hp = H + 2 * ph, Wp = W + 2 * pw;
  const int64_t rows = (int64_t)N * Hp, row = (int64_t)Wp * C;
#pragma omp parallel for num_threads(ctx->threads)                                                 \
    schedule(static) if (rows * row >= FO_PARALLEL_MIN)
  for (int64_t r = 0; r < rows; r++) {
    const int64_t n = r / Hp;
    const int i = (int)(r % Hp) - ph;
    float *o = y + r * row;
    if (i < 0 || i >= H) {
      memset(o, 0, sizeof(float) * (size_t)row);
      continue;
    }
    memset(o, 0, sizeof(float) * (size_t)pw * C);
    memcpy(o + (int64_t)pw * C, x + ((n * H + i) * (int64_t)W) * C, sizeof(float) * (size_t)W * C);
    memset(o + (int64_t)(pw + W) * C, 0, sizeof(float) * (size_t)pw * C);
  }
}

void channel_copy_cpu(ganc_ctx *ctx, int64_t M, int C, int Cy, int at, const float *x, float *y) {
  if (M < 1 || C < 1 || at < 0 || at + C > Cy)
    fo_die("channel_copy_cpu", "channels outside the destination");
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (M * C >= FO_PARALLEL_MIN)
  for (int64_t m = 0; m < M; m++)
    memcpy(y + m * Cy + at, x + m * C, sizeof(float) * (size_t)C);
}

void resize_bilinear_forward_cpu(ganc_ctx *ctx, int N, int H, int W, int C, int P, int Q,
                                 const float *x, float *y) {
  if (N < 1 || H < 1 || W < 1 || C < 1 || P < 1 || Q < 1)
    fo_die("resize_bilinear_forward_cpu", "empty or negative shape");
  const int64_t rows = (int64_t)N * P;
#pragma omp parallel for num_threads(ctx->threads)                                                 \
    schedule(static) if (rows * Q * C >= FO_PARALLEL_MIN)
  for (int64_t r = 0; r < rows; r++) {
    const int64_t n = r / P;
    const int p = (int)(r % P);
    for (int q = 0; q < Q; q++)
      for (int c = 0; c < C; c++)
        y[(r * Q + q) * C + c] = ganc_resize_at(x, H, W, C, P, Q, n, p, q, c);
  }
}
