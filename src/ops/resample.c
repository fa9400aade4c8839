// resample.c — nearest 2x upsampling, 2x2 average pooling, global sum pooling and the sum of two
// tensors on the CPU; activations [N, H, W, C] (C fastest). The CUDA twins are kernels/resample.cu.
//
// Gradient rule (ops.h): every gradient here is an activation gradient and OVERWRITES.
//
// Bits: upsampling, the 2x2 windows and tensor_add are exact by construction on every backend —
// copies, and float sums of four in one fixed order, ((w00 + w01) + w10) + w11, scaled by 0.25
// (exact: a power of two). sum_pool_forward sums in double in the order of ops/sum_order.h
// ("chunked rows"): its CUDA twin walks the same tree and matches it bit for bit.
#include "ops/ops.h"

#include "core/check.h"    // ganc_die
#include "ops/sum_order.h" // the summation order of sum_pool

#include <stdint.h>
#include <string.h>

// Below this many elements a parallel region costs more than the loop.
#define RS_PARALLEL_MIN 32768

static void rs_check(const char *op, int N, int H, int W, int C) {
  if (N < 1 || H < 1 || W < 1 || C < 1)
    ganc_die(GANC_EXIT_RUNTIME, "internal error in %s: empty or negative shape [%d,%d,%d,%d]", op,
             N, H, W, C);
}

// 2x2 average pooling needs whole windows. The network builders size every pooled layer, so an
// odd size here is a bug in a builder, not a user's input.
static void pool_check(const char *op, int N, int H, int W, int C) {
  rs_check(op, N, H, W, C);
  if (H % 2 || W % 2)
    ganc_die(GANC_EXIT_RUNTIME,
             "internal error in %s: 2x2 average pooling of a %dx%d input (H and W must be even)\n"
             "---> HINT: the network's resolution must halve evenly at every pooled block",
             op, H, W);
}

// ---- the 2x2 windows ----------------------------------------------------------------------------
// "small" [N, h, w, C] and "big" [N, 2h, 2w, C]; the small row r = n·h + i is big rows 2r and
// 2r + 1 (n·2h + 2i = 2r).

// big = small · scale at the 4 positions of each window (scale 1: a copy).
static void spread(ganc_ctx *ctx, int N, int h, int w, int C, const float *small, float scale,
                   float *big) {
  const int64_t rows = (int64_t)N * h, n = rows * w * C;
  const int64_t bw = 2 * (int64_t)w * C; // floats in one big row
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (n >= RS_PARALLEL_MIN)
  for (int64_t r = 0; r < rows; r++)
    for (int j = 0; j < w; j++) {
      const float *s = small + (r * w + j) * C;
      float *b0 = big + 2 * r * bw + 2 * (int64_t)j * C, *b1 = b0 + bw;
      for (int c = 0; c < C; c++) {
        const float v = scale == 1.0f ? s[c] : s[c] * scale;
        b0[c] = v;
        b0[C + c] = v;
        b1[c] = v;
        b1[C + c] = v;
      }
    }
}

// small = ((b00 + b01) + b10) + b11 per window, times scale (scale 1: the plain sum).
static void gather(ganc_ctx *ctx, int N, int h, int w, int C, const float *big, float scale,
                   float *small) {
  const int64_t rows = (int64_t)N * h, n = rows * w * C;
  const int64_t bw = 2 * (int64_t)w * C;
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (n >= RS_PARALLEL_MIN)
  for (int64_t r = 0; r < rows; r++)
    for (int j = 0; j < w; j++) {
      const float *b0 = big + 2 * r * bw + 2 * (int64_t)j * C, *b1 = b0 + bw;
      float *s = small + (r * w + j) * C;
      for (int c = 0; c < C; c++) {
        const float sum = ((b0[c] + b0[C + c]) + b1[c]) + b1[C + c];
        s[c] = scale == 1.0f ? sum : sum * scale;
      }
    }
}

void upsample2x_forward_cpu(ganc_ctx *ctx, int N, int H, int W, int C, const float *x, float *y) {
  rs_check("upsample2x_forward_cpu", N, H, W, C);
  spread(ctx, N, H, W, C, x, 1.0f, y);
}

void upsample2x_backward_cpu(ganc_ctx *ctx, int N, int H, int W, int C, const float *dy,
                             float *dx) {
  rs_check("upsample2x_backward_cpu", N, H, W, C);
  gather(ctx, N, H, W, C, dy, 1.0f, dx);
}

void avgpool2x_forward_cpu(ganc_ctx *ctx, int N, int H, int W, int C, const float *x, float *y) {
  pool_check("avgpool2x_forward_cpu", N, H, W, C);
  gather(ctx, N, H / 2, W / 2, C, x, 0.25f, y);
}

void avgpool2x_backward_cpu(ganc_ctx *ctx, int N, int H, int W, int C, const float *dy, float *dx) {
  pool_check("avgpool2x_backward_cpu", N, H, W, C);
  spread(ctx, N, H / 2, W / 2, C, dy, 0.25f, dx);
}

// ---- tensor_add ---------------------------------------------------------------------------------

// Element i is read before it is written, so y may alias a or b.
void tensor_add_cpu(ganc_ctx *ctx, int64_t n, const float *a, const float *b, float *y) {
  if (n < 0)
    ganc_die(GANC_EXIT_RUNTIME, "internal error in tensor_add_cpu: n = %lld", (long long)n);
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (n >= RS_PARALLEL_MIN)
  for (int64_t i = 0; i < n; i++)
    y[i] = a[i] + b[i];
}

// ---- global sum pooling -------------------------------------------------------------------------

// y[n,c] = Σ_hw x[n,hw,c]: per sample, rows in chunks of GANC_CHUNK_ROWS summed in order into a
// chunk partial, the partials added in order into the total (ops/sum_order.h, "chunked rows"),
// row by row here so the CPU reads memory in order.
void sum_pool_forward_cpu(ganc_ctx *ctx, int N, int HW, int C, const float *x, float *y) {
  rs_check("sum_pool_forward_cpu", N, HW, 1, C);
  const int64_t nchunk = ganc_row_chunks(HW);
  // Scratch: per sample a chunk partial [C] and the total [C] (doubles).
  double *acc = (double *)ganc_scratch(ctx, (size_t)N * 2 * C * (sizeof(double) / sizeof(float)));
#pragma omp parallel for num_threads(ctx->threads)                                                 \
    schedule(static) if ((int64_t)N * HW * C >= RS_PARALLEL_MIN)
  for (int n = 0; n < N; n++) {
    const float *xn = x + (int64_t)n * HW * C;
    double *part = acc + (int64_t)n * 2 * C, *total = part + C;
    memset(total, 0, (size_t)C * sizeof(double));
    for (int64_t j = 0; j < nchunk; j++) {
      memset(part, 0, (size_t)C * sizeof(double));
      const int64_t end = (j + 1) * GANC_CHUNK_ROWS < HW ? (j + 1) * GANC_CHUNK_ROWS : HW;
      for (int64_t r = j * GANC_CHUNK_ROWS; r < end; r++)
        for (int c = 0; c < C; c++)
          part[c] += (double)xn[r * C + c];
      for (int c = 0; c < C; c++)
        total[c] += part[c];
    }
    for (int c = 0; c < C; c++)
      y[(int64_t)n * C + c] = (float)total[c];
  }
}

void sum_pool_backward_cpu(ganc_ctx *ctx, int N, int HW, int C, const float *dy, float *dx) {
  rs_check("sum_pool_backward_cpu", N, HW, 1, C);
  const int64_t rows = (int64_t)N * HW;
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (rows * C >= RS_PARALLEL_MIN)
  for (int64_t r = 0; r < rows; r++)
    memcpy(dx + r * C, dy + (r / HW) * C, (size_t)C * sizeof(float));
}
