// featnet.h — a feature network read from HDF5 (the layout of scripts/featnet.py and
// docs/METRICS.md: FID's Inception-v3, or any network of the same node kinds) and run on ganc's
// ops, CPU or CUDA: uint8 images in, one feature row per image out.
#ifndef GANC_FEATNET_H
#define GANC_FEATNET_H

#include "core/check.h"
#include "core/ctx.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ganc_featnet ganc_featnet;

// Loads the network in `path` for images of R×R×C (C 1 or 3) in batches of up to max_batch on
// ctx's backend. Every attribute, shape and weight is checked; returns 0, or -1 with err naming
// the file and the node.
int ganc_featnet_load(const char *path, ganc_ctx *ctx, int R, int C, int max_batch,
                      ganc_featnet **out, ganc_err *err);
// The features of n (<= max_batch) host images [n, R, R, C] into host out [n, dim].
void ganc_featnet_run(ganc_featnet *fn, ganc_ctx *ctx, const uint8_t *images, int n, float *out);
// Images delivered m at a time: images at .. at + m − 1 (m <= the network's max_batch) into out.
typedef void (*ganc_images_fn)(void *user, int64_t at, int m, uint8_t *out);
// The features [n, dim] (malloc'd) of n images from `images`, with a progress line on `progress`
// (NULL: none).
float *ganc_featnet_features(ganc_featnet *fn, ganc_ctx *ctx, int64_t n, ganc_images_fn images,
                             void *user, FILE *progress);
int ganc_featnet_dim(const ganc_featnet *fn);
const char *ganc_featnet_name(const ganc_featnet *fn);
void ganc_featnet_free(ganc_featnet *fn, ganc_ctx *ctx);

#ifdef __cplusplus
}
#endif

#endif
