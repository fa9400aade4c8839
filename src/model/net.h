// net.h — a network is data: a list of layers built from a config, run forward and backward by
// one loop each. Parameters live in one contiguous block with a table of names, shapes and
// offsets; gradients and Adam moments mirror it; batch-norm running statistics live in a second
// block (buffers). A checkpoint is a loop over the two tables.
#ifndef GANC_NET_H
#define GANC_NET_H

#include "core/ctx.h"
#include "ops/ops.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { LAYER_CONV, LAYER_CONVT, LAYER_BN, LAYER_RELU, LAYER_LRELU, LAYER_TANH } layer_kind;

// One named tensor in a block: its name ("b1.conv.weight"), shape and place.
typedef struct ganc_tensor {
  char name[48];
  int ndim;
  int shape[4];
  size_t offset, count; // in floats within the block
  int init;             // GANC_INIT_*: how net_init_weights fills it
} ganc_tensor;

enum { GANC_INIT_ZERO = 0, GANC_INIT_ONE, GANC_INIT_CONV, GANC_INIT_BN_GAMMA };

typedef struct layer {
  layer_kind kind;
  char name[32];
  int H, W, C;    // output shape per image
  int iH, iW, iC; // input shape per image
  // conv / convT: R×R kernel, stride, pad, weight tensor index; the conv_shape is rebuilt per N.
  int R, stride, pad;
  int w;       // index into params (weight; BN gamma)
  int b;       // index into params (BN beta)
  int rm, rv;  // index into buffers (BN running mean / var)
  float slope; // leaky ReLU
  // Per-run state (backend memory): the layer's output; BN's saved statistics.
  float *out;         // [max_batch, H, W, C]; aliases the input for in-place activations
  float *mean, *rstd; // BN [C]
} layer;

typedef struct ganc_net {
  char name[8];   // "G", "G_ema", "D"
  int iH, iW, iC; // input shape per image
  int nlayers, cap;
  layer *layers;
  int nparams, nbuffers;
  ganc_tensor params[64], buffers[64];
  size_t nparam_floats, nbuffer_floats;
  float bn_eps, bn_momentum;
  // Backend memory.
  float *p, *g, *m,
      *v;     // parameters, gradients, Adam moments ([nparam_floats] each; g/m/v may be NULL)
  float *buf; // running statistics [nbuffer_floats]
  int max_batch;
  float *dbuf[2];  // ping-pong activation gradients [max_batch * largest activation]
  float *dscratch; // gradients of parameters we were asked not to compute
  int64_t adam_t;  // Adam steps taken
  int finalized;
} ganc_net;

// ---- building ----------------------------------------------------------------------------------
void net_init(ganc_net *net, const char *name, int H, int W, int C);
void net_conv(ganc_net *net, const char *name, int K, int R, int stride, int pad);
void net_convt(ganc_net *net, const char *name, int K, int R, int stride, int pad);
void net_bn(ganc_net *net, const char *name);
void net_relu(ganc_net *net);
void net_lrelu(ganc_net *net, float slope);
void net_tanh(ganc_net *net);
// Allocates backend memory for batches up to max_batch. train = 1 also allocates gradients and
// Adam moments. Parameters start at zero: call net_init_weights or load a checkpoint.
void net_finalize(ganc_ctx *ctx, ganc_net *net, int max_batch, int train);
void net_free(ganc_ctx *ctx, ganc_net *net);

// DCGAN initialisation: conv weights N(0, 0.02), BN gamma N(1, 0.02), beta 0, running mean 0 and
// var 1; numbers from Philox (seed, stream, row = tensor index), the same on every backend.
void net_init_weights(ganc_ctx *ctx, ganc_net *net, uint64_t seed, uint32_t stream);

// ---- running
// ------------------------------------------------------------------------------------- Forward of
// N images x [N, iH, iW, iC]; returns the output [N, H, W, C] (backend memory owned by the net,
// valid until the next forward). train = 1: batch-norm uses and updates batch statistics (momentum
// as set, or `momentum_override` >= 0); train = 0: running statistics.
const float *net_forward(ganc_ctx *ctx, ganc_net *net, const float *x, int N, int train,
                         float momentum_override);
// Backward after a training forward with the same x: dy [N, H, W, C] → returns dx [N, iH, iW, iC]
// when need_dx (else NULL). Parameter gradients accumulate into net->g when need_wgrad.
const float *net_backward(ganc_ctx *ctx, ganc_net *net, const float *x, const float *dy, int N,
                          int need_dx, int need_wgrad);
void net_zero_grad(ganc_ctx *ctx, ganc_net *net);
// One Adam step over the whole parameter block.
void net_adam(ganc_ctx *ctx, ganc_net *net, float lr, float b1, float b2, float eps);

// A one-line description of the architecture, e.g. "G: 1x1x100 -> 32x32x1, 8 tensors, 1.2M params".
void net_describe(const ganc_net *net, char *buf, size_t n);

#ifdef __cplusplus
}
#endif

#endif
