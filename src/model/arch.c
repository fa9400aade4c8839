// arch.c — the table of network families (see arch.h).
#include "model/arch.h"

#include "core/check.h"
#include "model/dcgan.h"
#include "model/resnet.h"

#include <string.h>

typedef struct arch_row {
  const char *name;
  void (*build_g)(ganc_net *g, const ganc_config *c, const char *name);
  void (*build_d)(ganc_net *d, const ganc_config *c);
} arch_row;

static const arch_row ARCHS[] = {
    {"dcgan", dcgan_build_g, dcgan_build_d},
    {"resnet", resnet_build_g, resnet_build_d},
};

static const arch_row *find(const ganc_config *c) {
  for (size_t i = 0; i < sizeof ARCHS / sizeof ARCHS[0]; i++)
    if (!strcmp(ARCHS[i].name, c->arch)) return &ARCHS[i];
  // The config table only admits the names above: reaching here is a programming error.
  ganc_die(GANC_EXIT_RUNTIME, "internal error: no builder for model.arch = %s", c->arch);
}

void ganc_build_g(ganc_net *g, const ganc_config *c, const char *name) {
  find(c)->build_g(g, c, name);
}
void ganc_build_d(ganc_net *d, const ganc_config *c) { find(c)->build_d(d, c); }

int ganc_d_input(ganc_net *d, const ganc_config *c) {
  int h = GANC_NET_INPUT;
  // ADA's order: geometric (the blit) before colour; DiffAugment's colour, translation, cutout.
  const int modes =
      (c->aug_xflip ? GANC_AUG_BLIT_FLIP : 0) | (c->aug_rot90 ? GANC_AUG_BLIT_ROT90 : 0);
  if (modes) h = net_blit(d, "aug.blit", h, modes);
  if (c->aug_color) h = net_augment(d, "aug.color", h, GANC_AUG_COLOR, 0);
  if (c->aug_translation)
    h = net_augment(d, "aug.translation", h, GANC_AUG_TRANSLATION, (float)c->aug_translation_ratio);
  if (c->aug_cutout)
    h = net_augment(d, "aug.cutout", h, GANC_AUG_CUTOUT, (float)c->aug_cutout_ratio);
  return h;
}
