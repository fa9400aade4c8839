// fuzz_featnet.c — libFuzzer harness for the feature-network reader (src/metrics/featnet.c): a
// user's HDF5 network file (ganc-metrics --featnet, metrics.featnet).
//
// The input is one file, net.h5: loaded for 8x8 grayscale images in batches of 1 on the CPU
// (every attribute, shape and weight checked, sizes bounded), and when it loads, run on one image.
// Checks: no crash, leak, hang or undefined behaviour; every refusal names the file; every HDF5
// identifier is closed again (fuzz_util.h).
#include "fuzz_util.h"

#include "core/ctx.h"
#include "metrics/featnet.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NET_NAME "net.h5"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fz_h5_baseline();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_write(fz_path(0, NET_NAME), data, size);
  ganc_ctx ctx;
  ganc_ctx_init_cpu(&ctx, 1);
  ganc_featnet *fn = NULL;
  ganc_err err = {0};
  int rc = ganc_featnet_load(fz_path(0, NET_NAME), &ctx, 8, 1, 1, &fn, &err);
  fz_check_err("ganc_featnet_load", rc, &err, NET_NAME);
  fz_h5_check("ganc_featnet_load");
  if (rc == 0) {
    const int d = ganc_featnet_dim(fn);
    if (d < 1 || d > 65536) {
      fprintf(stderr, "FINDING: a network of %d features loaded\n", d);
      abort();
    }
    uint8_t img[64];
    for (int i = 0; i < 64; i++)
      img[i] = (uint8_t)(i * 37);
    float *out = malloc(sizeof(float) * (size_t)d);
    ganc_featnet_run(fn, &ctx, img, 1, out);
    free(out);
    ganc_featnet_free(fn, &ctx);
  }
  ganc_ctx_free(&ctx);
  return 0;
}
