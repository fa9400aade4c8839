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
// Staged uploads: the next step's inputs copied while the device still runs the current one
// (CUDA: on a stream of their own, into staging memory; the ops issued after ganc_stage_end see
// them in place, the ops issued before never see them change). ganc_stage_begin(total bytes, at
// most 8 copies), ganc_stage_copy(dst, host, n) each, ganc_stage_end; the host sources must stay
// unchanged until ganc_stage_wait has returned (the host waits until they were read). On the
// CPU: plain copies, and the waits return at once.
void ganc_stage_begin(ganc_ctx *ctx, size_t bytes);
void ganc_stage_copy(ganc_ctx *ctx, void *dst, const void *host, size_t n);
void ganc_stage_end(ganc_ctx *ctx);
void ganc_stage_wait(ganc_ctx *ctx);

// ---- one captured step, replayed (CUDA graphs; the CPU backend has none) ---------------------
// ganc_capture_begin returns 0 and starts recording the ops that follow, instead of running
// them, or returns -1 when the backend cannot (the CPU); ganc_capture_end makes the graph.
// Inside a capture nothing may wait for the device, allocate, or read backend memory on the
// host; kernel arguments are fixed at capture, so what changes per replay must be read by the
// ops from backend memory (the trainer's ganc_step_args).
int ganc_capture_begin(ganc_ctx *ctx);
ganc_graph *ganc_capture_end(ganc_ctx *ctx);
void ganc_graph_launch(ganc_ctx *ctx, ganc_graph *g);
void ganc_graph_free(ganc_graph *g);
// Changes whenever backend memory that ops use implicitly (the scratch) moves: a graph captured
// under another generation names freed memory and must be captured again.
unsigned ganc_memory_generation(ganc_ctx *ctx);

// ---- bf16 storage (train.bf16_activations) -----------------------------------------------------
// 1 when conv2d_mixed reads a bf16 operand of this role and shape as it is (CUDA, a variant of the
// context's precision that reads bf16: then the result has the bits of the FP32 operand it was
// rounded from); 0 when it would widen it first (the CPU, and shapes or precisions without such
// a variant). Keeping a convolution's operand in bf16 pays only where this is 1.
int conv2d_reads_bf16(ganc_ctx *ctx, ganc_conv_role role, const conv_shape *s);

// ---- ops: <name>(ctx, parameters) for each entry of ops.def, on the context's backend -----------
#define GANC_OP(name, dispatch, params, args) void name GANC_OP_PARAMS params;
#include "ops/ops.def"
#undef GANC_OP

#ifdef __cplusplus
}
#endif

#endif
