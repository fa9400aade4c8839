// arch.h — the network families by name (config model.arch): one builder each for G and D.
// A new architecture is one builder and one row here; the trainer, sampler, benchmarks and
// tests build networks only through these two calls.
#ifndef GANC_ARCH_H
#define GANC_ARCH_H

#include "model/net.h"
#include "train/config.h"

#ifdef __cplusplus
extern "C" {
#endif

// The generator (named `name`: "G" or "G_ema") and the discriminator of c->arch. c must be
// resolved (resolution, channels, and classes when conditional).
void ganc_build_g(ganc_net *g, const ganc_config *c, const char *name);
void ganc_build_d(ganc_net *d, const ganc_config *c);
// For the builders: the blocks between 4x4 and R (R a power of two: log2(R/4) when called with
// R/4), and a width capped at max.
static inline int ganc_log2i(int v) {
  int l = 0;
  while ((1 << l) < v)
    l++;
  return l;
}
static inline int ganc_cap_width(long v, int max) { return v > max ? max : (int)v; }

// For the D builders: the node D's own layers read — the input, through DiffAugment's transforms
// (colour, translation, cutout, in that order) where the config's [augment] section asks.
int ganc_d_input(ganc_net *d, const ganc_config *c);

#ifdef __cplusplus
}
#endif

#endif
