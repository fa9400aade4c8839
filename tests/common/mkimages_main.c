// mkimages_main.c — ganc-mkimages: writes a folder of synthetic PNG/JPEG images, for benchmarks
// (scripts/bench-data.sh) and smoke tests, so neither depends on a downloaded dataset.
//   ganc-mkimages DIR N [--size WxH] [--format jpeg|png] [--classes K] [--quality Q]
// Images are DIR/class<k>/img<i>.<ext> (or DIR/img<i>.<ext> when K = 0), each a distinct pattern.
#include "core/check.h"
#include "core/util.h"
#include "mkimg.h"

#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: ganc-mkimages DIR N [--size WxH] [--format jpeg|png] [--classes K] "
                    "[--quality Q]\n");
    return GANC_EXIT_USAGE;
  }
  const char *dir = argv[1];
  long n = atol(argv[2]);
  int w = 256, h = 256, png = 0, classes = 0, quality = 90;
  for (int i = 3; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--size") && sscanf(argv[i + 1], "%dx%d", &w, &h) == 2) continue;
    if (!strcmp(argv[i], "--format")) {
      png = !strcmp(argv[i + 1], "png");
      continue;
    }
    if (!strcmp(argv[i], "--classes")) {
      classes = atoi(argv[i + 1]);
      continue;
    }
    if (!strcmp(argv[i], "--quality")) {
      quality = atoi(argv[i + 1]);
      continue;
    }
    ganc_die(GANC_EXIT_USAGE, "unknown option %s", argv[i]);
  }
  if (n < 1 || w < 1 || h < 1) ganc_die(GANC_EXIT_USAGE, "N, W and H must be positive");
  uint8_t *px = xmalloc((size_t)w * h * 3);
  for (long i = 0; i < n; i++) {
    char sub[64] = "", path[4400];
    if (classes > 0) snprintf(sub, sizeof sub, "class%ld/", i % classes);
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    if (ganc_mkdir_p(path) != 0) ganc_die(GANC_EXIT_RUNTIME, "cannot create %s", path);
    snprintf(path, sizeof path, "%s/%simg%06ld.%s", dir, sub, i, png ? "png" : "jpg");
    mkimg_pattern(px, w, h, 3, (uint32_t)i);
    int rc = png ? mkimg_png(path, w, h, PNG_COLOR_TYPE_RGB, 8, 0, px, NULL, 0, NULL, 0)
                 : mkimg_jpeg(path, w, h, 3, quality, px);
    if (rc) ganc_die(GANC_EXIT_RUNTIME, "cannot write %s", path);
  }
  free(px);
  printf("wrote %ld %dx%d %s images to %s\n", n, w, h, png ? "PNG" : "JPEG", dir);
  return 0;
}
