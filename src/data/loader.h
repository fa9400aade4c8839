// loader.h — shuffled, prefetching batches of images from a folder of shards.
//
// Order. The images form an endless stream of epochs. In epoch e the shards' chunks (runs of
// ≈1 MiB of images, the unit HDF5 reads) are shuffled, cut into windows of at most window_bytes,
// and the images inside each window are shuffled. So every image appears exactly once per epoch,
// reads stay whole-chunk reads, memory stays at one window however large the dataset is, and when
// the dataset fits in one window (Fashion-MNIST, most folders) the shuffle is a full one and the
// pixels are read from disk once. The order depends only on (seed, epoch, window_bytes, dataset).
//
// Position. (seed, epoch, cursor) is the whole state: a loader opened at a saved position yields
// exactly the batches a loader that never stopped would have yielded next. Batches run across
// epoch boundaries; none is dropped.
#ifndef GANC_LOADER_H
#define GANC_LOADER_H

#include "core/check.h"
#include "data/shard.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ganc_loader_opts {
  int batch;           // images per batch (>= 1)
  uint64_t seed;       // shuffle seed
  int prefetch;        // batches prepared ahead by the background thread (0 = default 4)
  size_t window_bytes; // shuffle window (0 = default 256 MiB); part of what fixes the order
  int pinned;          // page-locked batch buffers when CUDA is present (faster uploads)
  // Data-parallel ranks (core/comm.h): `batch` is the global batch, cut into `ranks` equal shares
  // in order; this loader delivers share `rank` (rows [rank·b, (rank+1)·b), b = batch / ranks) and
  // its position moves by the whole global batch, so the union of the ranks' batches is exactly
  // the one-process batch and every rank's position is the same. ranks 0 = 1.
  int rank, ranks;
  // Images with a global index >= limit are never delivered (a held-out set: log.holdout); each
  // epoch is then the images [0, limit) once, in the shuffled order. 0 = no limit.
  int64_t limit;
} ganc_loader_opts;

typedef struct ganc_loader_state {
  uint64_t seed;
  int64_t epoch;  // epochs completed
  int64_t cursor; // images already delivered from the current epoch
} ganc_loader_state;

typedef struct ganc_batch {
  int n;                   // images in the batch (opts.batch / opts.ranks: this rank's share)
  uint8_t *images;         // [n, R, R, C] uint8 NHWC
  int32_t *labels;         // [n] class index, -1 when the dataset is unlabelled
  int64_t *index;          // [n] global image index within the dataset (provenance, tests)
  ganc_loader_state after; // the position just after this batch
} ganc_batch;

typedef struct ganc_loader ganc_loader;

// Opens the shards in `dir` and starts the background thread at `start` (NULL = epoch 0, cursor 0
// with opts->seed). Errors (no shards, mixed shards, bad options) are returned, never fatal.
int ganc_loader_open(const char *dir, const ganc_loader_opts *opts, const ganc_loader_state *start,
                     ganc_loader **out, ganc_err *err);
const ganc_dataset *ganc_loader_dataset(const ganc_loader *L);

// Blocks until the next batch is ready. The batch stays valid until the next call (or close).
// A damaged shard met while streaming is returned as an error naming it.
int ganc_loader_next(ganc_loader *L, const ganc_batch **batch, ganc_err *err);

// The position after the last batch returned (the start position before the first).
ganc_loader_state ganc_loader_position(const ganc_loader *L);

void ganc_loader_close(ganc_loader *L);

#ifdef __cplusplus
}
#endif

#endif
