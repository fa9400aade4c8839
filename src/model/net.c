// net.c — networks as graphs of nodes (see net.h): the node kinds, building, the gradient-buffer
// plan, and the forward and backward loops.
#include "model/net.h"

#include "core/check.h"
#include "core/comm.h" // sync batch norm: no slot statistics
#include "core/philox.h"
#include "core/prof.h" // ganc-bench --step --profile: the place of each op
#include "ops/dispatch.h"
#include "ops/precision.h" // GANC_X_*: how batch norm reads a convolution's output

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- node kinds
// ---------------------------------------------------------------------------------- What a kind
// does, as data. `in` are the node's inputs' outputs (the net's x for GANC_NET_INPUT). backward
// writes the gradient of input k into dx[k] (overwrite) when dx[k] is not NULL, and accumulates
// parameter gradients into gw (net->g; NULL when they are not wanted: an op that writes them
// anyway writes them into the scratch slots of grad_at).
struct ganc_node_kind {
  const char *name;
  void (*forward)(ganc_ctx *ctx, ganc_net *net, ganc_node *nd, const float *const *in, int N,
                  int train, float momentum);
  void (*backward)(ganc_ctx *ctx, ganc_net *net, ganc_node *nd, const float *const *in,
                   const float *dy, float *const *dx, int N, float *gw, int need_wgrad);
  int elementwise;  // forward may run in place (out = in[0]'s buffer) ...
  int needs_out;    // ... and backward reads out, so its input may not run in place on it
  int bwd_in_place; // backward may write dx[0] into dy's buffer
};

static int64_t out_count(const ganc_node *nd, int N) { return (int64_t)N * nd->H * nd->W * nd->C; }
static int64_t in_count(const ganc_node *nd, int N) {
  return (int64_t)N * nd->iH * nd->iW * nd->iC;
}
static float *param(ganc_net *net, int t) { return net->p + net->params[t].offset; }
static float *buffer(ganc_net *net, int t) { return net->buf + net->buffers[t].offset; }

int net_node_conv_shape(const ganc_node *nd, int N, conv_shape *s, int *transposed);

// The weight a conv node computes with: W, or W / sigma under spectral norm (made by forward).
static const float *conv_weight(ganc_net *net, ganc_node *nd) {
  return nd->sn ? nd->w_sn : param(net, nd->w);
}

// The weight's bf16 halves where the net keeps them (net->ph) and the node computes with W itself
// (not W / sigma); NULL: the convolution reads the FP32 weight (and rounds it where it computes in
// bf16: the same bits).
static const uint16_t *conv_weight_halves(const ganc_net *net, const ganc_node *nd) {
  return net->ph && !nd->sn ? net->ph + net->params[nd->w].offset : NULL;
}

// Spectral norm: `iters` power-iteration steps, then W / sigma (before the node's forward).
enum { SN_INIT_ITERS = 10 };
static void sn_transform_iters(ganc_ctx *ctx, ganc_net *net, ganc_node *nd, int iters) {
  const ganc_tensor *t = &net->params[nd->w];
  int K = t->shape[3], M = (int)(t->count / (size_t)K);
  spectral_norm_forward(ctx, M, K, param(net, nd->w), buffer(net, nd->su), buffer(net, nd->sv),
                        iters, 1e-12f, nd->sigma, nd->w_sn);
}
static void sn_transform(ganc_ctx *ctx, ganc_net *net, ganc_node *nd, int train) {
  sn_transform_iters(ctx, net, nd, train ? net->sn_iters : 0);
}

// Where the gradient of parameter tensor t goes: its place in gw (net->g), or, when parameter
// gradients are not wanted (gw NULL), slot 0 or 1 of the scratch block dscratch (batch norm's and
// the embedding's backward write theirs anyway; nobody reads them there).
static float *grad_at(ganc_net *net, float *gw, int t, int slot) {
  return gw ? gw + net->params[t].offset : net->dscratch + (size_t)slot * net->dscratch_slot;
}

// The weight gradient of a conv node into gw: directly, or through spectral norm's backward.
static float *conv_wgrad_target(ganc_ctx *ctx, ganc_net *net, ganc_node *nd, float *gw) {
  if (!nd->sn) return gw + net->params[nd->w].offset;
  ganc_zero(ctx, net->dw_sn, net->params[nd->w].count);
  return net->dw_sn;
}
static void conv_wgrad_finish(ganc_ctx *ctx, ganc_net *net, ganc_node *nd, float *gw) {
  if (!nd->sn) return;
  const ganc_tensor *t = &net->params[nd->w];
  int K = t->shape[3], M = (int)(t->count / (size_t)K);
  spectral_norm_backward(ctx, M, K, nd->w_sn, net->dw_sn, buffer(net, nd->su), buffer(net, nd->sv),
                         nd->sigma, gw + t->offset);
}

// Node a's only reader is a convolution whose one input it is: the reader's backward-data (its
// adjoint's forward) writes a's gradient, alone.
static int conv_reader(const ganc_net *net, int a);
static int bn_x_mode(const ganc_ctx *ctx, const ganc_net *net, const ganc_node *nd);

// ganc-bench --step --profile (core/prof.h): the ops that follow run for node nd's pass; an
// activation, which has no name of its own, shown after its input ("b1.bn/relu").
static void prof_node(ganc_ctx *ctx, const ganc_net *net, const ganc_node *nd, const char *pass) {
  if (!ctx->prof) return;
  const int own = strcmp(nd->name, nd->kind->name) || nd->in[0] == GANC_NET_INPUT;
  ganc_prof_where(ctx->prof, net->name, own ? nd->name : net->nodes[nd->in[0]].name,
                  own ? NULL : nd->name, pass);
}

// The conv node's input is kept in bf16 (net_finalize).
static int in_bf16(const ganc_net *net, const ganc_node *nd) {
  return nd->in[0] != GANC_NET_INPUT && net->nodes[nd->in[0]].out_bf16;
}

// Convolution nd sums its batch norm's statistics in this forward (bn_stats: net_finalize): a
// training forward, and not under sync batch norm over several ranks (whose statistics are the
// global batch's: the batch norm's two passes sum every rank's partials).
static int bn_slots(const ganc_ctx *ctx, const ganc_node *nd, int train) {
  return train && nd->bn_stats && !ganc_bn_synced(ctx);
}

static void conv_fwd(ganc_ctx *ctx, ganc_net *net, ganc_node *nd, const float *const *in, int N,
                     int train, float momentum) {
  (void)momentum;
  conv_shape s;
  int tr;
  net_node_conv_shape(nd, N, &s, &tr);
  if (nd->sn) sn_transform(ctx, net, nd, train);
  // Kept in bf16 (y_bf16): the convolution writes its output's halves, rounded as its epilogue
  // stores them — the rounding a bf16 forward makes anyway, so only in one (a net finalized so is
  // not run in another).
  if (nd->y_bf16 && ctx->precision != GANC_PREC_BF16)
    ganc_die(GANC_EXIT_RUNTIME, "internal error: %s keeps %s in bf16 but runs in precision %d",
             net->name, nd->name, (int)ctx->precision);
  const int role = tr ? GANC_CONV_BWD_DATA : GANC_CONV_FWD;
  // The activation that reads this output alone, applied as it is stored (net_finalize); or the
  // statistics of the batch norm that reads it alone, summed as it is stored (bn_stats: into the
  // slot buffer, looked up now since a borrower's finalize may have grown it), as that batch norm
  // will read the output (bn_x_mode: rounded to bf16 in a bf16 forward).
  ganc_conv_epi ep = {nd->act, nd->slope, NULL, 0, NULL, 0};
  const int stats = bn_slots(ctx, nd, train);
  if (stats) {
    const ganc_net *h = net->grad_donor ? net->grad_donor : net;
    net->bnp.part = (double *)h->bnbuf;
    net->bnp.cap = (int64_t)(h->bnbuf_n / 2 / (2 * (size_t)nd->C));
    net->bnp.nslot = 0;
    ep.stats = &net->bnp;
    ep.stats_round = bn_x_mode(ctx, net, &net->nodes[nd->first_reader]) == GANC_X_ROUND;
  }
  if (in_bf16(net, nd) || nd->y_bf16 || nd->act != GANC_ACT_NONE || stats)
    conv2d_mixed(ctx, role, &s, in[0], in_bf16(net, nd), conv_weight(net, nd), 0,
                 conv_weight_halves(net, nd), nd->out, nd->y_bf16,
                 nd->act != GANC_ACT_NONE || stats ? &ep : NULL);
  else if (tr)
    conv2d_backward_data(ctx, &s, in[0], conv_weight(net, nd), nd->out);
  else
    conv2d_forward(ctx, &s, in[0], conv_weight(net, nd), nd->out);
}
static void conv_bwd(ganc_ctx *ctx, ganc_net *net, ganc_node *nd, const float *const *in,
                     const float *dy, float *const *dx, int N, float *gw, int need_wgrad) {
  conv_shape s;
  int tr;
  net_node_conv_shape(nd, N, &s, &tr);
  const int xb = in_bf16(net, nd), yb = nd->dout_bf16 && dy == nd->dout;
  if (need_wgrad) {
    prof_node(ctx, net, nd, "backward-weight");
    float *dw = conv_wgrad_target(ctx, net, nd, gw);
    if (xb || yb) // the adjoint of a transposed conv reads dy as its x
      conv2d_mixed(ctx, GANC_CONV_BWD_WEIGHT, &s, tr ? (const void *)dy : in[0], tr ? yb : xb,
                   tr ? in[0] : (const void *)dy, tr ? xb : yb, NULL, dw, 0, NULL);
    else if (tr)
      conv2d_backward_weight(ctx, &s, dy, in[0], dw);
    else
      conv2d_backward_weight(ctx, &s, in[0], dy, dw);
    conv_wgrad_finish(ctx, net, nd, gw);
  }
  if (dx[0]) {
    prof_node(ctx, net, nd, "backward-data");
    // The input's activation backward, applied to the gradient as it is stored, where that
    // activation's backward is this one's (bwd_fused: net_finalize); the gradient then in bf16
    // where the node under the activation keeps its gradient so (dout_bf16).
    // (dx[0] is then the activation's own buffer: this is its only reader.)
    const ganc_node *a = nd->in[0] != GANC_NET_INPUT ? &net->nodes[nd->in[0]] : NULL;
    const int fused = a && a->bwd_fused, ob = fused && a->dout_bf16;
    const ganc_conv_epi da = {fused ? a->act : GANC_ACT_NONE,
                              fused ? a->slope : 0.0f,
                              fused ? (const void *)a->out : NULL,
                              fused ? a->out_bf16 : 0,
                              NULL,
                              0};
    if (yb || fused)
      conv2d_mixed(ctx, tr ? GANC_CONV_FWD : GANC_CONV_BWD_DATA, &s, dy, yb, conv_weight(net, nd),
                   0, conv_weight_halves(net, nd), dx[0], ob, fused ? &da : NULL);
    else if (tr)
      conv2d_forward(ctx, &s, dy, conv_weight(net, nd), dx[0]);
    else
      conv2d_backward_data(ctx, &s, dy, conv_weight(net, nd), dx[0]);
  }
}

// How a batch norm reads its input: the halves its convolution keeps (y_bf16), or a bf16
// forward's convolution output rounded to bf16 as it is read (round_out: what PyTorch's autocast
// convolution returns, and the same values as the halves), or FP32 as it is.
static int bn_x_mode(const ganc_ctx *ctx, const ganc_net *net, const ganc_node *nd) {
  const int j = nd->in[0];
  if (j == GANC_NET_INPUT) return GANC_X_FP32;
  if (net->nodes[j].out_bf16) return GANC_X_BF16;
  return net->nodes[j].round_out && ctx->precision == GANC_PREC_BF16 ? GANC_X_ROUND : GANC_X_FP32;
}

static void bn_fwd(ganc_ctx *ctx, ganc_net *net, ganc_node *nd, const float *const *in, int N,
                   int train, float momentum) {
  int64_t M = (int64_t)N * nd->H * nd->W;
  float *rm = buffer(net, nd->rm), *rv = buffer(net, nd->rv);
  // Conditional: normalise only (gamma 1, beta 0) into xhat, then the class affine.
  const float *gamma = nd->cond ? net->ones : param(net, nd->w);
  const float *beta = nd->cond ? net->zeros : param(net, nd->b);
  void *y = nd->cond ? (void *)nd->xhat : (void *)nd->out;
  const int yb = !nd->cond && nd->out_bf16, xm = bn_x_mode(ctx, net, nd);
  // The statistics its convolution summed as it stored x (bn_slots, conv_fwd), or two passes.
  const int stats = nd->in[0] != GANC_NET_INPUT && bn_slots(ctx, &net->nodes[nd->in[0]], train);
  if (train)
    batchnorm_forward_train(ctx, M, nd->C, in[0], xm, gamma, beta, net->bn_eps, momentum, nd->act,
                            nd->slope, y, yb, nd->mean, nd->rstd, rm, rv,
                            nd->recompute ? nd->keep : NULL, stats ? &net->bnp : NULL);
  else
    batchnorm_forward_eval(ctx, M, nd->C, in[0], xm, gamma, beta, rm, rv, net->bn_eps, nd->act,
                           nd->slope, y, yb);
  if (nd->cond)
    cond_affine_forward(ctx, N, nd->H * nd->W, nd->C, net->ncls, nd->xhat, net->labels,
                        param(net, nd->w), param(net, nd->b), nd->out);
}
// How a batch norm's backward reads its output's gradient dy: the halves a convolution's
// backward-data stored (dout_bf16), or rounded to bf16 as it is read (round_dy in a bf16 run: the
// same values), or FP32 as it is.
static int bn_dy_mode(const ganc_ctx *ctx, const ganc_node *nd, const float *dy) {
  if (nd->dout_bf16 && dy == nd->dout) return GANC_X_BF16;
  return nd->round_dy && ctx->precision == GANC_PREC_BF16 ? GANC_X_ROUND : GANC_X_FP32;
}

static void bn_bwd(ganc_ctx *ctx, ganc_net *net, ganc_node *nd, const float *const *in,
                   const float *dy, float *const *dx, int N, float *gw, int need_wgrad) {
  (void)need_wgrad;
  int64_t M = (int64_t)N * nd->H * nd->W;
  const int xm = bn_x_mode(ctx, net, nd); // as its forward read x
  if (!nd->cond) { // the op always writes dx: when nobody wants it, into dtmp (free here)
    // dx in bf16 where the convolution that reads it rounds it anyway (net_finalize).
    const int xb = dx[0] && nd->in[0] != GANC_NET_INPUT && net->nodes[nd->in[0]].dout_bf16 &&
                   dx[0] == net->nodes[nd->in[0]].dout;
    batchnorm_backward(ctx, M, nd->C, in[0], xm, dy, bn_dy_mode(ctx, nd, dy), param(net, nd->w),
                       nd->mean, nd->rstd, dx[0] ? dx[0] : net->dtmp, xb,
                       grad_at(net, gw, nd->w, 0), grad_at(net, gw, nd->b, 1));
    return;
  }
  // Conditional: the class affine's input gradient in place over dy (this node's own gradient
  // buffer, dead after this), then through the normalisation (gamma 1; its dgamma/dbeta land in
  // the scratch block). An unwanted dx goes over xhat, which nothing reads after this.
  if (dy != nd->dout)
    ganc_die(GANC_EXIT_RUNTIME, "internal error: conditional batch norm %s is an output", nd->name);
  cond_affine_backward(ctx, N, nd->H * nd->W, nd->C, net->ncls, nd->xhat, dy, net->labels,
                       param(net, nd->w), nd->dout, grad_at(net, gw, nd->w, 0),
                       grad_at(net, gw, nd->b, 1));
  batchnorm_backward(ctx, M, nd->C, in[0], xm, nd->dout, GANC_X_FP32, net->ones, nd->mean, nd->rstd,
                     dx[0] ? dx[0] : nd->xhat, 0, net->dscratch, net->dscratch + nd->C);
}

static void relu_fwd(ganc_ctx *ctx, ganc_net *net, ganc_node *nd, const float *const *in, int N,
                     int train, float momentum) {
  (void)net, (void)train, (void)momentum;
  if (nd->out_bf16 && !nd->inplace) // its own bf16 output (no plan makes one today: fused)
    act_forward_bf16(ctx, out_count(nd, N), GANC_ACT_RELU, 0.0f, in[0], nd->out);
  else if (!nd->fused)
    relu_forward(ctx, out_count(nd, N), in[0], nd->out);
}
// An activation whose backward its reader's convolution applied (bwd_fused): the gradient is
// already in its input's buffer, which is its own (in place).
static int bwd_done(const ganc_node *nd, const float *dy, float *const *dx) {
  if (!nd->bwd_fused) return 0;
  if (dx[0] && dx[0] != dy)
    ganc_die(GANC_EXIT_RUNTIME, "internal error: %s's fused backward is not in place", nd->name);
  return 1;
}
static void relu_bwd(ganc_ctx *ctx, ganc_net *net, ganc_node *nd, const float *const *in,
                     const float *dy, float *const *dx, int N, float *gw, int need_wgrad) {
  (void)net, (void)in, (void)gw, (void)need_wgrad;
  if (bwd_done(nd, dy, dx)) return;
  if (dx[0]) relu_backward(ctx, out_count(nd, N), nd->out, nd->out_bf16, dy, dx[0]);
}
static void lrelu_fwd(ganc_ctx *ctx, ganc_net *net, ganc_node *nd, const float *const *in, int N,
                      int train, float momentum) {
  (void)net, (void)train, (void)momentum;
  if (nd->out_bf16 && !nd->inplace) // its own bf16 output (no plan makes one today: fused)
    act_forward_bf16(ctx, out_count(nd, N), GANC_ACT_LRELU, nd->slope, in[0], nd->out);
  else if (!nd->fused)
    lrelu_forward(ctx, out_count(nd, N), nd->slope, in[0], nd->out);
}
static void lrelu_bwd(ganc_ctx *ctx, ganc_net *net, ganc_node *nd, const float *const *in,
                      const float *dy, float *const *dx, int N, float *gw, int need_wgrad) {
  (void)net, (void)in, (void)gw, (void)need_wgrad;
  if (bwd_done(nd, dy, dx)) return;
  if (dx[0]) lrelu_backward(ctx, out_count(nd, N), nd->slope, nd->out, nd->out_bf16, dy, dx[0]);
}
static void tanh_fwd(ganc_ctx *ctx, ganc_net *net, ganc_node *nd, const float *const *in, int N,
                     int train, float momentum) {
  (void)net, (void)train, (void)momentum;
  tanh_forward(ctx, out_count(nd, N), in[0], nd->out);
}
static void tanh_bwd(ganc_ctx *ctx, ganc_net *net, ganc_node *nd, const float *const *in,
                     const float *dy, float *const *dx, int N, float *gw, int need_wgrad) {
  (void)net, (void)in, (void)gw, (void)need_wgrad;
  if (dx[0]) tanh_backward(ctx, out_count(nd, N), nd->out, dy, dx[0]);
}

static void up_fwd(ganc_ctx *ctx, ganc_net *net, ganc_node *nd, const float *const *in, int N,
                   int train, float momentum) {
  (void)net, (void)train, (void)momentum;
  upsample2x_forward(ctx, N, nd->iH, nd->iW, nd->iC, in[0], nd->out);
}
static void up_bwd(ganc_ctx *ctx, ganc_net *net, ganc_node *nd, const float *const *in,
                   const float *dy, float *const *dx, int N, float *gw, int need_wgrad) {
  (void)net, (void)in, (void)gw, (void)need_wgrad;
  if (dx[0]) upsample2x_backward(ctx, N, nd->iH, nd->iW, nd->iC, dy, dx[0]);
}
static void pool_fwd(ganc_ctx *ctx, ganc_net *net, ganc_node *nd, const float *const *in, int N,
                     int train, float momentum) {
  (void)net, (void)train, (void)momentum;
  avgpool2x_forward(ctx, N, nd->iH, nd->iW, nd->iC, in[0], nd->out);
}
static void pool_bwd(ganc_ctx *ctx, ganc_net *net, ganc_node *nd, const float *const *in,
                     const float *dy, float *const *dx, int N, float *gw, int need_wgrad) {
  (void)net, (void)in, (void)gw, (void)need_wgrad;
  if (dx[0]) avgpool2x_backward(ctx, N, nd->iH, nd->iW, nd->iC, dy, dx[0]);
}
static void add_fwd(ganc_ctx *ctx, ganc_net *net, ganc_node *nd, const float *const *in, int N,
                    int train, float momentum) {
  (void)net, (void)train, (void)momentum;
  tensor_add(ctx, out_count(nd, N), in[0], in[1], nd->out);
}
static void add_bwd(ganc_ctx *ctx, ganc_net *net, ganc_node *nd, const float *const *in,
                    const float *dy, float *const *dx, int N, float *gw, int need_wgrad) {
  (void)net, (void)in, (void)gw, (void)need_wgrad;
  for (int k = 0; k < 2; k++)
    if (dx[k] && dx[k] != dy) ganc_copy(ctx, dx[k], dy, (size_t)out_count(nd, N));
}
static void sumpool_fwd(ganc_ctx *ctx, ganc_net *net, ganc_node *nd, const float *const *in, int N,
                        int train, float momentum) {
  (void)net, (void)train, (void)momentum;
  sum_pool_forward(ctx, N, nd->iH * nd->iW, nd->iC, in[0], nd->out);
}
static void sumpool_bwd(ganc_ctx *ctx, ganc_net *net, ganc_node *nd, const float *const *in,
                        const float *dy, float *const *dx, int N, float *gw, int need_wgrad) {
  (void)net, (void)in, (void)gw, (void)need_wgrad;
  if (dx[0]) sum_pool_backward(ctx, N, nd->iH * nd->iW, nd->iC, dy, dx[0]);
}
static void embed_fwd(ganc_ctx *ctx, ganc_net *net, ganc_node *nd, const float *const *in, int N,
                      int train, float momentum) {
  (void)train, (void)momentum;
  embed_dot_forward(ctx, N, nd->iC, net->ncls, in[0], net->labels, param(net, nd->w), nd->out);
}
static void embed_bwd(ganc_ctx *ctx, ganc_net *net, ganc_node *nd, const float *const *in,
                      const float *dy, float *const *dx, int N, float *gw, int need_wgrad) {
  (void)need_wgrad;
  // dh is always computed by the op: without dx[0], into dtmp, which nobody reads.
  embed_dot_backward(ctx, N, nd->iC, net->ncls, in[0], dy, net->labels, param(net, nd->w),
                     dx[0] ? dx[0] : net->dtmp, grad_at(net, gw, nd->w, 0));
}

static void aug_fwd(ganc_ctx *ctx, ganc_net *net, ganc_node *nd, const float *const *in, int N,
                    int train, float momentum) {
  (void)train, (void)momentum;
  const uint64_t seed = net->aug_seed, *ctr = net->aug_counter;
  const float *p = net->aug_p;
  const int r0 = net->aug_row0;
  if (!ctr)
    ganc_die(GANC_EXIT_RUNTIME, "internal error: %s's augmentation has no counter", net->name);
  if (nd->aug == GANC_AUG_COLOR)
    augment_color_forward(ctx, N, nd->H, nd->W, nd->C, in[0], nd->out, seed, ctr, r0, p);
  else if (nd->aug == GANC_AUG_TRANSLATION)
    augment_translation_forward(ctx, N, nd->H, nd->W, nd->C, nd->ratio, in[0], nd->out, seed, ctr,
                                r0, p);
  else if (nd->aug == GANC_AUG_CUTOUT)
    augment_cutout_forward(ctx, N, nd->H, nd->W, nd->C, nd->ratio, in[0], nd->out, seed, ctr, r0,
                           p);
  else
    augment_blit_forward(ctx, N, nd->H, nd->W, nd->C, nd->modes, in[0], nd->out, seed, ctr, r0, p);
}
static void aug_bwd(ganc_ctx *ctx, ganc_net *net, ganc_node *nd, const float *const *in,
                    const float *dy, float *const *dx, int N, float *gw, int need_wgrad) {
  (void)in, (void)gw, (void)need_wgrad;
  if (!dx[0]) return;
  const uint64_t seed = net->aug_seed, *ctr = net->aug_counter;
  const float *p = net->aug_p;
  const int r0 = net->aug_row0;
  if (!ctr)
    ganc_die(GANC_EXIT_RUNTIME, "internal error: %s's augmentation has no counter", net->name);
  if (nd->aug == GANC_AUG_COLOR)
    augment_color_backward(ctx, N, nd->H, nd->W, nd->C, dy, dx[0], seed, ctr, r0, p);
  else if (nd->aug == GANC_AUG_TRANSLATION)
    augment_translation_backward(ctx, N, nd->H, nd->W, nd->C, nd->ratio, dy, dx[0], seed, ctr, r0,
                                 p);
  else if (nd->aug == GANC_AUG_CUTOUT)
    augment_cutout_backward(ctx, N, nd->H, nd->W, nd->C, nd->ratio, dy, dx[0], seed, ctr, r0, p);
  else
    augment_blit_backward(ctx, N, nd->H, nd->W, nd->C, nd->modes, dy, dx[0], seed, ctr, r0, p);
}

static const ganc_node_kind KIND_CONV = {"conv", conv_fwd, conv_bwd, 0, 0, 0};
static const ganc_node_kind KIND_CONVT = {"convt", conv_fwd, conv_bwd, 0, 0, 0};
static const ganc_node_kind KIND_BN = {"bn", bn_fwd, bn_bwd, 0, 0, 0};
static const ganc_node_kind KIND_RELU = {"relu", relu_fwd, relu_bwd, 1, 1, 1};
static const ganc_node_kind KIND_LRELU = {"lrelu", lrelu_fwd, lrelu_bwd, 1, 1, 1};
static const ganc_node_kind KIND_TANH = {"tanh", tanh_fwd, tanh_bwd, 1, 1, 1};
static const ganc_node_kind KIND_UP = {"upsample", up_fwd, up_bwd, 0, 0, 0};
static const ganc_node_kind KIND_POOL = {"avgpool", pool_fwd, pool_bwd, 0, 0, 0};
static const ganc_node_kind KIND_ADD = {"add", add_fwd, add_bwd, 0, 0, 1};
static const ganc_node_kind KIND_SUMPOOL = {"sumpool", sumpool_fwd, sumpool_bwd, 0, 0, 0};
static const ganc_node_kind KIND_EMBED = {"embed", embed_fwd, embed_bwd, 0, 0, 0};
static const ganc_node_kind KIND_AUG = {"augment", aug_fwd, aug_bwd, 0, 0, 0};

// ---- building ----------------------------------------------------------------------------------
void net_init(ganc_net *net, const char *name, int H, int W, int C) {
  memset(net, 0, sizeof *net);
  snprintf(net->name, sizeof net->name, "%s", name);
  net->iH = H;
  net->iW = W;
  net->iC = C;
  net->bn_eps = 1e-5f;
  net->bn_momentum = 0.1f;
  net->sn_iters = 1;
}

int net_last(const ganc_net *net) { return net->nnodes - 1; }

static const ganc_node *node_at(const ganc_net *net, int i) {
  return i == GANC_NET_INPUT ? NULL : &net->nodes[i];
}

static ganc_node *push(ganc_net *net, const ganc_node_kind *kind, const char *name, int in0,
                       int in1) {
  if (in0 < GANC_NET_INPUT || in0 >= net->nnodes || in1 < -2 || in1 >= net->nnodes)
    ganc_die(GANC_EXIT_RUNTIME, "internal error: node %s of %s reads a node that does not exist",
             name, net->name);
  if (net->nnodes == net->cap)
    net->nodes =
        xrealloc(net->nodes, sizeof(ganc_node) * (size_t)(net->cap = net->cap ? net->cap * 2 : 16));
  ganc_node *nd = &net->nodes[net->nnodes];
  memset(nd, 0, sizeof *nd);
  nd->kind = kind;
  snprintf(nd->name, sizeof nd->name, "%s", name);
  nd->in[0] = in0;
  nd->in[1] = in1;
  nd->nin = in1 == -2 ? 1 : 2;
  const ganc_node *p = node_at(net, in0);
  nd->iH = p ? p->H : net->iH;
  nd->iW = p ? p->W : net->iW;
  nd->iC = p ? p->C : net->iC;
  nd->H = nd->iH;
  nd->W = nd->iW;
  nd->C = nd->iC;
  nd->w = nd->b = nd->rm = nd->rv = nd->su = nd->sv = -1;
  net->nnodes++;
  return nd;
}

static int add_tensor(ganc_tensor **table, int *n, int *cap, size_t *total, const char *node,
                      const char *what, int ndim, const int *shape, int init, float std) {
  if (*n == *cap)
    *table = xrealloc(*table, sizeof(ganc_tensor) * (size_t)(*cap = *cap ? *cap * 2 : 32));
  ganc_tensor *t = &(*table)[*n];
  memset(t, 0, sizeof *t);
  if ((size_t)snprintf(t->name, sizeof t->name, "%s.%s", node, what) >= sizeof t->name)
    ganc_die(GANC_EXIT_RUNTIME, "internal error: tensor name %s.%s is too long", node, what);
  t->ndim = ndim;
  t->count = 1;
  for (int i = 0; i < ndim; i++) {
    t->shape[i] = shape[i];
    t->count *= (size_t)shape[i];
  }
  t->offset = *total;
  t->init = init;
  t->init_std = std;
  *total += t->count;
  return (*n)++;
}
static int add_param(ganc_net *net, const char *node, const char *what, int ndim, const int *shape,
                     int init, float std) {
  return add_tensor(&net->params, &net->nparams, &net->cap_params, &net->nparam_floats, node, what,
                    ndim, shape, init, std);
}
static int add_buffer(ganc_net *net, const char *node, const char *what, int ndim, const int *shape,
                      int init) {
  return add_tensor(&net->buffers, &net->nbuffers, &net->cap_buffers, &net->nbuffer_floats, node,
                    what, ndim, shape, init, 0);
}

static int conv_common(ganc_net *net, const ganc_node_kind *kind, const char *name, int in, int K,
                       int R, int stride, int pad, int sn, float std) {
  ganc_node *nd = push(net, kind, name, in, -2);
  int transposed = kind == &KIND_CONVT;
  nd->R = R;
  nd->stride = stride;
  nd->pad = pad;
  nd->sn = sn;
  nd->C = K;
  if (transposed) {
    nd->H = (nd->iH - 1) * stride - 2 * pad + R;
    nd->W = (nd->iW - 1) * stride - 2 * pad + R;
  } else {
    nd->H = (nd->iH + 2 * pad - R) / stride + 1;
    nd->W = (nd->iW + 2 * pad - R) / stride + 1;
  }
  if (nd->H < 1 || nd->W < 1)
    ganc_die(GANC_EXIT_RUNTIME, "internal error: node %s of %s has no output", name, net->name);
  // Weights [R, S, C, K] of the ordinary convolution; for a transposed one, of its adjoint, which
  // maps the output (K channels here) back to the input (iC channels).
  int shape[4] = {R, R, transposed ? K : nd->iC, transposed ? nd->iC : K};
  nd->w =
      add_param(net, name, "weight", 4, shape, std > 0 ? GANC_INIT_NORMAL : GANC_INIT_CONV, std);
  // Spectral norm divides by the largest singular value of the storage seen as [R·S·C, K]. For a
  // transposed convolution that is [R·S·C_out, C_in], where PyTorch's spectral_norm on a
  // ConvTranspose2d (dim=1) takes [C_out, C_in·R·S]: other matrices, other σ (both reshapes are
  // heuristics for the operator norm; neither is it), so SN-G weights do not carry over 1:1.
  if (sn) { // the power iteration's vectors: u [K] and v [R·S·C] of the weight matrix [R·S·C, K]
    int u[1] = {shape[3]}, v[1] = {R * R * shape[2]};
    nd->su = add_buffer(net, name, "sn_u", 1, u, GANC_INIT_UNIT);
    nd->sv = add_buffer(net, name, "sn_v", 1, v, GANC_INIT_UNIT);
  }
  return net->nnodes - 1;
}

int net_conv(ganc_net *net, const char *name, int in, int K, int R, int stride, int pad, int sn,
             float std) {
  return conv_common(net, &KIND_CONV, name, in, K, R, stride, pad, sn, std);
}
int net_convt(ganc_net *net, const char *name, int in, int K, int R, int stride, int pad, int sn,
              float std) {
  return conv_common(net, &KIND_CONVT, name, in, K, R, stride, pad, sn, std);
}
int net_bn(ganc_net *net, const char *name, int in, int cond) {
  ganc_node *nd = push(net, &KIND_BN, name, in, -2);
  if (cond && net->ncls < 1)
    ganc_die(GANC_EXIT_RUNTIME, "internal error: conditional batch norm in %s without classes",
             net->name);
  nd->cond = cond;
  int C = nd->C, shape[2] = {cond ? net->ncls : C, C};
  // Unconditional: [C] (DCGAN's N(1, 0.02) scales); conditional: [ncls, C] tables starting at the
  // identity affine (gamma 1, beta 0), as BigGAN's class-conditional batch norm.
  nd->w = add_param(net, name, "gamma", cond ? 2 : 1, cond ? shape : shape + 1,
                    cond ? GANC_INIT_ONE : GANC_INIT_BN_GAMMA, 0);
  nd->b = add_param(net, name, "beta", cond ? 2 : 1, cond ? shape : shape + 1, GANC_INIT_ZERO, 0);
  nd->rm = add_buffer(net, name, "running_mean", 1, shape + 1, GANC_INIT_ZERO);
  nd->rv = add_buffer(net, name, "running_var", 1, shape + 1, GANC_INIT_ONE);
  return net->nnodes - 1;
}
int net_relu(ganc_net *net, int in) {
  push(net, &KIND_RELU, "relu", in, -2);
  return net->nnodes - 1;
}
int net_lrelu(ganc_net *net, int in, float slope) {
  push(net, &KIND_LRELU, "lrelu", in, -2)->slope = slope;
  return net->nnodes - 1;
}
int net_tanh(ganc_net *net, int in) {
  push(net, &KIND_TANH, "tanh", in, -2);
  return net->nnodes - 1;
}
int net_upsample(ganc_net *net, const char *name, int in) {
  ganc_node *nd = push(net, &KIND_UP, name, in, -2);
  nd->H *= 2;
  nd->W *= 2;
  return net->nnodes - 1;
}
int net_avgpool(ganc_net *net, const char *name, int in) {
  ganc_node *nd = push(net, &KIND_POOL, name, in, -2);
  if (nd->iH % 2 || nd->iW % 2)
    ganc_die(GANC_EXIT_RUNTIME, "internal error: 2x2 pooling of an odd size in %s", net->name);
  nd->H /= 2;
  nd->W /= 2;
  return net->nnodes - 1;
}
int net_add(ganc_net *net, const char *name, int a, int b) {
  ganc_node *nd = push(net, &KIND_ADD, name, a, b);
  const ganc_node *q = node_at(net, b);
  int bh = q ? q->H : net->iH, bw = q ? q->W : net->iW, bc = q ? q->C : net->iC;
  if (bh != nd->H || bw != nd->W || bc != nd->C)
    ganc_die(GANC_EXIT_RUNTIME, "internal error: %s of %s adds %dx%dx%d to %dx%dx%d", name,
             net->name, nd->H, nd->W, nd->C, bh, bw, bc);
  return net->nnodes - 1;
}
int net_sumpool(ganc_net *net, const char *name, int in) {
  ganc_node *nd = push(net, &KIND_SUMPOOL, name, in, -2);
  nd->H = nd->W = 1;
  return net->nnodes - 1;
}
int net_embed(ganc_net *net, const char *name, int in, float std) {
  ganc_node *nd = push(net, &KIND_EMBED, name, in, -2);
  if (net->ncls < 1 || nd->iH != 1 || nd->iW != 1)
    ganc_die(GANC_EXIT_RUNTIME, "internal error: class embedding in %s without classes or 1x1",
             net->name);
  int shape[2] = {net->ncls, nd->iC};
  nd->w = add_param(net, name, "weight", 2, shape, GANC_INIT_NORMAL, std);
  nd->C = 1;
  return net->nnodes - 1;
}

int net_augment(ganc_net *net, const char *name, int in, int aug, float ratio) {
  ganc_node *nd = push(net, &KIND_AUG, name, in, -2);
  nd->aug = aug;
  nd->ratio = ratio;
  return net->nnodes - 1;
}

int net_blit(ganc_net *net, const char *name, int in, int modes) {
  ganc_node *nd = push(net, &KIND_AUG, name, in, -2);
  nd->aug = GANC_AUG_BLIT;
  nd->modes = modes;
  return net->nnodes - 1;
}

const char *net_node_kind_name(const ganc_node *nd) { return nd->kind->name; }

int net_node_conv_shape(const ganc_node *nd, int N, conv_shape *s, int *transposed) {
  int tr = nd->kind == &KIND_CONVT;
  if (nd->kind != &KIND_CONV && !tr) return 0;
  int rc =
      tr ? conv_shape_make(s, N, nd->H, nd->W, nd->C, nd->iC, nd->R, nd->R, nd->stride, nd->pad)
         : conv_shape_make(s, N, nd->iH, nd->iW, nd->iC, nd->C, nd->R, nd->R, nd->stride, nd->pad);
  if (rc) ganc_die(GANC_EXIT_RUNTIME, "internal error: bad shape in node %s", nd->name);
  if (transposed) *transposed = tr;
  return 1;
}

// ---- the plan: outputs in place where possible, gradient buffers by lifetime
// --------------------- In backward order, node i's backward first writes the gradients of its
// inputs (a gradient is born at its node's first reader, the highest-index consumer) and then no
// longer needs its own dout (it dies). Buffers are handed from dead gradients to newborn ones; a
// node whose backward may write dx in place takes over its own buffer for its single input.
typedef struct {
  size_t size; // floats
  int busy;
} plan_buf;

static int plan_take(plan_buf **v, int *n, size_t size) {
  int best = -1;
  for (int i = 0; i < *n; i++) // the smallest free buffer that fits, else the largest free one
    if (!(*v)[i].busy &&
        (best < 0 ||
         ((*v)[i].size >= size ? (*v)[best].size < size || (*v)[i].size < (*v)[best].size
                               : (*v)[best].size < size && (*v)[i].size > (*v)[best].size)))
      best = i;
  if (best < 0) {
    *v = xrealloc(*v, sizeof(plan_buf) * (size_t)(*n + 1));
    best = (*n)++;
    (*v)[best].size = 0;
  }
  if ((*v)[best].size < size) (*v)[best].size = size;
  (*v)[best].busy = 1;
  return best;
}

static int *by_size(const size_t *size, int n);
static float *scratch_block(ganc_ctx *ctx, float **p, size_t *n, size_t need);

static void plan_gradients(ganc_ctx *ctx, ganc_net *net) {
  int n = net->nnodes, nb = 0;
  plan_buf *bufs = NULL;
  int *owner = xmalloc(sizeof(int) * (size_t)n); // node → plan buffer (-1: none)
  for (int i = 0; i < n; i++)
    owner[i] = -1;
  for (int i = n - 1; i >= 0; i--) {
    ganc_node *nd = &net->nodes[i];
    int handed = 0;
    for (int k = 0; k < nd->nin; k++) {
      int j = nd->in[k];
      if (j == GANC_NET_INPUT || net->nodes[j].first_reader != i || owner[j] >= 0) continue;
      size_t size = (size_t)net->max_batch * net->nodes[j].H * net->nodes[j].W * net->nodes[j].C;
      if (net->nodes[j].dout_bf16) size = (size + 1) / 2; // halves, two to a float
      // Hand over this node's buffer when its backward can write in place and sizes agree.
      if (!handed && nd->kind->bwd_in_place && owner[i] >= 0 && bufs[owner[i]].size >= size &&
          i != n - 1) {
        owner[j] = owner[i];
        handed = 1;
      } else {
        owner[j] = plan_take(&bufs, &nb, size);
      }
    }
    if (owner[i] >= 0 && !handed) bufs[owner[i]].busy = 0;
  }
  // Outputs kept in the scratch (out_scratch) live in the largest buffer, grown to fit. No trained
  // net's plan sets it since the activation on a convolution moved into the convolution's epilogue
  // (plan_bf16); a borrower's outputs in its donor's scratch are placed by place_in_donor_scratch.
  size_t need = 0;
  for (int i = 0; i < n; i++)
    if (net->nodes[i].out_scratch && out_count(&net->nodes[i], net->max_batch) > (int64_t)need)
      need = (size_t)out_count(&net->nodes[i], net->max_batch);
  int largest = -1;
  if (need) {
    if (!nb) {
      plan_take(&bufs, &nb, need);
      bufs[0].busy = 0;
    }
    largest = 0;
    for (int b = 1; b < nb; b++)
      if (bufs[b].size > bufs[largest].size) largest = b;
    if (bufs[largest].size < need) bufs[largest].size = need;
  }
  net->ngradbuf = nb;
  net->gradbuf = xcalloc((size_t)(nb ? nb : 1), sizeof(float *));
  net->gradbuf_n = xcalloc((size_t)(nb ? nb : 1), sizeof(size_t));
  ganc_net *dn = net->grad_donor;
  if (!dn) {
    for (int b = 0; b < nb; b++) {
      net->gradbuf[b] = ganc_alloc(ctx, bufs[b].size);
      net->gradbuf_n[b] = bufs[b].size;
    }
  } else {
    // Pair this net's buffers with the donor's, largest with largest (the shared memory is then
    // the sum of the pairwise maxima, the least any pairing gives); a donor's buffer that is too
    // small is replaced by a larger one, and the donor's own nodes follow it.
    size_t *mine = xmalloc(sizeof(size_t) * (size_t)(nb ? nb : 1));
    for (int b = 0; b < nb; b++)
      mine[b] = bufs[b].size;
    int *a = by_size(mine, nb), *d = by_size(dn->gradbuf_n, dn->ngradbuf);
    const int nd0 = dn->ngradbuf;
    for (int r = 0; r < nb; r++) {
      const int b = a[r];
      int k;
      if (r < nd0) {
        k = d[r];
      } else { // more buffers than the donor has: new ones, the donor's to free
        k = dn->ngradbuf++;
        dn->gradbuf = xrealloc(dn->gradbuf, sizeof(float *) * (size_t)dn->ngradbuf);
        dn->gradbuf_n = xrealloc(dn->gradbuf_n, sizeof(size_t) * (size_t)dn->ngradbuf);
        dn->gradbuf[k] = NULL;
        dn->gradbuf_n[k] = 0;
      }
      if (dn->gradbuf_n[k] < mine[b]) { // replaced; its nodes follow (a donor node whose
        // output is in the scratch finds it by index: net_forward)
        char *was = xcalloc((size_t)dn->nnodes, 1);
        for (int i = 0; dn->gradbuf[k] && i < dn->nnodes; i++)
          was[i] = dn->nodes[i].dout == dn->gradbuf[k];
        scratch_block(ctx, &dn->gradbuf[k], &dn->gradbuf_n[k], mine[b]);
        for (int i = 0; i < dn->nnodes; i++)
          if (was[i]) dn->nodes[i].dout = dn->gradbuf[k];
        free(was);
      }
      net->gradbuf[b] = dn->gradbuf[k];
      net->gradbuf_n[b] = dn->gradbuf_n[k];
    }
    free(mine);
    free(a);
    free(d);
  }
  for (int i = 0; i < n; i++) {
    net->nodes[i].dout = owner[i] >= 0 ? net->gradbuf[owner[i]] : NULL;
    if (net->nodes[i].out_scratch) {
      net->nodes[i].scratch_buf = largest;
      net->nodes[i].out = net->gradbuf[largest];
    }
  }
  free(bufs);
  free(owner);
}

// Indices 0..n-1 ordered by size[], largest first (ties by index, so the order is the same on
// every run).
static int *by_size(const size_t *size, int n) {
  int *o = xmalloc(sizeof(int) * (size_t)(n ? n : 1));
  for (int i = 0; i < n; i++) {
    int j = i;
    for (; j > 0 && size[o[j - 1]] < size[i]; j--)
      o[j] = o[j - 1];
    o[j] = i;
  }
  return o;
}

// A backward scratch block *p of *n floats, at least `need` floats: a larger one replaces it when
// it is smaller (its contents are scratch: nothing in it is kept).
static float *scratch_block(ganc_ctx *ctx, float **p, size_t *n, size_t need) {
  if (*n < need) {
    ganc_free(ctx, *p);
    *p = ganc_alloc(ctx, need);
    *n = need;
  }
  return *p;
}

// A conv node reads the output of node h as a bf16 operand in every role that reads it: forward
// and backward-weight (x), or for a transposed one backward-data and backward-weight (its adjoint's
// dy); its backward-data (forward) reads only the gradient.
static int reads_bf16(ganc_ctx *ctx, const ganc_net *net, const ganc_node *r, int h) {
  conv_shape s;
  int tr;
  if (r->nin != 1 || r->in[0] != h || !net_node_conv_shape(r, net->max_batch, &s, &tr)) return 0;
  return conv2d_reads_bf16(ctx, tr ? GANC_CONV_BWD_DATA : GANC_CONV_FWD, &s) &&
         conv2d_reads_bf16(ctx, GANC_CONV_BWD_WEIGHT, &s);
}

static int conv_reader(const ganc_net *net, int a) {
  const ganc_node *r = &net->nodes[net->nodes[a].first_reader];
  return net->nodes[a].consumers == 1 && (r->kind == &KIND_CONV || r->kind == &KIND_CONVT) &&
         r->nin == 1 && r->in[0] == a;
}

// Node h's output is not the net's, has readers, and every one reads it as a bf16 operand.
static int all_read_bf16(ganc_ctx *ctx, const ganc_net *net, int h) {
  int ok = h != net->nnodes - 1 && net->nodes[h].consumers > 0;
  for (int r = h + 1; ok && r < net->nnodes; r++) {
    const ganc_node *nr = &net->nodes[r];
    if ((nr->in[0] == h || (nr->nin > 1 && nr->in[1] == h)) && !reads_bf16(ctx, net, nr, h)) ok = 0;
  }
  return ok;
}

// Which tensors to keep in bf16 (net.h: net_finalize). First a batch norm's output (not a
// conditional one's, whose output comes from the class affine), together with the activation
// fused into it, when neither is the net's output and every reader of the activated output reads
// it as a bf16 operand.
static void plan_bf16(ganc_ctx *ctx, ganc_net *net) {
  for (int i = 0; i < net->nnodes; i++) {
    ganc_node *b = &net->nodes[i];
    if (b->kind != &KIND_BN || b->cond) continue;
    int h = i; // the node whose output the readers see: the fused activation's, when there is one
    if (b->consumers == 1 && net->nodes[b->first_reader].fused) h = b->first_reader;
    b->out_bf16 = all_read_bf16(ctx, net, h); // the fused activation takes the flag with it
  }
  // A ReLU or leaky ReLU straight on a convolution (no batch norm between), which the
  // convolution's epilogue applies (fused, net_finalize), whose readers all read bf16: the
  // convolution stores the activated output's halves (y_bf16, rounded once from the FP32 act(v):
  // the bits the separate op's act_forward_bf16 gave) and the activation, in place, has them as
  // its output — no FP32 copy of the tensor anywhere. Its backward reads the sign of the halves,
  // as above.
  for (int i = 0; i < net->nnodes; i++) {
    ganc_node *a = &net->nodes[i];
    if ((a->kind != &KIND_RELU && a->kind != &KIND_LRELU) || !a->fused || !a->inplace) continue;
    ganc_node *c = &net->nodes[a->in[0]]; // in place: in[0] is a node
    if ((c->kind != &KIND_CONV && c->kind != &KIND_CONVT) || !all_read_bf16(ctx, net, i)) continue;
    c->out_bf16 = 1;
    c->y_bf16 = 1;
  }
  // The gradient of a convolution's output, when its only reader is a batch norm (whose
  // backward writes it, alone, as the first and only writer) and the convolution reads it as a
  // bf16 operand in both roles that read it: backward-data and backward-weight (for a transposed
  // one, its adjoint's forward and backward-weight).
  for (int j = 0; j < net->nnodes; j++) {
    ganc_node *c = &net->nodes[j];
    conv_shape s;
    int tr;
    if (c->consumers != 1 || !net_node_conv_shape(c, net->max_batch, &s, &tr)) continue;
    ganc_node *b = &net->nodes[c->first_reader];
    // ... or an activation whose backward its own reader applies (bwd_fused): that reader's
    // epilogue then writes the halves into the activation's buffer, which is this one's.
    c->dout_bf16 = ((b->kind == &KIND_BN && !b->cond) || b->bwd_fused) && b->in[0] == j &&
                   conv2d_reads_bf16(ctx, tr ? GANC_CONV_FWD : GANC_CONV_BWD_DATA, &s) &&
                   conv2d_reads_bf16(ctx, GANC_CONV_BWD_WEIGHT, &s);
    if (b->bwd_fused) b->dout_bf16 = c->dout_bf16;
  }
  // A batch norm's output gradient that a bf16 backward rounds to bf16 anyway (round_dy), when the
  // activation between it and the convolution that gives it has its backward applied by that
  // convolution (bwd_fused): the convolution's backward-data stores the halves (its epilogue's
  // out_bf16, after the activation's backward: the bits the rounding as read gives) into the
  // activation's buffer, which is the batch norm's, and batch norm's backward reads them.
  for (int i = 0; i < net->nnodes && ctx->precision == GANC_PREC_BF16; i++) {
    ganc_node *b = &net->nodes[i];
    ganc_node *a = b->round_dy ? &net->nodes[b->first_reader] : NULL;
    if (a && a->bwd_fused) a->dout_bf16 = b->dout_bf16 = 1;
  }
  // A convolution output that only a batch norm reads, which a bf16 forward rounds to bf16
  // anyway (round_out): kept as those halves (batch norm reads them in its forward and its
  // backward; a convolution's backward does not read its output), written so by the
  // convolution's epilogue (y_bf16). On either backend: batch norm reads halves on both.
  for (int j = 0; j < net->nnodes && ctx->precision == GANC_PREC_BF16; j++) {
    ganc_node *c = &net->nodes[j];
    if (!c->round_out) continue;
    c->out_bf16 = 1;
    c->y_bf16 = 1;
  }
}

// A net that shares a donor's activations (net_share_activations) and is not trained runs only
// between the donor's steps, when the donor's backward scratch (its planned gradient buffers) is
// dead too: each output it cannot borrow (the donor keeps that node in bf16, or passes it through
// its scratch) goes into one of those buffers instead of memory of its own, if one is free at
// that node — every output placed in it before was read for the last time before (an in-place
// reader's reads count as its input's; the net's own output, read after the forward, keeps memory
// of its own) — or, for a batch norm, its input's buffer when it is that input's last reader. Which
// free buffer: the smallest that holds the output, or the largest (along a chain that alternates
// between the two largest buffers, as a convolution and its batch norm do); the rule that leaves
// fewer floats unplaced wins. A placed output is found by index at each forward (net_forward: the
// donor's buffers may be replaced by larger ones when another net borrows its scratch), and so is
// an in-place node's, its input's.
static size_t place_outputs(const ganc_net *net, const ganc_net *dn, int max_batch, const int *root,
                            const int *end, int largest, int *buf) {
  size_t unplaced = 0;
  for (int i = 0; i < net->nnodes; i++) {
    const ganc_node *nd = &net->nodes[i];
    buf[i] = -1;
    if (nd->inplace || nd->borrowed || nd->out_bf16 || end[i] == INT_MAX) continue;
    // A batch norm whose input was placed and is read for the last time here runs in place over
    // it (an eval net's output is not kept for a backward; the op allows y over an FP32 x).
    const int x = nd->in[0] == GANC_NET_INPUT ? -1 : root[nd->in[0]];
    if (nd->kind == &KIND_BN && !nd->cond && x >= 0 && buf[x] >= 0 && end[x] == i) {
      buf[i] = buf[x];
      continue;
    }
    const size_t size = (size_t)out_count(nd, max_batch);
    int best = -1;
    for (int b = 0; b < dn->ngradbuf; b++) {
      if (dn->gradbuf_n[b] < size ||
          (best >= 0 && (largest ? dn->gradbuf_n[b] <= dn->gradbuf_n[best]
                                 : dn->gradbuf_n[b] >= dn->gradbuf_n[best])))
        continue;
      int avail = 1;
      for (int j = 0; j < i && avail; j++)
        avail = buf[j] != b || end[j] < i;
      if (avail) best = b;
    }
    buf[i] = best;
    if (best < 0) unplaced += size;
  }
  return unplaced;
}
static void place_in_donor_scratch(ganc_net *net, const ganc_net *dn, int max_batch) {
  const int n = net->nnodes;
  int *root = xmalloc(sizeof(int) * (size_t)n), *end = xmalloc(sizeof(int) * (size_t)n),
      *buf = xmalloc(sizeof(int) * (size_t)n); // storage root, its last read, the placed buffer
  for (int i = 0; i < n; i++) {
    const ganc_node *nd = &net->nodes[i];
    root[i] = nd->inplace ? root[nd->in[0]] : i;
    end[i] = i;
    for (int k = 0; k < nd->nin; k++)
      if (nd->in[k] != GANC_NET_INPUT && end[root[nd->in[k]]] < i) end[root[nd->in[k]]] = i;
  }
  end[root[n - 1]] = INT_MAX;
  const size_t by_small = place_outputs(net, dn, max_batch, root, end, 0, buf);
  if (place_outputs(net, dn, max_batch, root, end, 1, buf) > by_small)
    place_outputs(net, dn, max_batch, root, end, 0, buf);
  for (int i = 0; i < n; i++) {
    if (buf[i] < 0) continue;
    net->nodes[i].out_scratch = net->nodes[i].donor_scratch = 1;
    net->nodes[i].scratch_buf = buf[i];
  }
  free(root), free(end), free(buf);
}

// train.recompute_batchnorm: which batch norms' outputs are made again for their backward
// instead of kept. A batch norm (not a conditional one: its output comes from the class affine)
// whose output one convolution alone reads, directly or through an in-place activation it applies
// (fused), in a trained net. Its output lives in the recompute buffer from its forward to that
// convolution's forward, and again from that convolution's backward (which remakes it first: it
// reads it as backward-weight's operand and for the fused activation's backward) to the
// activation's own backward where that is separate. So the spans [batch norm, convolution] of the
// chosen ones must not overlap (in the forward, nor reversed in the backward): of overlapping ones
// the first is taken. Returns the floats the buffer needs (0: none chosen).
static size_t plan_recompute(ganc_ctx *ctx, ganc_net *net, int max_batch) {
  size_t need = 0;
  for (int i = 0, last = -1; i < net->nnodes; i++) {
    ganc_node *b = &net->nodes[i];
    if (b->kind != &KIND_BN || b->cond || b->consumers != 1 || i <= last) continue;
    const int r = b->first_reader;
    const ganc_node *a = &net->nodes[r];
    int c = -1;
    if (conv_reader(net, i))
      c = r;
    else if (a->inplace && a->fused && a->in[0] == i && conv_reader(net, r))
      c = a->first_reader;
    if (c < 0) continue;
    const size_t count = (size_t)out_count(b, max_batch);
    const size_t floats = b->out_bf16 ? (count + 1) / 2 : count;
    if (floats > need) need = floats;
    b->recompute = b->in_rbuf = 1;
    b->keep = (double *)ganc_alloc(ctx, 4 * (size_t)b->C); // [2, C] doubles
    net->nodes[c].remake = i + 1;
    last = c;
  }
  return need;
}

// The recompute buffer a node's output lives in (in_rbuf): its net's holder's (the grad donor's,
// else its own), or for a node borrowed by a net sharing activations, the donor's.
static float *rbuf_of(const ganc_net *net, const ganc_node *nd) {
  const ganc_net *o = nd->recompute ? net : net->donor;
  return (o->grad_donor ? o->grad_donor : o)->rbuf;
}

int net_recomputed(const ganc_net *net, size_t *bytes) {
  int n = 0;
  size_t sum = 0;
  for (int i = 0; i < net->nnodes; i++) {
    const ganc_node *b = &net->nodes[i];
    if (!b->recompute) continue;
    n++;
    sum += (size_t)out_count(b, net->max_batch) * (b->out_bf16 ? 2 : 4);
  }
  if (bytes) *bytes = sum;
  return n;
}

void net_share_activations(ganc_net *net, const ganc_net *donor) {
  if (net->finalized || donor == net)
    ganc_die(GANC_EXIT_RUNTIME, "internal error: %s shares activations too late", net->name);
  net->donor = donor;
}

void net_share_gradients(ganc_net *net, ganc_net *donor) {
  if (net->finalized || donor == net)
    ganc_die(GANC_EXIT_RUNTIME, "internal error: %s shares backward scratch too late", net->name);
  net->grad_donor = donor;
}

void net_share_params(ganc_net *net, const ganc_net *donor) {
  if (net->finalized || donor == net)
    ganc_die(GANC_EXIT_RUNTIME, "internal error: %s shares parameters too late", net->name);
  net->param_donor = donor;
}

int net_bn_stats_fused(const ganc_net *net) {
  int n = 0;
  for (int i = 0; i < net->nnodes; i++)
    n += net->nodes[i].bn_stats;
  return n;
}

int net_bf16_gradients(const ganc_net *net) {
  int n = 0;
  for (int i = 0; i < net->nnodes; i++) // an activation's is its input's buffer: counted there
    n += net->nodes[i].dout_bf16 && !net->nodes[i].bwd_fused;
  return n;
}

// A convolution that reads a bf16 operand against its weight (its input in forward, its output's
// gradient in backward-data), the weight not spectrally normalised: given the weight's halves
// when the net keeps them (net_finalize).
static int takes_weight_halves(const ganc_net *net, const ganc_node *nd) {
  return (nd->kind == &KIND_CONV || nd->kind == &KIND_CONVT) && !nd->sn &&
         (in_bf16(net, nd) || nd->dout_bf16);
}

int net_bf16_weights(const ganc_net *net) {
  int n = 0;
  for (int i = 0; net->ph && i < net->nnodes; i++)
    n += takes_weight_halves(net, &net->nodes[i]);
  return n;
}

void net_params_written(ganc_ctx *ctx, ganc_net *net) {
  if (net->ph)
    act_forward_bf16(ctx, (int64_t)net->nparam_floats, GANC_ACT_NONE, 0.0f, net->p, net->ph);
}

int net_bf16_outputs(const ganc_net *net, size_t *bytes_saved) {
  int n = 0;
  size_t saved = 0;
  for (int i = 0; i < net->nnodes; i++) {
    const ganc_node *nd = &net->nodes[i];
    if (!nd->out_bf16 || nd->inplace) continue;
    n++;
    saved += (size_t)net->max_batch * nd->H * nd->W * nd->C * 2;
  }
  if (bytes_saved) *bytes_saved = saved;
  return n;
}

// dtmp's size per image: the largest gradient that can be pending in net_backward (of a node's
// output, or of the net's input, that two or more nodes read), or that a batch norm or embed node
// writes with nobody wanting it (its input has no parameter at or below it, so that it needs no
// gradient when the caller asks for parameter gradients alone). DCGAN's chains need none of it.
static size_t dtmp_floats(const ganc_net *net) {
  size_t most = 1;
  int input_readers = 0;
  char *below = xcalloc((size_t)net->nnodes, 1); // a parameter at or below the node
  for (int i = 0; i < net->nnodes; i++) {
    const ganc_node *nd = &net->nodes[i];
    below[i] = nd->w >= 0;
    for (int k = 0; k < nd->nin; k++) {
      const int j = nd->in[k];
      if (j == GANC_NET_INPUT)
        input_readers++;
      else
        below[i] |= below[j];
    }
    const int j = nd->in[0];
    const size_t isz = (size_t)nd->iH * nd->iW * nd->iC;
    if ((nd->kind == &KIND_BN || nd->kind == &KIND_EMBED) && (j == GANC_NET_INPUT || !below[j]) &&
        isz > most)
      most = isz;
    const size_t osz = (size_t)nd->H * nd->W * nd->C;
    if (nd->consumers > 1 && osz > most) most = osz;
  }
  free(below);
  const size_t in_size = (size_t)net->iH * net->iW * net->iC;
  if (input_readers > 1 && in_size > most) most = in_size;
  return most;
}

void net_finalize(ganc_ctx *ctx, ganc_net *net, int max_batch, int train) {
  if (net->nnodes < 1) ganc_die(GANC_EXIT_RUNTIME, "internal error: %s has no nodes", net->name);
  net->max_batch = max_batch;
  size_t maxc = 1, max_w = 1, slot = 1, in_size = (size_t)net->iH * net->iW * net->iC;
  for (int i = 0; i < net->nnodes; i++) {
    ganc_node *nd = &net->nodes[i];
    // Every tensor's element count must fit the ops' int sizes: say so before any allocation.
    int64_t sz = (int64_t)max_batch * nd->H * nd->W * nd->C, isz = in_count(nd, max_batch);
    conv_shape s;
    int bad = sz >= (1ll << 31) || isz >= (1ll << 31);
    if (!bad && (nd->kind == &KIND_CONV || nd->kind == &KIND_CONVT)) {
      int tr = nd->kind == &KIND_CONVT;
      bad = (tr ? conv_shape_make(&s, max_batch, nd->H, nd->W, nd->C, nd->iC, nd->R, nd->R,
                                  nd->stride, nd->pad)
                : conv_shape_make(&s, max_batch, nd->iH, nd->iW, nd->iC, nd->C, nd->R, nd->R,
                                  nd->stride, nd->pad)) != 0;
    }
    if (bad)
      ganc_die(GANC_EXIT_USAGE,
               "batch %d is too large for %s at this size: node %s would hold more than 2^31 "
               "values\n---> HINT: use a smaller batch (--set train.batch=...)",
               max_batch, net->name, nd->name);
    for (int k = 0; k < nd->nin; k++) {
      int j = nd->in[k];
      if (j != GANC_NET_INPUT) {
        net->nodes[j].consumers++;
        net->nodes[j].first_reader = i; // the last assignment is the highest index
      }
    }
    if ((size_t)nd->C > maxc) maxc = (size_t)nd->C;
    if (nd->w >= 0 && net->params[nd->w].count > max_w) max_w = net->params[nd->w].count;
    if (nd->kind == &KIND_BN || nd->kind == &KIND_EMBED) // grad_at's slots hold any of theirs
      for (int k = 0; k < 2; k++) {
        const int t = k ? nd->b : nd->w;
        if (t >= 0 && net->params[t].count > slot) slot = net->params[t].count;
      }
  }
  for (int i = 0; i < net->nnodes - 1; i++)
    if (!net->nodes[i].consumers)
      ganc_die(GANC_EXIT_RUNTIME, "internal error: node %s of %s is never read", net->nodes[i].name,
               net->name);
  const ganc_net *pd = net->param_donor;
  if (pd) {
    int same = !train && pd->finalized && pd->nparams == net->nparams &&
               pd->nparam_floats == net->nparam_floats;
    for (int t = 0; same && t < net->nparams; t++)
      same = pd->params[t].offset == net->params[t].offset &&
             pd->params[t].count == net->params[t].count;
    if (!same)
      ganc_die(GANC_EXIT_RUNTIME, "internal error: %s cannot share %s's parameters", net->name,
               pd->name);
  }
  net->p = pd ? pd->p : ganc_alloc(ctx, net->nparam_floats ? net->nparam_floats : 1);
  net->buf = ganc_alloc(ctx, net->nbuffer_floats ? net->nbuffer_floats : 1);
  if (train) {
    net->g = ganc_alloc(ctx, net->nparam_floats ? net->nparam_floats : 1);
    net->m = ganc_alloc(ctx, net->nparam_floats ? net->nparam_floats : 1);
    net->v = ganc_alloc(ctx, net->nparam_floats ? net->nparam_floats : 1);
  }
  int any_cond = 0, any_sn = 0;
  for (int i = 0; i < net->nnodes; i++) {
    ganc_node *nd = &net->nodes[i];
    // An elementwise node runs in place on its input's output when it is that output's only
    // reader and the input's own backward does not need it.
    int j = nd->in[0];
    nd->inplace = nd->kind->elementwise && j != GANC_NET_INPUT && net->nodes[j].consumers == 1 &&
                  !net->nodes[j].kind->needs_out;
    // An in-place ReLU or leaky ReLU on a batch norm's output (not a conditional one: its output
    // comes from the class affine) is applied by the batch norm as it writes: one pass over the
    // activation instead of two, the same bits. Its backward reads the activated output, in the
    // shared buffer (or is applied by its reader's convolution: bwd_fused below).
    // Likewise on a convolution's output, applied by its epilogue as it stores (conv2d_mixed's
    // epi; not through cuDNN, which runs the baseline's separate passes).
    const int is_act = nd->kind == &KIND_RELU || nd->kind == &KIND_LRELU;
    const int fuse = !ctx->cudnn_conv && !ctx->no_act_fusion; // train.fuse_activations
    if (is_act) nd->act = nd->kind == &KIND_RELU ? GANC_ACT_RELU : GANC_ACT_LRELU;
    const ganc_node *in = nd->inplace ? &net->nodes[j] : NULL; // in place: j is a node
    if (is_act && in &&
        ((in->kind == &KIND_BN && !in->cond) ||
         (fuse && (in->kind == &KIND_CONV || in->kind == &KIND_CONVT)))) {
      net->nodes[j].act = nd->act;
      net->nodes[j].slope = nd->slope;
      nd->fused = 1;
    }
    // And its backward by the convolution that reads it, alone, as that convolution writes the
    // gradient (conv_bwd): in place over the buffer the activation's own backward would have
    // written in place — its input's gradient, whose first writer it is (plan_gradients hands
    // it over; checked after it, below). The activation need not be in place: its input may have
    // other readers (lower in index: they add theirs in after).
    nd->bwd_fused = is_act && train && fuse && j != GANC_NET_INPUT && nd->nin == 1 &&
                    nd->consumers == 1 && i != net->nnodes - 1 && net->nodes[j].first_reader == i &&
                    conv_reader(net, i);
    if (nd->kind == &KIND_BN) {
      nd->mean = ganc_alloc(ctx, (size_t)nd->C);
      nd->rstd = ganc_alloc(ctx, (size_t)nd->C);
      any_cond |= nd->cond;
    }
    if (nd->sn) {
      nd->w_sn = ganc_alloc(ctx, net->params[nd->w].count);
      nd->sigma = ganc_alloc(ctx, 1);
      any_sn = 1;
    }
  }
  // A convolution whose only reader is a batch norm: its output rounded to bf16 in a bf16
  // forward (bn_x_mode), in every net, trained or not.
  size_t bn_need = 0; // doubles of slot sums for the largest bn_stats convolution's output
  for (int j = 0; j < net->nnodes; j++) {
    ganc_node *c = &net->nodes[j];
    const ganc_node *b = c->consumers == 1 ? &net->nodes[c->first_reader] : NULL;
    c->round_out = (c->kind == &KIND_CONV || c->kind == &KIND_CONVT) && b && b->kind == &KIND_BN &&
                   b->nin == 1 && b->in[0] == j;
    // ... whose statistics it sums as it stores, in a trained net's training forward, where the
    // batch norm is not conditional and runs next (the sums wait in the one buffer of the net:
    // nothing may run between), through our kernels (not cuDNN), and not in an fp32 run (whose
    // statistics stay the two passes' bits). (Sync batch norm is decided at each forward: the
    // trainer sets ctx->bn_sync around its steps only; bn_slots.)
    c->bn_stats = train && c->round_out && !b->cond && c->first_reader == j + 1 &&
                  !ctx->no_bn_stats_fusion && !ctx->cudnn_conv && ctx->precision != GANC_PREC_FP32;
    if (c->bn_stats) {
      const int64_t M = (int64_t)max_batch * c->H * c->W;
      const size_t need = (size_t)ganc_bn_part_slots(M) * 2 * (size_t)c->C; // doubles
      if (need > bn_need) bn_need = need;
    }
  }
  // A batch norm (not a conditional one: its backward starts in the class affine) whose output's
  // gradient comes from one convolution's backward-data: the convolution reads the output alone,
  // or through a ReLU / leaky ReLU that only it reads. A bf16 backward rounds that gradient to
  // bf16 before batch norm reads it (bn_dy_mode), in every trained net, on either backend — after
  // the activation's backward (one rounding of the fused epilogue's value; autocast rounds the
  // convolution's gradient and, through a leaky ReLU, the slope's product again).
  for (int i = 0; train && i < net->nnodes; i++) {
    ganc_node *b = &net->nodes[i];
    if (b->kind != &KIND_BN || b->cond || b->consumers != 1) continue;
    const int r = b->first_reader;
    const ganc_node *a = &net->nodes[r];
    const int act = (a->kind == &KIND_RELU || a->kind == &KIND_LRELU) && conv_reader(net, r);
    const int conv = a->kind == &KIND_CONV || a->kind == &KIND_CONVT;
    b->round_dy = (act || conv) && a->nin == 1 && a->in[0] == i;
  }
  if (train && ctx->bf16_store) plan_bf16(ctx, net);
  const size_t rneed = train && ctx->recompute_bn ? plan_recompute(ctx, net, max_batch) : 0;
  const ganc_net *dn = net->donor;
  if (dn && (!dn->finalized || dn->nnodes != net->nnodes || dn->max_batch < max_batch))
    ganc_die(GANC_EXIT_RUNTIME, "internal error: %s cannot share %s's activations", net->name,
             dn->name);
  for (int i = 0; i < net->nnodes; i++) { // which outputs are the donor's
    ganc_node *nd = &net->nodes[i];
    const ganc_node *d = dn ? &dn->nodes[i] : NULL;
    if (d && (d->kind != nd->kind || d->H != nd->H || d->W != nd->W || d->C != nd->C))
      ganc_die(GANC_EXIT_RUNTIME, "internal error: %s and %s differ at node %s", net->name,
               dn->name, nd->name);
    nd->borrowed =
        !nd->inplace && d && !d->inplace && !d->out_bf16 && !d->out_scratch && !nd->out_bf16;
    // The donor's output is its recompute buffer: so is this one's (an eval net's chains are the
    // donor's, so no two of its outputs there are live at once either).
    nd->in_rbuf |= nd->borrowed && d->in_rbuf;
  }
  if (rneed) { // this net's recompute buffer, or its grad donor's grown to fit
    ganc_net *h = net->grad_donor ? net->grad_donor : net;
    if (h != net && !h->finalized)
      ganc_die(GANC_EXIT_RUNTIME, "internal error: %s cannot share %s's recompute buffer",
               net->name, h->name);
    scratch_block(ctx, &h->rbuf, &h->rbuf_n, rneed);
  }
  if (bn_need) { // the slot sums' buffer: this net's own, or its grad donor's grown to fit
    ganc_net *h = net->grad_donor ? net->grad_donor : net;
    if (h != net && !h->finalized)
      ganc_die(GANC_EXIT_RUNTIME, "internal error: %s cannot share %s's statistics buffer",
               net->name, h->name);
    scratch_block(ctx, &h->bnbuf, &h->bnbuf_n, 2 * bn_need);
  }
  if (dn && !train) place_in_donor_scratch(net, dn, max_batch);
  for (int i = 0; i < net->nnodes; i++) { // the outputs, now that their storage is known
    ganc_node *nd = &net->nodes[i];
    const ganc_node *d = dn ? &dn->nodes[i] : NULL;
    const size_t count = (size_t)max_batch * nd->H * nd->W * nd->C;
    if (nd->inplace)
      nd->out = net->nodes[nd->in[0]].out, nd->out_bf16 = net->nodes[nd->in[0]].out_bf16;
    else if (nd->in_rbuf)
      nd->out = rbuf_of(net, nd);
    else if (nd->out_scratch)
      nd->out = NULL; // the backward scratch, once planned (plan_gradients), or the donor's
    else if (nd->borrowed)
      nd->out = d->out;
    else
      nd->out = ganc_alloc(ctx, nd->out_bf16 ? (count + 1) / 2 : count);
    if (nd->cond) // conditional batch norm's normalised input: as large as its output
      nd->xhat = nd->borrowed && d->xhat ? d->xhat : ganc_alloc(ctx, count);
  }
  if (any_cond) { // the identity affine of the normalisation inside conditional batch norm
    float *h = xmalloc(sizeof(float) * maxc);
    for (size_t c = 0; c < maxc; c++)
      h[c] = 1.0f;
    net->ones = ganc_alloc(ctx, maxc);
    net->zeros = ganc_alloc(ctx, maxc);
    ganc_upload(ctx, net->ones, h, maxc);
    free(h);
  }
  if (train) {
    net->dx = ganc_alloc(ctx, (size_t)max_batch * in_size);
    // The backward scratch: this net's own, or its grad donor's grown to fit (net_share_gradients).
    net->dscratch_slot = slot > maxc ? slot : maxc; // maxc: conditional batch norm's own use
    ganc_net *gd = net->grad_donor ? net->grad_donor : net;
    if (gd != net && (!gd->finalized || !gd->g || gd->grad_donor || gd->grad_lent++))
      ganc_die(GANC_EXIT_RUNTIME, "internal error: %s cannot share %s's backward scratch",
               net->name, gd->name);
    net->dtmp = scratch_block(ctx, &gd->dtmp, &gd->dtmp_n, (size_t)max_batch * dtmp_floats(net));
    net->dscratch = scratch_block(ctx, &gd->dscratch, &gd->dscratch_n, 2 * net->dscratch_slot);
    if (any_sn) net->dw_sn = scratch_block(ctx, &gd->dw_sn, &gd->dw_sn_n, max_w);
    net->dtmp_n = gd->dtmp_n, net->dscratch_n = gd->dscratch_n, net->dw_sn_n = gd->dw_sn_n;
    plan_gradients(ctx, net);
    for (int i = 0; i < net->nnodes; i++) { // the fused backwards found their buffers shared
      const ganc_node *a = &net->nodes[i];
      if (a->bwd_fused && (!a->dout || a->dout != net->nodes[a->in[0]].dout))
        ganc_die(GANC_EXIT_RUNTIME, "internal error: %s's fused backward has no shared buffer",
                 a->name);
    }
    // The weights' halves, for the convolutions that read bf16 activations against them (only
    // bf16 runs keep those, and only where a kernel reads them: CUDA): g128's family then reads
    // both operands as they are, by cp.async, instead of rounding the weights at every load
    // (PERF.md). 2 bytes a parameter, written with p; the whole block, so that one pass keeps it.
    int halves = 0;
    for (int i = 0; i < net->nnodes; i++)
      halves |= takes_weight_halves(net, &net->nodes[i]);
    if (halves && !pd && ctx->precision == GANC_PREC_BF16)
      net->ph = ganc_alloc_bytes(ctx, (net->nparam_floats ? net->nparam_floats : 1) * 2);
  }
  net->finalized = 1;
}

void net_free(ganc_ctx *ctx, ganc_net *net) {
  if (net->finalized) {
    for (int i = 0; i < net->nnodes; i++) {
      ganc_node *nd = &net->nodes[i];
      if (!nd->inplace && !nd->borrowed && !nd->out_scratch && !nd->in_rbuf)
        ganc_free(ctx, nd->out);
      ganc_free(ctx, nd->keep);
      if (!nd->borrowed) ganc_free(ctx, nd->xhat);
      ganc_free(ctx, nd->mean);
      ganc_free(ctx, nd->rstd);
      ganc_free(ctx, nd->w_sn);
      ganc_free(ctx, nd->sigma);
    }
    float *own_p = net->param_donor ? NULL : net->p; // a donor's parameters are its to free
    void *blocks[] = {own_p,   net->buf, net->g,    net->m,    net->v,
                      net->dx, net->ph,  net->ones, net->zeros};
    for (size_t k = 0; k < sizeof blocks / sizeof blocks[0]; k++)
      ganc_free(ctx, blocks[k]);
    if (!net->grad_donor) { // a borrower's backward scratch is its donor's to free
      ganc_free(ctx, net->dtmp);
      ganc_free(ctx, net->dscratch);
      ganc_free(ctx, net->dw_sn);
      ganc_free(ctx, net->rbuf);
      ganc_free(ctx, net->bnbuf);
      for (int b = 0; b < net->ngradbuf; b++)
        ganc_free(ctx, net->gradbuf[b]);
    }
  }
  if (net->aug_own) ganc_free(ctx, net->aug_own);
  free(net->gradbuf);
  free(net->gradbuf_n);
  free(net->nodes);
  free(net->params);
  free(net->buffers);
  memset(net, 0, sizeof *net);
}

static void fill_block(ganc_ctx *ctx, const ganc_tensor *t, int nt, size_t total, float *dst,
                       uint64_t seed, uint32_t stream) {
  float *host = xcalloc(total ? total : 1, sizeof(float));
  for (int i = 0; i < nt; i++) {
    float *p = host + t[i].offset;
    size_t n = t[i].count;
    switch (t[i].init) {
    case GANC_INIT_ONE:
      for (size_t k = 0; k < n; k++)
        p[k] = 1.0f;
      break;
    case GANC_INIT_CONV:
    case GANC_INIT_BN_GAMMA:
    case GANC_INIT_NORMAL:
    case GANC_INIT_UNIT: {
      ganc_rng_normals(seed, stream, (uint64_t)i, (int)n, p);
      double norm = 0;
      for (size_t k = 0; k < n; k++)
        norm += (double)p[k] * p[k];
      float scale = t[i].init == GANC_INIT_NORMAL ? t[i].init_std
                    : t[i].init == GANC_INIT_UNIT ? (float)(1.0 / (norm > 0 ? sqrt(norm) : 1.0))
                                                  : 0.02f;
      float shift = t[i].init == GANC_INIT_BN_GAMMA ? 1.0f : 0.0f;
      for (size_t k = 0; k < n; k++)
        p[k] = shift + scale * p[k];
      break;
    }
    default:
      break; // zero
    }
  }
  ganc_upload(ctx, dst, host, total);
  free(host);
}

void net_init_weights(ganc_ctx *ctx, ganc_net *net, uint64_t seed, uint32_t stream) {
  fill_block(ctx, net->params, net->nparams, net->nparam_floats, net->p, seed, stream);
  // Buffers draw from their own rows (after the parameters'), so adding state to an architecture
  // does not change its parameters' initial values.
  fill_block(ctx, net->buffers, net->nbuffers, net->nbuffer_floats, net->buf, seed,
             stream ^ 0x80000000u);
  if (net->m) {
    ganc_zero(ctx, net->m, net->nparam_floats);
    ganc_zero(ctx, net->v, net->nparam_floats);
  }
  net->adam_t = 0;
  // Spectral norm's u, v start as random unit vectors, for which vᵀ W u can be near zero or
  // negative: a few power-iteration steps now give an initial sigma near the top singular value,
  // so that even an eval-mode forward of a fresh network is sane.
  for (int i = 0; net->finalized && i < net->nnodes; i++)
    if (net->nodes[i].sn) sn_transform_iters(ctx, net, &net->nodes[i], SN_INIT_ITERS);
  net_params_written(ctx, net);
}

// ---- running
// -------------------------------------------------------------------------------------
static const float *input_of(const ganc_net *net, int j, const float *x) {
  return j == GANC_NET_INPUT ? x : net->nodes[j].out;
}

const float *net_forward(ganc_ctx *ctx, ganc_net *net, const float *x, int N, int train,
                         float momentum_override) {
  if (N < 1 || N > net->max_batch)
    ganc_die(GANC_EXIT_RUNTIME, "internal error: batch %d outside 1..%d for %s", N, net->max_batch,
             net->name);
  if (net->ncls && !net->labels)
    ganc_die(GANC_EXIT_RUNTIME, "internal error: conditional %s run without labels", net->name);
  float mom = momentum_override >= 0 ? momentum_override : net->bn_momentum;
  for (int i = 0; i < net->nnodes; i++) {
    ganc_node *nd = &net->nodes[i];
    // An output in the backward scratch: the buffer as it is now (a borrower of this net's
    // scratch may have replaced it with a larger one since net_finalize).
    if (nd->out_scratch)
      nd->out = (nd->donor_scratch ? net->donor->gradbuf : net->gradbuf)[nd->scratch_buf];
    else if (nd->in_rbuf) // likewise the recompute buffer
      nd->out = rbuf_of(net, nd);
    else if (nd->inplace) // its input's, which may be such an output
      nd->out = net->nodes[nd->in[0]].out;
    const float *in[2] = {input_of(net, nd->in[0], x),
                          nd->nin > 1 ? input_of(net, nd->in[1], x) : NULL};
    prof_node(ctx, net, nd, "forward");
    nd->kind->forward(ctx, net, nd, in, N, train, mom);
  }
  ganc_prof_at(ctx, NULL, NULL, NULL, NULL);
  return net->nodes[net->nnodes - 1].out;
}

// train.recompute_batchnorm: batch norm k's training output again, into the recompute buffer (its
// out), for the backward of the convolution that alone reads it — the same bits as its forward
// (batchnorm_reapply), from its input (kept for its own backward) and the statistics it kept.
static void bn_remake(ganc_ctx *ctx, ganc_net *net, int k, const float *x, int N) {
  ganc_node *b = &net->nodes[k];
  prof_node(ctx, net, b, "remake");
  batchnorm_reapply(ctx, (int64_t)N * b->H * b->W, b->C, input_of(net, b->in[0], x),
                    bn_x_mode(ctx, net, b), param(net, b->w), param(net, b->b), b->keep, b->act,
                    b->slope, b->out, b->out_bf16);
}

const float *net_backward(ganc_ctx *ctx, ganc_net *net, const float *x, const float *dy, int N,
                          int need_dx, int need_wgrad) {
  if (!net->g) ganc_die(GANC_EXIT_RUNTIME, "internal error: %s has no gradients", net->name);
  int n = net->nnodes;
  // Which node outputs need a gradient: those with parameters below them (need_wgrad) or with the
  // net's input below them (need_dx).
  char *need = xcalloc((size_t)n, 1), *written = xcalloc((size_t)n, 1);
  for (int i = 0; i < n; i++) {
    const ganc_node *nd = &net->nodes[i];
    need[i] = need_wgrad && nd->w >= 0;
    for (int k = 0; k < nd->nin; k++)
      need[i] |= nd->in[k] == GANC_NET_INPUT ? need_dx : need[nd->in[k]];
  }
  int x_written = 0;
  float *gw = need_wgrad ? net->g : NULL;
  for (int i = n - 1; i >= 0; i--) {
    ganc_node *nd = &net->nodes[i];
    if (!need[i]) continue;
    const float *d = i == n - 1 ? dy : nd->dout;
    const float *in[2] = {input_of(net, nd->in[0], x),
                          nd->nin > 1 ? input_of(net, nd->in[1], x) : NULL};
    // Where each input's gradient goes: its buffer when this is its first writer, else dtmp, added
    // in after (also for a node that reads the same input twice).
    float *dx[2] = {NULL, NULL}, *target[2] = {NULL, NULL};
    for (int k = 0; k < nd->nin; k++) {
      int j = nd->in[k];
      int wanted = j == GANC_NET_INPUT ? need_dx : need[j];
      if (!wanted) continue;
      float *buf = j == GANC_NET_INPUT ? net->dx : net->nodes[j].dout;
      int first = j == GANC_NET_INPUT ? !x_written : !written[j];
      dx[k] = first ? buf : net->dtmp;
      target[k] = first ? NULL : buf;
      if (j == GANC_NET_INPUT)
        x_written = 1;
      else
        written[j] = 1;
    }
    prof_node(ctx, net, nd, "backward");
    if (nd->remake) bn_remake(ctx, net, nd->remake - 1, x, N);
    // dtmp holds one pending gradient at a time: a node with two pending ones (a node adding an
    // input to itself, or two already-written inputs) goes one input at a time.
    if (target[0] && target[1]) {
      float *one[2] = {dx[0], NULL};
      nd->kind->backward(ctx, net, nd, in, d, one, N, gw, need_wgrad);
      tensor_add(ctx, in_count(nd, N), target[0], net->dtmp, target[0]);
      float *two[2] = {NULL, dx[1]};
      nd->kind->backward(ctx, net, nd, in, d, two, N, NULL, 0);
      tensor_add(ctx, in_count(nd, N), target[1], net->dtmp, target[1]);
      continue;
    }
    nd->kind->backward(ctx, net, nd, in, d, dx, N, gw, need_wgrad);
    for (int k = 0; k < nd->nin; k++)
      if (target[k]) tensor_add(ctx, in_count(nd, N), target[k], net->dtmp, target[k]);
  }
  ganc_prof_at(ctx, NULL, NULL, NULL, NULL);
  free(need);
  free(written);
  return need_dx ? net->dx : NULL;
}

void net_zero_grad(ganc_ctx *ctx, ganc_net *net) {
  ganc_prof_at(ctx, net->name, "-", NULL, "zero gradients");
  if (net->g) ganc_zero(ctx, net->g, net->nparam_floats);
  ganc_prof_at(ctx, NULL, NULL, NULL, NULL);
}

void net_adam(ganc_ctx *ctx, ganc_net *net, const float *k, float *ema) {
  // net->adam_t is the caller's to advance: a captured step runs this once and replays it.
  ganc_prof_at(ctx, net->name, "-", NULL, ema ? "adam + ema" : "adam");
  adam_update(ctx, net->nparam_floats, net->p, net->g, net->m, net->v, ema, net->ph, k);
  ganc_prof_at(ctx, NULL, NULL, NULL, NULL);
}

void net_set_aug_counter(ganc_ctx *ctx, ganc_net *net, uint64_t v) {
  if (!net->aug_own) net->aug_own = (uint64_t *)ganc_alloc_bytes(ctx, sizeof(uint64_t));
  ganc_upload_bytes(ctx, net->aug_own, &v, sizeof v);
  net->aug_counter = net->aug_own;
}

void net_describe(const ganc_net *net, char *buf, size_t n) {
  const ganc_node *o = &net->nodes[net->nnodes - 1];
  snprintf(buf, n, "%s: %dx%dx%d -> %dx%dx%d, %d nodes, %d tensors, %.2fM parameters", net->name,
           net->iH, net->iW, net->iC, o->H, o->W, o->C, net->nnodes, net->nparams,
           (double)net->nparam_floats / 1e6);
}
