// test_fmnist.c — the Fashion-MNIST import as the root scripts make it: 60,000 images padded to
// 32x32 gray with black, 10 classes of 6,000, pixels equal to the IDX file's; plus IDX edge cases
// (no labels file beside it, a truncated file). Skipped when Debian's dataset-fashion-mnist is
// absent.
// cmocka.h needs these three first, so the block is kept out of include sorting.
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
// clang-format on

#include "core/check.h"
#include "core/util.h"
#include "data/idx.h"
#include "data/shard.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char g_idx[4300];

static void test_import(void **state) {
  (void)state;
  char *root = tu_tmpdir("fmnist");
  char out[4400];
  snprintf(out, sizeof out, "%s/fashion-mnist", root);
  assert_int_equal(tu_system("%s %s %s --resolution 32 --transform pad --background black "
                             ">%s/log.txt 2>&1",
                             GANC_PREP_BIN, g_idx, out, root),
                   0);
  ganc_dataset ds;
  ganc_err err = {0};
  assert_int_equal(ganc_dataset_open(out, &ds, &err), 0);
  assert_int_equal(ds.count, 60000);
  assert_int_equal(ds.meta.resolution, 32);
  assert_int_equal(ds.meta.channels, 1);
  assert_int_equal(ds.meta.nclasses, 10);
  assert_string_equal(ds.meta.class_names[0], "T-shirt/top");
  assert_string_equal(ds.meta.class_names[9], "Ankle boot");
  int64_t counts[10];
  assert_int_equal(ganc_dataset_verify(&ds, counts, NULL, &err), 0);
  for (int k = 0; k < 10; k++)
    assert_int_equal(counts[k], 6000);

  ganc_idx idx;
  assert_int_equal(ganc_idx_load(g_idx, &idx, &err), 0);
  uint8_t *px = xmalloc((size_t)60000 * 32 * 32);
  int32_t *lab = xmalloc(sizeof(int32_t) * 60000);
  int64_t at = 0;
  for (int k = 0; k < ds.nshards; k++) {
    assert_int_equal(ganc_shard_read(&ds, k, 0, ds.shards[k].count, px + at * 1024, lab + at, &err),
                     0);
    at += ds.shards[k].count;
  }
  // Image i is IDX image i with a 2-pixel black border, unchanged inside; labels match.
  for (int i = 0; i < 60000; i += 997) {
    const uint8_t *im = px + (size_t)i * 1024;
    for (int y = 0; y < 32; y++)
      for (int x = 0; x < 32; x++) {
        int inside = x >= 2 && x < 30 && y >= 2 && y < 30;
        uint8_t want = inside ? idx.images[(size_t)i * 784 + (y - 2) * 28 + (x - 2)] : 0;
        if (im[y * 32 + x] != want)
          fail_msg("image %d pixel (%d,%d): %d != %d", i, x, y, im[y * 32 + x], want);
      }
    assert_int_equal(lab[i], idx.labels[i]);
  }
  char s[256];
  assert_int_equal(ganc_dataset_source(&ds, 59999, s, sizeof s, &err), 0);
  assert_string_equal(s, "train-images-idx3-ubyte.gz#59999");
  free(px);
  free(lab);
  ganc_idx_free(&idx);
  ganc_dataset_close(&ds);
  tu_rmdir(root);
}

static void test_idx_edges(void **state) {
  (void)state;
  char *root = tu_tmpdir("fmnist-edges");
  // The images file alone (no labels beside it): an unlabelled dataset.
  assert_int_equal(tu_system("cp %s %s/train-images-idx3-ubyte.gz", g_idx, root), 0);
  assert_int_equal(tu_system("%s %s/train-images-idx3-ubyte.gz %s/out --resolution 8 "
                             "--max-images 50 >%s/log.txt 2>&1",
                             GANC_PREP_BIN, root, root, root),
                   0);
  char out[4400];
  snprintf(out, sizeof out, "%s/out", root);
  ganc_dataset ds;
  ganc_err err = {0};
  assert_int_equal(ganc_dataset_open(out, &ds, &err), 0);
  assert_int_equal(ds.count, 50);
  assert_int_equal(ds.meta.nclasses, 0);
  ganc_dataset_close(&ds);
  // A truncated IDX file: exit 2 with a message, no output.
  assert_int_equal(
      tu_system("gzip -dc %s | head -c 100000 > %s/cut-images-idx3-ubyte", g_idx, root), 0);
  assert_int_equal(tu_system("%s %s/cut-images-idx3-ubyte %s/out2 2>%s/err.txt", GANC_PREP_BIN,
                             root, root, root),
                   2);
  char p[4400];
  snprintf(p, sizeof p, "%s/err.txt", root);
  uint8_t *e;
  size_t n;
  assert_int_equal(ganc_read_file(p, 1 << 20, &e, &n), 0);
  if (!strstr((char *)e, "truncated")) fail_msg("expected 'truncated' in: %s", e);
  free(e);
  snprintf(p, sizeof p, "%s/out2", root);
  assert_false(ganc_is_dir(p));
  tu_rmdir(root);
}

int main(void) {
  snprintf(g_idx, sizeof g_idx, "%s/train-images-idx3-ubyte.gz", GANC_FMNIST_DIR);
  if (!ganc_is_file(g_idx)) {
    printf("SKIP: %s is missing (apt-get install dataset-fashion-mnist)\n", g_idx);
    return 77;
  }
  ganc_h5_quiet();
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_import),
                                     cmocka_unit_test(test_idx_edges)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
