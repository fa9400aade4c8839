// idx.h — the IDX files of MNIST and Fashion-MNIST (gzip-compressed or plain).
#ifndef GANC_IDX_H
#define GANC_IDX_H

#include "core/check.h"

#include <stdint.h>

typedef struct ganc_idx {
  int n, h, w;
  uint8_t *images;   // [n, h, w] gray
  int32_t *labels;   // [n], or NULL when no labels file sits beside the images file
  char *labels_path; // the labels file used, or NULL
} ganc_idx;

// 1 when `path` is an IDX unsigned-byte 3-D (images) file, judged by its magic number.
int ganc_idx_is_images(const char *path);
// Loads the images and, when found beside it ("...-images-idx3-ubyte[.gz]" →
// "...-labels-idx1-ubyte[.gz]"), the labels. Truncated or inconsistent files are errors.
int ganc_idx_load(const char *path, ganc_idx *out, ganc_err *err);
void ganc_idx_free(ganc_idx *idx);

#endif
