// checkpoint.h — training checkpoints as HDF5 files that h5py can read.
//
// Layout (every float tensor float32, chunked, Fletcher32-checksummed):
//   /<net>/params/<tensor>    e.g. /G/params/b1.conv.weight [4,4,128,256] ([R,S,C,K])
//   /<net>/buffers/<tensor>   batch-norm running statistics
//   /<net>/adam_m/<tensor>, /<net>/adam_v/<tensor>  Adam moments (trained nets only); attr adam_t
// for <net> in G, G_ema, D; and root attributes: format "ganc-checkpoint", format_version, ganc
// version, created, step, nimg, kimg, dataset_fingerprint, data_dir, loader_seed/epoch/cursor,
// config (the resolved INI text), arch (one line per net).
//
// Saving writes "<path>.tmp-<pid>", flushes it to disk, then renames it over <path>: a kill at
// any moment leaves either the old file or the new one, never half of one.
#ifndef GANC_CHECKPOINT_H
#define GANC_CHECKPOINT_H

#include "core/check.h"
#include "data/loader.h"
#include "model/net.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GANC_CKPT_FORMAT "ganc-checkpoint"
#define GANC_CKPT_VERSION 1

typedef struct ganc_ckpt_meta {
  int version;
  int64_t step; // optimizer steps taken (D and G steps count as one)
  int64_t nimg; // real images shown to D
  uint64_t fingerprint;
  ganc_loader_state loader;
  char *config;   // resolved config text
  char *data_dir; // the shard folder trained on
  char *created;
} ganc_ckpt_meta;

void ganc_ckpt_meta_free(ganc_ckpt_meta *m);

// Saves nets (parameters, buffers and, where allocated, Adam moments) with meta.
int ganc_ckpt_save(const char *path, ganc_ctx *ctx, const ganc_ckpt_meta *meta,
                   ganc_net *const *nets, int nnets, ganc_err *err);
// Reads the root attributes; refuses (exit-2 error) a file that is not a ganc checkpoint, is of a
// newer format, or is damaged.
int ganc_ckpt_read_meta(const char *path, ganc_ckpt_meta *meta, ganc_err *err);
// Reads every tensor of every network in the file (checksums verified), so a resume can pass
// over a damaged checkpoint to an older intact one. 0, or -1 with an error naming the tensor.
int ganc_ckpt_verify(const char *path, ganc_err *err);
// Loads the tensors of group `group` ("G", "G_ema", "D") into net, whose architecture must match
// tensor for tensor (names and shapes): otherwise an error that names the first difference.
// with_optimizer also loads Adam moments and the step count. Checksums are verified.
int ganc_ckpt_load_net(const char *path, ganc_ctx *ctx, ganc_net *net, const char *group,
                       int with_optimizer, ganc_err *err);

#ifdef __cplusplus
}
#endif

#endif
