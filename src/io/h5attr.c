// h5attr.c — HDF5 layout, sniffing and attribute helpers shared by shards and checkpoints (see
// h5attr.h).
#include "io/h5attr.h"

#include "io/imgio.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// No attribute of ours comes near this; a larger one is a crafted or damaged file, and refusing
// it keeps every allocation below small and bounded.
enum { MAX_ATTR_BYTES = 16 << 20, MAX_LIST = 1000000 };

hid_t ganc_h5_fapl(void) {
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl < 0) return fapl;
  if (H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_LATEST) < 0 ||
      H5Pset_meta_block_size(fapl, 0) < 0 || H5Pset_small_data_block_size(fapl, 0) < 0) {
    H5Pclose(fapl);
    return -1;
  }
  return fapl;
}

static hid_t compact_attrs(hid_t plist) {
  if (plist >= 0 && (H5Pset_attr_phase_change(plist, 1000, 900) < 0 ||
                     H5Pset_link_phase_change(plist, 60000, 50000) < 0)) {
    H5Pclose(plist);
    return -1;
  }
  return plist;
}

hid_t ganc_h5_fcpl(void) { return compact_attrs(H5Pcreate(H5P_FILE_CREATE)); }
hid_t ganc_h5_gcpl(void) { return compact_attrs(H5Pcreate(H5P_GROUP_CREATE)); }

// ---- sniffing ---------------------------------------------------------------------------------
int ganc_h5_sniff(const char *path, int64_t *size, ganc_err *err) {
  static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  struct stat st;
  if (size) *size = 0;
  if (stat(path, &st) != 0) {
    ganc_err_set(err, GANC_EXIT_USAGE, "cannot be read: %s", strerror(errno));
    return -1;
  }
  if (!S_ISREG(st.st_mode)) {
    const char *what = S_ISDIR(st.st_mode)    ? "a folder"
                       : S_ISFIFO(st.st_mode) ? "a FIFO (named pipe)"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                                              : "not a regular file";
    ganc_err_set(err, GANC_EXIT_USAGE, "is %s, not a file", what);
    return -1;
  }
  // O_NONBLOCK: should the path have been swapped for a FIFO since stat, open cannot block.
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    ganc_err_set(err, GANC_EXIT_USAGE, "cannot be opened: %s", strerror(errno));
    return -1;
  }
  int rc = -1;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ganc_err_set(err, GANC_EXIT_USAGE, "is not a regular file");
    goto done;
  }
  if (size) *size = (int64_t)st.st_size;
  if (st.st_size == 0) {
    ganc_err_set(err, GANC_EXIT_USAGE, "is empty (0 bytes; cut short by a crash or a full disk?)");
    goto done;
  }
  // HDF5 looks for its signature at 0, 512, 1024, 2048, ... (after a user block).
  for (off_t at = 0; at + 9 <= st.st_size; at = at ? at * 2 : 512) {
    unsigned char head[9];
    if (pread(fd, head, sizeof head, at) != (ssize_t)sizeof head) break;
    if (memcmp(head, sig, 8) == 0) {
      rc = head[8] >= 2 ? GANC_H5_CHECKSUMMED : GANC_H5_OLD_LAYOUT;
      goto done;
    }
  }
  ganc_err_set(err, GANC_EXIT_USAGE,
               "is not an HDF5 file (%lld bytes without the HDF5 signature: damaged, truncated "
               "or foreign)",
               (long long)st.st_size);
done:
  close(fd);
  return rc;
}

// ---- writing ----------------------------------------------------------------------------------
hid_t ganc_h5_fixed_str_type(size_t size) {
  hid_t t = H5Tcopy(H5T_C_S1);
  if (t < 0) return t;
  if (H5Tset_size(t, size ? size : 1) < 0 || H5Tset_strpad(t, H5T_STR_NULLTERM) < 0 ||
      H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
    H5Tclose(t);
    return -1;
  }
  return t;
}

// Creates attribute `name` of `type` and shape `space` on obj and writes `data` as `mem_type`.
static int write_attr(hid_t obj, const char *name, hid_t type, hid_t space, hid_t mem_type,
                      const void *data) {
  if (space < 0) return -1;
  hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  int rc = a < 0 || H5Awrite(a, mem_type, data) < 0 ? -1 : 0;
  if (a >= 0) H5Aclose(a);
  H5Sclose(space);
  return rc;
}

int ganc_h5_attr_write_str(hid_t obj, const char *name, const char *value) {
  const char *v = value ? value : "";
  hid_t t = ganc_h5_fixed_str_type(strlen(v) + 1);
  if (t < 0) return -1;
  int rc = write_attr(obj, name, t, H5Screate(H5S_SCALAR), t, v);
  H5Tclose(t);
  return rc;
}

int ganc_h5_attr_write_strs(hid_t obj, const char *name, char **values, int n) {
  size_t w = 1;
  for (int i = 0; i < n; i++)
    if (values[i] && strlen(values[i]) + 1 > w) w = strlen(values[i]) + 1;
  char *buf = xcalloc((size_t)(n > 0 ? n : 1), w); // [n, w], zero padded
  for (int i = 0; i < n; i++)
    if (values[i]) memcpy(buf + (size_t)i * w, values[i], strlen(values[i]));
  hid_t t = ganc_h5_fixed_str_type(w);
  hsize_t dim = (hsize_t)n;
  int rc = t < 0 ? -1 : write_attr(obj, name, t, H5Screate_simple(1, &dim, NULL), t, buf);
  if (t >= 0) H5Tclose(t);
  free(buf);
  return rc;
}

int ganc_h5_attr_write_num(hid_t obj, const char *name, hid_t file_type, hid_t mem_type,
                           const void *value) {
  return write_attr(obj, name, file_type, H5Screate(H5S_SCALAR), mem_type, value);
}

int ganc_h5_attrs_seal(hid_t obj) {
  char hex[65];
  ganc_err err = {0};
  if (ganc_h5_attrs_digest(obj, hex, &err)) return -1;
  return ganc_h5_attr_write_str(obj, GANC_H5_ATTR_DIGEST, hex);
}

// ---- reading ----------------------------------------------------------------------------------
// An attribute's element count (a scalar is 1), or -1. A foreign or crafted file may hold an array
// where we expect one value: reading it into one scalar would overrun it, so callers check.
static hssize_t attr_points(hid_t a) {
  hid_t s = H5Aget_space(a);
  hssize_t n = s >= 0 ? H5Sget_simple_extent_npoints(s) : -1;
  if (s >= 0) H5Sclose(s);
  return n;
}

// Opens attribute `name` of obj holding exactly `want` elements (want < 0: any count, returned in
// *count) of type class `cls`; returns the attribute and its type (*type), or -1 with err set.
static hid_t open_typed(hid_t obj, const char *name, H5T_class_t cls, hssize_t want,
                        hssize_t *count, hid_t *type, ganc_err *err) {
  *type = -1;
  htri_t ex = H5Aexists(obj, name);
  if (ex <= 0) {
    ganc_err_set(err, GANC_EXIT_USAGE, ex == 0 ? "is missing" : "cannot be read");
    return -1;
  }
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0) {
    char b[512];
    ganc_err_set(err, GANC_EXIT_USAGE, "cannot be read (%s)", ganc_h5_last_error(b, sizeof b));
    return -1;
  }
  hssize_t n = attr_points(a);
  if (want >= 0 && n != want) {
    ganc_err_set(err, GANC_EXIT_USAGE, "holds %lld values where %lld is expected", (long long)n,
                 (long long)want);
    H5Aclose(a);
    return -1;
  }
  if (count) *count = n;
  hid_t t = H5Aget_type(a);
  H5T_class_t c = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
  if (c != cls) {
    const char *what = c == H5T_INTEGER  ? "an integer"
                       : c == H5T_FLOAT  ? "a floating-point number"
                       : c == H5T_STRING ? "a string"
                                         : "of another type";
    const char *want_s = cls == H5T_INTEGER  ? "a whole number (an integer type)"
                         : cls == H5T_STRING ? "a string"
                                             : "a number";
    ganc_err_set(err, GANC_EXIT_USAGE, "is %s where %s is expected", what, want_s);
    if (t >= 0) H5Tclose(t);
    H5Aclose(a);
    return -1;
  }
  *type = t;
  return a;
}

int ganc_h5_attr_read_i64(hid_t obj, const char *name, int64_t lo, int64_t hi, int64_t *value,
                          ganc_err *err) {
  hid_t t, a = open_typed(obj, name, H5T_INTEGER, 1, NULL, &t, err);
  if (a < 0) goto fail;
  size_t size = H5Tget_size(t);
  H5T_sign_t sign = H5Tget_sign(t);
  H5Tclose(t);
  if (size < 1 || size > 8) {
    ganc_err_set(err, GANC_EXIT_USAGE, "is a %zu-byte integer (at most 8 are read)", size);
    H5Aclose(a);
    goto fail;
  }
  // The range is checked on the value as stored, before any narrowing: HDF5 would saturate an
  // unsigned value above INT64_MAX, and a cast to int would wrap 2^32 + 32 to 32.
  int ok;
  if (sign == H5T_SGN_NONE) {
    uint64_t u = 0;
    ok = H5Aread(a, H5T_NATIVE_UINT64, &u) >= 0;
    if (ok && (hi < 0 || u > (uint64_t)hi || (lo > 0 && u < (uint64_t)lo))) {
      ganc_err_set(err, GANC_EXIT_USAGE, "is %" PRIu64 ", outside %" PRId64 "..%" PRId64, u, lo,
                   hi);
      H5Aclose(a);
      goto fail;
    }
    *value = (int64_t)u;
  } else {
    int64_t v = 0;
    ok = H5Aread(a, H5T_NATIVE_INT64, &v) >= 0;
    if (ok && (v < lo || v > hi)) {
      ganc_err_set(err, GANC_EXIT_USAGE, "is %" PRId64 ", outside %" PRId64 "..%" PRId64, v, lo,
                   hi);
      H5Aclose(a);
      goto fail;
    }
    *value = v;
  }
  H5Aclose(a);
  if (!ok) {
    char b[512];
    ganc_err_set(err, GANC_EXIT_USAGE, "cannot be read (%s)", ganc_h5_last_error(b, sizeof b));
    goto fail;
  }
  return 0;
fail:
  ganc_err_prefix(err, "attribute '%s' ", name);
  return -1;
}

int ganc_h5_attr_read_u64(hid_t obj, const char *name, uint64_t *value, ganc_err *err) {
  hid_t t, a = open_typed(obj, name, H5T_INTEGER, 1, NULL, &t, err);
  if (a < 0) goto fail;
  size_t size = H5Tget_size(t);
  H5T_sign_t sign = H5Tget_sign(t);
  H5Tclose(t);
  int ok = size >= 1 && size <= 8;
  if (!ok) {
    ganc_err_set(err, GANC_EXIT_USAGE, "is a %zu-byte integer (at most 8 are read)", size);
    H5Aclose(a);
    goto fail;
  }
  if (sign == H5T_SGN_NONE) {
    ok = H5Aread(a, H5T_NATIVE_UINT64, value) >= 0;
  } else {
    int64_t v = 0;
    ok = H5Aread(a, H5T_NATIVE_INT64, &v) >= 0;
    if (ok && v < 0) {
      ganc_err_set(err, GANC_EXIT_USAGE, "is %" PRId64 ", negative", v);
      H5Aclose(a);
      goto fail;
    }
    *value = (uint64_t)v;
  }
  H5Aclose(a);
  if (!ok) {
    char b[512];
    ganc_err_set(err, GANC_EXIT_USAGE, "cannot be read (%s)", ganc_h5_last_error(b, sizeof b));
    goto fail;
  }
  return 0;
fail:
  ganc_err_prefix(err, "attribute '%s' ", name);
  return -1;
}

int ganc_h5_attr_read_f64(hid_t obj, const char *name, double lo, double hi, double *value,
                          ganc_err *err) {
  hid_t t, a = open_typed(obj, name, H5T_FLOAT, 1, NULL, &t, err);
  if (a < 0) goto fail;
  const size_t size = H5Tget_size(t);
  H5Tclose(t);
  double v = NAN;
  const int ok = (size == 4 || size == 8) && H5Aread(a, H5T_NATIVE_DOUBLE, &v) >= 0;
  H5Aclose(a);
  if (!ok) {
    char b[512];
    ganc_err_set(err, GANC_EXIT_USAGE, "cannot be read as a number (%zu bytes: %s)", size,
                 ganc_h5_last_error(b, sizeof b));
    goto fail;
  }
  if (!(v >= lo && v <= hi)) { // NaN fails too
    ganc_err_set(err, GANC_EXIT_USAGE, "is %g, outside %g..%g", v, lo, hi);
    goto fail;
  }
  *value = v;
  return 0;
fail:
  ganc_err_prefix(err, "attribute '%s' ", name);
  return -1;
}

// Reads fixed-length string attribute a of type t ([n] strings of `size` bytes) as raw bytes into
// a malloc'd buffer [n, size + 1], each string NUL-terminated at its end.
static char *read_fixed(hid_t a, hid_t t, hssize_t n, size_t *width, ganc_err *err) {
  if (H5Tis_variable_str(t) != 0) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "is a variable-length string (a file made by an older ganc, or not by ganc)");
    return NULL;
  }
  size_t size = H5Tget_size(t);
  if (size < 1 || n < 1 || (uint64_t)n * size > MAX_ATTR_BYTES) {
    ganc_err_set(err, GANC_EXIT_USAGE, "has an implausible size (%lld strings of %zu bytes)",
                 (long long)n, size);
    return NULL;
  }
  char *raw = xmalloc((size_t)n * size);
  if (H5Aread(a, t, raw) < 0) { // the file's own type: the stored bytes, no conversion
    char b[512];
    ganc_err_set(err, GANC_EXIT_USAGE, "cannot be read (%s)", ganc_h5_last_error(b, sizeof b));
    free(raw);
    return NULL;
  }
  char *out = xcalloc((size_t)n, size + 1);
  for (hssize_t i = 0; i < n; i++)
    memcpy(out + (size_t)i * (size + 1), raw + (size_t)i * size, size);
  free(raw);
  *width = size + 1;
  return out;
}

int ganc_h5_attr_read_str(hid_t obj, const char *name, char **out, ganc_err *err) {
  *out = NULL;
  hid_t t, a = open_typed(obj, name, H5T_STRING, 1, NULL, &t, err);
  if (a < 0) goto fail;
  size_t w;
  char *buf = read_fixed(a, t, 1, &w, err);
  H5Tclose(t);
  H5Aclose(a);
  if (!buf) goto fail;
  *out = xstrdup(buf);
  free(buf);
  return 0;
fail:
  ganc_err_prefix(err, "attribute '%s' ", name);
  return -1;
}

int ganc_h5_attr_read_strs(hid_t obj, const char *name, char ***out, int *n, ganc_err *err) {
  *out = NULL;
  *n = 0;
  hssize_t cnt = 0;
  hid_t t, a = open_typed(obj, name, H5T_STRING, -1, &cnt, &t, err);
  if (a < 0) goto fail;
  if (cnt < 1 || cnt > MAX_LIST) {
    ganc_err_set(err, GANC_EXIT_USAGE, "holds an implausible count %lld", (long long)cnt);
    H5Tclose(t);
    H5Aclose(a);
    goto fail;
  }
  size_t w;
  char *buf = read_fixed(a, t, cnt, &w, err);
  H5Tclose(t);
  H5Aclose(a);
  if (!buf) goto fail;
  *out = xcalloc((size_t)cnt, sizeof **out);
  for (hssize_t i = 0; i < cnt; i++)
    (*out)[i] = xstrdup(buf + (size_t)i * w);
  *n = (int)cnt;
  free(buf);
  return 0;
fail:
  ganc_err_prefix(err, "attribute '%s' ", name);
  return -1;
}

// ---- the digest over all attributes ------------------------------------------------------------
typedef struct canon {
  uint8_t *buf;
  size_t n, cap;
  ganc_err *err;
  int failed;
} canon;

static void canon_put(canon *c, const void *p, size_t n) {
  if (c->n + n > c->cap) {
    while (c->n + n > c->cap)
      c->cap = c->cap ? c->cap * 2 : 4096;
    c->buf = xrealloc(c->buf, c->cap);
  }
  memcpy(c->buf + c->n, p, n);
  c->n += n;
}

static void canon_u64(canon *c, uint64_t v) {
  uint8_t b[8];
  for (int i = 0; i < 8; i++)
    b[i] = (uint8_t)(v >> (8 * i));
  canon_put(c, b, 8);
}

static herr_t canon_one(hid_t obj, const char *name, const H5A_info_t *info, void *data) {
  (void)info;
  canon *c = data;
  if (!strcmp(name, GANC_H5_ATTR_DIGEST)) return 0;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT), t = a >= 0 ? H5Aget_type(a) : -1;
  hid_t s = a >= 0 ? H5Aget_space(a) : -1;
  H5T_class_t cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
  size_t size = t >= 0 ? H5Tget_size(t) : 0;
  int rank = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
  hsize_t dims[H5S_MAX_RANK];
  hssize_t npts = s >= 0 ? H5Sget_simple_extent_npoints(s) : -1;
  int ok = a >= 0 && t >= 0 && s >= 0 && rank >= 0 && rank <= H5S_MAX_RANK && npts >= 0 &&
           size >= 1 && (uint64_t)npts * size <= MAX_ATTR_BYTES;
  if (ok) H5Sget_simple_extent_dims(s, dims, NULL);
  if (ok && !(cls == H5T_INTEGER || cls == H5T_FLOAT ||
              (cls == H5T_STRING && H5Tis_variable_str(t) == 0))) {
    ganc_err_set(c->err, GANC_EXIT_USAGE,
                 "attribute '%s' has a type this format does not use (variable-length or "
                 "compound data; a file made by an older ganc, or not by ganc)",
                 name);
    ok = 0;
  } else if (!ok) {
    char b[512];
    ganc_err_set(c->err, GANC_EXIT_USAGE, "attribute '%s' cannot be read (%s)", name,
                 ganc_h5_last_error(b, sizeof b));
  }
  void *raw = NULL;
  if (ok) {
    raw = xmalloc((size_t)npts * size + 1);
    if (npts > 0 && H5Aread(a, t, raw) < 0) { // stored bytes: no conversion
      char b[512];
      ganc_err_set(c->err, GANC_EXIT_USAGE, "attribute '%s' cannot be read (%s)", name,
                   ganc_h5_last_error(b, sizeof b));
      ok = 0;
    }
  }
  if (ok) {
    canon_put(c, name, strlen(name) + 1);
    canon_u64(c, (uint64_t)cls);
    canon_u64(c, size);
    canon_u64(c, cls == H5T_INTEGER ? (uint64_t)H5Tget_sign(t) : 0);
    canon_u64(c, (uint64_t)rank);
    for (int i = 0; i < rank; i++)
      canon_u64(c, dims[i]);
    canon_u64(c, (uint64_t)npts * size);
    canon_put(c, raw, (size_t)npts * size);
    if (c->n > 4 * (size_t)MAX_ATTR_BYTES) {
      ganc_err_set(c->err, GANC_EXIT_USAGE, "attributes are implausibly large");
      ok = 0;
    }
  }
  free(raw);
  if (s >= 0) H5Sclose(s);
  if (t >= 0) H5Tclose(t);
  if (a >= 0) H5Aclose(a);
  if (!ok) c->failed = 1;
  return ok ? 0 : 1; // 1 stops the iteration
}

int ganc_h5_attrs_digest(hid_t obj, char hex[65], ganc_err *err) {
  canon c = {NULL, 0, 0, err, 0};
  hsize_t idx = 0;
  herr_t rc = H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, &idx, canon_one, &c);
  if (rc != 0 || c.failed) {
    if (!c.failed) {
      char b[512];
      ganc_err_set(err, GANC_EXIT_USAGE, "attributes cannot be listed (%s)",
                   ganc_h5_last_error(b, sizeof b));
    }
    free(c.buf);
    return -1;
  }
  uint8_t d[32];
  ganc_sha256(c.buf ? c.buf : (const uint8_t *)"", c.n, d);
  for (int i = 0; i < 32; i++)
    snprintf(hex + 2 * i, 3, "%02x", d[i]);
  free(c.buf);
  return 0;
}

int ganc_h5_attrs_check(hid_t obj, ganc_err *err) {
  htri_t ex = H5Aexists(obj, GANC_H5_ATTR_DIGEST);
  if (ex == 0) return 1;
  char *stored = NULL, hex[65];
  if (ex < 0 || ganc_h5_attr_read_str(obj, GANC_H5_ATTR_DIGEST, &stored, err)) {
    if (ex < 0) ganc_err_set(err, GANC_EXIT_USAGE, "its attributes cannot be listed");
    free(stored);
    return -1;
  }
  int rc = ganc_h5_attrs_digest(obj, hex, err);
  if (rc == 0 && strcmp(stored, hex) != 0) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "its attributes do not match their SHA-256 (a changed byte in a setting, a name "
                 "or a number)");
    rc = -1;
  }
  free(stored);
  return rc;
}

// ---- carrying attributes over ------------------------------------------------------------------
typedef struct copy_ctx {
  hid_t dst;
  ganc_err *err;
} copy_ctx;

static herr_t copy_one(hid_t src, const char *name, const H5A_info_t *info, void *data) {
  (void)info;
  copy_ctx *c = data;
  hid_t a = H5Aopen(src, name, H5P_DEFAULT), t = a >= 0 ? H5Aget_type(a) : -1;
  hid_t s = a >= 0 ? H5Aget_space(a) : -1;
  hssize_t n = s >= 0 ? H5Sget_simple_extent_npoints(s) : -1;
  size_t size = t >= 0 ? H5Tget_size(t) : 0;
  int ok = n >= 0 && n <= MAX_LIST && size > 0 && (uint64_t)n * size <= MAX_ATTR_BYTES;
  if (ok && H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) > 0) {
    hid_t mt = H5Tcopy(H5T_C_S1); // HDF5 converts between strings of one character set only
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5Tget_cset(t));
    char **v = xcalloc((size_t)(n ? n : 1), sizeof(char *));
    ok = H5Aread(a, mt, v) >= 0;
    if (ok) {
      size_t w = 1;
      for (hssize_t i = 0; i < n; i++) {
        size_t l = v[i] ? strnlen(v[i], MAX_ATTR_BYTES) + 1 : 1;
        if (l > w) w = l;
      }
      ok = (uint64_t)w * (uint64_t)(n ? n : 1) <= MAX_ATTR_BYTES;
      char *buf = ok ? xcalloc((size_t)(n ? n : 1), w) : NULL;
      for (hssize_t i = 0; ok && i < n; i++)
        if (v[i]) memcpy(buf + (size_t)i * w, v[i], strnlen(v[i], w - 1));
      hid_t ft = ok ? ganc_h5_fixed_str_type(w) : -1;
      ok = ok && ft >= 0 && write_attr(c->dst, name, ft, H5Scopy(s), ft, buf) == 0;
      if (ft >= 0) H5Tclose(ft);
      free(buf);
      H5Dvlen_reclaim(mt, s, H5P_DEFAULT, v);
    }
    free(v);
    H5Tclose(mt);
  } else if (ok) {
    void *raw = xmalloc((size_t)n * size + 1);
    ok = H5Aread(a, t, raw) >= 0 && write_attr(c->dst, name, t, H5Scopy(s), t, raw) == 0;
    free(raw);
  }
  if (!ok) {
    char b[512];
    ganc_err_set(c->err, GANC_EXIT_USAGE, "attribute '%s' cannot be read (%s)", name,
                 ganc_h5_last_error(b, sizeof b));
  }
  if (s >= 0) H5Sclose(s);
  if (t >= 0) H5Tclose(t);
  if (a >= 0) H5Aclose(a);
  return ok ? 0 : 1;
}

int ganc_h5_attrs_copy(hid_t src, hid_t dst, ganc_err *err) {
  copy_ctx c = {dst, err};
  hsize_t idx = 0;
  return H5Aiterate2(src, H5_INDEX_NAME, H5_ITER_INC, &idx, copy_one, &c) == 0 ? 0 : -1;
}

int ganc_h5_is_hard_link(hid_t loc, const char *name) {
  H5L_info_t info;
  return H5Lexists(loc, name, H5P_DEFAULT) > 0 && H5Lget_info(loc, name, &info, H5P_DEFAULT) >= 0 &&
         info.type == H5L_TYPE_HARD;
}

int ganc_h5_is_checksummed(hid_t d) {
  hid_t dcpl = H5Dget_create_plist(d);
  if (dcpl < 0) return 0;
  unsigned flags = 0;
  size_t nelmts = 0;
  int ok = H5Pget_layout(dcpl) == H5D_CHUNKED &&
           H5Pget_filter_by_id2(dcpl, H5Z_FILTER_FLETCHER32, &flags, &nelmts, NULL, 0, NULL,
                                NULL) >= 0 &&
           !(flags & H5Z_FLAG_OPTIONAL); // an optional filter may be skipped chunk by chunk
  H5Pclose(dcpl);
  return ok;
}
