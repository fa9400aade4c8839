// dispatch.h — what model and training code call: each op by its plain name, and backend memory.
// The one place that chooses between the CPU twins (src/ops/*.c) and the CUDA launchers
// (kernels/*.cu) is dispatch.c; arguments are exactly those of ops.h.
#ifndef GANC_DISPATCH_H
#define GANC_DISPATCH_H

#include "ops/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

// ---- backend memory (host on CPU, device on CUDA) -------------------------------------------
float *ganc_alloc(ganc_ctx *ctx, size_t n);      // n floats, zeroed; fatal when out of memory
void *ganc_alloc_bytes(ganc_ctx *ctx, size_t n); // n bytes, zeroed
void ganc_upload_bytes(ganc_ctx *ctx, void *dst, const void *host, size_t n);
void ganc_download_bytes(ganc_ctx *ctx, void *host, const void *src, size_t n);
void ganc_free(ganc_ctx *ctx, void *p);
void ganc_zero(ganc_ctx *ctx, float *p, size_t n);
void ganc_upload(ganc_ctx *ctx, float *dst, const float *host, size_t n);
void ganc_download(ganc_ctx *ctx, float *host, const float *src, size_t n);
void ganc_copy(ganc_ctx *ctx, float *dst, const float *src, size_t n); // within the backend
// Waits until every op issued so far has finished (a no-op on the CPU).
void ganc_sync(ganc_ctx *ctx);

// ---- ops: <name>(ctx, parameters) for each entry of ops.def, on the context's backend -----------
#define GANC_OP(name, dispatch, params, args) void name GANC_OP_PARAMS params;
#include "ops/ops.def"
#undef GANC_OP

#ifdef __cplusplus
}
#endif

#endif
