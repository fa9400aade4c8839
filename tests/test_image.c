// test_image.c — PNG/JPEG decoding and fitting to R×R (src/data/image.c).
//
// Inputs are made here from known pixels with tests/common/mkimg.c (libpng/libjpeg writers), so
// the expected output of every PNG case is exact: libpng's expansion of low bit depths
// (v · 255 / (2^d − 1)), 16 → 8 bits rounded to nearest (round(v · 255 / 65535)), palette lookup
// and tRNS → alpha. JPEG is lossy, so it is compared at quality 100 within a small tolerance.
// cmocka.h needs these three first, so the block is kept out of include sorting.
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
// clang-format on
#include <stdint.h>

#include <png.h> // PNG_COLOR_TYPE_* for mkimg_png
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/image.h" // what is tested
#include "mkimg.h"      // test image writers

// ---- helpers ------------------------------------------------------------------------------------

static void *xalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  assert_non_null(p);
  return p;
}

// Fails with the first place where got and want [h, w, c] differ by more than tol.
static void expect_pixels(const char *what, const uint8_t *got, const uint8_t *want, int w, int h,
                          int c, int tol) {
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int k = 0; k < c; k++) {
        size_t i = ((size_t)y * w + x) * c + k;
        int d = abs((int)got[i] - (int)want[i]);
        if (d > tol)
          fail_msg("%s: pixel (x %d, y %d, channel %d) is %d, expected %d (tolerance %d)", what, x,
                   y, k, got[i], want[i], tol);
      }
}

static ganc_image decode_ok(const uint8_t *buf, size_t n, const ganc_decode_opts *opts,
                            const char *what) {
  ganc_image img;
  char why[256] = "";
  if (ganc_image_decode(buf, n, opts, &img, why, sizeof why) != 0)
    fail_msg("%s: decode failed: %s", what, why);
  assert_non_null(img.px);
  return img;
}

// Decode and probe must both refuse buf, with a reason, and leave no image behind.
static void expect_refused(const uint8_t *buf, size_t n, const char *what) {
  ganc_image img;
  ganc_image_info info;
  char why[256] = "";
  if (ganc_image_decode(buf, n, NULL, &img, why, sizeof why) != -1)
    fail_msg("%s: decode accepted it (%dx%d, c %d)", what, img.w, img.h, img.c);
  assert_null(img.px);
  assert_true(why[0] != '\0');
  why[0] = '\0';
  // probe only reads the header, so a cut-off body may pass it; garbage must not
  (void)ganc_image_probe(buf, n, &info, why, sizeof why);
}

// The 8-bit value image.c promises for a PNG sample of bit depth d.
static uint8_t png_to8(unsigned v, int d) {
  if (d == 16) return (uint8_t)((v * 255u + 32767u) / 65535u); // round to nearest
  if (d == 8) return (uint8_t)v;
  return (uint8_t)(v * 255u / ((1u << d) - 1u)); // exact: 255 is divisible by 1, 3 and 15
}

// ---- PNG: every colour type, bit depth, tRNS and interlace --------------------------------------

// Encodes a 37×23 image (odd sizes: partial Adam7 passes, partial bytes at 1/2/4 bits), decodes
// it and compares every byte with what the colour type and depth promise.
static void check_png_case(int ctype, int depth, int use_trns, int interlace) {
  const int w = 37, h = 23, ch = mkimg_png_channels(ctype);
  const size_t np = (size_t)w * h, ns = np * ch;
  char what[96];
  snprintf(what, sizeof what, "PNG type %d depth %d%s%s", ctype, depth, use_trns ? " tRNS" : "",
           interlace ? " Adam7" : "");
  uint32_t seed = (uint32_t)(ctype * 1000 + depth * 10 + use_trns * 2 + interlace);

  uint8_t *pat = xalloc(ns), *s8 = xalloc(ns);
  uint16_t *s16 = xalloc(ns * sizeof(uint16_t));
  mkimg_pattern(pat, w, h, ch, seed);
  uint8_t pal[256 * 3], trns[256];
  int npal = 0, ntrns = 0;
  if (ctype == PNG_COLOR_TYPE_PALETTE) {
    npal = depth == 8 ? 200 : 1 << depth; // 200: fewer entries than indices allow
    for (int i = 0; i < npal * 3; i++)
      pal[i] = (uint8_t)mkimg_hash32(seed * 7919u + i);
    if (use_trns) {
      ntrns = npal / 2 + 1; // shorter than the palette: later entries stay opaque
      for (int i = 0; i < ntrns; i++)
        trns[i] = (uint8_t)mkimg_hash32(seed * 104729u + i);
    }
  }
  for (size_t i = 0; i < ns; i++) {
    if (ctype == PNG_COLOR_TYPE_PALETTE)
      s8[i] = (uint8_t)(pat[i] % npal);
    else if (depth == 16)
      s16[i] = (uint16_t)(pat[i] << 8 | (mkimg_hash32(seed + (uint32_t)i) & 0xff));
    else
      s8[i] = (uint8_t)(pat[i] >> (8 - depth));
  }
  // Gray/RGB tRNS: one key colour is transparent; make every 5th pixel that colour.
  uint8_t key[4] = {0, 0, 0, 0};
  int nkey = 0;
  if (use_trns && ctype != PNG_COLOR_TYPE_PALETTE) {
    nkey = ch;
    unsigned top = depth >= 8 ? 255u : (1u << depth) - 1u;
    for (int k = 0; k < ch; k++)
      key[k] = (uint8_t)((77u + 40u * k) < top ? 77u + 40u * k : top);
    for (size_t p = 0; p < np; p += 5)
      for (int k = 0; k < ch; k++) {
        if (depth == 16)
          s16[p * ch + k] = key[k];
        else
          s8[p * ch + k] = key[k];
      }
  }

  uint8_t *buf;
  size_t n;
  assert_int_equal(mkimg_png_mem(&buf, &n, w, h, ctype, depth, interlace,
                                 depth == 16 ? (const void *)s16 : (const void *)s8, pal, npal,
                                 use_trns ? (ctype == PNG_COLOR_TYPE_PALETTE ? trns : key) : NULL,
                                 use_trns ? (ctype == PNG_COLOR_TYPE_PALETTE ? ntrns : nkey) : 0),
                   0);
  assert_int_equal(buf[28], interlace); // IHDR's interlace method: the fixture is what it says

  // What the decoder must give.
  int want_c = ctype == PNG_COLOR_TYPE_GRAY         ? 1 + use_trns
               : ctype == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
               : ctype == PNG_COLOR_TYPE_RGB_ALPHA  ? 4
                                                    : 3 + use_trns;
  uint8_t *want = xalloc(np * want_c);
  for (size_t p = 0; p < np; p++) {
    uint8_t *q = want + p * want_c;
    if (ctype == PNG_COLOR_TYPE_PALETTE) {
      unsigned idx = s8[p];
      memcpy(q, pal + 3 * idx, 3);
      if (use_trns) q[3] = (int)idx < ntrns ? trns[idx] : 255;
      continue;
    }
    int is_key = nkey > 0;
    for (int k = 0; k < ch; k++) {
      unsigned v = depth == 16 ? s16[p * ch + k] : s8[p * ch + k];
      q[k] = png_to8(v, depth);
      if (nkey && v != key[k]) is_key = 0;
    }
    if (nkey) q[ch] = is_key ? 0 : 255;
  }

  ganc_image img = decode_ok(buf, n, NULL, what);
  if (img.w != w || img.h != h || img.c != want_c)
    fail_msg("%s: decoded %dx%d c %d, expected %dx%d c %d", what, img.w, img.h, img.c, w, h,
             want_c);
  expect_pixels(what, img.px, want, w, h, want_c, 0);

  ganc_image_info info;
  char why[256] = "";
  assert_int_equal(ganc_image_probe(buf, n, &info, why, sizeof why), 0);
  assert_int_equal(info.fmt, GANC_IMG_PNG);
  assert_int_equal(info.w, w);
  assert_int_equal(info.h, h);
  assert_int_equal(info.gray, !(ctype & PNG_COLOR_MASK_COLOR)); // random palettes have colour

  ganc_image_free(&img);
  assert_null(img.px);
  free(want);
  free(buf);
  free(s16);
  free(s8);
  free(pat);
}

static void check_png_depths(int ctype, const int *depths, int nd, int with_trns) {
  for (int i = 0; i < nd; i++)
    for (int t = 0; t <= with_trns; t++)
      for (int il = 0; il <= 1; il++)
        check_png_case(ctype, depths[i], t, il);
}

static void test_png_gray(void **state) {
  (void)state;
  const int d[] = {1, 2, 4, 8, 16};
  check_png_depths(PNG_COLOR_TYPE_GRAY, d, 5, 1); // with tRNS: gray → gray+alpha
}

static void test_png_gray_alpha(void **state) {
  (void)state;
  const int d[] = {8, 16};
  check_png_depths(PNG_COLOR_TYPE_GRAY_ALPHA, d, 2, 0);
}

static void test_png_palette(void **state) {
  (void)state;
  const int d[] = {1, 2, 4, 8};
  check_png_depths(PNG_COLOR_TYPE_PALETTE, d, 4, 1);
}

static void test_png_rgb(void **state) {
  (void)state;
  const int d[] = {8, 16};
  check_png_depths(PNG_COLOR_TYPE_RGB, d, 2, 1); // with tRNS: RGB → RGBA
}

static void test_png_rgba(void **state) {
  (void)state;
  const int d[] = {8, 16};
  check_png_depths(PNG_COLOR_TYPE_RGB_ALPHA, d, 2, 0);
}

// Every 16-bit value once: the 16 → 8 rule is round(v · 255 / 65535) (never a tie: 257 is odd).
static void test_png_16bit_rounding_exhaustive(void **state) {
  (void)state;
  uint16_t *s = xalloc(65536 * sizeof(uint16_t));
  for (unsigned v = 0; v < 65536; v++)
    s[v] = (uint16_t)v;
  uint8_t *buf;
  size_t n;
  assert_int_equal(
      mkimg_png_mem(&buf, &n, 256, 256, PNG_COLOR_TYPE_GRAY, 16, 0, s, NULL, 0, NULL, 0), 0);
  ganc_image img = decode_ok(buf, n, NULL, "16-bit ramp");
  assert_int_equal(img.c, 1);
  for (unsigned v = 0; v < 65536; v++)
    if (img.px[v] != (v * 255u + 32767u) / 65535u)
      fail_msg("16-bit %u decoded as %u, expected %u", v, img.px[v], (v * 255u + 32767u) / 65535u);
  ganc_image_free(&img);
  free(buf);
  free(s);
}

// A palette whose every entry is r == g == b probes as gray (it still decodes to 3 channels).
static void test_png_gray_palette_probe(void **state) {
  (void)state;
  uint8_t pal[16 * 3], idx[8 * 8];
  for (int i = 0; i < 16; i++)
    pal[3 * i] = pal[3 * i + 1] = pal[3 * i + 2] = (uint8_t)(i * 17);
  for (int i = 0; i < 64; i++)
    idx[i] = (uint8_t)(i % 16);
  uint8_t *buf;
  size_t n;
  ganc_image_info info;
  char why[256];
  assert_int_equal(
      mkimg_png_mem(&buf, &n, 8, 8, PNG_COLOR_TYPE_PALETTE, 4, 0, idx, pal, 16, NULL, 0), 0);
  assert_int_equal(ganc_image_probe(buf, n, &info, why, sizeof why), 0);
  assert_int_equal(info.gray, 1);
  ganc_image img = decode_ok(buf, n, NULL, "gray palette");
  assert_int_equal(img.c, 3);
  ganc_image_free(&img);
  free(buf);

  pal[3 * 5 + 1] ^= 1; // one entry with a tint
  assert_int_equal(
      mkimg_png_mem(&buf, &n, 8, 8, PNG_COLOR_TYPE_PALETTE, 4, 0, idx, pal, 16, NULL, 0), 0);
  assert_int_equal(ganc_image_probe(buf, n, &info, why, sizeof why), 0);
  assert_int_equal(info.gray, 0);
  free(buf);
}

// ---- JPEG ---------------------------------------------------------------------------------------

static void test_jpeg_gray(void **state) {
  (void)state;
  const int w = 64, h = 48;
  uint8_t *px = xalloc((size_t)w * h), *buf;
  size_t n;
  mkimg_pattern(px, w, h, 1, 11);
  assert_int_equal(mkimg_jpeg_mem(&buf, &n, w, h, 1, 100, px), 0);
  ganc_image img = decode_ok(buf, n, NULL, "gray JPEG");
  assert_int_equal(img.w, w);
  assert_int_equal(img.h, h);
  assert_int_equal(img.c, 1);
  expect_pixels("gray JPEG q100", img.px, px, w, h, 1, 3); // up to 1 seen
  ganc_image_info info;
  char why[256];
  assert_int_equal(ganc_image_probe(buf, n, &info, why, sizeof why), 0);
  assert_int_equal(info.fmt, GANC_IMG_JPEG);
  assert_int_equal(info.w, w);
  assert_int_equal(info.h, h);
  assert_int_equal(info.gray, 1);
  ganc_image_free(&img);
  free(buf);
  free(px);
}

static void test_jpeg_rgb(void **state) {
  (void)state;
  const int w = 61, h = 45; // not multiples of the 8×8 block
  uint8_t *px = xalloc((size_t)w * h * 3), *buf;
  size_t n;
  mkimg_pattern(px, w, h, 3, 12);
  assert_int_equal(mkimg_jpeg_mem(&buf, &n, w, h, 3, 100, px), 0);
  ganc_image img = decode_ok(buf, n, NULL, "RGB JPEG");
  assert_int_equal(img.w, w);
  assert_int_equal(img.h, h);
  assert_int_equal(img.c, 3);
  expect_pixels("RGB JPEG q100", img.px, px, w, h, 3, 6); // YCbCr rounding: up to 4 seen
  ganc_image_info info;
  char why[256];
  assert_int_equal(ganc_image_probe(buf, n, &info, why, sizeof why), 0);
  assert_int_equal(info.gray, 0);
  ganc_image_free(&img);
  free(buf);
  free(px);
}

// mkimg stores CMYK the Photoshop way (255 − ink, Adobe marker); the decoder must give
// R = (255 − C)(255 − K) / 255, likewise G from M and B from Y.
static void test_jpeg_cmyk(void **state) {
  (void)state;
  const int w = 40, h = 32;
  uint8_t *px = xalloc((size_t)w * h * 4), *want = xalloc((size_t)w * h * 3), *buf;
  size_t n;
  mkimg_pattern(px, w, h, 4, 13);
  for (int i = 0; i < w * h; i++)
    for (int k = 0; k < 3; k++)
      want[i * 3 + k] = (uint8_t)(((255 - px[i * 4 + k]) * (255 - px[i * 4 + 3]) + 127) / 255);
  assert_int_equal(mkimg_jpeg_mem(&buf, &n, w, h, 4, 100, px), 0);
  ganc_image img = decode_ok(buf, n, NULL, "CMYK JPEG");
  assert_int_equal(img.w, w);
  assert_int_equal(img.h, h);
  assert_int_equal(img.c, 3);
  expect_pixels("CMYK JPEG q100", img.px, want, w, h, 3, 8); // up to 2 seen
  ganc_image_info info;
  char why[256];
  assert_int_equal(ganc_image_probe(buf, n, &info, why, sizeof why), 0);
  assert_int_equal(info.gray, 0);
  ganc_image_free(&img);
  free(buf);
  free(want);
  free(px);
}

// DCT reduction: the largest 1/d (d in 8, 4, 2) keeping ceil(short/d) >= reduce_short and
// ceil(long/d) >= reduce_long; limits still apply to the stored size.
static void test_jpeg_reduce(void **state) {
  (void)state;
  const int w = 201, h = 121;
  uint8_t *px = xalloc((size_t)w * h * 3), *buf;
  size_t n;
  memset(px, 150, (size_t)w * h * 3);
  for (int i = 0; i < w * h; i++)
    px[i * 3 + 2] = 60; // a constant colour, not gray
  assert_int_equal(mkimg_jpeg_mem(&buf, &n, w, h, 3, 95, px), 0);
  struct {
    int rs, rl, ow, oh;
  } cases[] = {
      {0, 0, 201, 121},   // no reduction asked
      {16, 0, 26, 16},    // 1/8: ceil(121/8) = 16
      {17, 0, 51, 31},    // 1/8 too small → 1/4
      {30, 0, 51, 31},    // ceil(121/4) = 31
      {16, 40, 51, 31},   // the longer side decides: 26 < 40 at 1/8
      {40, 0, 101, 61},   // 1/2
      {61, 101, 101, 61}, // exactly at the limit for 1/2
      {62, 0, 201, 121},  // nothing smaller is allowed
      {500, 500, 201, 121},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ganc_decode_opts o = {0, 0, cases[i].rs, cases[i].rl};
    ganc_image img = decode_ok(buf, n, &o, "reduced JPEG");
    if (img.w != cases[i].ow || img.h != cases[i].oh)
      fail_msg("reduce_short %d reduce_long %d: got %dx%d, expected %dx%d", cases[i].rs,
               cases[i].rl, img.w, img.h, cases[i].ow, cases[i].oh);
    assert_int_equal(img.c, 3);
    for (int p = 0; p < img.w * img.h; p++) { // a constant stays constant
      assert_in_range(img.px[p * 3], 147, 153);
      assert_in_range(img.px[p * 3 + 2], 57, 63);
    }
    ganc_image_free(&img);
  }
  // max_pixels and min_side look at the stored 201×121, not the reduced size.
  ganc_decode_opts o = {(uint64_t)w * h - 1, 0, 16, 0};
  ganc_image img;
  char why[256] = "";
  assert_int_equal(ganc_image_decode(buf, n, &o, &img, why, sizeof why), -1);
  assert_non_null(strstr(why, "too large"));
  o = (ganc_decode_opts){(uint64_t)w * h, 100, 16, 0};
  img = decode_ok(buf, n, &o, "reduced below min_side, stored above it");
  assert_int_equal(img.w, 26);
  ganc_image_free(&img);
  free(buf);
  free(px);
}

// ---- bad input ----------------------------------------------------------------------------------

static void test_truncated_png(void **state) {
  (void)state;
  const int w = 24, h = 20;
  uint8_t *px = xalloc((size_t)w * h * 3), *buf;
  size_t n;
  mkimg_pattern(px, w, h, 3, 21);
  assert_int_equal(mkimg_png_mem(&buf, &n, w, h, PNG_COLOR_TYPE_RGB, 8, 0, px, NULL, 0, NULL, 0),
                   0);
  ganc_image img;
  char why[256] = "";
  assert_int_equal(ganc_image_decode(buf, n / 2, NULL, &img, why, sizeof why), -1);
  assert_non_null(strstr(why, "truncated"));
  assert_null(img.px);
  // Every shorter prefix is refused too, down to an empty buffer, including one that stops
  // after the last IDAT, before IEND (the last 12 bytes).
  for (size_t cut = 0; cut < n; cut++) {
    why[0] = '\0';
    if (ganc_image_decode(buf, cut, NULL, &img, why, sizeof why) != -1)
      fail_msg("PNG cut to %zu of %zu bytes was accepted", cut, n);
    assert_true(why[0] != '\0');
  }
  free(buf);
  free(px);
}

static void test_truncated_jpeg(void **state) {
  (void)state;
  const int w = 48, h = 40;
  uint8_t *px = xalloc((size_t)w * h * 3), *buf;
  size_t n;
  mkimg_pattern(px, w, h, 3, 22);
  assert_int_equal(mkimg_jpeg_mem(&buf, &n, w, h, 3, 90, px), 0);
  ganc_image img;
  char why[256] = "";
  assert_int_equal(ganc_image_decode(buf, n / 2, NULL, &img, why, sizeof why), -1);
  assert_non_null(strstr(why, "JPEG"));
  assert_null(img.px);
  // The header survives a cut at half, so probe still answers.
  ganc_image_info info;
  assert_int_equal(ganc_image_probe(buf, n / 2, &info, why, sizeof why), 0);
  assert_int_equal(info.w, w);
  for (size_t cut = 0; cut < n; cut++) {
    why[0] = '\0';
    if (ganc_image_decode(buf, cut, NULL, &img, why, sizeof why) != -1)
      fail_msg("JPEG cut to %zu of %zu bytes was accepted", cut, n);
    assert_true(why[0] != '\0');
  }
  free(buf);
  free(px);
}

// Flipping any byte after the signature breaks a chunk CRC (or a length), so PNG refuses it.
static void test_corrupt_png_bytes(void **state) {
  (void)state;
  const int w = 9, h = 7;
  uint8_t px[9 * 7 * 2], *buf;
  size_t n;
  mkimg_pattern(px, w, h, 2, 23);
  assert_int_equal(
      mkimg_png_mem(&buf, &n, w, h, PNG_COLOR_TYPE_GRAY_ALPHA, 8, 1, px, NULL, 0, NULL, 0), 0);
  for (size_t i = 8; i < n; i++) {
    buf[i] ^= 0x5a;
    ganc_image img;
    char why[256] = "";
    if (ganc_image_decode(buf, n, NULL, &img, why, sizeof why) != -1)
      fail_msg("PNG with byte %zu of %zu changed was accepted", i, n);
    assert_true(why[0] != '\0');
    buf[i] ^= 0x5a;
  }
  free(buf);
}

// JPEG has no checksums: a damaged byte may still decode, but must never crash or leak.
static void test_corrupt_jpeg_bytes(void **state) {
  (void)state;
  const int w = 32, h = 24;
  uint8_t px[32 * 24 * 3], *buf;
  size_t n;
  mkimg_pattern(px, w, h, 3, 24);
  assert_int_equal(mkimg_jpeg_mem(&buf, &n, w, h, 3, 80, px), 0);
  int refused = 0;
  for (uint32_t t = 0; t < 400; t++) {
    size_t i = 2 + mkimg_hash32(t) % (n - 2);
    uint8_t old = buf[i];
    buf[i] ^= (uint8_t)(1 + mkimg_hash32(t + 1000) % 255);
    ganc_image img;
    char why[256] = "";
    int rc = ganc_image_decode(buf, n, NULL, &img, why, sizeof why);
    if (rc == 0) {
      assert_true(img.w > 0 && img.h > 0 && (img.c == 1 || img.c == 3));
      ganc_image_free(&img);
    } else {
      assert_int_equal(rc, -1);
      assert_true(why[0] != '\0');
      refused++;
    }
    buf[i] = old;
  }
  assert_true(refused > 0);
  free(buf);
}

static void test_garbage(void **state) {
  (void)state;
  uint8_t rnd[1000];
  for (int i = 0; i < 1000; i++)
    rnd[i] = (uint8_t)mkimg_hash32(i + 31);
  expect_refused(NULL, 0, "NULL, 0 bytes");
  expect_refused(rnd, 0, "0 bytes");
  expect_refused(rnd, sizeof rnd, "random bytes");
  const char *text = "This is a text file, not an image.\nIt has two lines.\n";
  expect_refused((const uint8_t *)text, strlen(text), "text");

  uint8_t sig[8 + sizeof rnd] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  memcpy(sig + 8, rnd, sizeof rnd);
  for (size_t len = 8; len <= sizeof sig; len += 37)
    expect_refused(sig, len, "PNG sig + garbage");
  uint8_t soi[3 + sizeof rnd] = {0xFF, 0xD8, 0xFF};
  memcpy(soi + 3, rnd, sizeof rnd);
  for (size_t len = 3; len <= sizeof soi; len += 37)
    expect_refused(soi, len, "JPEG SOI + garbage");

  // Random bytes never look like a header to probe either.
  ganc_image_info info;
  char why[256] = "";
  assert_int_equal(ganc_image_probe(rnd, sizeof rnd, &info, why, sizeof why), -1);
  assert_non_null(strstr(why, "not a PNG or JPEG"));
  assert_int_equal(ganc_image_probe(sig, sizeof sig, &info, why, sizeof why), -1);
  assert_int_equal(ganc_image_probe(soi, sizeof soi, &info, why, sizeof why), -1);
  // A NULL why is allowed.
  ganc_image img;
  assert_int_equal(ganc_image_decode(rnd, sizeof rnd, NULL, &img, NULL, 0), -1);
  assert_int_equal(ganc_image_decode(soi, sizeof soi, NULL, &img, NULL, 0), -1);
  assert_int_equal(ganc_image_decode(sig, sizeof sig, NULL, &img, NULL, 0), -1);
}

static void test_limits(void **state) {
  (void)state;
  const int w = 30, h = 20;
  uint8_t px[30 * 20], *bufs[2];
  size_t ns[2];
  mkimg_pattern(px, w, h, 1, 41);
  assert_int_equal(
      mkimg_png_mem(&bufs[0], &ns[0], w, h, PNG_COLOR_TYPE_GRAY, 8, 0, px, NULL, 0, NULL, 0), 0);
  assert_int_equal(mkimg_jpeg_mem(&bufs[1], &ns[1], w, h, 1, 90, px), 0);
  for (int f = 0; f < 2; f++) {
    ganc_image img;
    char why[256] = "";
    ganc_decode_opts o = {599, 0, 0, 0};
    assert_int_equal(ganc_image_decode(bufs[f], ns[f], &o, &img, why, sizeof why), -1);
    assert_non_null(strstr(why, "too large"));
    assert_null(img.px);
    o = (ganc_decode_opts){0, 21, 0, 0};
    assert_int_equal(ganc_image_decode(bufs[f], ns[f], &o, &img, why, sizeof why), -1);
    assert_non_null(strstr(why, "too small"));
    o = (ganc_decode_opts){600, 20, 0, 0}; // both exactly at the limit: accepted
    img = decode_ok(bufs[f], ns[f], &o, "at the limits");
    assert_int_equal(img.w, w);
    ganc_image_free(&img);
    free(bufs[f]);
  }
}

static void test_sniff(void **state) {
  (void)state;
  uint8_t px[4 * 4], *png, *jpg;
  size_t npng, njpg;
  memset(px, 9, sizeof px);
  assert_int_equal(
      mkimg_png_mem(&png, &npng, 4, 4, PNG_COLOR_TYPE_GRAY, 8, 0, px, NULL, 0, NULL, 0), 0);
  assert_int_equal(mkimg_jpeg_mem(&jpg, &njpg, 4, 4, 1, 90, px), 0);
  assert_int_equal(ganc_image_sniff(png, npng), GANC_IMG_PNG);
  assert_int_equal(ganc_image_sniff(jpg, njpg), GANC_IMG_JPEG);
  assert_int_equal(ganc_image_sniff(png, 8), GANC_IMG_PNG);
  assert_int_equal(ganc_image_sniff(png, 7), GANC_IMG_UNKNOWN); // too short to tell
  assert_int_equal(ganc_image_sniff(jpg, 3), GANC_IMG_JPEG);
  assert_int_equal(ganc_image_sniff(jpg, 2), GANC_IMG_UNKNOWN);
  assert_int_equal(ganc_image_sniff(NULL, 100), GANC_IMG_UNKNOWN);
  assert_int_equal(ganc_image_sniff((const uint8_t *)"GIF89a", 6), GANC_IMG_UNKNOWN);
  assert_int_equal(ganc_image_sniff((const uint8_t *)"\x89PNG\r\n\x1a\r", 8), GANC_IMG_UNKNOWN);
  assert_string_equal(ganc_img_format_name(GANC_IMG_PNG), "PNG");
  assert_string_equal(ganc_img_format_name(GANC_IMG_JPEG), "JPEG");
  assert_string_equal(ganc_img_format_name(GANC_IMG_UNKNOWN), "unknown");
  free(png);
  free(jpg);
}

// The file writers give the same bytes as the memory ones, and read back whole.
static void test_mkimg_files(void **state) {
  (void)state;
  char dir[] = "/tmp/ganc-test-image-XXXXXX", path[64];
  assert_non_null(mkdtemp(dir));
  uint8_t px[20 * 10 * 3], *mem, *file;
  size_t nmem, nfile;
  mkimg_pattern(px, 20, 10, 3, 51);

  snprintf(path, sizeof path, "%s/a.png", dir);
  assert_int_equal(mkimg_png(path, 20, 10, PNG_COLOR_TYPE_RGB, 8, 1, px, NULL, 0, NULL, 0), 0);
  assert_int_equal(
      mkimg_png_mem(&mem, &nmem, 20, 10, PNG_COLOR_TYPE_RGB, 8, 1, px, NULL, 0, NULL, 0), 0);
  assert_int_equal(mkimg_read_file(path, &file, &nfile), 0);
  assert_int_equal(nfile, nmem);
  assert_memory_equal(file, mem, nmem);
  assert_int_equal(unlink(path), 0);
  free(mem);
  free(file);

  snprintf(path, sizeof path, "%s/a.jpg", dir);
  assert_int_equal(mkimg_jpeg(path, 20, 10, 3, 85, px), 0);
  assert_int_equal(mkimg_jpeg_mem(&mem, &nmem, 20, 10, 3, 85, px), 0);
  assert_int_equal(mkimg_read_file(path, &file, &nfile), 0);
  assert_int_equal(nfile, nmem);
  assert_memory_equal(file, mem, nmem);
  assert_int_equal(unlink(path), 0);
  free(mem);
  free(file);

  assert_int_equal(mkimg_read_file(path, &file, &nfile), -1); // gone
  assert_int_equal(rmdir(dir), 0);
  // bad arguments are refused, not crashed on
  assert_int_equal(mkimg_png_mem(&mem, &nmem, 4, 4, PNG_COLOR_TYPE_RGB, 4, 0, px, NULL, 0, NULL, 0),
                   -1);
  assert_int_equal(mkimg_jpeg_mem(&mem, &nmem, 4, 4, 2, 90, px), -1);
}

// ---- fit ----------------------------------------------------------------------------------------

static ganc_image make_image(int w, int h, int c, uint32_t seed) {
  ganc_image img = {w, h, c, xalloc((size_t)w * h * c)};
  mkimg_pattern(img.px, w, h, c, seed);
  return img;
}

static ganc_image make_const(int w, int h, int c, uint8_t v) {
  ganc_image img = {w, h, c, xalloc((size_t)w * h * c)};
  memset(img.px, v, (size_t)w * h * c);
  return img;
}

static void fit_ok(const ganc_image *src, int R, int out_c, ganc_fit fit, uint8_t bg, uint8_t *dst,
                   int *up) {
  char why[256] = "";
  if (ganc_image_fit(src, R, out_c, fit, bg, dst, up, why, sizeof why) != 0)
    fail_msg("fit %dx%d c %d → %d c %d mode %d failed: %s", src->w, src->h, src->c, R, out_c,
             (int)fit, why);
}

// 28×28 into 32: a 2-pixel background border, the original pixels untouched inside.
static void test_fit_pad_border(void **state) {
  (void)state;
  ganc_image src = make_image(28, 28, 1, 61);
  uint8_t dst[32 * 32];
  int up = -1;
  fit_ok(&src, 32, 1, GANC_FIT_PAD, 0, dst, &up);
  assert_int_equal(up, 0);
  for (int y = 0; y < 32; y++)
    for (int x = 0; x < 32; x++) {
      int inside = x >= 2 && x < 30 && y >= 2 && y < 30;
      int want = inside ? src.px[(y - 2) * 28 + (x - 2)] : 0;
      if (dst[y * 32 + x] != want)
        fail_msg("pad: (%d, %d) is %d, expected %d", x, y, dst[y * 32 + x], want);
    }
  ganc_image_free(&src);
}

// Non-square images: the offsets, the rounded size, and never below one pixel.
static void test_fit_pad_shapes(void **state) {
  (void)state;
  struct {
    int w, h, R, tw, th;
  } cases[] = {
      {28, 20, 32, 28, 20},                        // fits: (2, 6)
      {64, 32, 32, 32, 16},                        // halved: (0, 8)
      {100, 33, 32, 32, 11},                       // 33 · 32/100 = 10.56 → 11
      {33, 100, 32, 11, 32}, {1000, 1, 32, 32, 1}, // 0.032 → at least 1
      {5, 90, 64, 4, 64},                          // 3.56 → 4
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const int R = cases[i].R, tw = cases[i].tw, th = cases[i].th;
    const int ox = (R - tw) / 2, oy = (R - th) / 2;
    ganc_image src = make_const(cases[i].w, cases[i].h, 3, 200);
    uint8_t *dst = xalloc((size_t)R * R * 3);
    int up = -1;
    fit_ok(&src, R, 3, GANC_FIT_PAD, 17, dst, &up);
    assert_int_equal(up, 0);
    for (int y = 0; y < R; y++)
      for (int x = 0; x < R; x++) {
        int inside = x >= ox && x < ox + tw && y >= oy && y < oy + th;
        for (int k = 0; k < 3; k++)
          if (dst[(y * R + x) * 3 + k] != (inside ? 200 : 17))
            fail_msg("pad %dx%d into %d: (%d, %d) is %d, expected %s", cases[i].w, cases[i].h, R, x,
                     y, dst[(y * R + x) * 3 + k], inside ? "200" : "background 17");
      }
    free(dst);
    ganc_image_free(&src);
  }
}

// Crop takes the central square; at the same size it is an exact copy.
static void test_fit_crop(void **state) {
  (void)state;
  ganc_image src = make_image(40, 20, 3, 62);
  uint8_t dst[20 * 20 * 3];
  int up = -1;
  fit_ok(&src, 20, 3, GANC_FIT_CROP, 0, dst, &up);
  assert_int_equal(up, 0);
  for (int y = 0; y < 20; y++)
    assert_memory_equal(dst + y * 20 * 3, src.px + ((size_t)y * 40 + 10) * 3, 20 * 3);
  ganc_image_free(&src);

  src = make_image(15, 41, 1, 63); // odd: offset (41 − 15) / 2 = 13
  uint8_t d1[15 * 15];
  fit_ok(&src, 15, 1, GANC_FIT_CROP, 0, d1, &up);
  for (int y = 0; y < 15; y++)
    assert_memory_equal(d1 + y * 15, src.px + (y + 13) * 15, 15);
  ganc_image_free(&src);
}

static void test_fit_upscaled_flag(void **state) {
  (void)state;
  uint8_t *dst = xalloc(64 * 64 * 3);
  struct {
    int w, h, R;
    ganc_fit fit;
    int up;
  } cases[] = {
      {16, 16, 32, GANC_FIT_CROP, 1},   {64, 64, 32, GANC_FIT_CROP, 0},
      {64, 16, 32, GANC_FIT_CROP, 1},   {20, 40, 32, GANC_FIT_RESIZE, 1},
      {40, 40, 32, GANC_FIT_RESIZE, 0}, {32, 32, 32, GANC_FIT_RESIZE, 0},
      {16, 16, 32, GANC_FIT_PAD, 0},    {64, 16, 32, GANC_FIT_PAD, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ganc_image src = make_image(cases[i].w, cases[i].h, 3, 64);
    int up = -1;
    fit_ok(&src, cases[i].R, 3, cases[i].fit, 0, dst, &up);
    if (up != cases[i].up)
      fail_msg("%dx%d mode %d into %d: upscaled %d, expected %d", cases[i].w, cases[i].h,
               (int)cases[i].fit, cases[i].R, up, cases[i].up);
    fit_ok(&src, cases[i].R, 3, cases[i].fit, 0, dst, NULL); // NULL flag is fine
    ganc_image_free(&src);
  }
  free(dst);
}

// A constant image stays exactly constant through any resampling, any channel conversion.
static void test_fit_constant(void **state) {
  (void)state;
  const int sizes[][2] = {{37, 23}, {5, 90}, {300, 200}, {32, 64}, {1, 1}, {2, 3}};
  const int Rs[] = {1, 7, 32, 64};
  uint8_t *dst = xalloc(64 * 64 * 3);
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
    for (int c = 1; c <= 3; c += 2)
      for (size_t r = 0; r < sizeof Rs / sizeof Rs[0]; r++)
        for (int oc = 1; oc <= 3; oc += 2)
          for (int fit = GANC_FIT_CROP; fit <= GANC_FIT_RESIZE; fit++) {
            ganc_image src = make_const(sizes[s][0], sizes[s][1], c, 123);
            fit_ok(&src, Rs[r], oc, (ganc_fit)fit, 0, dst, NULL);
            for (int i = 0; i < Rs[r] * Rs[r] * oc; i++)
              if (dst[i] != 123)
                fail_msg("constant %dx%d c %d → %d c %d mode %d: byte %d is %d", sizes[s][0],
                         sizes[s][1], c, Rs[r], oc, fit, i, dst[i]);
            ganc_image_free(&src);
          }
  free(dst);
}

// Straight alpha over the background: alpha 0 is the background exactly, 255 the colour exactly.
static void test_fit_alpha(void **state) {
  (void)state;
  uint8_t dst[16 * 16 * 3];
  for (int c = 2; c <= 4; c += 2)
    for (int bg = 0; bg <= 255; bg += 255) {
      ganc_image src = make_image(16, 16, c, 65);
      for (int i = 0; i < 16 * 16; i++)
        src.px[i * c + c - 1] = 0;
      for (int oc = 1; oc <= 3; oc += 2)
        for (int fit = GANC_FIT_CROP; fit <= GANC_FIT_PAD; fit++) {
          fit_ok(&src, 16, oc, (ganc_fit)fit, (uint8_t)bg, dst, NULL);
          for (int i = 0; i < 16 * 16 * oc; i++)
            assert_int_equal(dst[i], bg);
          fit_ok(&src, 11, oc, (ganc_fit)fit, (uint8_t)bg, dst, NULL); // resampled too
          for (int i = 0; i < 11 * 11 * oc; i++)
            assert_int_equal(dst[i], bg);
        }
      for (int i = 0; i < 16 * 16; i++)
        src.px[i * c + c - 1] = 255;
      fit_ok(&src, 16, c - 1, GANC_FIT_CROP, (uint8_t)bg, dst, NULL);
      for (int i = 0; i < 16 * 16; i++)
        for (int k = 0; k < c - 1; k++)
          assert_int_equal(dst[i * (c - 1) + k], src.px[i * c + k]);
      ganc_image_free(&src);
    }
  // Half alpha: (a · v + (255 − a) · bg + 127) / 255.
  uint8_t px[4] = {255, 100, 0, 128};
  ganc_image one = {1, 1, 4, px};
  fit_ok(&one, 1, 3, GANC_FIT_CROP, 0, dst, NULL);
  assert_int_equal(dst[0], 128); // (128·255 + 127) / 255
  assert_int_equal(dst[1], 50);  // 12800 / 255 = 50.2
  assert_int_equal(dst[2], 0);
  fit_ok(&one, 1, 3, GANC_FIT_CROP, 255, dst, NULL);
  assert_int_equal(dst[0], 255);
  assert_int_equal(dst[1], 177); // (12800 + 127·255) / 255 = 177.2
  assert_int_equal(dst[2], 127); // 127·255 / 255
}

// Gray → RGB repeats the value; RGB → gray is Rec. 601 luma, rounded.
static void test_fit_channels(void **state) {
  (void)state;
  ganc_image src = make_image(24, 20, 1, 66);
  uint8_t dst[24 * 24 * 3];
  fit_ok(&src, 24, 3, GANC_FIT_PAD, 0, dst, NULL);
  for (int y = 0; y < 20; y++)
    for (int x = 0; x < 24; x++)
      for (int k = 0; k < 3; k++)
        assert_int_equal(dst[((y + 2) * 24 + x) * 3 + k], src.px[y * 24 + x]);
  ganc_image_free(&src);

  uint8_t px[] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 200, 90};
  ganc_image rgb = {4, 1, 3, px};
  fit_ok(&rgb, 4, 1, GANC_FIT_PAD, 0, dst, NULL);
  // row 1 of the 4×4 canvas (offset (4 − 1) / 2 = 1)
  assert_int_equal(dst[4 + 0], 76);  // 76.245
  assert_int_equal(dst[4 + 1], 150); // 149.685
  assert_int_equal(dst[4 + 2], 29);  // 29.07
  assert_int_equal(dst[4 + 3], 131); // 2.99 + 117.4 + 10.26 = 130.65
}

// An axis whose size does not change passes through untouched (Catmull-Rom at scale 1), while
// the other axis is resampled.
static void test_fit_one_axis(void **state) {
  (void)state;
  ganc_image src = make_image(32, 64, 1, 67);
  for (int y = 1; y < 64; y++)
    memcpy(src.px + y * 32, src.px, 32); // every row the same
  uint8_t dst[32 * 32];
  int up = -1;
  fit_ok(&src, 32, 1, GANC_FIT_RESIZE, 0, dst, &up);
  assert_int_equal(up, 0);
  for (int y = 0; y < 32; y++)
    assert_memory_equal(dst + y * 32, src.px, 32);
  ganc_image_free(&src);
}

// A 2× shrink of a one-pixel checkerboard is mid-gray everywhere (antialiased), not 0/255 stripes.
static void test_fit_checkerboard(void **state) {
  (void)state;
  ganc_image src = make_const(64, 64, 1, 0);
  for (int y = 0; y < 64; y++)
    for (int x = 0; x < 64; x++)
      src.px[y * 64 + x] = (x + y) % 2 ? 255 : 0;
  uint8_t dst[32 * 32];
  fit_ok(&src, 32, 1, GANC_FIT_RESIZE, 0, dst, NULL);
  int lo = 255, hi = 0;
  for (int i = 0; i < 32 * 32; i++) {
    lo = dst[i] < lo ? dst[i] : lo;
    hi = dst[i] > hi ? dst[i] : hi;
  }
  if (lo < 112 || hi > 143) fail_msg("checkerboard shrunk 2x spans %d..%d, expected ~128", lo, hi);
  ganc_image_free(&src);
}

static void test_fit_bad_args(void **state) {
  (void)state;
  ganc_image src = make_image(8, 8, 3, 68);
  uint8_t dst[8 * 8 * 3];
  char why[256];
  int up = 7;
  struct {
    int R, oc, fit;
  } bad[] = {{0, 3, GANC_FIT_CROP}, {65537, 3, GANC_FIT_CROP}, {-4, 3, GANC_FIT_CROP},
             {8, 2, GANC_FIT_CROP}, {8, 4, GANC_FIT_CROP},     {8, 3, 7}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    why[0] = '\0';
    assert_int_equal(
        ganc_image_fit(&src, bad[i].R, bad[i].oc, (ganc_fit)bad[i].fit, 0, dst, &up, why, 256), -1);
    assert_true(why[0] != '\0');
    assert_int_equal(up, 0);
  }
  src.c = 5;
  assert_int_equal(ganc_image_fit(&src, 8, 3, GANC_FIT_CROP, 0, dst, NULL, why, 256), -1);
  src.c = 0;
  assert_int_equal(ganc_image_fit(&src, 8, 3, GANC_FIT_CROP, 0, dst, NULL, why, 256), -1);
  src.c = 3;
  assert_int_equal(ganc_image_fit(&src, 8, 3, GANC_FIT_CROP, 0, NULL, NULL, why, 256), -1);
  assert_int_equal(ganc_image_fit(NULL, 8, 3, GANC_FIT_CROP, 0, dst, NULL, NULL, 0), -1);
  ganc_image empty = {0, 0, 3, src.px};
  assert_int_equal(ganc_image_fit(&empty, 8, 3, GANC_FIT_CROP, 0, dst, NULL, why, 256), -1);
  ganc_image_free(&src);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_png_gray),
      cmocka_unit_test(test_png_gray_alpha),
      cmocka_unit_test(test_png_palette),
      cmocka_unit_test(test_png_rgb),
      cmocka_unit_test(test_png_rgba),
      cmocka_unit_test(test_png_16bit_rounding_exhaustive),
      cmocka_unit_test(test_png_gray_palette_probe),
      cmocka_unit_test(test_jpeg_gray),
      cmocka_unit_test(test_jpeg_rgb),
      cmocka_unit_test(test_jpeg_cmyk),
      cmocka_unit_test(test_jpeg_reduce),
      cmocka_unit_test(test_truncated_png),
      cmocka_unit_test(test_truncated_jpeg),
      cmocka_unit_test(test_corrupt_png_bytes),
      cmocka_unit_test(test_corrupt_jpeg_bytes),
      cmocka_unit_test(test_garbage),
      cmocka_unit_test(test_limits),
      cmocka_unit_test(test_sniff),
      cmocka_unit_test(test_mkimg_files),
      cmocka_unit_test(test_fit_pad_border),
      cmocka_unit_test(test_fit_pad_shapes),
      cmocka_unit_test(test_fit_crop),
      cmocka_unit_test(test_fit_upscaled_flag),
      cmocka_unit_test(test_fit_constant),
      cmocka_unit_test(test_fit_alpha),
      cmocka_unit_test(test_fit_channels),
      cmocka_unit_test(test_fit_one_axis),
      cmocka_unit_test(test_fit_checkerboard),
      cmocka_unit_test(test_fit_bad_args),
  };
  return cmocka_run_group_tests_name("image", tests, NULL, NULL);
}
