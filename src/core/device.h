// device.h — the one dispatch point between the CPU and CUDA backends for device queries and
// host memory. Callers never test GANC_HAVE_CUDA themselves.
#ifndef GANC_DEVICE_H
#define GANC_DEVICE_H

#include <stddef.h>

// Number of usable CUDA devices; 0 with `why` set ("built without CUDA", "no CUDA device found",
// "driver too old: ...") when there is none.
int ganc_device_count(char *why, size_t why_len);

// Host buffers for batches. pinned = 1 asks for page-locked memory (faster, asynchronous uploads)
// and falls back to ordinary memory when CUDA is absent or pinning fails; *is_pinned says which.
// Out of memory is fatal with the size asked for.
void *ganc_host_alloc(size_t n, int pinned, int *is_pinned);
void ganc_host_free(void *p, int is_pinned);

#endif
