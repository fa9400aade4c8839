// gif_write.c — ganc_gif_write: an animated, forever-looping GIF of gray or RGB frames, written
// atomically like the PNGs (see io/imgio.h).
//
// Palette. Gray: the 256 gray levels, index = value, so gray frames are exact. RGB: one global
// palette for all frames —
//   - if all frames together hold at most 256 distinct colours, exactly those (lossless);
//   - else median cut over a histogram of every pixel quantised to 5 bits per channel (32768
//     bins): the box with the largest squared error is split along its longest 5-bit range at its
//     pixel-weighted median, until 256 boxes (or every box is one bin); a box's colour is the mean
//     of the pixels in it. Each pixel goes to the palette colour nearest (squared RGB distance) to
//     its bin's mean colour, looked up once per bin. No dithering: dithered frames shimmer.
//
// Output goes through giflib's EGifOpen with our own write callback (rather than
// EGifOpenFileName) so that a failed write reports errno ("No space left on device"), the file can
// be fsync'd before it is closed, and the file mode is the PNGs' (0666 & ~umask, not giflib's
// 0600). EGifCloseFile ignores a failed write of the trailer; the callback records it.
#include "io/imgio.h"

#include <gif_lib.h> // giflib 5: EGif*, GifErrorString
#include <stdio.h>   // FILE, rename
#include <stdlib.h>  // free
#include <string.h>  // memcpy, strlen
#include <unistd.h>  // fsync, getpid, unlink

// The same statement as the PNGs' "Description" (png_write.c).
#define GANC_MACHINE_DESC                                                                          \
  "Machine-generated image: made by a trained generative model (ganc); not a photograph."

typedef struct gif_palette {
  GifColorType col[256];
  int n;
} gif_palette;

// ---- exact palette (at most 256 distinct colours) -----------------------------------------------

enum { EXACT_SLOTS = 1024 }; // open addressing, at most 257 keys: load <= 1/4

typedef struct exact_set {
  uint32_t key[EXACT_SLOTS]; // rgb + 1; 0 = empty
  uint8_t idx[EXACT_SLOTS];
  int n;
} exact_set;

static inline uint32_t rgb_key(const uint8_t *p) {
  return ((uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2]) + 1;
}

static inline size_t exact_slot(const exact_set *s, uint32_t key) {
  size_t i = (key * 2654435761u) >> 22; // top 10 bits of a multiplicative hash
  while (s->key[i] && s->key[i] != key)
    i = (i + 1) & (EXACT_SLOTS - 1);
  return i;
}

// Collects the distinct colours of npx RGB pixels; 0, or -1 as soon as there are more than 256.
static int exact_collect(const uint8_t *px, size_t npx, exact_set *s, gif_palette *pal) {
  memset(s, 0, sizeof *s);
  for (size_t i = 0; i < npx; i++) {
    const uint8_t *p = px + 3 * i;
    uint32_t key = rgb_key(p);
    size_t slot = exact_slot(s, key);
    if (s->key[slot]) continue;
    if (s->n == 256) return -1;
    s->key[slot] = key;
    s->idx[slot] = (uint8_t)s->n;
    pal->col[s->n] = (GifColorType){p[0], p[1], p[2]};
    s->n++;
  }
  pal->n = s->n;
  return 0;
}

// ---- median cut ---------------------------------------------------------------------------------

enum { NBINS = 1 << 15 };

static inline int bin_of(const uint8_t *p) {
  return (p[0] >> 3) << 10 | (p[1] >> 3) << 5 | p[2] >> 3;
}
static inline int bin_axis(int b, int axis) { return (b >> (10 - 5 * axis)) & 31; }

typedef struct mc_hist {
  uint64_t count[NBINS];
  uint64_t sum[NBINS][3]; // sums of the full 8-bit values of the pixels in each bin
} mc_hist;

typedef struct mc_box {
  int start, len; // a range of the nonempty-bin list
  uint64_t count;
  double sse; // pixel-weighted squared distance of the bins' means from the box mean
  int axis;   // the longest 5-bit range
} mc_box;

static void bin_mean(const mc_hist *hist, int b, double m[3]) {
  for (int k = 0; k < 3; k++)
    m[k] = (double)hist->sum[b][k] / (double)hist->count[b];
}

// Fills in a box's count, error and longest axis from its bins.
static void box_measure(const mc_hist *hist, const int *bins, mc_box *box) {
  int lo[3] = {31, 31, 31}, hi[3] = {0, 0, 0};
  double s[3] = {0, 0, 0};
  box->count = 0;
  for (int i = box->start; i < box->start + box->len; i++) {
    int b = bins[i];
    box->count += hist->count[b];
    for (int k = 0; k < 3; k++) {
      int v = bin_axis(b, k);
      lo[k] = v < lo[k] ? v : lo[k];
      hi[k] = v > hi[k] ? v : hi[k];
      s[k] += (double)hist->sum[b][k];
    }
  }
  double mean[3];
  for (int k = 0; k < 3; k++)
    mean[k] = s[k] / (double)box->count;
  box->sse = 0;
  for (int i = box->start; i < box->start + box->len; i++) {
    double m[3];
    bin_mean(hist, bins[i], m);
    double d2 = 0;
    for (int k = 0; k < 3; k++)
      d2 += (m[k] - mean[k]) * (m[k] - mean[k]);
    box->sse += d2 * (double)hist->count[bins[i]];
  }
  box->axis = 0;
  for (int k = 1; k < 3; k++)
    if (hi[k] - lo[k] > hi[box->axis] - lo[box->axis]) box->axis = k;
}

// Splits box (len >= 2) into box and *right at the weighted median of its longest axis.
static void box_split(const mc_hist *hist, int *bins, int *scratch, mc_box *box, mc_box *right) {
  int axis = box->axis, n = box->len;
  int *b = bins + box->start;
  // Stable counting sort of the box's bins by their 5-bit coordinate on axis.
  int first[33] = {0};
  for (int i = 0; i < n; i++)
    first[bin_axis(b[i], axis) + 1]++;
  for (int v = 0; v < 32; v++)
    first[v + 1] += first[v];
  for (int i = 0; i < n; i++)
    scratch[first[bin_axis(b[i], axis)]++] = b[i];
  memcpy(b, scratch, sizeof(int) * (size_t)n);
  // Left part: the bins up to and including the one where half of the pixels are reached.
  uint64_t half = (box->count + 1) / 2, cum = 0;
  int left = 0;
  while (left < n - 1) {
    cum += hist->count[b[left++]];
    if (cum >= half) break;
  }
  *right = (mc_box){.start = box->start + left, .len = n - left};
  box->len = left;
  box_measure(hist, bins, box);
  box_measure(hist, bins, right);
}

// Builds the median-cut palette and the per-bin palette index (cache[bin], for nonempty bins).
static void median_cut(const uint8_t *px, size_t npx, gif_palette *pal, uint8_t *cache) {
  mc_hist *hist = xcalloc(1, sizeof *hist);
  for (size_t i = 0; i < npx; i++) {
    const uint8_t *p = px + 3 * i;
    int b = bin_of(p);
    hist->count[b]++;
    for (int k = 0; k < 3; k++)
      hist->sum[b][k] += p[k];
  }
  int *bins = xmalloc(sizeof(int) * NBINS), *scratch = xmalloc(sizeof(int) * NBINS), nb = 0;
  for (int b = 0; b < NBINS; b++)
    if (hist->count[b]) bins[nb++] = b;

  mc_box box[256];
  int nbox = 1;
  box[0] = (mc_box){.start = 0, .len = nb};
  box_measure(hist, bins, &box[0]);
  while (nbox < 256) {
    int pick = -1;
    for (int i = 0; i < nbox; i++)
      if (box[i].len >= 2 && (pick < 0 || box[i].sse > box[pick].sse)) pick = i;
    if (pick < 0) break; // every box is a single bin
    box_split(hist, bins, scratch, &box[pick], &box[nbox]);
    nbox++;
  }

  for (int i = 0; i < nbox; i++) {
    uint64_t s[3] = {0, 0, 0};
    for (int j = box[i].start; j < box[i].start + box[i].len; j++)
      for (int k = 0; k < 3; k++)
        s[k] += hist->sum[bins[j]][k];
    uint64_t n = box[i].count;
    pal->col[i] =
        (GifColorType){(GifByteType)((s[0] + n / 2) / n), (GifByteType)((s[1] + n / 2) / n),
                       (GifByteType)((s[2] + n / 2) / n)};
  }
  pal->n = nbox;

  // Each bin's mean colour to its nearest palette colour (usually, not always, its own box's).
  for (int j = 0; j < nb; j++) {
    double m[3];
    bin_mean(hist, bins[j], m);
    int best = 0;
    double best_d = 1e30;
    for (int i = 0; i < nbox; i++) {
      double dr = m[0] - pal->col[i].Red, dg = m[1] - pal->col[i].Green,
             db = m[2] - pal->col[i].Blue, d = dr * dr + dg * dg + db * db;
      if (d < best_d) best_d = d, best = i;
    }
    cache[bins[j]] = (uint8_t)best;
  }
  free(bins);
  free(scratch);
  free(hist);
}

// ---- writing ------------------------------------------------------------------------------------

typedef struct gif_sink {
  FILE *f;
  int write_errno; // first failed fwrite's errno
} gif_sink;

static int on_gif_write(GifFileType *gif, const GifByteType *buf, int n) {
  gif_sink *s = gif->UserData;
  if (s->write_errno) return 0;
  size_t got = fwrite(buf, 1, (size_t)n, s->f);
  if (got != (size_t)n) s->write_errno = errno ? errno : EIO;
  return (int)got;
}

// Records why a giflib call failed: the write's errno if there was one, else giflib's words.
static void gif_fail(ganc_err *err, const char *path, const gif_sink *s, int code,
                     const char *what) {
  if (s->write_errno)
    ganc_err_set(err, GANC_EXIT_RUNTIME, "cannot write %s: %s", path, strerror(s->write_errno));
  else {
    const char *why = GifErrorString(code);
    ganc_err_set(err, GANC_EXIT_RUNTIME, "cannot write %s: %s: %s", path, what,
                 why ? why : "giflib error");
  }
}

// A GIF extension of any length, cut into the format's sub-blocks of at most 255 bytes.
static int put_extension(GifFileType *gif, int code, const void *data, size_t n) {
  if (EGifPutExtensionLeader(gif, code) == GIF_ERROR) return GIF_ERROR;
  const uint8_t *p = data;
  while (n > 0) {
    int len = n > 255 ? 255 : (int)n;
    if (EGifPutExtensionBlock(gif, len, p) == GIF_ERROR) return GIF_ERROR;
    p += len;
    n -= (size_t)len;
  }
  return EGifPutExtensionTrailer(gif);
}

#define GIF_TRY(call, what)                                                                        \
  do {                                                                                             \
    if ((call) == GIF_ERROR) {                                                                     \
      gif_fail(err, path, &sink, gif->Error, what);                                                \
      goto fail;                                                                                   \
    }                                                                                              \
  } while (0)

int ganc_gif_write(const char *path, int F, int w, int h, int c, const uint8_t *frames,
                   int delay_cs, const char *comment, ganc_err *err) {
  if (F <= 0 || w <= 0 || h <= 0 || w > 65535 || h > 65535 || (c != 1 && c != 3) || !frames ||
      delay_cs < 0 || delay_cs > 65535) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "cannot write %s: bad animation (%d frames of %d x %d, %d channels, delay %d)",
                 path, F, w, h, c, delay_cs);
    return -1;
  }
  size_t frame_px = (size_t)w * (size_t)h, npx = (size_t)F * frame_px;

  // Palette and, for RGB, the way from a pixel to its index.
  gif_palette pal;
  exact_set *exact = NULL;
  uint8_t *cache = NULL; // median cut: palette index per 5-bit bin
  if (c == 1) {
    for (int v = 0; v < 256; v++)
      pal.col[v] = (GifColorType){(GifByteType)v, (GifByteType)v, (GifByteType)v};
    pal.n = 256;
  } else {
    exact = xmalloc(sizeof *exact);
    if (exact_collect(frames, npx, exact, &pal) != 0) {
      free(exact);
      exact = NULL;
      cache = xmalloc(NBINS);
      median_cut(frames, npx, &pal, cache);
    }
  }
  int ncol = 2; // a GIF colour table has 2^k entries, 2 <= 2^k <= 256
  while (ncol < pal.n)
    ncol *= 2;
  for (int i = pal.n; i < ncol; i++)
    pal.col[i] = (GifColorType){0, 0, 0};

  // Statement + caller's comment, as the comment extension.
  size_t clen = strlen(GANC_MACHINE_DESC) + (comment ? strlen(comment) + 1 : 0) + 1;
  char *text = xmalloc(clen);
  snprintf(text, clen, "%s%s%s", GANC_MACHINE_DESC, comment ? "\n" : "", comment ? comment : "");

  size_t tn = strlen(path) + 32;
  char *tmp = xmalloc(tn);
  snprintf(tmp, tn, "%s.tmp-%ld", path, (long)getpid());
  GifPixelType *idx = xmalloc(frame_px); // one frame of palette indices
  ColorMapObject *map = NULL;
  GifFileType *gif = NULL;
  gif_sink sink = {0};
  int rc = -1, code = 0;

  sink.f = fopen(tmp, "wb");
  if (!sink.f) {
    ganc_err_set(err, GANC_EXIT_RUNTIME, "cannot write %s: %s", path, strerror(errno));
    goto done; // nothing was created
  }
  gif = EGifOpen(&sink, on_gif_write, &code);
  if (!gif) {
    gif_fail(err, path, &sink, code, "EGifOpen");
    goto fail;
  }
  map = GifMakeMapObject(ncol, pal.col);
  if (!map) {
    ganc_err_set(err, GANC_EXIT_RUNTIME, "cannot write %s: GifMakeMapObject: out of memory", path);
    goto fail;
  }
  EGifSetGifVersion(gif, true); // extensions need GIF89a; the streaming API would write GIF87a
  GIF_TRY(EGifPutScreenDesc(gif, w, h, 8, 0, map), "EGifPutScreenDesc");

  // Loop forever: NETSCAPE2.0 application extension, sub-block {1, loop count 0 (little-endian)}.
  static const uint8_t loop[3] = {1, 0, 0};
  GIF_TRY(EGifPutExtensionLeader(gif, APPLICATION_EXT_FUNC_CODE), "EGifPutExtensionLeader");
  GIF_TRY(EGifPutExtensionBlock(gif, 11, "NETSCAPE2.0"), "EGifPutExtensionBlock");
  GIF_TRY(EGifPutExtensionBlock(gif, 3, loop), "EGifPutExtensionBlock");
  GIF_TRY(EGifPutExtensionTrailer(gif), "EGifPutExtensionTrailer");
  GIF_TRY(put_extension(gif, COMMENT_EXT_FUNC_CODE, text, strlen(text)), "comment extension");

  GraphicsControlBlock gcb = {.DisposalMode = DISPOSE_DO_NOT,
                              .UserInputFlag = false,
                              .DelayTime = delay_cs,
                              .TransparentColor = NO_TRANSPARENT_COLOR};
  GifByteType gce[4];
  size_t gce_len = EGifGCBToExtension(&gcb, gce);
  for (int f = 0; f < F; f++) {
    const uint8_t *fr = frames + (size_t)f * frame_px * (size_t)c;
    if (c == 1) {
      memcpy(idx, fr, frame_px); // EGifPutLine masks its input in place, so never pass ours
    } else if (exact) {
      for (size_t i = 0; i < frame_px; i++)
        idx[i] = exact->idx[exact_slot(exact, rgb_key(fr + 3 * i))];
    } else {
      for (size_t i = 0; i < frame_px; i++)
        idx[i] = cache[bin_of(fr + 3 * i)];
    }
    GIF_TRY(EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, (int)gce_len, gce), "EGifPutExtension");
    GIF_TRY(EGifPutImageDesc(gif, 0, 0, w, h, false, NULL), "EGifPutImageDesc");
    for (int y = 0; y < h; y++)
      GIF_TRY(EGifPutLine(gif, idx + (size_t)y * w, w), "EGifPutLine");
  }
  int close_rc = EGifCloseFile(gif, &code); // frees gif whatever happens
  gif = NULL;
  if (close_rc == GIF_ERROR || sink.write_errno) {
    gif_fail(err, path, &sink, code, "EGifCloseFile");
    goto fail;
  }
  if (fflush(sink.f) != 0 || fsync(fileno(sink.f)) != 0) {
    ganc_err_set(err, GANC_EXIT_RUNTIME, "cannot write %s: %s", path, strerror(errno));
    goto fail;
  }
  FILE *f = sink.f;
  sink.f = NULL;
  if (fclose(f) != 0) {
    ganc_err_set(err, GANC_EXIT_RUNTIME, "cannot write %s: %s", path, strerror(errno));
    goto fail;
  }
  if (rename(tmp, path) != 0) {
    ganc_err_set(err, GANC_EXIT_RUNTIME, "cannot write %s: renaming %s over it: %s", path, tmp,
                 strerror(errno));
    goto fail;
  }
  rc = 0;
  goto done;
fail:
  if (gif) EGifCloseFile(gif, NULL);
  if (sink.f) fclose(sink.f);
  unlink(tmp);
done:
  if (map) GifFreeMapObject(map);
  free(idx);
  free(tmp);
  free(text);
  free(exact);
  free(cache);
  return rc;
}
