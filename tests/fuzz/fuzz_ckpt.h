// fuzz_ckpt.h — the architecture of the checkpoint seeds (mkseeds.c) and of the networks the
// checkpoint harness loads them into (fuzz_ckpt.c): the smallest DCGAN a config allows, so a seed
// is small and every input runs fast.
#ifndef GANC_FUZZ_CKPT_H
#define GANC_FUZZ_CKPT_H

#include "train/config.h"

static inline void fz_ckpt_config(ganc_config *c) {
  ganc_config_defaults(c);
  c->resolution = 32;
  c->channels = 1;
  c->z_dim = 2;
  c->g_base = c->d_base = 1;
  c->g_max = c->d_max = 1;
}

#endif
