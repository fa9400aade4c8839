// image.h — decoding PNG/JPEG files into 8-bit pixels, and fitting them into an R×R square.
//
// Decoding never crashes on bad input: every failure returns -1 with a one-line reason that
// ganc-prep prints beside the file's path ("truncated PNG data", "not a PNG or JPEG file", ...).
// Pixels are row-major [h, w, c], 8 bits per channel, alpha straight (not premultiplied).
#ifndef GANC_IMAGE_H
#define GANC_IMAGE_H

#include <stddef.h>
#include <stdint.h>

typedef enum { GANC_IMG_UNKNOWN = 0, GANC_IMG_PNG, GANC_IMG_JPEG } ganc_img_format;

typedef struct ganc_image {
  int w, h;
  int c;       // 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
  uint8_t *px; // [h, w, c], malloc'd; free with ganc_image_free
} ganc_image;

typedef struct ganc_image_info {
  ganc_img_format fmt;
  int w, h; // full size as stored in the file
  int gray; // 1 when the decoded image has no colour (gray or gray+alpha PNG, 1-component JPEG,
            // palette PNG whose every entry has r == g == b)
} ganc_image_info;

typedef struct ganc_decode_opts {
  uint64_t max_pixels; // refuse images with w*h above this before allocating (decompression bombs);
                       // 0 = no limit
  int min_side;        // refuse images whose shorter side is below this ("too small"); 0 = none
  // JPEG only: the decoder may shrink by 1/2, 1/4 or 1/8 in the DCT (fast and antialiased) while
  // the shrunken image keeps its shorter side >= reduce_short and its longer side >= reduce_long.
  // 0 for both = decode at full size. PNG ignores these.
  int reduce_short, reduce_long;
} ganc_decode_opts;

// Tells the format from the first bytes (magic numbers), never from a file name.
ganc_img_format ganc_image_sniff(const uint8_t *buf, size_t n);
const char *ganc_img_format_name(ganc_img_format f); // "PNG", "JPEG", "unknown"

// Reads only the header: format, size, colour. 0 on success, -1 with `why` set.
int ganc_image_probe(const uint8_t *buf, size_t n, ganc_image_info *info, char *why,
                     size_t why_len);

// Decodes a whole in-memory file. PNG: 1/2/4/8/16-bit gray, gray+alpha, palette (tRNS becomes
// alpha), RGB, RGBA, Adam7 interlaced; 16-bit is rounded to 8-bit. JPEG: gray, RGB/YCbCr, and
// CMYK/YCCK converted to RGB (Adobe's inverted CMYK handled). Truncated or corrupt data is an
// error, never a half-grey image. 0 on success (out->px owned by the caller), -1 with `why` set.
int ganc_image_decode(const uint8_t *buf, size_t n, const ganc_decode_opts *opts, ganc_image *out,
                      char *why, size_t why_len);
void ganc_image_free(ganc_image *img);

typedef enum { GANC_FIT_CROP = 0, GANC_FIT_RESIZE, GANC_FIT_PAD } ganc_fit;

// Produces dst [R, R, out_c] from src:
//  - alpha is composited onto `background` (0 black, 255 white);
//  - colour → gray uses Rec. 601 luma (0.299 R + 0.587 G + 0.114 B), gray → colour repeats;
//  - GANC_FIT_CROP: the central square of side min(w, h), scaled to R;
//    GANC_FIT_RESIZE: the whole image stretched to R×R;
//    GANC_FIT_PAD: the whole image, aspect kept, centred on an R×R `background` canvas; it is
//    scaled down when its longer side exceeds R and never scaled up (so 28×28 into 32 is a 2-pixel
//    border);
//  - scaling uses an antialiased filter (stb_image_resize, Mitchell down / Catmull-Rom up).
// *upscaled (if not NULL) is set to 1 when any side had to be enlarged, else 0.
// Returns 0, or -1 with `why` set (bad arguments only).
int ganc_image_fit(const ganc_image *src, int R, int out_c, ganc_fit fit, uint8_t background,
                   uint8_t *dst, int *upscaled, char *why, size_t why_len);

#endif
