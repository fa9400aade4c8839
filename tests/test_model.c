// test_model.c — the DCGAN family and the network machinery: output shapes at every resolution,
// parameter counts equal to PyTorch's DCGAN example, whole-network gradients against finite
// differences (catches wiring errors the per-op tests cannot: transposed-conv roles, in-place
// activations, ping-pong buffers), checkpoint round trips and refusals, Philox.
// cmocka.h needs these three first, so the block is kept out of include sorting.
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
// clang-format on

#include "core/check.h"
#include "core/philox.h"
#include "core/util.h"
#include "io/h5attr.h"
#include "model/arch.h"
#include "model/dcgan.h"
#include "ops/dispatch.h"
#include "ops/precision.h" // ganc_bf16_store: the halves a bf16 run keeps
#include "testutil.h"
#include "train/checkpoint.h"
#include "train/config.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ganc_ctx g_ctx;

static ganc_config small_config(int R, int C, int base) {
  ganc_config c;
  ganc_config_defaults(&c);
  c.resolution = R;
  c.channels = C;
  c.g_base = c.d_base = base;
  c.z_dim = 7;
  return c;
}

// The conditional ResNet recipe, 3 classes.
static void cond_resnet(ganc_config *c) {
  snprintf(c->arch, sizeof c->arch, "resnet");
  snprintf(c->conditional, sizeof c->conditional, "yes");
  c->classes = 3;
}

static void test_shapes_every_resolution(void **state) {
  (void)state;
  int res[] = {32, 64, 128, 256};
  for (int r = 0; r < 4; r++)
    for (int ch = 1; ch <= 3; ch += 2) {
      ganc_config c = small_config(res[r], ch, 2);
      ganc_net G, D;
      dcgan_build_g(&G, &c, "G");
      dcgan_build_d(&D, &c);
      net_finalize(&g_ctx, &G, 2, 0);
      net_finalize(&g_ctx, &D, 2, 0);
      net_init_weights(&g_ctx, &G, 1, GANC_RNG_INIT_G);
      net_init_weights(&g_ctx, &D, 1, GANC_RNG_INIT_D);
      const ganc_node *gl = &G.nodes[G.nnodes - 1], *dl = &D.nodes[D.nnodes - 1];
      assert_int_equal(gl->H, res[r]);
      assert_int_equal(gl->W, res[r]);
      assert_int_equal(gl->C, ch);
      assert_int_equal(dl->H * dl->W * dl->C, 1);
      float z[14];
      ganc_rng_normals(3, GANC_RNG_LATENT, 0, 14, z);
      const float *img = net_forward(&g_ctx, &G, z, 2, 1, -1);
      size_t n = (size_t)2 * res[r] * res[r] * ch;
      for (size_t i = 0; i < n; i++)
        assert_true(img[i] >= -1.0f && img[i] <= 1.0f);
      const float *logit = net_forward(&g_ctx, &D, img, 2, 1, -1);
      assert_true(isfinite(logit[0]) && isfinite(logit[1]));
      net_free(&g_ctx, &G);
      net_free(&g_ctx, &D);
    }
}

static void test_pytorch_parameter_counts(void **state) {
  (void)state;
  // PyTorch's DCGAN example at 64x64x3, nz 100, ngf = ndf = 64: 3,576,704 and 2,765,568.
  ganc_config c;
  ganc_config_defaults(&c);
  c.resolution = 64;
  c.channels = 3;
  ganc_net G, D;
  dcgan_build_g(&G, &c, "G");
  dcgan_build_d(&D, &c);
  assert_int_equal(G.nparam_floats, 3576704);
  assert_int_equal(D.nparam_floats, 2765568);
  assert_int_equal(G.params[0].shape[3], 100); // first convT: adjoint [4,4,512,100]
  assert_int_equal(G.params[0].shape[2], 512);
  net_free(&g_ctx, &G);
  net_free(&g_ctx, &D);
}

// L = sum(r ⊙ D(G(z))) for a tiny G+D in training mode; returns L and fills grads.
static double loss_and_grads(ganc_net *G, ganc_net *D, const float *z, int N, const float *r,
                             int want_grads) {
  const float *img = net_forward(&g_ctx, G, z, N, 1, 0.0f);
  const float *logit = net_forward(&g_ctx, D, img, N, 1, 0.0f);
  double L = 0;
  for (int i = 0; i < N; i++)
    L += (double)r[i] * logit[i];
  if (want_grads) {
    net_zero_grad(&g_ctx, G);
    net_zero_grad(&g_ctx, D);
    const float *dimg = net_backward(&g_ctx, D, img, r, N, 1, 1);
    net_backward(&g_ctx, G, z, dimg, N, 0, 1);
  }
  return L;
}

static void test_whole_network_gradients(void **state) {
  (void)state;
  ganc_config c = small_config(32, 3, 2);
  ganc_net G, D;
  dcgan_build_g(&G, &c, "G");
  dcgan_build_d(&D, &c);
  const int N = 3;
  net_finalize(&g_ctx, &G, N, 1);
  net_finalize(&g_ctx, &D, N, 1);
  net_init_weights(&g_ctx, &G, 5, GANC_RNG_INIT_G);
  net_init_weights(&g_ctx, &D, 5, GANC_RNG_INIT_D);
  // Larger weights than DCGAN's 0.02 so every path carries signal through the small widths.
  for (size_t i = 0; i < G.nparam_floats; i++)
    G.p[i] *= 10.0f;
  for (size_t i = 0; i < D.nparam_floats; i++)
    D.p[i] *= 10.0f;
  float z[3 * 7], r[3] = {0.7f, -1.3f, 0.4f};
  ganc_rng_normals(11, GANC_RNG_LATENT, 0, 21, z);
  loss_and_grads(&G, &D, z, N, r, 1);
  // Check a spread of parameters of every tensor of both nets by central differences. Float
  // differences through ReLU kinks are noisy for single entries, so the test asks for agreement
  // on the large majority; a wiring error (a swapped role, a stale buffer) fails nearly all.
  ganc_net *nets[2] = {&G, &D};
  int checked = 0, agreed = 0;
  for (int k = 0; k < 2; k++) {
    ganc_net *net = nets[k];
    float *g = xmalloc(net->nparam_floats * sizeof(float));
    memcpy(g, net->g, net->nparam_floats * sizeof(float));
    for (int t = 0; t < net->nparams; t++) {
      int ok_t = 0, n_t = 0;
      for (int j = 0; j < 6; j++) {
        size_t idx = net->params[t].offset + (size_t)(j * 7919 + 13) % net->params[t].count;
        float save = net->p[idx];
        double h = 1e-3;
        net->p[idx] = (float)(save + h);
        double lp = loss_and_grads(&G, &D, z, N, r, 0);
        net->p[idx] = (float)(save - h);
        double lm = loss_and_grads(&G, &D, z, N, r, 0);
        net->p[idx] = save;
        double fd = (lp - lm) / (2 * h), an = g[idx];
        double scale = fabs(fd) > fabs(an) ? fabs(fd) : fabs(an);
        if (scale < 1e-3) continue; // no signal through this weight
        int ok = fabs(fd - an) <= 0.05 * scale + 2e-3;
        if (!ok)
          printf("  %s %s[%zu]: backward %.6g, finite differences %.6g\n", net->name,
                 net->params[t].name, idx - net->params[t].offset, an, fd);
        ok_t += ok;
        n_t++;
      }
      if (n_t >= 3 && ok_t == 0) fail_msg("%s %s: no entry agrees", net->name, net->params[t].name);
      checked += n_t;
      agreed += ok_t;
    }
    free(g);
  }
  printf("whole-network gradients: %d of %d entries agree with finite differences\n", agreed,
         checked);
  assert_true(agreed >= 0.85 * checked);
  assert_true(checked > 20);
  net_free(&g_ctx, &G);
  net_free(&g_ctx, &D);
}

// G_ema in G's activation memory (net_share_activations, as the trainer does) and reading G's
// parameters (net_share_params, as the trainer does without an EMA): every output it
// can borrow is G's buffer, and its forwards — eval, and training mode as in its batch-norm
// recalibration — give the bits of a G_ema with memory of its own. DCGAN, and a conditional
// ResNet (whose batch norms also borrow their normalised inputs).
static void test_shared_activations(void **state) {
  (void)state;
  for (int k = 0; k < 2; k++) {
    ganc_config c = small_config(32, 1, 4);
    if (k) cond_resnet(&c);
    ganc_net G, E, E2;
    ganc_build_g(&G, &c, "G");
    ganc_build_g(&E, &c, "G_ema");
    ganc_build_g(&E2, &c, "G_ema");
    net_finalize(&g_ctx, &G, 4, 1);
    net_share_activations(&E, &G);
    net_share_params(&E, &G);       // as without an EMA: G's parameters, no copy (freed once, by G)
    net_finalize(&g_ctx, &E, 3, 0); // a smaller batch may borrow a larger one's buffers
    net_finalize(&g_ctx, &E2, 3, 0);
    assert_ptr_equal(E.p, G.p);
    assert_ptr_not_equal(E.buf, G.buf); // its statistics are its own
    net_init_weights(&g_ctx, &G, 5, GANC_RNG_INIT_G);
    memcpy(E2.p, G.p, G.nparam_floats * sizeof(float));
    int borrowed = 0;
    for (int i = 0; i < E.nnodes; i++) {
      const ganc_node *e = &E.nodes[i];
      if (e->inplace) continue;
      assert_true(e->borrowed && e->out == G.nodes[i].out);
      if (e->cond) assert_true(e->xhat == G.nodes[i].xhat);
      borrowed++;
    }
    assert_true(borrowed > 3);
    int32_t lab[4] = {0, 2, 1, 0};
    G.labels = E.labels = E2.labels = lab;
    float z[4 * 7];
    ganc_rng_normals(9, GANC_RNG_LATENT, 0, 4 * 7, z);
    const size_t n = (size_t)3 * 32 * 32;
    float *a = xmalloc(n * sizeof(float));
    for (int train = 1; train >= 0; train--) {
      net_forward(&g_ctx, &G, z, 4, 1, -1); // G's activations in the shared buffers first
      memcpy(a, net_forward(&g_ctx, &E, z, 3, train, -1), n * sizeof(float));
      const float *b = net_forward(&g_ctx, &E2, z, 3, train, -1);
      assert_memory_equal(a, b, n * sizeof(float));
      assert_memory_equal(E.buf, E2.buf, E.nbuffer_floats * sizeof(float)); // running statistics
    }
    free(a);
    net_free(&g_ctx, &E); // before or after its donor: it frees none of the borrowed buffers
    net_free(&g_ctx, &G);
    net_free(&g_ctx, &E2);
  }
}

// One trainer-order step on a pair (G, D): D's backward on reals, then on fakes, then the G step's
// D backward (input gradient only) and G's backward; returns D's input gradient.
static const float *trainer_order_step(ganc_net *G, ganc_net *D, const float *z, const float *x,
                                       const float *r, int N) {
  net_zero_grad(&g_ctx, G);
  net_zero_grad(&g_ctx, D);
  net_forward(&g_ctx, D, x, N, 1, -1);
  net_backward(&g_ctx, D, x, r, N, 0, 1);
  const float *fake = net_forward(&g_ctx, G, z, N, 1, -1);
  net_forward(&g_ctx, D, fake, N, 1, -1);
  net_backward(&g_ctx, D, fake, r + N, N, 0, 1);
  net_forward(&g_ctx, D, fake, N, 1, -1);
  const float *dfake = net_backward(&g_ctx, D, fake, r + 2 * N, N, 1, 0);
  net_backward(&g_ctx, G, z, dfake, N, 0, 1);
  return dfake;
}

// Case k of the tests below: DCGAN (k even) or a conditional ResNet with spectral norm in both
// nets.
static ganc_config pair_config(int k) {
  ganc_config c = small_config(32, 1, 4);
  if (k & 1) {
    cond_resnet(&c);
    snprintf(c.spectral_norm, sizeof c.spectral_norm, "gd");
  }
  return c;
}

// Two trainer-order steps on (G, D) and on (G2, D2), set up alike, at batch N = 2: the same input
// gradient of D, the same parameter gradients and buffers of both nets, bit for bit.
static void same_trainer_steps(ganc_net *G, ganc_net *D, ganc_net *G2, ganc_net *D2) {
  const int N = 2;
  int32_t lab[2] = {2, 0};
  G->labels = D->labels = G2->labels = D2->labels = lab;
  float z[2 * 7], x[2 * 32 * 32], r[6] = {0.7f, -1.3f, 0.4f, 1.1f, -0.2f, 0.9f};
  ganc_rng_normals(3, GANC_RNG_LATENT, 0, 2 * 7, z);
  ganc_rng_normals(4, GANC_RNG_LATENT, 0, 2 * 32 * 32, x);
  float *a = xmalloc(sizeof x);
  for (int step = 0; step < 2; step++) {
    memcpy(a, trainer_order_step(G, D, z, x, r, N), sizeof x);
    const float *b = trainer_order_step(G2, D2, z, x, r, N);
    assert_memory_equal(a, b, sizeof x);
    assert_memory_equal(G->g, G2->g, G->nparam_floats * sizeof(float));
    assert_memory_equal(D->g, D2->g, D->nparam_floats * sizeof(float));
    assert_memory_equal(G->buf, G2->buf, G->nbuffer_floats * sizeof(float));
    assert_memory_equal(D->buf, D2->buf, D->nbuffer_floats * sizeof(float));
  }
  free(a);
}

static int holds(const ganc_net *net, const void *p) {
  for (int b = 0; b < net->ngradbuf; b++)
    if (net->gradbuf[b] == p) return 1;
  return 0;
}

// D's backward in G's backward scratch (net_share_gradients, as the trainer does): every planned
// gradient buffer and dtmp/dscratch/dw_sn of the borrower is the donor's, a donor too small for
// the borrower grows (its nodes follow the new buffers), and two trainer-order steps give the bits
// of nets with scratch of their own. DCGAN, and a conditional ResNet with spectral norm in both
// nets (dtmp for its residual adds, dw_sn, conditional batch norm's scratch); the donor G at a
// smaller batch than D, so that D's larger needs grow G's buffers, and the other way round.
static void test_shared_gradients(void **state) {
  (void)state;
  for (int k = 0; k < 4; k++) {
    ganc_config c = pair_config(k);
    const int grow_g = k >= 2; // the donor is D, borrowing G at a larger batch
    const int N = 2, big = 3;
    ganc_net G, D, G2, D2;
    ganc_build_g(&G, &c, "G");
    ganc_build_d(&D, &c);
    ganc_build_g(&G2, &c, "G");
    ganc_build_d(&D2, &c);
    if (!grow_g) {
      net_finalize(&g_ctx, &G, N, 1);
      net_share_gradients(&D, &G);
      net_finalize(&g_ctx, &D, big, 1);
    } else {
      net_finalize(&g_ctx, &D, N, 1);
      net_share_gradients(&G, &D);
      net_finalize(&g_ctx, &G, big, 1);
    }
    net_finalize(&g_ctx, &G2, grow_g ? big : N, 1);
    net_finalize(&g_ctx, &D2, grow_g ? N : big, 1);
    ganc_net *don = grow_g ? &D : &G, *bor = grow_g ? &G : &D;
    assert_true(bor->dtmp == don->dtmp && bor->dscratch == don->dscratch);
    assert_true(bor->dw_sn == don->dw_sn);
    if (k & 1) assert_non_null(don->dw_sn);
    for (int b = 0; b < bor->ngradbuf; b++)
      assert_true(holds(don, bor->gradbuf[b]));
    for (int i = 0; i < don->nnodes; i++) // the donor's nodes point at its live buffers
      assert_true(!don->nodes[i].dout || holds(don, don->nodes[i].dout));
    size_t shared = 0, own = 0;
    for (int b = 0; b < don->ngradbuf; b++)
      shared += don->gradbuf_n[b];
    for (int b = 0; b < G2.ngradbuf; b++)
      own += G2.gradbuf_n[b];
    for (int b = 0; b < D2.ngradbuf; b++)
      own += D2.gradbuf_n[b];
    assert_true(shared < own);
    net_init_weights(&g_ctx, &G, 5, GANC_RNG_INIT_G);
    net_init_weights(&g_ctx, &D, 5, GANC_RNG_INIT_D);
    net_init_weights(&g_ctx, &G2, 5, GANC_RNG_INIT_G);
    net_init_weights(&g_ctx, &D2, 5, GANC_RNG_INIT_D);
    same_trainer_steps(&G, &D, &G2, &D2);
    net_free(&g_ctx, bor); // before or after its donor: it frees none of the shared scratch
    net_free(&g_ctx, don);
    net_free(&g_ctx, &G2);
    net_free(&g_ctx, &D2);
  }
}

// G and D built, finalized for training at batch N as the trainer sets them up (D in G's backward
// scratch) and initialised.
static void trainer_pair(ganc_net *G, ganc_net *D, const ganc_config *c, int N) {
  ganc_build_g(G, c, "G");
  ganc_build_d(D, c);
  net_finalize(&g_ctx, G, N, 1);
  net_share_gradients(D, G);
  net_finalize(&g_ctx, D, N, 1);
  net_init_weights(&g_ctx, G, 5, GANC_RNG_INIT_G);
  net_init_weights(&g_ctx, D, 5, GANC_RNG_INIT_D);
}

// train.fuse_activations: a ReLU / leaky ReLU on a convolution's output runs in that
// convolution's epilogue (the convolution's act; the activation's forward a no-op), and an
// activation whose only reader is a convolution has its backward applied by that convolution's
// backward-data, in place over its input's gradient (bwd_fused). Nets set up as the trainer does
// (D in G's backward scratch), DCGAN and a conditional ResNet with spectral norm, FP32 and bf16:
// two trainer-order steps give the bits of nets without the fusion (ctx.no_act_fusion), and the
// fusion happened where it should (D's first leaky ReLU in DCGAN; every batch norm's activation
// read by a convolution).
static void test_fused_activations(void **state) {
  (void)state;
  for (int k = 0; k < 4; k++) {
    ganc_config c = pair_config(k);
    g_ctx.precision = k >= 2 ? GANC_PREC_BF16 : GANC_PREC_FP32;
    const int N = 2;
    ganc_net G[2], D[2];
    for (int f = 0; f < 2; f++) { // f = 1: fused
      g_ctx.no_act_fusion = !f;
      trainer_pair(&G[f], &D[f], &c, N);
    }
    g_ctx.no_act_fusion = 0;
    int fwd = 0, bwd = 0;
    for (int n = 0; n < 2; n++) {
      const ganc_net *u = n ? &D[0] : &G[0], *v = n ? &D[1] : &G[1];
      for (int i = 0; i < v->nnodes; i++) {
        const ganc_node *a = &v->nodes[i];
        assert_false(u->nodes[i].bwd_fused);
        if (a->bwd_fused) {
          bwd++;
          assert_ptr_equal(a->dout, v->nodes[a->in[0]].dout); // in place over its input's
        }
        const ganc_node *in = a->nin && a->in[0] != GANC_NET_INPUT ? &v->nodes[a->in[0]] : NULL;
        if (a->fused && in && strcmp(net_node_kind_name(in), "bn")) {
          fwd++;
          assert_int_equal(in->act, a->act);
          assert_int_equal(u->nodes[a->in[0]].act, GANC_ACT_NONE);
        }
      }
    }
    assert_int_equal(fwd, k & 1 ? 3 : 1); // DCGAN: D's conv b0 → leaky ReLU
    assert_int_equal(bwd, k & 1 ? 7 : 6); // every activation read by a convolution alone
    same_trainer_steps(&G[0], &D[0], &G[1], &D[1]);
    for (int f = 0; f < 2; f++) {
      net_free(&g_ctx, &D[f]);
      net_free(&g_ctx, &G[f]);
    }
  }
  g_ctx.precision = GANC_PREC_FP32;
}

// Largest |a − b| over the largest |b| (0 when b is all zeros and a equals it).
static double rel_diff(const float *a, const float *b, size_t n) {
  double d = 0.0, m = 0.0;
  for (size_t i = 0; i < n; i++) {
    d = fmax(d, fabs((double)a[i] - b[i]));
    m = fmax(m, fabs((double)b[i]));
  }
  return m > 0 ? d / m : d;
}

// train.fuse_batchnorm_stats (ctx.no_bn_stats_fusion = 0): in a tf32 or bf16 run, each
// convolution whose only reader is a plain batch norm sums that batch norm's statistics as it
// stores its output (bn_stats; conv2d_mixed's epi.stats), into one buffer, G's (D borrows it with
// G's backward scratch), and the batch norm takes them from there. DCGAN and a conditional ResNet
// with spectral norm (its conditional batch norms keep their two passes), set up as the trainer
// does: the right convolutions are chosen (none at FP32), and after a trainer-order step every
// batch norm's statistics and running statistics equal the two-pass ones to float resolution —
// the sums differ only in the rounding of double. The gradients are compared loosely only: in a
// bf16 run an ulp of rstd may move a value across a bf16 rounding boundary, which the next layer
// then sees as a 2^-8 change.
static void test_fused_bn_stats(void **state) {
  (void)state;
  for (int k = 0; k < 6; k++) {
    ganc_config c = pair_config(k & 1);
    const int prec = k < 2 ? GANC_PREC_BF16 : k < 4 ? GANC_PREC_TF32 : GANC_PREC_FP32;
    g_ctx.precision = prec;
    const int N = 2;
    ganc_net G[2], D[2];
    for (int f = 0; f < 2; f++) { // f = 1: fused
      g_ctx.no_bn_stats_fusion = !f;
      trainer_pair(&G[f], &D[f], &c, N);
    }
    g_ctx.no_bn_stats_fusion = 0;
    int chosen = 0;
    for (int n = 0; n < 2; n++) {
      const ganc_net *u = n ? &D[0] : &G[0], *v = n ? &D[1] : &G[1];
      assert_int_equal(net_bn_stats_fused(u), 0);
      for (int i = 0; i < v->nnodes; i++) {
        const ganc_node *a = &v->nodes[i];
        const ganc_node *b = a->consumers == 1 ? &v->nodes[a->first_reader] : NULL;
        const int conv =
            !strcmp(net_node_kind_name(a), "conv") || !strcmp(net_node_kind_name(a), "convt");
        const int want = prec != GANC_PREC_FP32 && conv && b &&
                         !strcmp(net_node_kind_name(b), "bn") && !b->cond && b->in[0] == i;
        assert_int_equal(a->bn_stats, want);
        chosen += want;
      }
    }
    // DCGAN at 32x32: G's three batch norms and D's two; the ResNet: its plain out.bn in G
    // reads an upsampled sum, not a convolution, and its other batch norms are conditional.
    assert_int_equal(chosen, prec == GANC_PREC_FP32 || (k & 1) ? 0 : 5);
    assert_null(D[1].bnbuf);
    if (chosen) assert_non_null(G[1].bnbuf);
    int32_t lab[2] = {2, 0};
    G[0].labels = D[0].labels = G[1].labels = D[1].labels = lab;
    float z[2 * 7], x[2 * 32 * 32], r[6] = {0.7f, -1.3f, 0.4f, 1.1f, -0.2f, 0.9f};
    ganc_rng_normals(3, GANC_RNG_LATENT, 0, 2 * 7, z);
    ganc_rng_normals(4, GANC_RNG_LATENT, 0, 2 * 32 * 32, x);
    float *a = xmalloc(sizeof x);
    memcpy(a, trainer_order_step(&G[0], &D[0], z, x, r, N), sizeof x);
    const float *b = trainer_order_step(&G[1], &D[1], z, x, r, N);
    for (int n = 0; n < 2; n++) {
      const ganc_net *u = n ? &D[0] : &G[0], *v = n ? &D[1] : &G[1];
      for (int i = 0; i < v->nnodes; i++)
        if (v->nodes[i].mean) {
          assert_true(rel_diff(v->nodes[i].mean, u->nodes[i].mean, v->nodes[i].C) < 1e-6);
          assert_true(rel_diff(v->nodes[i].rstd, u->nodes[i].rstd, v->nodes[i].C) < 1e-6);
        }
      assert_true(rel_diff(v->buf, u->buf, v->nbuffer_floats) < 1e-6);
      assert_true(rel_diff(v->g, u->g, v->nparam_floats) < 3e-2);
    }
    assert_true(rel_diff(b, a, 2 * 32 * 32) < 3e-2);
    if (!chosen) { // nothing fused: the same bits
      assert_memory_equal(a, b, sizeof x);
      assert_memory_equal(G[0].g, G[1].g, G[0].nparam_floats * sizeof(float));
    }
    free(a);
    for (int f = 0; f < 2; f++) {
      net_free(&g_ctx, &D[f]);
      net_free(&g_ctx, &G[f]);
    }
  }
  g_ctx.precision = GANC_PREC_FP32;
}

// train.recompute_batchnorm (ctx.recompute_bn): a batch norm's output that a convolution alone
// reads (through its fused ReLU) is not kept: it lives in one recompute buffer, G's (D borrows it
// with G's backward scratch, as the trainer sets them up), and the convolution's backward makes it
// again first (batchnorm_reapply). In the trainer's order D's forwards overwrite G's outputs there
// before G's backward, so a missing or inexact remake changes G's gradients. DCGAN, an
// unconditional ResNet with spectral norm (a chain inside each residual block, beside the
// shortcut) and a conditional one (only its plain out.bn), FP32 and bf16 (batch norm then reads
// its input as halves): the right batch norms are chosen, and two trainer-order steps give the bits
// of nets that keep their outputs. G_ema borrows G's outputs there (FP32 on the CPU): finalized
// before D grows the buffer, its forwards (training mode and eval) still give a G_ema with memory
// of its own's bits.
static void test_recompute_batchnorm(void **state) {
  (void)state;
  for (int k = 0; k < 4; k++) {
    ganc_config c = small_config(32, 1, 4);
    if (k & 1) {
      snprintf(c.arch, sizeof c.arch, "resnet");
      snprintf(c.spectral_norm, sizeof c.spectral_norm, "gd");
      if (k == 3) {
        snprintf(c.conditional, sizeof c.conditional, "yes");
        c.classes = 3;
      }
    }
    g_ctx.precision = k >= 2 ? GANC_PREC_BF16 : GANC_PREC_FP32;
    g_ctx.bf16_store = k >= 2;
    const int N = 2;
    ganc_net G[2], D[2], E, E2;
    size_t before = 0;
    for (int r = 0; r < 2; r++) { // r = 1: recomputed
      g_ctx.recompute_bn = r;
      ganc_build_g(&G[r], &c, "G");
      ganc_build_d(&D[r], &c);
      net_finalize(&g_ctx, &G[r], N, 1);
      if (r) { // G_ema in G's activations, before D grows G's buffers
        ganc_build_g(&E, &c, "G_ema");
        net_share_activations(&E, &G[r]);
        net_finalize(&g_ctx, &E, 1, 0);
        before = G[r].rbuf_n;
      }
      net_share_gradients(&D[r], &G[r]);
      net_finalize(&g_ctx, &D[r], N + 4, 1);
      net_init_weights(&g_ctx, &G[r], 5, GANC_RNG_INIT_G);
      net_init_weights(&g_ctx, &D[r], 5, GANC_RNG_INIT_D);
    }
    g_ctx.recompute_bn = 0;
    ganc_build_g(&E2, &c, "G_ema");
    net_finalize(&g_ctx, &E2, 1, 0);
    assert_null(D[1].rbuf);
    int chosen[2] = {0, 0};
    for (int n = 0; n < 2; n++) {
      const ganc_net *u = n ? &D[0] : &G[0], *v = n ? &D[1] : &G[1];
      for (int i = 0; i < v->nnodes; i++) {
        const ganc_node *b = &v->nodes[i];
        assert_false(u->nodes[i].recompute || u->nodes[i].remake || u->nodes[i].in_rbuf);
        if (strcmp(net_node_kind_name(b), "bn")) {
          assert_false(b->recompute);
          continue;
        }
        const ganc_node *a = &v->nodes[b->first_reader];
        const char *reader =
            a->consumers == 1 ? net_node_kind_name(&v->nodes[a->first_reader]) : "";
        const int want = !b->cond && b->consumers == 1 && a->fused &&
                         (!strcmp(reader, "conv") || !strcmp(reader, "convt"));
        assert_int_equal(b->recompute, want);
        if (!want) continue;
        chosen[n]++;
        assert_int_equal(v->nodes[a->first_reader].remake, i + 1);
        assert_true((size_t)(b->out_bf16 ? 1 : 2) * G[1].rbuf_n >=
                    (size_t)v->max_batch * b->H * b->W * b->C);
      }
    }
    // DCGAN: each of G's batch norms and D's; ResNet: G's second batch norm in each block and
    // out.bn (conditional: out.bn only), D has none.
    assert_true(chosen[0] >= (k == 3 ? 1 : 2));
    assert_int_equal(chosen[0], k == 3 ? 1 : chosen[0]);
    assert_true((k & 1) ? chosen[1] == 0 : chosen[1] >= 1);
    if (chosen[1]) assert_true(G[1].rbuf_n > before); // D's outputs at its batch grew it
    same_trainer_steps(&G[0], &D[0], &G[1], &D[1]);
    for (int n = 0; n < 2; n++) // every chosen output is in the buffer as it is now
      for (int i = 0; i < (n ? D[1] : G[1]).nnodes; i++) {
        const ganc_node *b = &(n ? D[1] : G[1]).nodes[i];
        if (b->recompute) assert_ptr_equal(b->out, G[1].rbuf);
      }
    int32_t lab[1] = {1};
    E.labels = E2.labels = lab;
    memcpy(E.p, G[1].p, G[1].nparam_floats * sizeof(float));
    memcpy(E2.p, G[1].p, G[1].nparam_floats * sizeof(float));
    float z[7], a[32 * 32];
    ganc_rng_normals(8, GANC_RNG_LATENT, 0, 7, z);
    int in_rbuf = 0;
    for (int train = 1; train >= 0; train--) {
      memcpy(a, net_forward(&g_ctx, &E, z, 1, train, -1), sizeof a);
      assert_memory_equal(a, net_forward(&g_ctx, &E2, z, 1, train, -1), sizeof a);
      assert_memory_equal(E.buf, E2.buf, E.nbuffer_floats * sizeof(float));
    }
    for (int i = 0; i < E.nnodes; i++) {
      in_rbuf += E.nodes[i].in_rbuf;
      if (E.nodes[i].in_rbuf) assert_ptr_equal(E.nodes[i].out, G[1].rbuf);
    }
    assert_int_equal(in_rbuf, chosen[0]);
    net_free(&g_ctx, &E);
    net_free(&g_ctx, &E2);
    for (int r = 0; r < 2; r++) {
      net_free(&g_ctx, &D[r]);
      net_free(&g_ctx, &G[r]);
    }
  }
  g_ctx.precision = GANC_PREC_FP32;
  g_ctx.bf16_store = 0;
}

// The same on graphs no builder makes today: (0) a leaky ReLU that is not in place (its input, a
// convolution, has a lower-index reader too: a shortcut convolution, added back at the end), whose
// backward is fused into its reader's and lands in the buffer the shortcut then adds into; (1) a
// batch norm's ReLU read by a convolution, a leaky ReLU fused into that convolution's epilogue and
// read by another, and a residual add back to the first convolution. Fused and unfused nets give
// the same forward output and, for each of input gradient only, parameter gradients only, and both,
// the same gradients bit for bit.
static void test_fused_activations_graphs(void **state) {
  (void)state;
  for (int v = 0; v < 2; v++) {
    ganc_net N[2];
    for (int f = 0; f < 2; f++) {
      g_ctx.no_act_fusion = !f;
      ganc_net *n = &N[f];
      net_init(n, "D", 8, 8, 2);
      const int c0 = net_conv(n, "c0", GANC_NET_INPUT, 4, 3, 1, 1, 0, 0.3f);
      if (v == 0) {
        const int sc = net_conv(n, "s", c0, 4, 3, 1, 1, 0, 0.3f);
        const int a = net_lrelu(n, c0, 0.2f);
        const int c1 = net_conv(n, "c1", a, 4, 3, 1, 1, 0, 0.3f);
        net_add(n, "add", c1, sc);
      } else {
        const int b = net_bn(n, "bn", c0, 0);
        const int a = net_relu(n, b);
        const int c1 = net_conv(n, "c1", a, 4, 3, 1, 1, 0, 0.3f);
        const int a2 = net_lrelu(n, c1, 0.2f);
        const int c2 = net_conv(n, "c2", a2, 4, 3, 1, 1, 0, 0.3f);
        net_add(n, "add", c2, c0);
      }
      net_finalize(&g_ctx, n, 2, 1);
      net_init_weights(&g_ctx, n, 5, GANC_RNG_INIT_D);
    }
    g_ctx.no_act_fusion = 0;
    int bwd = 0, fwd = 0;
    for (int i = 0; i < N[1].nnodes; i++) {
      bwd += N[1].nodes[i].bwd_fused;
      fwd +=
          N[1].nodes[i].fused && strcmp(net_node_kind_name(&N[1].nodes[N[1].nodes[i].in[0]]), "bn");
      assert_false(N[0].nodes[i].bwd_fused);
      if (!strcmp(net_node_kind_name(&N[0].nodes[i]), "conv"))
        assert_int_equal(N[0].nodes[i].act, GANC_ACT_NONE);
    }
    assert_int_equal(bwd, v ? 2 : 1);
    assert_int_equal(fwd, v ? 1 : 0);
    if (v == 0) assert_false(N[1].nodes[2].inplace); // the leaky ReLU reads c0 out of place
    float x[2 * 8 * 8 * 2], dy[2 * 8 * 8 * 4], y[2 * 8 * 8 * 4];
    for (int i = 0; i < (int)(sizeof x / 4); i++)
      x[i] = (float)((i * 37 % 19) - 9) / 7.0f;
    for (int i = 0; i < (int)(sizeof dy / 4); i++)
      dy[i] = (float)((i * 53 % 23) - 11) / 5.0f;
    for (int m = 1; m < 4; m++) { // need_dx = m & 1, need_wgrad = m >> 1
      float dx[2][sizeof x / 4];
      for (int f = 0; f < 2; f++) {
        net_zero_grad(&g_ctx, &N[f]);
        const float *o = net_forward(&g_ctx, &N[f], x, 2, 1, -1);
        if (!f) memcpy(y, o, sizeof y);
        if (f) assert_memory_equal(y, o, sizeof y);
        const float *d = net_backward(&g_ctx, &N[f], x, dy, 2, m & 1, m >> 1);
        if (d) memcpy(dx[f], d, sizeof x);
      }
      if (m & 1) assert_memory_equal(dx[0], dx[1], sizeof x);
      assert_memory_equal(N[0].g, N[1].g, N[0].nparam_floats * sizeof(float));
    }
    net_free(&g_ctx, &N[0]);
    net_free(&g_ctx, &N[1]);
  }
}

// train.precision = bf16: a convolution output that only a batch norm reads is rounded to bf16
// before the batch norm sees it (round_out, PyTorch autocast's bf16 convolution output). With
// train.bf16_activations (ctx.bf16_store) it is kept as those halves (y_bf16: the convolution
// writes them, conv2d_mixed's out_bf16); without, batch norm rounds the FP32 output as it reads it.
// On the CPU, DCGAN and a conditional ResNet, nets set up as the trainer does (D borrowing G's
// backward scratch, G_ema G's activations): the halves are those of the FP32 output; two
// trainer-order steps give the same bits with and without the storage; G_ema's forwards in G's
// scratch give those of a G_ema with memory of its own, in bf16 and (as FID measures) in FP32.
static void test_bf16_conv_outputs(void **state) {
  (void)state;
  for (int k = 0; k < 2; k++) {
    ganc_config c = small_config(32, 1, 4);
    if (k) cond_resnet(&c);
    const int N = 2;
    int bn_kept = 0;
    ganc_net G[2], D[2], E[2];
    g_ctx.precision = GANC_PREC_BF16;
    for (int s = 0; s < 2; s++) { // s = 1: with the storage
      g_ctx.bf16_store = s;
      ganc_build_g(&G[s], &c, "G");
      ganc_build_d(&D[s], &c);
      ganc_build_g(&E[s], &c, "G_ema");
      net_finalize(&g_ctx, &G[s], N, 1);
      // DCGAN: G's batch-norm outputs (with their fused ReLU) in bf16 too, as CUDA keeps them
      // where its convolutions read bf16 (the CPU keeps them FP32; its convolutions widen the
      // halves, the same bits): G_ema then has no output of G's to borrow there either.
      for (int i = 0; s && !k && i < G[s].nnodes; i++) {
        ganc_node *b = &G[s].nodes[i], *a = &G[s].nodes[b->first_reader];
        if (!b->mean || b->cond || b->consumers != 1 || !a->fused) continue;
        b->out_bf16 = a->out_bf16 = 1;
        bn_kept++;
      }
      // In the trainer's order: G_ema places its outputs in G's buffers, then D, at a larger
      // batch, grows them (G_ema finds them by index at each forward).
      if (s) net_share_activations(&E[s], &G[s]);
      net_finalize(&g_ctx, &E[s], 1, 0); // a smaller batch: G's buffers hold more of its outputs
      size_t before = 0, after = 0;
      for (int b = 0; b < G[s].ngradbuf; b++)
        before += G[s].gradbuf_n[b];
      net_share_gradients(&D[s], &G[s]);
      net_finalize(&g_ctx, &D[s], N + 2, 1);
      for (int b = 0; b < G[s].ngradbuf; b++)
        after += G[s].gradbuf_n[b];
      assert_true(after > before);
      net_init_weights(&g_ctx, &G[s], 5, GANC_RNG_INIT_G);
      net_init_weights(&g_ctx, &D[s], 5, GANC_RNG_INIT_D);
      memcpy(E[s].p, G[s].p, G[s].nparam_floats * sizeof(float));
    }
    g_ctx.bf16_store = 0;
    int kept = 0, kept_d = 0, placed = 0, placed_bn = 0, reuse = 0;
    for (int i = 0; i < G[1].nnodes; i++) {
      const ganc_node *g = &G[1].nodes[i], *e = &E[1].nodes[i];
      assert_int_equal(g->y_bf16, g->round_out);
      assert_int_equal(G[0].nodes[i].round_out, g->round_out);
      assert_int_equal(G[0].nodes[i].y_bf16, 0);
      kept += g->y_bf16;
      // G_ema borrows G's output, or runs in place, or puts its output in G's backward scratch
      // (G keeps that node in bf16): no activation memory of its own
      assert_true(e->inplace || e->borrowed || (e->out_scratch && e->donor_scratch));
      if (!e->inplace) assert_int_equal(e->out_scratch, g->out_bf16);
      placed += e->out_scratch;
      placed_bn += e->out_scratch && e->mean && E[1].nodes[e->first_reader].inplace;
    }
    assert_true(placed >= kept + bn_kept);
    // Two outputs placed in one buffer are never live at once: the later is written after the
    // last read of the earlier (by any node reading it, or an in-place node over it), or is a
    // batch norm over its input, which it reads last.
    for (int i = 0; i < E[1].nnodes; i++) {
      const ganc_node *e = &E[1].nodes[i];
      if (!e->out_scratch) continue;
      int last = i;
      for (int r = i + 1; r < E[1].nnodes; r++)
        for (int q = 0; q < E[1].nodes[r].nin; q++) {
          int h = E[1].nodes[r].in[q];
          while (h != i && h > i && E[1].nodes[h].inplace) // up an in-place chain
            h = E[1].nodes[h].in[0];
          if (h == i) last = r;
        }
      for (int j = i + 1; j <= last && j < E[1].nnodes; j++)
        if (E[1].nodes[j].out_scratch && E[1].nodes[j].scratch_buf == e->scratch_buf &&
            !(j == last && E[1].nodes[j].mean && E[1].nodes[j].in[0] == i)) // BN in place
          fail_msg("k %d: G_ema's %s (read until node %d) and %s share G's buffer %d", k, e->name,
                   last, E[1].nodes[j].name, e->scratch_buf);
      for (int j = last + 1; j < E[1].nnodes; j++)
        reuse += E[1].nodes[j].out_scratch && E[1].nodes[j].scratch_buf == e->scratch_buf;
    }
    assert_true(reuse > 0); // buffers are used again once free
    int bn_over = 0;        // batch norms in place over their convolution's output
    for (int i = 0; i < E[1].nnodes; i++) {
      const ganc_node *e = &E[1].nodes[i],
                      *x = e->mean && e->in[0] >= 0 ? &E[1].nodes[e->in[0]] : NULL;
      bn_over += x && e->out_scratch && x->out_scratch && x->scratch_buf == e->scratch_buf;
    }
    if (!k) assert_true(bn_over >= 3);
    if (!k) assert_true(bn_kept >= 3 && placed_bn >= 3); // outputs read in place, then by a conv
    for (int i = 0; i < D[1].nnodes; i++)
      kept_d += D[1].nodes[i].y_bf16;
    assert_true(kept >= 3);
    if (!k) assert_true(kept_d >= 2); // DCGAN's D has batch norms; the SN ResNet's has none
    int32_t lab[2] = {2, 0};
    G[0].labels = D[0].labels = G[1].labels = D[1].labels = E[0].labels = E[1].labels = lab;
    float z[2 * 7], x[2 * 32 * 32], r[6] = {0.7f, -1.3f, 0.4f, 1.1f, -0.2f, 0.9f};
    ganc_rng_normals(3, GANC_RNG_LATENT, 0, 2 * 7, z);
    ganc_rng_normals(4, GANC_RNG_LATENT, 0, 2 * 32 * 32, x);

    // The halves kept are those of the FP32 output the net without storage holds.
    net_forward(&g_ctx, &G[0], z, N, 1, -1);
    net_forward(&g_ctx, &G[1], z, N, 1, -1);
    for (int i = 0; i < G[1].nnodes; i++) {
      const ganc_node *g = &G[1].nodes[i];
      if (!g->y_bf16) continue;
      const size_t cnt = (size_t)N * g->H * g->W * g->C;
      const uint16_t *h = (const uint16_t *)g->out;
      const float *f = G[0].nodes[i].out;
      size_t moved = 0;
      for (size_t q = 0; q < cnt; q++) {
        if (h[q] != ganc_bf16_store(f[q]))
          fail_msg("k %d node %s: element %zu kept 0x%04x, want 0x%04x", k, g->name, q, h[q],
                   ganc_bf16_store(f[q]));
        moved += ganc_bf16_load(h[q]) != f[q];
      }
      assert_true(moved > cnt / 2); // the rounding is real: most values move
      const ganc_node *bn = &G[1].nodes[g->first_reader];
      assert_memory_equal(bn->mean, G[0].nodes[g->first_reader].mean, sizeof(float) * bn->C);
    }

    // Two trainer-order steps: the same bits with and without the storage.
    for (int step = 0; step < 2; step++) {
      const float *a = trainer_order_step(&G[0], &D[0], z, x, r, N);
      const float *b = trainer_order_step(&G[1], &D[1], z, x, r, N);
      assert_memory_equal(a, b, sizeof(float) * 2 * 32 * 32);
      assert_memory_equal(G[0].g, G[1].g, G[0].nparam_floats * sizeof(float));
      assert_memory_equal(D[0].g, D[1].g, D[0].nparam_floats * sizeof(float));
      assert_memory_equal(G[0].buf, G[1].buf, G[0].nbuffer_floats * sizeof(float));
      assert_memory_equal(D[0].buf, D[1].buf, D[0].nbuffer_floats * sizeof(float));
    }

    // G_ema in G's scratch = G_ema on its own: training mode (its recalibration) and eval, in bf16
    // and in FP32 (no rounding then: the trainer measures FID so).
    const size_t n = (size_t)32 * 32;
    float *a = xmalloc(n * sizeof(float));
    for (int p = 0; p < 2; p++) {
      for (int train = 1; train >= 0; train--) {
        g_ctx.precision = GANC_PREC_BF16;        // G's own, always
        net_forward(&g_ctx, &G[1], z, N, 1, -1); // G's activations and scratch written first
        g_ctx.precision = p ? GANC_PREC_FP32 : GANC_PREC_BF16;
        memcpy(a, net_forward(&g_ctx, &E[1], z, 1, train, -1), n * sizeof(float));
        const float *b = net_forward(&g_ctx, &E[0], z, 1, train, -1);
        assert_memory_equal(a, b, n * sizeof(float));
        assert_memory_equal(E[0].buf, E[1].buf, E[0].nbuffer_floats * sizeof(float));
      }
    }
    free(a);
    g_ctx.precision = GANC_PREC_FP32;
    for (int s = 0; s < 2; s++) {
      net_free(&g_ctx, &E[s]);
      net_free(&g_ctx, &D[s]);
      net_free(&g_ctx, &G[s]);
    }
  }
}

// The placement of a borrower's outputs in its donor's backward scratch (net_finalize) on a net
// where sizes do not grow, so that buffers fit many outputs, with in-place readers and an output
// read again much later (a residual add): the borrower at batch 1 in the scratch of a donor at
// batch 4 gives the bits of the same net with memory of its own.
static void test_donor_scratch_placement(void **state) {
  (void)state;
  ganc_net G, E, E2;
  ganc_net *nets[3] = {&G, &E, &E2};
  for (int k = 0; k < 3; k++) {
    ganc_net *n = nets[k];
    net_init(n, k ? "G_ema" : "G", 8, 8, 4);
    int r0 = GANC_NET_INPUT, h = GANC_NET_INPUT;
    for (int b = 0; b < 3; b++) {
      h = net_relu(n, net_bn(n, "bn", net_conv(n, "conv", h, 4, 3, 1, 1, 0, 0), 0));
      if (!b) r0 = h;
    }
    net_conv(n, "out", net_add(n, "add", h, r0), 4, 3, 1, 1, 0, 0);
  }
  g_ctx.precision = GANC_PREC_BF16;
  g_ctx.bf16_store = 1;
  net_finalize(&g_ctx, &G, 4, 1);
  g_ctx.bf16_store = 0;
  for (int i = 0; i < G.nnodes; i++) { // its batch-norm outputs in bf16 (as in the test above)
    ganc_node *b = &G.nodes[i];
    if (b->mean) b->out_bf16 = G.nodes[b->first_reader].out_bf16 = 1;
  }
  net_share_activations(&E, &G);
  net_finalize(&g_ctx, &E, 1, 0);
  net_finalize(&g_ctx, &E2, 1, 0);
  int placed = 0;
  for (int i = 0; i < E.nnodes; i++)
    placed += E.nodes[i].out_scratch;
  assert_int_equal(placed, 6); // 3 convolutions, 3 batch norms
  net_init_weights(&g_ctx, &E, 3, GANC_RNG_INIT_G);
  net_init_weights(&g_ctx, &E2, 3, GANC_RNG_INIT_G);
  float x[8 * 8 * 4], y[8 * 8 * 4];
  ganc_rng_normals(6, GANC_RNG_LATENT, 0, 8 * 8 * 4, x);
  for (int train = 1; train >= 0; train--) {
    for (int b = 0; b < G.ngradbuf; b++) // stale scratch must not matter
      memset(G.gradbuf[b], 0xFF, G.gradbuf_n[b] * sizeof(float));
    memcpy(y, net_forward(&g_ctx, &E, x, 1, train, -1), sizeof y);
    assert_memory_equal(y, net_forward(&g_ctx, &E2, x, 1, train, -1), sizeof y);
  }
  g_ctx.precision = GANC_PREC_FP32;
  net_free(&g_ctx, &E);
  net_free(&g_ctx, &E2);
  net_free(&g_ctx, &G);
}

static void test_checkpoint_round_trip_and_refusals(void **state) {
  (void)state;
  char *dir = tu_tmpdir("model-ckpt");
  ganc_config c = small_config(32, 1, 4);
  ganc_net G, D, G2;
  dcgan_build_g(&G, &c, "G");
  dcgan_build_d(&D, &c);
  net_finalize(&g_ctx, &G, 2, 1);
  net_finalize(&g_ctx, &D, 2, 1);
  net_init_weights(&g_ctx, &G, 9, GANC_RNG_INIT_G);
  net_init_weights(&g_ctx, &D, 9, GANC_RNG_INIT_D);
  for (size_t i = 0; i < G.nparam_floats; i++)
    G.m[i] = (float)i, G.v[i] = (float)(2 * i);
  G.adam_t = 17;
  char *text = ganc_config_to_ini(&c);
  ganc_ckpt_meta meta = {GANC_CKPT_VERSION,
                         12,
                         345,
                         0xabcdef,
                         {7, 2, 99},
                         text,
                         "/data",
                         NULL,
                         0,
                         NULL,
                         0,
                         {0},
                         0,
                         {0}};
  char path[4200];
  snprintf(path, sizeof path, "%s/ckpt.h5", dir);
  ganc_net *nets[2] = {&G, &D};
  ganc_err err = {0};
  assert_int_equal(ganc_ckpt_save(path, &g_ctx, &meta, nets, 2, &err), 0);

  ganc_ckpt_meta m2;
  assert_int_equal(ganc_ckpt_read_meta(path, &m2, &err), 0);
  assert_int_equal(m2.step, 12);
  assert_int_equal(m2.nimg, 345);
  assert_int_equal(m2.fingerprint, 0xabcdef);
  assert_int_equal(m2.loader.epoch, 2);
  assert_int_equal(m2.loader.cursor, 99);
  assert_string_equal(m2.config, text);
  ganc_ckpt_meta_free(&m2);

  dcgan_build_g(&G2, &c, "G");
  net_finalize(&g_ctx, &G2, 2, 1);
  assert_int_equal(ganc_ckpt_load_net(path, &g_ctx, &G2, "G", 1, &err), 0);
  assert_memory_equal(G2.p, G.p, G.nparam_floats * sizeof(float));
  assert_memory_equal(G2.buf, G.buf, G.nbuffer_floats * sizeof(float));
  assert_memory_equal(G2.m, G.m, G.nparam_floats * sizeof(float));
  assert_memory_equal(G2.v, G.v, G.nparam_floats * sizeof(float));
  assert_int_equal(G2.adam_t, 17);
  net_free(&g_ctx, &G2);

  // Another architecture: refused, naming what differs.
  ganc_config c3 = small_config(32, 1, 8);
  ganc_net G3;
  dcgan_build_g(&G3, &c3, "G");
  net_finalize(&g_ctx, &G3, 2, 0);
  memset(&err, 0, sizeof err);
  assert_int_equal(ganc_ckpt_load_net(path, &g_ctx, &G3, "G", 0, &err), -1);
  if (!strstr(err.msg, "different architecture")) fail_msg("message: %s", err.msg);
  net_free(&g_ctx, &G3);

  // A flipped byte inside a tensor: the checksum refuses it.
  tu_corrupt_chunk(path, "G/params/b0.conv.weight", 0);
  dcgan_build_g(&G2, &c, "G");
  net_finalize(&g_ctx, &G2, 2, 0);
  memset(&err, 0, sizeof err);
  assert_int_equal(ganc_ckpt_load_net(path, &g_ctx, &G2, "G", 0, &err), -1);
  if (!strstr(err.msg, "damaged")) fail_msg("message: %s", err.msg);
  // A truncated file and a foreign HDF5 file.
  tu_truncate(path, 5000);
  memset(&err, 0, sizeof err);
  assert_int_equal(ganc_ckpt_read_meta(path, &m2, &err), -1);
  hid_t h = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  H5Fclose(h);
  memset(&err, 0, sizeof err);
  assert_int_equal(ganc_ckpt_read_meta(path, &m2, &err), -1);
  if (!strstr(err.msg, "not a ganc checkpoint")) fail_msg("message: %s", err.msg);
  net_free(&g_ctx, &G2);
  free(text);
  net_free(&g_ctx, &G);
  net_free(&g_ctx, &D);
  tu_rmdir(dir);
}

static void test_philox_latents(void **state) {
  (void)state;
  // Known-answer vectors of Philox4x32-10 (Random123).
  uint32_t o[4], c0[4] = {0, 0, 0, 0}, k0[2] = {0, 0};
  ganc_philox4x32(c0, k0, o);
  assert_int_equal(o[0], 0x6627e8d5u);
  assert_int_equal(o[3], 0x9b00dbd8u);
  uint32_t c2[4] = {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
           k2[2] = {0xa4093822, 0x299f31d0};
  ganc_philox4x32(c2, k2, o);
  assert_int_equal(o[0], 0xd16cfe09u);
  assert_int_equal(o[3], 0x24126ea1u);
  // Latent k of seed s does not depend on what else is drawn, and looks standard normal.
  float a[100], b[7];
  ganc_latent(42, 5, 100, a);
  ganc_latent(42, 5, 7, b);
  assert_memory_equal(a, b, sizeof b);
  double m = 0, v = 0;
  float big[20000];
  ganc_rng_normals(1, GANC_RNG_LATENT, 0, 20000, big);
  for (int i = 0; i < 20000; i++)
    m += big[i];
  m /= 20000;
  for (int i = 0; i < 20000; i++)
    v += (big[i] - m) * (big[i] - m);
  v /= 20000;
  assert_true(fabs(m) < 0.03 && fabs(v - 1) < 0.05);
}

// ---- issue 10: every value of a checkpoint checked ----------------------------------------------
// A saved G + D pair (small), its path, and the nets' config.
typedef struct ckpt_fixture {
  char *dir, path[4200], copy[4300];
  ganc_config c;
  ganc_net G, D;
} ckpt_fixture;

static void fixture_make(ckpt_fixture *x) {
  x->dir = tu_tmpdir("model-ckpt-values");
  x->c = small_config(32, 1, 4);
  dcgan_build_g(&x->G, &x->c, "G");
  dcgan_build_d(&x->D, &x->c);
  net_finalize(&g_ctx, &x->G, 2, 1);
  net_finalize(&g_ctx, &x->D, 2, 1);
  net_init_weights(&g_ctx, &x->G, 3, GANC_RNG_INIT_G);
  net_init_weights(&g_ctx, &x->D, 3, GANC_RNG_INIT_D);
  for (size_t i = 0; i < x->G.nparam_floats; i++)
    x->G.v[i] = 0.5f;
  x->G.adam_t = x->D.adam_t = 12;
  char *text = ganc_config_to_ini(&x->c);
  ganc_ckpt_meta meta = {
      GANC_CKPT_VERSION, 12, 384, 77, {7, 1, 40}, text, "/data", NULL, 0, NULL, 0, {0}, 0, {0}};
  snprintf(x->path, sizeof x->path, "%s/good.h5", x->dir);
  snprintf(x->copy, sizeof x->copy, "%s/case.h5", x->dir);
  ganc_net *nets[2] = {&x->G, &x->D};
  ganc_err err = {0};
  assert_int_equal(ganc_ckpt_save(x->path, &g_ctx, &meta, nets, 2, &err), 0);
  free(text);
}

static void fixture_free(ckpt_fixture *x) {
  net_free(&g_ctx, &x->G);
  net_free(&g_ctx, &x->D);
  tu_rmdir(x->dir);
}

// A fresh copy of the good checkpoint to damage.
static const char *fresh(ckpt_fixture *x) {
  assert_int_equal(tu_system("cp %s %s", x->path, x->copy), 0);
  return x->copy;
}

// Every reader refuses the file, with an exit-2 error naming it and containing `what`.
static void expect_refused(ckpt_fixture *x, const char *what) {
  ganc_err err = {0};
  ganc_ckpt_meta m;
  int rm = ganc_ckpt_read_meta(x->copy, &m, &err);
  if (rm == 0) ganc_ckpt_meta_free(&m);
  ganc_err e2 = {0}, e3 = {0};
  int rv = ganc_ckpt_verify(x->copy, &e2);
  ganc_net G;
  dcgan_build_g(&G, &x->c, "G");
  net_finalize(&g_ctx, &G, 2, 1);
  int rl = ganc_ckpt_load_net(x->copy, &g_ctx, &G, "G", 1, &e3);
  net_free(&g_ctx, &G);
  const char *msg = rm ? err.msg : rv ? e2.msg : e3.msg;
  int code = rm ? err.code : rv ? e2.code : e3.code;
  if (rv == 0 || rl == 0) fail_msg("'%s': verify %d, load %d should both refuse", what, rv, rl);
  if (code != GANC_EXIT_USAGE || !strstr(msg, x->copy) || !strstr(msg, what))
    fail_msg("expected an exit-2 error naming %s and '%s', got (%d) %s", x->copy, what, code, msg);
  if (strstr(e2.msg, x->copy) == NULL || strstr(e3.msg, x->copy) == NULL)
    fail_msg("every error must name the file: '%s' / '%s'", e2.msg, e3.msg);
}

// Rewrites attribute `name` of object `obj` ("/" or a group) as a scalar of `type` = *value;
// `reseal` makes the attribute checksum anew so that only the value check can catch it.
static void set_attr(const char *path, const char *obj, const char *name, hid_t type, hid_t mtype,
                     const void *value, int reseal) {
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
  assert_true(f >= 0 && o >= 0);
  if (H5Aexists(o, name) > 0) H5Adelete(o, name);
  hid_t sp = H5Screate(H5S_SCALAR), a = H5Acreate2(o, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(a >= 0 && H5Awrite(a, mtype, value) >= 0);
  H5Aclose(a);
  H5Sclose(sp);
  if (reseal) {
    H5Adelete(o, GANC_H5_ATTR_DIGEST);
    assert_int_equal(ganc_h5_attrs_seal(o), 0);
  }
  H5Oclose(o);
  H5Fclose(f);
}

static void set_i64(ckpt_fixture *x, const char *obj, const char *name, int64_t v) {
  set_attr(fresh(x), obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v, 1);
}

// Replaces tensor `name` by its values stored as `type` (chunked; Fletcher32 unless `plain`),
// or with every value `fill` when fill is not 0.
static void set_tensor(const char *path, const char *name, hid_t type, int plain, float fill) {
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT), d = H5Dopen2(f, name, H5P_DEFAULT);
  hid_t sp = H5Dget_space(d);
  hssize_t n = H5Sget_simple_extent_npoints(sp);
  float *v = xmalloc(sizeof(float) * (size_t)n);
  assert_true(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
  for (hssize_t i = 0; fill != 0 && i < n; i++)
    v[i] = fill;
  H5Dclose(d);
  assert_true(H5Ldelete(f, name, H5P_DEFAULT) >= 0);
  hsize_t dims[8];
  int rank = H5Sget_simple_extent_dims(sp, dims, NULL);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl, rank, dims);
  if (!plain) H5Pset_fletcher32(dcpl);
  d = H5Dcreate2(f, name, type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  assert_true(d >= 0);
  assert_true(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
  free(v);
  H5Dclose(d);
  H5Pclose(dcpl);
  H5Sclose(sp);
  H5Fclose(f);
}

static void test_checkpoint_values(void **state) {
  (void)state;
  ckpt_fixture x;
  fixture_make(&x);
  // nimg: a float (NaN, a fraction) is refused as such; an absurd, huge or negative count too.
  double nan_v = NAN, frac = 383.5;
  set_attr(fresh(&x), "/", "nimg", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &nan_v, 1);
  expect_refused(&x, "'nimg' is a floating-point number");
  set_attr(fresh(&x), "/", "nimg", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &frac, 1);
  expect_refused(&x, "'nimg' is a floating-point number");
  set_i64(&x, "/", "nimg", INT64_MAX);
  expect_refused(&x, "'nimg' is 9223372036854775807, outside 0..1000000000000");
  set_i64(&x, "/", "nimg", 1000000000000000LL);
  expect_refused(&x, "'nimg' is 1000000000000000, outside");
  set_i64(&x, "/", "nimg", -1);
  expect_refused(&x, "'nimg' is -1, outside");
  // step and adam_t: negative or near INT64_MAX (which would overflow as they count on).
  // LeCam's averages (train.lecam): all three or none; finite; decay^k in [0, 1]; floats.
  {
    const char *names[3] = {"lecam_ema_real", "lecam_ema_fake", "lecam_decay_pow"};
    double good[3] = {0.25, -0.5, 0.125}, bad = NAN, big = 1.5;
    set_attr(fresh(&x), "/", names[1], H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &good[1], 1);
    expect_refused(&x, "1 of LeCam's 3 attributes (lecam_*) are present");
    for (int k = 0; k < 4; k++) {
      fresh(&x);
      for (int i = 0; i < 3; i++)
        set_attr(x.copy, "/", names[i], H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &good[i], 1);
      if (k == 0) { // intact: read back as written
        ganc_ckpt_meta m;
        ganc_err err = {0};
        if (ganc_ckpt_read_meta(x.copy, &m, &err)) fail_msg("%s", err.msg);
        assert_int_equal(m.has_lecam, 1);
        assert_memory_equal(m.lecam, good, sizeof good);
        ganc_ckpt_meta_free(&m);
      } else if (k == 1) {
        set_attr(x.copy, "/", names[0], H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &bad, 1);
        expect_refused(&x, "'lecam_ema_real' is nan, outside");
      } else if (k == 2) {
        set_attr(x.copy, "/", names[2], H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &big, 1);
        expect_refused(&x, "'lecam_decay_pow' is 1.5, outside 0..1");
      } else {
        const int64_t one = 1;
        set_attr(x.copy, "/", names[1], H5T_STD_I64LE, H5T_NATIVE_INT64, &one, 1);
        expect_refused(&x, "'lecam_ema_fake' is an integer where a number is expected");
      }
    }
  }
  // ADA (augment.ada_target): p and the two counts together (r_t optional); p in [0, 1];
  // |signs| <= images; whole numbers.
  {
    const char *names[4] = {"augment_p", "ada_signs", "ada_images", "ada_rt"};
    double good[4] = {0.375, -3, 7, 0.25}, big = 1.5, frac = 7.5, many = 9;
    set_attr(fresh(&x), "/", names[0], H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &good[0], 1);
    expect_refused(&x, "1 of ADA's 3 attributes (augment_p, ada_signs, ada_images) are present");
    for (int k = 0; k < 6; k++) {
      fresh(&x);
      for (int i = 0; i < (k == 1 ? 3 : 4); i++)
        set_attr(x.copy, "/", names[i], H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &good[i], 1);
      if (k <= 1) { // intact (with and without r_t): read back as written
        ganc_ckpt_meta m;
        ganc_err err = {0};
        if (ganc_ckpt_read_meta(x.copy, &m, &err)) fail_msg("%s", err.msg);
        assert_int_equal(m.has_ada, 1);
        assert_memory_equal(m.ada, good, 3 * sizeof(double));
        if (k == 0 ? m.ada[3] != good[3] : !isnan(m.ada[3]))
          fail_msg("ada_rt read as %g", m.ada[3]);
        ganc_ckpt_meta_free(&m);
      } else if (k == 2) {
        set_attr(x.copy, "/", names[0], H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &big, 1);
        expect_refused(&x, "'augment_p' is 1.5, outside 0..1");
      } else if (k == 3) {
        set_attr(x.copy, "/", names[1], H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &many, 1);
        expect_refused(&x, "'ada_signs' is 9, outside -7..7");
      } else if (k == 4) {
        set_attr(x.copy, "/", names[2], H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &frac, 1);
        expect_refused(&x, "ADA's counts -3 and 7.5 are not integers");
      } else {
        set_attr(x.copy, "/", names[3], H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &big, 1);
        expect_refused(&x, "'ada_rt' is 1.5, outside -1..1");
      }
    }
  }
  set_i64(&x, "/", "step", -3);
  expect_refused(&x, "'step' is -3, outside");
  set_i64(&x, "/", "step", INT64_MAX - 1);
  expect_refused(&x, "'step' is 9223372036854775806, outside");
  set_i64(&x, "/", "step", 385);
  expect_refused(&x, "step 385 does not fit nimg 384");
  set_i64(&x, "/G", "adam_t", -1);
  expect_refused(&x, "'adam_t' is -1, outside");
  set_i64(&x, "/G", "adam_t", INT64_MAX);
  expect_refused(&x, "'adam_t' is 9223372036854775807, outside");
  // The loader's position and the identities.
  set_i64(&x, "/", "loader_epoch", -1);
  expect_refused(&x, "'loader_epoch' is -1, outside");
  set_i64(&x, "/", "loader_cursor", INT64_MAX);
  expect_refused(&x, "'loader_cursor' is 9223372036854775807, outside");
  set_i64(&x, "/", "dataset_fingerprint", -2);
  expect_refused(&x, "'dataset_fingerprint' is -2, negative");
  // format_version: 0 or negative is damage, a newer one asks for an update.
  set_i64(&x, "/", "format_version", 0);
  expect_refused(&x, "format_version 0 is not a version");
  set_i64(&x, "/", "format_version", -7);
  expect_refused(&x, "format_version -7 is not a version");
  set_i64(&x, "/", "format_version", GANC_CKPT_VERSION + 1);
  expect_refused(&x, "this ganc reads up to");

  // One changed byte of d_lr in the config: the SHA-256 over the attributes catches it when the
  // text is rewritten through HDF5, and the object header's checksum when the byte changes on disk.
  ganc_ckpt_meta m;
  ganc_err err = {0};
  assert_int_equal(ganc_ckpt_read_meta(x.path, &m, &err), 0);
  char *lr = strstr(m.config, "d_lr = 0.0002");
  assert_non_null(lr);
  lr[strlen("d_lr = 0.000")] = '3';
  hid_t t = ganc_h5_fixed_str_type(strlen(m.config) + 1);
  set_attr(fresh(&x), "/", "config", t, t, m.config, 0);
  H5Tclose(t);
  ganc_ckpt_meta_free(&m);
  expect_refused(&x, "do not match their SHA-256");
  fresh(&x);
  uint8_t *bytes;
  size_t n;
  assert_int_equal(ganc_read_file(x.copy, 1 << 26, &bytes, &n), 0);
  size_t at = 0;
  while (at + 13 < n && memcmp(bytes + at, "d_lr = 0.0002", 13))
    at++;
  assert_true(at + 13 < n);
  free(bytes);
  FILE *fp = fopen(x.copy, "r+b");
  fseek(fp, (long)at + 12, SEEK_SET);
  fputc('3', fp);
  fclose(fp);
  expect_refused(&x, "damaged");
  // Its checksum missing (the group's), or the group's arch text changed.
  hid_t f = H5Fopen(fresh(&x), H5F_ACC_RDWR, H5P_DEFAULT), g = H5Gopen2(f, "D", H5P_DEFAULT);
  H5Adelete(g, GANC_H5_ATTR_DIGEST);
  H5Gclose(g);
  H5Fclose(f);
  ganc_err e = {0};
  assert_int_equal(ganc_ckpt_verify(x.copy, &e), -1);
  if (!strstr(e.msg, "attribute checksum (attr_sha256) of group D is missing"))
    fail_msg("%s", e.msg);

  // Tensors: float32 exactly (HDF5 would convert anything else silently), with Fletcher32.
  hid_t f16 = H5Tcopy(H5T_IEEE_F32LE);
  assert_true(H5Tset_fields(f16, 15, 10, 5, 0, 10) >= 0 && H5Tset_size(f16, 2) >= 0 &&
              H5Tset_ebias(f16, 15) >= 0);
  hid_t types[3] = {H5T_STD_I32LE, H5T_STD_U8LE, f16};
  const char *says[3] = {"is stored as int32 (an integer type), not float32",
                         "is stored as uint8 (an integer type), not float32",
                         "is stored as float16, not float32"};
  for (int i = 0; i < 3; i++) {
    set_tensor(fresh(&x), "G/params/b0.conv.weight", types[i], 0, 0);
    expect_refused(&x, "G/params/b0.conv.weight");
    expect_refused(&x, says[i]);
  }
  H5Tclose(f16);
  set_tensor(fresh(&x), "G/params/b1.conv.weight", H5T_IEEE_F32LE, 1, 0);
  expect_refused(&x, "G/params/b1.conv.weight has no Fletcher32 checksum");
  // NaN or Inf in weights (never saved by ganc) is damage, named with the tensor; so is a
  // negative second moment (it would make Adam's square root NaN).
  set_tensor(fresh(&x), "G/params/b1.conv.weight", H5T_IEEE_F32LE, 0, NAN);
  expect_refused(&x, "tensor G/params/b1.conv.weight holds");
  expect_refused(&x, "NaN or Inf");
  set_tensor(fresh(&x), "G/buffers/b0.bn.running_mean", H5T_IEEE_F32LE, 0, INFINITY);
  expect_refused(&x, "G/buffers/b0.bn.running_mean holds");
  set_tensor(fresh(&x), "G/adam_v/b0.conv.weight", H5T_IEEE_F32LE, 0, -1.0f);
  expect_refused(&x, "G/adam_v/b0.conv.weight holds");
  expect_refused(&x, "not finite and non-negative");
  // The good file still loads, every value as saved.
  ganc_net G2;
  dcgan_build_g(&G2, &x.c, "G");
  net_finalize(&g_ctx, &G2, 2, 1);
  memset(&err, 0, sizeof err);
  assert_int_equal(ganc_ckpt_verify(x.path, &err), 0);
  assert_int_equal(ganc_ckpt_load_net(x.path, &g_ctx, &G2, "G", 1, &err), 0);
  assert_memory_equal(G2.p, x.G.p, x.G.nparam_floats * sizeof(float));
  assert_int_equal(G2.adam_t, 12);
  net_free(&g_ctx, &G2);
  fixture_free(&x);
}

int main(void) {
  // HDF5 keeps freed blocks on free lists and hands them out again: when it then loses one on a
  // damaged file's error path (tests/lsan.supp says where), LeakSanitizer would report the block
  // under its first owner's stack. Without free lists every leak is reported where it happens.
  H5set_free_list_limits(0, 0, 0, 0, 0, 0);
  ganc_h5_quiet();
  ganc_ctx_init_cpu(&g_ctx, 0);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shapes_every_resolution),
      cmocka_unit_test(test_pytorch_parameter_counts),
      cmocka_unit_test(test_whole_network_gradients),
      cmocka_unit_test(test_shared_activations),
      cmocka_unit_test(test_shared_gradients),
      cmocka_unit_test(test_fused_activations),
      cmocka_unit_test(test_fused_bn_stats),
      cmocka_unit_test(test_fused_activations_graphs),
      cmocka_unit_test(test_recompute_batchnorm),
      cmocka_unit_test(test_bf16_conv_outputs),
      cmocka_unit_test(test_donor_scratch_placement),
      cmocka_unit_test(test_checkpoint_round_trip_and_refusals),
      cmocka_unit_test(test_philox_latents),
      cmocka_unit_test(test_checkpoint_values),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  ganc_ctx_free(&g_ctx);
  return rc;
}
