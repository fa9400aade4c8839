// device.c — CPU side of device.h; forwards to kernels/device.cu when the CUDA backend is built.
#include "core/device.h"

#include "core/check.h"
#include "core/util.h" // ganc_now

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef GANC_HAVE_CUDA
#include "kernels/kernels.h"
// Launcher-side API of kernels/device.cu (C linkage).
int ganc_cuda_device_count(char *why, size_t why_len);
void *ganc_cuda_host_alloc(size_t n);
void ganc_cuda_host_free(void *p);
#else
static int ganc_cuda_ctx_init(ganc_ctx *ctx, int device, char *why, size_t why_len) {
  (void)ctx, (void)device;
  snprintf(why, why_len, "this build of ganc has no CUDA backend");
  return -1;
}
static void ganc_cuda_ctx_free(ganc_ctx *ctx) { (void)ctx; }
static size_t ganc_cuda_peak_bytes(ganc_ctx *ctx) {
  (void)ctx;
  return 0;
}
static void ganc_cuda_reset_peak(ganc_ctx *ctx) { (void)ctx; }
static void ganc_cuda_stopwatch_start(ganc_ctx *ctx) { (void)ctx; }
static double ganc_cuda_stopwatch_ms(ganc_ctx *ctx) {
  (void)ctx;
  return 0;
}
static void ganc_cuda_mark(ganc_ctx *ctx, int i) { (void)ctx, (void)i; }
static double ganc_cuda_mark_ms(ganc_ctx *ctx, int a, int b) {
  (void)ctx, (void)a, (void)b;
  return 0;
}
static void ganc_cuda_describe(ganc_ctx *ctx, char *buf, size_t n) {
  (void)ctx;
  snprintf(buf, n, "none");
}
static int ganc_cuda_device_count(char *why, size_t why_len) {
  snprintf(why, why_len, "this build of ganc has no CUDA backend (no CUDA toolkit at build time)");
  return 0;
}
static void *ganc_cuda_host_alloc(size_t n) {
  (void)n;
  return NULL;
}
static void ganc_cuda_host_free(void *p) { (void)p; }
static int ganc_conv_tune_read(ganc_ctx *ctx, FILE *f) {
  (void)ctx, (void)f;
  return 0;
}
#endif

int ganc_tune_read(ganc_ctx *ctx, const char *path) {
  if (ctx->backend != GANC_BACKEND_CUDA) return 0;
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  const int n = ganc_conv_tune_read(ctx, f);
  fclose(f);
  return n;
}

int ganc_device_count(char *why, size_t why_len) { return ganc_cuda_device_count(why, why_len); }

int ganc_ctx_init_device(ganc_ctx *ctx, const char *device, int threads, int cudnn_conv, FILE *note,
                         ganc_err *err) {
  return ganc_ctx_init_device_at(ctx, device, 0, threads, cudnn_conv, note, err);
}

int ganc_ctx_init_device_at(ganc_ctx *ctx, const char *device, int ordinal, int threads,
                            int cudnn_conv, FILE *note, ganc_err *err) {
  char why[512] = "";
  int want_cuda = !strcmp(device, "cuda"), is_auto = !strcmp(device, "auto");
  if (!want_cuda && !is_auto && strcmp(device, "cpu")) {
    ganc_err_set(err, GANC_EXIT_USAGE, "device must be auto, cpu or cuda, not '%s'", device);
    return -1;
  }
  ganc_ctx_init_cpu(ctx, threads); // CPU threads serve the host side on every backend
  if (want_cuda || is_auto) {
    int n = ganc_device_count(why, sizeof why);
    if (n > 0 && ganc_cuda_ctx_init(ctx, ordinal % n, why, sizeof why) == 0) {
      ctx->cudnn_conv = cudnn_conv;
      return 0;
    }
    if (want_cuda) {
      ganc_err_set(err, GANC_EXIT_USAGE, "--device cuda: %s\n---> HINT: use --device cpu", why);
      return -1;
    }
    if (note) fprintf(note, "device: CPU (%s)\n", why);
  }
  return 0;
}

void ganc_device_describe(ganc_ctx *ctx, char *buf, size_t n) {
  if (ctx->backend == GANC_BACKEND_CUDA)
    ganc_cuda_describe(ctx, buf, n);
  else
    snprintf(buf, n, "CPU, %d threads", ctx->threads);
}

size_t ganc_backend_peak_bytes(ganc_ctx *ctx) {
  return ctx->backend == GANC_BACKEND_CUDA ? ganc_cuda_peak_bytes(ctx) : 0;
}
void ganc_backend_reset_peak(ganc_ctx *ctx) {
  if (ctx->backend == GANC_BACKEND_CUDA) ganc_cuda_reset_peak(ctx);
}

void ganc_stopwatch_start(ganc_ctx *ctx, double *t0) {
  *t0 = ganc_now();
  if (ctx->backend == GANC_BACKEND_CUDA) ganc_cuda_stopwatch_start(ctx);
}

double ganc_stopwatch_ms(ganc_ctx *ctx, double t0) {
  if (ctx->backend == GANC_BACKEND_CUDA) return ganc_cuda_stopwatch_ms(ctx);
  return 1e3 * (ganc_now() - t0);
}

void ganc_mark(ganc_ctx *ctx, int i, double *host_t) {
  if (ctx->backend == GANC_BACKEND_CUDA)
    ganc_cuda_mark(ctx, i);
  else
    host_t[i] = ganc_now();
}

double ganc_mark_ms(ganc_ctx *ctx, int a, int b, const double *host_t) {
  if (ctx->backend == GANC_BACKEND_CUDA) return ganc_cuda_mark_ms(ctx, a, b);
  return 1e3 * (host_t[b] - host_t[a]);
}

void ganc_ctx_release(ganc_ctx *ctx) {
  if (ctx->backend == GANC_BACKEND_CUDA) ganc_cuda_ctx_free(ctx);
  ctx->backend = GANC_BACKEND_CPU;
  ganc_ctx_free(ctx);
}

void *ganc_host_alloc(size_t n, int pinned, int *is_pinned) {
  void *p = NULL;
  if (pinned) p = ganc_cuda_host_alloc(n); // NULL when no CUDA or the driver refuses
  if (is_pinned) *is_pinned = p != NULL;
  if (!p) p = xmalloc(n);
  return p;
}

void ganc_host_free(void *p, int is_pinned) {
  if (!p) return;
  if (is_pinned)
    ganc_cuda_host_free(p);
  else
    free(p);
}
