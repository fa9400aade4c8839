// image.c — PNG (libpng) and JPEG (libjpeg) decoding from memory, and fitting to an R×R square.
//
// Both libraries report a fatal error by calling back into us, and we leave them with longjmp. So
// that nothing depends on a local variable that setjmp/longjmp may have clobbered, each decoder
// keeps its state (library handles, buffers, messages) in a job struct owned by the caller of the
// function that calls setjmp; that caller frees whatever the job holds, success or not.
//
// Strictness: a file that ends early or whose compressed data is damaged is an error, never an
// image with grey or black rows. PNG: any libpng error, including one from png_read_end (so a
// file cut after its last IDAT but before IEND is refused too). JPEG: any libjpeg error, and any
// warning except the few that leave every pixel intact (see jpeg_warning_is_harmless).
#include "data/image.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h> // before jpeglib.h, which uses FILE
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h> // libjpeg API (libjpeg-turbo): decompressor, error manager, jpeg_mem_src
#include <png.h>     // libpng: reader, transforms, png_jmpbuf

#include <jerror.h> // after jpeglib.h: J_MESSAGE_CODE (which warning libjpeg raised), ERREXIT

#include <setjmp.h>           // after png.h, which wants to include it first
#include <stb_image_resize.h> // stbir_resize; the implementation is in libstb.so, not compiled here

// ---- helpers ------------------------------------------------------------------------------------

static void set_why(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_why(char *why, size_t why_len, const char *fmt, ...) {
  if (!why || why_len == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, why_len, fmt, ap);
  va_end(ap);
}

// Size of a [h, w, c] 8-bit buffer, or 0 when it would not fit in a size_t.
static size_t pixel_bytes(int w, int h, int c) {
  if (w <= 0 || h <= 0 || c <= 0) return 0;
  if ((size_t)w > SIZE_MAX / (size_t)h / (size_t)c) return 0;
  return (size_t)w * (size_t)h * (size_t)c;
}

// The limits of ganc_decode_opts, applied to the size stored in the file (before any DCT
// reduction), and before any pixel memory is allocated.
static int check_limits(int w, int h, const ganc_decode_opts *opts, char *why, size_t why_len) {
  if (w <= 0 || h <= 0) {
    set_why(why, why_len, "image has no pixels (%dx%d)", w, h);
    return -1;
  }
  if (!opts) return 0;
  uint64_t n = (uint64_t)w * (uint64_t)h;
  if (opts->max_pixels && n > opts->max_pixels) {
    set_why(why, why_len, "image too large: %dx%d = %llu pixels, over the limit of %llu", w, h,
            (unsigned long long)n, (unsigned long long)opts->max_pixels);
    return -1;
  }
  int shorter = w < h ? w : h;
  if (opts->min_side > 0 && shorter < opts->min_side) {
    set_why(why, why_len, "image too small: %dx%d, shorter side below %d", w, h, opts->min_side);
    return -1;
  }
  return 0;
}

ganc_img_format ganc_image_sniff(const uint8_t *buf, size_t n) {
  static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (!buf) return GANC_IMG_UNKNOWN;
  if (n >= sizeof png_sig && memcmp(buf, png_sig, sizeof png_sig) == 0) return GANC_IMG_PNG;
  // SOI (FF D8) followed by the first marker's FF.
  if (n >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF) return GANC_IMG_JPEG;
  return GANC_IMG_UNKNOWN;
}

const char *ganc_img_format_name(ganc_img_format f) {
  switch (f) {
  case GANC_IMG_PNG:
    return "PNG";
  case GANC_IMG_JPEG:
    return "JPEG";
  default:
    return "unknown";
  }
}

void ganc_image_free(ganc_image *img) {
  if (!img) return;
  free(img->px);
  img->px = NULL;
  img->w = img->h = img->c = 0;
}

// ---- PNG ----------------------------------------------------------------------------------------

typedef struct png_job {
  const uint8_t *buf; // the whole file [n], read through png_on_read
  size_t n, pos;
  int truncated;     // png_on_read ran out of bytes
  char msg[200];     // libpng's reason for the last error
  png_structp png;   // NULL until created
  png_infop info;    //
  uint8_t *px;       // [h, w, c] pixels, until handed to the caller
  png_bytep *rows;   // [h] pointers into px
  int w, h, c, gray; // results
} png_job;

static void png_on_error(png_structp png, png_const_charp msg) {
  png_job *j = (png_job *)png_get_error_ptr(png);
  snprintf(j->msg, sizeof j->msg, "%s", msg ? msg : "unknown libpng error");
  png_longjmp(png, 1);
}

// Warnings, and the "benign errors" libpng demotes to warnings when reading, concern ancillary
// chunks (bad CRC, bad text, colour-space tags) or oddities such as data after the last row; none
// leaves a row undecoded, so they are dropped rather than printed.
static void png_on_warning(png_structp png, png_const_charp msg) {
  (void)png;
  (void)msg;
}

static void png_on_read(png_structp png, png_bytep dst, size_t len) {
  png_job *j = (png_job *)png_get_io_ptr(png);
  if (len > j->n - j->pos) {
    j->truncated = 1;
    png_error(png, "file ends early");
  }
  memcpy(dst, j->buf + j->pos, len);
  j->pos += len;
}

// Reads the header (header_only) or the whole image into j. Runs under libpng's setjmp: after a
// longjmp, it returns -1 at once and reads nothing but j. `why` is set only for our own refusals
// (limits, memory); libpng's failures leave their reason in j->msg.
static int png_run(png_job *j, int header_only, const ganc_decode_opts *opts, char *why,
                   size_t why_len) {
  j->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, j, png_on_error, png_on_warning);
  if (j->png) j->info = png_create_info_struct(j->png);
  if (!j->png || !j->info) {
    set_why(why, why_len, "out of memory creating the PNG reader");
    return -1;
  }
  if (setjmp(png_jmpbuf(j->png))) return -1;

  png_set_read_fn(j->png, j, png_on_read);
  png_read_info(j->png, j->info);
  png_uint_32 w = 0, h = 0;
  int depth = 0, ctype = 0;
  png_get_IHDR(j->png, j->info, &w, &h, &depth, &ctype, NULL, NULL, NULL);
  if (w > INT_MAX || h > INT_MAX) png_error(j->png, "image dimensions out of range");
  j->w = (int)w;
  j->h = (int)h;
  int has_trns = png_get_valid(j->png, j->info, PNG_INFO_tRNS) != 0;

  if (!(ctype & PNG_COLOR_MASK_COLOR)) {
    j->gray = 1;
  } else if (ctype == PNG_COLOR_TYPE_PALETTE) {
    png_colorp pal = NULL;
    int npal = 0;
    j->gray = 1;
    if (png_get_PLTE(j->png, j->info, &pal, &npal) & PNG_INFO_PLTE)
      for (int i = 0; i < npal; i++)
        if (pal[i].red != pal[i].green || pal[i].green != pal[i].blue) j->gray = 0;
  }
  if (header_only) return 0;

  // The channels we promise, from the colour type alone; a tRNS chunk adds an alpha channel.
  switch (ctype) {
  case PNG_COLOR_TYPE_GRAY:
    j->c = 1 + has_trns;
    break;
  case PNG_COLOR_TYPE_GRAY_ALPHA:
    j->c = 2;
    break;
  case PNG_COLOR_TYPE_PALETTE:
  case PNG_COLOR_TYPE_RGB:
    j->c = 3 + has_trns;
    break;
  case PNG_COLOR_TYPE_RGB_ALPHA:
    j->c = 4;
    break;
  default:
    png_error(j->png, "unknown colour type");
  }
  if (check_limits(j->w, j->h, opts, why, why_len)) return -1;
  size_t nbytes = pixel_bytes(j->w, j->h, j->c);
  if (nbytes == 0 || (size_t)j->h > SIZE_MAX / sizeof(png_bytep)) {
    set_why(why, why_len, "image too large: %dx%d does not fit in memory", j->w, j->h);
    return -1;
  }

  // png_set_expand: palette → RGB, 1/2/4-bit gray → 8-bit (scaled, so 1-bit 1 → 255), tRNS →
  // alpha. png_set_scale_16: 16 → 8 bits rounded to nearest, v8 = round(v16 · 255 / 65535)
  // (png_set_strip_16 would truncate, v16 >> 8).
  png_set_expand(j->png);
  if (depth == 16) png_set_scale_16(j->png);
  png_set_interlace_handling(j->png);
  png_read_update_info(j->png, j->info);
  if (png_get_channels(j->png, j->info) != j->c || png_get_bit_depth(j->png, j->info) != 8 ||
      png_get_rowbytes(j->png, j->info) != (size_t)j->w * (size_t)j->c)
    png_error(j->png, "unexpected row layout after transforms");

  j->px = malloc(nbytes);
  j->rows = malloc((size_t)j->h * sizeof(png_bytep));
  if (!j->px || !j->rows) {
    set_why(why, why_len, "out of memory for a %dx%d image", j->w, j->h);
    return -1;
  }
  for (int y = 0; y < j->h; y++)
    j->rows[y] = j->px + (size_t)y * j->w * j->c;
  png_read_image(j->png, j->rows);
  png_read_end(j->png, NULL); // reads to IEND: checks the last CRCs, refuses a cut-off tail
  return 0;
}

static int png_job_finish(png_job *j, int rc, char *why, size_t why_len) {
  if (rc != 0 && j->msg[0]) {
    if (j->truncated)
      set_why(why, why_len, "truncated PNG data (the file ends early)");
    else
      set_why(why, why_len, "truncated or corrupt PNG data: %s", j->msg);
  }
  if (j->png) png_destroy_read_struct(&j->png, j->info ? &j->info : NULL, NULL);
  free(j->rows);
  free(j->px); // NULL when handed over
  return rc;
}

// ---- JPEG ---------------------------------------------------------------------------------------

typedef struct jpeg_err {
  struct jpeg_error_mgr pub; // first, so libjpeg's cinfo->err is also a jpeg_err *
  jmp_buf jb;
  char msg[JMSG_LENGTH_MAX]; // libjpeg's reason for the error or the damaging warning
  int corrupt;               // a warning said the pixel data is damaged or missing
} jpeg_err;

typedef struct jpeg_job {
  struct jpeg_decompress_struct cinfo; // zeroed, so destroying it is safe at any point
  jpeg_err err;
  uint8_t *px;  // [h, w, c] output, until handed to the caller
  uint8_t *row; // [w, 4] one CMYK scanline
} jpeg_job;

static void jpeg_on_error(j_common_ptr cinfo) {
  jpeg_err *e = (jpeg_err *)cinfo->err;
  (*cinfo->err->format_message)(cinfo, e->msg);
  longjmp(e->jb, 1);
}

static void jpeg_on_output(j_common_ptr cinfo) { (void)cinfo; } // never print

// Warnings that leave every decoded pixel as the encoder meant it: bytes skipped between
// segments (common in camera files and datasets, e.g. "extraneous bytes before marker 0xd9"), an
// unknown JFIF version number, an ICC profile we do not use anyway. Every other warning (premature
// end of file, premature end of a data segment, bad Huffman/arithmetic code, lost restart
// marker, bad progression, unknown Adobe transform) means missing or guessed pixels.
static int jpeg_warning_is_harmless(int code) {
  return code == JWRN_EXTRANEOUS_DATA || code == JWRN_JFIF_MAJOR || code == JWRN_BOGUS_ICC;
}

// msg_level -1 is a warning; 0.. are trace messages, which we drop. A damaging warning stops the
// decode at once (libjpeg allows leaving through longjmp wherever it may warn), so a truncated
// file costs no more work and returns no half-grey image.
static void jpeg_on_message(j_common_ptr cinfo, int msg_level) {
  jpeg_err *e = (jpeg_err *)cinfo->err;
  if (msg_level >= 0) return;
  e->pub.num_warnings++;
  if (jpeg_warning_is_harmless(e->pub.msg_code)) return;
  e->corrupt = 1;
  (*cinfo->err->format_message)(cinfo, e->msg);
  longjmp(e->jb, 1);
}

// The largest DCT reduction 1/d, d in {8, 4, 2, 1}, that keeps the shorter side >= rs and the
// longer side >= rl (libjpeg's reduced size is ceil(side / d)).
static int jpeg_pick_denom(int w, int h, int rs, int rl) {
  if (rs <= 0 && rl <= 0) return 1;
  int s = w < h ? w : h, l = w < h ? h : w;
  for (int d = 8; d > 1; d /= 2)
    if ((s + d - 1) / d >= rs && (l + d - 1) / d >= rl) return d;
  return 1;
}

// CMYK → RGB, naive (no colour profile): a fraction C/255 of cyan ink removes that fraction of
// red, and black removes from all three, so R = 255 (1 − C/255)(1 − K/255), likewise G with M
// and B with Y. Adobe (Photoshop) stores every sample inverted, s = 255 − ink, and libjpeg passes
// the stored values through; so with an Adobe marker R = s_C · s_K / 255, without one
// R = (255 − C)(255 − K) / 255. Rounded to nearest: (p + 127) / 255 for p in 0..255².
static void cmyk_to_rgb(const uint8_t *cmyk, uint8_t *rgb, int w, int adobe_inverted) {
  for (int x = 0; x < w; x++, cmyk += 4, rgb += 3) {
    unsigned k = adobe_inverted ? cmyk[3] : 255u - cmyk[3];
    for (int i = 0; i < 3; i++) {
      unsigned v = adobe_inverted ? cmyk[i] : 255u - cmyk[i];
      rgb[i] = (uint8_t)((v * k + 127) / 255);
    }
  }
}

// Reads the header (info != NULL) or the whole image (out != NULL) into j. Runs under setjmp:
// after a longjmp it returns -1 at once with the reason in j->err.msg. `why` is set only for our
// own refusals (limits, memory, colour space).
static int jpeg_run(jpeg_job *j, const uint8_t *buf, size_t n, const ganc_decode_opts *opts,
                    ganc_image_info *info, ganc_image *out, char *why, size_t why_len) {
  j->cinfo.err = jpeg_std_error(&j->err.pub);
  j->err.pub.error_exit = jpeg_on_error;
  j->err.pub.emit_message = jpeg_on_message;
  j->err.pub.output_message = jpeg_on_output;
  if (setjmp(j->err.jb)) return -1;

  jpeg_create_decompress(&j->cinfo);
  if (n > ULONG_MAX) ERREXIT(&j->cinfo, JERR_INPUT_EOF); // jpeg_mem_src takes unsigned long
  jpeg_mem_src(&j->cinfo, buf, (unsigned long)n);
  jpeg_read_header(&j->cinfo, TRUE); // TRUE: a tables-only stream is an error, not a return
  if (j->cinfo.image_width > INT_MAX || j->cinfo.image_height > INT_MAX)
    ERREXIT1(&j->cinfo, JERR_IMAGE_TOO_BIG, JPEG_MAX_DIMENSION);
  int w = (int)j->cinfo.image_width, h = (int)j->cinfo.image_height;
  if (info) {
    info->fmt = GANC_IMG_JPEG;
    info->w = w;
    info->h = h;
    info->gray = j->cinfo.num_components == 1;
    return 0;
  }

  int c = 0, cmyk = 0;
  switch (j->cinfo.jpeg_color_space) {
  case JCS_GRAYSCALE:
    j->cinfo.out_color_space = JCS_GRAYSCALE;
    c = 1;
    break;
  case JCS_YCbCr:
  case JCS_RGB:
    j->cinfo.out_color_space = JCS_RGB;
    c = 3;
    break;
  case JCS_CMYK:
  case JCS_YCCK: // libjpeg turns YCCK into (still inverted) CMYK; we do CMYK → RGB
    j->cinfo.out_color_space = JCS_CMYK;
    c = 3;
    cmyk = 1;
    break;
  default:
    set_why(why, why_len, "unsupported JPEG colour space (%d components)", j->cinfo.num_components);
    return -1;
  }
  if (check_limits(w, h, opts, why, why_len)) return -1;

  j->cinfo.scale_num = 1;
  j->cinfo.scale_denom =
      opts ? (unsigned)jpeg_pick_denom(w, h, opts->reduce_short, opts->reduce_long) : 1u;
  jpeg_calc_output_dimensions(&j->cinfo);
  int ow = (int)j->cinfo.output_width, oh = (int)j->cinfo.output_height;
  if (j->cinfo.output_components != (cmyk ? 4 : c)) ERREXIT(&j->cinfo, JERR_CONVERSION_NOTIMPL);
  size_t nbytes = pixel_bytes(ow, oh, c);
  if (nbytes == 0) {
    set_why(why, why_len, "image too large: %dx%d does not fit in memory", w, h);
    return -1;
  }
  j->px = malloc(nbytes);
  j->row = cmyk ? malloc((size_t)ow * 4) : NULL;
  if (!j->px || (cmyk && !j->row)) {
    set_why(why, why_len, "out of memory for a %dx%d image", ow, oh);
    return -1;
  }

  jpeg_start_decompress(&j->cinfo);
  while (j->cinfo.output_scanline < j->cinfo.output_height) {
    uint8_t *dst = j->px + (size_t)j->cinfo.output_scanline * ow * c;
    JSAMPROW r = cmyk ? j->row : dst;
    // jpeg_mem_src never suspends, so 0 rows means libjpeg gave up without an error.
    if (jpeg_read_scanlines(&j->cinfo, &r, 1) != 1) ERREXIT(&j->cinfo, JERR_INPUT_EOF);
    if (cmyk) cmyk_to_rgb(j->row, dst, ow, j->cinfo.saw_Adobe_marker);
  }
  jpeg_finish_decompress(&j->cinfo); // reads to EOI: a file cut after its last scan is refused
  out->w = ow;
  out->h = oh;
  out->c = c;
  out->px = j->px;
  j->px = NULL;
  return 0;
}

static int jpeg_job_finish(jpeg_job *j, int rc, int own_reason, char *why, size_t why_len) {
  if (rc != 0 && !own_reason) {
    if (j->err.corrupt)
      set_why(why, why_len, "truncated or corrupt JPEG data: %s", j->err.msg);
    else
      set_why(why, why_len, "corrupt JPEG data: %s", j->err.msg);
  }
  jpeg_destroy_decompress(&j->cinfo);
  free(j->row);
  free(j->px);
  return rc;
}

// ---- probe and decode ---------------------------------------------------------------------------

int ganc_image_probe(const uint8_t *buf, size_t n, ganc_image_info *info, char *why,
                     size_t why_len) {
  if (!info) {
    set_why(why, why_len, "no info to fill (NULL)");
    return -1;
  }
  memset(info, 0, sizeof *info);
  ganc_img_format f = ganc_image_sniff(buf, n);
  if (f == GANC_IMG_PNG) {
    png_job j;
    memset(&j, 0, sizeof j);
    j.buf = buf;
    j.n = n;
    int rc = png_run(&j, 1, NULL, why, why_len);
    if (rc == 0) {
      info->fmt = GANC_IMG_PNG;
      info->w = j.w;
      info->h = j.h;
      info->gray = j.gray;
    }
    return png_job_finish(&j, rc, why, why_len);
  }
  if (f == GANC_IMG_JPEG) {
    jpeg_job *j = calloc(1, sizeof *j); // ~1 KiB of libjpeg state: keep it off the stack
    if (!j) {
      set_why(why, why_len, "out of memory");
      return -1;
    }
    int rc = jpeg_run(j, buf, n, NULL, info, NULL, why, why_len);
    if (rc != 0) memset(info, 0, sizeof *info);
    rc = jpeg_job_finish(j, rc, rc != 0 && !j->err.msg[0], why, why_len);
    free(j);
    return rc;
  }
  set_why(why, why_len, "not a PNG or JPEG file");
  return -1;
}

int ganc_image_decode(const uint8_t *buf, size_t n, const ganc_decode_opts *opts, ganc_image *out,
                      char *why, size_t why_len) {
  if (!out) {
    set_why(why, why_len, "no image to fill (NULL)");
    return -1;
  }
  memset(out, 0, sizeof *out);
  ganc_img_format f = ganc_image_sniff(buf, n);
  if (f == GANC_IMG_PNG) {
    png_job j;
    memset(&j, 0, sizeof j);
    j.buf = buf;
    j.n = n;
    int rc = png_run(&j, 0, opts, why, why_len);
    if (rc == 0) {
      out->w = j.w;
      out->h = j.h;
      out->c = j.c;
      out->px = j.px;
      j.px = NULL;
    }
    return png_job_finish(&j, rc, why, why_len);
  }
  if (f == GANC_IMG_JPEG) {
    jpeg_job *j = calloc(1, sizeof *j);
    if (!j) {
      set_why(why, why_len, "out of memory");
      return -1;
    }
    int rc = jpeg_run(j, buf, n, opts, NULL, out, why, why_len);
    // libjpeg's reason sits in j->err.msg; without one, jpeg_run wrote its own into why.
    rc = jpeg_job_finish(j, rc, rc != 0 && !j->err.msg[0], why, why_len);
    free(j);
    return rc;
  }
  set_why(why, why_len, "not a PNG or JPEG file");
  return -1;
}

// ---- fitting to R×R -----------------------------------------------------------------------------

// Straight alpha over a constant background, rounded to nearest.
static inline uint8_t over(unsigned v, unsigned a, unsigned bg) {
  return (uint8_t)((a * v + (255u - a) * bg + 127u) / 255u);
}

// Rec. 601 luma, rounded to nearest.
static inline uint8_t luma(unsigned r, unsigned g, unsigned b) {
  return (uint8_t)((299u * r + 587u * g + 114u * b + 500u) / 1000u);
}

// Mitchell where an axis shrinks (antialiased, little ringing); Catmull-Rom where it grows or
// keeps its size: it interpolates, so an axis whose size does not change passes through exactly,
// where Mitchell (B = 1/3) would blur it.
static stbir_filter axis_filter(int from, int to) {
  return to < from ? STBIR_FILTER_MITCHELL : STBIR_FILTER_CATMULLROM;
}

int ganc_image_fit(const ganc_image *src, int R, int out_c, ganc_fit fit, uint8_t background,
                   uint8_t *dst, int *upscaled, char *why, size_t why_len) {
  if (upscaled) *upscaled = 0;
  if (!src || !src->px || !dst) {
    set_why(why, why_len, "fit: NULL image or destination");
    return -1;
  }
  if (src->w <= 0 || src->h <= 0 || src->c < 1 || src->c > 4) {
    set_why(why, why_len, "fit: bad source image %dx%d with %d channels", src->w, src->h, src->c);
    return -1;
  }
  if (R < 1 || R > 65536) {
    set_why(why, why_len, "fit: side %d out of range 1..65536", R);
    return -1;
  }
  if (out_c != 1 && out_c != 3) {
    set_why(why, why_len, "fit: %d output channels, expected 1 or 3", out_c);
    return -1;
  }
  const int w = src->w, h = src->h, c = src->c;

  // The used region [rh, rw] at (x0, y0) of src, and the [th, tw] it becomes at (ox, oy) of dst.
  int x0 = 0, y0 = 0, rw = w, rh = h, tw = R, th = R, ox = 0, oy = 0;
  switch (fit) {
  case GANC_FIT_CROP: {
    int s = w < h ? w : h;
    x0 = (w - s) / 2;
    y0 = (h - s) / 2;
    rw = rh = s;
    break;
  }
  case GANC_FIT_RESIZE:
    break;
  case GANC_FIT_PAD: {
    int m = w > h ? w : h;
    if (m <= R) {
      tw = w;
      th = h;
    } else { // scale R / m, rounded half up, never below one pixel
      tw = (int)(((int64_t)w * R * 2 + m) / ((int64_t)m * 2));
      th = (int)(((int64_t)h * R * 2 + m) / ((int64_t)m * 2));
      if (tw < 1) tw = 1;
      if (th < 1) th = 1;
    }
    ox = (R - tw) / 2;
    oy = (R - th) / 2;
    break;
  }
  default:
    set_why(why, why_len, "fit: unknown mode %d", (int)fit);
    return -1;
  }
  size_t rbytes = pixel_bytes(rw, rh, out_c);
  if (rbytes == 0 || (size_t)rw * out_c > INT_MAX) { // stb takes strides as int
    set_why(why, why_len, "fit: source %dx%d too large", w, h);
    return -1;
  }

  // 1. Composite alpha and convert channels, region only: tmp [rh, rw, out_c].
  uint8_t *tmp = malloc(rbytes);
  if (!tmp) {
    set_why(why, why_len, "fit: out of memory for %dx%d", rw, rh);
    return -1;
  }
  const unsigned bg = background;
  for (int y = 0; y < rh; y++) {
    const uint8_t *p = src->px + ((size_t)(y0 + y) * w + x0) * c;
    uint8_t *q = tmp + (size_t)y * rw * out_c;
    for (int x = 0; x < rw; x++, p += c, q += out_c) {
      uint8_t r, g, b;
      switch (c) {
      case 1:
        r = g = b = p[0];
        break;
      case 2:
        r = g = b = over(p[0], p[1], bg);
        break;
      case 3:
        r = p[0], g = p[1], b = p[2];
        break;
      default:
        r = over(p[0], p[3], bg), g = over(p[1], p[3], bg), b = over(p[2], p[3], bg);
        break;
      }
      if (out_c == 3) {
        q[0] = r, q[1] = g, q[2] = b;
      } else {
        q[0] = c <= 2 ? r : luma(r, g, b); // gray stays exact, no round trip through luma
      }
    }
  }

  // 2. Place it: pad fills the canvas first; same size copies, else an antialiased resample.
  const size_t dstride = (size_t)R * out_c;
  if (fit == GANC_FIT_PAD) memset(dst, background, dstride * R);
  uint8_t *d0 = dst + (size_t)oy * dstride + (size_t)ox * out_c;
  int rc = 0;
  if (tw == rw && th == rh) {
    for (int y = 0; y < rh; y++)
      memcpy(d0 + (size_t)y * dstride, tmp + (size_t)y * rw * out_c, (size_t)rw * out_c);
  } else if (!stbir_resize(tmp, rw, rh, rw * out_c, d0, tw, th, (int)dstride, STBIR_TYPE_UINT8,
                           out_c, STBIR_ALPHA_CHANNEL_NONE, 0, STBIR_EDGE_CLAMP, STBIR_EDGE_CLAMP,
                           axis_filter(rw, tw), axis_filter(rh, th), STBIR_COLORSPACE_LINEAR,
                           NULL)) {
    set_why(why, why_len, "fit: resampling %dx%d to %dx%d failed (out of memory)", rw, rh, tw, th);
    rc = -1;
  }
  free(tmp);
  if (rc == 0 && upscaled) *upscaled = tw > rw || th > rh;
  return rc;
}
