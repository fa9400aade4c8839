// shard.h — ganc's HDF5 image shards: the writer used by ganc-prep, the reader used by the loader
// and `ganc-prep --info`.
//
// One shard file (OUT_DIR/shard-00000.h5, shard-00001.h5, ...) holds:
//   /images   uint8  [N, H, W, C]  NHWC, chunked by runs of images (one chunk ≈ 1 MiB), Fletcher32
//   /labels   int32  [N]           class index, only when the dataset is labelled, Fletcher32
//   /sources  fixed-length UTF-8 strings [N]  each image's path relative to the source root
//             (provenance), as wide as the longest path of the shard; deflate + Fletcher32
// and root attributes (fixed-length strings and 64-bit integers):
//   format "ganc-shards", format_version 2, resolution, channels, image_count, shard_index,
//   class_names [K] (labelled only), source_root, created (UTC ISO 8601), options (the command),
//   attr_sha256 (a SHA-256 of all the other attributes, see io/h5attr.h).
// The file uses HDF5 1.10's layout (ganc_h5_fapl), in which the superblock, every object header
// (so every attribute) and every chunk index carry checksums; with Fletcher32 on every dataset,
// every byte of a shard is covered by a checksum, and no variable-length data (whose global heap
// has none) is stored. No compression of pixels: uncompressed chunks keep the loader above 20,000
// images/s at 64×64×3 on 2 cores.
//
// Format 1 (ganc before this layout: variable-length strings, no metadata checksums) is refused
// with a hint to run ganc-prep again: HDF5 1.10 reads a damaged global heap out of bounds, so such
// a file cannot be read safely. The images of a rebuilt folder are the same, so its fingerprint
// (below) is too, and a run trained on the old folder resumes on the new one.
#ifndef GANC_SHARD_H
#define GANC_SHARD_H

#include "core/check.h"

#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GANC_SHARD_FORMAT "ganc-shards"
#define GANC_SHARD_VERSION 2

typedef struct ganc_shard_meta {
  int version;
  int resolution, channels;
  int nclasses;       // 0 = unlabelled
  char **class_names; // [nclasses]
  char *source_root;
  char *created;
  char *options;
} ganc_shard_meta;

void ganc_shard_meta_free(ganc_shard_meta *m);

// Images per chunk for an image of `image_bytes` (≈ 1 MiB per chunk, at least 1).
int64_t ganc_shard_chunk_images(size_t image_bytes);
// Default images per shard (≈ 256 MiB per shard, a whole number of chunks).
int64_t ganc_shard_default_size(size_t image_bytes);

// ---- writer -------------------------------------------------------------------------------------
typedef struct ganc_shard_writer ganc_shard_writer;

// Starts writing shards into the existing folder `dir`. meta->nclasses > 0 makes a labelled set.
// shard_size: images per shard (0 = default).
ganc_shard_writer *ganc_shard_writer_open(const char *dir, const ganc_shard_meta *meta,
                                          int64_t shard_size, ganc_err *err);
// Appends one image [R, R, C]; `label` is ignored when unlabelled; `source` is its relative path.
int ganc_shard_writer_add(ganc_shard_writer *w, const uint8_t *image, int label, const char *source,
                          ganc_err *err);
// Flushes and closes; reports images and shards written. Frees w even on error.
int ganc_shard_writer_close(ganc_shard_writer *w, int64_t *images, int *shards, ganc_err *err);

// ---- reader -------------------------------------------------------------------------------------
typedef struct ganc_shard {
  char *path;
  hid_t file, images, labels, sources; // labels < 0 when unlabelled
  int64_t count;                       // images in this shard
  int64_t chunk;                       // images per chunk
  int64_t first;                       // global index of its first image within the dataset
} ganc_shard;

typedef struct ganc_dataset {
  char *dir;
  int nshards;
  ganc_shard *shards;   // sorted by file name
  int64_t count;        // images in all shards
  size_t image_bytes;   // R * R * C
  ganc_shard_meta meta; // of the first shard; every other shard agrees
} ganc_dataset;

// Opens every shard-*.h5 in `dir`. Refuses (exit-2 error naming the odd shard) an empty folder,
// a file that is not a ganc shard (or not a regular file: a FIFO is never opened for reading), a
// shard of format 1, a damaged header or attribute (checksums), datasets of another type or shape
// than the format's, and a mix of resolutions, channel counts, format versions or class lists.
int ganc_dataset_open(const char *dir, ganc_dataset *ds, ganc_err *err);
void ganc_dataset_close(ganc_dataset *ds);

// Reads images [start, start + n) of one shard into images [n, R, R, C] and, when labelled and
// `labels` is not NULL, labels [n]. Checksums are verified by HDF5 as chunks are read.
int ganc_shard_read(const ganc_dataset *ds, int shard, int64_t start, int64_t n, uint8_t *images,
                    int32_t *labels, ganc_err *err);
// Global image i [R, R, C] (and its label, -1 when unlabelled; label may be NULL).
int ganc_dataset_read_image(const ganc_dataset *ds, int64_t i, uint8_t *image, int32_t *label,
                            ganc_err *err);
// The source path of global image i, into buf.
int ganc_dataset_source(const ganc_dataset *ds, int64_t i, char *buf, size_t n, ganc_err *err);

// Reads every byte of every shard's datasets (Fletcher32 checksums, label range, every source
// path); counts images per class into class_counts [meta.nclasses] when not NULL. On damage: an
// error naming the shard. (The attributes were checked by ganc_dataset_open.)
int ganc_dataset_verify(const ganc_dataset *ds, int64_t *class_counts, FILE *progress,
                        ganc_err *err);

// A fingerprint of the dataset's content identity (shape, count, classes, and a hash of a sample of
// its pixels), so a checkpoint can tell whether it is resumed on the same data.
uint64_t ganc_dataset_fingerprint(const ganc_dataset *ds, ganc_err *err);

#ifdef __cplusplus
}
#endif

#endif
