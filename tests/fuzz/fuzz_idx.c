// fuzz_idx.c — libFuzzer harness for src/data/idx.c (MNIST/Fashion-MNIST IDX files, plain or gzip).
//
// The reader takes a path and looks for a labels file beside the images file, so the input is
// split into two files:
//   byte 0        bit 0: write a labels file; bit 1: name both files with ".gz" (zlib reads gzip
//                 and plain data alike, whatever the name: the name only picks the labels file)
//   bytes 1..4    big-endian length L of the images file (cut to what is there)
//   then          the images file [L], and the labels file (the rest)
// scripts in tests/fuzz (mkseeds) write seeds in this layout from valid plain and gzip files.
// Checks: no crash, leak or undefined behaviour; a failure comes with a message naming the file;
// a success has a consistent shape and labels only when a labels file was there.
#include "fuzz_util.h"

#include "data/idx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 5) return 0;
  int with_labels = data[0] & 1, gz = (data[0] >> 1) & 1;
  size_t len = (size_t)data[1] << 24 | (size_t)data[2] << 16 | (size_t)data[3] << 8 | data[4];
  data += 5;
  size -= 5;
  if (len > size) len = size;
  const char *images = fz_path(0, gz ? "t-images-idx3-ubyte.gz" : "t-images-idx3-ubyte");
  const char *labels = fz_path(1, gz ? "t-labels-idx1-ubyte.gz" : "t-labels-idx1-ubyte");
  // The other name of each, left by an earlier input, would be found as a labels file too.
  fz_unlink(fz_path(2, gz ? "t-images-idx3-ubyte" : "t-images-idx3-ubyte.gz"));
  fz_unlink(fz_path(3, gz ? "t-labels-idx1-ubyte" : "t-labels-idx1-ubyte.gz"));
  fz_write(images, data, len);
  if (with_labels)
    fz_write(labels, data + len, size - len);
  else
    fz_unlink(labels);

  (void)ganc_idx_is_images(images);
  ganc_idx idx;
  ganc_err err = {0};
  int rc = ganc_idx_load(images, &idx, &err);
  // The message names the images file or the labels file: both live in fz_dir().
  fz_check_err("ganc_idx_load", rc, &err, fz_dir());
  if (rc == 0) {
    if (idx.n <= 0 || idx.h <= 0 || idx.w <= 0 || !idx.images) {
      fprintf(stderr, "FINDING: ganc_idx_load succeeded with %d images of %dx%d\n", idx.n, idx.h,
              idx.w);
      abort();
    }
    if (idx.labels && !with_labels) {
      fprintf(stderr, "FINDING: labels without a labels file\n");
      abort();
    }
    // Touch every byte, so ASan sees a buffer shorter than its shape.
    unsigned sum = 0;
    for (size_t i = 0; i < (size_t)idx.n * idx.h * idx.w; i++)
      sum += idx.images[i];
    for (int i = 0; idx.labels && i < idx.n; i++)
      sum += (unsigned)idx.labels[i];
    if (sum == 0xFFFFFFFFu) fprintf(stderr, "\n"); // keep the loop
  }
  ganc_idx_free(&idx);
  return 0;
}
