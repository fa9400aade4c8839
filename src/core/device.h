// device.h — the one dispatch point between the CPU and CUDA backends for device queries and
// host memory. Callers never test GANC_HAVE_CUDA themselves.
#ifndef GANC_DEVICE_H
#define GANC_DEVICE_H

#include "core/check.h"
#include "core/ctx.h"

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

// Number of usable CUDA devices; 0 with `why` set ("built without CUDA", "no CUDA device found",
// "driver too old: ...") when there is none.
int ganc_device_count(char *why, size_t why_len);

// Makes ctx the backend `device` names: "cpu"; "cuda" (exit-2 error with the reason when this
// build or machine cannot); "auto" (CUDA when usable, else the CPU, with one line on `note`
// saying why). threads: CPU threads (0 = all cores). cudnn_conv: CUDA convolutions via cuDNN.
int ganc_ctx_init_device(ganc_ctx *ctx, const char *device, int threads, int cudnn_conv, FILE *note,
                         ganc_err *err);
// The same on GPU number `ordinal` (modulo the GPUs present): a data-parallel rank takes the GPU
// of its rank on the node.
int ganc_ctx_init_device_at(ganc_ctx *ctx, const char *device, int ordinal, int threads,
                            int cudnn_conv, FILE *note, ganc_err *err);
// One line naming the device ("CPU, 2 threads" or the GPU's name, memory, driver).
void ganc_device_describe(ganc_ctx *ctx, char *buf, size_t n);
// The most backend memory held at once, in bytes (device memory on CUDA; 0 on the CPU, where
// it is not tracked).
size_t ganc_backend_peak_bytes(ganc_ctx *ctx);
// Starts that peak again from what is held now: a benchmark's steady state, after its warm-up
// (the first step's variant timing and its scratch outputs left out, as PyTorch's baseline resets
// its allocator's peak after its warm-up).
void ganc_backend_reset_peak(ganc_ctx *ctx);
// A stopwatch for benchmarks, the same on every backend's terms: on CUDA, events on ctx's stream
// around the work issued between the two calls (ganc_stopwatch_ms waits for it); on the CPU, the
// wall clock. t0 is the CPU's start time (unused on CUDA).
void ganc_stopwatch_start(ganc_ctx *ctx, double *t0);
double ganc_stopwatch_ms(ganc_ctx *ctx, double t0);
// A profile's marks (core/prof.h), on the same terms: mark i is a point in the stream of work
// issued on ctx (CUDA: event i, recorded on ctx's stream; the CPU: the wall clock now, written to
// host_t[i]); ganc_mark_ms is the milliseconds from mark a to mark b (on CUDA it waits for b).
void ganc_mark(ganc_ctx *ctx, int i, double *host_t);
double ganc_mark_ms(ganc_ctx *ctx, int a, int b, const double *host_t);
// The convolution variants a run folder's kernels.log records (lines the CUDA backend wrote with
// ctx->tune_log), taken as the context's choices for those roles and shapes, so that a resumed
// run computes with the variants it started with (bit-exact resumes in tf32 and bf16 too).
// Returns the number of choices taken; 0 on the CPU or without the file.
int ganc_tune_read(ganc_ctx *ctx, const char *path);
// Frees what ganc_ctx_init_device made, whichever backend.
void ganc_ctx_release(ganc_ctx *ctx);

// Host buffers for batches. pinned = 1 asks for page-locked memory (faster, asynchronous uploads)
// and falls back to ordinary memory when CUDA is absent or pinning fails; *is_pinned says which.
// Out of memory is fatal with the size asked for.
void *ganc_host_alloc(size_t n, int pinned, int *is_pinned);
void ganc_host_free(void *p, int is_pinned);

#ifdef __cplusplus
}
#endif

#endif
