// test_shard.c — the HDF5 shard format: round trip (bytes in = bytes out), metadata, and every way
// a folder of shards can be wrong (mixed shapes, foreign files, damaged and truncated shards).
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
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_round_trip(void **state) {
  (void)state;
  char *dir = tu_tmpdir("shard-roundtrip");
  const int R = 16, C = 3, K = 5;
  const int64_t N = 1000, S = 300; // 4 shards: 300, 300, 300, 100
  tu_write_dataset(dir, R, C, N, S, K);
  ganc_dataset ds;
  ganc_err err = {0};
  assert_int_equal(ganc_dataset_open(dir, &ds, &err), 0);
  assert_int_equal(ds.nshards, 4);
  assert_int_equal(ds.count, N);
  assert_int_equal(ds.meta.resolution, R);
  assert_int_equal(ds.meta.channels, C);
  assert_int_equal(ds.meta.nclasses, K);
  assert_string_equal(ds.meta.class_names[3], "class3");
  assert_string_equal(ds.meta.source_root, "/src/root");
  assert_int_equal(ds.shards[3].count, 100);
  assert_int_equal(ds.shards[2].first, 600);
  size_t ib = ds.image_bytes;
  uint8_t *got = xmalloc(ib * 300), *want = xmalloc(ib);
  int32_t lab[300];
  for (int k = 0; k < ds.nshards; k++) {
    memset(got, 0xAB, ib * 300); // poison
    assert_int_equal(ganc_shard_read(&ds, k, 0, ds.shards[k].count, got, lab, &err), 0);
    for (int64_t i = 0; i < ds.shards[k].count; i++) {
      int64_t g = ds.shards[k].first + i;
      tu_image_for(g, want, ib);
      assert_memory_equal(got + i * ib, want, ib);
      assert_int_equal(lab[i], g % K);
    }
  }
  char src[256];
  assert_int_equal(ganc_dataset_source(&ds, 777, src, sizeof src, &err), 0);
  assert_string_equal(src, "img/777.png");
  int64_t counts[5];
  assert_int_equal(ganc_dataset_verify(&ds, counts, NULL, &err), 0);
  for (int k = 0; k < K; k++)
    assert_int_equal(counts[k], N / K);
  uint64_t fp1 = ganc_dataset_fingerprint(&ds, &err);
  assert_true(fp1 != 0);
  ganc_dataset_close(&ds);
  free(got);
  free(want);

  // A different dataset has a different fingerprint.
  char *dir2 = tu_tmpdir("shard-roundtrip2");
  tu_write_dataset(dir2, R, C, N - 1, S, K);
  assert_int_equal(ganc_dataset_open(dir2, &ds, &err), 0);
  assert_true(ganc_dataset_fingerprint(&ds, &err) != fp1);
  ganc_dataset_close(&ds);
  tu_rmdir(dir2);
  tu_rmdir(dir);
}

static void test_unlabelled(void **state) {
  (void)state;
  char *dir = tu_tmpdir("shard-unlabelled");
  tu_write_dataset(dir, 8, 1, 50, 0, 0);
  ganc_dataset ds;
  ganc_err err = {0};
  assert_int_equal(ganc_dataset_open(dir, &ds, &err), 0);
  assert_int_equal(ds.nshards, 1);
  assert_int_equal(ds.meta.nclasses, 0);
  assert_true(ds.shards[0].labels < 0);
  uint8_t img[64];
  int32_t lab = 1234;
  assert_int_equal(ganc_shard_read(&ds, 0, 49, 1, img, &lab, &err), 0);
  assert_int_equal(lab, 1234); // untouched: no labels to read
  assert_int_equal(ganc_dataset_verify(&ds, NULL, NULL, &err), 0);
  ganc_dataset_close(&ds);
  tu_rmdir(dir);
}

static void expect_open_error(const char *dir, const char *must_contain, const char *also) {
  ganc_dataset ds;
  ganc_err err = {0};
  assert_int_equal(ganc_dataset_open(dir, &ds, &err), -1);
  assert_int_equal(err.code, GANC_EXIT_USAGE);
  if (!strstr(err.msg, must_contain) || (also && !strstr(err.msg, also)))
    fail_msg("error '%s' should mention '%s' and '%s'", err.msg, must_contain, also ? also : "");
}

static void test_mixed_and_foreign(void **state) {
  (void)state;
  char *dir = tu_tmpdir("shard-mixed"), *other = tu_tmpdir("shard-mixed-other");
  char a[4200], b[4200];
  // A resolution mismatch names the odd shard.
  tu_write_dataset(dir, 8, 3, 10, 0, 0);
  tu_write_dataset(other, 16, 3, 10, 0, 0);
  snprintf(a, sizeof a, "%s/shard-00000.h5", other);
  snprintf(b, sizeof b, "%s/shard-00001.h5", dir);
  assert_int_equal(rename(a, b), 0);
  expect_open_error(dir, "shard-00001.h5", "resolution");
  // A channel mismatch.
  assert_int_equal(unlink(b), 0);
  tu_write_dataset(other, 8, 1, 10, 0, 0);
  assert_int_equal(rename(a, b), 0);
  expect_open_error(dir, "shard-00001.h5", "channel");
  // A labelled shard among unlabelled ones: the class list differs.
  assert_int_equal(unlink(b), 0);
  tu_write_dataset(other, 8, 3, 10, 0, 2);
  assert_int_equal(rename(a, b), 0);
  expect_open_error(dir, "shard-00001.h5", "class list");
  assert_int_equal(unlink(b), 0);
  // A file that is not HDF5 at all.
  FILE *f = fopen(b, "wb");
  fputs("this is not an HDF5 file\n", f);
  fclose(f);
  expect_open_error(dir, "shard-00001.h5", "not an HDF5 file");
  assert_int_equal(unlink(b), 0);
  // An HDF5 file that is not a ganc shard.
  hid_t h = H5Fcreate(b, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  H5Fclose(h);
  expect_open_error(dir, "shard-00001.h5", "format");
  assert_int_equal(unlink(b), 0);
  // A crafted shard whose image_count is an array (reading it into one number would overrun).
  tu_write_dataset(other, 8, 3, 10, 0, 0);
  assert_int_equal(rename(a, b), 0);
  h = H5Fopen(b, H5F_ACC_RDWR, H5P_DEFAULT);
  H5Adelete(h, "image_count");
  hsize_t dim = 64;
  hid_t sp = H5Screate_simple(1, &dim, NULL);
  hid_t at = H5Acreate2(h, "image_count", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
  int64_t many[64] = {0};
  H5Awrite(at, H5T_NATIVE_INT64, many);
  H5Aclose(at);
  H5Sclose(sp);
  H5Fclose(h);
  expect_open_error(dir, "shard-00001.h5", "holds 64 values");
  assert_int_equal(unlink(b), 0);
  // An empty folder, and a missing one.
  char *empty = tu_tmpdir("shard-empty");
  expect_open_error(empty, "no shard", "ganc-prep");
  expect_open_error("/nonexistent/ganc/folder", "not a readable folder", NULL);
  tu_rmdir(empty);
  tu_rmdir(other);
  tu_rmdir(dir);
}

static void test_damage(void **state) {
  (void)state;
  char *dir = tu_tmpdir("shard-damage");
  tu_write_dataset(dir, 32, 3, 400, 200, 4); // 2 shards, chunks of 341 → 1 chunk each
  char path[4200];
  snprintf(path, sizeof path, "%s/shard-00001.h5", dir);
  // A flipped byte inside the pixel data: the Fletcher32 checksum catches it on read.
  tu_corrupt_chunk(path, "images", 0);
  ganc_dataset ds;
  ganc_err err = {0};
  assert_int_equal(ganc_dataset_open(dir, &ds, &err), 0); // the header is intact
  assert_int_equal(ganc_dataset_verify(&ds, NULL, NULL, &err), -1);
  if (!strstr(err.msg, "shard-00001.h5") || !strstr(err.msg, "damaged"))
    fail_msg("verify error should name the damaged shard: %s", err.msg);
  ganc_dataset_close(&ds);
  // A truncated shard is refused when opened, naming it.
  tu_truncate(path, 3000);
  expect_open_error(dir, "shard-00001.h5", NULL);
  tu_rmdir(dir);
}

int main(void) {
  ganc_h5_quiet();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_unlabelled),
      cmocka_unit_test(test_mixed_and_foreign),
      cmocka_unit_test(test_damage),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
