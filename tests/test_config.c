// test_config.c — training configs (src/train/config.c): defaults, INI round trips, the shipped
// recipes in configs/, and the messages for every kind of mistake; and the command lines of
// ganc-train and ganc-sample (usage errors, empty values, a checkpoint with an empty data_dir)
// and the training line's ETA.
//
// The round trips compare every field of ganc_config by name (doubles with ==), written out here
// rather than taken from config.c's table, so a key the table prints wrongly or not at all fails.
// configs/reference.ini must equal ganc_config_to_ini(defaults) byte for byte.
// cmocka.h needs these three first, so the block is kept out of include sorting.
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
// clang-format on
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h> // mkfifo

#include "core/check.h"
#include "core/util.h" // ganc_format_duration
#include "io/h5attr.h" // to damage a checkpoint's data_dir
#include "testutil.h"
#include "train/config.h" // what is tested

#ifndef GANC_SOURCE_DIR
#error "build with -DGANC_SOURCE_DIR=\"<the source tree>\""
#endif
#define CONFIGS GANC_SOURCE_DIR "/configs/"

// ---- helpers ------------------------------------------------------------------------------------

// Fails naming the first field where a and b differ.
static void expect_same(const ganc_config *a, const ganc_config *b, const char *what) {
#define SAME_INT(f)                                                                                \
  if (a->f != b->f)                                                                                \
  fail_msg("%s: " #f " is %lld, expected %lld", what, (long long)a->f, (long long)b->f)
#define SAME_U64(f)                                                                                \
  if (a->f != b->f)                                                                                \
  fail_msg("%s: " #f " is %llu, expected %llu", what, (unsigned long long)a->f,                    \
           (unsigned long long)b->f)
#define SAME_DBL(f)                                                                                \
  if (a->f != b->f) fail_msg("%s: " #f " is %.17g, expected %.17g", what, a->f, b->f)
#define SAME_STR(f)                                                                                \
  if (strncmp(a->f, b->f, sizeof a->f))                                                            \
  fail_msg("%s: " #f " is '%.*s', expected '%.*s'", what, (int)sizeof a->f, a->f,                  \
           (int)sizeof b->f, b->f)
  SAME_STR(arch);
  SAME_INT(resolution);
  SAME_INT(channels);
  SAME_INT(z_dim);
  SAME_INT(g_base);
  SAME_INT(d_base);
  SAME_INT(g_max);
  SAME_INT(d_max);
  SAME_DBL(bn_eps);
  SAME_DBL(bn_momentum);
  SAME_DBL(lrelu_slope);
  SAME_INT(batch);
  SAME_DBL(kimg);
  SAME_STR(loss);
  SAME_DBL(g_lr);
  SAME_DBL(d_lr);
  SAME_DBL(beta1);
  SAME_DBL(beta2);
  SAME_DBL(adam_eps);
  SAME_DBL(ema_kimg);
  SAME_DBL(ema_rampup);
  SAME_INT(mirror);
  SAME_U64(seed);
  SAME_STR(device);
  SAME_STR(backend);
  SAME_INT(threads);
  SAME_DBL(report_kimg);
  SAME_DBL(snapshot_kimg);
  SAME_INT(keep);
  SAME_INT(grid);
  SAME_INT(window_mb);
#undef SAME_INT
#undef SAME_U64
#undef SAME_DBL
#undef SAME_STR
}

// rc must be an error whose message holds every one of the NULL-terminated strings, and the
// config must be unchanged (a failed load or --set changes nothing).
static void expect_fail(int rc, const ganc_err *err, const ganc_config *after, const char *what,
                        ...) {
  if (rc == 0) fail_msg("%s: accepted, expected an error", what);
  if (err->code != GANC_EXIT_USAGE)
    fail_msg("%s: error code %d, expected %d (bad input): %s", what, err->code, GANC_EXIT_USAGE,
             err->msg);
  va_list ap;
  va_start(ap, what);
  for (const char *s; (s = va_arg(ap, const char *));)
    if (!strstr(err->msg, s)) {
      va_end(ap);
      fail_msg("%s: the message lacks \"%s\":\n%s", what, s, err->msg);
    }
  va_end(ap);
  ganc_config d;
  ganc_config_defaults(&d);
  if (after) expect_same(after, &d, what);
}

// Loads INI text named "t.ini" on top of the defaults; the error message must hold the strings.
#define LOAD_FAILS(text, ...)                                                                      \
  do {                                                                                             \
    ganc_config c_;                                                                                \
    ganc_err e_ = {0};                                                                             \
    ganc_config_defaults(&c_);                                                                     \
    int rc_ = ganc_config_load_string(&c_, text, "t.ini", &e_);                                    \
    expect_fail(rc_, &e_, &c_, text, __VA_ARGS__, (const char *)NULL);                             \
  } while (0)

#define SET_FAILS(assignment, ...)                                                                 \
  do {                                                                                             \
    ganc_config c_;                                                                                \
    ganc_err e_ = {0};                                                                             \
    ganc_config_defaults(&c_);                                                                     \
    int rc_ = ganc_config_set(&c_, assignment, &e_);                                               \
    expect_fail(rc_, &e_, &c_, assignment, __VA_ARGS__, (const char *)NULL);                       \
  } while (0)

static void load_ok(ganc_config *c, const char *text) {
  ganc_err err = {0};
  if (ganc_config_load_string(c, text, "t.ini", &err) != 0)
    fail_msg("refused:\n%s\nwith: %s", text, err.msg);
}

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("cannot open %s", path);
  char *buf = NULL;
  size_t n = 0, cap = 0;
  for (int ch; (ch = fgetc(f)) != EOF;) {
    if (n + 2 > cap) buf = realloc(buf, cap = cap ? 2 * cap : 4096);
    assert_non_null(buf);
    buf[n++] = (char)ch;
  }
  fclose(f);
  if (!buf) buf = calloc(1, 1);
  assert_non_null(buf);
  buf[n] = 0;
  return buf;
}

// ---- round trips --------------------------------------------------------------------------------

static void test_defaults_round_trip(void **state) {
  (void)state;
  ganc_config d, back;
  ganc_config_defaults(&d);
  char *ini = ganc_config_to_ini(&d);
  memset(&back, 0, sizeof back); // every key must be in the text for back to equal d
  load_ok(&back, ini);
  expect_same(&back, &d, "defaults after to_ini/load_string");
  ganc_err err = {0};
  if (ganc_config_validate(&d, &err) != 0) fail_msg("the defaults do not validate: %s", err.msg);
  free(ini);

  // The values the contract names.
  assert_string_equal(d.arch, "dcgan");
  assert_int_equal(d.z_dim, 100);
  assert_int_equal(d.batch, 128);
  assert_true(d.g_lr == 0.0002 && d.d_lr == 0.0002 && d.beta1 == 0.5 && d.beta2 == 0.999);
  assert_true(d.adam_eps == 1e-8 && d.bn_eps == 1e-5 && d.bn_momentum == 0.1);
  assert_true(d.ema_kimg == 10 && d.ema_rampup == 0.05 && d.kimg == 1000);
  assert_string_equal(d.loss, "logistic");
  assert_string_equal(d.device, "auto");
  assert_string_equal(d.backend, "ganc");
  assert_int_equal(d.window_mb, 256);
}

// Values whose shortest text is long or odd must still come back exactly.
static void test_awkward_values_round_trip(void **state) {
  (void)state;
  ganc_config c, back;
  ganc_config_defaults(&c);
  c.g_lr = 0.1 + 0.2; // 0.30000000000000004
  c.d_lr = 1.0 / 3.0;
  c.beta2 = 0.9999999999999999;
  c.adam_eps = 4.9406564584124654e-324; // the smallest subnormal
  c.kimg = 1e9;
  c.ema_kimg = 12345678.901234567;
  c.report_kimg = 0.5;
  c.snapshot_kimg = 2.5e6;
  c.seed = UINT64_MAX;
  c.mirror = 1;
  c.resolution = 256;
  c.channels = 3;
  snprintf(c.loss, sizeof c.loss, "hinge");
  snprintf(c.device, sizeof c.device, "cuda");
  snprintf(c.backend, sizeof c.backend, "cudnn");
  char *ini = ganc_config_to_ini(&c);
  ganc_config_defaults(&back);
  load_ok(&back, ini);
  expect_same(&back, &c, "awkward values after to_ini/load_string");
  // Whole numbers are written plainly, not as 1e+09.
  assert_non_null(strstr(ini, "\nkimg = 1000000000\n"));
  assert_non_null(strstr(ini, "\nsnapshot_kimg = 2500000\n"));
  assert_non_null(strstr(ini, "\nseed = 18446744073709551615\n"));
  assert_non_null(strstr(ini, "\nmirror = true\n"));
  free(ini);
}

static void test_reference_ini_is_defaults(void **state) {
  (void)state;
  ganc_config d;
  ganc_config_defaults(&d);
  char *want = ganc_config_to_ini(&d), *got = read_text(CONFIGS "reference.ini");
  if (strcmp(got, want)) {
    int line = 1;
    size_t i = 0;
    for (; got[i] && got[i] == want[i]; i++)
      line += got[i] == '\n';
    fail_msg("configs/reference.ini differs from ganc_config_to_ini(defaults) at line %d\n"
             "---> HINT: regenerate it (ganc-train --print-config > configs/reference.ini)",
             line);
  }
  free(want);
  free(got);
}

// ---- the shipped recipes ------------------------------------------------------------------------

static void load_recipe(const char *name, ganc_config *c) {
  char path[512];
  snprintf(path, sizeof path, "%s%s", CONFIGS, name);
  ganc_err err = {0};
  ganc_config_defaults(c);
  if (ganc_config_load_file(c, path, &err) != 0) fail_msg("%s: %s", name, err.msg);
  if (ganc_config_validate(c, &err) != 0) fail_msg("%s does not validate: %s", name, err.msg);
}

static void test_shipped_configs(void **state) {
  (void)state;
  ganc_config c, d;
  ganc_config_defaults(&d);

  load_recipe("reference.ini", &c);
  expect_same(&c, &d, "reference.ini");

  load_recipe("dcgan64.ini", &c); // the PyTorch DCGAN example
  assert_string_equal(c.arch, "dcgan");
  assert_int_equal(c.resolution, 64);
  assert_int_equal(c.channels, 3);
  assert_int_equal(c.z_dim, 100);
  assert_int_equal(c.g_base, 64);
  assert_int_equal(c.d_base, 64);
  assert_int_equal(c.batch, 128);
  assert_true(c.g_lr == 2e-4 && c.d_lr == 2e-4);
  assert_true(c.beta1 == 0.5 && c.beta2 == 0.999);
  assert_true(c.bn_eps == 1e-5 && c.bn_momentum == 0.1 && c.lrelu_slope == 0.2);
  assert_string_equal(c.loss, "logistic");
  assert_true(c.ema_kimg == 0); // the example has no EMA
  assert_int_equal(c.mirror, 0);
  assert_true(c.kimg > 0 && c.snapshot_kimg > 0);

  load_recipe("fmnist32.ini", &c); // the default dataset, full width
  assert_int_equal(c.resolution, 32);
  assert_int_equal(c.channels, 1);
  assert_int_equal(c.g_base, 64);
  assert_int_equal(c.d_base, 64);
  assert_int_equal(c.batch, 128);
  assert_true(c.kimg == 3000);
  assert_true(c.ema_kimg == 10);
  assert_true(c.snapshot_kimg == 100);

  load_recipe("cpu-demo.ini", &c); // small, for a machine without a GPU
  assert_int_equal(c.resolution, 32);
  assert_int_equal(c.channels, 1);
  assert_int_equal(c.g_base, 32);
  assert_int_equal(c.d_base, 32);
  assert_int_equal(c.batch, 64);
  assert_true(c.kimg == 300);
  assert_true(c.report_kimg == 0.5);
  assert_true(c.snapshot_kimg == 10);
  assert_true(c.ema_kimg == 2);
  assert_int_equal(c.grid, 8);
}

// ---- what the reader accepts --------------------------------------------------------------------

static void test_syntax_accepted(void **state) {
  (void)state;
  ganc_config c;
  ganc_config_defaults(&c);
  load_ok(&c,
          "# a comment\n"
          "; another\n"
          "[train]\n"
          "  batch = 64   # inline comment, indented key\n"
          "g_lr=1e-4 ; other inline comment\r\n"
          "d_lr: 3E-4\n"
          "mirror = Yes\n"
          "seed = 18446744073709551615\n"
          "\n"
          "   # an indented comment after a key is not a continuation of its value\n"
          "[model]\n"
          "resolution = 128\n"
          "# a comment longer than any line buffer: "
          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"
          "channels = 3");
  assert_int_equal(c.batch, 64);
  assert_true(c.g_lr == 1e-4);
  assert_true(c.d_lr == 3e-4);
  assert_int_equal(c.mirror, 1);
  assert_true(c.seed == UINT64_MAX);
  assert_int_equal(c.resolution, 128);
  assert_int_equal(c.channels, 3);

  const char *yes[] = {"true", "yes", "on", "1", "TRUE", "On"}, *no[] = {"false", "no", "off", "0"};
  char text[64];
  for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
    snprintf(text, sizeof text, "[train]\nmirror = %s\n", yes[i]);
    c.mirror = 0;
    load_ok(&c, text);
    assert_int_equal(c.mirror, 1);
  }
  for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
    snprintf(text, sizeof text, "[train]\nmirror = %s\n", no[i]);
    c.mirror = 1;
    load_ok(&c, text);
    assert_int_equal(c.mirror, 0);
  }
  // A key may be set in a later load (a recipe, then another layer): only twice in one is wrong.
  load_ok(&c, "[train]\nbatch = 32\n");
  load_ok(&c, "[train]\nbatch = 16\n");
  assert_int_equal(c.batch, 16);
}

// ---- mistakes -----------------------------------------------------------------------------------

static void test_unknown_key(void **state) {
  (void)state;
  LOAD_FAILS("[train]\n\nbacth = 64\n", "unknown key train.bacth", "t.ini:3", "did you mean batch?",
             "[train] has: batch, kimg, loss,", "threads", "configs/reference.ini");
  LOAD_FAILS("[model]\nZ_dim = 64\n", "model.Z_dim", "t.ini:2", "did you mean z_dim?");
  LOAD_FAILS("[train]\nlearning_rate = 0.1\n", "unknown key train.learning_rate", "t.ini:2",
             "[train] has: batch");
  // No near key in its section, but the key exists in another one.
  LOAD_FAILS("[model]\nbatch = 64\n", "unknown key model.batch", "t.ini:2", "belongs in [train]");
  // Keys before any section header.
  LOAD_FAILS("batch = 64\n", "outside any section", "t.ini:1", "put it under [train]");
  LOAD_FAILS("bogus = 1\n", "outside any section", "t.ini:1",
             "[model], [train], [log], [metrics], [data]");
}

static void test_unknown_section(void **state) {
  (void)state;
  LOAD_FAILS("# header\n[modle]\nz_dim = 64\n", "unknown section [modle]", "t.ini:2",
             "did you mean [model]?", "[model], [train], [log], [metrics], [data]");
  LOAD_FAILS("[train]\nbatch = 64\n[optimizer]\nlr = 1\n", "unknown section [optimizer]", "t.ini:3",
             "the sections are [model], [train], [log], [metrics], [data]");
}

static void test_bad_values(void **state) {
  (void)state;
  // The message the contract quotes, whole.
  {
    ganc_config c;
    ganc_err err = {0};
    ganc_config_defaults(&c);
    assert_int_not_equal(ganc_config_load_string(&c, "[train]\nloss = hinj\n", "t.ini", &err), 0);
    assert_string_equal(err.msg, "train.loss = 'hinj' in t.ini:2: must be one of logistic, hinge");
  }
  // int: junk, a fraction, out of range, empty, not a power of two, not in the set.
  LOAD_FAILS("[train]\nbatch = 64x\n", "train.batch = '64x' in t.ini:2",
             "must be an integer in 1..65536");
  LOAD_FAILS("[train]\nbatch = 3.5\n", "train.batch = '3.5'", "an integer in 1..65536");
  LOAD_FAILS("[train]\nbatch = 0\n", "train.batch = '0'", "an integer in 1..65536");
  LOAD_FAILS("[train]\nbatch = 65537\n", "train.batch = '65537'", "an integer in 1..65536");
  LOAD_FAILS("[train]\nbatch = 99999999999999999999\n", "train.batch", "1..65536");
  LOAD_FAILS("[train]\nbatch =\n", "train.batch = ''", "1..65536");
  LOAD_FAILS("[model]\nresolution = 48\n", "model.resolution = '48' in t.ini:2",
             "must be 0 or a power of two in 32..256");
  LOAD_FAILS("[model]\nresolution = 512\n", "model.resolution", "32..256");
  LOAD_FAILS("[model]\nchannels = 2\n", "model.channels = '2'", "must be one of 0, 1, 3");
  // uint64
  LOAD_FAILS("[train]\nseed = -1\n", "train.seed = '-1'", "an integer in 0..18446744073709551615");
  LOAD_FAILS("[train]\nseed = 18446744073709551616\n", "train.seed", "0..18446744073709551615");
  // double: junk, out of range at open and closed ends, not finite.
  LOAD_FAILS("[train]\ng_lr = 1e-4x\n", "train.g_lr = '1e-4x' in t.ini:2",
             "must be a number > 0 and <= 1");
  LOAD_FAILS("[train]\ng_lr = 0\n", "train.g_lr = '0'", "a number > 0 and <= 1");
  LOAD_FAILS("[train]\nbeta1 = 1\n", "train.beta1 = '1'", "a number >= 0 and < 1");
  LOAD_FAILS("[train]\nema_kimg = -1\n", "train.ema_kimg = '-1'", "a number >= 0");
  LOAD_FAILS("[train]\nkimg = inf\n", "train.kimg = 'inf'", "a number > 0 and <= 1000000000");
  LOAD_FAILS("[train]\nkimg = nan\n", "train.kimg = 'nan'", "a number > 0");
  LOAD_FAILS("[log]\nreport_kimg = 0\n", "log.report_kimg = '0'", "a number > 0");
  // bool, enum
  LOAD_FAILS("[train]\nmirror = maybe\n", "train.mirror = 'maybe' in t.ini:2",
             "must be true/false, yes/no, on/off or 1/0");
  LOAD_FAILS("[train]\ndevice = gpu\n", "train.device = 'gpu'", "one of auto, cpu, cuda");
  LOAD_FAILS("[model]\narch = stylegan\n", "model.arch = 'stylegan'", "one of dcgan");
  LOAD_FAILS("[train]\nprecision = fp16\n", "train.precision = 'fp16'", "one of fp32, tf32, bf16");
  LOAD_FAILS("[train]\nconv_variant = an-extremely-long-variant-name-x\n", "train.conv_variant",
             "a name of up to 31 characters");
  // An error after good lines still leaves the config as it was.
  LOAD_FAILS("[train]\nbatch = 32\nkimg = 10\n[log]\ngrid = 33\n", "log.grid = '33' in t.ini:5",
             "1..32");
}

static void test_duplicate_key(void **state) {
  (void)state;
  LOAD_FAILS("[train]\nbatch = 64\n\nbatch = 32\n", "train.batch is set twice", "t.ini:2",
             "t.ini:4");
  // Also when the section is opened again.
  LOAD_FAILS("[train]\nbatch = 64\n[log]\ngrid = 4\n[train]\nbatch = 64\n",
             "train.batch is set twice", "t.ini:2", "t.ini:6");
}

static void test_syntax_errors(void **state) {
  (void)state;
  LOAD_FAILS("[train]\nbatch = 64\nthis is not a key\n", "cannot parse 'this is not a key'",
             "t.ini:3", "key = value");
  LOAD_FAILS("[train\nbatch = 64\n", "cannot parse '[train'", "t.ini:1");
  // The earliest problem is the one reported, whichever part of the reader finds it.
  LOAD_FAILS("[train]\nnot a key\nbacth = 1\n", "t.ini:2", "cannot parse");
  char text[400];
  snprintf(text, sizeof text, "[train]\nloss = %0300d\n", 1);
  LOAD_FAILS(text, "line too long in t.ini:2");
}

static void test_missing_file(void **state) {
  (void)state;
  ganc_config c;
  ganc_err err = {0};
  ganc_config_defaults(&c);
  int rc = ganc_config_load_file(&c, "/nonexistent/nosuch.ini", &err);
  expect_fail(rc, &err, &c, "missing file", "/nonexistent/nosuch.ini", "No such file or directory",
              "configs/*.ini", (const char *)NULL);
  // A folder is not a config either.
  memset(&err, 0, sizeof err);
  rc = ganc_config_load_file(&c, CONFIGS, &err); // a folder, not a file
  expect_fail(rc, &err, &c, "a folder", CONFIGS, "not a regular file", (const char *)NULL);
  // A FIFO is refused at once: opening it for reading would wait for a writer forever.
  char *dir = tu_tmpdir("config-fifo"), fifo[4200];
  snprintf(fifo, sizeof fifo, "%s/recipe.ini", dir);
  assert_int_equal(mkfifo(fifo, 0600), 0);
  memset(&err, 0, sizeof err);
  rc = ganc_config_load_file(&c, fifo, &err);
  expect_fail(rc, &err, &c, "a FIFO", fifo, "not a regular file", (const char *)NULL);
  tu_rmdir(dir);
}

static void test_set(void **state) {
  (void)state;
  ganc_config c;
  ganc_err err = {0};
  ganc_config_defaults(&c);
  assert_int_equal(ganc_config_set(&c, "train.batch=64", &err), 0);
  assert_int_equal(c.batch, 64);
  assert_int_equal(ganc_config_set(&c, " train.g_lr = 1e-4 ", &err), 0);
  assert_true(c.g_lr == 1e-4);
  assert_int_equal(ganc_config_set(&c, "train.loss=hinge", &err), 0);
  assert_string_equal(c.loss, "hinge");
  assert_int_equal(ganc_config_set(&c, "train.mirror=on", &err), 0);
  assert_int_equal(c.mirror, 1);
  assert_int_equal(err.code, 0);

  SET_FAILS("train.batch=abc", "train.batch = 'abc' in --set", "must be an integer in 1..65536");
  SET_FAILS("train.batch=", "train.batch = '' in --set");
  SET_FAILS("train.loss=hinj", "train.loss = 'hinj' in --set: must be one of logistic, hinge");
  SET_FAILS("train.bacth=64", "unknown key train.bacth in --set", "did you mean batch?",
            "[train] has:");
  SET_FAILS("tarin.batch=64", "unknown section [tarin] in --set", "did you mean [train]?");
  SET_FAILS("trainbatch=64", "--set 'trainbatch=64'", "expected --set section.key=value",
            "train.batch=64");
  SET_FAILS("train.batch", "--set 'train.batch'", "section.key=value");
  SET_FAILS(".batch=64", "section.key=value");
  SET_FAILS("train.=64", "section.key=value");
  SET_FAILS("", "section.key=value");
}

static void test_validate(void **state) {
  (void)state;
  ganc_config c;
  ganc_err err = {0};

  ganc_config_defaults(&c);
  c.resolution = 48;
  assert_int_not_equal(ganc_config_validate(&c, &err), 0);
  expect_fail(-1, &err, NULL, "resolution 48", "model.resolution = 48",
              "0 or a power of two in 32..256", (const char *)NULL);

  ganc_config_defaults(&c);
  memset(&err, 0, sizeof err);
  assert_int_equal(ganc_config_set(&c, "model.g_base=1024", &err), 0);
  assert_int_not_equal(ganc_config_validate(&c, &err), 0);
  expect_fail(-1, &err, NULL, "g_max < g_base", "model.g_max = 512", "model.g_base = 1024",
              (const char *)NULL);

  ganc_config_defaults(&c);
  memset(&err, 0, sizeof err);
  c.d_max = 32;
  assert_int_not_equal(ganc_config_validate(&c, &err), 0);
  expect_fail(-1, &err, NULL, "d_max < d_base", "model.d_max = 32", "model.d_base = 64",
              (const char *)NULL);

  ganc_config_defaults(&c);
  memset(&err, 0, sizeof err);
  snprintf(c.device, sizeof c.device, "cpu");
  snprintf(c.backend, sizeof c.backend, "cudnn");
  assert_int_not_equal(ganc_config_validate(&c, &err), 0);
  expect_fail(-1, &err, NULL, "cudnn on the cpu", "train.backend", "train.device",
              (const char *)NULL);

  // Reduced precision is ganc's kernels' (or the CPU's), not the cuDNN baseline's; a CUDA variant
  // is not a CPU choice.
  ganc_config_defaults(&c);
  memset(&err, 0, sizeof err);
  assert_int_equal(ganc_config_set(&c, "train.precision=bf16", &err), 0);
  assert_int_equal(ganc_config_validate(&c, &err), 0);
  snprintf(c.backend, sizeof c.backend, "cudnn");
  assert_int_not_equal(ganc_config_validate(&c, &err), 0);
  expect_fail(-1, &err, NULL, "bf16 with cudnn", "train.backend = cudnn", "train.precision = bf16",
              (const char *)NULL);
  ganc_config_defaults(&c);
  memset(&err, 0, sizeof err);
  snprintf(c.device, sizeof c.device, "cpu");
  assert_int_equal(ganc_config_set(&c, "train.conv_variant=mma-bf16", &err), 0);
  assert_int_not_equal(ganc_config_validate(&c, &err), 0);
  expect_fail(-1, &err, NULL, "a variant on the cpu", "train.conv_variant = mma-bf16",
              "train.device = cpu", (const char *)NULL);
  // A CUDA graph replays ganc's own kernels on a GPU: `on` is refused with cuDNN or the CPU
  // (auto and off are fine everywhere), and the word is checked.
  ganc_config_defaults(&c);
  memset(&err, 0, sizeof err);
  assert_int_equal(ganc_config_set(&c, "train.cuda_graph=on", &err), 0);
  assert_int_equal(ganc_config_validate(&c, &err), 0);
  snprintf(c.backend, sizeof c.backend, "cudnn");
  assert_int_not_equal(ganc_config_validate(&c, &err), 0);
  expect_fail(-1, &err, NULL, "a graph with cudnn", "train.cuda_graph = on",
              "train.backend = cudnn", (const char *)NULL);
  ganc_config_defaults(&c);
  memset(&err, 0, sizeof err);
  snprintf(c.device, sizeof c.device, "cpu");
  assert_int_equal(ganc_config_set(&c, "train.cuda_graph=on", &err), 0);
  assert_int_not_equal(ganc_config_validate(&c, &err), 0);
  expect_fail(-1, &err, NULL, "a graph on the cpu", "train.cuda_graph = on", "train.device = cpu",
              (const char *)NULL);
  ganc_config_defaults(&c);
  memset(&err, 0, sizeof err);
  snprintf(c.device, sizeof c.device, "cpu");
  assert_int_equal(ganc_config_set(&c, "train.cuda_graph=off", &err), 0);
  assert_int_equal(ganc_config_validate(&c, &err), 0);
  assert_int_not_equal(ganc_config_set(&c, "train.cuda_graph=yes", &err), 0);
  expect_fail(-1, &err, NULL, "a bad graph word", "train.cuda_graph", "auto", (const char *)NULL);

  // Fields a program filled in itself are checked against the same ranges.
  ganc_config_defaults(&c);
  memset(&err, 0, sizeof err);
  snprintf(c.loss, sizeof c.loss, "wgan");
  assert_int_not_equal(ganc_config_validate(&c, &err), 0);
  expect_fail(-1, &err, NULL, "bad loss", "train.loss = wgan", "one of logistic, hinge",
              (const char *)NULL);

  // snapshot_kimg below report_kimg is fine.
  ganc_config_defaults(&c);
  memset(&err, 0, sizeof err);
  c.report_kimg = 10;
  c.snapshot_kimg = 1;
  assert_int_equal(ganc_config_validate(&c, &err), 0);
}

// ---- the programs' command lines, and the training line's ETA -----------------------------------
// Every mistake on a command line is exit 2 with a message that names the option; --help is exit
// 0. (Under a LeakSanitizer build a leak on these paths turns the exit status into 1, so these
// checks also guard the early returns.)

// Runs `cmd` (a shell command line) with stdout and stderr into <dir>/cli.txt; returns the exit
// status, and the output in *text (malloc'd) when text is not NULL.
static int cli(const char *dir, char **text, const char *cmd) {
  int rc = tu_system("%s >%s/cli.txt 2>&1", cmd, dir);
  char p[4400];
  snprintf(p, sizeof p, "%s/cli.txt", dir);
  char *t = read_text(p);
  if (text)
    *text = t;
  else
    free(t);
  return rc;
}

static void expect_cli(const char *dir, int want_rc, const char *cmd, const char *want_text) {
  char *t;
  int rc = cli(dir, &t, cmd);
  if (rc != want_rc) fail_msg("`%s`: exit %d, expected %d:\n%s", cmd, rc, want_rc, t);
  if (want_text && !strstr(t, want_text))
    fail_msg("`%s`: expected '%s' in:\n%s", cmd, want_text, t);
  free(t);
}

static void test_cli_usage(void **state) {
  (void)state;
  char *dir = tu_tmpdir("cli-usage");
  char cmd[8192];
  const char *T = GANC_TRAIN_BIN, *S = GANC_SAMPLE_BIN;
  const char *progs[2] = {T, S};
  for (int p = 0; p < 2; p++) {
    snprintf(cmd, sizeof cmd, "%s --help", progs[p]);
    expect_cli(dir, 0, cmd, "usage:");
    snprintf(cmd, sizeof cmd, "%s", progs[p]);
    expect_cli(dir, 2, cmd, "usage:");
    // An unknown option is called unknown, wherever it stands (it was "needs a value" when last).
    const char *unknown[] = {"--bogus", "--bogus 1", "--bogus=1", "-x"};
    for (int k = 0; k < 4; k++) {
      snprintf(cmd, sizeof cmd, "%s --out %s/x.png %s", progs[p], dir, unknown[k]);
      expect_cli(dir, 2, cmd, "unknown option");
    }
    // A missing value, the next option taken for a value, an empty value.
    snprintf(cmd, sizeof cmd, "%s --out", progs[p]);
    expect_cli(dir, 2, cmd, "--out needs a value");
    snprintf(cmd, sizeof cmd, "%s --out --device cpu", progs[p]);
    expect_cli(dir, 2, cmd, "--out needs a value");
    snprintf(cmd, sizeof cmd, "%s --out ''", progs[p]);
    expect_cli(dir, 2, cmd, "--out is given an empty value");
    snprintf(cmd, sizeof cmd, "%s --out= --device cpu", progs[p]);
    expect_cli(dir, 2, cmd, "--out is given an empty value");
  }
  // ganc-train: an empty --data (it used to reach "error:  is not a readable folder").
  snprintf(cmd, sizeof cmd, "%s --data '' --config %sfmnist32.ini --out %s/run", T, CONFIGS, dir);
  expect_cli(dir, 2, cmd, "--data is given an empty value");
  snprintf(cmd, sizeof cmd, "%s --data= --config %sfmnist32.ini --out %s/run", T, CONFIGS, dir);
  expect_cli(dir, 2, cmd, "--data is given an empty value");
  snprintf(cmd, sizeof cmd, "%s --print-config", T);
  expect_cli(dir, 0, cmd, "[train]");
  // ganc-sample: numbers and lists are checked before any checkpoint is read.
  const char *bad[][2] = {{"--seeds abc", "seed list 'abc'"},
                          {"--seeds 5-3", "seed list '5-3'"},
                          {"--seeds 0-99999999999999999999", "is not like"},
                          {"--seeds 0-9223372036854775807", "more than 100000 images"},
                          {"--n -1 --seed 0", "--n expects a whole number"},
                          {"--n 4 --seed 1e3", "--seed expects a whole number"},
                          {"--batch 99999999999999999999", "--batch expects"},
                          {"--truncation nan", "--truncation expects"},
                          {"--grid 4294967297x8", "--grid expects RxC"},
                          {"--grid 8", "--grid expects RxC"},
                          {"--no-ema=1", "--no-ema takes no value"}};
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    snprintf(cmd, sizeof cmd, "%s --ckpt %s/none.h5 --out %s/x.png %s", S, dir, dir, bad[k][0]);
    expect_cli(dir, 2, cmd, bad[k][1]);
  }
  tu_rmdir(dir);
}

// A checkpoint whose data_dir is empty: refused naming the checkpoint, never "error:  is ...".
static void test_cli_empty_data_dir(void **state) {
  (void)state;
  char *dir = tu_tmpdir("cli-datadir");
  char data[4400], cfg[4400], run[4400], cmd[16384];
  snprintf(data, sizeof data, "%s/data", dir);
  snprintf(cfg, sizeof cfg, "%s/tiny.ini", dir);
  snprintf(run, sizeof run, "%s/run", dir);
  assert_int_equal(ganc_mkdir_p(data), 0);
  tu_write_dataset(data, 32, 1, 64, 0, 0);
  FILE *f = fopen(cfg, "w");
  assert_non_null(f);
  fputs("[model]\nresolution = 32\nchannels = 1\nz_dim = 8\ng_base = 4\nd_base = 4\n[train]\n"
        "batch = 8\nkimg = 0.016\nthreads = 1\n[log]\nreport_kimg = 0.016\n"
        "snapshot_kimg = 0.016\ngrid = 2\n",
        f);
  fclose(f);
  snprintf(cmd, sizeof cmd, "%s --data %s --config %s --out %s --device cpu", GANC_TRAIN_BIN, data,
           cfg, run);
  expect_cli(dir, 0, cmd, NULL);
  char *ckpt = tu_latest_ckpt(run);
  hid_t h = H5Fopen(ckpt, H5F_ACC_RDWR, H5P_DEFAULT);
  assert_true(h >= 0);
  assert_true(H5Adelete(h, "data_dir") >= 0);
  assert_true(ganc_h5_attr_write_str(h, "data_dir", "") >= 0);
  H5Fclose(h);
  char *t;
  snprintf(cmd, sizeof cmd, "%s --out %s --resume --set train.kimg=0.032", GANC_TRAIN_BIN, run);
  assert_int_equal(cli(dir, &t, cmd), 2);
  if (strstr(t, "error:  is") || !strstr(t, ckpt))
    fail_msg("a message naming %s, got:\n%s", ckpt, t);
  free(t);
  free(ckpt);
  tu_rmdir(dir);
}

static void test_eta_format(void **state) {
  (void)state;
  struct {
    double s;
    const char *want;
  } cases[] = {{0, "00:00"},
               {59.4, "00:59"},
               {3599.4, "59:59"},
               {3600, "1:00:00"},
               {86399, "23:59:59"},
               {86400, "1d 00:00:00"},
               {90061, "1d 01:01:01"},
               {2.2e9, "25462d 23:06:40"}, // past INT_MAX seconds: was negative
               {8639999999.0, "99999d 23:59:59"},
               {8640000000.0, ">99999d"},
               {1e300, ">99999d"},
               {INFINITY, ">99999d"},
               {-1, "--:--"},
               {NAN, "--:--"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char buf[24];
    ganc_format_duration(cases[i].s, buf, sizeof buf);
    if (strcmp(buf, cases[i].want))
      fail_msg("%g s: '%s', expected '%s'", cases[i].s, buf, cases[i].want);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults_round_trip),
      cmocka_unit_test(test_awkward_values_round_trip),
      cmocka_unit_test(test_reference_ini_is_defaults),
      cmocka_unit_test(test_shipped_configs),
      cmocka_unit_test(test_syntax_accepted),
      cmocka_unit_test(test_unknown_key),
      cmocka_unit_test(test_unknown_section),
      cmocka_unit_test(test_bad_values),
      cmocka_unit_test(test_duplicate_key),
      cmocka_unit_test(test_syntax_errors),
      cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_set),
      cmocka_unit_test(test_validate),
      cmocka_unit_test(test_cli_usage),
      cmocka_unit_test(test_cli_empty_data_dir),
      cmocka_unit_test(test_eta_format),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
