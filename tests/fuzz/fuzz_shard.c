// fuzz_shard.c — libFuzzer harness for the shard reader and verifier (src/data/shard.c).
//
// The input is one shard file: it is written as shard-00000.h5 into a folder of its own, which is
// opened as a dataset (ganc_dataset_open: attributes, datasets, types, shapes), verified
// (ganc_dataset_verify: every byte, label range, every source path), then read the ways the loader
// and ganc-prep --info read it (first and last images and sources, the fingerprint).
// Checks: no crash, leak, hang or undefined behaviour; every refusal names the shard file; every
// HDF5 identifier is closed again (see fuzz_util.h).
//
// HDF5 itself (Debian's build) is not instrumented: coverage guides the fuzzer through ganc's
// checks, and a fault inside HDF5 shows as a crash (SEGV) rather than as an ASan report.
#include "fuzz_util.h"

#include "data/shard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHARD_NAME "shard-00000.h5"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fz_h5_baseline();
  return 0;
}

// Reads image i with its label and source, checking that a success says something sane.
static void read_one(const ganc_dataset *ds, int64_t i, uint8_t *px) {
  ganc_err err = {0};
  int32_t label = -2;
  int rc = ganc_dataset_read_image(ds, i, px, &label, &err);
  fz_check_err("ganc_dataset_read_image", rc, &err, SHARD_NAME);
  if (rc == 0 && (label < -1 || (ds->meta.nclasses > 0 && label >= ds->meta.nclasses))) {
    fprintf(stderr, "FINDING: image %lld read with label %d of %d classes\n", (long long)i, label,
            ds->meta.nclasses);
    abort();
  }
  char src[4200];
  memset(&err, 0, sizeof err);
  rc = ganc_dataset_source(ds, i, src, sizeof src, &err);
  fz_check_err("ganc_dataset_source", rc, &err, SHARD_NAME);
  if (rc == 0 && !memchr(src, 0, sizeof src)) {
    fprintf(stderr, "FINDING: ganc_dataset_source gave an unterminated string\n");
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_write(fz_path(0, SHARD_NAME), data, size);
  ganc_dataset ds;
  ganc_err err = {0};
  int rc = ganc_dataset_open(fz_dir(), &ds, &err);
  fz_check_err("ganc_dataset_open", rc, &err, SHARD_NAME);
  if (rc == 0) {
    if (ds.nshards != 1 || ds.count < 0 || ds.image_bytes == 0 || ds.meta.resolution <= 0 ||
        (ds.meta.channels != 1 && ds.meta.channels != 3)) {
      fprintf(
          stderr, "FINDING: opened a dataset of %d shards, %lld images of %zu bytes, R %d C %d\n",
          ds.nshards, (long long)ds.count, ds.image_bytes, ds.meta.resolution, ds.meta.channels);
      abort();
    }
    int64_t *counts = calloc((size_t)ds.meta.nclasses + 1, sizeof *counts);
    memset(&err, 0, sizeof err);
    rc = ganc_dataset_verify(&ds, counts, NULL, &err);
    fz_check_err("ganc_dataset_verify", rc, &err, SHARD_NAME);
    if (rc == 0) {
      int64_t sum = 0;
      for (int k = 0; k < ds.meta.nclasses; k++)
        sum += counts[k];
      if (ds.meta.nclasses > 0 && sum != ds.count) {
        fprintf(stderr, "FINDING: verified, but class counts add up to %lld of %lld images\n",
                (long long)sum, (long long)ds.count);
        abort();
      }
    }
    free(counts);
    // The reads run after a failed verify too: the loader does not verify first.
    uint8_t *px = malloc(ds.image_bytes);
    if (ds.count > 0) {
      read_one(&ds, 0, px);
      read_one(&ds, ds.count - 1, px);
      int64_t n = ds.count < 4 ? ds.count : 4;
      uint8_t *many = malloc((size_t)n * ds.image_bytes);
      int32_t labels[4];
      memset(&err, 0, sizeof err);
      rc = ganc_shard_read(&ds, 0, 0, n, many, labels, &err);
      fz_check_err("ganc_shard_read", rc, &err, SHARD_NAME);
      free(many);
    }
    free(px);
    memset(&err, 0, sizeof err);
    (void)ganc_dataset_fingerprint(&ds, &err);
    ganc_dataset_close(&ds);
  }
  fz_h5_check("reading a shard");
  return 0;
}
