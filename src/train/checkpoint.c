// checkpoint.c — HDF5 checkpoints (layout and guarantees in checkpoint.h).
#include "train/checkpoint.h"

#include "core/util.h"
#include "io/h5attr.h"
#include "ops/dispatch.h"

#include <fcntl.h>
#include <float.h>
#include <hdf5.h>
#include <libgen.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void ganc_ckpt_meta_free(ganc_ckpt_meta *m) {
  free(m->config);
  free(m->data_dir);
  free(m->created);
  for (int i = 0; i < m->nclasses; i++)
    free(m->class_names[i]);
  free(m->class_names);
  memset(m, 0, sizeof *m);
}

// ---- writing
// -------------------------------------------------------------------------------------
static int write_tensor(hid_t group, const ganc_tensor *t, const float *host) {
  hsize_t dims[4];
  for (int i = 0; i < t->ndim; i++)
    dims[i] = (hsize_t)t->shape[i];
  hid_t s = H5Screate_simple(t->ndim, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE), d = -1;
  int rc = -1;
  if (s < 0 || dcpl < 0) goto done;
  // One chunk per tensor (HDF5 caps a chunk at 4 GiB; DCGAN tensors are far below), checksummed.
  if (H5Pset_chunk(dcpl, t->ndim, dims) < 0 || H5Pset_fletcher32(dcpl) < 0) goto done;
  d = H5Dcreate2(group, t->name, H5T_IEEE_F32LE, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  if (d < 0) goto done;
  rc = H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, host + t->offset) < 0 ? -1 : 0;
done:
  if (d >= 0) H5Dclose(d);
  if (dcpl >= 0) H5Pclose(dcpl);
  if (s >= 0) H5Sclose(s);
  return rc;
}

static int write_block(ganc_ctx *ctx, hid_t parent, const char *name, const ganc_tensor *t, int nt,
                       size_t total, const float *block) {
  float *host = xmalloc((total ? total : 1) * sizeof(float));
  ganc_download(ctx, host, block, total);
  hid_t gcpl = ganc_h5_gcpl();
  hid_t g = gcpl < 0 ? -1 : H5Gcreate2(parent, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
  if (gcpl >= 0) H5Pclose(gcpl);
  int rc = g < 0 ? -1 : 0;
  for (int i = 0; i < nt && rc == 0; i++)
    rc = write_tensor(g, &t[i], host);
  if (g >= 0) H5Gclose(g);
  free(host);
  return rc;
}

static int write_net(ganc_ctx *ctx, hid_t file, ganc_net *net) {
  hid_t gcpl = ganc_h5_gcpl();
  hid_t g = gcpl < 0 ? -1 : H5Gcreate2(file, net->name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
  if (gcpl >= 0) H5Pclose(gcpl);
  if (g < 0) return -1;
  int rc = write_block(ctx, g, "params", net->params, net->nparams, net->nparam_floats, net->p);
  if (!rc)
    rc = write_block(ctx, g, "buffers", net->buffers, net->nbuffers, net->nbuffer_floats, net->buf);
  if (!rc && net->m) {
    rc = write_block(ctx, g, "adam_m", net->params, net->nparams, net->nparam_floats, net->m);
    if (!rc)
      rc = write_block(ctx, g, "adam_v", net->params, net->nparams, net->nparam_floats, net->v);
    if (!rc)
      rc = ganc_h5_attr_write_num(g, "adam_t", H5T_STD_I64LE, H5T_NATIVE_INT64, &net->adam_t);
  }
  char desc[256];
  net_describe(net, desc, sizeof desc);
  if (!rc) rc = ganc_h5_attr_write_str(g, "arch", desc);
  if (!rc) rc = ganc_h5_attrs_seal(g);
  H5Gclose(g);
  return rc;
}

// fsync a file or folder by path; failures are reported (a checkpoint must reach the disk).
static int sync_path(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1;
  int rc = fsync(fd);
  close(fd);
  return rc;
}

int ganc_ckpt_save(const char *path, ganc_ctx *ctx, const ganc_ckpt_meta *meta,
                   ganc_net *const *nets, int nnets, ganc_err *err) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
  ganc_h5_quiet();
  hid_t fapl = ganc_h5_fapl(), fcpl = ganc_h5_fcpl();
  hid_t f = fapl < 0 || fcpl < 0 ? -1 : H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, fapl);
  if (fapl >= 0) H5Pclose(fapl);
  if (fcpl >= 0) H5Pclose(fcpl);
  if (f < 0) {
    char b[512];
    ganc_err_set(err, GANC_EXIT_RUNTIME, "cannot create %s: %s", tmp, ganc_h5_last_error(b, 512));
    return -1;
  }
  int version = GANC_CKPT_VERSION;
  double kimg = (double)meta->nimg / 1000.0;
  char created[64];
  ganc_utc_iso(created, sizeof created);
  int rc = 0;
  rc |= ganc_h5_attr_write_str(f, "format", GANC_CKPT_FORMAT);
  rc |= ganc_h5_attr_write_num(f, "format_version", H5T_STD_I32LE, H5T_NATIVE_INT, &version);
  rc |= ganc_h5_attr_write_str(f, "ganc_version", GANC_VERSION);
  rc |= ganc_h5_attr_write_str(f, "created", created);
  rc |= ganc_h5_attr_write_num(f, "step", H5T_STD_I64LE, H5T_NATIVE_INT64, &meta->step);
  rc |= ganc_h5_attr_write_num(f, "nimg", H5T_STD_I64LE, H5T_NATIVE_INT64, &meta->nimg);
  rc |= ganc_h5_attr_write_num(f, "kimg", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &kimg);
  rc |= ganc_h5_attr_write_num(f, "dataset_fingerprint", H5T_STD_U64LE, H5T_NATIVE_UINT64,
                               &meta->fingerprint);
  rc |= ganc_h5_attr_write_str(f, "data_dir", meta->data_dir);
  rc |= ganc_h5_attr_write_num(f, "loader_seed", H5T_STD_U64LE, H5T_NATIVE_UINT64,
                               &meta->loader.seed);
  rc |= ganc_h5_attr_write_num(f, "loader_epoch", H5T_STD_I64LE, H5T_NATIVE_INT64,
                               &meta->loader.epoch);
  rc |= ganc_h5_attr_write_num(f, "loader_cursor", H5T_STD_I64LE, H5T_NATIVE_INT64,
                               &meta->loader.cursor);
  rc |= ganc_h5_attr_write_str(f, "config", meta->config);
  if (meta->nclasses > 0)
    rc |= ganc_h5_attr_write_strs(f, "class_names", meta->class_names, meta->nclasses);
  static const char *const lecam_names[3] = {"lecam_ema_real", "lecam_ema_fake", "lecam_decay_pow"};
  for (int i = 0; i < 3 && meta->has_lecam; i++)
    rc |= ganc_h5_attr_write_num(f, lecam_names[i], H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                                 &meta->lecam[i]);
  static const char *const ada_names[4] = {"augment_p", "ada_signs", "ada_images", "ada_rt"};
  for (int i = 0; i < 4 && meta->has_ada; i++)
    if (i < 3 || isfinite(meta->ada[3])) // r_t: none before ADA's first adjustment
      rc |=
          ganc_h5_attr_write_num(f, ada_names[i], H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &meta->ada[i]);
  if (!rc) rc = ganc_h5_attrs_seal(f); // the last root attribute: a SHA-256 over the others
  for (int i = 0; i < nnets && !rc; i++)
    rc = write_net(ctx, f, nets[i]);
  if (H5Fclose(f) < 0) rc = -1;
  if (!rc && sync_path(tmp) != 0) {
    ganc_err_set(err, GANC_EXIT_RUNTIME,
                 "writing checkpoint %s failed: %s\n---> HINT: check free disk space; the previous "
                 "checkpoint is untouched",
                 tmp, strerror(errno));
    unlink(tmp);
    return -1;
  }
  if (rc) {
    char b[512];
    ganc_err_set(err, GANC_EXIT_RUNTIME,
                 "writing checkpoint %s failed: %s\n---> HINT: check free disk space; the previous "
                 "checkpoint is untouched",
                 tmp, ganc_h5_last_error(b, 512));
    unlink(tmp);
    return -1;
  }
  if (rename(tmp, path) != 0) {
    ganc_err_set(err, GANC_EXIT_RUNTIME, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    unlink(tmp);
    return -1;
  }
  char *copy = xstrdup(path);
  sync_path(dirname(copy)); // make the rename itself durable
  free(copy);
  return 0;
}

// ---- format 1: read through a copy made by a child process --------------------------------------
// Format 1 stored its text as variable-length strings in HDF5's global heap, which has no checksum
// and which HDF5 1.10 reads out of bounds when it is damaged (a segfault or an endless loop were
// measured). Reading such a file in a child process confines that: the child copies the file into
// an in-memory HDF5 file with the same objects (strings made fixed-length, so nothing in the copy
// needs the heap) and hands the bytes over a pipe; a child that crashes, hangs or fails is reported
// as damage. The copy is well-formed by construction (HDF5 wrote it from scratch), so the parent
// parses only what HDF5 itself produced, and reads it like any format-2 file (tensors keep their
// Fletcher32: H5Ocopy moves their chunks unchanged).
//
// The last copy is kept (keyed by the file's identity and a hash of its bytes), so the several
// reads of one resume fork once, at its first read (before the loader thread starts using HDF5,
// which a fork must not interrupt). The cache is touched by the calling thread only; ganc reads
// checkpoints from one.
typedef struct legacy_copy {
  char *path;
  dev_t dev;
  ino_t ino;
  off_t size;
  uint64_t hash; // of the file's bytes: a rewrite within one timestamp tick is seen too
  void *image;
  size_t n;
} legacy_copy;
static legacy_copy g_legacy;

// A 64-bit hash of the file's bytes (0 if it cannot be read).
static uint64_t file_hash(const char *path) {
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return 0;
  uint64_t h[2] = {0, 0}, acc = 0x9e3779b97f4a7c15ULL;
  char *buf = xmalloc(1 << 20);
  ssize_t r;
  while ((r = read(fd, buf, 1 << 20)) > 0) {
    ganc_hash128(buf, (size_t)r, acc, h);
    acc = h[0] ^ (h[1] << 1);
  }
  free(buf);
  close(fd);
  return r < 0 ? 0 : acc;
}

typedef struct legacy_hdr {
  uint64_t magic; // "gancckp1"
  int64_t status; // 0: image follows; else an error message follows
  uint64_t n;     // bytes that follow
} legacy_hdr;
#define LEGACY_MAGIC 0x31706b63636e6167ULL

static herr_t legacy_copy_link(hid_t src, const char *name, const H5L_info_t *info, void *dst) {
  if (info->type != H5L_TYPE_HARD) return 0; // never into another file
  return H5Ocopy(src, name, *(hid_t *)dst, name, H5P_DEFAULT, H5P_DEFAULT) < 0 ? -1 : 0;
}

// In the child, each dataset of the copy read whole: H5Ocopy moves a dataset's header as it is, so
// a damaged format-1 file can give a copy whose header does not fit its chunks (a byte of the
// old file's metadata flipped made HDF5 1.10's read of such a copy run past a buffer, SIGSEGV);
// such a read fails, or crashes, here in the child (reported as damage) and never in the reader.
static herr_t legacy_read_one(hid_t obj, const char *name, const H5O_info_t *info, void *data) {
  (void)data;
  if (info->type != H5O_TYPE_DATASET) return 0;
  hid_t d = H5Dopen2(obj, name, H5P_DEFAULT), s = d >= 0 ? H5Dget_space(d) : -1;
  hid_t t = d >= 0 ? H5Dget_type(d) : -1;
  hid_t mt = t >= 0 ? H5Tget_native_type(t, H5T_DIR_DEFAULT) : -1;
  const hssize_t n = s >= 0 ? H5Sget_simple_extent_npoints(s) : -1;
  const size_t es = mt >= 0 ? H5Tget_size(mt) : 0;
  herr_t rc = -1;
  if (n >= 0 && es > 0 && (uint64_t)n <= ((uint64_t)1 << 32) / es) {
    void *buf = xmalloc((size_t)n * es + 1);
    rc = H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0 ? -1 : 0;
    free(buf);
  }
  if (mt >= 0) H5Tclose(mt);
  if (t >= 0) H5Tclose(t);
  if (s >= 0) H5Sclose(s);
  if (d >= 0) H5Dclose(d);
  return rc;
}

// In the child: path → an HDF5 file image in the current layout (malloc'd).
static int legacy_convert(const char *path, void **image, size_t *n, ganc_err *err) {
  // HDF5's default layout for the copy: 1.10.8 cannot reopen an image of its own v2+ superblock
  // (a checksum error), and the copy needs no checksums: HDF5 wrote it, in this process's child.
  hid_t src = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), fapl = H5Pcreate(H5P_FILE_ACCESS);
  hid_t dst = -1;
  int rc = -1;
  if (src < 0 || fapl < 0 || H5Pset_fapl_core(fapl, 1 << 20, 0) < 0) goto done;
  dst = H5Fcreate("ganc-legacy-checkpoint", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  if (dst < 0 || ganc_h5_attrs_copy(src, dst, err)) goto done;
  if (H5Literate(src, H5_INDEX_NAME, H5_ITER_INC, NULL, legacy_copy_link, &dst) != 0) goto done;
  if (H5Fflush(dst, H5F_SCOPE_GLOBAL) < 0) goto done;
  if (H5Ovisit2(dst, H5_INDEX_NAME, H5_ITER_NATIVE, legacy_read_one, NULL, H5O_INFO_BASIC) != 0)
    goto done;
  ssize_t size = H5Fget_file_image(dst, NULL, 0);
  if (size <= 0) goto done;
  *image = xmalloc((size_t)size);
  if (H5Fget_file_image(dst, *image, (size_t)size) != size) goto done;
  *n = (size_t)size;
  rc = 0;
done:
  if (rc && !err->code) {
    char b[512];
    ganc_err_set(err, GANC_EXIT_USAGE, "%s", ganc_h5_last_error(b, sizeof b));
  }
  if (dst >= 0) H5Fclose(dst);
  if (fapl >= 0) H5Pclose(fapl);
  if (src >= 0) H5Fclose(src);
  return rc;
}

static int write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

// Reads n bytes from fd before `deadline` (CLOCK_MONOTONIC seconds); -1 on EOF, error or timeout.
static int read_all(int fd, void *p, size_t n, double deadline) {
  char *c = p;
  while (n > 0) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double left = deadline - ((double)now.tv_sec + 1e-9 * (double)now.tv_nsec);
    if (left <= 0) return -1;
    struct pollfd pf = {fd, POLLIN, 0};
    int pr = poll(&pf, 1, (int)(left * 1000) + 1);
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) return -1;
    ssize_t r = read(fd, c, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    c += r;
    n -= (size_t)r;
  }
  return 0;
}

// The format-1 file `path` (of `fsize` bytes, identity st) as a current-layout image.
static int legacy_image(const char *path, const struct stat *st, ganc_err *err) {
  uint64_t hash = file_hash(path);
  if (g_legacy.path && !strcmp(g_legacy.path, path) && g_legacy.dev == st->st_dev &&
      g_legacy.ino == st->st_ino && g_legacy.size == st->st_size && g_legacy.hash == hash && hash)
    return 0;
  free(g_legacy.path);
  free(g_legacy.image);
  memset(&g_legacy, 0, sizeof g_legacy);
  int fds[2];
  if (pipe(fds) != 0) {
    ganc_err_set(err, GANC_EXIT_RUNTIME, "pipe failed: %s", strerror(errno));
    return -1;
  }
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    ganc_err_set(err, GANC_EXIT_RUNTIME, "fork failed: %s", strerror(errno));
    return -1;
  }
  if (pid == 0) { // the child: convert, send, _exit (no atexit handlers, no stdio flush)
    close(fds[0]);
    // A crash must end this child, not run a handler the caller installed (a test framework's
    // would go on running the caller's code here).
    const int crash[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    for (size_t i = 0; i < sizeof crash / sizeof crash[0]; i++)
      signal(crash[i], SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    ganc_h5_quiet();
    ganc_err e = {0};
    void *img = NULL;
    size_t n = 0;
    int rc = legacy_convert(path, &img, &n, &e);
    legacy_hdr h = {LEGACY_MAGIC, rc, rc ? strlen(e.msg) : n};
    int ok = write_all(fds[1], &h, sizeof h) == 0 && write_all(fds[1], rc ? e.msg : img, h.n) == 0;
    _exit(ok ? 0 : 1);
  }
  close(fds[1]);
  // A generous deadline for a healthy file (10 s plus 20 MB/s); a damaged one may hang the child.
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  double deadline =
      (double)now.tv_sec + 1e-9 * (double)now.tv_nsec + 10.0 + (double)st->st_size / 20e6;
  legacy_hdr h;
  void *buf = NULL;
  int got = read_all(fds[0], &h, sizeof h, deadline) == 0 && h.magic == LEGACY_MAGIC &&
            h.n <= (uint64_t)st->st_size * 2 + (16u << 20);
  if (got) {
    buf = xmalloc(h.n + 1);
    got = read_all(fds[0], buf, h.n, deadline) == 0;
  }
  close(fds[0]);
  int status = 0;
  if (!got) kill(pid, SIGKILL);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!got || h.status != 0) {
    if (got) {
      ((char *)buf)[h.n] = 0;
      ganc_err_set(err, GANC_EXIT_USAGE,
                   "is damaged: a format-1 checkpoint that cannot be read (%.400s)", (char *)buf);
    } else if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL) {
      ganc_err_set(err, GANC_EXIT_USAGE,
                   "is damaged: reading this format-1 checkpoint crashed its reader (signal %d; "
                   "its unchecksummed text is broken)",
                   WTERMSIG(status));
    } else {
      ganc_err_set(err, GANC_EXIT_USAGE,
                   "is damaged: reading this format-1 checkpoint did not finish (its "
                   "unchecksummed text is broken)");
    }
    free(buf);
    return -1;
  }
  g_legacy = (legacy_copy){xstrdup(path), st->st_dev, st->st_ino, st->st_size, hash, buf, h.n};
  return 0;
}

// ---- opening -----------------------------------------------------------------------------------
typedef struct ckpt_file {
  hid_t f;
  int legacy; // read from a format-1 copy (see above)
} ckpt_file;

// Appends what to do about a damaged checkpoint, unless the message already says.
static void hint_earlier(ganc_err *err) {
  if (!err || !err->code || strstr(err->msg, "HINT")) return;
  size_t l = strlen(err->msg);
  snprintf(err->msg + l, sizeof err->msg - l,
           "\n---> HINT: use an earlier checkpoint of the run (ckpt-*.h5)");
}

static int ckpt_open(const char *path, ckpt_file *cf, ganc_err *err) {
  ganc_h5_quiet();
  cf->f = -1;
  cf->legacy = 0;
  struct stat st;
  if (stat(path, &st) != 0 && errno == ENOENT) {
    if (lstat(path, &st) == 0)
      ganc_err_set(err, GANC_EXIT_USAGE, "checkpoint %s is a symbolic link to nothing", path);
    else
      ganc_err_set(err, GANC_EXIT_USAGE, "checkpoint %s does not exist", path);
    return -1;
  }
  int64_t size = 0;
  int kind = ganc_h5_sniff(path, &size, err);
  if (kind < 0) {
    ganc_err_prefix(err, "checkpoint %s ", path);
    hint_earlier(err);
    return -1;
  }
  if (kind == GANC_H5_CHECKSUMMED) {
    cf->f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  } else {
    if (stat(path, &st) != 0 || legacy_image(path, &st, err)) {
      ganc_err_prefix(err, "checkpoint %s ", path);
      hint_earlier(err);
      return -1;
    }
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0 && H5Pset_fapl_core(fapl, 1 << 20, 0) >= 0 &&
        H5Pset_file_image(fapl, g_legacy.image, g_legacy.n) >= 0)
      cf->f = H5Fopen("ganc-legacy-checkpoint", H5F_ACC_RDONLY, fapl);
    if (fapl >= 0) H5Pclose(fapl);
    cf->legacy = 1;
  }
  if (cf->f < 0) {
    char b[512];
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "checkpoint %s is damaged or truncated: it cannot be opened (%s)", path,
                 ganc_h5_last_error(b, 512));
    hint_earlier(err);
    return -1;
  }
  return 0;
}

// Checks the attribute digest of obj (root or a net's group) for a file of format `version`:
// format 2 must have one that matches; format 1 has none.
static int check_digest(hid_t obj, int version, const char *where, ganc_err *err) {
  int rc = ganc_h5_attrs_check(obj, err);
  if (rc == 1 && version >= 2) {
    ganc_err_set(err, GANC_EXIT_USAGE, "the attribute checksum (%s) of %s is missing",
                 GANC_H5_ATTR_DIGEST, where);
    return -1;
  }
  if (rc < 0) ganc_err_prefix(err, "%s: ", where);
  return rc < 0 ? -1 : 0;
}

// The root attributes of an open checkpoint, checked (see checkpoint.h); errors without the path.
static int read_root(hid_t f, ganc_ckpt_meta *m, ganc_err *err) {
  memset(m, 0, sizeof *m);
  char *fmt = NULL;
  htri_t has = H5Aexists(f, "format");
  if (has < 0 || (has > 0 && ganc_h5_attr_read_str(f, "format", &fmt, err))) {
    char b[512];
    if (has < 0)
      ganc_err_set(err, GANC_EXIT_USAGE, "its attributes cannot be read (%s)",
                   ganc_h5_last_error(b, sizeof b));
    free(fmt);
    goto fail_damaged; // the root's object header fails its checksum, or the format is garbled
  }
  if (!has || strcmp(fmt, GANC_CKPT_FORMAT) != 0) {
    ganc_err_set(err, GANC_EXIT_USAGE, "is an HDF5 file but not a ganc checkpoint");
    free(fmt);
    return -1;
  }
  free(fmt);
  int64_t v = 0;
  if (ganc_h5_attr_read_i64(f, "format_version", INT64_MIN, INT64_MAX, &v, err)) goto fail;
  if (v < 1) {
    ganc_err_set(err, GANC_EXIT_USAGE, "is damaged: format_version %lld is not a version",
                 (long long)v);
    goto fail;
  }
  if (v > GANC_CKPT_VERSION) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "has format version %lld; this ganc reads up to %d\n---> HINT: update ganc",
                 (long long)v, GANC_CKPT_VERSION);
    goto fail;
  }
  m->version = (int)v;
  if (check_digest(f, m->version, "the root", err)) goto fail_damaged;
  const int64_t MAXC = GANC_CKPT_MAX_COUNT;
  if (ganc_h5_attr_read_i64(f, "step", 0, MAXC, &m->step, err) ||
      ganc_h5_attr_read_i64(f, "nimg", 0, MAXC, &m->nimg, err) ||
      ganc_h5_attr_read_u64(f, "dataset_fingerprint", &m->fingerprint, err) ||
      ganc_h5_attr_read_u64(f, "loader_seed", &m->loader.seed, err) ||
      ganc_h5_attr_read_i64(f, "loader_epoch", 0, MAXC, &m->loader.epoch, err) ||
      ganc_h5_attr_read_i64(f, "loader_cursor", 0, MAXC, &m->loader.cursor, err) ||
      ganc_h5_attr_read_str(f, "config", &m->config, err) ||
      ganc_h5_attr_read_str(f, "data_dir", &m->data_dir, err) ||
      ganc_h5_attr_read_str(f, "created", &m->created, err) ||
      (H5Aexists(f, "class_names") > 0 &&
       ganc_h5_attr_read_strs(f, "class_names", &m->class_names, &m->nclasses, err)))
    goto fail_damaged;
  // LeCam's averages: all three or none. D's outputs are finite floats; decay^k is in [0, 1].
  const int lecam_attrs = (H5Aexists(f, "lecam_ema_real") > 0) +
                          (H5Aexists(f, "lecam_ema_fake") > 0) +
                          (H5Aexists(f, "lecam_decay_pow") > 0);
  if (lecam_attrs != 0 && lecam_attrs != 3) {
    ganc_err_set(err, GANC_EXIT_USAGE, "%d of LeCam's 3 attributes (lecam_*) are present",
                 lecam_attrs);
    goto fail_damaged;
  }
  if (lecam_attrs) {
    m->has_lecam = 1;
    if (ganc_h5_attr_read_f64(f, "lecam_ema_real", -FLT_MAX, FLT_MAX, &m->lecam[0], err) ||
        ganc_h5_attr_read_f64(f, "lecam_ema_fake", -FLT_MAX, FLT_MAX, &m->lecam[1], err) ||
        ganc_h5_attr_read_f64(f, "lecam_decay_pow", 0.0, 1.0, &m->lecam[2], err))
      goto fail_damaged;
  }
  // ADA: p and the two counts together, r_t optional. p in [0, 1]; the counts are integers.
  const int ada_attrs = (H5Aexists(f, "augment_p") > 0) + (H5Aexists(f, "ada_signs") > 0) +
                        (H5Aexists(f, "ada_images") > 0);
  if (ada_attrs != 0 && ada_attrs != 3) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "%d of ADA's 3 attributes (augment_p, ada_signs, ada_images) are present",
                 ada_attrs);
    goto fail_damaged;
  }
  if (ada_attrs) {
    m->has_ada = 1;
    m->ada[3] = NAN;
    if (ganc_h5_attr_read_f64(f, "augment_p", 0.0, 1.0, &m->ada[0], err) ||
        ganc_h5_attr_read_f64(f, "ada_images", 0.0, 1e15, &m->ada[2], err) ||
        ganc_h5_attr_read_f64(f, "ada_signs", -m->ada[2], m->ada[2], &m->ada[1], err) ||
        (H5Aexists(f, "ada_rt") > 0 &&
         ganc_h5_attr_read_f64(f, "ada_rt", -1.0, 1.0, &m->ada[3], err)))
      goto fail_damaged;
    if (m->ada[1] != floor(m->ada[1]) || m->ada[2] != floor(m->ada[2])) {
      ganc_err_set(err, GANC_EXIT_USAGE, "ADA's counts %g and %g are not integers", m->ada[1],
                   m->ada[2]);
      goto fail_damaged;
    }
  }
  // Every step shows D at least one image, and a checkpoint is only written after a step.
  if (m->step > m->nimg || (m->step == 0) != (m->nimg == 0)) {
    ganc_err_set(err, GANC_EXIT_USAGE, "step %lld does not fit nimg %lld", (long long)m->step,
                 (long long)m->nimg);
    goto fail_damaged;
  }
  return 0;
fail_damaged:
  ganc_err_prefix(err, "is damaged: ");
fail:
  ganc_ckpt_meta_free(m);
  return -1;
}

int ganc_ckpt_read_meta(const char *path, ganc_ckpt_meta *m, ganc_err *err) {
  memset(m, 0, sizeof *m);
  ckpt_file cf;
  if (ckpt_open(path, &cf, err)) return -1;
  int rc = read_root(cf.f, m, err);
  H5Fclose(cf.f);
  if (rc) {
    ganc_err_prefix(err, "checkpoint %s ", path);
    if (strstr(err->msg, "damaged")) hint_earlier(err);
  }
  return rc;
}

// ---- tensors -----------------------------------------------------------------------------------
// No tensor of a DCGAN comes near this many floats (the largest, 4x4x1024x1024, is 2^24).
#define MAX_TENSOR_FLOATS (1ll << 26)

// What a stored tensor's element type is, in words ("a 4-byte integer"), for messages.
static void type_words(hid_t t, char *buf, size_t n) {
  H5T_class_t c = H5Tget_class(t);
  size_t size = H5Tget_size(t);
  if (c == H5T_INTEGER)
    snprintf(buf, n, "%s%zu (an integer type)", H5Tget_sign(t) == H5T_SGN_NONE ? "uint" : "int",
             8 * size);
  else if (c == H5T_FLOAT)
    snprintf(buf, n, "float%zu", 8 * size);
  else
    snprintf(buf, n, "a %zu-byte value of type class %d", size, (int)c);
}

// Checks what every tensor must be before it is read: float32 exactly (a float16, int32 or uint8
// tensor would be silently converted by HDF5), chunked with Fletcher32. 0, or -1 with err set.
static int check_tensor_storage(hid_t d, const char *path, const char *name, ganc_err *err) {
  hid_t t = H5Dget_type(d);
  int f32 = t >= 0 && (H5Tequal(t, H5T_IEEE_F32LE) > 0 || H5Tequal(t, H5T_IEEE_F32BE) > 0);
  if (!f32) {
    char w[96] = "an unreadable type";
    if (t >= 0) type_words(t, w, sizeof w);
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "checkpoint %s is damaged or foreign: tensor %s is stored as %s, not float32",
                 path, name, w);
  } else if (!ganc_h5_is_checksummed(d)) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "checkpoint %s is damaged or foreign: tensor %s has no Fletcher32 checksum", path,
                 name);
  }
  int ok = f32 && ganc_h5_is_checksummed(d);
  if (t >= 0) H5Tclose(t);
  return ok ? 0 : -1;
}

// Checks values read from tensor `name`: finite, and Adam's second moments (adam_v) non-negative.
static int check_values(const float *v, size_t n, const char *path, const char *name,
                        ganc_err *err) {
  int second_moment = strstr(name, "adam_v/") != NULL;
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < n; i++)
    if (!isfinite(v[i]) || (second_moment && v[i] < 0)) {
      if (!bad) first = i;
      bad++;
    }
  if (!bad) return 0;
  ganc_err_set(err, GANC_EXIT_USAGE,
               "checkpoint %s is damaged: tensor %s holds %zu value%s that %s (the first at index "
               "%zu: %g)\n---> HINT: ganc never saves such values, so the file changed after it "
               "was written; use an earlier checkpoint of the run",
               path, name, bad, bad == 1 ? "" : "s",
               second_moment ? "are not finite and non-negative" : "are NaN or Inf", first,
               (double)v[first]);
  return -1;
}

// Reads every tensor of `t` from group `gname`, checking shapes, types and values; host block of
// `total` floats.
static int read_block(hid_t parent, const char *gname, const ganc_tensor *t, int nt, float *host,
                      const char *path, const char *group, ganc_err *err) {
  if (!ganc_h5_is_hard_link(parent, gname)) { // a soft or external link could lead elsewhere
    ganc_err_set(err, GANC_EXIT_USAGE, "checkpoint %s has no %s/%s", path, group, gname);
    return -1;
  }
  hid_t g = H5Gopen2(parent, gname, H5P_DEFAULT);
  if (g < 0) {
    char b[512];
    ganc_err_set(err, GANC_EXIT_USAGE, "checkpoint %s is damaged: %s/%s cannot be opened (%s)",
                 path, group, gname, ganc_h5_last_error(b, sizeof b));
    return -1;
  }
  H5G_info_t info;
  if (H5Gget_info(g, &info) >= 0 && info.nlinks != (hsize_t)nt) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "checkpoint %s was made by a different architecture: %s/%s holds %llu tensors, "
                 "this model has %d\n---> HINT: use the config the checkpoint was trained with",
                 path, group, gname, (unsigned long long)info.nlinks, nt);
    H5Gclose(g);
    return -1;
  }
  for (int i = 0; i < nt; i++) {
    char name[300];
    snprintf(name, sizeof name, "%s/%s/%s", group, gname, t[i].name);
    hid_t d = ganc_h5_is_hard_link(g, t[i].name) ? H5Dopen2(g, t[i].name, H5P_DEFAULT) : -1;
    if (d < 0) {
      ganc_err_set(err, GANC_EXIT_USAGE,
                   "checkpoint %s was made by a different architecture: it has no tensor %s"
                   "\n---> HINT: use the config the checkpoint was trained with",
                   path, name);
      H5Gclose(g);
      return -1;
    }
    hsize_t dims[H5S_MAX_RANK];
    hid_t s = H5Dget_space(d);
    int nd = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
    int same = nd == t[i].ndim;
    if (same) {
      H5Sget_simple_extent_dims(s, dims, NULL);
      for (int k = 0; k < nd; k++)
        same &= dims[k] == (hsize_t)t[i].shape[k];
    }
    if (s >= 0) H5Sclose(s);
    if (!same) {
      char want[64];
      snprintf(want, sizeof want, "[%d,%d,%d,%d]", t[i].shape[0], t[i].ndim > 1 ? t[i].shape[1] : 0,
               t[i].ndim > 2 ? t[i].shape[2] : 0, t[i].ndim > 3 ? t[i].shape[3] : 0);
      ganc_err_set(err, GANC_EXIT_USAGE,
                   "checkpoint %s was made by a different architecture: tensor %s/%s has another "
                   "shape than this model's %s\n---> HINT: use the config the checkpoint was "
                   "trained with (ganc-sample does this by itself)",
                   path, group, t[i].name, want);
      H5Dclose(d);
      H5Gclose(g);
      return -1;
    }
    if (check_tensor_storage(d, path, name, err)) {
      H5Dclose(d);
      H5Gclose(g);
      return -1;
    }
    if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, host + t[i].offset) < 0) {
      char b[512];
      ganc_err_set(err, GANC_EXIT_USAGE,
                   "checkpoint %s is damaged: tensor %s fails its checksum (%s)\n---> HINT: "
                   "use an earlier checkpoint of the run",
                   path, name, ganc_h5_last_error(b, 512));
      H5Dclose(d);
      H5Gclose(g);
      return -1;
    }
    H5Dclose(d);
    if (check_values(host + t[i].offset, t[i].count, path, name, err)) {
      H5Gclose(g);
      return -1;
    }
  }
  H5Gclose(g);
  return 0;
}

// Opens net group `group` and checks its attributes (digest; adam_t when present).
static hid_t open_group(hid_t f, int version, const char *path, const char *group, ganc_err *err) {
  if (!ganc_h5_is_hard_link(f, group)) {
    ganc_err_set(err, GANC_EXIT_USAGE, "checkpoint %s has no network %s", path, group);
    return -1;
  }
  hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
  if (g < 0) {
    char b[512];
    ganc_err_set(err, GANC_EXIT_USAGE, "checkpoint %s is damaged: group %s cannot be opened (%s)",
                 path, group, ganc_h5_last_error(b, sizeof b));
    return -1;
  }
  char where[64];
  snprintf(where, sizeof where, "group %s", group);
  int64_t t = 0;
  if (check_digest(g, version, where, err) ||
      (H5Aexists(g, "adam_t") > 0 &&
       ganc_h5_attr_read_i64(g, "adam_t", 0, GANC_CKPT_MAX_COUNT, &t, err))) {
    ganc_err_prefix(err, "checkpoint %s is damaged: ", path);
    hint_earlier(err);
    H5Gclose(g);
    return -1;
  }
  return g;
}

int ganc_ckpt_load_net(const char *path, ganc_ctx *ctx, ganc_net *net, const char *group,
                       int with_optimizer, ganc_err *err) {
  ckpt_file cf;
  if (ckpt_open(path, &cf, err)) return -1;
  int rc = -1;
  float *host = NULL;
  hid_t g = -1;
  ganc_ckpt_meta m;
  if (read_root(cf.f, &m, err)) { // the root's digest covers what the caller decided from it
    ganc_err_prefix(err, "checkpoint %s ", path);
    goto done;
  }
  g = open_group(cf.f, m.version, path, group, err);
  ganc_ckpt_meta_free(&m);
  if (g < 0) goto done;
  size_t total =
      net->nparam_floats > net->nbuffer_floats ? net->nparam_floats : net->nbuffer_floats;
  host = xmalloc((total ? total : 1) * sizeof(float));
  if (read_block(g, "params", net->params, net->nparams, host, path, group, err)) goto done;
  // A net reading another's parameters (net_share_params: G_ema without a moving average) keeps
  // the donor's, loaded from the donor's group; its own are still read, so damage there is found.
  if (!net->param_donor) ganc_upload(ctx, net->p, host, net->nparam_floats);
  net_params_written(ctx, net); // the weights' bf16 halves, where the net keeps them
  if (read_block(g, "buffers", net->buffers, net->nbuffers, host, path, group, err)) goto done;
  ganc_upload(ctx, net->buf, host, net->nbuffer_floats);
  if (with_optimizer && net->m) {
    if (read_block(g, "adam_m", net->params, net->nparams, host, path, group, err)) goto done;
    ganc_upload(ctx, net->m, host, net->nparam_floats);
    if (read_block(g, "adam_v", net->params, net->nparams, host, path, group, err)) goto done;
    ganc_upload(ctx, net->v, host, net->nparam_floats);
    if (ganc_h5_attr_read_i64(g, "adam_t", 0, GANC_CKPT_MAX_COUNT, &net->adam_t, err)) {
      ganc_err_prefix(err, "checkpoint %s group %s: ", path, group);
      goto done;
    }
  }
  rc = 0;
done:
  free(host);
  if (g >= 0) H5Gclose(g);
  H5Fclose(cf.f);
  return rc;
}

// H5Ovisit callback: check each group's attributes, read each dataset whole and check it.
typedef struct verify_state {
  ganc_err *err;
  const char *path;
  int version;
} verify_state;

static herr_t verify_one(hid_t obj, const char *name, const H5O_info_t *info, void *data) {
  verify_state *v = data;
  if (info->type == H5O_TYPE_GROUP && strcmp(name, ".") != 0 && !strchr(name, '/')) {
    hid_t g = open_group(obj, v->version, v->path, name, v->err);
    if (g < 0) return 1;
    H5Gclose(g);
    return 0;
  }
  if (info->type != H5O_TYPE_DATASET) return 0;
  hid_t d = H5Dopen2(obj, name, H5P_DEFAULT), s = d >= 0 ? H5Dget_space(d) : -1;
  hssize_t n = s >= 0 ? H5Sget_simple_extent_npoints(s) : -1;
  if (s >= 0) H5Sclose(s);
  int rc = 0;
  if (d < 0 || n < 0 || n > MAX_TENSOR_FLOATS) {
    char b[512];
    ganc_err_set(v->err, GANC_EXIT_USAGE, "checkpoint %s is damaged: tensor %s cannot be read (%s)",
                 v->path, name,
                 d < 0 || n < 0 ? ganc_h5_last_error(b, sizeof b) : "implausibly large");
    rc = 1;
  } else if (check_tensor_storage(d, v->path, name, v->err)) {
    rc = 1;
  } else {
    float *buf = xmalloc(((size_t)n ? (size_t)n : 1) * sizeof(float));
    if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
      char b[512];
      ganc_err_set(v->err, GANC_EXIT_USAGE,
                   "checkpoint %s is damaged: tensor %s fails its checksum (%s)", v->path, name,
                   ganc_h5_last_error(b, sizeof b));
      rc = 1;
    } else if (check_values(buf, (size_t)n, v->path, name, v->err)) {
      rc = 1;
    }
    free(buf);
  }
  if (d >= 0) H5Dclose(d);
  return rc; // 1 stops the visit
}

int ganc_ckpt_verify(const char *path, ganc_err *err) {
  ckpt_file cf;
  if (ckpt_open(path, &cf, err)) return -1;
  ganc_ckpt_meta m;
  if (read_root(cf.f, &m, err)) {
    ganc_err_prefix(err, "checkpoint %s ", path);
    H5Fclose(cf.f);
    return -1;
  }
  verify_state v = {err, path, m.version};
  ganc_ckpt_meta_free(&m);
  herr_t rc = H5Ovisit2(cf.f, H5_INDEX_NAME, H5_ITER_NATIVE, verify_one, &v, H5O_INFO_BASIC);
  H5Fclose(cf.f);
  if (rc != 0 && err && !err->code)
    ganc_err_set(err, GANC_EXIT_USAGE, "checkpoint %s is damaged (its tensors cannot be listed)",
                 path);
  if (rc != 0) hint_earlier(err);
  return rc == 0 ? 0 : -1;
}

// ---- the `latest` pointer ----------------------------------------------------------------------
int ganc_ckpt_read_latest(const char *run_dir, char *name, size_t n, ganc_err *err) {
  char p[4200];
  snprintf(p, sizeof p, "%s/latest", run_dir);
  *name = 0;
  struct stat st;
  if (lstat(p, &st) != 0) return 1;
  if (stat(p, &st) != 0) {
    if (errno == ENOENT) return 1; // a symbolic link to nothing: as if there were no pointer
    ganc_err_set(err, GANC_EXIT_USAGE, "%s cannot be read: %s", p, strerror(errno));
    return -1;
  }
  if (!S_ISREG(st.st_mode)) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "%s is %s, not ganc's pointer to the newest checkpoint (a small text file)"
                 "\n---> HINT: move it out of the run folder, then run again",
                 p,
                 S_ISDIR(st.st_mode)    ? "a folder"
                 : S_ISFIFO(st.st_mode) ? "a FIFO"
                                        : "not a file");
    return -1;
  }
  int fd = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  char buf[300];
  ssize_t r = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
  if (fd >= 0) close(fd);
  if (r < 0) {
    ganc_err_set(err, GANC_EXIT_USAGE, "%s cannot be read: %s", p, strerror(errno));
    return -1;
  }
  buf[r] = 0;
  buf[strcspn(buf, "\r\n")] = 0;
  size_t len = strlen(buf);
  if (len == 0 || len >= n || len > 255 || strchr(buf, '/') || !strcmp(buf, ".") ||
      !strcmp(buf, "..")) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "%s does not name a checkpoint file of %s (it holds '%.60s')", p, run_dir, buf);
    return -1;
  }
  memcpy(name, buf, len + 1);
  return 0;
}

char *ganc_ckpt_resolve(const char *arg) {
  if (!ganc_is_dir(arg)) return xstrdup(arg);
  char p[4200], name[256] = "";
  ganc_err err = {0};
  int rc = ganc_ckpt_read_latest(arg, name, sizeof name, &err);
  if (rc < 0) ganc_die_err(&err);
  if (rc > 0)
    ganc_die(GANC_EXIT_USAGE,
             "%s has no `latest` checkpoint pointer\n---> HINT: pass a ckpt-*.h5 file with --ckpt",
             arg);
  snprintf(p, sizeof p, "%s/%s", arg, name);
  return xstrdup(p);
}
