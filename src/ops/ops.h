// ops.h — every op of the engine, forward and backward, on float32 NHWC tensors.
//
// Each op is declared once, in ops.def, and has one home: its CPU twin `<op>_cpu(ctx, ...)` in
// src/ops/<file>.c and its CUDA launcher `<op>_cuda(ctx, stream, ...)` in kernels/<file>.cu, with
// the same arguments less the stream. Callers use the plain name `<op>(ctx, ...)` from
// src/ops/dispatch.c, the one place that chooses the backend. Pointers live in the backend's
// memory (host for CPU, device for CUDA).
//
// Gradient rule, once for all ops: parameter gradients ACCUMULATE (+=), so a caller zeroes them
// once per step; activation gradients OVERWRITE (=) — but for loss_lecam, a regulariser that adds
// its gradient to the loss's dlogit.
//
// Layouts: activations [N, H, W, C] (NHWC, C fastest); convolution weights [R, S, C, K] =
// [kernel rows, kernel cols, input channels, output channels] (K fastest); per-channel vectors [C].
#ifndef GANC_OPS_H
#define GANC_OPS_H

#include "core/ctx.h"
#include "ops/act_core.h"  // GANC_ACT_*: the activation an op may apply to its output
#include "ops/precision.h" // GANC_X_*: how an op reads a tensor (ganc_conv_stats_input)

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
// A kernel over its whole input (pad 0, an R x S kernel on an R x S input, not already 1x1: D's
// head, G's first layer as the transposed convolution of a 1x1 latent) is a dense layer: the 1x1
// convolution of N one-pixel images of R·S·C channels, over the same memory and products (x
// [N, R·S·C], w [R·S·C, K], y [N, K]). Returns 1 and fills d with that shape, else 0. The CUDA
// dispatch runs such shapes in this view (kernels/conv.cu).
int conv_shape_dense(const conv_shape *s, conv_shape *d);
// The three roles as one op's argument (conv2d_mixed) and the variant table's (kernels.h).
typedef enum { GANC_CONV_FWD = 0, GANC_CONV_BWD_DATA = 1, GANC_CONV_BWD_WEIGHT = 2 } ganc_conv_role;
// What forward and backward-data apply to each output value v before storing it (conv2d_mixed's
// epi; NULL or act = GANC_ACT_NONE: nothing), so that the activation next to a convolution needs
// no pass of its own over the tensor (model/net.c):
//   dact_y == NULL: v = act(v), the activation's forward (ops/act_core.h: ganc_act) — a
//     convolution whose only reader is that activation;
//   dact_y != NULL: v = act'(y)·v with y = dact_y[i] (FP32, or halves where dact_y_bf16) at v's
//     own index i — the activation's backward (ganc_act_grad) on the gradient of its output,
//     which the activation's reader, this convolution, computes (y: the activation's output,
//     the convolution's input, of the output's shape).
// The same bits as the separate op after the convolution's FP32 output, then rounded once where
// the output is asked in bf16.
// And, where stats is set, the batch-norm statistics of the output as its reader, a batch norm in
// training, will read it (batchnorm_forward_train's stats): per slot of rows, Σ v and Σ v² in
// double over the values as stored (the halves where the output is in bf16; v rounded to bf16
// where stats_round: a batch norm reading the FP32 output as GANC_X_ROUND). A variant whose
// epilogue sums them does so as it stores; any other leaves the job to batchnorm_slot_stats
// after it (the same sums over other slots of rows: the rounding of double differs, nothing
// else).
typedef struct ganc_bn_part {
  double *part;  // [nslot, 2, C]: slot s's Σ v in part[2sC + c], its Σ v² in part[(2s + 1)C + c]
  int64_t cap;   // slots part has room for (ganc_bn_part_slots)
  int64_t nslot; // slots written by the last op that filled it (host memory: set at launch)
} ganc_bn_part;
// Slots for the partials of an [M, C] output: ceil(M / 64) (batchnorm_slot_stats, the CPU), and
// the 64-row slots of g128's family's grid — one per 64 rows of each phase's GEMM, rounded up to
// its 128-row blocks: at most ceil(M / 64) + 8 for a plain GEMM or stride 2's four phases of an
// even-sized output; odd sizes by phases may need more, and a launch that would leaves the sums
// to batchnorm_slot_stats.
int64_t ganc_bn_part_slots(int64_t M);
// batchnorm_slot_stats' rows per slot (the CPU's conv2d_mixed and the variants without the sums
// in their epilogue; g128's family sums the same 64 rows of a phase's GEMM).
#define GANC_BN_SLOT_ROWS 64
typedef struct ganc_conv_epi {
  int act; // GANC_ACT_* (ops/act_core.h)
  float slope;
  const void *dact_y;
  int dact_y_bf16;
  ganc_bn_part *stats; // NULL: none; else act must be GANC_ACT_NONE (forward and backward-data)
  int stats_round;
} ganc_conv_epi;
// What the backends' batchnorm_slot_stats after a forward or backward-data with epi->stats reads:
// the output's rows and channels, and how (ops/precision.h's GANC_X_*): its halves where it is
// stored in bf16, else FP32 rounded to bf16 where stats_round, else FP32.
static inline int ganc_conv_stats_input(const conv_shape *s, int role, int out_bf16,
                                        const ganc_conv_epi *epi, int64_t *rows, int *channels) {
  *rows = (int64_t)s->N * (role == GANC_CONV_FWD ? s->P * s->Q : s->H * s->W);
  *channels = role == GANC_CONV_FWD ? s->K : s->C;
  return out_bf16 ? GANC_X_BF16 : epi->stats_round ? GANC_X_ROUND : GANC_X_FP32;
}

// The values of one training step that its ops read from backend memory instead of from their
// arguments, so that one captured CUDA graph replays every step: the trainer writes a fresh copy
// before each step (src/train/train.c). Adam's constants, in order: b1, b2, 1 − b1, 1 − b2,
// lr / (1 − b1^t), sqrt(1 − b2^t), eps, and the EMA's beta (used when adam_update gets an ema).
#define GANC_ADAM_K 8
typedef struct ganc_step_args {
  uint64_t step;           // the step: rows of the flips' and fake labels' Philox streams
  uint64_t latent_first;   // latent index of this process's first row
  uint64_t aug_counter[3]; // DiffAugment: D on reals, D on fakes (D step), D on fakes (G step)
  float adam_d[GANC_ADAM_K], adam_g[GANC_ADAM_K]; // ganc_adam_consts of D's and G's updates
} ganc_step_args;

// k = Adam's constants for step t >= 1 (src/ops/adam.c): the bias corrections in double (1 −
// b2^t with b2 = 0.999 is 1e-3 at t = 1, where a float pow would already lose digits), rounded
// once to float, identical for every backend.
void ganc_adam_consts(float lr, float b1, float b2, float eps, int64_t t, float ema_beta,
                      float k[GANC_ADAM_K]);

// ---- the CPU twins of every op: <name>_cpu(ctx, parameters) for each entry of ops.def ----------
// (what each op computes is written there, beside its one declaration)
#define GANC_OP_PARAMS(...) (ganc_ctx * ctx, __VA_ARGS__)
#define GANC_OP(name, dispatch, params, args) void name##_cpu GANC_OP_PARAMS params;
#include "ops/ops.def"
#undef GANC_OP

#ifdef __cplusplus
}
#endif

#endif
