// test_train.c — ganc-train and ganc-sample end to end, through their command lines:
// exact resume after a SIGKILL, SIGINT writes a checkpoint, refusals (an existing run, another
// dataset, another architecture, a bad config), a NaN stops training without touching the last
// good checkpoint, and the sampler's promises (same seed same bytes, grid cell k = seed k alone,
// provenance chunks, truncation, walks). The learning test lives in test_learning.c.
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
#include "io/imgio.h"
#include "testutil.h"
#include "train/checkpoint.h"
#include "train/config.h"
#include "train/train.h" // ganc_train_benchmark: the step profile

#include <hdf5.h>
#include <math.h>
#include <png.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *g_root, g_data[4300], g_data2[4300], g_cfg[4300];

// A tiny recipe: 32x32x1, widths 4, batch 16; 60 steps, a checkpoint every 10.
static const char *TINY = "[model]\nresolution = 32\nchannels = 1\nz_dim = 16\ng_base = 4\n"
                          "d_base = 4\n[train]\nbatch = 16\nkimg = 0.96\nema_kimg = 0.1\n"
                          "mirror = true\nthreads = 2\n[log]\nreport_kimg = 0.16\n"
                          "snapshot_kimg = 0.16\nkeep = 3\ngrid = 4\n";

static int setup(void **state) {
  (void)state;
  g_root = tu_tmpdir("train");
  snprintf(g_data, sizeof g_data, "%s/data", g_root);
  snprintf(g_data2, sizeof g_data2, "%s/data2", g_root);
  ganc_mkdir_p(g_data);
  ganc_mkdir_p(g_data2);
  tu_write_dataset(g_data, 32, 1, 300, 0, 0);
  tu_write_dataset(g_data2, 32, 1, 301, 0, 0);
  snprintf(g_cfg, sizeof g_cfg, "%s/tiny.ini", g_root);
  FILE *f = fopen(g_cfg, "w");
  fputs(TINY, f);
  fclose(f);
  return 0;
}
static int teardown(void **state) {
  (void)state;
  tu_rmdir(g_root);
  return 0;
}

static char *slurp(const char *path) {
  uint8_t *b;
  size_t n;
  if (ganc_read_file(path, 1 << 26, &b, &n) != 0) return xstrdup("");
  return (char *)b;
}

// Runs a command line with output to <g_root>/log.txt; returns the exit status, *out the output.
static int run(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run(char **out, const char *fmt, ...) {
  char cmd[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  int rc = tu_system("%s >%s/log.txt 2>&1", cmd, g_root);
  char p[9000];
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

static void assert_same_state(const char *a, const char *b) {
  char *diff = tu_ckpt_state_diff(a, b);
  if (diff) fail_msg("%s and %s: %s", a, b, diff);
}

// ---- training ----------------------------------------------------------------------------------
static void test_exact_resume_after_sigkill(void **state) {
  (void)state;
  char a[4400], b[4400];
  snprintf(a, sizeof a, "%s/run-a", g_root);
  snprintf(b, sizeof b, "%s/run-b", g_root);
  char *o;
  int rc = run(&o, "%s --data %s --config %s --out %s", GANC_TRAIN_BIN, g_data, g_cfg, a);
  if (rc != 0) fail_msg("training failed (%d):\n%s", rc, o);
  must_contain(o, "finished at kimg 0.960 (step 60)");
  free(o);
  char p[9000];
  const char *files[] = {"config.ini", "log.jsonl", "reals.png", "latest"};
  for (int i = 0; i < 4; i++) {
    snprintf(p, sizeof p, "%s/%s", a, files[i]);
    assert_true(ganc_is_file(p));
  }
  snprintf(p, sizeof p, "%s/fakes-000000.960.png", a);
  assert_true(ganc_is_file(p));
  snprintf(p, sizeof p, "%s/ckpt-000000.160.h5", a); // pruned: keep = 3
  assert_false(ganc_is_file(p));
  snprintf(p, sizeof p, "%s/ckpt-000000.640.h5", a);
  assert_true(ganc_is_file(p));
  snprintf(p, sizeof p, "%s/log.jsonl", a);
  char *log = slurp(p);
  must_contain(log, "\"kimg\": 0.960, \"step\": 60, \"loss_D\": ");
  free(log);

  // Run B is killed (SIGKILL) after its first checkpoint, then resumed.
  pid_t pid = fork();
  if (pid == 0) {
    freopen("/dev/null", "w", stdout);
    freopen("/dev/null", "w", stderr);
    execl(GANC_TRAIN_BIN, GANC_TRAIN_BIN, "--data", g_data, "--config", g_cfg, "--out", b,
          (char *)NULL);
    _exit(127);
  }
  snprintf(p, sizeof p, "%s/latest", b);
  for (int i = 0; i < 20000 && !ganc_is_file(p); i++)
    usleep(500);
  kill(pid, SIGKILL);
  int st;
  waitpid(pid, &st, 0);
  assert_true(WIFSIGNALED(st)); // killed mid-run, not finished
  rc = run(&o, "%s --out %s --resume", GANC_TRAIN_BIN, b);
  if (rc != 0) fail_msg("resume failed (%d):\n%s", rc, o);
  must_contain(o, "resuming from");
  must_contain(o, "finished at kimg 0.960 (step 60)");
  free(o);
  char *la = tu_latest_ckpt(a), *lb = tu_latest_ckpt(b);
  assert_same_state(la, lb); // bit-identical parameters, moments and statistics
  // The log has one line per report, none repeated by the resume.
  snprintf(p, sizeof p, "%s/log.jsonl", b);
  log = slurp(p);
  int lines = 0;
  for (char *c = log; *c; c++)
    lines += *c == '\n';
  assert_int_equal(lines, 6);
  free(log);
  free(la);
  free(lb);
}

// train.precision = bf16 on the CPU (the operands of every convolution rounded as the GPU's
// tensor cores round them): the run trains, differs from the FP32 run of test_exact_resume_after_
// sigkill (the rounding takes effect), and a run stopped halfway and resumed ends bit-identical to
// the straight one.
static void test_precision_bf16(void **state) {
  (void)state;
  char a[4400], b[4400], p[9000];
  snprintf(a, sizeof a, "%s/bf16-a", g_root);
  snprintf(b, sizeof b, "%s/bf16-b", g_root);
  char *o;
  int rc = run(&o, "%s --data %s --config %s --out %s --set train.precision=bf16", GANC_TRAIN_BIN,
               g_data, g_cfg, a);
  if (rc != 0) fail_msg("bf16 training failed (%d):\n%s", rc, o);
  must_contain(o, "finished at kimg 0.960 (step 60)");
  free(o);
  rc = run(&o, "%s --data %s --config %s --out %s --set train.precision=bf16 --set train.kimg=0.48",
           GANC_TRAIN_BIN, g_data, g_cfg, b);
  if (rc != 0) fail_msg("bf16 training (half) failed (%d):\n%s", rc, o);
  free(o);
  rc = run(&o, "%s --out %s --resume --set train.kimg=0.96", GANC_TRAIN_BIN, b);
  if (rc != 0) fail_msg("bf16 resume failed (%d):\n%s", rc, o);
  must_contain(o, "finished at kimg 0.960 (step 60)");
  free(o);
  char *la = tu_latest_ckpt(a), *lb = tu_latest_ckpt(b);
  assert_same_state(la, lb);
  free(la);
  free(lb);
  // The FP32 run of the first test logged other losses from the same start.
  snprintf(p, sizeof p, "%s/run-a/log.jsonl", g_root);
  if (ganc_is_file(p)) {
    char *l32 = slurp(p);
    snprintf(p, sizeof p, "%s/log.jsonl", a);
    char *l16 = slurp(p);
    const char *k32 = strstr(l32, "\"loss_D\": "), *k16 = strstr(l16, "\"loss_D\": ");
    assert_non_null(k32);
    assert_non_null(k16);
    if (!strncmp(k32, k16, 40)) fail_msg("bf16 and fp32 runs logged the same first losses");
    free(l32);
    free(l16);
  }
}

// log.holdout: a run holding out 64 of its 300 images logs D on them (logit_holdout) beside D on
// as many training images (logit_train) at every report, and stays exactly resumable (the
// loader's order skips the held-out images; the measure changes nothing of D). Too large a
// holdout is refused before training.
static void test_holdout(void **state) {
  (void)state;
  char a[4400], b[4400], p[9000];
  snprintf(a, sizeof a, "%s/run-holdout-a", g_root);
  snprintf(b, sizeof b, "%s/run-holdout-b", g_root);
  char *o;
  int rc = run(&o, "%s --data %s --config %s --out %s --set log.holdout=64 --set train.kimg=0.32",
               GANC_TRAIN_BIN, g_data, g_cfg, a);
  if (rc != 0) fail_msg("training with a holdout failed (%d):\n%s", rc, o);
  free(o);
  rc = run(&o, "%s --data %s --config %s --out %s --set log.holdout=64 --set train.kimg=0.16",
           GANC_TRAIN_BIN, g_data, g_cfg, b);
  if (rc != 0) fail_msg("training with a holdout failed (%d):\n%s", rc, o);
  free(o);
  rc = run(&o, "%s --out %s --resume --set train.kimg=0.32", GANC_TRAIN_BIN, b);
  if (rc != 0) fail_msg("resume with a holdout failed (%d):\n%s", rc, o);
  free(o);
  char *la = tu_latest_ckpt(a), *lb = tu_latest_ckpt(b);
  assert_same_state(la, lb);
  free(la);
  free(lb);
  snprintf(p, sizeof p, "%s/log.jsonl", a);
  char *log = slurp(p);
  must_contain(log, "\"logit_train\": ");
  must_contain(log, "\"logit_holdout\": ");
  must_contain(log, "\"logit_gen\": ");
  free(log);
  snprintf(p, sizeof p, "%s/run-holdout-c", g_root);
  assert_int_equal(run(&o, "%s --data %s --config %s --out %s --set log.holdout=200",
                       GANC_TRAIN_BIN, g_data, g_cfg, p),
                   2);
  must_contain(o, "log.holdout = 200");
  free(o);
}

// H5Literate callback: the tensor `name` of group G/params equals G_ema's bit for bit.
static herr_t same_as_ema(hid_t g, const char *name, const H5L_info_t *info, void *data) {
  (void)info;
  hid_t f = *(hid_t *)data;
  char other[512];
  snprintf(other, sizeof other, "G_ema/params/%s", name);
  hid_t a = H5Dopen2(g, name, H5P_DEFAULT), b = H5Dopen2(f, other, H5P_DEFAULT);
  assert_true(a >= 0 && b >= 0);
  hid_t s = H5Dget_space(a);
  size_t n = (size_t)H5Sget_simple_extent_npoints(s);
  float *va = xmalloc(sizeof(float) * n), *vb = xmalloc(sizeof(float) * n);
  assert_true(H5Dread(a, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, va) >= 0);
  assert_true(H5Dread(b, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, vb) >= 0);
  if (memcmp(va, vb, sizeof(float) * n)) fail_msg("G and G_ema differ at %s", name);
  free(va), free(vb);
  H5Sclose(s);
  H5Dclose(a), H5Dclose(b);
  return 0;
}

// train.ema_kimg = 0 (no moving average; dcgan64.ini): G_ema reads G's parameters instead of a
// copy (net_share_params). Its saved parameters are G's bit for bit, a run stopped halfway and
// resumed ends bit-identical to the straight one (a resume loads G's parameters, G_ema's only
// its statistics), and the sampler reads the checkpoint as before.
static void test_no_ema(void **state) {
  (void)state;
  char a[4400], b[4400], p[9000];
  snprintf(a, sizeof a, "%s/noema-a", g_root);
  snprintf(b, sizeof b, "%s/noema-b", g_root);
  char *o;
  int rc = run(&o, "%s --data %s --config %s --out %s --set train.ema_kimg=0 --set train.kimg=0.32",
               GANC_TRAIN_BIN, g_data, g_cfg, a);
  if (rc != 0) fail_msg("training without an EMA failed (%d):\n%s", rc, o);
  free(o);
  rc = run(&o, "%s --data %s --config %s --out %s --set train.ema_kimg=0 --set train.kimg=0.16",
           GANC_TRAIN_BIN, g_data, g_cfg, b);
  if (rc != 0) fail_msg("training without an EMA (half) failed (%d):\n%s", rc, o);
  free(o);
  rc = run(&o, "%s --out %s --resume --set train.kimg=0.32", GANC_TRAIN_BIN, b);
  if (rc != 0) fail_msg("resume without an EMA failed (%d):\n%s", rc, o);
  must_contain(o, "finished at kimg 0.320 (step 20)");
  free(o);
  char *la = tu_latest_ckpt(a), *lb = tu_latest_ckpt(b);
  assert_same_state(la, lb);
  hid_t f = H5Fopen(la, H5F_ACC_RDONLY, H5P_DEFAULT);
  assert_true(f >= 0);
  hid_t g = H5Gopen2(f, "G/params", H5P_DEFAULT);
  assert_true(g >= 0);
  hsize_t idx = 0;
  assert_true(H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, same_as_ema, &f) >= 0);
  assert_true(idx > 0);
  H5Gclose(g);
  H5Fclose(f);
  snprintf(p, sizeof p, "%s/s.png", g_root);
  rc = run(&o, "%s --ckpt %s --seeds 0-3 --grid 2x2 --out %s", GANC_SAMPLE_BIN, la, p);
  if (rc != 0) fail_msg("sampling a run without an EMA failed (%d):\n%s", rc, o);
  free(o);
  assert_true(ganc_is_file(p));
  free(la);
  free(lb);
}

// train.lecam: the regulariser changes training (against the same run without it), its moving
// averages are saved in the checkpoint (decay^20 after 20 steps), and a run stopped halfway and
// resumed ends bit-identical to the straight one, averages included (assert_same_state compares
// them): the resume restored them rather than starting afresh.
static void test_lecam(void **state) {
  (void)state;
  char a[4400], b[4400], c[4400];
  snprintf(a, sizeof a, "%s/lecam-a", g_root);
  snprintf(b, sizeof b, "%s/lecam-b", g_root);
  snprintf(c, sizeof c, "%s/lecam-off", g_root);
  const char *L = "--set train.lecam=0.5 --set train.lecam_decay=0.9";
  char *o;
  int rc = run(&o, "%s --data %s --config %s --out %s %s --set train.kimg=0.32", GANC_TRAIN_BIN,
               g_data, g_cfg, a, L);
  if (rc != 0) fail_msg("training with LeCam failed (%d):\n%s", rc, o);
  free(o);
  rc = run(&o, "%s --data %s --config %s --out %s --set train.kimg=0.32", GANC_TRAIN_BIN, g_data,
           g_cfg, c);
  if (rc != 0) fail_msg("training without LeCam failed (%d):\n%s", rc, o);
  free(o);
  rc = run(&o, "%s --data %s --config %s --out %s %s --set train.kimg=0.16", GANC_TRAIN_BIN, g_data,
           g_cfg, b, L);
  if (rc != 0) fail_msg("training with LeCam (half) failed (%d):\n%s", rc, o);
  free(o);
  rc = run(&o, "%s --out %s --resume --set train.kimg=0.32", GANC_TRAIN_BIN, b);
  if (rc != 0) fail_msg("resume with LeCam failed (%d):\n%s", rc, o);
  must_contain(o, "finished at kimg 0.320 (step 20)");
  free(o);
  char *la = tu_latest_ckpt(a), *lb = tu_latest_ckpt(b), *lc = tu_latest_ckpt(c);
  assert_same_state(la, lb);
  // The nets themselves must differ (not only the averages, which one checkpoint lacks).
  char *diff = tu_ckpt_state_diff(la, lc);
  if (!diff || !strstr(diff, "parameters differ"))
    fail_msg("train.lecam = 0.5 trained the same weights as no LeCam (%s)", diff ? diff : "");
  free(diff);
  ganc_ckpt_meta m;
  ganc_err err = {0};
  if (ganc_ckpt_read_meta(la, &m, &err)) fail_msg("%s", err.msg);
  assert_int_equal(m.has_lecam, 1);
  assert_true(fabs(m.lecam[2] - pow(0.9, 20)) < 1e-6); // 20 updates of the averages
  assert_true(isfinite(m.lecam[0]) && isfinite(m.lecam[1]) && m.lecam[0] != m.lecam[1]);
  ganc_ckpt_meta_free(&m);
  if (ganc_ckpt_read_meta(lc, &m, &err)) fail_msg("%s", err.msg);
  assert_int_equal(m.has_lecam, 0); // off: nothing saved
  ganc_ckpt_meta_free(&m);
  // Switched on at a resume of a run without it: the averages start afresh, said so.
  rc = run(&o, "%s --out %s --resume %s --set train.kimg=0.48", GANC_TRAIN_BIN, c, L);
  if (rc != 0) fail_msg("resume switching LeCam on failed (%d):\n%s", rc, o);
  must_contain(o, "holds no LeCam averages");
  free(o);
  free(la);
  free(lb);
  free(lc);
}

// ADA (augment.ada_target): p moves with D's signs on its reals, is saved with its controller's
// counts, and a stopped and resumed run is the straight run (p included); p in the log; a fixed
// p < 1 saves no ADA state; switching ADA on at a resume says where p starts; ADA without an
// augmentation is refused.
static void test_ada(void **state) {
  (void)state;
  char a[4400], b[4400], c[4400], p[9000];
  snprintf(a, sizeof a, "%s/ada-a", g_root);
  snprintf(b, sizeof b, "%s/ada-b", g_root);
  snprintf(c, sizeof c, "%s/ada-fixed", g_root);
  const char *A = "--set augment.xflip=true --set augment.rot90=true --set augment.color=true "
                  "--set augment.translation=true --set augment.p=0.2 --set augment.ada_kimg=1 "
                  "--set augment.ada_interval=2";
  char *o;
  int rc = run(&o,
               "%s --data %s --config %s --out %s %s --set augment.ada_target=0.1 --set "
               "train.kimg=0.32",
               GANC_TRAIN_BIN, g_data, g_cfg, a, A);
  if (rc != 0) fail_msg("training with ADA failed (%d):\n%s", rc, o);
  free(o);
  rc = run(&o,
           "%s --data %s --config %s --out %s %s --set augment.ada_target=0.1 --set "
           "train.kimg=0.16",
           GANC_TRAIN_BIN, g_data, g_cfg, b, A);
  if (rc != 0) fail_msg("training with ADA (half) failed (%d):\n%s", rc, o);
  free(o);
  rc = run(&o, "%s --out %s --resume --set train.kimg=0.32", GANC_TRAIN_BIN, b);
  if (rc != 0) fail_msg("resume with ADA failed (%d):\n%s", rc, o);
  must_contain(o, "finished at kimg 0.320 (step 20)");
  free(o);
  char *la = tu_latest_ckpt(a), *lb = tu_latest_ckpt(b);
  assert_same_state(la, lb);
  ganc_ckpt_meta m;
  ganc_err err = {0};
  if (ganc_ckpt_read_meta(la, &m, &err)) fail_msg("%s", err.msg);
  assert_int_equal(m.has_ada, 1);
  // 20 steps of 16 images, an adjustment every 2 steps by ±32/1000: p moved from 0.2 in steps of
  // 0.032, and no images are left over since the last adjustment.
  // (p is a float: 0.2f; p at a clamp, 0 or 1, need not be a whole number of steps away.)
  const double moves = (m.ada[0] - (double)0.2f) / 0.032;
  const int clamped = m.ada[0] == 0 || m.ada[0] == 1;
  if (round(moves) == 0 || (!clamped && fabs(moves - round(moves)) > 1e-4) || m.ada[2] != 0 ||
      m.ada[1] != 0 || !(m.ada[3] >= -1 && m.ada[3] <= 1))
    fail_msg("ADA after 20 steps: p %g (from 0.2 by %g steps of 0.032), counts %g %g, r_t %g",
             m.ada[0], moves, m.ada[1], m.ada[2], m.ada[3]);
  ganc_ckpt_meta_free(&m);
  snprintf(p, sizeof p, "%s/log.jsonl", a);
  char *log = slurp(p);
  must_contain(log, "\"aug_p\": ");
  must_contain(log, "\"ada_rt\": ");
  free(log);
  // A fixed p < 1: the augmentations apply to some images, no ADA state is saved.
  rc = run(&o, "%s --data %s --config %s --out %s %s --set train.kimg=0.16", GANC_TRAIN_BIN, g_data,
           g_cfg, c, A);
  if (rc != 0) fail_msg("training with a fixed p failed (%d):\n%s", rc, o);
  free(o);
  char *lc = tu_latest_ckpt(c);
  if (ganc_ckpt_read_meta(lc, &m, &err)) fail_msg("%s", err.msg);
  assert_int_equal(m.has_ada, 0);
  ganc_ckpt_meta_free(&m);
  // Switched on at a resume: p starts at augment.p, said so.
  rc = run(&o, "%s --out %s --resume --set augment.ada_target=0.6 --set train.kimg=0.32",
           GANC_TRAIN_BIN, c);
  if (rc != 0) fail_msg("resume switching ADA on failed (%d):\n%s", rc, o);
  must_contain(o, "holds no ADA state (augment.ada_target was 0): p starts at 0.2");
  free(o);
  // ADA driven by the held-out ratio: p moves at each report that crossed its mark (every 4
  // steps of 16 images here) by ±64/1000, the same in a run stopped at a partial report window
  // and resumed as in the straight run; r_v is logged beside the held-out measures.
  const char *H = "--set log.holdout=64 --set log.report_kimg=0.064 --set augment.ada_target=0.1 "
                  "--set augment.ada_signal=holdout";
  snprintf(a, sizeof a, "%s/ada-rv-a", g_root);
  snprintf(b, sizeof b, "%s/ada-rv-b", g_root);
  rc = run(&o, "%s --data %s --config %s --out %s %s %s --set train.kimg=0.32", GANC_TRAIN_BIN,
           g_data, g_cfg, a, A, H);
  if (rc != 0) fail_msg("training with ADA by r_v failed (%d):\n%s", rc, o);
  free(o);
  rc = run(&o, "%s --data %s --config %s --out %s %s %s --set train.kimg=0.168", GANC_TRAIN_BIN,
           g_data, g_cfg, b, A, H);
  if (rc != 0) fail_msg("training with ADA by r_v (part) failed (%d):\n%s", rc, o);
  free(o);
  rc = run(&o, "%s --out %s --resume --set train.kimg=0.32", GANC_TRAIN_BIN, b);
  if (rc != 0) fail_msg("resume with ADA by r_v failed (%d):\n%s", rc, o);
  free(o);
  free(la);
  free(lb);
  la = tu_latest_ckpt(a);
  lb = tu_latest_ckpt(b);
  assert_same_state(la, lb);
  if (ganc_ckpt_read_meta(la, &m, &err)) fail_msg("%s", err.msg);
  assert_int_equal(m.has_ada, 1);
  // 5 reports: p from 0.2 by whole steps of 0.064 (at most 5; an odd number unless clamped at
  // 0: every report moves it), no counts, r_v not saved.
  const double rv_moves = (m.ada[0] - (double)0.2f) / 0.064;
  if (fabs(rv_moves) > 5 + 1e-4 ||
      (m.ada[0] != 0 &&
       (fabs(rv_moves - round(rv_moves)) > 1e-4 || ((long)round(fabs(rv_moves)) % 2) == 0)) ||
      m.ada[1] != 0 || m.ada[2] != 0 || !isnan(m.ada[3]))
    fail_msg("ADA by r_v after 5 reports: p %g (from 0.2 by %g steps of 0.064), counts %g %g, "
             "saved r %g",
             m.ada[0], rv_moves, m.ada[1], m.ada[2], m.ada[3]);
  ganc_ckpt_meta_free(&m);
  snprintf(p, sizeof p, "%s/log.jsonl", a);
  log = slurp(p);
  { // every report of the straight run crossed its mark: p moved at each, by one step
    double prev = (double)0.2f;
    int lines = 0;
    for (const char *at = strstr(log, "\"aug_p\": "); at; at = strstr(at + 1, "\"aug_p\": ")) {
      const double q = strtod(at + 9, NULL);
      if (!(fabs(fabs(q - prev) - 0.064) < 1e-6 || (q == 0 && prev < 0.064 + 1e-6)))
        fail_msg("report %d: p %g after %g, not one step of 0.064:\n%s", lines + 1, q, prev, log);
      prev = q;
      lines++;
    }
    assert_int_equal(lines, 5);
  }
  must_contain(log, "\"logit_gen\": ");
  if (!strstr(log, "\"ada_rv\": ") && strstr(log, "\"holdout_ratio\": "))
    fail_msg("r_v measured but not logged as ada_rv:\n%s", log);
  if (strstr(log, "\"ada_rt\": ")) fail_msg("r_t logged while ADA is driven by r_v:\n%s", log);
  free(log);
  // ... which needs held-out images.
  rc = run(&o,
           "%s --data %s --config %s --out %s/ada-none %s --set augment.ada_target=0.6 --set "
           "augment.ada_signal=holdout",
           GANC_TRAIN_BIN, g_data, g_cfg, g_root, A);
  assert_int_equal(rc, 2);
  must_contain(o, "augment.ada_signal = holdout measures D on held-out images, but log.holdout");
  free(o);
  // ADA, or a fixed p, with nothing to apply p to: refused before anything starts.
  rc = run(&o, "%s --data %s --config %s --out %s/ada-none --set augment.ada_target=0.6",
           GANC_TRAIN_BIN, g_data, g_cfg, g_root);
  assert_int_equal(rc, 2);
  must_contain(o, "augment.ada_target is set, but no augmentation is on");
  free(o);
  rc = run(&o, "%s --data %s --config %s --out %s/ada-none --set augment.p=0.5", GANC_TRAIN_BIN,
           g_data, g_cfg, g_root);
  assert_int_equal(rc, 2);
  must_contain(o, "augment.p is set, but no augmentation is on");
  free(o);
  free(la);
  free(lb);
  free(lc);
}

static void test_sigint_writes_checkpoint(void **state) {
  (void)state;
  char r[4400], p[9000];
  snprintf(r, sizeof r, "%s/run-int", g_root);
  pid_t pid = fork();
  if (pid == 0) {
    freopen("/dev/null", "w", stdout);
    freopen("/dev/null", "w", stderr);
    execl(GANC_TRAIN_BIN, GANC_TRAIN_BIN, "--data", g_data, "--config", g_cfg, "--out", r, "--set",
          "train.kimg=1000", "--set", "log.snapshot_kimg=1000", (char *)NULL);
    _exit(127);
  }
  snprintf(p, sizeof p, "%s/log.jsonl", r);
  for (int i = 0; i < 20000; i++) { // wait for the first report line
    char *log = ganc_is_file(p) ? slurp(p) : NULL;
    int has = log && strchr(log, '\n');
    free(log);
    if (has) break;
    usleep(1000);
  }
  kill(pid, SIGINT);
  int st;
  waitpid(pid, &st, 0);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
  char *l = tu_latest_ckpt(r);
  ganc_ckpt_meta meta;
  ganc_err err = {0};
  assert_int_equal(ganc_ckpt_read_meta(l, &meta, &err), 0);
  assert_true(meta.step >= 10);
  ganc_ckpt_meta_free(&meta);
  free(l);
}

// SIGKILL at random moments of a run that checkpoints every step: whenever the kill lands,
// `latest` names a checkpoint that loads completely, and the run resumes from it.
static void test_kill_during_checkpoint_writes(void **state) {
  (void)state;
  char r[4400], p[9000];
  snprintf(r, sizeof r, "%s/run-kills", g_root);
  int delays_ms[6] = {150, 40, 260, 90, 330, 10};
  for (int trial = 0; trial < 6; trial++) {
    pid_t pid = fork();
    if (pid == 0) {
      freopen("/dev/null", "w", stdout);
      freopen("/dev/null", "w", stderr);
      if (trial == 0)
        execl(GANC_TRAIN_BIN, GANC_TRAIN_BIN, "--data", g_data, "--config", g_cfg, "--out", r,
              "--set", "train.kimg=1000", "--set", "log.snapshot_kimg=0.016", (char *)NULL);
      else
        execl(GANC_TRAIN_BIN, GANC_TRAIN_BIN, "--out", r, "--resume", (char *)NULL);
      _exit(127);
    }
    snprintf(p, sizeof p, "%s/latest", r);
    for (int i = 0; i < 20000 && !ganc_is_file(p); i++)
      usleep(500);
    usleep((useconds_t)delays_ms[trial] * 1000);
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    char *l = tu_latest_ckpt(r);
    char *why = tu_ckpt_state_diff(l, l); // loads it whole: fails if incomplete or damaged
    if (why) fail_msg("after a kill: %s", why);
    free(l);
  }
  char *o;
  assert_int_equal(run(&o, "%s --out %s --resume --set train.kimg=0.5", GANC_TRAIN_BIN, r), 0);
  free(o);
}

// A damaged newest checkpoint: --resume says so and continues from the newest intact one.
// A second trainer on a run folder in use is refused.
static void test_damaged_latest_and_lock(void **state) {
  (void)state;
  char a[4400], r[4400];
  snprintf(a, sizeof a, "%s/run-a", g_root); // made by the resume test
  snprintf(r, sizeof r, "%s/run-fb", g_root);
  assert_int_equal(tu_system("rm -rf %s && cp -r %s %s", r, a, r), 0);
  char *l = tu_latest_ckpt(r);
  tu_corrupt_chunk(l, "G_ema/params/b1.conv.weight", 0);
  char *o;
  int rc = run(&o, "%s --out %s --resume --set train.kimg=1.12", GANC_TRAIN_BIN, r);
  if (rc != 0) fail_msg("resume past a damaged checkpoint failed (%d):\n%s", rc, o);
  must_contain(o, "damaged");
  must_contain(o, "resuming from");
  must_contain(o, "ckpt-000000.800.h5");
  free(o);
  free(l);

  char logp[9000];
  snprintf(logp, sizeof logp, "%s/log.jsonl", r);
  char *log0 = slurp(logp);
  size_t log_before = strlen(log0);
  free(log0);
  pid_t pid = fork();
  if (pid == 0) {
    freopen("/dev/null", "w", stdout);
    freopen("/dev/null", "w", stderr);
    execl(GANC_TRAIN_BIN, GANC_TRAIN_BIN, "--out", r, "--resume", "--set", "train.kimg=1000",
          (char *)NULL);
    _exit(127);
  }
  char p[9000];
  snprintf(p, sizeof p, "%s/.lock", r);
  char want[32];
  snprintf(want, sizeof want, "%ld\n", (long)pid);
  for (int i = 0; i < 10000; i++) { // the first trainer writes its pid once it holds the lock
    char *txt = slurp(p);
    int held = !strcmp(txt, want);
    free(txt);
    if (held) break;
    usleep(1000);
  }
  assert_int_equal(run(&o, "%s --out %s --resume", GANC_TRAIN_BIN, r), 2);
  must_contain(o, "in use by another ganc-train");
  free(o);
  // SIGINT's promise (finish the step, checkpoint, exit 0) holds once training runs: wait for the
  // first trainer's next log line, since a loaded machine may still be in its start-up.
  for (int i = 0; i < 30000; i++) {
    char *txt = slurp(logp);
    int grew = strlen(txt) > log_before;
    free(txt);
    if (grew) break;
    usleep(1000);
  }
  kill(pid, SIGINT);
  int st;
  waitpid(pid, &st, 0);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_refusals(void **state) {
  (void)state;
  char a[4400], x[4400];
  snprintf(a, sizeof a, "%s/run-a", g_root); // made by the resume test
  snprintf(x, sizeof x, "%s/run-x", g_root);
  char *o;
  // An existing run without --resume.
  assert_int_equal(run(&o, "%s --data %s --config %s --out %s", GANC_TRAIN_BIN, g_data, g_cfg, a),
                   2);
  must_contain(o, "already holds a run");
  must_contain(o, "--resume");
  free(o);
  // Resuming on another dataset, with another architecture, or another batch.
  assert_int_equal(run(&o, "%s --out %s --resume --data %s", GANC_TRAIN_BIN, a, g_data2), 2);
  must_contain(o, "not the one this run was trained on");
  free(o);
  assert_int_equal(run(&o, "%s --out %s --resume --set model.g_base=8", GANC_TRAIN_BIN, a), 2);
  must_contain(o, "the model section differs");
  free(o);
  assert_int_equal(run(&o, "%s --out %s --resume --set model.g_base=8 --force", GANC_TRAIN_BIN, a),
                   2);
  must_contain(o, "different architecture");
  free(o);
  // A typo in a config key, a bad value, a resolution the data does not have.
  assert_int_equal(run(&o, "%s --data %s --config %s --out %s --set train.bacth=3", GANC_TRAIN_BIN,
                       g_data, g_cfg, x),
                   2);
  must_contain(o, "did you mean batch");
  free(o);
  assert_int_equal(run(&o, "%s --data %s --config %s --out %s --set train.loss=hinj",
                       GANC_TRAIN_BIN, g_data, g_cfg, x),
                   2);
  must_contain(o, "logistic, hinge");
  free(o);
  assert_int_equal(run(&o, "%s --data %s --config %s --out %s --set model.resolution=64",
                       GANC_TRAIN_BIN, g_data, g_cfg, x),
                   2);
  must_contain(o, "ganc-prep");
  free(o);
  assert_int_equal(
      run(&o, "%s --data %s/nothing --config %s --out %s", GANC_TRAIN_BIN, g_root, g_cfg, x), 2);
  free(o);
  assert_false(ganc_is_dir(x)); // nothing created by refused runs
}

// Overwrites every value of one tensor of a checkpoint with `value` (HDF5 rewrites its checksum).
static void poison(const char *path, const char *tensor, float value) {
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t d = H5Dopen2(f, tensor, H5P_DEFAULT);
  hid_t s = H5Dget_space(d);
  hssize_t n = H5Sget_simple_extent_npoints(s);
  float *v = xmalloc(sizeof(float) * (size_t)n);
  for (hssize_t i = 0; i < n; i++)
    v[i] = value;
  assert_true(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
  free(v);
  H5Sclose(s);
  H5Dclose(d);
  H5Fclose(f);
}

// A run that diverges (finite but huge weights, as a too-high learning rate makes them) stops at
// the first non-finite loss and saves nothing over the last good checkpoint. A checkpoint that
// holds NaN, which ganc never saves, is damage: resume says so, naming the file and the tensor
// (not "diverged"), and falls back to the newest good checkpoint without touching the bad one.
static void test_nan_stops_training(void **state) {
  (void)state;
  char r[4400];
  snprintf(r, sizeof r, "%s/run-nan", g_root);
  assert_int_equal(run(NULL, "%s --data %s --config %s --out %s --set train.kimg=0.32",
                       GANC_TRAIN_BIN, g_data, g_cfg, r),
                   0);
  char *l = tu_latest_ckpt(r);
  poison(l, "D/params/head.conv.weight", 1e38f);
  char before[65], after[65];
  ganc_err err = {0};
  assert_int_equal(ganc_sha256_file(l, before, &err), 0);
  char *o;
  assert_int_equal(run(&o, "%s --out %s --resume --set train.kimg=0.64", GANC_TRAIN_BIN, r), 1);
  must_contain(o, "diverged");
  must_contain(o, "untouched");
  free(o);
  assert_int_equal(ganc_sha256_file(l, after, &err), 0);
  assert_string_equal(before, after);
  char *l2 = tu_latest_ckpt(r);
  assert_string_equal(l, l2); // no new checkpoint
  free(l2);
  // The losses are read once per report: with no report before the next snapshot, the snapshot
  // itself reads them first, and still nothing is saved.
  assert_int_equal(run(&o, "%s --out %s --resume --set train.kimg=0.64 --set log.report_kimg=100",
                       GANC_TRAIN_BIN, r),
                   1);
  must_contain(o, "diverged");
  must_contain(o, "untouched");
  free(o);
  assert_int_equal(ganc_sha256_file(l, after, &err), 0);
  assert_string_equal(before, after);
  l2 = tu_latest_ckpt(r);
  assert_string_equal(l, l2);
  free(l2);

  poison(l, "D/params/head.conv.weight", NAN);
  assert_int_equal(ganc_sha256_file(l, before, &err), 0);
  assert_int_equal(run(&o, "%s --out %s --resume --set train.kimg=0.24", GANC_TRAIN_BIN, r), 0);
  must_contain(o, l);
  must_contain(o, "is damaged: tensor D/params/head.conv.weight holds");
  must_contain(o, "NaN or Inf");
  must_contain(o, "resuming from");
  must_contain(o, "ckpt-000000.160.h5 instead");
  if (strstr(o, "diverged")) fail_msg("a damaged checkpoint is not a diverged run:\n%s", o);
  free(o);
  assert_int_equal(ganc_sha256_file(l, after, &err), 0);
  assert_string_equal(before, after); // the damaged file is left as it was, for the user to see
  free(l);
}

// ---- sampling
// ------------------------------------------------------------------------------------
static ganc_image read_png(const char *path) {
  uint8_t *buf;
  size_t n;
  assert_int_equal(ganc_read_file(path, 1 << 26, &buf, &n), 0);
  ganc_image img = {0};
  char why[256];
  if (ganc_image_decode(buf, n, NULL, &img, why, sizeof why)) fail_msg("%s: %s", path, why);
  free(buf);
  return img;
}

// The text chunks of a PNG as "key=value\n" lines.
static char *png_texts(const char *path) {
  FILE *f = fopen(path, "rb");
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) fail_msg("cannot read %s", path);
  png_init_io(png, f);
  png_read_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
  png_textp t;
  int n = png_get_text(png, info, &t, NULL);
  size_t cap = 1 << 16, len = 0;
  char *out = xcalloc(cap, 1);
  for (int i = 0; i < n; i++)
    len += (size_t)snprintf(out + len, cap - len, "%s=%s\n", t[i].key, t[i].text);
  png_destroy_read_struct(&png, &info, NULL);
  fclose(f);
  return out;
}

static void test_sampler(void **state) {
  (void)state;
  char a[4400], p[9000], q[9400];
  snprintf(a, sizeof a, "%s/run-a", g_root);
  char *ckpt = tu_latest_ckpt(a), *o;
  // Same seeds, same bytes.
  snprintf(p, sizeof p, "%s/s1.png", g_root);
  snprintf(q, sizeof q, "%s/s2.png", g_root);
  assert_int_equal(run(&o, "%s --ckpt %s --seeds 0-7 --grid 2x4 --out %s", GANC_SAMPLE_BIN, a, p),
                   0);
  free(o);
  assert_int_equal(
      run(NULL, "%s --ckpt %s --n 8 --seed 0 --grid 2x4 --out %s", GANC_SAMPLE_BIN, ckpt, q), 0);
  char *x = slurp(p), *y = slurp(q);
  ganc_image gi = read_png(p), gj = read_png(q);
  assert_int_equal(gi.w, 4 * 32);
  assert_int_equal(gi.h, 2 * 32);
  assert_memory_equal(gi.px, gj.px, (size_t)gi.w * gi.h);
  free(x);
  free(y);
  // Grid cell k equals seed k alone.
  char dir[4400];
  snprintf(dir, sizeof dir, "%.4000s/singles", g_root);
  assert_int_equal(run(NULL, "%s --ckpt %s --seeds 3,5 --outdir %s", GANC_SAMPLE_BIN, a, dir), 0);
  int ks[2] = {3, 5};
  for (int t = 0; t < 2; t++) {
    snprintf(q, sizeof q, "%s/seed%04d.png", dir, ks[t]);
    ganc_image one = read_png(q);
    assert_int_equal(one.w, 32);
    int r0 = ks[t] / 4, c0 = ks[t] % 4;
    for (int yy = 0; yy < 32; yy++)
      assert_memory_equal(one.px + yy * 32, gi.px + (size_t)(r0 * 32 + yy) * gi.w + c0 * 32, 32);
    ganc_image_free(&one);
    // Provenance: machine-generated, the checkpoint's hash, the seed.
    char *txt = png_texts(q);
    char sha[65], want[128];
    ganc_err err = {0};
    assert_int_equal(ganc_sha256_file(ckpt, sha, &err), 0);
    snprintf(want, sizeof want, "ganc:checkpoint-sha256=%s", sha);
    must_contain(txt, want);
    snprintf(want, sizeof want, "ganc:seed=%d\n", ks[t]);
    must_contain(txt, want);
    must_contain(txt, "trainedAlgorithmicMedia");
    must_contain(txt, "Software=ganc");
    must_contain(txt, "ganc:truncation=1");
    free(txt);
  }
  ganc_image_free(&gi);
  ganc_image_free(&gj);
  // Truncation 0: every latent is the mean, so every cell is the same image.
  assert_int_equal(run(NULL, "%s --ckpt %s --seeds 0-3 --grid 1x4 --truncation 0 --out %s",
                       GANC_SAMPLE_BIN, a, p),
                   0);
  gi = read_png(p);
  for (int yy = 0; yy < 32; yy++)
    for (int c = 1; c < 4; c++)
      assert_memory_equal(gi.px + yy * gi.w, gi.px + yy * gi.w + c * 32, 32);
  ganc_image_free(&gi);
  char *txt = png_texts(p);
  must_contain(txt, "ganc:truncation=0");
  free(txt);
  // The raw generator, a walk as GIF and as frames.
  assert_int_equal(run(NULL, "%s --ckpt %s --no-ema --seeds 0-3 --out %s", GANC_SAMPLE_BIN, a, p),
                   0);
  txt = png_texts(p);
  must_contain(txt, "ganc:network=G\n");
  free(txt);
  snprintf(q, sizeof q, "%s/walk.gif", g_root);
  assert_int_equal(
      run(&o, "%s --ckpt %s --interp 1,7,42 --frames 5 --out %s", GANC_SAMPLE_BIN, a, q), 0);
  must_contain(o, "11 frames");
  free(o);
  assert_true(ganc_is_file(q));
  snprintf(dir, sizeof dir, "%.4000s/frames", g_root);
  assert_int_equal(
      run(NULL, "%s --ckpt %s --interp 1,7 --frames 4 --outdir %s", GANC_SAMPLE_BIN, a, dir), 0);
  snprintf(q, sizeof q, "%s/frame0004.png", dir);
  assert_true(ganc_is_file(q));
  // A damaged checkpoint is refused with a message; so is a missing one; bad options exit 2.
  snprintf(q, sizeof q, "%s/damaged.h5", g_root);
  assert_int_equal(tu_system("cp %s %s", ckpt, q), 0);
  tu_corrupt_chunk(q, "G_ema/params/b0.conv.weight", 0);
  assert_int_equal(run(&o, "%s --ckpt %s --seeds 0 --out %s", GANC_SAMPLE_BIN, q, p), 2);
  must_contain(o, "damaged");
  free(o);
  tu_truncate(q, 4000);
  assert_int_equal(run(&o, "%s --ckpt %s --seeds 0 --out %s", GANC_SAMPLE_BIN, q, p), 2);
  must_contain(o, "damaged");
  free(o);
  assert_int_equal(run(NULL, "%s --ckpt %s/none.h5 --out %s", GANC_SAMPLE_BIN, g_root, p), 2);
  assert_int_equal(run(NULL, "%s --ckpt %s --seeds 5-2 --out %s", GANC_SAMPLE_BIN, a, p), 2);
  assert_int_equal(run(NULL, "%s --ckpt %s --truncation x --out %s", GANC_SAMPLE_BIN, a, p), 2);
  free(ckpt);
}

// RUN_DIR/latest that is a folder or a FIFO is refused at start (before any training, which would
// otherwise die at its first checkpoint; a FIFO must not block): by a new run, by --resume and by
// ganc-sample. A `latest` that links to nothing is passed over to the newest good checkpoint.
static void test_run_pointer(void **state) {
  (void)state;
  char a[4400], r[4400], p[9000], png[9000];
  snprintf(a, sizeof a, "%s/run-a", g_root); // made by the resume test
  snprintf(r, sizeof r, "%s/run-ptr", g_root);
  snprintf(p, sizeof p, "%s/latest", r);
  snprintf(png, sizeof png, "%s/ptr.png", g_root);
  char *o;
  assert_int_equal(tu_system("rm -rf %s && mkdir -p %s", r, p), 0);
  assert_int_equal(
      run(&o, "timeout 300 %s --data %s --config %s --out %s", GANC_TRAIN_BIN, g_data, g_cfg, r),
      2);
  must_contain(o, "latest is a folder");
  free(o);
  snprintf(png, sizeof png, "%s/log.jsonl", r);
  assert_false(ganc_is_file(png)); // refused before anything was written
  snprintf(png, sizeof png, "%s/ptr.png", g_root);
  assert_int_equal(tu_system("rm -rf %s && cp -r %s %s && rm %s && mkdir %s", r, a, r, p, p), 0);
  assert_int_equal(run(&o, "timeout 300 %s --out %s --resume", GANC_TRAIN_BIN, r), 2);
  must_contain(o, "latest is a folder");
  free(o);
  assert_int_equal(tu_system("rmdir %s && mkfifo %s", p, p), 0);
  assert_int_equal(run(&o, "timeout 300 %s --out %s --resume", GANC_TRAIN_BIN, r), 2);
  must_contain(o, "FIFO");
  free(o);
  assert_int_equal(run(&o, "timeout 300 %s --ckpt %s --seeds 0 --out %s", GANC_SAMPLE_BIN, r, png),
                   2);
  must_contain(o, "FIFO");
  free(o);
  assert_int_equal(tu_system("rm %s && ln -s nothing %s", p, p), 0);
  assert_int_equal(run(&o, "timeout 300 %s --out %s --resume", GANC_TRAIN_BIN, r), 0);
  must_contain(o, "resuming from");
  must_contain(o, "ckpt-000000.960.h5");
  free(o);
  // A garbled `latest` (emptied by a full disk, a path where a name belongs): passed over like a
  // damaged checkpoint, saying so; the run resumes from the newest good one.
  const char *garbled[2] = {"", "../elsewhere.h5"};
  for (int i = 0; i < 2; i++) {
    assert_int_equal(tu_system("rm -f %s && printf '%s' > %s", p, garbled[i], p), 0);
    assert_int_equal(run(&o, "timeout 300 %s --out %s --resume", GANC_TRAIN_BIN, r), 0);
    must_contain(o, "does not name a checkpoint file");
    must_contain(o, "resuming from");
    must_contain(o, "ckpt-000000.960.h5 instead");
    free(o);
  }
  snprintf(p, sizeof p, "%s/latest.tmp", r);
  assert_int_equal(tu_system("mkfifo %s", p), 0);
  // A stale temporary of ours, FIFO or not, is removed at resume (two steps, then a checkpoint).
  assert_int_equal(
      run(&o, "timeout 300 %s --out %s --resume --set train.kimg=0.992", GANC_TRAIN_BIN, r), 0);
  must_contain(o, "finished at kimg 0.992");
  free(o);
  assert_int_equal(tu_system("rm -rf %s", r), 0);
}

// ganc-sample never writes a black image for a broken generator: NaN in G_ema is refused as a
// damaged checkpoint (exit 2, naming it and the tensor), and finite weights whose output is not
// finite stop it with exit 1, naming the checkpoint; no PNG is written either way.
// ganc-bench --step --profile (core/prof.h) on the CPU: every op of the step found at its place,
// with its calls per step (D runs three forwards, G one), times that add up to no more than the
// step, and the CSV one row per place.
static const char *find_place(const ganc_prof *p, const char *net, const char *node,
                              const char *pass, const char *op, double *ms, double *calls) {
  for (int i = 0; i < ganc_prof_places(p); i++) {
    const char *n, *nd, *ps, *o;
    ganc_prof_place(p, i, &n, &nd, &ps, &o, ms, calls);
    if (!strcmp(n, net) && (!node || !strcmp(nd, node)) && !strcmp(ps, pass) &&
        !strncmp(o, op, strlen(op)))
      return o;
  }
  fail_msg("no place %s %s %s %s in the profile", net, node ? node : "*", pass, op);
  return NULL;
}

static void test_step_profile(void **state) {
  (void)state;
  ganc_step_timing t;
  ganc_prof *p = NULL;
  ganc_err err = {0};
  assert_int_equal(ganc_train_benchmark(g_cfg, NULL, 0, "cpu", 1, 3, &t, &p, &err), 0);
  assert_non_null(p);
  assert_int_equal(ganc_prof_steps(p), 3);
  double ms, calls, sum = 0;
  find_place(p, "G", "b1.conv", "forward", "conv2d", &ms, &calls);
  assert_true(calls == 1.0 && ms > 0);
  find_place(p, "D", "b1.conv", "forward", "conv2d", &ms, &calls);
  assert_true(calls == 3.0 && ms > 0);
  find_place(p, "D", "b1.conv", "backward-weight", "conv2d", &ms, &calls);
  assert_true(calls == 2.0); // D's weight gradients are not computed in the G step
  find_place(p, "D", "b1.conv", "backward-data", "conv2d", &ms, &calls);
  assert_true(calls == 3.0);
  find_place(p, "D", "b1.bn", "forward", "batchnorm_forward_train", &ms, &calls);
  assert_true(calls == 3.0);
  find_place(p, "G", NULL, "adam + ema", "adam_update", &ms, &calls);
  assert_true(calls == 1.0);
  find_place(p, "D", NULL, "adam", "adam_update", &ms, &calls);
  find_place(p, "step", "loss", "G", "loss_", &ms, &calls);
  find_place(p, "step", "inputs", "-", "step_draws", &ms, &calls);
  for (int i = 0; i < ganc_prof_places(p); i++) {
    ganc_prof_place(p, i, NULL, NULL, NULL, NULL, &ms, &calls);
    assert_true(ms >= 0 && calls > 0);
    sum += ms;
  }
  const double step = ganc_prof_step_median(p), ops = ganc_prof_ops_median(p);
  assert_true(ops > 0 && ops <= step * 1.0001);
  (void)sum; // medians of parts need not add up to the median of the whole
  char path[4400];
  snprintf(path, sizeof path, "%s/profile.csv", g_root);
  FILE *csv = fopen(path, "w"), *out = fopen("/dev/null", "w");
  assert_non_null(csv);
  ganc_prof_report(p, out, 10, 0, csv);
  fclose(csv);
  fclose(out);
  char *text = slurp(path);
  int lines = 0;
  for (const char *c = text; *c; c++)
    lines += *c == '\n';
  must_contain(text, "net,node,pass,op,calls_per_step,median_ms_per_step,share_of_ops\n");
  must_contain(text,
               "G,out.conv/tanh,forward,tanh_forward,1.00,"); // an activation: after its input
  assert_int_equal(lines, 1 + ganc_prof_places(p) + 1);       // header, places, the eager step
  free(text);
  ganc_prof_free(p);
}

static void test_sampler_refuses_bad_weights(void **state) {
  (void)state;
  char a[4400], q[9000], png[9000];
  snprintf(a, sizeof a, "%s/run-a", g_root);
  snprintf(q, sizeof q, "%s/bad-weights.h5", g_root);
  snprintf(png, sizeof png, "%s/bad-weights.png", g_root);
  char *ckpt = tu_latest_ckpt(a), *o;
  assert_int_equal(tu_system("cp %s %s", ckpt, q), 0);
  poison(q, "G_ema/params/b1.conv.weight", NAN);
  assert_int_equal(
      run(&o, "timeout 300 %s --ckpt %s --seeds 0-3 --out %s", GANC_SAMPLE_BIN, q, png), 2);
  must_contain(o, q);
  must_contain(o, "damaged: tensor G_ema/params/b1.conv.weight holds");
  free(o);
  assert_false(ganc_is_file(png));
  assert_int_equal(tu_system("cp %s %s", ckpt, q), 0);
  poison(q, "G_ema/params/b1.conv.weight", 1e38f);
  assert_int_equal(
      run(&o, "timeout 300 %s --ckpt %s --seeds 0-3 --out %s", GANC_SAMPLE_BIN, q, png), 1);
  must_contain(o, q);
  must_contain(o, "produced NaN or Inf");
  free(o);
  assert_false(ganc_is_file(png));
  free(ckpt);
}

int main(void) {
  ganc_h5_quiet();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exact_resume_after_sigkill),
      cmocka_unit_test(test_holdout),
      cmocka_unit_test(test_precision_bf16),
      cmocka_unit_test(test_no_ema),
      cmocka_unit_test(test_lecam),
      cmocka_unit_test(test_ada),
      cmocka_unit_test(test_sigint_writes_checkpoint),
      cmocka_unit_test(test_kill_during_checkpoint_writes),
      cmocka_unit_test(test_damaged_latest_and_lock),
      cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_nan_stops_training),
      cmocka_unit_test(test_sampler),
      cmocka_unit_test(test_run_pointer),
      cmocka_unit_test(test_sampler_refuses_bad_weights),
      cmocka_unit_test(test_step_profile),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
