// idx.c — IDX reader for plain files and gzip files (one member), through zlib's inflate.
//
// Why not gzread: it stops once it has the bytes asked for, so zlib never reaches the gzip trailer
// and never checks the CRC-32 and length stored there; it also reads a second member or ignores
// trailing bytes without a word. A flipped bit in the deflate data then gives different images and
// exit 0. Here every file is read to its very end: a gzip file must be exactly one member whose
// trailer checks, and the data (plain or unpacked) must be exactly the header plus the n·h·w (or
// n) bytes it announces — no more, no fewer.
#include "data/idx.h"

#include "core/util.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

enum { IDX_UBYTE_3D = 0x00000803, IDX_UBYTE_1D = 0x00000801 };

#define IDX_HINT "\n---> HINT: download the file again (or check the copy against the original)"

// One IDX file being read from start to end: plain bytes, or a gzip member unpacked as it is read.
typedef struct idx_src {
  FILE *f;
  const char *path;
  int gz;         // 1: gzip (by its magic bytes 1f 8b), 0: plain
  int z_ready;    // inflateInit2 done
  int z_end;      // the member's trailer has been read and checked
  uint64_t total; // data bytes delivered so far (unpacked for gzip)
  uint64_t size;  // the file's size in bytes (packed, for gzip)
  z_stream z;
  uint8_t in[1 << 16];
} idx_src;

static int src_open(idx_src *s, const char *path, ganc_err *err) {
  memset(s, 0, sizeof *s);
  s->path = path;
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below as not a file.
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    ganc_err_set(err, GANC_EXIT_USAGE, "cannot open %s: %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ganc_err_set(err, GANC_EXIT_USAGE, "%s is not a regular file", path);
    close(fd);
    return -1;
  }
  s->size = (uint64_t)st.st_size;
  if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0 || !(s->f = fdopen(fd, "rb"))) {
    ganc_err_set(err, GANC_EXIT_RUNTIME, "cannot read %s: %s", path, strerror(errno));
    close(fd);
    return -1;
  }
  // Sniff the gzip magic; the bytes read stay as inflate's first input (or the plain data).
  size_t got = fread(s->in, 1, 2, s->f);
  s->gz = got == 2 && s->in[0] == 0x1f && s->in[1] == 0x8b;
  if (s->gz) {
    if (inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK) { // 16: gzip wrapper only, no zlib or raw
      ganc_err_set(err, GANC_EXIT_RUNTIME, "cannot start zlib for %s: out of memory", path);
      return -1;
    }
    s->z_ready = 1;
  }
  s->z.next_in = s->in;
  s->z.avail_in = (uInt)got;
  return 0;
}

static void src_close(idx_src *s) {
  if (s->z_ready) inflateEnd(&s->z);
  if (s->f) fclose(s->f);
  memset(s, 0, sizeof *s);
}

// Refills the input buffer when it is empty; returns the bytes now available (0 at end of file).
static size_t src_fill(idx_src *s, ganc_err *err) {
  if (s->z.avail_in == 0) {
    size_t got = fread(s->in, 1, sizeof s->in, s->f);
    if (got == 0 && ferror(s->f)) {
      ganc_err_set(err, GANC_EXIT_RUNTIME, "cannot read %s: %s", s->path, strerror(errno));
      return (size_t)-1;
    }
    s->z.next_in = s->in;
    s->z.avail_in = (uInt)got;
  }
  return s->z.avail_in;
}

// Reads up to n data bytes into dst; returns how many (fewer only at the end of the data), or -1
// with err set on a read error or damaged gzip data.
static int64_t src_read(idx_src *s, void *dst, size_t n, ganc_err *err) {
  uint8_t *p = dst;
  size_t done = 0;
  while (done < n) {
    size_t avail = src_fill(s, err);
    if (avail == (size_t)-1) return -1;
    if (!s->gz) { // plain: copy from the buffer
      if (avail == 0) break;
      size_t k = n - done < avail ? n - done : avail;
      memcpy(p + done, s->z.next_in, k);
      s->z.next_in += k;
      s->z.avail_in -= (uInt)k;
      done += k;
      continue;
    }
    if (s->z_end) break;
    if (avail == 0) break; // the file ends inside the gzip member: reported by the caller
    size_t want = n - done > (1u << 30) ? (1u << 30) : n - done;
    s->z.next_out = p + done;
    s->z.avail_out = (uInt)want;
    uInt in_before = s->z.avail_in;
    int rc = inflate(&s->z, Z_NO_FLUSH);
    done += want - s->z.avail_out;
    if (rc == Z_BUF_ERROR && s->z.avail_in == in_before && s->z.avail_out == want) {
      // No progress with input and room for output: not expected of zlib; never spin on it.
      ganc_err_set(err, GANC_EXIT_USAGE, "%s is damaged: its gzip data does not unpack" IDX_HINT,
                   s->path);
      return -1;
    }
    if (rc == Z_STREAM_END) {
      s->z_end = 1; // zlib has checked the trailer's CRC-32 and length (ISIZE)
    } else if (rc == Z_MEM_ERROR) {
      ganc_err_set(err, GANC_EXIT_RUNTIME, "out of memory unpacking %s", s->path);
      return -1;
    } else if (rc != Z_OK && rc != Z_BUF_ERROR) { // Z_DATA_ERROR, Z_NEED_DICT, Z_STREAM_ERROR
      const char *zmsg = s->z.msg ? s->z.msg : "invalid data";
      const char *what = !strcmp(zmsg, "incorrect data check")
                             ? "the CRC-32 in its gzip trailer does not match its data"
                         : !strcmp(zmsg, "incorrect length check")
                             ? "the length in its gzip trailer does not match its data"
                             : "its gzip data does not unpack";
      ganc_err_set(err, GANC_EXIT_USAGE,
                   "%s is damaged: %s (zlib: %s, after %llu bytes of data)" IDX_HINT, s->path, what,
                   zmsg, (unsigned long long)(s->total + done));
      return -1;
    }
  }
  s->total += done;
  return (int64_t)done;
}

// Before allocating what a header announces: can the file hold n more data bytes at all? A plain
// file needs them; a gzip member cannot unpack to more than about 1032x its packed size (deflate's
// longest match per shortest code). So a 16-byte file whose header claims 16 GiB is called
// truncated at once, instead of allocating 16 GiB first (or failing as "out of memory").
static int src_can_hold(idx_src *s, uint64_t n, const char *what, ganc_err *err) {
  uint64_t room = s->gz ? s->size * 1032 + 1024 : (s->size > s->total ? s->size - s->total : 0);
  if (n <= room) return 0;
  ganc_err_set(err, GANC_EXIT_USAGE,
               "%s is truncated: its header announces %llu bytes of %s but the %s is only %llu "
               "bytes long" IDX_HINT,
               s->path, (unsigned long long)n, what, s->gz ? "gzip file" : "file",
               (unsigned long long)s->size);
  return -1;
}

// Reads exactly n data bytes or fails naming the file as truncated.
static int src_read_all(idx_src *s, void *dst, size_t n, const char *what, ganc_err *err) {
  uint64_t before = s->total;
  int64_t got = src_read(s, dst, n, err);
  if (got < 0) return -1;
  if ((size_t)got < n) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "%s is truncated: its header announces %llu bytes of %s but the %s ends after "
                 "%llu" IDX_HINT,
                 s->path, (unsigned long long)n, what, s->gz ? "gzip stream" : "file",
                 (unsigned long long)(s->total - before));
    return -1;
  }
  return 0;
}

// After the last data byte the header announced: the data must end here and, for gzip, the
// member must end with a trailer that checks and nothing may follow it.
static int src_finish(idx_src *s, ganc_err *err) {
  uint8_t extra[4096];
  uint64_t n_extra = 0;
  for (;;) {
    int64_t got = src_read(s, extra, sizeof extra, err);
    if (got < 0) return -1;
    if (got == 0) break;
    n_extra += (uint64_t)got;
  }
  if (n_extra) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "%s holds %llu byte%s of data more than its IDX header announces (the file must "
                 "be exactly the header and its images or labels)" IDX_HINT,
                 s->path, (unsigned long long)n_extra, n_extra == 1 ? "" : "s");
    return -1;
  }
  if (!s->gz) return 0;
  if (!s->z_end) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "%s is truncated: its gzip stream ends before its trailer (CRC-32 and length), so "
                 "the data cannot be checked" IDX_HINT,
                 s->path);
    return -1;
  }
  // Whatever follows the member: a second member (as `cat a.gz b.gz` makes) or other bytes.
  size_t avail = src_fill(s, err);
  if (avail == (size_t)-1) return -1;
  if (avail) {
    int member = avail >= 2 && s->z.next_in[0] == 0x1f && s->z.next_in[1] == 0x8b;
    uint64_t after = avail;
    uint8_t buf[4096];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, s->f)) > 0)
      after += k;
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "%s has %llu byte%s after the end of its gzip data (%s); an IDX file is one "
                 "gzip member and nothing else" IDX_HINT,
                 s->path, (unsigned long long)after, after == 1 ? "" : "s",
                 member ? "a second gzip member" : "trailing bytes");
    return -1;
  }
  return 0;
}

static int read_be32(idx_src *s, uint32_t *v, ganc_err *err) {
  uint8_t b[4];
  if (src_read(s, b, 4, err) != 4) return -1;
  *v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
  return 0;
}

int ganc_idx_is_images(const char *path) {
  idx_src s;
  ganc_err err = {0};
  uint32_t magic = 0;
  int ok =
      src_open(&s, path, &err) == 0 && read_be32(&s, &magic, &err) == 0 && magic == IDX_UBYTE_3D;
  src_close(&s);
  return ok;
}

static char *labels_path_for(const char *images_path) {
  const char *key = "images-idx3-ubyte";
  const char *at = strstr(images_path, key);
  if (!at) return NULL;
  size_t pre = (size_t)(at - images_path);
  const char *rest = at + strlen(key);
  char base[4096];
  snprintf(base, sizeof base, "%.*slabels-idx1-ubyte", (int)pre, images_path);
  // Prefer the same compression as the images file, then the other one.
  char cand[2][4200];
  snprintf(cand[0], sizeof cand[0], "%s%s", base, rest);
  snprintf(cand[1], sizeof cand[1], "%s%s", base, strcmp(rest, ".gz") ? ".gz" : "");
  // Anything by that name counts (a FIFO or a folder is then refused as not a regular file),
  // rather than quietly making the dataset unlabelled.
  struct stat st;
  for (int i = 0; i < 2; i++)
    if (stat(cand[i], &st) == 0) return xstrdup(cand[i]);
  return NULL;
}

// The labels file: magic, count equal to the images', n bytes, and its end.
static int load_labels(ganc_idx *out, const char *images_path, uint32_t n, ganc_err *err) {
  const char *lp = out->labels_path;
  idx_src s;
  if (src_open(&s, lp, err)) goto fail;
  uint32_t magic, ln;
  if (read_be32(&s, &magic, err) || magic != IDX_UBYTE_1D) {
    ganc_err_set(err, GANC_EXIT_USAGE, "%s is not an IDX labels file (magic 0x00000801)", lp);
    goto fail;
  }
  if (read_be32(&s, &ln, err)) {
    ganc_err_set(err, GANC_EXIT_USAGE, "%s is truncated in its header" IDX_HINT, lp);
    goto fail;
  }
  if (ln != n) {
    ganc_err_set(err, GANC_EXIT_USAGE, "%s holds %u labels but %s holds %u images", lp, ln,
                 images_path, n);
    goto fail;
  }
  if (src_can_hold(&s, n, "labels", err)) goto fail;
  uint8_t *raw = xmalloc(n);
  if (src_read_all(&s, raw, n, "labels", err) || src_finish(&s, err)) {
    free(raw);
    goto fail;
  }
  out->labels = xmalloc(sizeof(int32_t) * n);
  for (uint32_t i = 0; i < n; i++)
    out->labels[i] = raw[i];
  free(raw);
  src_close(&s);
  return 0;
fail:
  src_close(&s);
  return -1;
}

int ganc_idx_load(const char *path, ganc_idx *out, ganc_err *err) {
  memset(out, 0, sizeof *out);
  idx_src s;
  if (src_open(&s, path, err)) goto fail;
  uint32_t magic, n, h, w;
  if (read_be32(&s, &magic, err) || magic != IDX_UBYTE_3D) {
    ganc_err_set(err, GANC_EXIT_USAGE, "%s is not an IDX images file (magic 0x00000803)", path);
    goto fail;
  }
  if (read_be32(&s, &n, err) || read_be32(&s, &h, err) || read_be32(&s, &w, err)) {
    ganc_err_set(err, GANC_EXIT_USAGE, "%s is truncated in its header" IDX_HINT, path);
    goto fail;
  }
  // MNIST-like files are small; refuse absurd headers before allocating.
  if (n == 0 || h == 0 || w == 0 || n > (1u << 28) || h > 4096 || w > 4096 ||
      (uint64_t)n * h * w > (1ull << 34)) {
    ganc_err_set(err, GANC_EXIT_USAGE, "%s has an implausible IDX header (%u images of %ux%u)",
                 path, n, h, w);
    goto fail;
  }
  out->n = (int)n;
  out->h = (int)h;
  out->w = (int)w;
  size_t bytes = (size_t)n * h * w;
  if (src_can_hold(&s, bytes, "images", err)) goto fail;
  out->images = xmalloc(bytes);
  if (src_read_all(&s, out->images, bytes, "images", err) || src_finish(&s, err)) goto fail;
  src_close(&s);

  out->labels_path = labels_path_for(path);
  if (out->labels_path && load_labels(out, path, n, err)) goto fail;
  return 0;
fail:
  src_close(&s);
  ganc_idx_free(out);
  return -1;
}

void ganc_idx_free(ganc_idx *idx) {
  free(idx->images);
  free(idx->labels);
  free(idx->labels_path);
  memset(idx, 0, sizeof *idx);
}
