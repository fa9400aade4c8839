// test_imgio.c — what ganc writes for people to look at (src/io/png_write.c, src/io/gif_write.c)
// and the SHA-256 that names a checkpoint (src/core/sha256.c).
//
// PNGs and GIFs are read back with the libraries' own decoders (libpng, giflib's DGifSlurp), so
// pixels, text chunks and extensions are checked as any other reader would see them. SHA-256 is
// checked against FIPS 180-4 / NIST example vectors and digests from Python's hashlib (lengths
// around the 55/56/64-byte padding edges).
// cmocka.h needs these three first, so the block is kept out of include sorting.
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
// clang-format on

#include "core/check.h" // ganc_err
#include "core/util.h"  // ganc_mkdir_p, ganc_rm_rf, ganc_path_join, ganc_is_file
#include "io/imgio.h"   // what is tested
#include "io/tb.h"      // TensorBoard's record checksums

#include <dirent.h>
#include <errno.h>
#include <gif_lib.h>
#include <png.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define MACHINE_DESC                                                                               \
  "Machine-generated image: made by a trained generative model (ganc); not a photograph."

static char *g_dir; // GANC_TEST_TMP/imgio-<pid>, made by the group setup

static char *tmp_path(const char *name) { return ganc_path_join(g_dir, name); }

// Names in g_dir (not . and ..); fails if any looks like one of our temporary files.
static int dir_entries(const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  struct dirent *e;
  int n = 0;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (strstr(e->d_name, ".tmp-")) fail_msg("temporary file left behind: %s", e->d_name);
    n++;
  }
  closedir(d);
  return n;
}

// A test pattern that depends on every coordinate, so a misplaced row or channel shows.
static uint8_t *pattern(int n, int h, int w, int c, unsigned seed) {
  uint8_t *p = malloc((size_t)n * h * w * c);
  assert_non_null(p);
  for (size_t i = 0; i < (size_t)n * h * w * c; i++)
    p[i] = (uint8_t)((i * 2654435761u + seed * 40503u) >> 7);
  return p;
}

// Pseudo-random bytes (xorshift64*): incompressible, and with every colour a different one.
static uint8_t *noise(size_t n, uint64_t seed) {
  uint8_t *p = malloc(n);
  assert_non_null(p);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; i++) {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    p[i] = (uint8_t)((x * 0x2545F4914F6CDD1Dull) >> 56);
  }
  return p;
}

// ---- PNG read-back (libpng) ---------------------------------------------------------------------

typedef struct rd_text {
  char key[80];
  char *text;
  int itxt; // stored as iTXt
} rd_text;

typedef struct rd_png {
  int w, h, c;
  uint8_t *px;
  int ntext;
  rd_text t[32];
} rd_png;

static void rd_png_free(rd_png *r) {
  free(r->px);
  for (int i = 0; i < r->ntext; i++)
    free(r->t[i].text);
}

static void on_rd_error(png_structp png, png_const_charp msg) {
  (void)png;
  fail_msg("libpng could not read back the PNG: %s", msg);
}

static void on_rd_warning(png_structp png, png_const_charp msg) {
  (void)png;
  fail_msg("libpng warned reading back the PNG: %s", msg);
}

static void read_png(const char *path, rd_png *r) {
  memset(r, 0, sizeof *r);
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("cannot open %s: %s", path, strerror(errno));
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, on_rd_error, on_rd_warning);
  png_infop info = png_create_info_struct(png);
  assert_non_null(png);
  assert_non_null(info);
  png_init_io(png, f);
  png_read_info(png, info);
  assert_int_equal(png_get_bit_depth(png, info), 8);
  assert_int_equal(png_get_interlace_type(png, info), PNG_INTERLACE_NONE);
  int ct = png_get_color_type(png, info);
  assert_true(ct == PNG_COLOR_TYPE_GRAY || ct == PNG_COLOR_TYPE_RGB);
  r->w = (int)png_get_image_width(png, info);
  r->h = (int)png_get_image_height(png, info);
  r->c = ct == PNG_COLOR_TYPE_GRAY ? 1 : 3;
  size_t stride = (size_t)r->w * r->c;
  assert_int_equal(png_get_rowbytes(png, info), stride);
  r->px = malloc(stride * r->h);
  assert_non_null(r->px);
  for (int y = 0; y < r->h; y++)
    png_read_row(png, r->px + y * stride, NULL);
  png_read_end(png, info); // text after IDAT lands in info too
  png_textp text;
  int n = 0;
  png_get_text(png, info, &text, &n);
  assert_true(n <= 32);
  for (int i = 0; i < n; i++) {
    snprintf(r->t[i].key, sizeof r->t[i].key, "%s", text[i].key);
    r->t[i].text = strdup(text[i].text ? text[i].text : "");
    r->t[i].itxt = text[i].compression >= PNG_ITXT_COMPRESSION_NONE;
  }
  r->ntext = n;
  png_destroy_read_struct(&png, &info, NULL);
  fclose(f);
}

static const rd_text *find_text(const rd_png *r, const char *key) {
  const rd_text *hit = NULL;
  for (int i = 0; i < r->ntext; i++)
    if (!strcmp(r->t[i].key, key)) {
      if (hit) fail_msg("text key %s appears twice", key);
      hit = &r->t[i];
    }
  return hit;
}

// ---- PNG tests ----------------------------------------------------------------------------------

static void test_png_gray_plain(void **state) {
  (void)state;
  int w = 37, h = 23;
  uint8_t *px = pattern(1, h, w, 1, 1);
  char *path = tmp_path("gray.png");
  ganc_err err = {0};
  assert_int_equal(ganc_png_write(path, w, h, 1, px, NULL, &err), 0);
  assert_int_equal(err.code, 0);
  rd_png r;
  read_png(path, &r);
  assert_int_equal(r.w, w);
  assert_int_equal(r.h, h);
  assert_int_equal(r.c, 1);
  assert_memory_equal(r.px, px, (size_t)w * h);
  const rd_text *sw = find_text(&r, "Software");
  assert_non_null(sw);
  assert_string_equal(sw->text, "ganc " GANC_VERSION);
  assert_int_equal(sw->itxt, 0);
  // Not machine_generated: no XMP and no statement.
  assert_null(find_text(&r, "XML:com.adobe.xmp"));
  assert_null(find_text(&r, "Description"));
  assert_int_equal(r.ntext, 1);
  rd_png_free(&r);
  free(path);
  free(px);
}

static void test_png_rgb_machine_generated(void **state) {
  (void)state;
  int w = 40, h = 17;
  uint8_t *px = pattern(1, h, w, 3, 2);
  char *path = tmp_path("rgb.png");
  const char *sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  const char *utf8 = "caf\xc3\xa9 \xe2\x98\x95 (UTF-8)";
  ganc_png_kv kv[] = {{"ganc:checkpoint-sha256", sha},
                      {"ganc:seed", "42"},
                      {"ganc:truncation", "0.7"},
                      {"ganc:caption", utf8},
                      {"ganc:empty", ""}};
  ganc_png_meta meta = {.machine_generated = 1, .kv = kv, .nkv = 5};
  ganc_err err = {0};
  assert_int_equal(ganc_png_write(path, w, h, 3, px, &meta, &err), 0);
  rd_png r;
  read_png(path, &r);
  assert_int_equal(r.w, w);
  assert_int_equal(r.h, h);
  assert_int_equal(r.c, 3);
  assert_memory_equal(r.px, px, (size_t)w * h * 3);
  assert_non_null(find_text(&r, "Software"));
  const rd_text *desc = find_text(&r, "Description");
  assert_non_null(desc);
  assert_string_equal(desc->text, MACHINE_DESC);
  const rd_text *xmp = find_text(&r, "XML:com.adobe.xmp");
  assert_non_null(xmp);
  assert_int_equal(xmp->itxt, 1);
  assert_non_null(strstr(xmp->text, "<x:xmpmeta"));
  assert_non_null(strstr(xmp->text, "<rdf:RDF"));
  assert_non_null(
      strstr(xmp->text, "xmlns:Iptc4xmpExt=\"http://iptc.org/std/Iptc4xmpExt/2008-02-29/\""));
  assert_non_null(strstr(xmp->text, "Iptc4xmpExt:DigitalSourceType=\"http://cv.iptc.org/newscodes/"
                                    "digitalsourcetype/trainedAlgorithmicMedia\""));
  for (int i = 0; i < 5; i++) {
    const rd_text *t = find_text(&r, kv[i].key);
    if (!t) fail_msg("key %s missing", kv[i].key);
    assert_string_equal(t->text, kv[i].value);
    assert_int_equal(t->itxt, i == 3); // only the non-ASCII value goes as iTXt
  }
  assert_int_equal(r.ntext, 3 + 5);
  rd_png_free(&r);
  free(path);
  free(px);
}

static void test_png_atomic_overwrite(void **state) {
  (void)state;
  char *sub = tmp_path("atomic");
  assert_int_equal(ganc_mkdir_p(sub), 0);
  char *path = ganc_path_join(sub, "fakes.png");
  ganc_err err = {0};
  uint8_t *a = pattern(1, 8, 8, 3, 3), *b = pattern(1, 8, 8, 3, 4);
  assert_int_equal(ganc_png_write(path, 8, 8, 3, a, NULL, &err), 0);
  assert_int_equal(dir_entries(sub), 1);
  assert_int_equal(ganc_png_write(path, 8, 8, 3, b, NULL, &err), 0); // replaces the first
  assert_int_equal(dir_entries(sub), 1);
  rd_png r;
  read_png(path, &r);
  assert_memory_equal(r.px, b, 8 * 8 * 3);
  rd_png_free(&r);
  free(a);
  free(b);
  free(path);
  free(sub);
}

static void test_png_missing_folder(void **state) {
  (void)state;
  char *missing = tmp_path("no-such-folder");
  char *path = ganc_path_join(missing, "fakes.png");
  uint8_t px[12] = {0};
  ganc_err err = {0};
  assert_int_equal(ganc_png_write(path, 2, 2, 3, px, NULL, &err), -1);
  assert_int_equal(err.code, GANC_EXIT_RUNTIME);
  if (!strstr(err.msg, path)) fail_msg("message does not name %s: %s", path, err.msg);
  assert_non_null(strstr(err.msg, strerror(ENOENT)));
  assert_false(ganc_is_file(path));
  assert_false(ganc_is_dir(missing)); // and nothing was made on the way
  free(path);
  free(missing);
}

static void test_png_bad_arguments(void **state) {
  (void)state;
  char *sub = tmp_path("badargs");
  assert_int_equal(ganc_mkdir_p(sub), 0);
  char *path = ganc_path_join(sub, "x.png");
  uint8_t px[12] = {0};
  char long_key[81];
  memset(long_key, 'k', 80);
  long_key[80] = 0;
  const char *bad_keys[] = {"", long_key, " lead", "two  spaces", "tab\there"};
  for (int i = 0; i < 5; i++) {
    ganc_png_kv kv = {bad_keys[i], "v"};
    ganc_png_meta meta = {.machine_generated = 1, .kv = &kv, .nkv = 1};
    ganc_err err = {0};
    assert_int_equal(ganc_png_write(path, 2, 2, 3, px, &meta, &err), -1);
    assert_int_equal(err.code, GANC_EXIT_USAGE);
    assert_non_null(strstr(err.msg, path));
  }
  // 79 characters is the most a key may have.
  long_key[79] = 0;
  ganc_png_kv kv = {long_key, "v"};
  ganc_png_meta meta = {.kv = &kv, .nkv = 1};
  ganc_err err = {0};
  assert_int_equal(ganc_png_write(path, 2, 2, 3, px, &meta, &err), 0);
  rd_png r;
  read_png(path, &r);
  assert_non_null(find_text(&r, long_key));
  rd_png_free(&r);
  // A value that is not UTF-8, and a bad shape.
  ganc_png_kv bad_value = {"k", "\xff\xfe"};
  meta = (ganc_png_meta){.kv = &bad_value, .nkv = 1};
  err = (ganc_err){0};
  assert_int_equal(ganc_png_write(path, 2, 2, 3, px, &meta, &err), -1);
  err = (ganc_err){0};
  assert_int_equal(ganc_png_write(path, 2, 2, 2, px, NULL, &err), -1);
  assert_int_equal(err.code, GANC_EXIT_USAGE);
  assert_int_equal(dir_entries(sub), 1); // only the good one
  free(path);
  free(sub);
}

// ---- grid ---------------------------------------------------------------------------------------

static void check_grid(int n, int h, int w, int c, int rows, int cols) {
  uint8_t *imgs = pattern(n, h, w, c, (unsigned)(n + rows));
  for (size_t i = 0; i < (size_t)n * h * w * c; i++) // no zeros, so a black cell is unmistakable
    imgs[i] |= 1;
  size_t out_n = (size_t)rows * h * cols * w * c;
  uint8_t *out = malloc(out_n);
  assert_non_null(out);
  memset(out, 0xAB, out_n); // the grid must overwrite everything
  ganc_grid(imgs, n, h, w, c, rows, cols, out);
  size_t stride = (size_t)cols * w * c;
  for (int k = 0; k < rows * cols; k++) {
    int gy = k / cols, gx = k % cols;
    for (int y = 0; y < h; y++) {
      const uint8_t *got = out + ((size_t)gy * h + y) * stride + (size_t)gx * w * c;
      if (k < n) {
        const uint8_t *want = imgs + (((size_t)k * h + y) * w) * c;
        if (memcmp(got, want, (size_t)w * c))
          fail_msg("grid %dx%d: cell %d row %d differs from image %d", rows, cols, k, y, k);
      } else {
        for (int i = 0; i < w * c; i++)
          if (got[i]) fail_msg("grid %dx%d: empty cell %d is not black", rows, cols, k);
      }
    }
  }
  free(out);
  free(imgs);
}

static void test_grid(void **state) {
  (void)state;
  check_grid(5, 3, 4, 3, 2, 3); // wide, one empty cell
  check_grid(5, 3, 4, 3, 3, 2); // tall, one empty cell
  check_grid(6, 5, 2, 1, 2, 3); // full, gray
  check_grid(1, 7, 9, 3, 1, 1);
  check_grid(2, 4, 4, 1, 4, 4); // mostly empty
}

// ---- GIF read-back (giflib) ---------------------------------------------------------------------

static GifFileType *slurp(const char *path) {
  int code = 0;
  GifFileType *gif = DGifOpenFileName(path, &code);
  if (!gif) fail_msg("giflib cannot open %s: %s", path, GifErrorString(code));
  if (DGifSlurp(gif) != GIF_OK) fail_msg("DGifSlurp %s: %s", path, GifErrorString(gif->Error));
  return gif;
}

static void unslurp(GifFileType *gif) {
  int code = 0;
  assert_int_equal(DGifCloseFile(gif, &code), GIF_OK);
}

// Extensions before the first image are attached to it by DGifSlurp; trailing ones to the file.
// Finds the first extension block with `code` and returns its index in *blocks (or -1).
static int find_ext(GifFileType *gif, int code, ExtensionBlock **blocks, int *count) {
  for (int pass = 0; pass < 2; pass++) {
    ExtensionBlock *b = pass ? gif->ExtensionBlocks : gif->SavedImages[0].ExtensionBlocks;
    int n = pass ? gif->ExtensionBlockCount : gif->SavedImages[0].ExtensionBlockCount;
    for (int i = 0; i < n; i++)
      if (b[i].Function == code) {
        *blocks = b;
        *count = n;
        return i;
      }
  }
  return -1;
}

// The file-level checks every GIF of ours must pass; returns the comment text (malloc'd).
static char *check_gif_container(GifFileType *gif, const char *path, int F, int w, int h,
                                 int delay) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  char sig[7] = {0};
  assert_int_equal(fread(sig, 1, 6, f), 6);
  fclose(f);
  assert_string_equal(sig, "GIF89a");
  assert_int_equal(gif->SWidth, w);
  assert_int_equal(gif->SHeight, h);
  assert_int_equal(gif->ImageCount, F);
  assert_non_null(gif->SColorMap);
  for (int i = 0; i < F; i++) {
    assert_int_equal(gif->SavedImages[i].ImageDesc.Width, w);
    assert_int_equal(gif->SavedImages[i].ImageDesc.Height, h);
    GraphicsControlBlock gcb;
    assert_int_equal(DGifSavedExtensionToGCB(gif, i, &gcb), GIF_OK);
    assert_int_equal(gcb.DelayTime, delay);
    assert_int_equal(gcb.TransparentColor, NO_TRANSPARENT_COLOR);
  }
  // Loop forever: NETSCAPE2.0, then the sub-block {1, 0, 0}.
  ExtensionBlock *b = NULL;
  int n = 0, at = find_ext(gif, APPLICATION_EXT_FUNC_CODE, &b, &n);
  assert_true(at >= 0);
  assert_int_equal(b[at].ByteCount, 11);
  assert_memory_equal(b[at].Bytes, "NETSCAPE2.0", 11);
  assert_true(at + 1 < n);
  assert_int_equal(b[at + 1].Function, CONTINUE_EXT_FUNC_CODE);
  assert_int_equal(b[at + 1].ByteCount, 3);
  assert_int_equal(b[at + 1].Bytes[0], 1);
  assert_int_equal(b[at + 1].Bytes[1] | b[at + 1].Bytes[2] << 8, 0);
  // Comment: the first block and its continuations.
  at = find_ext(gif, COMMENT_EXT_FUNC_CODE, &b, &n);
  assert_true(at >= 0);
  size_t len = 0;
  char *text = malloc(1);
  for (int i = at; i < n && (i == at || b[i].Function == CONTINUE_EXT_FUNC_CODE); i++) {
    text = realloc(text, len + (size_t)b[i].ByteCount + 1);
    memcpy(text + len, b[i].Bytes, (size_t)b[i].ByteCount);
    len += (size_t)b[i].ByteCount;
  }
  text[len] = 0;
  return text;
}

static const GifColorType *frame_rgb(GifFileType *gif, int f, int i) {
  ColorMapObject *map = gif->SavedImages[f].ImageDesc.ColorMap;
  if (!map) map = gif->SColorMap;
  int idx = gif->SavedImages[f].RasterBits[i];
  assert_true(idx < map->ColorCount);
  return &map->Colors[idx];
}

// ---- GIF tests ----------------------------------------------------------------------------------

static void test_gif_gray_exact(void **state) {
  (void)state;
  int F = 4, w = 33, h = 21;
  uint8_t *frames = pattern(F, h, w, 1, 5);
  char *path = tmp_path("gray.gif");
  // A comment longer than one 255-byte sub-block.
  char comment[600];
  for (int i = 0; i < 599; i++)
    comment[i] = (char)('a' + i % 26);
  comment[599] = 0;
  ganc_err err = {0};
  assert_int_equal(ganc_gif_write(path, F, w, h, 1, frames, 7, comment, &err), 0);
  GifFileType *gif = slurp(path);
  char *text = check_gif_container(gif, path, F, w, h, 7);
  assert_non_null(strstr(text, MACHINE_DESC));
  assert_non_null(strstr(text, comment));
  free(text);
  for (int f = 0; f < F; f++)
    for (int i = 0; i < w * h; i++) {
      const GifColorType *col = frame_rgb(gif, f, i);
      uint8_t want = frames[(size_t)f * w * h + i];
      if (col->Red != want || col->Green != want || col->Blue != want)
        fail_msg("gray frame %d pixel %d: got (%d,%d,%d), want %d", f, i, col->Red, col->Green,
                 col->Blue, want);
    }
  unslurp(gif);
  free(path);
  free(frames);
}

// Mean and max absolute error per channel between the GIF and the RGB frames.
static void rgb_error(GifFileType *gif, const uint8_t *frames, int F, int w, int h, double mean[3],
                      int *max) {
  double sum[3] = {0, 0, 0};
  *max = 0;
  for (int f = 0; f < F; f++)
    for (int i = 0; i < w * h; i++) {
      const GifColorType *col = frame_rgb(gif, f, i);
      const uint8_t *p = frames + ((size_t)f * w * h + i) * 3;
      int d[3] = {abs(col->Red - p[0]), abs(col->Green - p[1]), abs(col->Blue - p[2])};
      for (int k = 0; k < 3; k++) {
        sum[k] += d[k];
        if (d[k] > *max) *max = d[k];
      }
    }
  for (int k = 0; k < 3; k++)
    mean[k] = sum[k] / ((double)F * w * h);
}

static void test_gif_rgb_smooth(void **state) {
  (void)state;
  int F = 3, w = 96, h = 80;
  uint8_t *frames = malloc((size_t)F * w * h * 3);
  assert_non_null(frames);
  // A smooth colour field sliding sideways: ~7,000 colours on one surface of the RGB cube, so 256
  // boxes of ~16 x 16 levels cover it (mean error ~4). (Three unrelated surfaces, one per frame,
  // would need ~28-level boxes: mean error ~7 — the limit of any 256-colour palette, not a bug.)
  for (int f = 0; f < F; f++)
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        uint8_t *p = frames + (((size_t)f * h + y) * w + x) * 3;
        int u = (x + 6 * f) % w; // moves 6 pixels a frame
        p[0] = (uint8_t)(255 * u / (w - 1));
        p[1] = (uint8_t)(255 * y / (h - 1));
        p[2] = (uint8_t)(255 - (255 * u / (w - 1) + 255 * y / (h - 1)) / 2);
      }
  char *path = tmp_path("rgb-smooth.gif");
  ganc_err err = {0};
  assert_int_equal(ganc_gif_write(path, F, w, h, 3, frames, 10, NULL, &err), 0);
  GifFileType *gif = slurp(path);
  char *text = check_gif_container(gif, path, F, w, h, 10);
  assert_string_equal(text, MACHINE_DESC);
  free(text);
  assert_int_equal(gif->SColorMap->ColorCount, 256);
  double mean[3];
  int max;
  rgb_error(gif, frames, F, w, h, mean, &max);
  print_message("smooth RGB: mean abs error %.2f %.2f %.2f, max %d\n", mean[0], mean[1], mean[2],
                max);
  for (int k = 0; k < 3; k++)
    if (mean[k] >= 6) fail_msg("channel %d: mean abs error %.2f >= 6", k, mean[k]);
  assert_true(max <= 24);
  unslurp(gif);
  free(path);
  free(frames);
}

static void test_gif_rgb_few_colours_exact(void **state) {
  (void)state;
  int F = 2, w = 50, h = 30;
  // 256 distinct colours, many of them one step apart (same 5-bit bin), spread over both frames.
  uint8_t colours[256][3];
  for (int i = 0; i < 256; i++) {
    colours[i][0] = (uint8_t)(i % 4);           // 0..3: one 5-bit bin
    colours[i][1] = (uint8_t)(i / 4 * 4 % 256); // steps of 4
    colours[i][2] = (uint8_t)(200 + i % 7);
  }
  uint8_t *frames = malloc((size_t)F * w * h * 3);
  assert_non_null(frames);
  for (int i = 0; i < F * w * h; i++)
    memcpy(frames + 3 * (size_t)i, colours[(i * 7 + i / 13) % 256], 3);
  char *path = tmp_path("rgb-few.gif");
  ganc_err err = {0};
  assert_int_equal(ganc_gif_write(path, F, w, h, 3, frames, 0, "few", &err), 0);
  GifFileType *gif = slurp(path);
  free(check_gif_container(gif, path, F, w, h, 0));
  double mean[3];
  int max;
  rgb_error(gif, frames, F, w, h, mean, &max);
  assert_int_equal(max, 0);
  unslurp(gif);

  // Three colours: a 4-entry table, still exact.
  for (int i = 0; i < F * w * h; i++)
    memcpy(frames + 3 * (size_t)i, colours[i % 3], 3);
  assert_int_equal(ganc_gif_write(path, F, w, h, 3, frames, 5, NULL, &err), 0);
  gif = slurp(path);
  free(check_gif_container(gif, path, F, w, h, 5));
  assert_int_equal(gif->SColorMap->ColorCount, 4);
  rgb_error(gif, frames, F, w, h, mean, &max);
  assert_int_equal(max, 0);
  unslurp(gif);
  free(path);
  free(frames);
}

static void test_gif_missing_folder(void **state) {
  (void)state;
  char *missing = tmp_path("no-such-folder-gif");
  char *path = ganc_path_join(missing, "walk.gif");
  uint8_t px[2 * 4 * 4 * 3] = {0};
  ganc_err err = {0};
  assert_int_equal(ganc_gif_write(path, 2, 4, 4, 3, px, 10, NULL, &err), -1);
  assert_int_equal(err.code, GANC_EXIT_RUNTIME);
  if (!strstr(err.msg, path)) fail_msg("message does not name %s: %s", path, err.msg);
  assert_false(ganc_is_file(path));
  assert_false(ganc_is_dir(missing));
  // And a bad shape is refused before anything is made.
  err = (ganc_err){0};
  char *p2 = tmp_path("bad.gif");
  assert_int_equal(ganc_gif_write(p2, 0, 4, 4, 3, px, 10, NULL, &err), -1);
  assert_int_equal(err.code, GANC_EXIT_USAGE);
  assert_false(ganc_is_file(p2));
  free(p2);
  free(path);
  free(missing);
}

// ---- a write that fails half-way ---------------------------------------------------------------

// With the file-size limit at 4 KiB (and SIGXFSZ ignored) every write past it fails with EFBIG, as
// a full disk fails with ENOSPC: the call must fail naming the path and the reason, remove its
// temporary file and leave the previous file at path untouched.
static void test_write_fails_halfway(void **state) {
  (void)state;
  char *sub = tmp_path("fsize");
  assert_int_equal(ganc_mkdir_p(sub), 0);
  char *png = ganc_path_join(sub, "fakes.png"), *gif = ganc_path_join(sub, "walk.gif");
  int w = 128, h = 128, F = 3;
  uint8_t *px = noise((size_t)F * h * w * 3, 11); // incompressible: well past 4 KiB
  uint8_t small[4 * 4 * 3] = {1, 2, 3};
  ganc_err err = {0};
  assert_int_equal(ganc_png_write(png, 4, 4, 3, small, NULL, &err), 0);
  assert_int_equal(ganc_gif_write(gif, 1, 4, 4, 3, small, 10, NULL, &err), 0);

  struct rlimit old, lim;
  assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
  lim = old;
  lim.rlim_cur = 4096;
  void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
  ganc_err perr = {0}, gerr = {0};
  int prc = ganc_png_write(png, w, h, 3, px, NULL, &perr);
  int grc = ganc_gif_write(gif, F, w, h, 3, px, 10, NULL, &gerr);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
  signal(SIGXFSZ, old_handler);

  assert_int_equal(prc, -1);
  assert_int_equal(grc, -1);
  const ganc_err *errs[2] = {&perr, &gerr};
  const char *paths[2] = {png, gif};
  for (int i = 0; i < 2; i++) {
    if (!strstr(errs[i]->msg, paths[i]) || !strstr(errs[i]->msg, strerror(EFBIG)))
      fail_msg("message should name %s and say \"%s\": %s", paths[i], strerror(EFBIG),
               errs[i]->msg);
  }
  assert_int_equal(dir_entries(sub), 2); // no temporary files
  rd_png r;
  read_png(png, &r); // the old PNG, whole
  assert_int_equal(r.w, 4);
  assert_memory_equal(r.px, small, sizeof small);
  rd_png_free(&r);
  GifFileType *g = slurp(gif); // the old GIF, whole
  assert_int_equal(g->SWidth, 4);
  assert_int_equal(g->ImageCount, 1);
  unslurp(g);
  free(px);
  free(png);
  free(gif);
  free(sub);
}

// ---- SHA-256 ------------------------------------------------------------------------------------

static void hex_of(const uint8_t d[32], char hex[65]) {
  for (int i = 0; i < 32; i++)
    snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

static void expect_sha(const void *data, size_t n, const char *want) {
  uint8_t d[32];
  char hex[65];
  ganc_sha256(data, n, d);
  hex_of(d, hex);
  if (strcmp(hex, want)) fail_msg("sha256 of %zu bytes: %s, want %s", n, hex, want);
}

static void test_sha256_vectors(void **state) {
  (void)state;
  expect_sha("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  expect_sha("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  expect_sha(m448, strlen(m448),
             "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  size_t million = 1000000;
  char *a = malloc(million);
  assert_non_null(a);
  memset(a, 'a', million);
  expect_sha(a, million, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // Padding edges (digests from Python's hashlib).
  expect_sha(a, 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  expect_sha(a, 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
  expect_sha(a, 63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34");
  expect_sha(a, 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
  expect_sha(a, 119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb");
  expect_sha(a, 120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c");
  free(a);
}

static void test_sha256_file(void **state) {
  (void)state;
  // 2.5 MiB + 17 bytes: several 1 MiB reads and a partial block at the end.
  size_t n = (5u << 19) + 17;
  uint8_t *buf = pattern(1, 1, (int)n, 1, 9);
  char *path = tmp_path("blob.bin");
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(buf, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
  uint8_t d[32];
  char want[65], got[65];
  ganc_sha256(buf, n, d);
  hex_of(d, want);
  ganc_err err = {0};
  assert_int_equal(ganc_sha256_file(path, got, &err), 0);
  assert_string_equal(got, want);
  // An empty file.
  f = fopen(path, "wb");
  assert_non_null(f);
  fclose(f);
  assert_int_equal(ganc_sha256_file(path, got, &err), 0);
  assert_string_equal(got, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  free(path);
  free(buf);
}

static void test_sha256_missing_file(void **state) {
  (void)state;
  char *path = tmp_path("no-such-checkpoint.h5");
  char hex[65];
  ganc_err err = {0};
  assert_int_equal(ganc_sha256_file(path, hex, &err), -1);
  assert_int_equal(err.code, GANC_EXIT_RUNTIME);
  if (!strstr(err.msg, path)) fail_msg("message does not name %s: %s", path, err.msg);
  assert_non_null(strstr(err.msg, strerror(ENOENT)));
  // A folder is not a file either.
  err = (ganc_err){0};
  assert_int_equal(ganc_sha256_file(g_dir, hex, &err), -1);
  assert_non_null(strstr(err.msg, g_dir));
  free(path);
}

// ---- main ---------------------------------------------------------------------------------------

static int setup(void **state) {
  (void)state;
  char name[64];
  snprintf(name, sizeof name, "imgio-%ld", (long)getpid());
  g_dir = ganc_path_join(GANC_TEST_TMP, name);
  if (ganc_rm_rf(g_dir) != 0 || ganc_mkdir_p(g_dir) != 0) {
    fprintf(stderr, "cannot make %s: %s\n", g_dir, strerror(errno));
    return -1;
  }
  return 0;
}

static int teardown(void **state) {
  (void)state;
  int rc = ganc_rm_rf(g_dir);
  free(g_dir);
  return rc;
}

// TFRecord framing of the TensorBoard event files: CRC-32C's check value (RFC 3720's test vector
// "123456789" → 0xE3069283), the empty string, and the mask applied to it.
static void test_crc32c(void **state) {
  (void)state;
  assert_int_equal(ganc_crc32c("123456789", 9), 0xE3069283u);
  assert_int_equal(ganc_crc32c("", 0), 0u);
  const uint32_t c = 0xE3069283u;
  assert_int_equal(ganc_crc32c_masked("123456789", 9), ((c >> 15) | (c << 17)) + 0xA282EAD8u);
}

// An event file's first record: 8-byte length, its masked CRC, the Event, the Event's masked CRC.
static void test_tb_record_framing(void **state) {
  (void)state;
  char dir[512];
  snprintf(dir, sizeof dir, "%s/tb_framing", GANC_TEST_TMP);
  ganc_rm_rf(dir);
  assert_int_equal(ganc_mkdir_p(dir), 0);
  ganc_tb *tb;
  ganc_err err = {0};
  assert_int_equal(ganc_tb_open(dir, 0, &tb, &err), 0);
  const char *tags[] = {"loss/D"};
  const double v[] = {0.5};
  assert_int_equal(ganc_tb_scalars(tb, 64, tags, v, 1, &err), 0);
  uint8_t *buf;
  size_t n;
  assert_int_equal(ganc_read_file(ganc_tb_path(tb), 1 << 20, &buf, &n), 0);
  ganc_tb_close(tb);
  size_t at = 0;
  int records = 0;
  while (at < n) { // every record's two checksums hold, and the records tile the file exactly
    assert_true(at + 12 <= n);
    uint64_t len = 0;
    uint32_t c1 = 0, c2 = 0;
    for (int i = 7; i >= 0; i--)
      len = (len << 8) | buf[at + i];
    for (int i = 3; i >= 0; i--)
      c1 = (c1 << 8) | buf[at + 8 + i];
    assert_int_equal(c1, ganc_crc32c_masked(buf + at, 8));
    assert_true(at + 12 + len + 4 <= n);
    for (int i = 3; i >= 0; i--)
      c2 = (c2 << 8) | buf[at + 12 + len + i];
    assert_int_equal(c2, ganc_crc32c_masked(buf + at + 12, len));
    at += 12 + len + 4;
    records++;
  }
  assert_int_equal(records, 3); // the file version, the session START, the scalar
  free(buf);
  ganc_rm_rf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_crc32c),
      cmocka_unit_test(test_tb_record_framing),
      cmocka_unit_test(test_png_gray_plain),
      cmocka_unit_test(test_png_rgb_machine_generated),
      cmocka_unit_test(test_png_atomic_overwrite),
      cmocka_unit_test(test_png_missing_folder),
      cmocka_unit_test(test_png_bad_arguments),
      cmocka_unit_test(test_grid),
      cmocka_unit_test(test_gif_gray_exact),
      cmocka_unit_test(test_gif_rgb_smooth),
      cmocka_unit_test(test_gif_rgb_few_colours_exact),
      cmocka_unit_test(test_gif_missing_folder),
      cmocka_unit_test(test_write_fails_halfway),
      cmocka_unit_test(test_sha256_vectors),
      cmocka_unit_test(test_sha256_file),
      cmocka_unit_test(test_sha256_missing_file),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
