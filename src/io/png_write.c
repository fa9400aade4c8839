// png_write.c — ganc_png_write (8-bit gray/RGB PNG with provenance text, written atomically) and
// ganc_grid (images laid out on a grid). See io/imgio.h.
//
// Atomic write: "<path>.tmp-<pid>" in the same folder, then fflush, fsync, fclose and rename over
// path; on any failure the temporary file is removed, so path is either the old file or the new
// one, never half a PNG. libpng reports errors by longjmp; everything that has to survive the jump
// lives in a png_job struct (not in locals), so no local needs to be volatile.
#include "io/imgio.h"

#include <errno.h>  // ENOSPC, EFBIG, EDQUOT
#include <png.h>    // libpng: write struct, text chunks
#include <setjmp.h> // libpng's error jump
#include <stdio.h>  // FILE, rename
#include <stdlib.h> // free
#include <string.h> // strlen, memcpy
#include <unistd.h> // fsync, getpid, unlink

#ifndef GANC_VERSION
#define GANC_VERSION "unknown"
#endif

#define GANC_SOFTWARE "ganc " GANC_VERSION
#define GANC_MACHINE_DESC                                                                          \
  "Machine-generated image: made by a trained generative model (ganc); not a photograph."

// XMP packet (ISO 16684-1) marking the image as made by a trained model, in the IPTC Digital Source
// Type vocabulary that C2PA and image search engines read. "begin" holds U+FEFF as UTF-8.
static const char XMP_PACKET[] =
    "<?xpacket begin=\"\xEF\xBB\xBF\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n"
    "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\n"
    " <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\n"
    "  <rdf:Description rdf:about=\"\"\n"
    "    xmlns:Iptc4xmpExt=\"http://iptc.org/std/Iptc4xmpExt/2008-02-29/\"\n"
    "    Iptc4xmpExt:DigitalSourceType="
    "\"http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia\"/>\n"
    " </rdf:RDF>\n"
    "</x:xmpmeta>\n"
    "<?xpacket end=\"r\"?>";

// ---- text validation ----------------------------------------------------------------------------

// PNG keyword rules (PNG spec §11.3.4.2 / libpng png_check_keyword): 1..79 bytes of printable
// Latin-1 (32..126, 161..255), no leading, trailing or consecutive spaces. Returns NULL if ok,
// else why not.
static const char *bad_keyword(const char *key) {
  if (!key) return "no key";
  size_t n = strlen(key);
  if (n < 1 || n > 79) return "a key must be 1 to 79 characters";
  for (size_t i = 0; i < n; i++) {
    unsigned ch = (unsigned char)key[i];
    if (!((ch >= 32 && ch <= 126) || ch >= 161)) return "a key must be printable Latin-1";
    if (ch == ' ' && (i == 0 || i == n - 1 || key[i + 1] == ' '))
      return "a key may not start or end with a space or hold two in a row";
  }
  return NULL;
}

// tEXt holds Latin-1; we send only printable ASCII and line feeds that way, so a UTF-8 value is
// never misread as Latin-1.
static int is_plain_ascii(const char *s) {
  for (; *s; s++) {
    unsigned ch = (unsigned char)*s;
    if (!(ch == '\n' || (ch >= 32 && ch <= 126))) return 0;
  }
  return 1;
}

// Well-formed UTF-8 (no overlongs, no surrogates, at most U+10FFFF), for iTXt.
static int is_utf8(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    unsigned c = *p;
    int extra;
    unsigned cp, min;
    if (c < 0x80) {
      p++;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return 0;
    }
    for (int i = 1; i <= extra; i++) {
      if ((p[i] & 0xC0) != 0x80) return 0; // also stops at the NUL
      cp = cp << 6 | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    p += extra + 1;
  }
  return 1;
}

// ---- the libpng part ----------------------------------------------------------------------------

typedef struct png_job {
  FILE *f;
  int w, h, c;
  const uint8_t *px;
  png_text *text;
  int ntext;
  int write_errno; // errno of a failed fwrite, so the message says "No space left on device"
  char why[256];   // libpng's message
} png_job;

static void on_png_error(png_structp png, png_const_charp msg) {
  png_job *job = png_get_error_ptr(png);
  snprintf(job->why, sizeof job->why, "%s", msg ? msg : "libpng error");
  png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg) { // quiet: no printing
  (void)png;
  (void)msg;
}

static void on_png_write(png_structp png, png_bytep data, size_t n) {
  png_job *job = png_get_io_ptr(png);
  if (fwrite(data, 1, n, job->f) != n) {
    job->write_errno = errno ? errno : EIO;
    png_error(png, "write failed");
  }
}

static void on_png_flush(png_structp png) { (void)png; } // we flush once, at the end

// Encodes job->px into job->f. 0, or -1 with job->why / job->write_errno set.
static int encode(png_job *job) {
  png_structp png =
      png_create_write_struct(PNG_LIBPNG_VER_STRING, job, on_png_error, on_png_warning);
  if (!png) {
    snprintf(job->why, sizeof job->why, "libpng could not start (out of memory?)");
    return -1;
  }
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_write_struct(&png, NULL);
    snprintf(job->why, sizeof job->why, "libpng could not start (out of memory?)");
    return -1;
  }
  // png and info are not modified after setjmp, so they keep their values after the jump.
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return -1;
  }
  png_set_write_fn(png, job, on_png_write, on_png_flush);
  png_set_IHDR(png, info, (png_uint_32)job->w, (png_uint_32)job->h, 8,
               job->c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_set_text(png, info, job->text, job->ntext); // written before IDAT
  png_write_info(png, info);
  size_t stride = (size_t)job->w * (size_t)job->c;
  for (int y = 0; y < job->h; y++)
    png_write_row(png, job->px + (size_t)y * stride);
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return 0;
}

// ---- ganc_png_write -----------------------------------------------------------------------------

// Fills text[] (room for 3 + nkv). Returns the count, or -1 with err set.
static int build_text(const ganc_png_meta *meta, png_text *text, const char *path, ganc_err *err) {
  int n = 0;
  memset(text, 0, sizeof(png_text) * (size_t)(3 + (meta ? meta->nkv : 0)));
  text[n].compression = PNG_TEXT_COMPRESSION_NONE;
  text[n].key = "Software";
  text[n++].text = GANC_SOFTWARE;
  if (!meta) return n;
  if (meta->machine_generated) {
    text[n].compression = PNG_TEXT_COMPRESSION_NONE;
    text[n].key = "Description";
    text[n++].text = GANC_MACHINE_DESC;
    text[n].compression = PNG_ITXT_COMPRESSION_NONE;
    text[n].key = "XML:com.adobe.xmp";
    text[n].lang = "";
    text[n].lang_key = "";
    text[n++].text = (char *)XMP_PACKET;
  }
  for (int i = 0; i < meta->nkv; i++) {
    const ganc_png_kv *kv = &meta->kv[i];
    const char *why = bad_keyword(kv->key);
    if (!why && !kv->value) why = "no value";
    if (!why && !is_plain_ascii(kv->value) && !is_utf8(kv->value)) why = "value is not UTF-8";
    if (why) {
      ganc_err_set(err, GANC_EXIT_USAGE, "cannot write %s: text entry %d (key \"%s\"): %s", path, i,
                   kv->key ? kv->key : "(null)", why);
      return -1;
    }
    if (is_plain_ascii(kv->value)) {
      text[n].compression = PNG_TEXT_COMPRESSION_NONE;
    } else { // UTF-8 beyond ASCII: iTXt, uncompressed, no language
      text[n].compression = PNG_ITXT_COMPRESSION_NONE;
      text[n].lang = "";
      text[n].lang_key = "";
    }
    text[n].key = (char *)kv->key;
    text[n++].text = (char *)kv->value;
  }
  return n;
}

// The next step for a write that failed for want of room: a full disk, a quota, a file size limit.
static const char *room_hint(int e) {
  return e == ENOSPC || e == EFBIG || e == EDQUOT
             ? "\n---> HINT: free disk space (or raise the quota or file size limit) and run again"
             : "";
}

int ganc_png_write(const char *path, int w, int h, int c, const uint8_t *px,
                   const ganc_png_meta *meta, ganc_err *err) {
  if (w <= 0 || h <= 0 || (c != 1 && c != 3) || !px || (meta && meta->nkv > 0 && !meta->kv) ||
      (meta && meta->nkv < 0)) {
    ganc_err_set(err, GANC_EXIT_USAGE, "cannot write %s: bad image (%d x %d, %d channels)", path, w,
                 h, c);
    return -1;
  }
  if (w > 1000000 || h > 1000000) { // libpng's default user limit
    ganc_err_set(err, GANC_EXIT_USAGE, "cannot write %s: %d x %d is larger than PNG writers allow",
                 path, w, h);
    return -1;
  }
  png_text *text = xmalloc(sizeof(png_text) * (size_t)(3 + (meta ? meta->nkv : 0)));
  png_job job = {.w = w, .h = h, .c = c, .px = px, .text = text};
  job.ntext = build_text(meta, text, path, err);
  if (job.ntext < 0) {
    free(text);
    return -1;
  }

  size_t tn = strlen(path) + 32;
  char *tmp = xmalloc(tn);
  snprintf(tmp, tn, "%s.tmp-%ld", path, (long)getpid());
  int rc = -1;
  job.f = fopen(tmp, "wb");
  if (!job.f) {
    ganc_err_set(err, GANC_EXIT_RUNTIME, "cannot write %s: %s", path, strerror(errno));
    goto done; // nothing was created
  }
  if (encode(&job) != 0) {
    if (job.write_errno)
      ganc_err_set(err, GANC_EXIT_RUNTIME, "cannot write %s: %s%s", path, strerror(job.write_errno),
                   room_hint(job.write_errno));
    else
      ganc_err_set(err, GANC_EXIT_RUNTIME, "cannot write %s: libpng: %s", path, job.why);
    fclose(job.f);
    goto fail;
  }
  // Data on disk before the rename makes it visible (else a crash could leave an empty PNG).
  if (fflush(job.f) != 0 || fsync(fileno(job.f)) != 0) {
    ganc_err_set(err, GANC_EXIT_RUNTIME, "cannot write %s: %s%s", path, strerror(errno),
                 room_hint(errno));
    fclose(job.f);
    goto fail;
  }
  if (fclose(job.f) != 0) {
    ganc_err_set(err, GANC_EXIT_RUNTIME, "cannot write %s: %s%s", path, strerror(errno),
                 room_hint(errno));
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
  unlink(tmp);
done:
  free(tmp);
  free(text);
  return rc;
}

// ---- ganc_grid ----------------------------------------------------------------------------------

void ganc_grid(const uint8_t *imgs, int n, int h, int w, int c, int rows, int cols, uint8_t *out) {
  size_t row_bytes = (size_t)w * (size_t)c;              // one image row
  size_t out_stride = (size_t)cols * row_bytes;          // one grid row of pixels
  size_t img_bytes = (size_t)h * row_bytes;              // one image
  memset(out, 0, (size_t)rows * (size_t)h * out_stride); // empty cells are black
  for (int k = 0; k < n && k < rows * cols; k++) {
    int gy = k / cols, gx = k % cols;
    const uint8_t *src = imgs + (size_t)k * img_bytes;
    uint8_t *dst = out + (size_t)gy * h * out_stride + (size_t)gx * row_bytes;
    for (int y = 0; y < h; y++)
      memcpy(dst + (size_t)y * out_stride, src + (size_t)y * row_bytes, row_bytes);
  }
}
