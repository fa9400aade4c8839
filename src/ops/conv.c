// conv.c — convolution on the CPU, the three roles of ops.h:
//   forward          y  = im2col(x) · w                  one sgemm per chunk of samples
//   backward_data    dx = col2im(dy · wᵀ)                 also the transposed convolution's forward
//   backward_weight  dw += im2col(x)ᵀ · dy                also the transposed convolution's dw
// The column matrix of a sample is [P·Q, R·S·C]: row (p, q) holds the input patch under the kernel
// at output (p, q), in the weights' own order (r, s, c), so w [R,S,C,K] is already the [R·S·C, K]
// right-hand side and no weight is ever transposed in memory.
//
// Determinism: im2col copies and col2im gathers (each dx element sums its contributions in a fixed
// (r, s) order on one thread), so no result depends on scheduling; sgemm calls happen in a fixed
// chunk order whose size depends only on the shape.
#include "ops/ops.h"

#include "core/check.h" // ganc_die, xmalloc
#include "ops/precision.h"

#include <cblas.h>
#include <limits.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// Columns are built for a chunk of samples at a time, at most this many floats (32 MB), so memory
// stays flat as the batch grows and the buffer stays near the caches; one sample is the minimum.
#define CONV_COL_MAX_FLOATS ((size_t)8 << 20)
// Below this many column floats (1 MB) starting a thread team costs more than the copy saves.
#define CONV_PARALLEL_MIN_FLOATS ((size_t)1 << 18)

// Threads for an im2col/col2im pass over `floats` column entries.
static int col_team(size_t floats, int threads) {
  return floats >= CONV_PARALLEL_MIN_FLOATS ? threads : 1;
}

// After a parallel pass, libgomp's idle workers spin-wait (GOMP_SPINCOUNT) on the cores the sgemm
// that follows needs; releasing the team lets them sleep at once. With the pthread OpenBLAS this
// took a DCGAN layer's three roles from 105 to 124 GFLOP/s on 2 cores; with the OpenMP OpenBLAS
// (one pool, now the default) it is still slightly ahead: fmnist32 270-278 vs 243-251 img/s.
static void col_team_release(int team) {
  if (team > 1) omp_pause_resource_all(omp_pause_soft);
}

// Multiplies the factors, failing once the running product leaves int: cblas takes int sizes.
static int product_fits_int(const int64_t *f, int nf) {
  int64_t p = 1;
  for (int i = 0; i < nf; i++) {
    p *= f[i]; // both sides are <= INT_MAX here, so the product fits int64
    if (p > INT_MAX) return 0;
  }
  return 1;
}

int conv_shape_make(conv_shape *s, int N, int H, int W, int C, int K, int R, int S, int stride,
                    int pad) {
  memset(s, 0, sizeof *s);
  if (N < 1 || H < 1 || W < 1 || C < 1 || K < 1 || R < 1 || S < 1 || stride < 1 || pad < 0)
    return -1;
  // Checked before dividing: C division truncates toward zero, so a kernel one row larger than
  // the padded input would otherwise give P = 1.
  int64_t hp = (int64_t)H + 2 * (int64_t)pad, wp = (int64_t)W + 2 * (int64_t)pad;
  if (hp < R || wp < S) return -1;
  int64_t P = (hp - R) / stride + 1, Q = (wp - S) / stride + 1;
  if (P > INT_MAX || Q > INT_MAX) return -1;
  // Every tensor and one sample's column buffer must be indexable by cblas's int sizes.
  int64_t x_n[] = {N, H, W, C}, y_n[] = {N, P, Q, K}, w_n[] = {R, S, C, K},
          col_n[] = {P, Q, R, S, C};
  if (!product_fits_int(x_n, 4) || !product_fits_int(y_n, 4) || !product_fits_int(w_n, 4) ||
      !product_fits_int(col_n, 5))
    return -1;
  *s = (conv_shape){.N = N,
                    .H = H,
                    .W = W,
                    .C = C,
                    .K = K,
                    .R = R,
                    .S = S,
                    .stride = stride,
                    .pad = pad,
                    .P = (int)P,
                    .Q = (int)Q};
  return 0;
}

int conv_shape_dense(const conv_shape *s, conv_shape *d) {
  if (s->pad || s->H != s->R || s->W != s->S || (s->R == 1 && s->S == 1)) return 0;
  return conv_shape_make(d, s->N, 1, 1, s->R * s->S * s->C, s->K, 1, 1, 1, 0) == 0;
}

// A shape that did not come from conv_shape_make (or was edited after) would index out of bounds;
// recomputing it costs nothing next to the convolution.
static void conv_check(const conv_shape *s, const char *op) {
  conv_shape t;
  if (!s || conv_shape_make(&t, s->N, s->H, s->W, s->C, s->K, s->R, s->S, s->stride, s->pad) != 0 ||
      t.P != s->P || t.Q != s->Q)
    ganc_die(GANC_EXIT_RUNTIME, "%s: invalid conv_shape (fill it with conv_shape_make)", op);
}

// When the column matrix is x itself, viewed as [N·P·Q, R·S·C], no im2col is needed:
//   the kernel covers the whole unpadded input (the D head, and the G head as a transposed conv
//   from 1x1), so P = Q = 1 and a sample's patch is the sample; or
//   a 1x1 kernel at stride 1, where each pixel is its own patch.
static int col_is_x(const conv_shape *s) {
  if (s->pad != 0) return 0;
  return (s->R == s->H && s->S == s->W) || (s->R == 1 && s->S == 1 && s->stride == 1);
}

// Samples per chunk so that the column buffer stays within CONV_COL_MAX_FLOATS.
static int conv_chunk(const conv_shape *s) {
  size_t per_sample = (size_t)s->P * s->Q * s->R * s->S * s->C;
  size_t nb = CONV_COL_MAX_FLOATS / per_sample;
  if (nb < 1) nb = 1;
  if (nb > (size_t)s->N) nb = (size_t)s->N;
  return (int)nb;
}

// col [nb·P·Q, R·S·C] from x [nb, H, W, C] (x points at the chunk's first sample); padding → 0.
static void im2col(const conv_shape *s, int nb, const float *x, float *col, int threads) {
  const int H = s->H, W = s->W, C = s->C, R = s->R, S = s->S, P = s->P, Q = s->Q;
  const int stride = s->stride, pad = s->pad;
  const size_t sc = (size_t)S * C, rsc = (size_t)R * sc;
  const int64_t rows = (int64_t)nb * P;
  const int team = col_team((size_t)rows * Q * rsc, threads);
#pragma omp parallel for num_threads(team) schedule(static) if (team > 1)
  for (int64_t np = 0; np < rows; np++) {
    const int64_t n = np / P;
    const int p = (int)(np % P);
    for (int q = 0; q < Q; q++) {
      float *dst = col + ((size_t)np * Q + q) * rsc;
      // Kernel columns [s_lo, s_hi) land inside the image; the rest are padding. For one kernel
      // row they are contiguous in x (NHWC), so each row is one copy between two zero fills.
      const int w0 = q * stride - pad;
      int s_lo = w0 < 0 ? -w0 : 0;
      if (s_lo > S) s_lo = S;
      int s_hi = W - w0 < S ? W - w0 : S;
      if (s_hi < s_lo) s_hi = s_lo;
      for (int r = 0; r < R; r++) {
        float *d = dst + (size_t)r * sc;
        const int h = p * stride - pad + r;
        if (h < 0 || h >= H) {
          memset(d, 0, sc * sizeof(float));
          continue;
        }
        memset(d, 0, (size_t)s_lo * C * sizeof(float));
        if (s_hi > s_lo) {
          const float *src = x + (((size_t)n * H + h) * W + (w0 + s_lo)) * C;
          memcpy(d + (size_t)s_lo * C, src, (size_t)(s_hi - s_lo) * C * sizeof(float));
        }
        memset(d + (size_t)s_hi * C, 0, (size_t)(S - s_hi) * C * sizeof(float));
      }
    }
  }
  col_team_release(team);
}

// dx [nb, H, W, C] = the adjoint of im2col applied to dcol [nb·P·Q, R·S·C] (overwrites dx).
// Written as a gather: each input pixel sums the column entries im2col copied from it. Every
// dx element is owned by one iteration, so rows of all samples run in parallel without races,
// and the (r, s) summation order is fixed.
static void col2im(const conv_shape *s, int nb, const float *dcol, float *dx, int threads) {
  const int H = s->H, W = s->W, C = s->C, R = s->R, S = s->S, P = s->P, Q = s->Q;
  const int stride = s->stride, pad = s->pad;
  const size_t rsc = (size_t)R * S * C;
  const int64_t rows = (int64_t)nb * H;
  const int team = col_team((size_t)nb * P * Q * rsc, threads);
#pragma omp parallel for num_threads(team) schedule(static) if (team > 1)
  for (int64_t nh = 0; nh < rows; nh++) {
    const int64_t n = nh / H;
    const int h = (int)(nh % H);
    for (int w = 0; w < W; w++) {
      float *restrict d = dx + ((size_t)nh * W + w) * C;
      memset(d, 0, (size_t)C * sizeof(float));
      for (int r = 0; r < R; r++) {
        const int t = h + pad - r; // = p·stride when input row h is kernel row r of output row p
        if (t < 0) break;          // larger r only go further out
        if (t % stride) continue;
        const int p = t / stride;
        if (p >= P) continue;
        for (int sx = 0; sx < S; sx++) {
          const int u = w + pad - sx;
          if (u < 0) break;
          if (u % stride) continue;
          const int q = u / stride;
          if (q >= Q) continue;
          const float *restrict src =
              dcol + (((size_t)n * P + p) * Q + q) * rsc + ((size_t)r * S + sx) * C;
          for (int c = 0; c < C; c++)
            d[c] += src[c];
        }
      }
    }
  }
  col_team_release(team);
}

static void forward_fp32(ganc_ctx *ctx, const conv_shape *s, const float *x, const float *w,
                         float *y) {
  conv_check(s, "conv2d_forward_cpu");
  const int PQ = s->P * s->Q, RSC = s->R * s->S * s->C, K = s->K;
  if (col_is_x(s)) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->N * PQ, K, RSC, 1.0f, x, RSC, w, K,
                0.0f, y, K);
    return;
  }
  const int nb = conv_chunk(s);
  float *col = ganc_scratch(ctx, (size_t)nb * PQ * RSC);
  const size_t x_sample = (size_t)s->H * s->W * s->C, y_sample = (size_t)PQ * K;
  for (int n0 = 0; n0 < s->N; n0 += nb) {
    const int m = s->N - n0 < nb ? s->N - n0 : nb;
    im2col(s, m, x + n0 * x_sample, col, ctx->threads);
    // y [m·P·Q, K] = col [m·P·Q, R·S·C] · w [R·S·C, K]
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m * PQ, K, RSC, 1.0f, col, RSC, w, K,
                0.0f, y + n0 * y_sample, K);
  }
}

static void backward_data_fp32(ganc_ctx *ctx, const conv_shape *s, const float *dy, const float *w,
                               float *dx) {
  conv_check(s, "conv2d_backward_data_cpu");
  const int PQ = s->P * s->Q, RSC = s->R * s->S * s->C, K = s->K;
  if (col_is_x(s)) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->N * PQ, RSC, K, 1.0f, dy, K, w, K, 0.0f,
                dx, RSC);
    return;
  }
  const int nb = conv_chunk(s);
  float *dcol = ganc_scratch(ctx, (size_t)nb * PQ * RSC);
  const size_t x_sample = (size_t)s->H * s->W * s->C, y_sample = (size_t)PQ * K;
  for (int n0 = 0; n0 < s->N; n0 += nb) {
    const int m = s->N - n0 < nb ? s->N - n0 : nb;
    // dcol [m·P·Q, R·S·C] = dy [m·P·Q, K] · wᵀ [K, R·S·C]
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m * PQ, RSC, K, 1.0f, dy + n0 * y_sample,
                K, w, K, 0.0f, dcol, RSC);
    col2im(s, m, dcol, dx + n0 * x_sample, ctx->threads);
  }
}

static void backward_weight_fp32(ganc_ctx *ctx, const conv_shape *s, const float *x,
                                 const float *dy, float *dw) {
  conv_check(s, "conv2d_backward_weight_cpu");
  const int PQ = s->P * s->Q, RSC = s->R * s->S * s->C, K = s->K;
  if (col_is_x(s)) {
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, RSC, K, s->N * PQ, 1.0f, x, RSC, dy, K,
                1.0f, dw, K);
    return;
  }
  const int nb = conv_chunk(s);
  float *col = ganc_scratch(ctx, (size_t)nb * PQ * RSC);
  const size_t x_sample = (size_t)s->H * s->W * s->C, y_sample = (size_t)PQ * K;
  for (int n0 = 0; n0 < s->N; n0 += nb) {
    const int m = s->N - n0 < nb ? s->N - n0 : nb;
    im2col(s, m, x + n0 * x_sample, col, ctx->threads);
    // dw [R·S·C, K] += colᵀ [R·S·C, m·P·Q] · dy [m·P·Q, K]   (beta 1: the accumulate rule)
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, RSC, K, m * PQ, 1.0f, col, RSC,
                dy + n0 * y_sample, K, 1.0f, dw, K);
  }
}

// ---- reduced precision (train.precision = tf32 | bf16, core/ctx.h)
// ------------------------------- The CUDA variants round each operand as they load it
// (cvt.rna.tf32, cvt.rn.bf16x2) and multiply exactly, summing in FP32. Rounding copies of both
// operands first and running the FP32 path is the same function, so a run on the CPU has the
// precision of a run on a GPU (up to the order of the FP32 sums), and the GPU tests have an exact
// reference for every variant.
static float *rounded_copy(const ganc_ctx *ctx, const float *a, size_t n) {
  float *r = xmalloc((n ? n : 1) * sizeof(float));
  if (ctx->precision == GANC_PREC_BF16)
    for (size_t i = 0; i < n; i++)
      r[i] = ganc_round_bf16(a[i]);
  else
    for (size_t i = 0; i < n; i++)
      r[i] = ganc_round_tf32(a[i]);
  return r;
}

static size_t x_size(const conv_shape *s) { return (size_t)s->N * s->H * s->W * s->C; }
static size_t y_size(const conv_shape *s) { return (size_t)s->N * s->P * s->Q * s->K; }
static size_t w_size(const conv_shape *s) { return (size_t)s->R * s->S * s->C * s->K; }

typedef void (*conv_role_fn)(ganc_ctx *, const conv_shape *, const float *, const float *, float *);

// A role at the context's precision: the FP32 role itself, or on rounded copies of a [na] and
// b [nb].
static void at_precision(ganc_ctx *ctx, const conv_shape *s, const char *op, conv_role_fn role,
                         const float *a, size_t na, const float *b, size_t nb, float *out) {
  if (ctx->precision == GANC_PREC_FP32) {
    role(ctx, s, a, b, out);
    return;
  }
  conv_check(s, op); // before the sizes below are trusted
  float *ra = rounded_copy(ctx, a, na), *rb = rounded_copy(ctx, b, nb);
  role(ctx, s, ra, rb, out);
  free(ra), free(rb);
}

void conv2d_forward_cpu(ganc_ctx *ctx, const conv_shape *s, const float *x, const float *w,
                        float *y) {
  at_precision(ctx, s, "conv2d_forward_cpu", forward_fp32, x, x_size(s), w, w_size(s), y);
}

void conv2d_backward_data_cpu(ganc_ctx *ctx, const conv_shape *s, const float *dy, const float *w,
                              float *dx) {
  at_precision(ctx, s, "conv2d_backward_data_cpu", backward_data_fp32, dy, y_size(s), w, w_size(s),
               dx);
}

void conv2d_backward_weight_cpu(ganc_ctx *ctx, const conv_shape *s, const float *x, const float *dy,
                                float *dw) {
  at_precision(ctx, s, "conv2d_backward_weight_cpu", backward_weight_fp32, x, x_size(s), dy,
               y_size(s), dw);
}

// n bf16 values as floats, in memory of their own.
static float *widen_bf16(const void *h, size_t n) {
  float *f = xmalloc((n ? n : 1) * sizeof(float));
  for (size_t i = 0; i < n; i++)
    f[i] = ganc_bf16_load(((const uint16_t *)h)[i]);
  return f;
}

// One role with operands stored in bf16: each widened (exactly) to FP32, then the role. The CPU
// keeps its own tensors in FP32, so this is for callers that hold bf16 tensors (and the
// reference of the CUDA twin, which reads the halves directly).

void conv2d_mixed_cpu(ganc_ctx *ctx, int role, const conv_shape *s, const void *in0, int in0_bf16,
                      const void *in1, int in1_bf16, const uint16_t *wh, void *out_, int out_bf16,
                      const ganc_conv_epi *epi) {
  // wh, the weights' halves: the CPU's GEMMs read the FP32 weights.
  const int has_epi = epi && epi->act != GANC_ACT_NONE;
  if (wh && role == GANC_CONV_BWD_WEIGHT)
    ganc_die(GANC_EXIT_RUNTIME, "conv2d_mixed_cpu: weight halves given to backward-weight");
  if (has_epi && role == GANC_CONV_BWD_WEIGHT)
    ganc_die(GANC_EXIT_RUNTIME, "conv2d_mixed_cpu: an epilogue activation on backward-weight");
  if (epi && epi->stats && (has_epi || role == GANC_CONV_BWD_WEIGHT))
    ganc_die(GANC_EXIT_RUNTIME,
             "conv2d_mixed_cpu: batch-norm statistics with an epilogue activation or on "
             "backward-weight");
  if (role < GANC_CONV_FWD || role > GANC_CONV_BWD_WEIGHT ||
      (in1_bf16 && role != GANC_CONV_BWD_WEIGHT) || (out_bf16 && role == GANC_CONV_BWD_WEIGHT))
    ganc_die(GANC_EXIT_RUNTIME,
             "conv2d_mixed_cpu: role %d with operands in bf16 (%d, %d) and output in bf16 (%d): "
             "the weights and their gradient are FP32",
             role, in0_bf16, in1_bf16, out_bf16);
  conv_check(s, "conv2d_mixed_cpu"); // before the sizes below are trusted
  // Each operand in bf16 widened into memory of its own: in0 is x (FWD, BWD_WEIGHT) or dy
  // (BWD_DATA), in1 is dy (BWD_WEIGHT).
  const size_t n0 = role == GANC_CONV_BWD_DATA ? y_size(s) : x_size(s), n1 = y_size(s);
  float *f0 = in0_bf16 ? widen_bf16(in0, n0) : NULL, *f1 = in1_bf16 ? widen_bf16(in1, n1) : NULL;
  const float *a = in0_bf16 ? f0 : (const float *)in0, *b = in1_bf16 ? f1 : (const float *)in1;
  // An output in bf16: the FP32 output into memory of its own, then its halves.
  const size_t n_out = role == GANC_CONV_FWD ? y_size(s) : x_size(s);
  float *out = out_bf16 ? xmalloc(sizeof(float) * (n_out ? n_out : 1)) : (float *)out_;
  if (role == GANC_CONV_FWD)
    conv2d_forward_cpu(ctx, s, a, b, out);
  else if (role == GANC_CONV_BWD_DATA)
    conv2d_backward_data_cpu(ctx, s, a, b, out);
  else
    conv2d_backward_weight_cpu(ctx, s, a, b, out);
  // The epilogue: the activation's backward in place (the separate op's bits: ops/act_core.h),
  // or its forward together with the halves where the output is in bf16, else in place.
  const int fwd_act = has_epi && !epi->dact_y ? epi->act : GANC_ACT_NONE;
  if (has_epi && epi->dact_y) {
    if (epi->act == GANC_ACT_RELU)
      relu_backward_cpu(ctx, (int64_t)n_out, epi->dact_y, epi->dact_y_bf16, out, out);
    else
      lrelu_backward_cpu(ctx, (int64_t)n_out, epi->slope, epi->dact_y, epi->dact_y_bf16, out, out);
  }
  if (out_bf16) { // its halves (ops.def's act_forward_bf16)
    act_forward_bf16_cpu(ctx, (int64_t)n_out, fwd_act, has_epi ? epi->slope : 0.0f, out, out_);
    free(out);
  } else if (fwd_act == GANC_ACT_RELU) {
    relu_forward_cpu(ctx, (int64_t)n_out, out, out);
  } else if (fwd_act == GANC_ACT_LRELU) {
    lrelu_forward_cpu(ctx, (int64_t)n_out, epi->slope, out, out);
  }
  // The batch-norm statistics of the output as stored (the halves, or FP32 values rounded to
  // bf16 as the batch norm will read them where stats_round).
  if (epi && epi->stats) {
    int64_t rows;
    int ch;
    const int mode = ganc_conv_stats_input(s, role, out_bf16, epi, &rows, &ch);
    batchnorm_slot_stats_cpu(ctx, rows, ch, out_, mode, epi->stats);
  }
  free(f0);
  free(f1);
}
