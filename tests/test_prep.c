// test_prep.c — ganc-prep end to end on folders the test makes itself: every PNG colour type and
// bit depth and the JPEG kinds, bad files of every sort (each skipped with its own line), nested
// labelled folders, duplicates, channel choice, --max-images, --force, determinism across --jobs,
// an interrupted run, usage errors, and --info on a damaged shard.
// cmocka.h needs these three first, so the block is kept out of include sorting.
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
// clang-format on

#include "core/check.h"
#include "core/util.h"
#include "data/shard.h"
#include "mkimg.h"
#include "testutil.h"

#include <png.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *slurp(const char *path) {
  uint8_t *b;
  size_t n;
  if (ganc_read_file(path, 1 << 26, &b, &n) != 0) return xstrdup("");
  return (char *)b;
}

// Runs ganc-prep with `args`; stdout and stderr go to <dir>/out.txt and <dir>/err.txt.
static int prep(const char *dir, const char *args, char **out, char **err) {
  int rc = tu_system("%s %s >%s/out.txt 2>%s/err.txt", GANC_PREP_BIN, args, dir, dir);
  char p[4300];
  snprintf(p, sizeof p, "%s/out.txt", dir);
  char *o = slurp(p);
  snprintf(p, sizeof p, "%s/err.txt", dir);
  char *e = slurp(p);
  if (out)
    *out = o;
  else
    free(o);
  if (err)
    *err = e;
  else
    free(e);
  return rc;
}

static void must_contain(const char *text, const char *what) {
  if (!strstr(text, what)) fail_msg("expected to find '%s' in:\n%s", what, text);
}

static void mk(const char *dir, const char *rel) {
  char p[4300];
  snprintf(p, sizeof p, "%s/%s", dir, rel);
  char *slash = strrchr(p, '/');
  *slash = 0;
  assert_int_equal(ganc_mkdir_p(p), 0);
}

// Writes an 8-bit image file of the given kind at dir/rel with pattern `seed`.
static void write_png(const char *dir, const char *rel, int w, int h, int ct, uint32_t seed) {
  mk(dir, rel);
  int c = mkimg_png_channels(ct);
  uint8_t *px = xmalloc((size_t)w * h * c);
  mkimg_pattern(px, w, h, c, seed);
  char p[4300];
  snprintf(p, sizeof p, "%s/%s", dir, rel);
  assert_int_equal(mkimg_png(p, w, h, ct, 8, 0, px, NULL, 0, NULL, 0), 0);
  free(px);
}

static void write_jpeg(const char *dir, const char *rel, int w, int h, int comps, uint32_t seed) {
  mk(dir, rel);
  uint8_t *px = xmalloc((size_t)w * h * comps);
  mkimg_pattern(px, w, h, comps, seed);
  char p[4300];
  snprintf(p, sizeof p, "%s/%s", dir, rel);
  assert_int_equal(mkimg_jpeg(p, w, h, comps, 90, px), 0);
  free(px);
}

static void write_bytes(const char *dir, const char *rel, const void *data, size_t n) {
  mk(dir, rel);
  char p[4300];
  snprintf(p, sizeof p, "%s/%s", dir, rel);
  FILE *f = fopen(p, "wb");
  assert_non_null(f);
  if (n) fwrite(data, 1, n, f);
  fclose(f);
}

static void open_ds(const char *dir, ganc_dataset *ds) {
  ganc_err err = {0};
  if (ganc_dataset_open(dir, ds, &err)) fail_msg("open %s: %s", dir, err.msg);
}

// ---- every colour type and bit depth, plus JPEG kinds
// --------------------------------------------
static void test_all_kinds(void **state) {
  (void)state;
  char *root = tu_tmpdir("prep-kinds");
  char src[4300], out[4300];
  snprintf(src, sizeof src, "%s/src", root);
  snprintf(out, sizeof out, "%s/out", root);
  struct {
    int ct, depths[5];
  } kinds[] = {{PNG_COLOR_TYPE_GRAY, {1, 2, 4, 8, 16}},
               {PNG_COLOR_TYPE_GRAY_ALPHA, {8, 16}},
               {PNG_COLOR_TYPE_PALETTE, {1, 2, 4, 8}},
               {PNG_COLOR_TYPE_RGB, {8, 16}},
               {PNG_COLOR_TYPE_RGB_ALPHA, {8, 16}}};
  int files = 0;
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
    int ch = mkimg_png_channels(kinds[k].ct);
    for (int d = 0; d < 5 && kinds[k].depths[d]; d++) {
      for (int il = 0; il < 2; il++) {
        int bd = kinds[k].depths[d], w = 23 + files, h = 19 + files;
        size_t n = (size_t)w * h * ch;
        uint8_t *px8 = xmalloc(n);
        uint16_t *px16 = xmalloc(n * 2);
        mkimg_pattern(px8, w, h, ch, (uint32_t)files);
        int maxv = kinds[k].ct == PNG_COLOR_TYPE_PALETTE ? (1 << bd) - 1 : (1 << bd) - 1;
        for (size_t i = 0; i < n; i++) {
          px16[i] = (uint16_t)(px8[i] * 257u);
          if (bd < 8) px8[i] = (uint8_t)(px8[i] * maxv / 255);
        }
        uint8_t pal[256 * 3], trns[256];
        for (int i = 0; i < 256; i++) {
          pal[3 * i] = (uint8_t)i;
          pal[3 * i + 1] = (uint8_t)(255 - i);
          pal[3 * i + 2] = (uint8_t)(i * 7);
          trns[i] = (uint8_t)(255 - i / 2);
        }
        char rel[64], p[4400];
        snprintf(rel, sizeof rel, "png/ct%d-bd%d-il%d.png", kinds[k].ct, bd, il);
        mk(src, rel);
        snprintf(p, sizeof p, "%s/%s", src, rel);
        int pal_n = kinds[k].ct == PNG_COLOR_TYPE_PALETTE ? 1 << bd : 0;
        assert_int_equal(mkimg_png(p, w, h, kinds[k].ct, bd, il, bd == 16 ? (void *)px16 : px8,
                                   pal_n ? pal : NULL, pal_n, il && pal_n ? trns : NULL,
                                   il && pal_n ? pal_n : 0),
                         0);
        files++;
        free(px8);
        free(px16);
      }
    }
  }
  write_jpeg(src, "jpeg/gray.jpg", 40, 30, 1, 1);
  write_jpeg(src, "jpeg/rgb.jpeg", 40, 30, 3, 2);
  write_jpeg(src, "jpeg/cmyk.jpg", 40, 30, 4, 3);
  write_jpeg(src, "jpeg/no-extension", 64, 48, 3, 4); // recognised by content
  files += 4;
  char args[9000], *o, *e;
  snprintf(args, sizeof args, "%s %s --resolution 16 --jobs 2", src, out);
  int rc = prep(root, args, &o, &e);
  if (rc != 0) fail_msg("ganc-prep failed (%d):\n%s\n%s", rc, o, e);
  char want[64];
  snprintf(want, sizeof want, "wrote %d images (16x16x3)", files);
  must_contain(o, want);
  must_contain(o, "skipped 0");
  // Two first-level folders (png, jpeg) → labelled by default.
  must_contain(o, "classes (2): jpeg 4, png");
  free(o);
  free(e);
  snprintf(args, sizeof args, "--info %s", out);
  assert_int_equal(prep(root, args, &o, NULL), 0);
  must_contain(o, "verified");
  free(o);
  tu_rmdir(root);
}

// ---- bad input ----------------------------------------------------------------------------------
static void test_bad_files(void **state) {
  (void)state;
  char *root = tu_tmpdir("prep-bad");
  char src[4300], out[4300], p[4400];
  snprintf(src, sizeof src, "%s/src", root);
  snprintf(out, sizeof out, "%s/out", root);
  write_png(src, "good1.png", 32, 32, PNG_COLOR_TYPE_RGB, 1);
  write_jpeg(src, "good2.jpg", 32, 32, 3, 2);
  write_bytes(src, "zero.png", "", 0);
  write_bytes(src, "notes.txt", "hello, I am text\n", 17);
  uint8_t noise[3000];
  for (int i = 0; i < 3000; i++)
    noise[i] = (uint8_t)(i * 131 + 7);
  write_bytes(src, "noise.jpg", noise, sizeof noise);
  uint8_t sig[40] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  memset(sig + 8, 0x41, 32);
  write_bytes(src, "garbage-after-signature.png", sig, sizeof sig);
  // Truncated PNG and JPEG: real files cut in half.
  write_png(src, "cut.png", 64, 64, PNG_COLOR_TYPE_RGB, 5);
  write_jpeg(src, "cut.jpg", 64, 64, 3, 6);
  uint8_t *b;
  size_t n;
  snprintf(p, sizeof p, "%s/cut.png", src);
  assert_int_equal(mkimg_read_file(p, &b, &n), 0);
  tu_truncate(p, (long)n / 2);
  free(b);
  snprintf(p, sizeof p, "%s/cut.jpg", src);
  assert_int_equal(mkimg_read_file(p, &b, &n), 0);
  tu_truncate(p, (long)n / 2);
  free(b);
  write_png(src, "tiny.png", 3, 3, PNG_COLOR_TYPE_GRAY, 7);     // below --min-size 8
  write_png(src, "huge.png", 300, 200, PNG_COLOR_TYPE_GRAY, 8); // above --max-pixels 50000
  write_bytes(src, ".hidden.png", "x", 1);                      // ignored, not an error
  char args[9000], *o, *e;
  snprintf(args, sizeof args, "%s %s --resolution 8 --max-pixels 50000 --min-size 8", src, out);
  int rc = prep(root, args, &o, &e);
  if (rc != 0) fail_msg("ganc-prep should succeed with 2 good images (%d):\n%s\n%s", rc, o, e);
  must_contain(o, "wrote 2 images");
  must_contain(o, "skipped 8:");
  const char *names[] = {"skip: zero.png: empty",
                         "skip: notes.txt: not a PNG or JPEG",
                         "skip: noise.jpg: not a PNG",
                         "skip: garbage-after-signature.png:",
                         "skip: cut.png:",
                         "skip: cut.jpg:",
                         "skip: tiny.png: too small",
                         "skip: huge.png: too large"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    must_contain(e, names[i]);
  must_contain(o, "ignored: 1 hidden");
  free(o);
  free(e);

  // Only bad files: exit 2, a message, and no OUT_DIR.
  char src2[4300], out2[4300];
  snprintf(src2, sizeof src2, "%s/allbad", root);
  snprintf(out2, sizeof out2, "%s/out2", root);
  write_bytes(src2, "a.png", "", 0);
  write_bytes(src2, "b.txt", "text", 4);
  snprintf(args, sizeof args, "%s %s", src2, out2);
  assert_int_equal(prep(root, args, NULL, &e), 2);
  must_contain(e, "no image could be used");
  assert_false(ganc_is_dir(out2));
  free(e);
  // An empty folder: exit 2.
  char empty[4300];
  snprintf(empty, sizeof empty, "%s/empty", root);
  assert_int_equal(ganc_mkdir_p(empty), 0);
  snprintf(args, sizeof args, "%s %s", empty, out2);
  assert_int_equal(prep(root, args, NULL, &e), 2);
  must_contain(e, "holds no files");
  free(e);
  tu_rmdir(root);
}

// ---- labels, sources, duplicates, channels ------------------------------------------------------
static void test_labels_and_duplicates(void **state) {
  (void)state;
  char *root = tu_tmpdir("prep-labels");
  char src[4300], out[4300];
  snprintf(src, sizeof src, "%s/src", root);
  snprintf(out, sizeof out, "%s/out", root);
  write_png(src, "dogs/d1.png", 20, 20, PNG_COLOR_TYPE_GRAY, 10);
  write_png(src, "dogs/deep/er/d2.png", 20, 30, PNG_COLOR_TYPE_GRAY, 11);
  write_png(src, "cats/c1.png", 20, 20, PNG_COLOR_TYPE_GRAY, 12);
  write_png(src, "cats/c1-copy.png", 20, 20, PNG_COLOR_TYPE_GRAY, 12); // same pixels
  write_jpeg(src, "cats/c2.jpg", 30, 20, 1, 13);
  write_png(src, "loose.png", 20, 20, PNG_COLOR_TYPE_GRAY, 14); // outside the class folders
  char args[9000], *o, *e;
  snprintf(args, sizeof args, "%s %s --resolution 16", src, out);
  int rc = prep(root, args, &o, &e);
  if (rc != 0) fail_msg("%s\n%s", o, e);
  must_contain(o, "wrote 4 images (16x16x1)"); // all gray → 1 channel
  must_contain(o, "classes (2): cats 2, dogs 2");
  must_contain(o, "duplicates dropped: 1");
  must_contain(o, "ignored: 1 files directly in");
  free(o);
  free(e);
  ganc_dataset ds;
  open_ds(out, &ds);
  assert_int_equal(ds.count, 4);
  assert_int_equal(ds.meta.nclasses, 2);
  assert_string_equal(ds.meta.class_names[0], "cats");
  // Sorted order: cats/c1-copy.png (kept: first in order), cats/c2.jpg, dogs/d1.png, dogs/deep/...
  const char *want[] = {"cats/c1-copy.png", "cats/c2.jpg", "dogs/d1.png", "dogs/deep/er/d2.png"};
  int32_t labels[4];
  ganc_err err = {0};
  assert_int_equal(ganc_shard_read(&ds, 0, 0, 4, NULL, labels, &err), 0);
  for (int i = 0; i < 4; i++) {
    char s[256];
    assert_int_equal(ganc_dataset_source(&ds, i, s, sizeof s, &err), 0);
    assert_string_equal(s, want[i]);
    assert_int_equal(labels[i], i < 2 ? 0 : 1);
  }
  ganc_dataset_close(&ds);

  // --labels none: unlabelled, and the loose file is an image like the others.
  snprintf(args, sizeof args, "%s %s --resolution 16 --labels none --force", src, out);
  assert_int_equal(prep(root, args, &o, NULL), 0);
  must_contain(o, "wrote 5 images");
  must_contain(o, "classes: none");
  free(o);
  // One colour image makes the dataset RGB; --channels 1 forces gray.
  write_jpeg(src, "cats/colour.jpg", 20, 20, 3, 15);
  snprintf(args, sizeof args, "%s %s --resolution 16 --force", src, out);
  assert_int_equal(prep(root, args, &o, NULL), 0);
  must_contain(o, "16x16x3");
  free(o);
  snprintf(args, sizeof args, "%s %s --resolution 16 --force --channels 1 --max-images 3", src,
           out);
  assert_int_equal(prep(root, args, &o, NULL), 0);
  must_contain(o, "wrote 3 images (16x16x1)");
  free(o);
  tu_rmdir(root);
}

// ---- output folder rules, determinism, interruption, usage
// ---------------------------------------
static void read_all(const char *dir, uint8_t **px, int64_t *n) {
  ganc_dataset ds;
  open_ds(dir, &ds);
  ganc_err err = {0};
  *n = ds.count;
  *px = xmalloc((size_t)ds.count * ds.image_bytes);
  for (int k = 0; k < ds.nshards; k++)
    assert_int_equal(ganc_shard_read(&ds, k, 0, ds.shards[k].count,
                                     *px + (size_t)ds.shards[k].first * ds.image_bytes, NULL, &err),
                     0);
  ganc_dataset_close(&ds);
}

// SRC here has files and no sub-folders: the path that sorted a NULL list of sub-folders
// (qsort(NULL, 0, ...), undefined behaviour that UBSan reports); an empty folder sorts no files.
static void test_outdir_jobs_usage(void **state) {
  (void)state;
  char *root = tu_tmpdir("prep-out");
  char src[4300], a[4300], b[4300];
  snprintf(src, sizeof src, "%s/src", root);
  snprintf(a, sizeof a, "%s/a", root);
  snprintf(b, sizeof b, "%s/b", root);
  for (int i = 0; i < 60; i++) {
    char rel[64];
    snprintf(rel, sizeof rel, "img%03d.%s", i, i % 3 ? "png" : "jpg");
    if (i % 3)
      write_png(src, rel, 40 + i, 30 + i % 7, PNG_COLOR_TYPE_RGB, (uint32_t)i);
    else
      write_jpeg(src, rel, 50 + i, 45, 3, (uint32_t)i);
  }
  char args[9000], *e;
  snprintf(args, sizeof args, "%s %s --resolution 32 --jobs 1 --shard-size 7", src, a);
  assert_int_equal(prep(root, args, NULL, NULL), 0);
  snprintf(args, sizeof args, "%s %s --resolution 32 --jobs 2 --shard-size 7", src, b);
  assert_int_equal(prep(root, args, NULL, NULL), 0);
  uint8_t *pa, *pb;
  int64_t na, nb;
  read_all(a, &pa, &na);
  read_all(b, &pb, &nb);
  assert_int_equal(na, 60);
  assert_int_equal(nb, 60);
  assert_memory_equal(pa, pb, (size_t)60 * 32 * 32 * 3); // --jobs does not change the output
  free(pa);
  free(pb);
  char shard[4400];
  snprintf(shard, sizeof shard, "%s/shard-00008.h5", a); // 60 / 7 → 9 shards
  assert_true(ganc_is_file(shard));

  // Trailing slashes name the same folders (and --force replaces the old output).
  snprintf(args, sizeof args, "%s/ %s/ --resolution 32 --shard-size 7 --force", src, a);
  assert_int_equal(prep(root, args, NULL, NULL), 0);
  // An existing OUT_DIR is refused without --force.
  snprintf(args, sizeof args, "%s %s --resolution 32", src, a);
  assert_int_equal(prep(root, args, NULL, &e), 2);
  must_contain(e, "--force");
  free(e);

  // --info on a damaged shard: exit 2, naming it.
  snprintf(shard, sizeof shard, "%s/shard-00004.h5", a);
  tu_corrupt_chunk(shard, "images", 0);
  snprintf(args, sizeof args, "--info %s", a);
  assert_int_equal(prep(root, args, NULL, &e), 2);
  must_contain(e, "shard-00004.h5");
  free(e);
  tu_truncate(shard, 1000);
  assert_int_equal(prep(root, args, NULL, &e), 2);
  must_contain(e, "shard-00004.h5");
  free(e);

  // Usage errors: exit 2 with the allowed values.
  const char *bad[][2] = {{"--resolution 48", "power of two"},
                          {"--resolution 2048", "4..1024"},
                          {"--transform squash", "center-crop, resize or pad"},
                          {"--channels 2", "1 or 3"},
                          {"--background grey", "white or black"},
                          {"--labels maybe", "auto or none"},
                          {"--frobnicate 1", "unknown option --frobnicate"},
                          // Unknown, even when last or single-dash (was "needs a value").
                          {"--frobnicate", "unknown option --frobnicate"},
                          {"-x", "unknown option -x"},
                          {"--resolution", "--resolution needs a value"},
                          {"--resolution --force", "--resolution needs a value"},
                          {"--resolution ''", "--resolution is given an empty value"},
                          {"--resolution=", "--resolution is given an empty value"},
                          // Numbers out of range, NaN, huge: no undefined float-to-int cast.
                          {"--resolution nan", "whole number in 4..1024"},
                          {"--resolution 1e30", "whole number in 4..1024"},
                          {"--max-images -1", "whole number in 1.."},
                          {"--max-images 1e300", "whole number in 1.."},
                          {"--jobs 0", "whole number in 1..1024"},
                          {"--shard-size 2.5", "whole number in 1.."},
                          {"--force=yes", "--force takes no value"},
                          {"--class-names a,b", "IDX files only"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(args, sizeof args, "%s %s/x %s", src, root, bad[i][0]);
    assert_int_equal(prep(root, args, NULL, &e), 2);
    must_contain(e, bad[i][1]);
    free(e);
  }
  snprintf(args, sizeof args, "%s/does-not-exist %s/x", root, root);
  assert_int_equal(prep(root, args, NULL, &e), 2);
  free(e);
  snprintf(args, sizeof args, "'' %s/x", root);
  assert_int_equal(prep(root, args, NULL, &e), 2);
  must_contain(e, "an empty argument");
  free(e);
  assert_int_equal(prep(root, "--info ''", NULL, &e), 2);
  must_contain(e, "--info is given an empty value");
  free(e);
  char *o;
  assert_int_equal(prep(root, "--help", &o, NULL), 0);
  must_contain(o, "usage: ganc-prep");
  free(o);
  assert_int_equal(prep(root, "", NULL, &e), 2);
  must_contain(e, "usage: ganc-prep");
  free(e);
  tu_rmdir(root);
}

// A run killed part-way leaves no OUT_DIR (only a .tmp- folder, which the next run removes).
static void test_interrupted(void **state) {
  (void)state;
  char idx[4300];
  snprintf(idx, sizeof idx, "%s/train-images-idx3-ubyte.gz", GANC_FMNIST_DIR);
  if (!ganc_is_file(idx)) skip();
  char *root = tu_tmpdir("prep-kill");
  char out[4300];
  snprintf(out, sizeof out, "%s/out", root);
  // First a SIGKILL (leaves OUT_DIR.tmp-<pid>), then a SIGINT (cleans up, and the run it
  // interrupts has already removed the killed run's leftovers on start-up).
  char tmp[2][4400];
  for (int attempt = 0; attempt < 2; attempt++) {
    pid_t pid = fork();
    if (pid == 0) {
      freopen("/dev/null", "w", stdout);
      freopen("/dev/null", "w", stderr);
      execl(GANC_PREP_BIN, GANC_PREP_BIN, idx, out, "--resolution", "64", "--jobs", "1", "--force",
            (char *)NULL);
      _exit(127);
    }
    snprintf(tmp[attempt], sizeof tmp[attempt], "%s.tmp-%ld", out, (long)pid);
    for (int i = 0; i < 5000 && !ganc_is_dir(tmp[attempt]); i++)
      usleep(1000);
    assert_true(ganc_is_dir(tmp[attempt]));
    usleep(50000);
    kill(pid, attempt == 0 ? SIGKILL : SIGINT);
    int st;
    waitpid(pid, &st, 0);
    assert_false(ganc_is_dir(out)); // never an OUT_DIR that looks complete
    if (attempt == 0) assert_true(ganc_is_dir(tmp[0]));
    if (attempt == 1) {
      assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 130);
      assert_false(ganc_is_dir(tmp[0])); // stale leftovers removed
      assert_false(ganc_is_dir(tmp[1])); // SIGINT cleaned up after itself
    }
  }
  char args[9000];
  snprintf(args, sizeof args, "%s %s --resolution 8 --max-images 100", idx, out);
  assert_int_equal(prep(root, args, NULL, NULL), 0);
  assert_true(ganc_is_dir(out));
  tu_rmdir(root);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_all_kinds),
      cmocka_unit_test(test_bad_files),
      cmocka_unit_test(test_labels_and_duplicates),
      cmocka_unit_test(test_outdir_jobs_usage),
      cmocka_unit_test(test_interrupted),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
