// test_learning.c — a short real training run on Fashion-MNIST must show learning: the mean of
// the generator's images, whose correlation with the data's mean image is low at initialisation,
// must come to correlate strongly with it; and the generator's images must not all be the same
// (per-pixel spread across samples). Skipped when Debian's dataset-fashion-mnist is absent.
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
#include "data/shard.h"
#include "model/dcgan.h"
#include "testutil.h"
#include "train/checkpoint.h"
#include "train/config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS 128 // samples for the generator's mean image

static const char *RECIPE = "[model]\nresolution = 32\nchannels = 1\nz_dim = 64\ng_base = 16\n"
                            "d_base = 16\n[train]\nbatch = 32\nkimg = 6.4\nema_kimg = 0\n"
                            "threads = 2\n[log]\nreport_kimg = 1.6\nsnapshot_kimg = 100\n";

static double corr(const double *a, const double *b, int n) {
  double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
  for (int i = 0; i < n; i++)
    ma += a[i], mb += b[i];
  ma /= n;
  mb /= n;
  for (int i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return sab / sqrt(saa * sbb + 1e-30);
}

// Mean image of G over NS fixed latents (training-mode batch norm, as during training) and the
// mean per-pixel standard deviation across those samples.
static void gen_stats(ganc_ctx *ctx, ganc_net *G, const ganc_config *c, double *mean,
                      double *spread) {
  int P = c->resolution * c->resolution;
  float *z = xmalloc(sizeof(float) * NS * c->z_dim);
  for (int i = 0; i < NS; i++)
    ganc_latent(777, (uint64_t)i, c->z_dim, z + (size_t)i * c->z_dim);
  const float *img = net_forward(ctx, G, z, NS, 1, 0.0f);
  double *sq = xcalloc((size_t)P, sizeof(double));
  for (int k = 0; k < P; k++)
    mean[k] = 0;
  for (int i = 0; i < NS; i++)
    for (int k = 0; k < P; k++) {
      double v = img[(size_t)i * P + k];
      mean[k] += v / NS;
      sq[k] += v * v / NS;
    }
  *spread = 0;
  for (int k = 0; k < P; k++)
    *spread += sqrt(fmax(sq[k] - mean[k] * mean[k], 0)) / P;
  free(sq);
  free(z);
}

static void test_learns_fashion_mnist(void **state) {
  (void)state;
  char idx[4300];
  snprintf(idx, sizeof idx, "%s/train-images-idx3-ubyte.gz", GANC_FMNIST_DIR);
  char *root = tu_tmpdir("learning");
  char data[4400], cfgp[4400], run[4400];
  snprintf(data, sizeof data, "%s/fmnist", root);
  snprintf(cfgp, sizeof cfgp, "%s/recipe.ini", root);
  snprintf(run, sizeof run, "%s/run", root);
  assert_int_equal(tu_system("%s %s %s --resolution 32 --transform pad --background black "
                             "--max-images 20000 >/dev/null 2>&1",
                             GANC_PREP_BIN, idx, data),
                   0);
  FILE *f = fopen(cfgp, "w");
  fputs(RECIPE, f);
  fclose(f);

  ganc_config c;
  ganc_config_defaults(&c);
  ganc_err err = {0};
  assert_int_equal(ganc_config_load_string(&c, RECIPE, "recipe", &err), 0);
  int P = 32 * 32;
  // The data's mean image, in [-1, 1].
  ganc_dataset ds;
  assert_int_equal(ganc_dataset_open(data, &ds, &err), 0);
  double *dmean = xcalloc((size_t)P, sizeof(double)), *gmean = xcalloc((size_t)P, sizeof(double));
  uint8_t *px = xmalloc((size_t)ds.count * P);
  assert_int_equal(ganc_shard_read(&ds, 0, 0, ds.count, px, NULL, &err), 0);
  for (int64_t i = 0; i < ds.count; i++)
    for (int k = 0; k < P; k++)
      dmean[k] += (px[i * P + k] / 127.5 - 1.0) / (double)ds.count;
  free(px);
  ganc_dataset_close(&ds);

  // At initialisation (the same weights ganc-train starts from).
  ganc_ctx ctx;
  ganc_ctx_init_cpu(&ctx, 2);
  ganc_net G;
  dcgan_build_g(&G, &c, "G_ema");
  net_finalize(&ctx, &G, NS, 0);
  net_init_weights(&ctx, &G, c.seed, GANC_RNG_INIT_G);
  double spread0, spread1;
  gen_stats(&ctx, &G, &c, gmean, &spread0);
  double c0 = corr(gmean, dmean, P);

  double t0 = ganc_now();
  assert_int_equal(tu_system("%s --data %s --config %s --out %s >%s/log.txt 2>&1", GANC_TRAIN_BIN,
                             data, cfgp, run, root),
                   0);
  double secs = ganc_now() - t0;
  char *ckpt = tu_latest_ckpt(run);
  assert_int_equal(ganc_ckpt_load_net(ckpt, &ctx, &G, "G_ema", 0, &err), 0);
  free(ckpt);
  gen_stats(&ctx, &G, &c, gmean, &spread1);
  double c1 = corr(gmean, dmean, P);
  printf("learning: %.1f s of training; mean-image correlation %.3f at init -> %.3f; "
         "sample spread %.3f -> %.3f\n",
         secs, c0, c1, spread0, spread1);
  assert_true(c1 > 0.85);
  assert_true(c1 > c0 + 0.3);
  assert_true(spread1 > 0.1); // not collapsed to one image
  net_free(&ctx, &G);
  ganc_ctx_free(&ctx);
  free(dmean);
  free(gmean);
  tu_rmdir(root);
}

int main(void) {
  char idx[4300];
  snprintf(idx, sizeof idx, "%s/train-images-idx3-ubyte.gz", GANC_FMNIST_DIR);
  if (!ganc_is_file(idx)) {
    printf("SKIP: %s is missing (apt-get install dataset-fashion-mnist)\n", idx);
    return 77;
  }
  ganc_h5_quiet();
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_learns_fashion_mnist)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
