// test_recipes.c — the recipes of issue 11 end to end, through the programs' command lines:
//   - every shipped recipe (resnet32/64/128, small-folder) validates and builds at its sizes;
//   - a class-conditional ResNet with spectral norm and DiffAugment resumes bit for bit after a
//     stop (parameters, buffers — batch-norm statistics and spectral norm's u, v — Adam state);
//   - model.conditional = auto follows the shards' labels, yes refuses unlabelled shards;
//   - ganc-sample --class NAME|K and --per-class: a class's image of seed k is the same alone, in
//     a class grid and in row c of the per-class grid; provenance names the class; refusals.
// cmocka.h needs these three first, so the block is kept out of include sorting.
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
// clang-format on

#include "core/check.h"
#include "core/util.h"
#include "data/image.h"
#include "model/arch.h"
#include "ops/dispatch.h"
#include "testutil.h"
#include "train/checkpoint.h"
#include "train/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *g_root, g_labelled[4300], g_plain[4300], g_cfg[4300];
static ganc_ctx g_ctx;

// A tiny class-conditional ResNet-SN-hinge with DiffAugment: 32x32x1, widths 4, batch 8.
static const char *TINY = "[model]\narch = resnet\nresolution = 32\nchannels = 1\nz_dim = 8\n"
                          "g_base = 4\nd_base = 4\nspectral_norm = gd\nconditional = auto\n"
                          "[train]\nbatch = 8\nkimg = 0.064\nloss = hinge\nbeta1 = 0\n"
                          "beta2 = 0.9\nema_kimg = 0.05\nmirror = true\nthreads = 1\n"
                          "[augment]\ncolor = true\ntranslation = true\ncutout = true\n"
                          "[log]\nreport_kimg = 0.016\nsnapshot_kimg = 0.032\nkeep = 0\ngrid = 4\n";

static int setup(void **state) {
  (void)state;
  g_root = tu_tmpdir("recipes");
  snprintf(g_labelled, sizeof g_labelled, "%s/labelled", g_root);
  snprintf(g_plain, sizeof g_plain, "%s/plain", g_root);
  ganc_mkdir_p(g_labelled);
  ganc_mkdir_p(g_plain);
  tu_write_dataset(g_labelled, 32, 1, 120, 0, 3);
  tu_write_dataset(g_plain, 32, 1, 120, 0, 0);
  snprintf(g_cfg, sizeof g_cfg, "%s/tiny.ini", g_root);
  FILE *f = fopen(g_cfg, "w");
  fputs(TINY, f);
  fclose(f);
  ganc_ctx_init_cpu(&g_ctx, 1);
  return 0;
}
static int teardown(void **state) {
  (void)state;
  tu_rmdir(g_root);
  ganc_ctx_free(&g_ctx);
  return 0;
}

static const char *bin(const char *name) {
  return !strcmp(name, "train") ? GANC_TRAIN_BIN : GANC_SAMPLE_BIN;
}

static char *slurp_n(const char *path, size_t *n) {
  uint8_t *b;
  if (ganc_read_file(path, 1 << 26, &b, n) != 0) {
    *n = 0;
    return xstrdup("");
  }
  return (char *)b;
}

static char *slurp(const char *path) {
  size_t n;
  return slurp_n(path, &n);
}

// Runs a command line, its output in <g_root>/log.txt; the exit status, *out the output.
static int run(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run(char **out, const char *fmt, ...) {
  char cmd[8192], p[4400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  int rc = tu_system("%s >%s/log.txt 2>&1", cmd, g_root);
  snprintf(p, sizeof p, "%s/log.txt", g_root);
  char *o = slurp(p);
  if (out)
    *out = o;
  else
    free(o);
  return rc;
}

static void must_contain(const char *text, const char *what) {
  if (!strstr(text, what)) fail_msg("expected '%s' in:\n%s", what, text);
}

// ---- the shipped recipes -----------------------------------------------------------------------
static void test_shipped_recipes_build(void **state) {
  (void)state;
  static const char *const names[] = {"resnet32.ini", "resnet64.ini", "resnet128.ini",
                                      "small-folder.ini"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char path[4400];
    snprintf(path, sizeof path, "%s/configs/%s", tu_path("GANC_SOURCE_DIR", GANC_SOURCE_DIR),
             names[i]);
    ganc_config c;
    ganc_err err = {0};
    ganc_config_defaults(&c);
    if (ganc_config_load_file(&c, path, &err) || ganc_config_validate(&c, &err))
      fail_msg("%s: %s", names[i], err.msg);
    assert_string_equal(c.arch, "resnet");
    assert_string_equal(c.loss, "hinge");
    assert_string_equal(c.conditional, "auto");
    assert_true(strcmp(c.spectral_norm, "none") != 0);
    // As a run on a 10-class dataset resolves them (small-folder follows the data: 64x64x3).
    if (!c.resolution) c.resolution = 64;
    if (!c.channels) c.channels = 3;
    snprintf(c.conditional, sizeof c.conditional, "yes");
    c.classes = 10;
    ganc_net G, D;
    ganc_build_g(&G, &c, "G");
    ganc_build_d(&D, &c);
    net_finalize(&g_ctx, &G, 1, 0);
    net_finalize(&g_ctx, &D, 1, 0);
    const ganc_node *go = &G.nodes[G.nnodes - 1], *dout = &D.nodes[D.nnodes - 1];
    assert_int_equal(go->H, c.resolution);
    assert_int_equal(go->C, c.channels);
    assert_int_equal(dout->H * dout->W * dout->C, 1);
    int aug = 0;
    for (int k = 0; k < D.nnodes; k++)
      aug += !strncmp(D.nodes[k].name, "aug.", 4);
    assert_int_equal(aug, !strcmp(names[i], "small-folder.ini") ? 3 : 0);
    char dg[256], dd[256];
    net_describe(&G, dg, sizeof dg);
    net_describe(&D, dd, sizeof dd);
    printf("%s: %s; %s\n", names[i], dg, dd);
    net_free(&g_ctx, &G);
    net_free(&g_ctx, &D);
  }
}

// ---- training and exact resume -----------------------------------------------------------------
static void assert_same_state(const char *a, const char *b) {
  char *diff = tu_ckpt_state_diff(a, b);
  if (diff) fail_msg("%s and %s: %s", a, b, diff);
}

static void test_conditional_resnet_resumes_exactly(void **state) {
  (void)state;
  char a[4400], b[4400];
  snprintf(a, sizeof a, "%s/run-a", g_root);
  snprintf(b, sizeof b, "%s/run-b", g_root);
  char *out;
  // A: 8 steps straight. B: 4 steps, stopped, resumed to 8.
  int rc = run(&out, "%s --data %s --config %s --out %s", bin("train"), g_labelled, g_cfg, a);
  if (rc) fail_msg("run A failed (%d):\n%s", rc, out);
  must_contain(out, "35 nodes"); // the ResNet G (tiny widths)
  free(out);
  rc = run(&out, "%s --data %s --config %s --out %s --set train.kimg=0.032", bin("train"),
           g_labelled, g_cfg, b);
  if (rc) fail_msg("run B failed (%d):\n%s", rc, out);
  free(out);
  rc = run(&out, "%s --out %s --resume --set train.kimg=0.064", bin("train"), b);
  if (rc) fail_msg("resuming B failed (%d):\n%s", rc, out);
  free(out);
  char *ca = tu_latest_ckpt(a), *cb = tu_latest_ckpt(b);
  assert_same_state(ca, cb);
  // The run resolved conditional = auto to the 3 classes of the shards, and recorded their names.
  ganc_ckpt_meta meta;
  ganc_err err = {0};
  assert_int_equal(ganc_ckpt_read_meta(ca, &meta, &err), 0);
  must_contain(meta.config, "conditional = yes");
  must_contain(meta.config, "classes = 3");
  assert_int_equal(meta.nclasses, 3);
  assert_string_equal(meta.class_names[2], "class2");
  ganc_ckpt_meta_free(&meta);
  free(ca);
  free(cb);
}

static void test_conditional_keys(void **state) {
  (void)state;
  char r[4400];
  char *out;
  // auto on unlabelled shards: an unconditional model.
  snprintf(r, sizeof r, "%s/run-plain", g_root);
  int rc = run(&out, "%s --data %s --config %s --out %s --set train.kimg=0.008", bin("train"),
               g_plain, g_cfg, r);
  if (rc) fail_msg("auto on unlabelled shards failed (%d):\n%s", rc, out);
  free(out);
  char *ck = tu_latest_ckpt(r);
  ganc_ckpt_meta meta;
  ganc_err err = {0};
  assert_int_equal(ganc_ckpt_read_meta(ck, &meta, &err), 0);
  must_contain(meta.config, "conditional = no");
  ganc_ckpt_meta_free(&meta);
  // --class on an unconditional checkpoint: refused, saying why.
  rc = run(&out, "%s --ckpt %s --out %s/x.png --class 1", bin("sample"), ck, g_root);
  assert_int_equal(rc, 2);
  must_contain(out, "class-conditional");
  free(out);
  free(ck);
  // yes on unlabelled shards: refused with a hint.
  snprintf(r, sizeof r, "%s/run-yes", g_root);
  rc = run(&out, "%s --data %s --config %s --out %s --set model.conditional=yes", bin("train"),
           g_plain, g_cfg, r);
  assert_int_equal(rc, 2);
  must_contain(out, "no class labels");
  must_contain(out, "HINT");
  free(out);
  // classes that disagree with the shards: refused.
  rc = run(&out, "%s --data %s --config %s --out %s --set model.classes=5", bin("train"),
           g_labelled, g_cfg, r);
  assert_int_equal(rc, 2);
  must_contain(out, "holds 3 classes");
  free(out);
  // DCGAN has no conditional form.
  rc = run(&out,
           "%s --data %s --config %s --out %s --set model.arch=dcgan "
           "--set model.conditional=yes",
           bin("train"), g_labelled, g_cfg, r);
  assert_int_equal(rc, 2);
  must_contain(out, "resnet");
  free(out);
}

// ---- sampling a class --------------------------------------------------------------------------
static uint8_t *read_png(const char *path, int *w, int *h) {
  uint8_t *file;
  size_t n;
  if (ganc_read_file(path, 1 << 26, &file, &n)) fail_msg("cannot read %s", path);
  ganc_image img;
  char why[256];
  ganc_decode_opts opts = {0};
  if (ganc_image_decode(file, n, &opts, &img, why, sizeof why)) fail_msg("%s: %s", path, why);
  free(file);
  assert_int_equal(img.c, 1);
  *w = img.w;
  *h = img.h;
  return img.px;
}

// The 32x32 gray cell (r, c) of a grid image of width W.
static int cell_equal(const uint8_t *grid, int W, int r, int c, const uint8_t *one) {
  for (int y = 0; y < 32; y++)
    if (memcmp(grid + ((size_t)(r * 32 + y) * W + c * 32), one + (size_t)y * 32, 32)) return 0;
  return 1;
}

static void test_sample_classes(void **state) {
  (void)state;
  char run_a[4400], p1[4500], p2[4500], p3[4500], dir[4500];
  snprintf(run_a, sizeof run_a, "%s/run-a", g_root); // made by the resume test
  snprintf(p1, sizeof p1, "%s/one.png", g_root);
  snprintf(p2, sizeof p2, "%s/class.png", g_root);
  snprintf(p3, sizeof p3, "%s/per-class.png", g_root);
  snprintf(dir, sizeof dir, "%s/seeds", g_root);
  char *out;
  assert_int_equal(
      run(NULL, "%s --ckpt %s --out %s --class class2 --seeds 5", bin("sample"), run_a, p1), 0);
  assert_int_equal(
      run(NULL, "%s --ckpt %s --out %s --class 2 --seeds 4-7 --grid 1x4", bin("sample"), run_a, p2),
      0);
  assert_int_equal(
      run(NULL, "%s --ckpt %s --out %s --per-class --seeds 4-7", bin("sample"), run_a, p3), 0);
  int w, h, w2, h2, w3, h3;
  uint8_t *one = read_png(p1, &w, &h), *row = read_png(p2, &w2, &h2), *all = read_png(p3, &w3, &h3);
  assert_true(w == 32 && h == 32);
  assert_true(w2 == 4 * 32 && h2 == 32);
  assert_true(w3 == 4 * 32 && h3 == 3 * 32);    // 3 classes x 4 seeds
  assert_true(cell_equal(row, w2, 0, 1, one));  // seed 5 in the class-2 grid
  assert_true(cell_equal(all, w3, 2, 1, one));  // row 2 (class 2), column of seed 5
  assert_false(cell_equal(all, w3, 0, 1, one)); // another class, the same seed: another image
  free(one), free(row), free(all);
  // Without --class: seed s draws class s mod 3, whatever else is in the grid.
  assert_int_equal(run(NULL, "%s --ckpt %s --outdir %s --seeds 5", bin("sample"), run_a, dir), 0);
  char seed5[4600];
  snprintf(seed5, sizeof seed5, "%s/seed0005.png", dir);
  uint8_t *s5 = read_png(seed5, &w, &h);
  uint8_t *again = read_png(p1, &w, &h); // class2 = 5 mod 3
  assert_memory_equal(s5, again, 32 * 32);
  free(s5), free(again);
  size_t png_n;
  char *png = slurp_n(seed5, &png_n);
  assert_non_null(memmem(png, png_n, "ganc:class", 10));
  assert_non_null(memmem(png, png_n, "2 (class2)", 10));
  free(png);
  // An unknown class: refused, listing the classes.
  int rc = run(&out, "%s --ckpt %s --out %s --class cats", bin("sample"), run_a, p1);
  assert_int_equal(rc, 2);
  must_contain(out, "0 = class0, 1 = class1, 2 = class2");
  free(out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shipped_recipes_build),
      cmocka_unit_test(test_conditional_resnet_resumes_exactly),
      cmocka_unit_test(test_conditional_keys),
      cmocka_unit_test(test_sample_classes),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
