// idx.c — IDX reader through zlib's gz* calls, which read gzip and plain files alike.
#include "data/idx.h"

#include "core/util.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

enum { IDX_UBYTE_3D = 0x00000803, IDX_UBYTE_1D = 0x00000801 };

static int read_be32(gzFile f, uint32_t *v) {
  uint8_t b[4];
  if (gzread(f, b, 4) != 4) return -1;
  *v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
  return 0;
}

int ganc_idx_is_images(const char *path) {
  gzFile f = gzopen(path, "rb");
  if (!f) return 0;
  uint32_t magic = 0;
  int ok = read_be32(f, &magic) == 0 && magic == IDX_UBYTE_3D;
  gzclose(f);
  return ok;
}

// Reads exactly n bytes or fails naming the file as truncated.
static int read_all(gzFile f, void *dst, size_t n, const char *path, ganc_err *err) {
  uint8_t *p = dst;
  while (n > 0) {
    unsigned want = n > (1u << 30) ? (1u << 30) : (unsigned)n;
    int got = gzread(f, p, want);
    if (got <= 0) {
      int zerr;
      const char *msg = gzerror(f, &zerr);
      ganc_err_set(err, GANC_EXIT_USAGE, "%s is truncated or damaged (%s)", path,
                   zerr != Z_OK && msg && *msg ? msg : "unexpected end of data");
      return -1;
    }
    p += got;
    n -= (size_t)got;
  }
  return 0;
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
  for (int i = 0; i < 2; i++)
    if (ganc_is_file(cand[i])) return xstrdup(cand[i]);
  return NULL;
}

int ganc_idx_load(const char *path, ganc_idx *out, ganc_err *err) {
  memset(out, 0, sizeof *out);
  gzFile f = gzopen(path, "rb"), lf = NULL;
  if (!f) {
    ganc_err_set(err, GANC_EXIT_USAGE, "cannot open %s: %s", path, strerror(errno));
    return -1;
  }
  uint32_t magic, n, h, w;
  if (read_be32(f, &magic) || magic != IDX_UBYTE_3D) {
    ganc_err_set(err, GANC_EXIT_USAGE, "%s is not an IDX images file (magic 0x00000803)", path);
    goto fail;
  }
  if (read_be32(f, &n) || read_be32(f, &h) || read_be32(f, &w)) {
    ganc_err_set(err, GANC_EXIT_USAGE, "%s is truncated in its header", path);
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
  out->images = xmalloc(bytes);
  if (read_all(f, out->images, bytes, path, err)) goto fail;

  out->labels_path = labels_path_for(path);
  if (out->labels_path) {
    lf = gzopen(out->labels_path, "rb");
    uint32_t lmagic, ln;
    if (!lf || read_be32(lf, &lmagic) || lmagic != IDX_UBYTE_1D || read_be32(lf, &ln)) {
      ganc_err_set(err, GANC_EXIT_USAGE, "%s is not an IDX labels file", out->labels_path);
      goto fail;
    }
    if (ln != n) {
      ganc_err_set(err, GANC_EXIT_USAGE, "%s holds %u labels but %s holds %u images",
                   out->labels_path, ln, path, n);
      goto fail;
    }
    uint8_t *raw = xmalloc(n);
    if (read_all(lf, raw, n, out->labels_path, err)) {
      free(raw);
      goto fail;
    }
    out->labels = xmalloc(sizeof(int32_t) * n);
    for (uint32_t i = 0; i < n; i++)
      out->labels[i] = raw[i];
    free(raw);
    gzclose(lf);
  }
  gzclose(f);
  return 0;
fail:
  if (lf) gzclose(lf);
  gzclose(f);
  ganc_idx_free(out);
  return -1;
}

void ganc_idx_free(ganc_idx *idx) {
  free(idx->images);
  free(idx->labels);
  free(idx->labels_path);
  memset(idx, 0, sizeof *idx);
}
