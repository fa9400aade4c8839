// dcgan.c — the DCGAN generator and discriminator as layer lists (see dcgan.h).
#include "model/dcgan.h"

#include <stdio.h>

static int log2i(int v) {
  int l = 0;
  while ((1 << l) < v)
    l++;
  return l;
}

static int cap(long v, int max) { return v > max ? max : (int)v; }

void dcgan_build_g(ganc_net *g, const ganc_config *c, const char *name) {
  int L = log2i(c->resolution / 4); // upsamplings from 4x4: the last one makes the image
  net_init(g, name, 1, 1, c->z_dim);
  g->bn_eps = (float)c->bn_eps;
  g->bn_momentum = (float)c->bn_momentum;
  char nm[32];
  for (int j = 0; j < L; j++) {
    int ch = cap((long)c->g_base << (L - 1 - j), c->g_max);
    snprintf(nm, sizeof nm, "b%d.conv", j);
    if (j == 0)
      net_convt(g, nm, ch, 4, 1, 0); // 1x1 → 4x4
    else
      net_convt(g, nm, ch, 4, 2, 1);
    snprintf(nm, sizeof nm, "b%d.bn", j);
    net_bn(g, nm);
    net_relu(g);
  }
  net_convt(g, "out.conv", c->channels, 4, 2, 1);
  net_tanh(g);
}

void dcgan_build_d(ganc_net *d, const ganc_config *c) {
  int M = log2i(c->resolution / 4); // downsamplings to 4x4
  net_init(d, "D", c->resolution, c->resolution, c->channels);
  d->bn_eps = (float)c->bn_eps;
  d->bn_momentum = (float)c->bn_momentum;
  char nm[32];
  for (int i = 0; i < M; i++) {
    snprintf(nm, sizeof nm, "b%d.conv", i);
    net_conv(d, nm, cap((long)c->d_base << i, c->d_max), 4, 2, 1);
    if (i > 0) { // DCGAN: no batch norm on the first block
      snprintf(nm, sizeof nm, "b%d.bn", i);
      net_bn(d, nm);
    }
    net_lrelu(d, (float)c->lrelu_slope);
  }
  net_conv(d, "head.conv", 1, 4, 1, 0); // 4x4 → 1x1: the logit
}
