// tb.h — TensorBoard event files: what ganc-train logs, readable by TensorBoard itself
// (`tensorboard --logdir RUN_DIR`) and by its Python readers.
//
// A file RUN_DIR/events.out.tfevents.<seconds>.<host>.<pid>.ganc per process start, a series of
// TFRecords (length, masked CRC-32C of the length, the serialised Event, masked CRC-32C of it);
// the first event carries the file version, the second a session-log START at the first step the
// run (re)starts with, which tells TensorBoard to drop what earlier files logged at or after it
// (what an interrupted run had logged past its checkpoint). Each event is flushed when written, so
// a killed run loses none that was logged.
#ifndef GANC_TB_H
#define GANC_TB_H

#include "core/check.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ganc_tb ganc_tb;

// Creates the event file in run_dir for a run whose first step is `step`. Returns 0, or -1 with
// err.
int ganc_tb_open(const char *run_dir, int64_t step, ganc_tb **out, ganc_err *err);
// n scalars at `step` in one event. Returns 0, or -1 with err (the file is then left alone).
int ganc_tb_scalars(ganc_tb *tb, int64_t step, const char *const *tags, const double *values, int n,
                    ganc_err *err);
// One image at `step`: a PNG file's bytes, its width, height and channels (1 or 3).
int ganc_tb_image(ganc_tb *tb, int64_t step, const char *tag, const uint8_t *png, size_t n, int w,
                  int h, int c, ganc_err *err);
// The file's path (for messages).
const char *ganc_tb_path(const ganc_tb *tb);
void ganc_tb_close(ganc_tb *tb);

// CRC-32C (Castagnoli), and TFRecord's masked form of it.
uint32_t ganc_crc32c(const void *data, size_t n);
uint32_t ganc_crc32c_masked(const void *data, size_t n);

#ifdef __cplusplus
}
#endif

#endif
