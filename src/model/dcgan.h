// dcgan.h — the DCGAN family (Radford et al. 2015, as in the PyTorch DCGAN example) built from a
// config: the number of blocks follows from the resolution, widths double per block up to a cap.
#ifndef GANC_DCGAN_H
#define GANC_DCGAN_H

#include "model/net.h"
#include "train/config.h"

#ifdef __cplusplus
extern "C" {
#endif

// G: z [1,1,z_dim] → convT 4x4 (1→4) + BN + ReLU → [convT 4x4 s2 + BN + ReLU]… → convT 4x4 s2 →
// tanh → [R,R,channels]. Widths from the top: min(g_base · 2^(L−1−j), g_max), L = log2(R/4).
// c->resolution and c->channels must be resolved (> 0). model.spectral_norm = gd normalises its
// weights; DCGAN has no conditional form.
void dcgan_build_g(ganc_net *g, const ganc_config *c, const char *name);
// D: x [R,R,channels] → conv 4x4 s2 + LReLU → [conv 4x4 s2 + BN + LReLU]… down to 4x4 → conv 4x4
// (4→1) → one logit. Widths min(d_base · 2^i, d_max); spectral norm on every weight when
// model.spectral_norm is d or gd.
void dcgan_build_d(ganc_net *d, const ganc_config *c);

#ifdef __cplusplus
}
#endif

#endif
