// fuzz_image.c — libFuzzer harness for src/data/image.c: the input is one image file (PNG, JPEG or
// anything else) as ganc-prep reads it from a folder.
//
// Path: sniff, probe (header only), decode at full size and with the JPEG DCT reduction ganc-prep
// asks for, then fit into R×R with every fit mode, in gray and colour. Beyond "no crash, no leak,
// no undefined behaviour", it checks what image.h promises: every failure comes with a reason;
// the probe and a full decode agree on the size; a decoded image has 1..4 channels and pixels.
#include "data/image.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Four million pixels: ganc-prep's own limit is larger, but a fuzzer's input that claims more
// only tests the refusal, and each decode stays well inside libFuzzer's memory limit.
#define FZ_MAX_PIXELS ((uint64_t)4 << 20)

static void finding(const char *what) {
  fprintf(stderr, "FINDING: %s\n", what);
  abort();
}

static void check_why(int rc, const char *why, const char *what) {
  if (rc == 0) return;
  if (rc != -1) finding(what);
  if (!why[0] || strchr(why, '\n')) {
    fprintf(stderr, "FINDING: %s failed without a one-line reason: '%s'\n", what, why);
    abort();
  }
}

static void fit_all(const ganc_image *img) {
  static uint8_t dst[32 * 32 * 3];
  const int sizes[2] = {5, 32};
  for (int r = 0; r < 2; r++)
    for (int c = 1; c <= 3; c += 2)
      for (int fit = GANC_FIT_CROP; fit <= GANC_FIT_PAD; fit++) {
        char why[256] = "";
        int up = -1;
        int rc = ganc_image_fit(img, sizes[r], c, (ganc_fit)fit, (uint8_t)(fit == 2 ? 255 : 0), dst,
                                &up, why, sizeof why);
        if (rc != 0) {
          fprintf(stderr, "FINDING: fitting a decoded %dx%dx%d image failed: %s\n", img->w, img->h,
                  img->c, why);
          abort();
        }
        if (up != 0 && up != 1) finding("ganc_image_fit left *upscaled unset");
      }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  (void)ganc_img_format_name(ganc_image_sniff(data, size));

  ganc_image_info info;
  char why[256] = "";
  int probed = ganc_image_probe(data, size, &info, why, sizeof why);
  check_why(probed, why, "ganc_image_probe");

  ganc_decode_opts full = {FZ_MAX_PIXELS, 0, 0, 0};
  ganc_image img = {0};
  why[0] = 0;
  int rc = ganc_image_decode(data, size, &full, &img, why, sizeof why);
  check_why(rc, why, "ganc_image_decode");
  if (rc == 0) {
    if (img.w <= 0 || img.h <= 0 || img.c < 1 || img.c > 4 || !img.px)
      finding("ganc_image_decode succeeded with an empty image");
    if (probed == 0 && (info.w != img.w || info.h != img.h)) {
      fprintf(stderr, "FINDING: probe says %dx%d, decode gives %dx%d\n", info.w, info.h, img.w,
              img.h);
      abort();
    }
    fit_all(&img);
  }
  ganc_image_free(&img);

  // ganc-prep's JPEG path: shrink in the DCT while the shorter side stays >= 8, with a minimum.
  ganc_decode_opts reduced = {FZ_MAX_PIXELS, 4, 8, 8};
  why[0] = 0;
  rc = ganc_image_decode(data, size, &reduced, &img, why, sizeof why);
  check_why(rc, why, "ganc_image_decode (reduced)");
  if (rc == 0) {
    if (img.w <= 0 || img.h <= 0 || img.c < 1 || img.c > 4 || !img.px)
      finding("ganc_image_decode (reduced) succeeded with an empty image");
    fit_all(&img);
  }
  ganc_image_free(&img);
  return 0;
}
