// dcgan.c — the DCGAN generator and discriminator as layer lists (see dcgan.h).
#include "model/dcgan.h"

#include "model/arch.h" // ganc_d_input

#include <stdio.h>
#include <string.h>

void dcgan_build_g(ganc_net *g, const ganc_config *c, const char *name) {
  int L = ganc_log2i(c->resolution / 4); // upsamplings from 4x4: the last one makes the image
  const int sn = !strcmp(c->spectral_norm, "gd");
  net_init(g, name, 1, 1, c->z_dim);
  g->bn_eps = (float)c->bn_eps;
  g->bn_momentum = (float)c->bn_momentum;
  char nm[32];
  int h = GANC_NET_INPUT;
  for (int j = 0; j < L; j++) {
    int ch = ganc_cap_width((long)c->g_base << (L - 1 - j), c->g_max);
    snprintf(nm, sizeof nm, "b%d.conv", j);
    if (j == 0)
      h = net_convt(g, nm, h, ch, 4, 1, 0, sn, 0); // 1x1 → 4x4
    else
      h = net_convt(g, nm, h, ch, 4, 2, 1, sn, 0);
    snprintf(nm, sizeof nm, "b%d.bn", j);
    h = net_relu(g, net_bn(g, nm, h, 0));
  }
  net_tanh(g, net_convt(g, "out.conv", h, c->channels, 4, 2, 1, sn, 0));
}

void dcgan_build_d(ganc_net *d, const ganc_config *c) {
  int M = ganc_log2i(c->resolution / 4); // downsamplings to 4x4
  const int sn = strcmp(c->spectral_norm, "none") != 0;
  net_init(d, "D", c->resolution, c->resolution, c->channels);
  d->bn_eps = (float)c->bn_eps;
  d->bn_momentum = (float)c->bn_momentum;
  char nm[32];
  int h = ganc_d_input(d, c);
  for (int i = 0; i < M; i++) {
    snprintf(nm, sizeof nm, "b%d.conv", i);
    h = net_conv(d, nm, h, ganc_cap_width((long)c->d_base << i, c->d_max), 4, 2, 1, sn, 0);
    if (i > 0) { // DCGAN: no batch norm on the first block
      snprintf(nm, sizeof nm, "b%d.bn", i);
      h = net_bn(d, nm, h, 0);
    }
    h = net_lrelu(d, h, (float)c->lrelu_slope);
  }
  net_conv(d, "head.conv", h, 1, 4, 1, 0, sn, 0); // 4x4 → 1x1: the logit
}
