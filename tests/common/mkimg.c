// mkimg.c — test images written with libpng and libjpeg (see mkimg.h).
//
// Both libraries leave an error by longjmp; each writer keeps what must be freed in a job struct
// owned by its caller, so nothing depends on locals that longjmp may have clobbered.
#include "mkimg.h"

#include <stdio.h> // before jpeglib.h, which uses FILE
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h> // libjpeg API: compressor, error manager, destination manager
#include <png.h>     // libpng: writer

#include <jerror.h> // after jpeglib.h: ERREXIT1, JERR_OUT_OF_MEMORY

#include <setjmp.h>

// ---- pattern ------------------------------------------------------------------------------------

// A small integer hash (lowbias32): neighbouring inputs give unrelated outputs.
uint32_t mkimg_hash32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

void mkimg_pattern(uint8_t *px, int w, int h, int c, uint32_t seed) {
  const int wd = w > 1 ? w - 1 : 1, hd = h > 1 ? h - 1 : 1;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int k = 0; k < c; k++) {
        // Channel k ramps a different way (across, down, diagonal, anti-diagonal), so channels
        // differ; a 0..63 hash on top of 0..191 keeps neighbours apart without wrapping.
        int gx = x * 191 / wd, gy = y * 191 / hd, g;
        switch (k % 4) {
        case 0:
          g = gx;
          break;
        case 1:
          g = gy;
          break;
        case 2:
          g = (gx + gy) / 2;
          break;
        default:
          g = (gx + 191 - gy) / 2;
          break;
        }
        uint32_t hsh =
            mkimg_hash32((uint32_t)x * 0x9e3779b1U ^ mkimg_hash32((uint32_t)y + 0x632be5abU * k) ^
                         mkimg_hash32(seed + 0x85ebca6bU));
        px[((size_t)y * w + x) * c + k] = (uint8_t)(g + (int)(hsh & 63));
      }
}

// ---- files --------------------------------------------------------------------------------------

static int write_file(const char *path, const uint8_t *buf, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  int ok = fwrite(buf, 1, n, f) == n;
  ok = (fclose(f) == 0) && ok;
  return ok ? 0 : -1;
}

int mkimg_read_file(const char *path, uint8_t **out, size_t *n) {
  if (!path || !out || !n) return -1;
  *out = NULL;
  *n = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  size_t cap = 1 << 16, len = 0;
  uint8_t *buf = malloc(cap);
  while (buf) {
    len += fread(buf + len, 1, cap - len, f);
    if (len < cap) break; // EOF or error, told apart below
    uint8_t *bigger = realloc(buf, cap * 2);
    if (!bigger) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = bigger;
    cap *= 2;
  }
  int err = !buf || ferror(f);
  fclose(f);
  if (err) {
    free(buf);
    return -1;
  }
  *out = buf;
  *n = len;
  return 0;
}

// ---- PNG ----------------------------------------------------------------------------------------

typedef struct png_wjob {
  png_structp png;
  png_infop info;
  uint8_t *data;   // [h, rowbytes] packed rows
  png_bytep *rows; // [h] pointers into data
  uint8_t *out;    // the file being written [n], capacity cap
  size_t n, cap;
} png_wjob;

static void mk_png_error(png_structp png, png_const_charp msg) {
  (void)msg;
  png_longjmp(png, 1);
}

static void mk_png_warning(png_structp png, png_const_charp msg) {
  (void)png;
  (void)msg;
}

static void mk_png_write(png_structp png, png_bytep data, size_t len) {
  png_wjob *j = (png_wjob *)png_get_io_ptr(png);
  if (len > j->cap - j->n) {
    size_t cap = j->cap ? j->cap : 4096;
    while (len > cap - j->n)
      cap *= 2;
    uint8_t *p = realloc(j->out, cap);
    if (!p) png_error(png, "out of memory");
    j->out = p;
    j->cap = cap;
  }
  memcpy(j->out + j->n, data, len);
  j->n += len;
}

static void mk_png_flush(png_structp png) { (void)png; }

int mkimg_png_channels(int color_type) {
  switch (color_type) {
  case PNG_COLOR_TYPE_GRAY:
  case PNG_COLOR_TYPE_PALETTE:
    return 1;
  case PNG_COLOR_TYPE_GRAY_ALPHA:
    return 2;
  case PNG_COLOR_TYPE_RGB:
    return 3;
  case PNG_COLOR_TYPE_RGB_ALPHA:
    return 4;
  default:
    return 0;
  }
}

static int png_depth_ok(int color_type, int d) {
  switch (color_type) {
  case PNG_COLOR_TYPE_GRAY:
    return d == 1 || d == 2 || d == 4 || d == 8 || d == 16;
  case PNG_COLOR_TYPE_PALETTE:
    return d == 1 || d == 2 || d == 4 || d == 8;
  default:
    return d == 8 || d == 16;
  }
}

// Packs samples into PNG rows (big-endian 16-bit; sub-byte samples MSB first) and writes them.
// Runs under libpng's setjmp; after a longjmp it returns -1 at once and reads nothing but j.
static int png_write_job(png_wjob *j, int w, int h, int color_type, int bit_depth, int interlace,
                         const void *samples, const uint8_t *palette, int n_palette,
                         const uint8_t *trns, int n_trns) {
  j->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, j, mk_png_error, mk_png_warning);
  if (j->png) j->info = png_create_info_struct(j->png);
  if (!j->png || !j->info) return -1;
  if (setjmp(png_jmpbuf(j->png))) return -1;

  // Locals begin after setjmp, so none is live across it (gcc's -Wclobbered).
  const int ch = mkimg_png_channels(color_type);
  const size_t rowbytes = ((size_t)w * ch * bit_depth + 7) / 8, per_row = (size_t)w * ch;
  j->data = calloc((size_t)h, rowbytes);
  j->rows = malloc((size_t)h * sizeof(png_bytep));
  if (!j->data || !j->rows) return -1;
  for (int y = 0; y < h; y++) {
    uint8_t *r = j->data + (size_t)y * rowbytes;
    j->rows[y] = r;
    for (size_t i = 0; i < per_row; i++) {
      size_t s = (size_t)y * per_row + i;
      if (bit_depth == 16) {
        uint16_t v = ((const uint16_t *)samples)[s];
        r[2 * i] = (uint8_t)(v >> 8);
        r[2 * i + 1] = (uint8_t)(v & 0xff);
      } else if (bit_depth == 8) {
        r[i] = ((const uint8_t *)samples)[s];
      } else {
        unsigned v = ((const uint8_t *)samples)[s] & ((1u << bit_depth) - 1);
        size_t bit = i * bit_depth;
        r[bit / 8] |= (uint8_t)(v << (8 - bit_depth - bit % 8));
      }
    }
  }

  png_set_write_fn(j->png, j, mk_png_write, mk_png_flush);
  png_set_IHDR(j->png, j->info, (png_uint_32)w, (png_uint_32)h, bit_depth, color_type,
               interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (color_type == PNG_COLOR_TYPE_PALETTE) {
    png_color pal[256];
    for (int i = 0; i < n_palette; i++) {
      pal[i].red = palette[3 * i];
      pal[i].green = palette[3 * i + 1];
      pal[i].blue = palette[3 * i + 2];
    }
    png_set_PLTE(j->png, j->info, pal, n_palette);
    if (trns && n_trns > 0) png_set_tRNS(j->png, j->info, trns, n_trns, NULL);
  } else if (trns && (color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_RGB)) {
    png_color_16 t;
    memset(&t, 0, sizeof t);
    if (color_type == PNG_COLOR_TYPE_GRAY) {
      if (n_trns != 1) return -1;
      t.gray = trns[0];
    } else {
      if (n_trns != 3) return -1;
      t.red = trns[0];
      t.green = trns[1];
      t.blue = trns[2];
    }
    png_set_tRNS(j->png, j->info, NULL, 0, &t);
  }
  png_write_info(j->png, j->info);
  png_write_image(j->png, j->rows); // interlaces itself when the IHDR says Adam7
  png_write_end(j->png, NULL);
  return 0;
}

int mkimg_png_mem(uint8_t **out, size_t *n, int w, int h, int color_type, int bit_depth,
                  int interlace, const void *samples, const uint8_t *palette, int n_palette,
                  const uint8_t *trns, int n_trns) {
  if (!out || !n) return -1;
  *out = NULL;
  *n = 0;
  if (w < 1 || h < 1 || w > (1 << 20) || h > (1 << 20) || !samples ||
      mkimg_png_channels(color_type) == 0 || !png_depth_ok(color_type, bit_depth))
    return -1;
  if (color_type == PNG_COLOR_TYPE_PALETTE &&
      (!palette || n_palette < 1 || n_palette > 256 || n_trns < 0 || n_trns > n_palette))
    return -1;
  png_wjob j;
  memset(&j, 0, sizeof j);
  int rc = png_write_job(&j, w, h, color_type, bit_depth, interlace, samples, palette, n_palette,
                         trns, n_trns);
  if (j.png) png_destroy_write_struct(&j.png, j.info ? &j.info : NULL);
  free(j.rows);
  free(j.data);
  if (rc != 0) {
    free(j.out);
    return -1;
  }
  *out = j.out;
  *n = j.n;
  return 0;
}

int mkimg_png(const char *path, int w, int h, int color_type, int bit_depth, int interlace,
              const void *samples, const uint8_t *palette, int n_palette, const uint8_t *trns,
              int n_trns) {
  uint8_t *buf;
  size_t n;
  if (!path || mkimg_png_mem(&buf, &n, w, h, color_type, bit_depth, interlace, samples, palette,
                             n_palette, trns, n_trns))
    return -1;
  int rc = write_file(path, buf, n);
  free(buf);
  return rc;
}

// ---- JPEG ---------------------------------------------------------------------------------------

// Our own destination manager rather than jpeg_mem_dest: with jpeg_mem_dest the caller's pointer
// may dangle after libjpeg regrows its buffer and then fails, so an error path could not free it.
typedef struct jpeg_wjob {
  struct jpeg_compress_struct cinfo; // zeroed, so destroying it is safe at any point
  struct jpeg_error_mgr err;
  jmp_buf jb;
  struct jpeg_destination_mgr dest;
  uint8_t *out; // the file being written, capacity cap; n bytes once finished
  size_t n, cap;
  uint8_t *row; // [w, components] one inverted CMYK scanline
} jpeg_wjob;

// libjpeg hands our callbacks its cinfo; client_data points back at the job.
static jpeg_wjob *wjob_of(j_common_ptr cinfo) { return (jpeg_wjob *)cinfo->client_data; }

static void mk_jpeg_error(j_common_ptr cinfo) { longjmp(wjob_of(cinfo)->jb, 1); }
static void mk_jpeg_message(j_common_ptr cinfo, int level) {
  (void)cinfo;
  (void)level;
}

static void mk_dest_init(j_compress_ptr cinfo) {
  jpeg_wjob *j = wjob_of((j_common_ptr)cinfo);
  j->cap = 1 << 16;
  j->out = malloc(j->cap);
  if (!j->out) ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 0);
  j->dest.next_output_byte = j->out;
  j->dest.free_in_buffer = j->cap;
}

// Called when the buffer is full: grow it and carry on after the bytes already written.
static boolean mk_dest_empty(j_compress_ptr cinfo) {
  jpeg_wjob *j = wjob_of((j_common_ptr)cinfo);
  uint8_t *p = realloc(j->out, j->cap * 2);
  if (!p) ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 1);
  j->out = p;
  j->dest.next_output_byte = p + j->cap;
  j->dest.free_in_buffer = j->cap;
  j->cap *= 2;
  return TRUE;
}

static void mk_dest_term(j_compress_ptr cinfo) {
  jpeg_wjob *j = wjob_of((j_common_ptr)cinfo);
  j->n = j->cap - j->dest.free_in_buffer;
}

// Runs under setjmp; after a longjmp it returns -1 at once and reads nothing but j.
static int jpeg_write_job(jpeg_wjob *j, int w, int h, int components, int quality,
                          const uint8_t *px) {
  j->cinfo.err = jpeg_std_error(&j->err);
  j->err.error_exit = mk_jpeg_error;
  j->err.emit_message = mk_jpeg_message;
  j->cinfo.client_data = j; // before jpeg_create_compress, which keeps it and may already fail
  if (setjmp(j->jb)) return -1;
  jpeg_create_compress(&j->cinfo);
  j->dest.init_destination = mk_dest_init;
  j->dest.empty_output_buffer = mk_dest_empty;
  j->dest.term_destination = mk_dest_term;
  j->cinfo.dest = &j->dest;

  j->cinfo.image_width = (JDIMENSION)w;
  j->cinfo.image_height = (JDIMENSION)h;
  j->cinfo.input_components = components;
  j->cinfo.in_color_space = components == 1 ? JCS_GRAYSCALE : components == 3 ? JCS_RGB : JCS_CMYK;
  jpeg_set_defaults(&j->cinfo); // CMYK input → CMYK file with an Adobe marker
  jpeg_set_quality(&j->cinfo, quality, TRUE);
  for (int i = 0; i < j->cinfo.num_components; i++)
    j->cinfo.comp_info[i].h_samp_factor = j->cinfo.comp_info[i].v_samp_factor = 1;
  if (components == 4) {
    j->cinfo.write_Adobe_marker = TRUE;
    j->row = malloc((size_t)w * 4);
    if (!j->row) ERREXIT1(&j->cinfo, JERR_OUT_OF_MEMORY, 2);
  }

  jpeg_start_compress(&j->cinfo, TRUE);
  while (j->cinfo.next_scanline < j->cinfo.image_height) {
    const uint8_t *src = px + (size_t)j->cinfo.next_scanline * w * components;
    JSAMPROW r = (JSAMPROW)src;
    if (components == 4) { // Photoshop's convention: the file stores 255 - ink
      for (size_t i = 0; i < (size_t)w * 4; i++)
        j->row[i] = (uint8_t)(255 - src[i]);
      r = j->row;
    }
    jpeg_write_scanlines(&j->cinfo, &r, 1);
  }
  jpeg_finish_compress(&j->cinfo);
  return 0;
}

int mkimg_jpeg_mem(uint8_t **out, size_t *n, int w, int h, int components, int quality,
                   const uint8_t *px) {
  if (!out || !n) return -1;
  *out = NULL;
  *n = 0;
  if (w < 1 || h < 1 || w > JPEG_MAX_DIMENSION || h > JPEG_MAX_DIMENSION || !px ||
      (components != 1 && components != 3 && components != 4) || quality < 1 || quality > 100)
    return -1;
  jpeg_wjob *j = calloc(1, sizeof *j);
  if (!j) return -1;
  int rc = jpeg_write_job(j, w, h, components, quality, px);
  jpeg_destroy_compress(&j->cinfo);
  free(j->row);
  if (rc == 0) {
    *out = j->out;
    *n = j->n;
  } else {
    free(j->out);
  }
  free(j);
  return rc;
}

int mkimg_jpeg(const char *path, int w, int h, int components, int quality, const uint8_t *px) {
  uint8_t *buf;
  size_t n;
  if (!path || mkimg_jpeg_mem(&buf, &n, w, h, components, quality, px)) return -1;
  int rc = write_file(path, buf, n);
  free(buf);
  return rc;
}
