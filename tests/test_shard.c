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
#include "io/h5attr.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
  expect_open_error(dir, "shard-00001.h5", "do not match their SHA-256"); // the change is seen
  h = H5Fopen(b, H5F_ACC_RDWR, H5P_DEFAULT); // and with the checksum made anew, the shape
  H5Adelete(h, GANC_H5_ATTR_DIGEST);
  assert_int_equal(ganc_h5_attrs_seal(h), 0);
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

// ---- issue 10: every byte checked, every value validated ---------------------------------------
// A fresh one-shard labelled dataset 8x8x3 (24 images, 4 classes) in dir; returns the shard path.
static void fresh_shard(const char *dir, char *path, size_t n) {
  char cmd[4400];
  snprintf(cmd, sizeof cmd, "rm -f %s/shard-*.h5", dir);
  assert_int_equal(tu_system("%s", cmd), 0);
  tu_write_dataset(dir, 8, 3, 24, 0, 4);
  snprintf(path, n, "%s/shard-00000.h5", dir);
}

// Replaces dataset `name` of shard `path` by one of `type` (file and memory alike), shape
// dims [rank], filled with zeros; chunked with Fletcher32 unless `plain`.
static void replace_dataset(const char *path, const char *name, hid_t type, int rank,
                            const hsize_t *dims, int plain) {
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  assert_true(f >= 0);
  assert_true(H5Ldelete(f, name, H5P_DEFAULT) >= 0);
  hid_t sp = H5Screate_simple(rank, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (!plain) {
    assert_true(H5Pset_chunk(dcpl, rank, dims) >= 0);
    assert_true(H5Pset_fletcher32(dcpl) >= 0);
  }
  hid_t d = H5Dcreate2(f, name, type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  assert_true(d >= 0);
  hssize_t npts = H5Sget_simple_extent_npoints(sp);
  size_t size = H5Tis_variable_str(type) > 0 ? sizeof(char *) : H5Tget_size(type);
  void *zeros = xcalloc((size_t)npts, size);
  if (H5Tis_variable_str(type) > 0)
    for (hssize_t i = 0; i < npts; i++)
      ((const char **)zeros)[i] = "img/x.png";
  assert_true(H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros) >= 0);
  free(zeros);
  H5Dclose(d);
  H5Pclose(dcpl);
  H5Sclose(sp);
  H5Fclose(f);
}

// Rewrites root attribute `name` as a scalar of `type` holding *value (memory type mtype); with
// `reseal`, the attribute checksum is made anew, so only the value check can catch it.
static void rewrite_attr(const char *path, const char *name, hid_t type, hid_t mtype,
                         const void *value, int reseal) {
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  assert_true(f >= 0);
  if (H5Aexists(f, name) > 0) assert_true(H5Adelete(f, name) >= 0);
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(f, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(a >= 0 && H5Awrite(a, mtype, value) >= 0);
  H5Aclose(a);
  H5Sclose(sp);
  if (reseal) {
    H5Adelete(f, GANC_H5_ATTR_DIGEST);
    assert_int_equal(ganc_h5_attrs_seal(f), 0);
  }
  H5Fclose(f);
}

static void rewrite_i64(const char *path, const char *name, int64_t v) {
  rewrite_attr(path, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v, 1);
}

static void flip_byte(const char *path, long at) {
  FILE *f = fopen(path, "r+b");
  assert_non_null(f);
  assert_int_equal(fseek(f, at, SEEK_SET), 0);
  int c = fgetc(f);
  assert_true(c != EOF);
  fseek(f, at, SEEK_SET);
  fputc(c ^ 0x01, f);
  fclose(f);
}

// The offset of the first occurrence of `text` in file `path` (-1 if none).
static long find_text(const char *path, const char *text) {
  uint8_t *b;
  size_t n;
  if (ganc_read_file(path, 1 << 26, &b, &n) != 0) return -1;
  size_t l = strlen(text);
  long at = -1;
  for (size_t i = 0; i + l <= n && at < 0; i++)
    if (!memcmp(b + i, text, l)) at = (long)i;
  free(b);
  return at;
}

static void test_types_and_shapes(void **state) {
  (void)state;
  char *dir = tu_tmpdir("shard-types");
  char p[4200];
  hsize_t img[4] = {24, 8, 8, 3}, lab[1] = {24}, img3[3] = {24, 64, 3}, short_lab[1] = {23};
  // The pixels must be uint8 exactly: HDF5 would convert (and clamp) anything else silently.
  hid_t img_types[3] = {H5T_STD_U16LE, H5T_STD_I8LE, H5T_IEEE_F32LE};
  const char *found[3] = {"2-byte integer", "1-byte integer", "4-byte float"};
  for (int i = 0; i < 3; i++) {
    fresh_shard(dir, p, sizeof p);
    replace_dataset(p, "images", img_types[i], 4, img, 0);
    expect_open_error(dir, "shard-00000.h5", "'images' is not stored as uint8");
    expect_open_error(dir, found[i], NULL);
  }
  fresh_shard(dir, p, sizeof p);
  replace_dataset(p, "images", H5T_STD_U8LE, 3, img3, 0);
  expect_open_error(dir, "shard-00000.h5", "'images' has 3 dimensions, not 4");
  // Chunked without Fletcher32, or contiguous: damage would go unseen, so refused.
  fresh_shard(dir, p, sizeof p);
  replace_dataset(p, "images", H5T_STD_U8LE, 4, img, 1);
  expect_open_error(dir, "shard-00000.h5", "Fletcher32");
  // Labels: int32 exactly, one per image.
  hid_t lab_types[3] = {H5T_STD_I64LE, H5T_STD_U32LE, H5T_IEEE_F32LE};
  for (int i = 0; i < 3; i++) {
    fresh_shard(dir, p, sizeof p);
    replace_dataset(p, "labels", lab_types[i], 1, lab, 0);
    expect_open_error(dir, "shard-00000.h5", "'labels' is not stored as int32");
  }
  fresh_shard(dir, p, sizeof p);
  replace_dataset(p, "labels", H5T_STD_I32LE, 1, short_lab, 0);
  expect_open_error(dir, "shard-00000.h5", "'labels' holds 23 labels for 24 images");
  // Sources: fixed-length strings (a variable-length string would send the reader into HDF5's
  // unchecksummed global heap, where the damage of issue 10 crashed it).
  fresh_shard(dir, p, sizeof p);
  hid_t vl = H5Tcopy(H5T_C_S1);
  H5Tset_size(vl, H5T_VARIABLE);
  replace_dataset(p, "sources", vl, 1, lab, 1); // (HDF5 has no Fletcher32 for them)
  H5Tclose(vl);
  expect_open_error(dir, "shard-00000.h5", "'sources' is not stored as fixed-length strings");
  tu_rmdir(dir);
}

static void test_attribute_values(void **state) {
  (void)state;
  char *dir = tu_tmpdir("shard-attrs");
  char p[4200];
  // Range before the cast: 2^32 + 32 must not pass as 32.
  fresh_shard(dir, p, sizeof p);
  rewrite_i64(p, "resolution", (1ll << 32) + 8);
  expect_open_error(dir, "shard-00000.h5", "'resolution' is 4294967304, outside 1..65536");
  fresh_shard(dir, p, sizeof p);
  uint64_t huge = UINT64_MAX;
  rewrite_attr(p, "channels", H5T_STD_U64LE, H5T_NATIVE_UINT64, &huge, 1);
  expect_open_error(dir, "'channels' is 18446744073709551615, outside 1..4", NULL);
  fresh_shard(dir, p, sizeof p);
  double eight = 8.0;
  rewrite_attr(p, "resolution", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &eight, 1);
  expect_open_error(dir, "'resolution' is a floating-point number", NULL);
  fresh_shard(dir, p, sizeof p);
  rewrite_i64(p, "image_count", -1);
  expect_open_error(dir, "'image_count' is -1, outside", NULL);
  fresh_shard(dir, p, sizeof p);
  rewrite_i64(p, "image_count", 23);
  expect_open_error(dir, "holds 24 images but its header says 23", NULL);
  // format_version: 0 and negative are damage, not "newer"; a newer one asks for an update.
  int64_t versions[3] = {0, -5, GANC_SHARD_VERSION + 1};
  const char *says[3] = {"format_version 0 is not a version", "format_version -5 is not a version",
                         "newer than this ganc"};
  for (int i = 0; i < 3; i++) {
    fresh_shard(dir, p, sizeof p);
    rewrite_i64(p, "format_version", versions[i]);
    expect_open_error(dir, "shard-00000.h5", says[i]);
  }
  fresh_shard(dir, p, sizeof p);
  rewrite_i64(p, "format_version", 1);
  expect_open_error(dir, "older ganc", "ganc-prep again");
  // A text changed through HDF5 (its object-header checksum made anew): the SHA-256 sees it.
  const char *texts[3] = {"options", "source_root", "created"};
  for (int i = 0; i < 3; i++) {
    fresh_shard(dir, p, sizeof p);
    char *changed = xstrdup("tesT");
    hid_t t = ganc_h5_fixed_str_type(strlen(changed) + 1);
    rewrite_attr(p, texts[i], t, t, changed, 0);
    H5Tclose(t);
    free(changed);
    expect_open_error(dir, "shard-00000.h5", "do not match their SHA-256");
  }
  // ... and one without its checksum is refused.
  fresh_shard(dir, p, sizeof p);
  hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
  H5Adelete(f, GANC_H5_ATTR_DIGEST);
  H5Fclose(f);
  expect_open_error(dir, "shard-00000.h5", "attribute checksum (attr_sha256) is missing");
  tu_rmdir(dir);
}

// One changed byte on disk anywhere in an attribute's text or in `sources` is caught: attributes
// by their object header's checksum when the file is opened, sources by Fletcher32 on verify.
static void test_changed_bytes(void **state) {
  (void)state;
  char *dir = tu_tmpdir("shard-bytes");
  char p[4200];
  const char *texts[4] = {"/src/root", "class2", "2026-01-01T00:00:00Z", "ganc-shards"};
  for (int i = 0; i < 4; i++) {
    fresh_shard(dir, p, sizeof p);
    long at = find_text(p, texts[i]);
    assert_true(at > 0);
    flip_byte(p, at + (long)strlen(texts[i]) / 2);
    expect_open_error(dir, "shard-00000.h5", NULL);
  }
  // Every byte of the sources chunk, one at a time.
  fresh_shard(dir, p, sizeof p);
  hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT), d = H5Dopen2(f, "sources", H5P_DEFAULT);
  hid_t sp = H5Dget_space(d);
  hsize_t off[1];
  unsigned mask;
  haddr_t addr;
  hsize_t size;
  assert_true(H5Dget_chunk_info(d, sp, 0, off, &mask, &addr, &size) >= 0);
  H5Sclose(sp);
  H5Dclose(d);
  H5Fclose(f);
  char q[4300];
  snprintf(q, sizeof q, "%s.good", p);
  assert_int_equal(tu_system("cp %s %s", p, q), 0);
  for (hsize_t k = 0; k < size; k++) {
    assert_int_equal(tu_system("cp %s %s", q, p), 0);
    flip_byte(p, (long)(addr + k));
    ganc_dataset ds;
    ganc_err err = {0};
    if (ganc_dataset_open(dir, &ds, &err) == 0) {
      if (ganc_dataset_verify(&ds, NULL, NULL, &err) == 0)
        fail_msg("a changed byte at %llu of 'sources' passed verification", (unsigned long long)k);
      ganc_dataset_close(&ds);
    }
    if (!strstr(err.msg, "shard-00000.h5")) fail_msg("error without the file: %s", err.msg);
  }
  printf("every one of the %llu bytes of a 'sources' chunk, changed, fails verification\n",
         (unsigned long long)size);
  unlink(q);
  tu_rmdir(dir);
}

// A FIFO, a device, a folder, a symbolic-link loop or an empty file named shard-*.h5 is refused
// at once, naming it (a FIFO is never opened for reading: that would block forever); and a shard
// of format 1 (HDF5's old layout) is refused with the hint to prepare it again.
static void test_special_files(void **state) {
  (void)state;
  char *dir = tu_tmpdir("shard-special");
  char p[4200];
  const char *what[5] = {"a FIFO", "a character device", "a folder",
                         "Too many levels of symbolic links", "is empty"};
  alarm(60); // a hang fails the test instead of stalling ctest
  for (int i = 0; i < 5; i++) {
    fresh_shard(dir, p, sizeof p);
    snprintf(p, sizeof p, "%s/shard-00001.h5", dir);
    if (i == 0) assert_int_equal(mkfifo(p, 0644), 0);
    if (i == 1) assert_int_equal(symlink("/dev/null", p), 0);
    if (i == 2) assert_int_equal(mkdir(p, 0755), 0);
    if (i == 3) assert_int_equal(symlink("shard-00001.h5", p), 0);
    if (i == 4) fclose(fopen(p, "w"));
    expect_open_error(dir, "shard-00001.h5", what[i]);
    assert_int_equal(tu_system("rm -rf %s", p), 0);
  }
  alarm(0);
  // HDF5's old layout (superblock 0), as format-1 shards and other programs' files have.
  fresh_shard(dir, p, sizeof p);
  snprintf(p, sizeof p, "%s/shard-00001.h5", dir);
  hid_t h = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  assert_int_equal(ganc_h5_attr_write_str(h, "format", GANC_SHARD_FORMAT), 0);
  H5Fclose(h);
  expect_open_error(dir, "shard-00001.h5", "older ganc (shard format 1)");
  tu_rmdir(dir);
}

int main(void) {
  // HDF5 keeps freed blocks on free lists and hands them out again: when it then loses one on a
  // damaged file's error path (tests/lsan.supp says where), LeakSanitizer would report the block
  // under its first owner's stack. Without free lists every leak is reported where it happens.
  H5set_free_list_limits(0, 0, 0, 0, 0, 0);
  ganc_h5_quiet();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),        cmocka_unit_test(test_unlabelled),
      cmocka_unit_test(test_mixed_and_foreign), cmocka_unit_test(test_damage),
      cmocka_unit_test(test_types_and_shapes),  cmocka_unit_test(test_attribute_values),
      cmocka_unit_test(test_changed_bytes),     cmocka_unit_test(test_special_files),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
