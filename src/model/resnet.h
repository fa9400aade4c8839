// resnet.h — the ResNet family (SNGAN, Miyato et al. 2018; BigGAN-style conditioning) built from a
// config, as graphs of residual blocks. The block count follows from the resolution (4x4 up to R,
// R down to 4x4), widths double per halving from g_base / d_base up to g_max / d_max.
#ifndef GANC_RESNET_H
#define GANC_RESNET_H

#include "model/net.h"
#include "train/config.h"

#ifdef __cplusplus
extern "C" {
#endif

// G: z [1,1,z_dim] → linear to 4x4 (a transposed 4x4 convolution) → L up-blocks → BN → ReLU →
// conv 3x3 → tanh → [R,R,channels], L = log2(R/4). Up-block (Cin → Cout):
//   h = conv3x3(ReLU(BN(conv3x3(upsample(ReLU(BN(x))))))),  skip = conv1x1(upsample(x)),  h + skip
// with class-conditional batch norm when the config is conditional (classes > 0).
void resnet_build_g(ganc_net *g, const ganc_config *c, const char *name);
// D: x [R,R,channels] → L down-blocks to 4x4 → ReLU → global sum pooling → linear → the logit,
// plus the projection term <h, embed[label]> when conditional. The first block:
//   h = avgpool(conv3x3(ReLU(conv3x3(x)))),  skip = conv1x1(avgpool(x));
// the others: h = avgpool(conv3x3(ReLU(conv3x3(ReLU(x))))),  skip = avgpool(conv1x1(x)).
void resnet_build_d(ganc_net *d, const ganc_config *c);

#ifdef __cplusplus
}
#endif

#endif
