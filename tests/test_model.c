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
#include "model/dcgan.h"
#include "ops/dispatch.h"
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
  ganc_ckpt_meta meta = {GANC_CKPT_VERSION, 12, 345, 0xabcdef, {7, 2, 99}, text, "/data", NULL};
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

int main(void) {
  ganc_h5_quiet();
  ganc_ctx_init_cpu(&g_ctx, 0);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shapes_every_resolution),
      cmocka_unit_test(test_pytorch_parameter_counts),
      cmocka_unit_test(test_whole_network_gradients),
      cmocka_unit_test(test_checkpoint_round_trip_and_refusals),
      cmocka_unit_test(test_philox_latents),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  ganc_ctx_free(&g_ctx);
  return rc;
}
