// test_fmnist.c — the Fashion-MNIST import as the root scripts make it: 60,000 images padded to
// 32x32 gray with black, 10 classes of 6,000, pixels equal to the IDX file's; plus IDX edge cases
// (no labels file beside it, a truncated file).
//
// And the IDX reader's promise on small files the test makes itself (gzip'd here with zlib): a
// file that does not hold exactly what its header announces — a flipped bit anywhere, a cut at
// any length, a missing gzip trailer, a second gzip member, trailing bytes, extra data — is
// refused with a message naming the file; a bit flip that is accepted (gzip header fields no
// checksum covers) must give the very same pixels and labels. --class-names is checked here too.
// Those run everywhere; the dataset tests need Debian's dataset-fashion-mnist, and without it the
// program exits 77 (skipped) once the others have passed.
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

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

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

// ---- synthetic IDX files ------------------------------------------------------------------------
enum { SN = 12, SH = 10, SW = 9, SCLASSES = 4 }; // 12 images of 10x9, labels 0..3

static uint8_t g_px[SN * SH * SW], g_lab[SN];

// The IDX bytes (header, then data) of the synthetic images or labels.
static uint8_t *idx_bytes(int labels, size_t *len) {
  static int ready;
  if (!ready) { // half smooth, half noise: deflate uses both short and long codes
    uint32_t x = 12345;
    for (int i = 0; i < SN * SH * SW; i++) {
      x = x * 1664525u + 1013904223u;
      g_px[i] = (uint8_t)(i / (SH * SW) % 2 ? (int)(x >> 24) : (i % SW) * 20 + (i / SW % SH));
    }
    for (int i = 0; i < SN; i++)
      g_lab[i] = (uint8_t)(i * 7 % SCLASSES);
    ready = 1;
  }
  uint32_t hdr[4] = {labels ? 0x801 : 0x803, SN, SH, SW};
  int nh = labels ? 2 : 4;
  size_t data = labels ? SN : sizeof g_px;
  *len = 4 * (size_t)nh + data;
  uint8_t *b = xmalloc(*len);
  for (int k = 0; k < nh; k++)
    for (int j = 0; j < 4; j++)
      b[4 * k + j] = (uint8_t)(hdr[k] >> (24 - 8 * j));
  memcpy(b + 4 * nh, labels ? g_lab : g_px, data);
  return b;
}

// One gzip member of src (level 0: stored blocks, so only the CRC-32 can catch a flipped bit).
static uint8_t *gzip_bytes(const uint8_t *src, size_t n, int level, size_t *len) {
  z_stream z = {0};
  assert_int_equal(deflateInit2(&z, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
                   Z_OK);
  size_t cap = deflateBound(&z, n) + 64;
  uint8_t *out = xmalloc(cap);
  z.next_in = (uint8_t *)src;
  z.avail_in = (uInt)n;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
  *len = cap - z.avail_out;
  deflateEnd(&z);
  return out;
}

static void put_file(const char *path, const void *a, size_t na, const void *b, size_t nb) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  if (na) assert_int_equal(fwrite(a, 1, na, f), na);
  if (nb) assert_int_equal(fwrite(b, 1, nb, f), nb);
  assert_int_equal(fclose(f), 0);
}

// Writes the pair dir/s-images-idx3-ubyte<ext> and dir/s-labels-idx1-ubyte<ext>, gzip'd at
// `level` when ext is ".gz"; returns the images path (static buffer) and the labels path in lp.
static const char *write_pair(const char *dir, const char *ext, int level, char lp[4400]) {
  static char ip[4400];
  snprintf(ip, sizeof ip, "%s/s-images-idx3-ubyte%s", dir, ext);
  snprintf(lp, 4400, "%s/s-labels-idx1-ubyte%s", dir, ext);
  for (int labels = 0; labels < 2; labels++) {
    size_t n, gn;
    uint8_t *raw = idx_bytes(labels, &n);
    if (*ext) {
      uint8_t *g = gzip_bytes(raw, n, level, &gn);
      put_file(labels ? lp : ip, g, gn, NULL, 0);
      free(g);
    } else {
      put_file(labels ? lp : ip, raw, n, NULL, 0);
    }
    free(raw);
  }
  return ip;
}

// Loads `images`: 1 when it loads and holds exactly the synthetic data, 0 when refused with a
// message naming `named`; anything else fails the test.
static int load_result(const char *images, const char *named, const char *must_say) {
  ganc_idx x;
  ganc_err err = {0};
  if (ganc_idx_load(images, &x, &err) != 0) {
    if (err.code != GANC_EXIT_USAGE) fail_msg("exit code %d for bad input: %s", err.code, err.msg);
    if (!strstr(err.msg, named)) fail_msg("the message does not name %s: %s", named, err.msg);
    if (must_say && !strstr(err.msg, must_say)) fail_msg("expected '%s' in: %s", must_say, err.msg);
    assert_null(x.images);
    return 0;
  }
  if (must_say) fail_msg("%s was accepted; expected a refusal saying '%s'", named, must_say);
  assert_int_equal(x.n, SN);
  assert_int_equal(x.h, SH);
  assert_int_equal(x.w, SW);
  int same = memcmp(x.images, g_px, sizeof g_px) == 0 && x.labels != NULL;
  for (int i = 0; same && i < SN; i++)
    same = x.labels[i] == g_lab[i];
  ganc_idx_free(&x);
  if (!same) fail_msg("%s was accepted with different pixels or labels", named);
  return 1;
}

static uint8_t *slurp_bin(const char *path, size_t *n) {
  uint8_t *b;
  if (ganc_read_file(path, 1 << 26, &b, n) != 0) fail_msg("cannot read %s", path);
  return b;
}

static void test_idx_good(void **state) {
  (void)state;
  char *root = tu_tmpdir("idx-good");
  char lp[4400];
  // gzip at levels 0, 1 and 9, and plain; the labels file is found beside the images either way.
  const char *ip = write_pair(root, ".gz", 9, lp);
  assert_int_equal(load_result(ip, ip, NULL), 1);
  ip = write_pair(root, ".gz", 0, lp);
  assert_int_equal(load_result(ip, ip, NULL), 1);
  ip = write_pair(root, "", 0, lp);
  assert_int_equal(load_result(ip, ip, NULL), 1);
  assert_true(ganc_idx_is_images(ip));
  assert_false(ganc_idx_is_images(lp));
  tu_rmdir(root);
}

// Every bit of every byte, one at a time: refused naming the file, or the same data.
static void flip_every_bit(const char *images, const char *target, int *refused, int *same) {
  size_t n;
  uint8_t *orig = slurp_bin(target, &n);
  int fd = open(target, O_WRONLY);
  assert_true(fd >= 0);
  for (size_t at = 0; at < n; at++)
    for (int bit = 0; bit < 8; bit++) {
      uint8_t b = (uint8_t)(orig[at] ^ (1u << bit));
      assert_int_equal(pwrite(fd, &b, 1, (off_t)at), 1);
      if (load_result(images, target, NULL))
        (*same)++;
      else
        (*refused)++;
      assert_int_equal(pwrite(fd, orig + at, 1, (off_t)at), 1);
    }
  close(fd);
  free(orig);
}

static void test_idx_bit_flips(void **state) {
  (void)state;
  char *root = tu_tmpdir("idx-flips");
  char lp[4400];
  for (int level = 0; level <= 9; level += 9) {
    const char *ip = write_pair(root, ".gz", level, lp);
    int refused = 0, same = 0;
    flip_every_bit(ip, ip, &refused, &same);
    flip_every_bit(ip, lp, &refused, &same);
    printf("gzip level %d: %d bit flips refused, %d accepted with identical data (gzip header "
           "fields outside the CRC: MTIME, XFL, OS, FTEXT; deflate's final padding bits)\n",
           level, refused, same);
    assert_true(refused > 8 * 500);
    // Per file, only what no checksum covers: FLG's FTEXT bit, MTIME, XFL and OS (6 bytes), and
    // the few bits deflate ignores (padding after a stored block's header and the last block).
    assert_true(same <= 2 * (1 + 6 * 8 + 16));
  }
  // Plain files carry no checksum: a flip in the data is undetectable (that is what the gzip'd
  // form is for), but one in the header is refused.
  const char *ip = write_pair(root, "", 0, lp);
  int fd = open(ip, O_WRONLY);
  for (int at = 0; at < 16; at++) {
    size_t n;
    uint8_t *orig = slurp_bin(ip, &n);
    uint8_t b = orig[at] ^ 0x80;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    assert_int_equal(load_result(ip, ip, NULL), 0);
    assert_int_equal(pwrite(fd, orig + at, 1, at), 1);
    free(orig);
  }
  close(fd);
  tu_rmdir(root);
}

// Cut at every length, gzip'd and plain, images and labels: always refused.
static void test_idx_cuts(void **state) {
  (void)state;
  char *root = tu_tmpdir("idx-cuts");
  char lp[4400];
  const char *exts[2] = {".gz", ""};
  int cases = 0;
  for (int e = 0; e < 2; e++)
    for (int labels = 0; labels < 2; labels++) {
      const char *ip = write_pair(root, exts[e], 9, lp);
      const char *target = labels ? lp : ip;
      size_t n;
      uint8_t *orig = slurp_bin(target, &n);
      for (size_t keep = 0; keep < n; keep++) {
        put_file(target, orig, keep, NULL, 0);
        assert_int_equal(load_result(ip, target, NULL), 0);
        cases++;
      }
      // The gzip trailer (CRC-32 and length) missing, or half of it.
      if (*exts[e]) {
        put_file(target, orig, n - 8, NULL, 0);
        assert_int_equal(load_result(ip, target, "before its trailer"), 0);
        put_file(target, orig, n - 4, NULL, 0);
        assert_int_equal(load_result(ip, target, "before its trailer"), 0);
        // A changed CRC-32 or length: named as such.
        orig[n - 8] ^= 1;
        put_file(target, orig, n, NULL, 0);
        assert_int_equal(load_result(ip, target, "CRC-32"), 0);
        orig[n - 8] ^= 1;
        orig[n - 2] ^= 1;
        put_file(target, orig, n, NULL, 0);
        assert_int_equal(load_result(ip, target, "length in its gzip trailer"), 0);
      } else {
        put_file(target, orig, n - 1, NULL, 0);
        assert_int_equal(load_result(ip, target, "truncated"), 0);
      }
      free(orig);
    }
  printf("%d cuts refused\n", cases);
  tu_rmdir(root);
}

// A header that announces far more than the file can hold (16 GiB in a 16-byte file, or in a
// gzip member of a few dozen bytes): refused as truncated before anything that size is allocated
// (the fuzzer found ganc_idx_load allocating first; "only ... bytes long" is said only by the check
// that comes before the allocation).
static void test_idx_huge_header(void **state) {
  (void)state;
  char *root = tu_tmpdir("idx-huge");
  char ip[4400];
  snprintf(ip, sizeof ip, "%s/h-images-idx3-ubyte", root);
  const uint8_t hdr[16] = {0, 0, 8, 3, 0, 1, 0, 0, 0, 0, 2, 0, 0, 0, 2, 0}; // 65536 of 512x512
  put_file(ip, hdr, sizeof hdr, NULL, 0);
  assert_int_equal(load_result(ip, ip, "only 16 bytes long"), 0);
  // gzip'd, with 4 KiB of zeros after the header: at most ~1032x its size can come out of it.
  uint8_t raw[16 + 4096] = {0};
  memcpy(raw, hdr, sizeof hdr);
  size_t gn;
  uint8_t *g = gzip_bytes(raw, sizeof raw, 9, &gn);
  snprintf(ip, sizeof ip, "%s/h-images-idx3-ubyte.gz", root);
  put_file(ip, g, gn, NULL, 0);
  free(g);
  assert_int_equal(load_result(ip, ip, "truncated"), 0);
  assert_int_equal(load_result(ip, ip, "gzip file is only"), 0);
  tu_rmdir(root);
}

// Anything after the data: a second gzip member, trailing bytes, more data than the header says.
static void test_idx_extra(void **state) {
  (void)state;
  char *root = tu_tmpdir("idx-extra");
  char lp[4400];
  for (int labels = 0; labels < 2; labels++) {
    const char *ip = write_pair(root, ".gz", 9, lp);
    const char *target = labels ? lp : ip;
    size_t n, rn, en, gn;
    uint8_t *orig = slurp_bin(target, &n);
    uint8_t *raw = idx_bytes(labels, &rn);
    // `cat a.gz b.gz`: a second member (empty, or the same data again).
    uint8_t *empty = gzip_bytes((const uint8_t *)"", 0, 9, &en);
    put_file(target, orig, n, empty, en);
    assert_int_equal(load_result(ip, target, "a second gzip member"), 0);
    put_file(target, orig, n, orig, n);
    assert_int_equal(load_result(ip, target, "a second gzip member"), 0);
    // Trailing bytes: one zero byte (as some copy tools pad), text.
    put_file(target, orig, n, "", 1);
    assert_int_equal(load_result(ip, target, "trailing bytes"), 0);
    put_file(target, orig, n, "junk\n", 5);
    assert_int_equal(load_result(ip, target, "5 bytes after the end of its gzip data"), 0);
    // A valid member that unpacks to more than the header announces.
    uint8_t *more = xmalloc(rn + 3);
    memcpy(more, raw, rn);
    memcpy(more + rn, "abc", 3);
    uint8_t *g = gzip_bytes(more, rn + 3, 9, &gn);
    put_file(target, g, gn, NULL, 0);
    assert_int_equal(load_result(ip, target, "3 bytes of data more than its IDX header"), 0);
    free(g);
    // The same for plain files: the size must be exactly the header and the data.
    char pip[4400], plp[4400];
    snprintf(pip, sizeof pip, "%s", write_pair(root, "", 0, plp));
    const char *ptarget = labels ? plp : pip;
    put_file(ptarget, raw, rn, "\0", 1);
    assert_int_equal(load_result(pip, ptarget, "1 byte of data more"), 0);
    free(more);
    free(empty);
    free(raw);
    free(orig);
    unlink(pip);
    unlink(plp);
  }
  tu_rmdir(root);
}

// A FIFO or a folder where a file is expected: refused at once (a FIFO used to block the reader).
static void test_idx_special_files(void **state) {
  (void)state;
  char *root = tu_tmpdir("idx-special");
  char lp[4400], p[4400];
  alarm(60); // a hang fails the test (SIGALRM) instead of waiting for ctest's timeout
  snprintf(p, sizeof p, "%s/f-images-idx3-ubyte", root);
  assert_int_equal(mkfifo(p, 0600), 0);
  assert_false(ganc_idx_is_images(p));
  assert_int_equal(load_result(p, p, "not a regular file"), 0);
  snprintf(p, sizeof p, "%s/d-images-idx3-ubyte", root);
  assert_int_equal(ganc_mkdir_p(p), 0);
  assert_int_equal(load_result(p, p, "not a regular file"), 0);
  // A labels "file" beside good images that is a FIFO: refused, not an unlabelled dataset.
  const char *ip = write_pair(root, ".gz", 9, lp);
  assert_int_equal(unlink(lp), 0);
  assert_int_equal(mkfifo(lp, 0600), 0);
  assert_int_equal(load_result(ip, lp, "not a regular file"), 0);
  alarm(0);
  tu_rmdir(root);
}

// Runs ganc-prep; stderr into *err (malloc'd).
static int prep_run(const char *root, char **err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int prep_run(const char *root, char **err, const char *fmt, ...) {
  char args[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  int rc = tu_system("%s %s >%s/out.txt 2>%s/err.txt", GANC_PREP_BIN, args, root, root);
  char p[4400];
  snprintf(p, sizeof p, "%s/err.txt", root);
  size_t n;
  uint8_t *e = slurp_bin(p, &n);
  if (err)
    *err = (char *)e;
  else
    free(e);
  return rc;
}

static void must_say(const char *text, const char *what) {
  if (!strstr(text, what)) fail_msg("expected '%s' in:\n%s", what, text);
}

// End to end: ganc-prep refuses a damaged IDX pair with exit 2, names the file, writes nothing.
static void test_idx_prep(void **state) {
  (void)state;
  char *root = tu_tmpdir("idx-prep");
  char lp[4400], out[4400], *e;
  snprintf(out, sizeof out, "%s/out", root);
  const char *ip = write_pair(root, ".gz", 9, lp);
  assert_int_equal(prep_run(root, NULL, "%s %s --resolution 8", ip, out), 0);
  ganc_dataset ds;
  ganc_err err = {0};
  assert_int_equal(ganc_dataset_open(out, &ds, &err), 0);
  assert_int_equal(ds.meta.nclasses, SCLASSES);
  ganc_dataset_close(&ds);
  for (int labels = 0; labels < 2; labels++) {
    const char *target = labels ? lp : ip;
    size_t n;
    uint8_t *orig = slurp_bin(target, &n);
    orig[n / 2] ^= 0x10; // inside the deflate data
    put_file(target, orig, n, NULL, 0);
    assert_int_equal(prep_run(root, &e, "%s %s --resolution 8 --force", ip, out), 2);
    must_say(e, target);
    free(e);
    orig[n / 2] ^= 0x10;
    put_file(target, orig, n, orig, n); // a second member
    assert_int_equal(prep_run(root, &e, "%s %s/out2 --resolution 8", ip, root), 2);
    must_say(e, target);
    must_say(e, "second gzip member");
    free(e);
    char p[4400];
    snprintf(p, sizeof p, "%s/out2", root);
    assert_false(ganc_is_dir(p)); // nothing written
    put_file(target, orig, n, NULL, 0);
    free(orig);
  }
  // Damage before the magic number: the reader's reason, not "not an IDX file".
  size_t n;
  uint8_t *orig = slurp_bin(ip, &n);
  orig[10] |= 0x06; // the first deflate block's type: 3, which is invalid
  put_file(ip, orig, n, NULL, 0);
  assert_int_equal(prep_run(root, &e, "%s %s/out3 --resolution 8", ip, root), 2);
  must_say(e, ip);
  must_say(e, "is damaged");
  free(e);
  free(orig);
  assert_true(ganc_is_dir(out)); // the damaged runs with --force left the good output alone
  tu_rmdir(root);
}

// --class-names: exactly one non-empty name per class; anything else is a usage error.
static void test_class_names(void **state) {
  (void)state;
  char *root = tu_tmpdir("idx-names");
  char lp[4400], out[4400], *e;
  snprintf(out, sizeof out, "%s/out", root);
  const char *ip = write_pair(root, ".gz", 9, lp);
  const char *bad[][2] = {
      {"''", "empty value"},
      {",", "name 1 is empty"},
      {"a,,c,d", "name 2 is empty"},
      {"a,b,c,d,", "name 5 is empty"},
      {"' , a'", "name 1 is empty"},
      {"a,b", "gives 2 names but the labels in"}, // too few: never mixed with the defaults
      {"a,b,c,d,e", "gives 5 names"},
      {"a,b,a,d", "names 'a' twice"},
      {"\"$(printf 'a\\tb'),c,d,e\"", "control character"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(
        prep_run(root, &e, "%s %s --resolution 8 --class-names %s", ip, out, bad[i][0]), 2);
    must_say(e, bad[i][1]);
    free(e);
    assert_false(ganc_is_dir(out));
  }
  assert_int_equal(prep_run(root, &e, "%s %s --labels none --class-names a,b,c,d", ip, out), 2);
  must_say(e, "--labels none");
  free(e);
  // Without a labels file there are no classes to name.
  unlink(lp);
  assert_int_equal(prep_run(root, &e, "%s %s --class-names a,b,c,d", ip, out), 2);
  must_say(e, "no labels file");
  free(e);
  write_pair(root, ".gz", 9, lp);
  // Spaces around names are dropped; the last --class-names counts.
  assert_int_equal(prep_run(root, NULL,
                            "%s %s --resolution 8 --class-names x,y,z,w --class-names "
                            "'cat , dog,bird,  fish  '",
                            ip, out),
                   0);
  ganc_dataset ds;
  ganc_err err = {0};
  assert_int_equal(ganc_dataset_open(out, &ds, &err), 0);
  assert_int_equal(ds.meta.nclasses, 4);
  const char *want[4] = {"cat", "dog", "bird", "fish"};
  for (int k = 0; k < 4; k++)
    assert_string_equal(ds.meta.class_names[k], want[k]);
  ganc_dataset_close(&ds);
  tu_rmdir(root);
}

int main(void) {
  ganc_h5_quiet();
  const struct CMUnitTest synthetic[] = {
      cmocka_unit_test(test_idx_good),        cmocka_unit_test(test_idx_bit_flips),
      cmocka_unit_test(test_idx_cuts),        cmocka_unit_test(test_idx_extra),
      cmocka_unit_test(test_idx_huge_header), cmocka_unit_test(test_idx_special_files),
      cmocka_unit_test(test_idx_prep),        cmocka_unit_test(test_class_names)};
  int rc = cmocka_run_group_tests_name("idx", synthetic, NULL, NULL);
  if (rc) return rc;
  snprintf(g_idx, sizeof g_idx, "%s/train-images-idx3-ubyte.gz", GANC_FMNIST_DIR);
  if (!ganc_is_file(g_idx)) {
    printf("SKIP: %s is missing (apt-get install dataset-fashion-mnist)\n", g_idx);
    return 77;
  }
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_import),
                                     cmocka_unit_test(test_idx_edges)};
  return cmocka_run_group_tests_name("fashion-mnist", tests, NULL, NULL);
}
