// resnet.c — the ResNet generator and discriminator as graphs (see resnet.h).
#include "model/resnet.h"

#include "model/arch.h" // ganc_d_input

#include <math.h>
#include <stdio.h>
#include <string.h>

// SNGAN's initialisation (Xavier) as a normal: std = gain · sqrt(2 / (fan_in + fan_out)), gain
// √2 in the residual branches (ReLU follows), 1 on the skips and the heads.
static float xavier(int R, int cin, int cout, double gain) {
  return (float)(gain * sqrt(2.0 / ((double)R * R * cin + (double)R * R * cout)));
}

static int conv(ganc_net *n, const char *blk, const char *what, int in, int cin, int cout, int R,
                int sn, double gain) {
  char nm[32];
  snprintf(nm, sizeof nm, "%s.%s", blk, what);
  return net_conv(n, nm, in, cout, R, 1, R / 2, sn, xavier(R, cin, cout, gain));
}

void resnet_build_g(ganc_net *g, const ganc_config *c, const char *name) {
  const int L = ganc_log2i(c->resolution / 4), sn = !strcmp(c->spectral_norm, "gd");
  const int cond = !strcmp(c->conditional, "yes");
  net_init(g, name, 1, 1, c->z_dim);
  g->bn_eps = (float)c->bn_eps;
  g->bn_momentum = (float)c->bn_momentum;
  g->ncls = cond ? c->classes : 0;
  int cin = ganc_cap_width((long)c->g_base << L, c->g_max);
  int h = net_convt(g, "in.linear", GANC_NET_INPUT, cin, 4, 1, 0, sn,
                    xavier(1, c->z_dim, 16 * cin, 1.0)); // 1x1 → 4x4
  char blk[16], nm[32];
  for (int j = 0; j < L; j++) {
    int cout = ganc_cap_width((long)c->g_base << (L - 1 - j), c->g_max);
    snprintf(blk, sizeof blk, "b%d", j);
    snprintf(nm, sizeof nm, "%s.bn1", blk);
    int r = net_relu(g, net_bn(g, nm, h, cond));
    snprintf(nm, sizeof nm, "%s.up", blk);
    r = conv(g, blk, "conv1", net_upsample(g, nm, r), cin, cout, 3, sn, sqrt(2.0));
    snprintf(nm, sizeof nm, "%s.bn2", blk);
    r = conv(g, blk, "conv2", net_relu(g, net_bn(g, nm, r, cond)), cout, cout, 3, sn, sqrt(2.0));
    snprintf(nm, sizeof nm, "%s.skip_up", blk);
    int s = conv(g, blk, "skip", net_upsample(g, nm, h), cin, cout, 1, sn, 1.0);
    snprintf(nm, sizeof nm, "%s.add", blk);
    h = net_add(g, nm, r, s);
    cin = cout;
  }
  h = net_relu(g, net_bn(g, "out.bn", h, 0));
  net_tanh(g, conv(g, "out", "conv", h, cin, c->channels, 3, sn, 1.0));
}

void resnet_build_d(ganc_net *d, const ganc_config *c) {
  const int L = ganc_log2i(c->resolution / 4), sn = strcmp(c->spectral_norm, "none") != 0;
  const int cond = !strcmp(c->conditional, "yes");
  net_init(d, "D", c->resolution, c->resolution, c->channels);
  d->bn_eps = (float)c->bn_eps;
  d->bn_momentum = (float)c->bn_momentum;
  d->ncls = cond ? c->classes : 0;
  int h = ganc_d_input(d, c), cin = c->channels;
  char blk[16], nm[32];
  for (int i = 0; i < L; i++) {
    int cout = ganc_cap_width((long)c->d_base << i, c->d_max);
    snprintf(blk, sizeof blk, "b%d", i);
    int r = i == 0 ? h : net_relu(d, h);
    r = conv(d, blk, "conv1", r, cin, cout, 3, sn, sqrt(2.0));
    r = conv(d, blk, "conv2", net_relu(d, r), cout, cout, 3, sn, sqrt(2.0));
    snprintf(nm, sizeof nm, "%s.pool", blk);
    r = net_avgpool(d, nm, r);
    int s;
    snprintf(nm, sizeof nm, "%s.skip_pool", blk);
    if (i == 0) // pool first: the 1x1 convolution then runs on a quarter of the pixels
      s = conv(d, blk, "skip", net_avgpool(d, nm, h), cin, cout, 1, sn, 1.0);
    else
      s = net_avgpool(d, nm, conv(d, blk, "skip", h, cin, cout, 1, sn, 1.0));
    snprintf(nm, sizeof nm, "%s.add", blk);
    h = net_add(d, nm, r, s);
    cin = cout;
  }
  h = net_sumpool(d, "out.sum", net_relu(d, h));
  int logit = net_conv(d, "out.linear", h, 1, 1, 1, 0, sn, xavier(1, cin, 1, 1.0));
  // The projection's class embedding starts as SNGAN's projection discriminator starts it
  // (Xavier); a 1/C start, 15x smaller, left D's class term near zero for the first steps.
  if (cond)
    net_add(d, "out.add", logit, net_embed(d, "out.embed", h, xavier(1, d->ncls, cin, 1.0)));
}
