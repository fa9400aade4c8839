// test_graph.c — networks as graphs (src/model/net.c) and the ResNet family (src/model/resnet.c):
//   - DCGAN through the graph engine is bit-identical to the same ops written out by hand in the
//     order the chain engine ran them (forward output, input gradient, every parameter gradient,
//     the running statistics): the refactor keeps DCGAN's behaviour exactly;
//   - a hand-built graph with every node kind (DiffAugment's three transforms too) and every kind
//     of fan-out (an input read twice, a node added to itself, a gradient with three writers)
//     against finite differences;
//   - whole ResNet G and D, unconditional with spectral norm and conditional, against finite
//     differences (as test_model does for DCGAN);
//   - the gradient-buffer plan: a deep ResNet needs a few buffers, not one per node;
//   - spectral norm's state: the power iteration moves u and v only in training forwards.
// cmocka.h needs these three first, so the block is kept out of include sorting.
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
// clang-format on

#include "core/check.h"
#include "core/philox.h"
#include "model/arch.h"
#include "model/dcgan.h"
#include "model/resnet.h"
#include "ops/dispatch.h"
#include "ops/precision.h" // GANC_X_FP32
#include "train/config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ganc_ctx g_ctx;

static ganc_config small_config(const char *arch, int R, int C, int base) {
  ganc_config c;
  ganc_config_defaults(&c);
  snprintf(c.arch, sizeof c.arch, "%s", arch);
  c.resolution = R;
  c.channels = C;
  c.g_base = c.d_base = base;
  c.z_dim = 7;
  return c;
}

static float *fnew(size_t n) {
  float *p = xmalloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++)
    p[i] = NAN;
  return p;
}

// ---- DCGAN, bit for bit ------------------------------------------------------------------------
// The DCGAN D of a 32x32 config by hand: conv s2 → lrelu → [conv s2 → bn → lrelu] → head conv,
// forward then backward with the chain engine's order of ops and its in-place activations.
static void test_dcgan_bit_identical_to_hand_written(void **state) {
  (void)state;
  ganc_config c = small_config("dcgan", 32, 3, 4);
  ganc_net D;
  dcgan_build_d(&D, &c);
  const int N = 3;
  net_finalize(&g_ctx, &D, N, 1);
  net_init_weights(&g_ctx, &D, 9, GANC_RNG_INIT_D);
  for (size_t i = 0; i < D.nparam_floats; i++)
    D.p[i] *= 10.0f;
  const size_t nx = (size_t)N * 32 * 32 * 3;
  float *x = xmalloc(nx * sizeof(float)), dy[3] = {0.3f, -1.1f, 0.8f};
  ganc_rng_normals(4, 1, 0, (int)nx, x);

  // The hand-written chain: layer outputs a[], weights from the net's own block.
  const float slope = (float)c.lrelu_slope, eps = (float)c.bn_eps, mom = (float)c.bn_momentum;
  float *buf_copy = xmalloc(D.nbuffer_floats * sizeof(float));
  memcpy(buf_copy, D.buf, D.nbuffer_floats * sizeof(float)); // running stats before
  conv_shape s0, s1, s2, sh;
  conv_shape_make(&s0, N, 32, 32, 3, 4, 4, 4, 2, 1); // → 16x16x4
  conv_shape_make(&s1, N, 16, 16, 4, 8, 4, 4, 2, 1); // → 8x8x8
  conv_shape_make(&s2, N, 8, 8, 8, 16, 4, 4, 2, 1);  // → 4x4x16
  conv_shape_make(&sh, N, 4, 4, 16, 1, 4, 4, 1, 0);  // → 1x1x1
  const float *w0 = D.p + D.params[0].offset, *w1 = D.p + D.params[1].offset;
  const float *g1 = D.p + D.params[2].offset, *b1 = D.p + D.params[3].offset;
  const float *w2 = D.p + D.params[4].offset, *g2 = D.p + D.params[5].offset;
  const float *b2 = D.p + D.params[6].offset, *wh = D.p + D.params[7].offset;
  float *rm1 = buf_copy + D.buffers[0].offset, *rv1 = buf_copy + D.buffers[1].offset;
  float *rm2 = buf_copy + D.buffers[2].offset, *rv2 = buf_copy + D.buffers[3].offset;
  size_t n0 = (size_t)N * 16 * 16 * 4, n1 = (size_t)N * 8 * 8 * 8, n2 = (size_t)N * 4 * 4 * 16;
  float *a0 = fnew(n0), *a1 = fnew(n1), *a1b = fnew(n1), *a2 = fnew(n2), *a2b = fnew(n2),
        *out = fnew(N);
  float m1[8], r1[8], m2[16], r2[16];
  conv2d_forward(&g_ctx, &s0, x, w0, a0);
  lrelu_forward(&g_ctx, (int64_t)n0, slope, a0, a0);
  conv2d_forward(&g_ctx, &s1, a0, w1, a1);
  batchnorm_forward_train(&g_ctx, (int64_t)N * 64, 8, a1, GANC_X_FP32, g1, b1, eps, mom,
                          GANC_ACT_NONE, 0.0f, a1b, 0, m1, r1, rm1, rv1, NULL, NULL);
  lrelu_forward(&g_ctx, (int64_t)n1, slope, a1b, a1b);
  conv2d_forward(&g_ctx, &s2, a1b, w2, a2);
  batchnorm_forward_train(&g_ctx, (int64_t)N * 16, 16, a2, GANC_X_FP32, g2, b2, eps, mom,
                          GANC_ACT_NONE, 0.0f, a2b, 0, m2, r2, rm2, rv2, NULL, NULL);
  lrelu_forward(&g_ctx, (int64_t)n2, slope, a2b, a2b);
  conv2d_forward(&g_ctx, &sh, a2b, wh, out);
  // backward, need_dx and need_wgrad
  float *gw = xcalloc(D.nparam_floats, sizeof(float));
  float *d2 = fnew(n2), *d2b = fnew(n2), *d1 = fnew(n1), *d1b = fnew(n1), *d0 = fnew(n0),
        *dx = fnew(nx);
  conv2d_backward_weight(&g_ctx, &sh, a2b, dy, gw + D.params[7].offset);
  conv2d_backward_data(&g_ctx, &sh, dy, wh, d2b);
  lrelu_backward(&g_ctx, (int64_t)n2, slope, a2b, 0, d2b, d2b);
  batchnorm_backward(&g_ctx, (int64_t)N * 16, 16, a2, GANC_X_FP32, d2b, GANC_X_FP32, g2, m2, r2, d2,
                     0, gw + D.params[5].offset, gw + D.params[6].offset);
  conv2d_backward_weight(&g_ctx, &s2, a1b, d2, gw + D.params[4].offset);
  conv2d_backward_data(&g_ctx, &s2, d2, w2, d1b);
  lrelu_backward(&g_ctx, (int64_t)n1, slope, a1b, 0, d1b, d1b);
  batchnorm_backward(&g_ctx, (int64_t)N * 64, 8, a1, GANC_X_FP32, d1b, GANC_X_FP32, g1, m1, r1, d1,
                     0, gw + D.params[2].offset, gw + D.params[3].offset);
  conv2d_backward_weight(&g_ctx, &s1, a0, d1, gw + D.params[1].offset);
  conv2d_backward_data(&g_ctx, &s1, d1, w1, d0);
  lrelu_backward(&g_ctx, (int64_t)n0, slope, a0, 0, d0, d0);
  conv2d_backward_weight(&g_ctx, &s0, x, d0, gw + D.params[0].offset);
  conv2d_backward_data(&g_ctx, &s0, d0, w0, dx);

  // The graph engine.
  net_zero_grad(&g_ctx, &D);
  const float *y = net_forward(&g_ctx, &D, x, N, 1, -1);
  assert_memory_equal(y, out, N * sizeof(float));
  const float *gx = net_backward(&g_ctx, &D, x, dy, N, 1, 1);
  assert_memory_equal(gx, dx, nx * sizeof(float));
  assert_memory_equal(D.g, gw, D.nparam_floats * sizeof(float));
  assert_memory_equal(D.buf, buf_copy, D.nbuffer_floats * sizeof(float));
  free(x), free(buf_copy), free(a0), free(a1), free(a1b), free(a2), free(a2b), free(out);
  free(gw), free(d2), free(d2b), free(d1), free(d1b), free(d0), free(dx);
  net_free(&g_ctx, &D);
}

// ---- finite differences ------------------------------------------------------------------------
typedef struct fd_case {
  ganc_net *net;
  const float *x;
  int N;
  const float *r; // L = Σ r ⊙ output
} fd_case;

static double fd_loss(fd_case *f, int grads) {
  const float *y = net_forward(&g_ctx, f->net, f->x, f->N, 1, 0.0f);
  const ganc_node *o = &f->net->nodes[f->net->nnodes - 1];
  size_t n = (size_t)f->N * o->H * o->W * o->C;
  double L = 0;
  for (size_t i = 0; i < n; i++)
    L += (double)f->r[i] * y[i];
  if (grads) {
    net_zero_grad(&g_ctx, f->net);
    net_backward(&g_ctx, f->net, f->x, f->r, f->N, 1, 1);
  }
  return L;
}

// Central differences on a spread of entries of every parameter tensor and of the input; float
// noise through kinks allowed on a few entries, a wiring error fails nearly all.
static void check_fd(fd_case *f, const char *what, float *xin, size_t nx) {
  ganc_net *net = f->net;
  int saved_iters = net->sn_iters;
  net->sn_iters = 0; // u, v fixed: the function differentiated is W / (vᵀ W u)
  fd_loss(f, 1);
  float *g = xmalloc(net->nparam_floats * sizeof(float)), *gx = xmalloc(nx * sizeof(float));
  memcpy(g, net->g, net->nparam_floats * sizeof(float));
  memcpy(gx, net->dx, nx * sizeof(float));
  int checked = 0, agreed = 0;
  for (int t = -1; t < net->nparams; t++) {
    size_t count = t < 0 ? nx : net->params[t].count;
    float *base = t < 0 ? xin : net->p + net->params[t].offset;
    const float *an_base = t < 0 ? gx : g + net->params[t].offset;
    int ok_t = 0, n_t = 0;
    for (int j = 0; j < 6; j++) {
      size_t idx = (size_t)(j * 7919 + 13) % count;
      float save = base[idx];
      double h = 1e-3;
      base[idx] = (float)(save + h);
      double lp = fd_loss(f, 0);
      base[idx] = (float)(save - h);
      double lm = fd_loss(f, 0);
      base[idx] = save;
      double fd = (lp - lm) / (2 * h), an = an_base[idx];
      double scale = fabs(fd) > fabs(an) ? fabs(fd) : fabs(an);
      if (scale < 1e-3) continue;
      int ok = fabs(fd - an) <= 0.05 * scale + 2e-3;
      if (!ok)
        printf("  %s %s[%zu]: backward %.6g, finite differences %.6g\n", what,
               t < 0 ? "input" : net->params[t].name, idx, an, fd);
      ok_t += ok;
      n_t++;
    }
    if (n_t >= 3 && ok_t == 0)
      fail_msg("%s %s: no entry agrees", what, t < 0 ? "input" : net->params[t].name);
    checked += n_t;
    agreed += ok_t;
  }
  printf("%s: %d of %d entries agree with finite differences\n", what, agreed, checked);
  assert_true(agreed >= 0.85 * checked);
  assert_true(checked >= 12);
  net->sn_iters = saved_iters;
  free(g);
  free(gx);
}

static void random_labels(ganc_net *net, int32_t *labels, int N, int ncls) {
  for (int i = 0; i < N; i++)
    labels[i] = (int32_t)((i * 5 + 1) % ncls);
  net->labels = labels;
}

// Every node kind and every fan-out: x feeds two nodes; a node added to itself; a node with three
// readers; spectral norm; conditional batch norm; the projection head.
static void test_hand_built_graph(void **state) {
  (void)state;
  ganc_net net;
  net_init(&net, "T", 8, 8, 3);
  net.ncls = 3;
  net.aug_seed = 3; // DiffAugment's draws, fixed for every evaluation
  int in = net_augment(&net, "aug.color", GANC_NET_INPUT, GANC_AUG_COLOR, 0);
  in = net_augment(&net, "aug.translation", in, GANC_AUG_TRANSLATION, 0.25f);
  in = net_augment(&net, "aug.cutout", in, GANC_AUG_CUTOUT, 0.5f);
  int a = net_conv(&net, "a", in, 4, 3, 1, 1, 1, 0.3f); // SN
  int p = net_avgpool(&net, "p", in);                   // the input's second reader
  int b = net_conv(&net, "b", p, 4, 1, 1, 0, 0, 0.3f);  // 4x4x4
  int u = net_upsample(&net, "u", b);                   // 8x8x4
  int s = net_add(&net, "s", a, u);                     // three readers follow
  int t = net_tanh(&net, net_bn(&net, "bn", s, 1));     // conditional BN
  int d = net_add(&net, "dbl", s, s);                   // a node added to itself
  int e = net_add(&net, "e", net_add(&net, "e0", t, d), s);
  int q = net_avgpool(&net, "q", net_lrelu(&net, e, 0.2f));
  int h =
      net_sumpool(&net, "sum", net_bn(&net, "bn2", net_conv(&net, "c", q, 5, 3, 1, 1, 0, 0.3f), 0));
  int lin = net_conv(&net, "lin", h, 1, 1, 1, 0, 1, 0.5f);
  net_add(&net, "out", lin, net_embed(&net, "emb", h, 0.1f));
  const int N = 3;
  net_finalize(&g_ctx, &net, N, 1);
  net_set_aug_counter(&g_ctx, &net, 7);
  net_init_weights(&g_ctx, &net, 3, 77);
  int32_t labels[3];
  random_labels(&net, labels, N, 3);
  size_t nx = (size_t)N * 8 * 8 * 3;
  float *x = xmalloc(nx * sizeof(float)), r[3] = {0.9f, -0.4f, 1.3f};
  ganc_rng_normals(6, 2, 0, (int)nx, x);
  fd_case f = {&net, x, N, r};
  check_fd(&f, "hand-built graph", x, nx);
  free(x);
  net_free(&g_ctx, &net);
}

static void whole_resnet(int conditional, const char *sn) {
  ganc_config c = small_config("resnet", 8, 3, 2); // one block each way: 8 → 4 and 4 → 8
  snprintf(c.spectral_norm, sizeof c.spectral_norm, "%s", sn);
  c.aug_color = c.aug_translation = c.aug_cutout = conditional; // DiffAugment in front of D
  if (conditional) {
    snprintf(c.conditional, sizeof c.conditional, "yes");
    c.classes = 3;
  }
  ganc_net G, D;
  ganc_build_g(&G, &c, "G");
  ganc_build_d(&D, &c);
  const int N = 3;
  net_finalize(&g_ctx, &G, N, 1);
  net_finalize(&g_ctx, &D, N, 1);
  net_init_weights(&g_ctx, &G, 5, GANC_RNG_INIT_G);
  net_init_weights(&g_ctx, &D, 5, GANC_RNG_INIT_D);
  D.aug_seed = 5;
  net_set_aug_counter(&g_ctx, &D, 11);
  int32_t labels[3];
  random_labels(&G, labels, N, 3);
  D.labels = G.labels;
  float z[3 * 7], r[3] = {0.7f, -1.3f, 0.4f};
  ganc_rng_normals(11, GANC_RNG_LATENT, 0, 21, z);
  char what[64];
  // D alone on G's images, then G with D's input gradient as its output gradient.
  const float *img = net_forward(&g_ctx, &G, z, N, 1, 0.0f);
  size_t ni = (size_t)N * 8 * 8 * 3;
  float *x = xmalloc(ni * sizeof(float));
  memcpy(x, img, ni * sizeof(float));
  fd_case fd = {&D, x, N, r};
  snprintf(what, sizeof what, "ResNet D (%s, sn %s)", conditional ? "conditional" : "plain", sn);
  check_fd(&fd, what, x, ni);
  net_forward(&g_ctx, &D, x, N, 1, 0.0f);
  net_zero_grad(&g_ctx, &D);
  const float *dimg = net_backward(&g_ctx, &D, x, r, N, 1, 1);
  float *rg = xmalloc(ni * sizeof(float));
  memcpy(rg, dimg, ni * sizeof(float));
  fd_case fg = {&G, z, N, rg};
  snprintf(what, sizeof what, "ResNet G (%s, sn %s)", conditional ? "conditional" : "plain", sn);
  check_fd(&fg, what, z, 21);
  free(x);
  free(rg);
  net_free(&g_ctx, &G);
  net_free(&g_ctx, &D);
}

static void test_resnet_gradients(void **state) {
  (void)state;
  whole_resnet(0, "d");
  whole_resnet(1, "gd");
}

static void test_gradient_plan_and_shapes(void **state) {
  (void)state;
  for (int R = 32; R <= 128; R *= 2) {
    ganc_config c = small_config("resnet", R, 3, 4);
    ganc_net G, D;
    ganc_build_g(&G, &c, "G");
    ganc_build_d(&D, &c);
    net_finalize(&g_ctx, &G, 2, 1);
    net_finalize(&g_ctx, &D, 2, 1);
    const ganc_node *go = &G.nodes[G.nnodes - 1], *dout = &D.nodes[D.nnodes - 1];
    assert_int_equal(go->H, R);
    assert_int_equal(go->C, 3);
    assert_int_equal(dout->H * dout->W * dout->C, 1);
    printf("resnet %d: G %d nodes, %d gradient buffers; D %d nodes, %d gradient buffers\n", R,
           G.nnodes, G.ngradbuf, D.nnodes, D.ngradbuf);
    assert_true(G.ngradbuf <= 4 && D.ngradbuf <= 4);
    net_free(&g_ctx, &G);
    net_free(&g_ctx, &D);
  }
}

static void test_spectral_norm_state(void **state) {
  (void)state;
  ganc_config c = small_config("resnet", 8, 1, 2);
  snprintf(c.spectral_norm, sizeof c.spectral_norm, "d");
  ganc_net D;
  ganc_build_d(&D, &c);
  net_finalize(&g_ctx, &D, 2, 1);
  net_init_weights(&g_ctx, &D, 1, GANC_RNG_INIT_D);
  float x[2 * 64];
  ganc_rng_normals(2, 3, 0, 128, x);
  float *before = xmalloc(D.nbuffer_floats * sizeof(float));
  memcpy(before, D.buf, D.nbuffer_floats * sizeof(float));
  net_forward(&g_ctx, &D, x, 2, 0, -1); // eval: u, v (and BN statistics) untouched
  assert_memory_equal(before, D.buf, D.nbuffer_floats * sizeof(float));
  net_forward(&g_ctx, &D, x, 2, 1, -1); // training: one power-iteration step moves them
  int moved = 0;
  for (int t = 0; t < D.nbuffers; t++)
    if (strstr(D.buffers[t].name, "sn_u"))
      moved += memcmp(before + D.buffers[t].offset, D.buf + D.buffers[t].offset,
                      D.buffers[t].count * sizeof(float)) != 0;
  assert_true(moved > 0);
  free(before);
  net_free(&g_ctx, &D);
}

int main(void) {
  ganc_ctx_init_cpu(&g_ctx, 1);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dcgan_bit_identical_to_hand_written),
      cmocka_unit_test(test_hand_built_graph),
      cmocka_unit_test(test_resnet_gradients),
      cmocka_unit_test(test_gradient_plan_and_shapes),
      cmocka_unit_test(test_spectral_norm_state),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  ganc_ctx_free(&g_ctx);
  return rc;
}
