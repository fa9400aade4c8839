// device.c — CPU side of device.h; forwards to kernels/device.cu when the CUDA backend is built.
#include "core/device.h"

#include "core/check.h"

#include <stdio.h>
#include <stdlib.h>

#ifdef GANC_HAVE_CUDA
// Launcher-side API of kernels/device.cu (C linkage).
int ganc_cuda_device_count(char *why, size_t why_len);
void *ganc_cuda_host_alloc(size_t n);
void ganc_cuda_host_free(void *p);
#else
static int ganc_cuda_device_count(char *why, size_t why_len) {
  snprintf(why, why_len, "this build of ganc has no CUDA backend (no CUDA toolkit at build time)");
  return 0;
}
static void *ganc_cuda_host_alloc(size_t n) {
  (void)n;
  return NULL;
}
static void ganc_cuda_host_free(void *p) { (void)p; }
#endif

int ganc_device_count(char *why, size_t why_len) { return ganc_cuda_device_count(why, why_len); }

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
