// checkpoint.h — training checkpoints as HDF5 files that h5py can read.
//
// Layout (format 2; every tensor float32, chunked, Fletcher32-checksummed):
//   /<net>/params/<tensor>    e.g. /G/params/b1.conv.weight [4,4,128,256] ([R,S,C,K])
//   /<net>/buffers/<tensor>   batch-norm running statistics
//   /<net>/adam_m/<tensor>, /<net>/adam_v/<tensor>  Adam moments (trained nets only); attr adam_t
// for <net> in G, G_ema, D (each group also has `arch` and `attr_sha256`); and root attributes:
// format "ganc-checkpoint", format_version, ganc_version, created, step, nimg, kimg,
// dataset_fingerprint, data_dir, loader_seed/epoch/cursor, config (the resolved INI text),
// class_names (conditional runs), lecam_ema_real/lecam_ema_fake/lecam_decay_pow (train.lecam
// runs: float64), and attr_sha256. Strings are fixed-length UTF-8, integers 64-bit. The file uses
// HDF5 1.10's layout (io/h5attr.h): superblock, object headers (so every attribute) and chunk
// indexes carry checksums, tensors carry Fletcher32, and attr_sha256 (a SHA-256 over all the other
// attributes of the root or group) is checked on every load: no byte of a checkpoint goes
// unchecked.
//
// Reading checks every value, not only its checksum: integers are read as 64-bit integers (a float
// nimg is refused) and range-checked; tensors must be float32 with Fletcher32, of the model's
// shape, finite, and Adam's second moments non-negative. Every error names the file (exit 2).
//
// Format 1 (ganc before format 2: variable-length strings in an unchecksummed global heap, which
// HDF5 1.10 reads out of bounds when damaged) still loads: a child process copies it into the
// current layout in memory (so a damaged file can crash or hang only that child, which is then
// reported as damage), and the copy goes through every check above except attr_sha256, which
// format 1 lacks (meta.version says so: callers print a one-line note).
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
#define GANC_CKPT_VERSION 2
// The largest step, nimg, adam_t, loader epoch and cursor a checkpoint may hold (10^12 images is
// centuries of training at today's speeds): larger values are damage, refused before use.
#define GANC_CKPT_MAX_COUNT 1000000000000LL

typedef struct ganc_ckpt_meta {
  int version;  // the file's format_version (1: older, without attribute checksums)
  int64_t step; // optimizer steps taken (D and G steps count as one)
  int64_t nimg; // real images shown to D
  uint64_t fingerprint;
  ganc_loader_state loader;
  char *config;   // resolved config text
  char *data_dir; // the shard folder trained on
  char *created;
  int nclasses;       // a class-conditional run: the dataset's classes (0: none recorded)
  char **class_names; // [nclasses], for ganc-sample --class NAME
  // train.lecam's moving averages (ops/lecam_core.h state[0..2]: D's mean output on reals and on
  // fakes, biased, and decay^k), so that a resume continues them exactly; has_lecam = 0: none
  // (LeCam off, or a checkpoint from before it).
  int has_lecam;
  double lecam[3];
  // ADA (augment.ada_target > 0): p, and its controller's state (ops/augment_core.h state[0..2]:
  // the signs and images counted since the last adjustment, and the last r_t, NaN before the
  // first), so that a resume continues p exactly; has_ada = 0: none.
  int has_ada;
  double ada[4];
} ganc_ckpt_meta;

void ganc_ckpt_meta_free(ganc_ckpt_meta *m);

// Saves nets (parameters, buffers and, where allocated, Adam moments) with meta.
int ganc_ckpt_save(const char *path, ganc_ctx *ctx, const ganc_ckpt_meta *meta,
                   ganc_net *const *nets, int nnets, ganc_err *err);
// Reads the root attributes; refuses (exit-2 error naming the file) a file that is not a regular
// file, not a ganc checkpoint, of a newer format, damaged, or holding out-of-range values.
int ganc_ckpt_read_meta(const char *path, ganc_ckpt_meta *meta, ganc_err *err);
// Checks the whole file: root and group attributes (checksums and ranges) and every tensor
// (float32, Fletcher32, finite), so a resume can pass over a damaged checkpoint to an older
// intact one. 0, or -1 with an error naming the file and the tensor.
int ganc_ckpt_verify(const char *path, ganc_err *err);
// Loads the tensors of group `group` ("G", "G_ema", "D") into net, whose architecture must match
// tensor for tensor (names and shapes): otherwise an error that names the first difference.
// with_optimizer also loads Adam moments and the step count. Everything is checked as by
// ganc_ckpt_verify (for this group); net is left unchanged on error only for tensors not reached.
// A net that reads another's parameters (net_share_params) takes only its buffers from the group.
int ganc_ckpt_load_net(const char *path, ganc_ctx *ctx, ganc_net *net, const char *group,
                       int with_optimizer, ganc_err *err);

// Reads RUN_DIR/latest, the name of a run's newest checkpoint, into name [n]. Returns 0, 1 when
// there is no `latest` (or it is a symbolic link to nothing), or -1 with an exit-2 error when it is
// not a small regular file naming a file of the folder (a folder, a FIFO, which is never opened
// for reading so it cannot block, an unreadable or garbled file).
int ganc_ckpt_read_latest(const char *run_dir, char *name, size_t n, ganc_err *err);
// A checkpoint argument of ganc-sample and ganc-export: a file as given, or a run folder's
// `latest` (checked before it is opened: a FIFO there must not block). Exits 2 with the reason
// when a folder has no usable pointer. The path is malloc'd.
char *ganc_ckpt_resolve(const char *arg);

#ifdef __cplusplus
}
#endif

#endif
