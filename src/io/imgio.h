// imgio.h — what ganc writes for people to look at: PNG files (labelled as machine-generated when
// they come from a generator), image grids, animated GIFs, and the SHA-256 that names a checkpoint.
#ifndef GANC_IMGIO_H
#define GANC_IMGIO_H

#include "core/check.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Text attached to a PNG (tEXt/iTXt chunks). A generated image carries:
//  - "Software" = "ganc <version>" (always),
//  - when machine_generated: an XMP packet (iTXt "XML:com.adobe.xmp") whose
//    Iptc4xmpExt:DigitalSourceType is
//    http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia, and a plain
//    "Description" text saying the image was made by a trained generative model,
//  - the caller's key/value pairs (e.g. "ganc:checkpoint-sha256", "ganc:seed", "ganc:truncation").
typedef struct ganc_png_kv {
  const char *key; // 1..79 Latin-1 characters, as PNG requires
  const char *value;
} ganc_png_kv;

typedef struct ganc_png_meta {
  int machine_generated;
  const ganc_png_kv *kv;
  int nkv;
} ganc_png_meta;

// Writes px [h, w, c] (c = 1 gray or 3 RGB, 8-bit) to path, atomically (a temporary file in the
// same folder, then rename), so a reader never sees half a PNG. meta may be NULL.
int ganc_png_write(const char *path, int w, int h, int c, const uint8_t *px,
                   const ganc_png_meta *meta, ganc_err *err);

// Lays out n images [n, h, w, c] on a rows x cols grid (row-major, no gaps; empty cells black):
// out [rows·h, cols·w, c]. Cell k is byte-identical to image k.
void ganc_grid(const uint8_t *imgs, int n, int h, int w, int c, int rows, int cols, uint8_t *out);

// Writes an animated GIF of F frames [F, h, w, c] (c = 1 or 3), each shown delay_cs hundredths
// of a second, looping forever. Gray uses an exact 256-level palette; RGB uses one global palette
// of 256 colours chosen from all frames (median cut), each pixel mapped to its nearest colour.
// A comment extension carries the same machine-generated statement as the PNGs plus `comment`
// (may be NULL). Atomic like ganc_png_write.
int ganc_gif_write(const char *path, int F, int w, int h, int c, const uint8_t *frames,
                   int delay_cs, const char *comment, ganc_err *err);

// SHA-256 of a buffer (out: 32 bytes) and of a whole file (hex: 64 lowercase digits + NUL).
void ganc_sha256(const void *data, size_t n, uint8_t out[32]);
int ganc_sha256_file(const char *path, char hex[65], ganc_err *err);

#ifdef __cplusplus
}
#endif

#endif
