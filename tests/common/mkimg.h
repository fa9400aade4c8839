// mkimg.h — writing small PNG and JPEG test images with libpng/libjpeg, so image tests make their
// inputs from known pixels instead of keeping binary fixtures.
//
// Every writer returns 0 on success and -1 on failure (bad arguments, a library error, I/O); it
// prints nothing, so a test decides what a failure means.
#ifndef GANC_TEST_MKIMG_H
#define GANC_TEST_MKIMG_H

#include <stddef.h>
#include <stdint.h>

// Fills px [h, w, c] with a deterministic, non-constant pattern: per-channel gradients plus a hash
// of (x, y, channel, seed), so neighbouring pixels differ and every value range is visited.
void mkimg_pattern(uint8_t *px, int w, int h, int c, uint32_t seed);
// The hash behind the pattern (lowbias32): neighbouring inputs give unrelated outputs.
uint32_t mkimg_hash32(uint32_t x);
// Samples per pixel of a PNG colour type as stored (palette: 1 index); 0 for an unknown type.
int mkimg_png_channels(int color_type);

// Writes a PNG file. color_type is a PNG_COLOR_TYPE_* value, bit_depth 1/2/4/8/16 as valid for it,
// interlace 0 or 1 (Adam7). samples: for bit_depth 16, uint16_t samples [h, w, channels];
// otherwise uint8_t samples [h, w, channels] with values already in range for the bit depth (for
// palette: indices). For PNG_COLOR_TYPE_PALETTE, `palette` has n_palette RGB triples
// [n_palette, 3] and `trns` (may be NULL) n_trns alpha values.
// For PNG_COLOR_TYPE_GRAY and _RGB, a non-NULL `trns` instead marks one colour transparent (a
// tRNS chunk): n_trns is 1 (gray) or 3 (RGB) sample values in range for bit_depth (so 0..255 at
// 16 bits). palette/n_palette are ignored for non-palette types.
int mkimg_png(const char *path, int w, int h, int color_type, int bit_depth, int interlace,
              const void *samples, const uint8_t *palette, int n_palette, const uint8_t *trns,
              int n_trns);

// Writes a JPEG file from px [h, w, components]: components 1 (gray), 3 (RGB input, stored
// YCbCr), or 4 (CMYK ink amounts, written with an Adobe marker and inverted as Photoshop does:
// the file stores 255 - value). quality 1..100. Chroma is not subsampled (4:4:4), so a
// quality-100 file decodes within a few levels of px.
int mkimg_jpeg(const char *path, int w, int h, int components, int quality, const uint8_t *px);

// Same as above, into a malloc'd memory buffer (*out [*n], freed by the caller) instead of a file.
int mkimg_png_mem(uint8_t **out, size_t *n, int w, int h, int color_type, int bit_depth,
                  int interlace, const void *samples, const uint8_t *palette, int n_palette,
                  const uint8_t *trns, int n_trns);
int mkimg_jpeg_mem(uint8_t **out, size_t *n, int w, int h, int components, int quality,
                   const uint8_t *px);

// Reads a whole file into a malloc'd buffer (*out [*n], freed by the caller); -1 on failure.
int mkimg_read_file(const char *path, uint8_t **out, size_t *n);

#endif
