// shard.c — HDF5 shard writer, reader and verifier (format in shard.h).
#include "data/shard.h"

#include "core/util.h"
#include "io/h5attr.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

// Limits that no shard of ganc-prep's comes near; a larger value is a crafted or damaged file,
// refused before it can size an allocation.
enum { MAX_RESOLUTION = 65536, MAX_SOURCE_BYTES = 65536 };
#define MAX_IMAGES (1ll << 40)
#define MAX_CHUNK_BYTES (64ll << 20)

void ganc_shard_meta_free(ganc_shard_meta *m) {
  for (int i = 0; i < m->nclasses; i++)
    free(m->class_names[i]);
  free(m->class_names);
  free(m->source_root);
  free(m->created);
  free(m->options);
  memset(m, 0, sizeof *m);
}

int64_t ganc_shard_chunk_images(size_t image_bytes) {
  int64_t n = (int64_t)((1u << 20) / (image_bytes ? image_bytes : 1));
  return n < 1 ? 1 : n;
}

int64_t ganc_shard_default_size(size_t image_bytes) {
  int64_t chunk = ganc_shard_chunk_images(image_bytes);
  int64_t per_chunk = chunk * (int64_t)image_bytes;
  int64_t chunks = (int64_t)(256ll << 20) / (per_chunk ? per_chunk : 1);
  return (chunks < 1 ? 1 : chunks) * chunk;
}

// Scalar integer attributes of our own files.
static herr_t put_i64(hid_t obj, const char *name, int64_t v) {
  return ganc_h5_attr_write_num(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v);
}

// ---- writer -----------------------------------------------------------------------------------
struct ganc_shard_writer {
  char *dir;
  ganc_shard_meta meta;
  size_t image_bytes;
  int64_t shard_size, chunk;
  int shard_index; // index of the open shard
  hid_t file, images, labels;
  int64_t in_shard;    // images written to the open shard (flushed)
  int64_t buffered;    // images waiting in the chunk buffers
  uint8_t *buf_images; // [chunk, R, R, C]
  int32_t *buf_labels; // [chunk]
  // The open shard's source paths, NUL-separated: `sources` is written when the shard closes, as
  // wide as its longest path (a fixed width must be known when the dataset is created).
  char *src_text;
  size_t src_len, src_cap, src_widest; // bytes used, allocated; longest path + 1
  int64_t total;
  int shards_done;
  // The first failed write of the open shard (a full disk, a quota, an I/O error), kept until the
  // shard is closed: every later write of that shard is skipped, and add/close report it. Writes
  // fail over to this instead of ending the program inside HDF5: exiting with a file whose flush
  // failed still open makes HDF5's own exit handler crash (libhdf5 1.10.8, H5F__close_cb).
  int failed;
  char why[512];
};

// Runs one HDF5 write of the open shard unless an earlier one failed; remembers the first failure.
#define WRITE_H5(w, call)                                                                          \
  do {                                                                                             \
    if (!(w)->failed && (long long)(call) < 0) {                                                   \
      char ganc_h5buf_[512];                                                                       \
      snprintf((w)->why, sizeof(w)->why, "%s", ganc_h5_last_error(ganc_h5buf_, 512));              \
      (w)->failed = 1;                                                                             \
    }                                                                                              \
  } while (0)

static hid_t create_chunked(hid_t file, const char *name, hid_t type, int rank,
                            const hsize_t *chunk, int fletcher) {
  hsize_t dims[4] = {0, 0, 0, 0}, maxdims[4];
  for (int i = 0; i < rank; i++) {
    dims[i] = i == 0 ? 0 : chunk[i];
    maxdims[i] = i == 0 ? H5S_UNLIMITED : chunk[i];
  }
  hid_t space = H5Screate_simple(rank, dims, maxdims), dcpl = H5Pcreate(H5P_DATASET_CREATE);
  CHECK_H5(space);
  CHECK_H5(dcpl);
  CHECK_H5(H5Pset_chunk(dcpl, rank, chunk));
  if (fletcher) CHECK_H5(H5Pset_fletcher32(dcpl));
  hid_t d = H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  CHECK_H5(d);
  H5Pclose(dcpl);
  H5Sclose(space);
  return d;
}

static int writer_open_shard(ganc_shard_writer *w, ganc_err *err) {
  char name[64];
  snprintf(name, sizeof name, "shard-%05d.h5", w->shard_index);
  char *path = ganc_path_join(w->dir, name);
  hid_t fapl = ganc_h5_fapl(), fcpl = ganc_h5_fcpl();
  CHECK_H5(fapl);
  CHECK_H5(fcpl);
  w->file = H5Fcreate(path, H5F_ACC_EXCL, fcpl, fapl);
  H5Pclose(fcpl);
  H5Pclose(fapl);
  if (w->file < 0) {
    char buf[512];
    ganc_err_set(err, GANC_EXIT_RUNTIME, "cannot create %s: %s", path,
                 ganc_h5_last_error(buf, sizeof buf));
    free(path);
    return -1;
  }
  free(path);
  int R = w->meta.resolution, C = w->meta.channels;
  hsize_t ic[4] = {(hsize_t)w->chunk, (hsize_t)R, (hsize_t)R, (hsize_t)C};
  w->images = create_chunked(w->file, "images", H5T_STD_U8LE, 4, ic, 1);
  w->labels = -1;
  if (w->meta.nclasses > 0) {
    // Labels are tiny: bigger chunks keep the label read of a whole shard to a few chunk reads.
    hsize_t lc = (hsize_t)(w->chunk < 4096 ? 4096 : w->chunk);
    w->labels = create_chunked(w->file, "labels", H5T_STD_I32LE, 1, &lc, 1);
  }
  w->in_shard = 0;
  w->src_len = 0;
  w->src_widest = 1;
  return 0;
}

// Appends `n` rows from `buf` (type `mtype`, row shape from the dataset) to dataset d at row `at`.
static void append_rows(ganc_shard_writer *w, hid_t d, hid_t mtype, int64_t at, int64_t n,
                        const void *buf) {
  if (w->failed) return;
  hsize_t dims[4];
  hid_t fs = H5Dget_space(d);
  CHECK_H5(fs);
  int rank = H5Sget_simple_extent_ndims(fs);
  H5Sget_simple_extent_dims(fs, dims, NULL);
  H5Sclose(fs);
  dims[0] = (hsize_t)(at + n);
  WRITE_H5(w, H5Dset_extent(d, dims));
  if (w->failed) return;
  fs = H5Dget_space(d);
  hsize_t start[4] = {(hsize_t)at, 0, 0, 0}, count[4];
  for (int i = 0; i < rank; i++)
    count[i] = i == 0 ? (hsize_t)n : dims[i];
  CHECK_H5(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL));
  hid_t ms = H5Screate_simple(rank, count, NULL);
  WRITE_H5(w, H5Dwrite(d, mtype, ms, fs, H5P_DEFAULT, buf));
  H5Sclose(ms);
  H5Sclose(fs);
}

static void writer_flush(ganc_shard_writer *w) {
  if (w->buffered == 0) return;
  append_rows(w, w->images, H5T_NATIVE_UINT8, w->in_shard, w->buffered, w->buf_images);
  if (w->labels >= 0)
    append_rows(w, w->labels, H5T_NATIVE_INT32, w->in_shard, w->buffered, w->buf_labels);
  w->in_shard += w->buffered;
  w->buffered = 0;
}

// `sources` [n] fixed-length strings of the widest path's width: deflate keeps the padding of a
// shard with one long path small; Fletcher32 (applied after deflate, so checked first on read)
// covers every byte.
static void write_sources(ganc_shard_writer *w) {
  if (w->failed) return;
  int64_t n = w->in_shard;
  size_t width = w->src_widest;
  char *rows = xcalloc((size_t)n, width);
  const char *p = w->src_text;
  for (int64_t i = 0; i < n; i++) {
    size_t l = strlen(p);
    memcpy(rows + (size_t)i * width, p, l);
    p += l + 1;
  }
  hsize_t dim = (hsize_t)n;
  int64_t per = (int64_t)((1u << 20) / width);
  hsize_t chunk = (hsize_t)(per < 1 ? 1 : per > n ? n : per);
  hid_t t = ganc_h5_fixed_str_type(width), space = H5Screate_simple(1, &dim, NULL);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  CHECK_H5(t);
  CHECK_H5(space);
  CHECK_H5(dcpl);
  CHECK_H5(H5Pset_chunk(dcpl, 1, &chunk));
  CHECK_H5(H5Pset_deflate(dcpl, 1));
  CHECK_H5(H5Pset_fletcher32(dcpl));
  hid_t d = H5Dcreate2(w->file, "sources", t, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  WRITE_H5(w, d);
  WRITE_H5(w, H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows));
  if (d >= 0) H5Dclose(d);
  H5Pclose(dcpl);
  H5Sclose(space);
  H5Tclose(t);
  free(rows);
}

// The open shard's first failed write as the error: -1 with err naming the shard and what to do.
static int writer_failure(const ganc_shard_writer *w, ganc_err *err) {
  char name[64];
  snprintf(name, sizeof name, "shard-%05d.h5", w->shard_index);
  char *path = ganc_path_join(w->dir, name);
  ganc_err_set(err, GANC_EXIT_RUNTIME,
               "cannot write %s: %s\n---> HINT: check free disk space (and quotas); nothing was "
               "written to the output folder, and an existing one was left as it was",
               path, w->why);
  free(path);
  return -1;
}

// Finishes the open shard: its last rows, sources, attributes and checksum, flushed and closed.
// -1 with err set (naming the shard, with the next step) when any write of it failed; the file is
// closed either way, and the caller removes the unfinished folder.
static int writer_close_shard(ganc_shard_writer *w, ganc_err *err) {
  writer_flush(w);
  write_sources(w);
  hid_t f = w->file;
  WRITE_H5(w, ganc_h5_attr_write_str(f, "format", GANC_SHARD_FORMAT));
  WRITE_H5(w, put_i64(f, "format_version", GANC_SHARD_VERSION));
  WRITE_H5(w, put_i64(f, "resolution", w->meta.resolution));
  WRITE_H5(w, put_i64(f, "channels", w->meta.channels));
  WRITE_H5(w, put_i64(f, "image_count", w->in_shard));
  WRITE_H5(w, put_i64(f, "shard_index", w->shard_index));
  if (w->meta.nclasses > 0)
    WRITE_H5(w, ganc_h5_attr_write_strs(f, "class_names", w->meta.class_names, w->meta.nclasses));
  WRITE_H5(w, ganc_h5_attr_write_str(f, "source_root", w->meta.source_root));
  WRITE_H5(w, ganc_h5_attr_write_str(f, "created", w->meta.created));
  WRITE_H5(w, ganc_h5_attr_write_str(f, "options", w->meta.options));
  WRITE_H5(w, ganc_h5_attrs_seal(f)); // the last attribute: a SHA-256 over all the others
  // The closes run even after a failure, so that no HDF5 object of the shard outlives it.
  herr_t c1 = H5Dclose(w->images), c2 = w->labels >= 0 ? H5Dclose(w->labels) : 0;
  WRITE_H5(w, c1);
  WRITE_H5(w, c2);
  WRITE_H5(w, H5Fflush(f, H5F_SCOPE_GLOBAL));
  herr_t c3 = H5Fclose(f);
  WRITE_H5(w, c3);
  // A file whose close failed is broken inside HDF5 1.10.8: touching it again (a second
  // H5Fclose, or HDF5's exit handler) crashes. It is left alone; the programs turn that exit
  // handler off (ganc_h5_no_atexit).
  w->file = -1;
  if (w->failed) return writer_failure(w, err);
  w->total += w->in_shard;
  w->shards_done++;
  w->shard_index++;
  return 0;
}

static void meta_copy(ganc_shard_meta *dst, const ganc_shard_meta *src) {
  *dst = *src;
  dst->class_names = NULL;
  if (src->nclasses > 0) {
    dst->class_names = xcalloc((size_t)src->nclasses, sizeof(char *));
    for (int i = 0; i < src->nclasses; i++)
      dst->class_names[i] = xstrdup(src->class_names[i]);
  }
  dst->source_root = xstrdup(src->source_root ? src->source_root : "");
  dst->created = xstrdup(src->created ? src->created : "");
  dst->options = xstrdup(src->options ? src->options : "");
}

ganc_shard_writer *ganc_shard_writer_open(const char *dir, const ganc_shard_meta *meta,
                                          int64_t shard_size, ganc_err *err) {
  if (meta->resolution < 1 || meta->channels < 1 || meta->channels > 4) {
    ganc_err_set(err, GANC_EXIT_USAGE, "bad shard shape %dx%dx%d", meta->resolution,
                 meta->resolution, meta->channels);
    return NULL;
  }
  ganc_shard_writer *w = xcalloc(1, sizeof *w);
  w->dir = xstrdup(dir);
  meta_copy(&w->meta, meta);
  w->image_bytes = (size_t)meta->resolution * meta->resolution * meta->channels;
  w->shard_size = shard_size > 0 ? shard_size : ganc_shard_default_size(w->image_bytes);
  w->chunk = ganc_shard_chunk_images(w->image_bytes);
  if (w->chunk > w->shard_size) w->chunk = w->shard_size;
  w->buf_images = xmalloc((size_t)w->chunk * w->image_bytes);
  w->buf_labels = xcalloc((size_t)w->chunk, sizeof(int32_t));
  w->file = -1;
  ganc_h5_quiet();
  return w;
}

int ganc_shard_writer_add(ganc_shard_writer *w, const uint8_t *image, int label, const char *source,
                          ganc_err *err) {
  if (w->file < 0 && writer_open_shard(w, err)) return -1;
  memcpy(w->buf_images + (size_t)w->buffered * w->image_bytes, image, w->image_bytes);
  w->buf_labels[w->buffered] = label;
  const char *src = source ? source : "";
  size_t l = strnlen(src, MAX_SOURCE_BYTES - 1); // a longer path is cut (none is, in practice)
  if (w->src_len + l + 1 > w->src_cap) {
    while (w->src_len + l + 1 > w->src_cap)
      w->src_cap = w->src_cap ? w->src_cap * 2 : 1 << 16;
    w->src_text = xrealloc(w->src_text, w->src_cap);
  }
  memcpy(w->src_text + w->src_len, src, l);
  w->src_text[w->src_len + l] = 0;
  w->src_len += l + 1;
  if (l + 1 > w->src_widest) w->src_widest = l + 1;
  w->buffered++;
  if (w->buffered == w->chunk) writer_flush(w);
  if (w->in_shard + w->buffered == w->shard_size) return writer_close_shard(w, err);
  // A failed write is reported now; the shard is closed (and the run ended) by the caller.
  if (w->failed) return writer_failure(w, err);
  return 0;
}

int ganc_shard_writer_close(ganc_shard_writer *w, int64_t *images, int *shards, ganc_err *err) {
  int rc = 0;
  if (w->file >= 0) rc = writer_close_shard(w, err);
  if (images) *images = w->total;
  if (shards) *shards = w->shards_done;
  free(w->buf_images);
  free(w->buf_labels);
  free(w->src_text);
  ganc_shard_meta_free(&w->meta);
  free(w->dir);
  free(w);
  return rc;
}

// ---- reader -----------------------------------------------------------------------------------
static void shard_close(ganc_shard *s) {
  if (s->sources >= 0) H5Dclose(s->sources);
  if (s->labels >= 0) H5Dclose(s->labels);
  if (s->images >= 0) H5Dclose(s->images);
  if (s->file >= 0) H5Fclose(s->file);
  free(s->path);
  s->path = NULL;
  s->file = s->images = s->labels = s->sources = -1;
}

// Opens dataset `name` of a shard and checks what the format promises of it: its element type
// (class, size in bytes, signedness; a string must be fixed-length), its rank, that it is chunked
// with Fletcher32 (so every byte read is checked), and a plausible row count. Returns the dataset
// (its dims in dims[rank]), or -1 with err set.
typedef struct dset_want {
  const char *name, *type_words; // e.g. "uint8"
  H5T_class_t cls;
  size_t size; // 0 = any size up to MAX_SOURCE_BYTES (strings)
  H5T_sign_t sign;
  int rank;
} dset_want;

static hid_t open_dataset(hid_t file, const dset_want *w, hsize_t *dims, ganc_err *err) {
  if (!ganc_h5_is_hard_link(file, w->name)) { // a soft or external link could lead elsewhere
    ganc_err_set(err, GANC_EXIT_USAGE, "has no '%s' dataset", w->name);
    return -1;
  }
  hid_t d = H5Dopen2(file, w->name, H5P_DEFAULT);
  if (d < 0) {
    char b[512];
    ganc_err_set(err, GANC_EXIT_USAGE, "is damaged: '%s' cannot be opened (%s)", w->name,
                 ganc_h5_last_error(b, sizeof b));
    return -1;
  }
  hid_t t = H5Dget_type(d), s = H5Dget_space(d);
  H5T_class_t cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
  size_t size = t >= 0 ? H5Tget_size(t) : 0;
  int type_ok =
      cls == w->cls && (w->size ? size == w->size : size >= 1 && size <= MAX_SOURCE_BYTES);
  if (type_ok && cls == H5T_INTEGER) type_ok = H5Tget_sign(t) == w->sign;
  if (type_ok && cls == H5T_STRING) type_ok = H5Tis_variable_str(t) == 0;
  int rank = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
  if (rank == w->rank) H5Sget_simple_extent_dims(s, dims, NULL);
  if (t >= 0) H5Tclose(t);
  if (s >= 0) H5Sclose(s);
  if (!type_ok) {
    ganc_err_set(err, GANC_EXIT_USAGE, "'%s' is not stored as %s (found a %zu-byte %s)", w->name,
                 w->type_words, size,
                 cls == H5T_INTEGER  ? "integer"
                 : cls == H5T_FLOAT  ? "float"
                 : cls == H5T_STRING ? "string (variable-length or too wide)"
                                     : "value of another type");
  } else if (rank != w->rank) {
    ganc_err_set(err, GANC_EXIT_USAGE, "'%s' has %d dimensions, not %d", w->name, rank, w->rank);
  } else if (!ganc_h5_is_checksummed(d)) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "'%s' is not chunked with a Fletcher32 checksum, so its damage would go unseen",
                 w->name);
  } else if (dims[0] > (hsize_t)MAX_IMAGES) {
    ganc_err_set(err, GANC_EXIT_USAGE, "'%s' claims %llu rows", w->name,
                 (unsigned long long)dims[0]);
  } else {
    return d;
  }
  H5Dclose(d);
  return -1;
}

static int shard_open(const char *path, ganc_shard *s, ganc_shard_meta *m, ganc_err *err) {
  memset(s, 0, sizeof *s);
  memset(m, 0, sizeof *m);
  s->file = s->images = s->labels = s->sources = -1;
  s->path = xstrdup(path);
  int64_t v = 0;
  char *fmt = NULL;
  // Before HDF5 sees the file: a FIFO or a device is refused unopened (opening one could block
  // forever), and a file of the old layout is refused before HDF5 parses its unchecksummed heap.
  int kind = ganc_h5_sniff(path, NULL, err);
  if (kind < 0) goto fail;
  if (kind == GANC_H5_OLD_LAYOUT) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "made by an older ganc (shard format 1) or by another program: its HDF5 layout "
                 "has no metadata checksums, so this ganc does not read it\n---> HINT: run "
                 "ganc-prep again on the source images (./train.sh and scripts/default-dataset.sh "
                 "do it by themselves); the rebuilt shards hold the same images, so runs trained "
                 "on them resume");
    goto fail;
  }
  s->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (s->file < 0) {
    char b[512];
    ganc_err_set(err, GANC_EXIT_USAGE, "is damaged or truncated: HDF5 cannot open it (%s)",
                 ganc_h5_last_error(b, sizeof b));
    goto fail;
  }
  if (ganc_h5_attr_read_str(s->file, "format", &fmt, err)) goto fail;
  if (strcmp(fmt, GANC_SHARD_FORMAT) != 0) {
    ganc_err_set(err, GANC_EXIT_USAGE, "format is '%.60s', not '%s'", fmt, GANC_SHARD_FORMAT);
    goto fail;
  }
  // Any integer is read as 64 bits and range-checked before it is narrowed.
  if (ganc_h5_attr_read_i64(s->file, "format_version", INT64_MIN, INT64_MAX, &v, err)) goto fail;
  if (v < 1) {
    ganc_err_set(err, GANC_EXIT_USAGE, "is damaged: format_version %lld is not a version",
                 (long long)v);
    goto fail;
  }
  if (v > GANC_SHARD_VERSION) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "format version %lld is newer than this ganc understands (%d)\n---> HINT: "
                 "update ganc",
                 (long long)v, GANC_SHARD_VERSION);
    goto fail;
  }
  if (v < GANC_SHARD_VERSION) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "made by an older ganc (shard format %lld)\n---> HINT: run ganc-prep again on "
                 "the source images",
                 (long long)v);
    goto fail;
  }
  m->version = (int)v;
  int dig = ganc_h5_attrs_check(s->file, err);
  if (dig != 0) {
    if (dig > 0)
      ganc_err_set(err, GANC_EXIT_USAGE, "is damaged: its attribute checksum (%s) is missing",
                   GANC_H5_ATTR_DIGEST);
    else
      ganc_err_prefix(err, "is damaged: ");
    goto fail;
  }
  if (ganc_h5_attr_read_i64(s->file, "resolution", 1, MAX_RESOLUTION, &v, err)) goto fail;
  m->resolution = (int)v;
  if (ganc_h5_attr_read_i64(s->file, "channels", 1, 4, &v, err)) goto fail;
  m->channels = (int)v;
  int64_t declared = 0;
  if (ganc_h5_attr_read_i64(s->file, "image_count", 0, MAX_IMAGES, &declared, err) ||
      ganc_h5_attr_read_i64(s->file, "shard_index", 0, INT32_MAX, &v, err))
    goto fail;
  if (H5Aexists(s->file, "class_names") > 0 &&
      ganc_h5_attr_read_strs(s->file, "class_names", &m->class_names, &m->nclasses, err))
    goto fail;
  if (ganc_h5_attr_read_str(s->file, "source_root", &m->source_root, err) ||
      ganc_h5_attr_read_str(s->file, "created", &m->created, err) ||
      ganc_h5_attr_read_str(s->file, "options", &m->options, err))
    goto fail;

  const int64_t R = m->resolution, C = m->channels;
  hsize_t dims[4];
  const dset_want images = {"images", "uint8", H5T_INTEGER, 1, H5T_SGN_NONE, 4};
  if ((s->images = open_dataset(s->file, &images, dims, err)) < 0) goto fail;
  if (dims[1] != (hsize_t)R || dims[2] != (hsize_t)R || dims[3] != (hsize_t)C) {
    ganc_err_set(err, GANC_EXIT_USAGE, "'images' is [%llu, %llu, %llu, %llu], not [N, %d, %d, %d]",
                 (unsigned long long)dims[0], (unsigned long long)dims[1],
                 (unsigned long long)dims[2], (unsigned long long)dims[3], m->resolution,
                 m->resolution, m->channels);
    goto fail;
  }
  s->count = (int64_t)dims[0];
  if (s->count != declared) {
    ganc_err_set(err, GANC_EXIT_USAGE, "holds %lld images but its header says %lld",
                 (long long)s->count, (long long)declared);
    goto fail;
  }
  hid_t dcpl = H5Dget_create_plist(s->images);
  hsize_t cdims[4] = {0, 0, 0, 0};
  int crank = dcpl >= 0 ? H5Pget_chunk(dcpl, 4, cdims) : -1;
  if (dcpl >= 0) H5Pclose(dcpl);
  // The verifier reads 8 chunks at a time: a crafted chunk size must not size its buffers.
  if (crank != 4 || cdims[0] < 1 || cdims[0] > (hsize_t)(MAX_CHUNK_BYTES / (R * R * C)) ||
      cdims[1] != (hsize_t)R || cdims[2] != (hsize_t)R || cdims[3] != (hsize_t)C) {
    ganc_err_set(err, GANC_EXIT_USAGE, "'images' has an implausible chunk shape");
    goto fail;
  }
  s->chunk = (int64_t)cdims[0];

  if (m->nclasses > 0) {
    const dset_want labels = {"labels", "int32", H5T_INTEGER, 4, H5T_SGN_2, 1};
    if ((s->labels = open_dataset(s->file, &labels, dims, err)) < 0) goto fail;
    if ((int64_t)dims[0] != s->count) {
      ganc_err_set(err, GANC_EXIT_USAGE, "'labels' holds %llu labels for %lld images",
                   (unsigned long long)dims[0], (long long)s->count);
      goto fail;
    }
  }
  const dset_want sources = {"sources", "fixed-length strings", H5T_STRING, 0, H5T_SGN_NONE, 1};
  if ((s->sources = open_dataset(s->file, &sources, dims, err)) < 0) goto fail;
  if ((int64_t)dims[0] != s->count) {
    ganc_err_set(err, GANC_EXIT_USAGE, "'sources' holds %llu paths for %lld images",
                 (unsigned long long)dims[0], (long long)s->count);
    goto fail;
  }
  free(fmt);
  return 0;
fail:
  free(fmt);
  shard_close(s);
  ganc_shard_meta_free(m);
  return -1;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

// Names of shard-*.h5 files in dir, sorted; -1 when dir cannot be read.
static int list_shards(const char *dir, char ***names, int *n) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int cap = 16;
  *n = 0;
  *names = xmalloc(sizeof(char *) * cap);
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t len = strlen(e->d_name);
    if (strncmp(e->d_name, "shard-", 6) != 0 || len < 10 || strcmp(e->d_name + len - 3, ".h5"))
      continue;
    if (*n == cap) *names = xrealloc(*names, sizeof(char *) * (cap *= 2));
    (*names)[(*n)++] = xstrdup(e->d_name);
  }
  closedir(d);
  qsort(*names, (size_t)*n, sizeof(char *), cmp_str);
  return 0;
}

static int same_classes(const ganc_shard_meta *a, const ganc_shard_meta *b) {
  if (a->nclasses != b->nclasses) return 0;
  for (int i = 0; i < a->nclasses; i++)
    if (strcmp(a->class_names[i], b->class_names[i])) return 0;
  return 1;
}

int ganc_dataset_open(const char *dir, ganc_dataset *ds, ganc_err *err) {
  memset(ds, 0, sizeof *ds);
  ganc_h5_quiet();
  char **names = NULL;
  int n = 0;
  if (!*dir) {
    ganc_err_set(err, GANC_EXIT_USAGE, "no shard folder given (the path is empty)");
    return -1;
  }
  if (!ganc_is_dir(dir) || list_shards(dir, &names, &n) != 0) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "%s is not a readable folder\n---> HINT: make shards with `ganc-prep IMAGES %s`",
                 dir, dir);
    return -1;
  }
  if (n == 0) {
    free(names);
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "%s holds no shard-*.h5 files\n---> HINT: make shards with `ganc-prep IMAGES %s`",
                 dir, dir);
    return -1;
  }
  ds->dir = xstrdup(dir);
  ds->shards = xcalloc((size_t)n, sizeof *ds->shards);
  for (int i = 0; i < n; i++)
    ds->shards[i].file = -1;
  for (int i = 0; i < n; i++) {
    char *path = ganc_path_join(dir, names[i]);
    ganc_shard_meta m;
    if (shard_open(path, &ds->shards[i], &m, err)) {
      ganc_err_prefix(err, "shard %s: ", path);
      if (err && !strstr(err->msg, "HINT")) {
        size_t l = strlen(err->msg);
        snprintf(err->msg + l, sizeof err->msg - l,
                 "\n---> HINT: a damaged shard cannot be repaired: run ganc-prep again to rebuild "
                 "%s",
                 dir);
      }
      free(path);
      goto fail;
    }
    ds->nshards = i + 1;
    free(path);
    if (i == 0) {
      ds->meta = m;
    } else {
      const char *odd = NULL;
      if (m.version != ds->meta.version)
        odd = "format version";
      else if (m.resolution != ds->meta.resolution)
        odd = "resolution";
      else if (m.channels != ds->meta.channels)
        odd = "channel count";
      else if (!same_classes(&m, &ds->meta))
        odd = "class list";
      if (odd) {
        ganc_err_set(err, GANC_EXIT_USAGE,
                     "shard %s does not match %s: its %s differs (%dx%dx%d v%d vs %dx%dx%d v%d)\n"
                     "---> HINT: keep one dataset per folder; re-run ganc-prep into a new folder",
                     ds->shards[i].path, ds->shards[0].path, odd, m.resolution, m.resolution,
                     m.channels, m.version, ds->meta.resolution, ds->meta.resolution,
                     ds->meta.channels, ds->meta.version);
        ganc_shard_meta_free(&m);
        goto fail;
      }
      ganc_shard_meta_free(&m);
    }
    ds->shards[i].first = ds->count;
    ds->count += ds->shards[i].count;
  }
  for (int i = 0; i < n; i++)
    free(names[i]);
  free(names);
  ds->image_bytes = (size_t)ds->meta.resolution * ds->meta.resolution * ds->meta.channels;
  if (ds->count == 0) {
    ganc_err_set(err, GANC_EXIT_USAGE, "%s holds shards but no images", dir);
    ganc_dataset_close(ds);
    return -1;
  }
  return 0;
fail:
  for (int i = 0; i < n; i++)
    free(names[i]);
  free(names);
  ganc_dataset_close(ds);
  return -1;
}

void ganc_dataset_close(ganc_dataset *ds) {
  for (int i = 0; i < ds->nshards; i++)
    shard_close(&ds->shards[i]);
  free(ds->shards);
  free(ds->dir);
  ganc_shard_meta_free(&ds->meta);
  memset(ds, 0, sizeof *ds);
}

static int read_rows(hid_t d, hid_t mtype, int rank, int64_t start, int64_t n, void *buf,
                     ganc_err *err) {
  hsize_t dims[4];
  hid_t fs = -1, ms = -1;
  int rc = -1;
  TRY_H5(fs = H5Dget_space(d), err, done);
  H5Sget_simple_extent_dims(fs, dims, NULL);
  hsize_t off[4] = {(hsize_t)start, 0, 0, 0}, cnt[4];
  for (int i = 0; i < rank; i++)
    cnt[i] = i == 0 ? (hsize_t)n : dims[i];
  TRY_H5(H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL), err, done);
  TRY_H5(ms = H5Screate_simple(rank, cnt, NULL), err, done);
  TRY_H5(H5Dread(d, mtype, ms, fs, H5P_DEFAULT, buf), err, done);
  rc = 0;
done:
  if (ms >= 0) H5Sclose(ms);
  if (fs >= 0) H5Sclose(fs);
  return rc;
}

int ganc_shard_read(const ganc_dataset *ds, int shard, int64_t start, int64_t n, uint8_t *images,
                    int32_t *labels, ganc_err *err) {
  const ganc_shard *s = &ds->shards[shard];
  if (start < 0 || n < 0 || start + n > s->count) {
    ganc_err_set(err, GANC_EXIT_RUNTIME, "read of images %lld..%lld outside %s (%lld images)",
                 (long long)start, (long long)(start + n), s->path, (long long)s->count);
    return -1;
  }
  if (n == 0) return 0;
  if (images && read_rows(s->images, H5T_NATIVE_UINT8, 4, start, n, images, err)) goto fail;
  if (labels && s->labels >= 0 && read_rows(s->labels, H5T_NATIVE_INT32, 1, start, n, labels, err))
    goto fail;
  return 0;
fail:
  ganc_err_prefix(err, "shard %s is damaged (images %lld..%lld): ", s->path, (long long)start,
                  (long long)(start + n));
  return -1;
}

static int shard_of(const ganc_dataset *ds, int64_t i) {
  int k = 0;
  while (k + 1 < ds->nshards && ds->shards[k + 1].first <= i)
    k++;
  return k;
}

int ganc_dataset_read_image(const ganc_dataset *ds, int64_t i, uint8_t *image, int32_t *label,
                            ganc_err *err) {
  int k = shard_of(ds, i);
  int32_t lab = -1;
  int rc = ganc_shard_read(ds, k, i - ds->shards[k].first, 1, image, &lab, err);
  if (label) *label = lab;
  return rc;
}

// The width (bytes per path) of a shard's fixed-length `sources`; 0 on error.
static size_t source_width(const ganc_shard *s) {
  hid_t t = H5Dget_type(s->sources);
  size_t w = t >= 0 ? H5Tget_size(t) : 0;
  if (t >= 0) H5Tclose(t);
  return w >= 1 && w <= MAX_SOURCE_BYTES ? w : 0;
}

// Reads sources [start, start + n) of shard s as raw rows [n, width] (the stored bytes).
static int read_sources(const ganc_shard *s, int64_t start, int64_t n, char *rows, ganc_err *err) {
  hid_t t = H5Dget_type(s->sources);
  if (t < 0) {
    ganc_err_set(err, GANC_EXIT_USAGE, "'sources' has no readable type");
    return -1;
  }
  int rc = read_rows(s->sources, t, 1, start, n, rows, err);
  H5Tclose(t);
  return rc;
}

int ganc_dataset_source(const ganc_dataset *ds, int64_t i, char *buf, size_t n, ganc_err *err) {
  if (i < 0 || i >= ds->count) {
    ganc_err_set(err, GANC_EXIT_RUNTIME, "image %lld is outside the dataset (%lld images)",
                 (long long)i, (long long)ds->count);
    return -1;
  }
  int k = shard_of(ds, i);
  const ganc_shard *s = &ds->shards[k];
  size_t w = source_width(s);
  char *row = w ? xcalloc(1, w + 1) : NULL;
  int rc = w ? read_sources(s, i - s->first, 1, row, err) : -1;
  if (!w) ganc_err_set(err, GANC_EXIT_USAGE, "'sources' has an implausible width");
  if (rc == 0)
    snprintf(buf, n, "%.*s", (int)strnlen(row, w), row);
  else
    ganc_err_prefix(err, "shard %s is damaged (sources): ", s->path);
  free(row);
  return rc;
}

int ganc_dataset_verify(const ganc_dataset *ds, int64_t *class_counts, FILE *progress,
                        ganc_err *err) {
  if (class_counts)
    memset(class_counts, 0,
           sizeof(int64_t) * (size_t)(ds->meta.nclasses > 0 ? ds->meta.nclasses : 0));
  ganc_progress pg;
  if (progress) ganc_progress_start(&pg, progress, "images", ds->count);
  int64_t done = 0;
  for (int k = 0; k < ds->nshards; k++) {
    const ganc_shard *s = &ds->shards[k];
    int64_t step = s->chunk * 8;
    uint8_t *img = xmalloc((size_t)step * ds->image_bytes);
    int32_t *lab = xmalloc(sizeof(int32_t) * (size_t)step);
    for (int64_t at = 0; at < s->count; at += step) {
      int64_t n = s->count - at < step ? s->count - at : step;
      if (ganc_shard_read(ds, k, at, n, img, lab, err)) {
        free(img);
        free(lab);
        return -1;
      }
      if (ds->meta.nclasses > 0) {
        for (int64_t i = 0; i < n; i++) {
          if (lab[i] < 0 || lab[i] >= ds->meta.nclasses) {
            ganc_err_set(err, GANC_EXIT_USAGE,
                         "shard %s is damaged: image %lld has label %d outside 0..%d", s->path,
                         (long long)(at + i), lab[i], ds->meta.nclasses - 1);
            free(img);
            free(lab);
            return -1;
          }
          if (class_counts) class_counts[lab[i]]++;
        }
      }
      done += n;
      if (progress) ganc_progress_update(&pg, done, NULL);
    }
    free(img);
    free(lab);
    // Every source path, in blocks of about 4 MiB: fixed-length strings in Fletcher32 chunks, so
    // this reads checked bytes only (no heap, no pointers stored in the file).
    size_t w = source_width(s);
    if (!w) {
      ganc_err_set(err, GANC_EXIT_USAGE, "shard %s is damaged: 'sources' has an implausible width",
                   s->path);
      return -1;
    }
    int64_t rows = (int64_t)((4u << 20) / w);
    if (rows < 1) rows = 1;
    char *buf = xmalloc((size_t)rows * w);
    for (int64_t at = 0; at < s->count; at += rows) {
      int64_t n = s->count - at < rows ? s->count - at : rows;
      if (read_sources(s, at, n, buf, err)) {
        free(buf);
        ganc_err_prefix(err, "shard %s is damaged (sources %lld..%lld): ", s->path, (long long)at,
                        (long long)(at + n));
        return -1;
      }
    }
    free(buf);
  }
  if (progress) ganc_progress_finish(&pg, done, NULL);
  return 0;
}

uint64_t ganc_dataset_fingerprint(const ganc_dataset *ds, ganc_err *err) {
  // Shape, count and classes, plus the first and last image of every shard: cheap to compute at
  // start-up, and any re-prepared or different dataset changes it.
  uint64_t h[2] = {0, 0}, acc = 0x6a09e667f3bcc909ULL;
  int64_t hdr[4] = {ds->meta.resolution, ds->meta.channels, ds->count, ds->meta.nclasses};
  ganc_hash128(hdr, sizeof hdr, acc, h);
  acc ^= h[0];
  for (int i = 0; i < ds->meta.nclasses; i++) {
    ganc_hash128(ds->meta.class_names[i], strlen(ds->meta.class_names[i]), acc, h);
    acc ^= h[1];
  }
  uint8_t *img = xmalloc(ds->image_bytes);
  for (int k = 0; k < ds->nshards; k++) {
    int64_t at[2] = {0, ds->shards[k].count - 1};
    for (int j = 0; j < 2; j++) {
      if (ganc_shard_read(ds, k, at[j], 1, img, NULL, err)) {
        free(img);
        return 0;
      }
      ganc_hash128(img, ds->image_bytes, acc, h);
      acc = h[0] ^ (h[1] << 1);
    }
  }
  free(img);
  return acc;
}
