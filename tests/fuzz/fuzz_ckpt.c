// fuzz_ckpt.c — libFuzzer harness for the checkpoint loader (src/train/checkpoint.c).
//
// The input is one checkpoint file (written as ckpt.h5 in the scratch folder), read the way
// ganc-train resumes: verify (every tensor), read_meta (root attributes), the config text it
// carries parsed like a resume parses it, then every network loaded into a small DCGAN of the
// architecture the seeds were saved with (fz_ckpt_config: 32x32 gray, z_dim 2, one channel per
// layer), so matching files reach the tensor reads and others the architecture refusals.
// Checks: no crash, leak or undefined behaviour; every refusal names the file; every HDF5
// identifier closed again; a meta that loads has sane values (see below).
#include "fuzz_util.h"

#include "fuzz_ckpt.h"

#include "model/dcgan.h"
#include "train/checkpoint.h"
#include "train/config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ganc_ctx g_ctx;
static ganc_net g_G, g_G_ema, g_D;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  ganc_ctx_init_cpu(&g_ctx, 1);
  ganc_config c;
  fz_ckpt_config(&c);
  dcgan_build_g(&g_G, &c, "G");
  dcgan_build_g(&g_G_ema, &c, "G_ema");
  dcgan_build_d(&g_D, &c);
  net_finalize(&g_ctx, &g_G, 1, 1);
  net_finalize(&g_ctx, &g_G_ema, 1, 0);
  net_finalize(&g_ctx, &g_D, 1, 1);
  fz_h5_baseline();
  return 0;
}

static void load(ganc_net *net, const char *group, int with_optimizer, const char *path) {
  ganc_err err = {0};
  net->adam_t = 0;
  int rc = ganc_ckpt_load_net(path, &g_ctx, net, group, with_optimizer, &err);
  fz_check_err("ganc_ckpt_load_net", rc, &err, "ckpt.h5");
  if (rc == 0 && net->adam_t < 0) {
    fprintf(stderr, "FINDING: loading %s accepted adam_t %lld\n", group, (long long)net->adam_t);
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fz_path(0, "ckpt.h5");
  fz_write(path, data, size);

  ganc_err err = {0};
  int rc = ganc_ckpt_verify(path, &err);
  fz_check_err("ganc_ckpt_verify", rc, &err, "ckpt.h5");

  ganc_ckpt_meta meta;
  memset(&err, 0, sizeof err);
  rc = ganc_ckpt_read_meta(path, &meta, &err);
  fz_check_err("ganc_ckpt_read_meta", rc, &err, "ckpt.h5");
  if (rc == 0) {
    // What a resume does with the numbers: none may be negative (kimg = nimg / 1000 is shown and
    // compared with the config's length).
    if (meta.step < 0 || meta.nimg < 0 || meta.loader.epoch < 0 || meta.loader.cursor < 0) {
      fprintf(stderr, "FINDING: read_meta accepted step %lld, nimg %lld, epoch %lld, cursor %lld\n",
              (long long)meta.step, (long long)meta.nimg, (long long)meta.loader.epoch,
              (long long)meta.loader.cursor);
      abort();
    }
    if (!meta.config || !meta.data_dir || !meta.created) {
      fprintf(stderr, "FINDING: read_meta succeeded with a missing string\n");
      abort();
    }
    ganc_config c;
    ganc_config_defaults(&c);
    ganc_err cerr = {0};
    if (ganc_config_load_string(&c, meta.config, path, &cerr) == 0)
      (void)ganc_config_validate(&c, &cerr);
    ganc_ckpt_meta_free(&meta);
  }
  // Loaded whatever verify said: sampling loads G_ema without verifying first.
  load(&g_G, "G", 1, path);
  load(&g_G_ema, "G_ema", 0, path);
  load(&g_D, "D", 1, path);
  fz_h5_check("reading a checkpoint");
  return 0;
}
