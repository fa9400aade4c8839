// net.h — a network is data: a graph of nodes, each naming its inputs (earlier nodes, or the
// network's input x) and its kind, a table of functions (shape and parameters, forward, backward,
// a weight transform) in net.c. Builders (dcgan.c, resnet.c) add nodes; one loop runs them forward
// in order and one runs them backward in reverse.
//
// Parameters live in one contiguous block with a table of names, shapes and offsets; gradients and
// Adam moments mirror it. State that is not trained — batch-norm running statistics, the power
// iteration vectors of spectral norm — lives in a second block (buffers). A checkpoint is a loop
// over the two tables; tensor names are "<node name>.<what>" ("b1.conv.weight").
//
// Memory: every node's output is kept for the backward pass (an elementwise node may run in place
// on its input's output when nothing else reads it); the gradients of node outputs share buffers
// planned by lifetime (a gradient lives from its first writer to its node's own backward), so a
// deep residual network needs a few activation-sized gradient buffers, not one per node.
#ifndef GANC_NET_H
#define GANC_NET_H

#include "core/ctx.h"
#include "ops/augment_core.h" // GANC_AUG_*
#include "ops/ops.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// One named tensor in a block: its name ("b1.conv.weight"), shape and place.
typedef struct ganc_tensor {
  char name[48];
  int ndim;
  int shape[4];
  size_t offset, count; // in floats within the block
  int init;             // GANC_INIT_*: how net_init_weights fills it
  float init_std;       // GANC_INIT_NORMAL: the standard deviation
} ganc_tensor;

enum {
  GANC_INIT_ZERO = 0,
  GANC_INIT_ONE,
  GANC_INIT_CONV,     // N(0, 0.02): DCGAN's convolutions
  GANC_INIT_BN_GAMMA, // N(1, 0.02): DCGAN's batch-norm scales
  GANC_INIT_NORMAL,   // N(0, init_std²)
  GANC_INIT_UNIT,     // N(0, 1) then scaled to unit length (spectral norm's u, v)
};

// The network's input, as a node input.
enum { GANC_NET_INPUT = -1 };

// The augmentations (net_augment: GANC_AUG_COLOR, _TRANSLATION, _CUTOUT; net_blit: the
// GANC_AUG_BLIT_* modes) are ops/augment_core.h's.

typedef struct ganc_node_kind ganc_node_kind; // net.c: one table of functions per kind

typedef struct ganc_node {
  const ganc_node_kind *kind;
  char name[32];
  int in[2], nin; // producers: node indices (< this node's), or GANC_NET_INPUT
  int H, W, C;    // output shape per image
  int iH, iW, iC; // shape of in[0] per image
  // configuration
  int R, stride, pad; // conv / convt
  int sn;             // conv / convt: spectral normalisation of the weight
  int cond;           // batch norm: the affine parameters are per class ([ncls, C] tables)
  float slope;        // leaky ReLU
  int aug;            // augment: GANC_AUG_* (DiffAugment's transforms)
  float ratio;        // augment: translation's or cutout's ratio
  int modes;          // augment: the blit's GANC_AUG_BLIT_* bits
  // tensors: indices into the net's params (w, b) and buffers (rm, rv, su, sv); -1 when none
  int w, b, rm, rv, su, sv;
  // backend memory for a run
  float *out;          // [max_batch, H, W, C]; an in-place node shares its input's
  float *mean, *rstd;  // batch norm [C]
  float *xhat;         // conditional batch norm: the normalised input before the class affine
  float *w_sn, *sigma; // spectral norm: W / sigma and sigma [1], made by each forward
  float *dout;         // the gradient of out (a planned buffer; NULL for the output node)
  int consumers;       // nodes reading this one's output
  int first_reader;    // the highest-index consumer: the first to write dout in backward
  int inplace;         // out aliases in[0]'s out
  int act;       // batch norm, conv: GANC_ACT_* applied as it writes out (its in-place activation);
                 // an activation: its own
  int fused;     // activation: applied by the batch norm or convolution before it (forward: no-op)
  int bwd_fused; // activation: its backward applied by its reader, a convolution, as that writes
                 // the gradient (conv2d_mixed's epi), in place over the input's (backward: no-op)
  int out_bf16;  // out holds bf16 values (ops/precision.h), half the bytes: see net_finalize
  int borrowed;  // out (and xhat) belong to the net's donor (net_share_activations)
  int dout_bf16; // dout holds bf16 values: see net_finalize
  int out_scratch;   // out is the backward scratch (in a net sharing a donor's activations, a
                     // buffer of the donor's: place_in_donor_scratch):
  int scratch_buf;   // gradbuf[scratch_buf] (the donor's, for a borrower), looked up at each
                     // forward
  int round_dy;      // batch norm whose output's gradient a convolution's backward-data alone
                     // gives (through an activation only it reads, or directly): in a bf16
                     // backward, batch norm reads it rounded to bf16 (as PyTorch autocast's bf16
                     // input gradient of a convolution: the same values through a ReLU; through
                     // a leaky ReLU ganc rounds once, after the slope, where autocast rounds the
                     // convolution's gradient and again after the slope); kept as those halves
                     // (dout_bf16) where
                     // the activation's backward is the convolution's (bwd_fused)
  int round_out;     // conv read only by a batch norm: in a bf16 forward, batch norm reads
                     // the output rounded to bf16 (PyTorch autocast's bf16 convolution output)
  int y_bf16;        // round_out kept in bf16 (out_bf16), or the activation fused into the conv
                     // kept so: the conv writes its (activated) output's halves (conv2d_mixed's
                     // out_bf16: rounded as stored, no FP32 copy)
  int donor_scratch; // out_scratch in the donor's gradbuf (net_share_activations)
  // train.recompute_batchnorm (net_finalize): a batch norm whose output (after its fused ReLU)
  // one convolution alone reads keeps it in the net's recompute buffer only until that
  // convolution's forward has read it (recompute); the convolution's backward first makes it
  // again there (remake: 1 + the batch norm's index) from the batch norm's input and the
  // statistics its training forward kept (keep, [2, C] doubles: batchnorm_reapply). in_rbuf: out
  // is that buffer — the holder's (rbuf_holder), or for a net sharing a donor's activations the
  // donor's — looked up at each forward (a borrower of the holder's scratch may replace it).
  int recompute, remake, in_rbuf;
  double *keep;
  // conv / convt in a trained net whose only reader is a (non-conditional) batch norm, the next
  // node, in a tf32 or bf16 run (net_finalize; not train.fuse_batchnorm_stats = false or cuDNN;
  // not in a forward under sync batch norm over several ranks):
  // its training forward sums that batch norm's statistics as it stores (conv2d_mixed's
  // epi.stats, into the net's bnp), and the batch norm's training forward takes them from there.
  int bn_stats;
} ganc_node;

typedef struct ganc_net {
  char name[8];   // "G", "G_ema", "D"
  int iH, iW, iC; // input shape per image
  int nnodes, cap;
  ganc_node *nodes; // in topological order; the last is the output
  int nparams, nbuffers, cap_params, cap_buffers;
  ganc_tensor *params, *buffers;
  size_t nparam_floats, nbuffer_floats;
  float bn_eps, bn_momentum;
  int ncls;              // classes of the conditional layers (0: none)
  int sn_iters;          // spectral norm: power iterations per training forward (1)
  const int32_t *labels; // [N] backend memory: set before a forward of a conditional net
  // Augmentation nodes draw from Philox(aug_seed, *aug_counter): set before each forward
  // (net_set_aug_counter, or point it at a counter in backend memory that a replayed graph
  // rewrites: ganc_step_args); the backward that follows uses the same draws. A forward that
  // must differ takes a new counter.
  uint64_t aug_seed;
  const uint64_t *aug_counter; // backend memory
  uint64_t *aug_own;           // [1] backend memory: net_set_aug_counter's
  int aug_row0; // the batch's first image is this row of the global batch (data-parallel ranks)
  // The probability with which each augmentation applies to each image (ADA's p, backend memory,
  // read by the ops when they run, so a replayed graph reads its step's); NULL: always (1).
  const float *aug_p;
  // Backend memory.
  float *p, *g, *m,
      *v;     // parameters, gradients, Adam moments ([nparam_floats] each; g/m/v may be NULL)
  float *buf; // buffers [nbuffer_floats]
  // The parameters' bf16 halves, round(p) element for element (NULL: none): kept by a trained net
  // whose convolutions read bf16 activations on a device whose kernels take the weights so too
  // (net_finalize; net_bf16_weights), written with p by net_adam and by net_params_written.
  uint16_t *ph;
  int max_batch;
  float *dx;            // the gradient of the net's input, [max_batch, iH, iW, iC] (train only)
  float *dtmp;          // a second writer's gradient before it is added in (train only)
  float *dscratch;      // gradients of parameters we were asked not to compute (two slots)
  size_t dscratch_slot; // floats per slot: the largest batch-norm or embedding parameter, >= max C
  float *dw_sn;         // the gradient of a spectrally normalised weight, before its transform
  float *ones, *zeros;  // [max C]: the affine of conditional batch norm's normalisation
  float **gradbuf;      // the planned gradient buffers
  size_t *gradbuf_n;    // their sizes in floats
  int ngradbuf;
  size_t dtmp_n, dscratch_n, dw_sn_n; // sizes in floats (0: not allocated)
  int64_t adam_t;                     // Adam steps taken
  int finalized;
  const struct ganc_net *donor; // net_share_activations: whose activation memory this net uses
  struct ganc_net *grad_donor;  // net_share_gradients: whose backward scratch this net uses
  const struct ganc_net *param_donor; // net_share_params: whose parameter block this net reads
  int grad_lent;                      // a borrower uses this net's backward scratch
  // The recompute buffer (train.recompute_batchnorm), rbuf_n floats: the net's own, or its grad
  // donor's grown to fit (net_share_gradients): no two nets' outputs in it are needed at once.
  float *rbuf;
  size_t rbuf_n;
  // The batch-norm slot sums of a bn_stats convolution's output, from its training forward to its
  // batch norm's (the next node): bnbuf, bnbuf_n floats, the net's own or its grad donor's grown
  // to fit (no two nets' forwards interleave), described by bnp at each such forward.
  float *bnbuf;
  size_t bnbuf_n;
  ganc_bn_part bnp;
} ganc_net;

// ---- building ----------------------------------------------------------------------------------
// Each adder takes its input node (GANC_NET_INPUT for the net's input) and returns the new node's
// index; shapes follow from the inputs. Parameters start at zero: net_init_weights fills them.
void net_init(ganc_net *net, const char *name, int H, int W, int C);
// The node added last (the output so far).
int net_last(const ganc_net *net);
// conv / transposed conv R×R, `sn` = spectral norm on the weight; weight init N(0, std²)
// (std 0: DCGAN's 0.02 with GANC_INIT_CONV, which keeps DCGAN checkpoints' initialisation).
int net_conv(ganc_net *net, const char *name, int in, int K, int R, int stride, int pad, int sn,
             float std);
int net_convt(ganc_net *net, const char *name, int in, int K, int R, int stride, int pad, int sn,
              float std);
// Batch norm; cond = 1: class-conditional (gamma, beta per class; needs net->ncls).
int net_bn(ganc_net *net, const char *name, int in, int cond);
int net_relu(ganc_net *net, int in);
int net_lrelu(ganc_net *net, int in, float slope);
int net_tanh(ganc_net *net, int in);
int net_upsample(ganc_net *net, const char *name, int in);  // nearest 2x
int net_avgpool(ganc_net *net, const char *name, int in);   // 2x2 average
int net_add(ganc_net *net, const char *name, int a, int b); // a + b, same shapes
int net_sumpool(ganc_net *net, const char *name, int in);   // [H,W,C] → [1,1,C], global sum
// The projection discriminator's class term: [1,1,C] → [1,1,1], <h, embed[label]>.
int net_embed(ganc_net *net, const char *name, int in, float std);
// A DiffAugment transform (GANC_AUG_*; ratio for translation and cutout), differentiable.
int net_augment(ganc_net *net, const char *name, int in, int aug, float ratio);
// ADA's blit (GANC_AUG_BLIT_FLIP | GANC_AUG_BLIT_ROT90): x-flips and quarter turns, differentiable.
int net_blit(ganc_net *net, const char *name, int in, int modes);

// Allocates backend memory for batches up to max_batch. train = 1 also allocates gradients, Adam
// moments and the planned gradient buffers, and, where ctx->bf16_store asks, keeps in bf16 each
// batch-norm output (after its fused activation) whose readers all round it to bf16 anyway:
// convolutions that read it as a bf16 operand in every role that reads it (conv2d_reads_bf16),
// and the activation's backward, which reads its sign — likewise a ReLU or leaky ReLU straight on
// a convolution, which that convolution applies as it writes the halves (y_bf16); and in bf16 the
// gradient of each convolution's output whose only reader is a (non-conditional) batch norm, or
// an activation whose backward is fused (below), when the convolution reads that gradient as a
// bf16 operand in both roles that read it (batch norm's backward, or the reading convolution's
// epilogue, rounds it as it writes); and the output of each convolution that only a batch norm
// reads (round_out, which a bf16 forward rounds to bf16 whatever the storage: the convolution
// writes its output's halves, rounded as stored, into the node's output); and the gradient of each
// batch norm's output that a bf16 backward rounds (round_dy) when the activation between it and the
// convolution that gives it has its backward fused into that convolution (which then writes the
// halves). The results are the same
// bits as with FP32 storage (a positive value below 2^-134, which no layer realistically makes,
// would take its activation's negative-side gradient). Unless ctx->no_act_fusion or cuDNN
// convolutions: an in-place ReLU / leaky ReLU on a convolution's output is applied by that
// convolution's epilogue (its forward a no-op), and in training an activation whose only reader is
// a convolution has its backward applied by that convolution's backward-data as it writes the
// gradient, in place over the activation's input's gradient (bwd_fused) — the same bits as the
// separate passes.
void net_finalize(ganc_ctx *ctx, ganc_net *net, int max_batch, int train);
// Before net_finalize: `net` (same architecture as `donor`, which is finalized first, at a batch
// at least as large) runs its forwards in the donor's activation memory instead of its own — its
// node outputs (and conditional batch norms' normalised inputs) are the donor's buffers, except
// where the donor keeps an output in bf16 or in its backward scratch: those go into the donor's
// backward scratch too, into a buffer free at that node (net_finalize's place_in_donor_scratch),
// else into memory of its own. A forward of either overwrites the other's activations and the
// donor's backward scratch: for a net that never runs between a forward of the donor, or of a
// net sharing the donor's backward scratch (net_share_gradients), and that forward's backward
// (G_ema, which the trainer runs between steps, beside G and D: one set of generator
// activations, not two).
void net_share_activations(ganc_net *net, const ganc_net *donor);
// Before net_finalize (train = 1): `net` runs its backwards in the backward scratch of `donor` (a
// trained net finalized first that lends to no other): the planned gradient buffers, dtmp,
// dscratch and dw_sn, grown where `net` needs more (the donor's nodes follow the grown buffers).
// Nothing survives in them from one net_backward to the next (a net sharing the donor's
// activations may also write them between steps: place_in_donor_scratch), so two nets whose
// backwards never interleave share them: D's and G's in the trainer, where D's backward has
// returned (its input gradient is D's own dx, not scratch) before G's begins. The donor frees the
// shared memory.
void net_share_gradients(ganc_net *net, ganc_net *donor);
// Before net_finalize (train = 0): `net` (the same parameters as `donor`, finalized first) reads
// the donor's parameter block instead of a copy of its own; its buffers (batch-norm statistics,
// spectral norm's vectors) stay its own. For G_ema when the run keeps no moving average
// (train.ema_kimg = 0: β = 0 makes G_ema ← G exactly after every step, so the copy only ever held
// G's values). Whatever writes the parameters (Adam, a checkpoint's load) writes the donor's.
void net_share_params(ganc_net *net, const ganc_net *donor);
// How many node outputs net_finalize keeps in bf16, and the bytes that saves at max_batch.
int net_bf16_outputs(const ganc_net *net, size_t *bytes_saved);
// How many batch-norm outputs net_finalize does not keep (train.recompute_batchnorm: made again
// for their backward), and their bytes at max_batch (the recompute buffer holds the largest).
int net_recomputed(const ganc_net *net, size_t *bytes);
// How many convolutions sum their batch norm's statistics as they store their output (bn_stats).
int net_bn_stats_fused(const ganc_net *net);
// How many node-output gradients net_finalize keeps in bf16.
int net_bf16_gradients(const ganc_net *net);
// How many convolutions are given their weights' bf16 halves (net->ph; 0 without it).
int net_bf16_weights(const ganc_net *net);
// After net->p was written other than by net_adam (initialisation, a checkpoint's load, a copy):
// its halves (net->ph, where kept) follow. Not inside a capture that is replayed later.
void net_params_written(ganc_ctx *ctx, ganc_net *net);
void net_free(ganc_ctx *ctx, ganc_net *net);

// Initialisation: each tensor as its init says; numbers from Philox (seed, stream, row = tensor
// index), the same on every backend.
void net_init_weights(ganc_ctx *ctx, ganc_net *net, uint64_t seed, uint32_t stream);

// ---- running -----------------------------------------------------------------------------------
// Forward of N images x [N, iH, iW, iC] (and net->labels when conditional); returns the output
// [N, H, W, C] (backend memory owned by the net, valid until the next forward). train = 1:
// batch-norm uses and updates batch statistics (momentum as set, or `momentum_override` >= 0) and
// spectral norm takes net->sn_iters power-iteration steps; train = 0: running statistics, and the
// stored power-iteration vectors as they are.
const float *net_forward(ganc_ctx *ctx, ganc_net *net, const float *x, int N, int train,
                         float momentum_override);
// Backward after a training forward with the same x: dy [N, H, W, C] → returns dx [N, iH, iW, iC]
// when need_dx (else NULL). Parameter gradients accumulate into net->g when need_wgrad.
const float *net_backward(ganc_ctx *ctx, ganc_net *net, const float *x, const float *dy, int N,
                          int need_dx, int need_wgrad);
void net_zero_grad(ganc_ctx *ctx, ganc_net *net);
// One Adam step over the whole parameter block, with the constants k [GANC_ADAM_K] in backend
// memory (ganc_adam_consts for step net->adam_t + 1); ema (may be NULL): a block of the same
// size that then takes the EMA of the new parameters (k's beta). The caller advances adam_t.
void net_adam(ganc_ctx *ctx, ganc_net *net, const float *k, float *ema);
// Sets *aug_counter = v (uploads it into the net's own counter; not inside a capture).
void net_set_aug_counter(ganc_ctx *ctx, ganc_net *net, uint64_t v);

// The node's kind: "conv", "convt", "bn", "relu", "lrelu", "tanh", "upsample", "avgpool", "add",
// "sumpool", "embed", "augment" (for exporters, which map each kind to another format's ops).
const char *net_node_kind_name(const ganc_node *nd);
// The ordinary convolution a conv or transposed-conv node is at batch N (for a transposed one,
// its adjoint, as in ops.h): 1 and *s filled, *transposed set; 0 for other kinds.
int net_node_conv_shape(const ganc_node *nd, int N, conv_shape *s, int *transposed);

// A one-line description of the architecture, e.g. "G: 1x1x100 -> 32x32x1, 8 tensors, 1.2M params".
void net_describe(const ganc_net *net, char *buf, size_t n);

#ifdef __cplusplus
}
#endif

#endif
