// test_loader.c — the shard loader: every image once per epoch, the same seed gives the same
// order, epochs and seeds differ, a restored position continues exactly, windows stream large
// datasets, the delivered bytes are the stored ones, and a damaged shard is an error, not a hang.
// cmocka.h needs these three first, so the block is kept out of include sorting.
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
// clang-format on

#include "core/check.h"
#include "data/loader.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// 2000 images of 32x32x3 in shards of 700: chunks of 341 images, 9 blocks of uneven sizes.
#define R 32
#define C 3
#define N 2000
#define K 7
static char *g_dir;

static int setup(void **state) {
  (void)state;
  g_dir = tu_tmpdir("loader");
  tu_write_dataset(g_dir, R, C, N, 700, K);
  return 0;
}
static int teardown(void **state) {
  (void)state;
  tu_rmdir(g_dir);
  return 0;
}

// Streams `nimg` image indices (a whole number of batches) from a loader into out.
static void stream(ganc_loader *L, int64_t *out, int64_t nimg) {
  const ganc_batch *b;
  ganc_err err = {0};
  for (int64_t at = 0; at < nimg;) {
    assert_int_equal(ganc_loader_next(L, &b, &err), 0);
    for (int i = 0; i < b->n && at < nimg; i++)
      out[at++] = b->index[i];
  }
}

static ganc_loader *open_loader(int batch, uint64_t seed, size_t window,
                                const ganc_loader_state *at) {
  ganc_loader *L;
  ganc_err err = {0};
  ganc_loader_opts o = {.batch = batch, .seed = seed, .window_bytes = window, .prefetch = 3};
  if (ganc_loader_open(g_dir, &o, at, &L, &err)) fail_msg("loader: %s", err.msg);
  return L;
}

static void check_epochs(const int64_t *idx, int epochs) {
  char *seen = xcalloc(N, 1);
  for (int e = 0; e < epochs; e++) {
    memset(seen, 0, N);
    for (int64_t i = 0; i < N; i++) {
      int64_t v = idx[(int64_t)e * N + i];
      assert_true(v >= 0 && v < N);
      if (seen[v]) fail_msg("image %lld twice in epoch %d", (long long)v, e);
      seen[v] = 1;
    }
  }
  free(seen);
}

static void test_coverage_and_content(void **state) {
  (void)state;
  // Batch 96 does not divide 2000: batches straddle epochs, and none is dropped.
  size_t windows[2] = {0, (size_t)341 * R * R * C * 2}; // one window; windows of two chunks
  for (int w = 0; w < 2; w++) {
    ganc_loader *L = open_loader(96, 42, windows[w], NULL);
    int64_t n = 3 * N;
    int64_t *idx = xmalloc(sizeof(int64_t) * (size_t)n);
    const ganc_batch *b;
    ganc_err err = {0};
    uint8_t *want = xmalloc((size_t)R * R * C);
    int64_t at = 0;
    while (at < n) {
      assert_int_equal(ganc_loader_next(L, &b, &err), 0);
      for (int i = 0; i < b->n && at < n; i++, at++) {
        idx[at] = b->index[i];
        tu_image_for(b->index[i], want, (size_t)R * R * C);
        assert_memory_equal(b->images + (size_t)i * R * R * C, want, (size_t)R * R * C);
        assert_int_equal(b->labels[i], b->index[i] % K);
      }
    }
    check_epochs(idx, 3);
    // Shuffled: not the identity, and the epochs differ from one another.
    int64_t same01 = 0, fixed = 0;
    for (int64_t i = 0; i < N; i++) {
      same01 += idx[i] == idx[N + i];
      fixed += idx[i] == i;
    }
    assert_true(same01 < N / 20);
    assert_true(fixed < N / 20);
    free(want);
    free(idx);
    ganc_loader_close(L);
  }
}

static void test_windows_keep_reads_local(void **state) {
  (void)state;
  // With windows of two chunks (682 images), a window holds at most 4 of the 9 chunks (they are
  // 341, 341, 19 per shard and 341, 259 in the last). So any 100 consecutive images come from at
  // most 8 chunks, and on average from few; a global shuffle would touch nearly all 9 every time.
  size_t win = (size_t)341 * R * R * C * 2;
  ganc_loader *L = open_loader(50, 7, win, NULL);
  int64_t *idx = xmalloc(sizeof(int64_t) * N);
  stream(L, idx, N);
  double sum = 0;
  int runs = 0;
  for (int64_t s = 0; s + 100 <= N; s += 50, runs++) {
    int chunks[16] = {0}, distinct = 0;
    for (int64_t i = s; i < s + 100; i++) {
      int64_t g = idx[i], sh = g / 700, off = g % 700;
      int c = (int)(sh * 3 + off / 341);
      if (!chunks[c]++) distinct++;
    }
    assert_true(distinct <= 8);
    sum += distinct;
  }
  assert_true(sum / runs < 5.0);
  check_epochs(idx, 1);
  free(idx);
  ganc_loader_close(L);
}

static void test_determinism(void **state) {
  (void)state;
  int64_t *a = xmalloc(sizeof(int64_t) * 2 * N), *b = xmalloc(sizeof(int64_t) * 2 * N);
  ganc_loader *L1 = open_loader(64, 1234, 0, NULL), *L2 = open_loader(64, 1234, 0, NULL);
  stream(L1, a, 2 * N - 2 * N % 64);
  stream(L2, b, 2 * N - 2 * N % 64);
  assert_memory_equal(a, b, sizeof(int64_t) * (size_t)(2 * N - 2 * N % 64));
  ganc_loader_close(L1);
  ganc_loader_close(L2);
  // Another seed: another order. Another batch size: the same image stream.
  ganc_loader *L3 = open_loader(64, 1235, 0, NULL), *L4 = open_loader(100, 1234, 0, NULL);
  stream(L3, b, 1024);
  int64_t same = 0;
  for (int i = 0; i < 1024; i++)
    same += a[i] == b[i];
  assert_true(same < 50);
  stream(L4, b, 1000);
  assert_memory_equal(a, b, sizeof(int64_t) * 1000);
  ganc_loader_close(L3);
  ganc_loader_close(L4);
  free(a);
  free(b);
}

static void test_save_restore(void **state) {
  (void)state;
  // Stop after k batches (before, at and across epoch boundaries), restore from the position,
  // and the following batches equal those of the loader that kept going.
  int ks[] = {0, 1, 20, 31, 32, 33, 60};
  size_t wins[2] = {0, (size_t)341 * R * R * C * 2};
  for (int w = 0; w < 2; w++) {
    for (size_t t = 0; t < sizeof ks / sizeof ks[0]; t++) {
      ganc_loader *A = open_loader(64, 99, wins[w], NULL);
      const ganc_batch *b;
      ganc_err err = {0};
      for (int i = 0; i < ks[t]; i++)
        assert_int_equal(ganc_loader_next(A, &b, &err), 0);
      ganc_loader_state pos = ganc_loader_position(A);
      assert_int_equal(pos.seed, 99);
      assert_int_equal(pos.epoch * N + pos.cursor, (int64_t)ks[t] * 64);
      ganc_loader *B = open_loader(64, 0 /* the saved seed wins */, wins[w], &pos);
      int64_t ia[640], ib[640];
      stream(A, ia, 640);
      stream(B, ib, 640);
      assert_memory_equal(ia, ib, sizeof ia);
      ganc_loader_close(A);
      ganc_loader_close(B);
    }
  }
  // A position that cannot belong to this dataset is refused.
  ganc_loader *L;
  ganc_err err = {0};
  ganc_loader_state bad = {1, 0, N + 5};
  ganc_loader_opts o = {.batch = 8};
  assert_int_equal(ganc_loader_open(g_dir, &o, &bad, &L, &err), -1);
  assert_non_null(strstr(err.msg, "does not fit"));
}

static void test_pinned_and_tiny(void **state) {
  (void)state;
  // pinned = 1 works without a GPU (falls back to ordinary memory); batch larger than the dataset.
  char *dir = tu_tmpdir("loader-tiny");
  tu_write_dataset(dir, 4, 1, 5, 0, 0);
  ganc_loader *L;
  ganc_err err = {0};
  ganc_loader_opts o = {.batch = 12, .seed = 3, .pinned = 1};
  assert_int_equal(ganc_loader_open(dir, &o, NULL, &L, &err), 0);
  const ganc_batch *b;
  assert_int_equal(ganc_loader_next(L, &b, &err), 0);
  int counts[5] = {0};
  for (int i = 0; i < 10; i++)
    counts[b->index[i]]++; // two whole epochs in the first 10
  for (int i = 0; i < 5; i++)
    assert_int_equal(counts[i], 2);
  assert_int_equal(b->labels[0], -1);
  ganc_loader_state p = ganc_loader_position(L);
  assert_int_equal(p.epoch, 2);
  assert_int_equal(p.cursor, 2);
  ganc_loader_close(L);
  o.batch = 0;
  assert_int_equal(ganc_loader_open(dir, &o, NULL, &L, &err), -1);
  tu_rmdir(dir);
}

static void test_damaged_shard_is_an_error(void **state) {
  (void)state;
  char *dir = tu_tmpdir("loader-damaged");
  tu_write_dataset(dir, 32, 3, 800, 400, 0);
  char path[4200];
  snprintf(path, sizeof path, "%s/shard-00001.h5", dir);
  tu_corrupt_chunk(path, "images", 0);
  ganc_loader *L;
  ganc_err err = {0};
  ganc_loader_opts o = {.batch = 32, .seed = 1};
  assert_int_equal(ganc_loader_open(dir, &o, NULL, &L, &err), 0);
  const ganc_batch *b;
  int rc = 0;
  for (int i = 0; i < 100 && rc == 0; i++)
    rc = ganc_loader_next(L, &b, &err);
  assert_int_equal(rc, -1);
  assert_non_null(strstr(err.msg, "shard-00001.h5"));
  ganc_err err2 = {0};
  assert_int_equal(ganc_loader_next(L, &b, &err2), -1); // stays failed, does not hang
  ganc_loader_close(L);
  tu_rmdir(dir);
}

// Data-parallel shares (opts.rank/ranks): at every step the ranks' batches, in rank order, are
// the one-process batch, and every rank's position is the one process's.
static void test_rank_shares(void **state) {
  (void)state;
  const int B = 96, steps = 50; // 4800 images: across epoch boundaries
  ganc_err err = {0};
  for (int ranks = 2; ranks <= 3; ranks++) {
    ganc_loader *one, *r[3];
    ganc_loader_opts o = {.batch = B, .seed = 5, .prefetch = 2};
    assert_int_equal(ganc_loader_open(g_dir, &o, NULL, &one, &err), 0);
    for (int k = 0; k < ranks; k++) {
      ganc_loader_opts ok = o;
      ok.rank = k, ok.ranks = ranks;
      assert_int_equal(ganc_loader_open(g_dir, &ok, NULL, &r[k], &err), 0);
    }
    for (int s = 0; s < steps; s++) {
      const ganc_batch *b1, *bk;
      assert_int_equal(ganc_loader_next(one, &b1, &err), 0);
      for (int k = 0; k < ranks; k++) {
        assert_int_equal(ganc_loader_next(r[k], &bk, &err), 0);
        assert_int_equal(bk->n, B / ranks);
        for (int i = 0; i < bk->n; i++)
          if (bk->index[i] != b1->index[k * bk->n + i] ||
              memcmp(bk->images + (size_t)i * R * R * C,
                     b1->images + (size_t)(k * bk->n + i) * R * R * C, (size_t)R * R * C))
            fail_msg("%d ranks, step %d: rank %d row %d is not the one-process row %d", ranks, s, k,
                     i, k * bk->n + i);
        const ganc_loader_state a = bk->after, w = b1->after;
        assert_true(a.epoch == w.epoch && a.cursor == w.cursor);
      }
    }
    ganc_loader_close(one);
    for (int k = 0; k < ranks; k++)
      ganc_loader_close(r[k]);
  }
  // A batch the ranks cannot share is refused.
  ganc_loader *L;
  ganc_loader_opts bad = {.batch = 97, .seed = 5, .rank = 0, .ranks = 2};
  assert_int_equal(ganc_loader_open(g_dir, &bad, NULL, &L, &err), -1);
  assert_non_null(strstr(err.msg, "cannot be shared equally"));
}

// A held-out set (opts.limit): images at or past the limit never come, and every epoch is the
// images below it once each; a restored position continues exactly.
static void test_holdout_limit(void **state) {
  (void)state;
  const int64_t limit = 1500;
  ganc_err err = {0};
  ganc_loader *L;
  ganc_loader_opts o = {.batch = 64, .seed = 9, .prefetch = 2, .limit = limit};
  assert_int_equal(ganc_loader_open(g_dir, &o, NULL, &L, &err), 0);
  const int64_t n = 3 * limit;
  int64_t *idx = xmalloc(sizeof(int64_t) * (size_t)n);
  stream(L, idx, n);
  char *seen = xcalloc((size_t)limit, 1);
  for (int e = 0; e < 3; e++) {
    memset(seen, 0, (size_t)limit);
    for (int64_t i = 0; i < limit; i++) {
      const int64_t v = idx[e * limit + i];
      if (v < 0 || v >= limit) fail_msg("held-out image %lld delivered", (long long)v);
      if (seen[v]) fail_msg("image %lld twice in epoch %d", (long long)v, e);
      seen[v] = 1;
    }
  }
  ganc_loader_close(L);
  free(seen);
  free(idx);
  ganc_loader_opts bad = o;
  bad.limit = N + 1;
  assert_int_equal(ganc_loader_open(g_dir, &bad, NULL, &L, &err), -1);
}

int main(void) {
  ganc_h5_quiet();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_coverage_and_content), cmocka_unit_test(test_windows_keep_reads_local),
      cmocka_unit_test(test_determinism),          cmocka_unit_test(test_save_restore),
      cmocka_unit_test(test_rank_shares),          cmocka_unit_test(test_holdout_limit),
      cmocka_unit_test(test_pinned_and_tiny),      cmocka_unit_test(test_damaged_shard_is_an_error),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
