// kernels.h — the C-callable launchers of the CUDA backend (kernels/*.cu).
//
// Every op of src/ops/ops.h has a launcher here named <op>_cuda with the same arguments as its
// CPU twin <op>_cpu plus the stream after the context. Pointers are device memory. Launchers check
// their assumptions (sizes, alignment) and report violations through ganc_die with the op's
// name; kernel launch errors are checked by CUDA_CHECK (kernels/cuda_check.h).
//
// Gradient rule (as ops.h): parameter gradients accumulate (+=), activation gradients overwrite.
#ifndef GANC_KERNELS_H
#define GANC_KERNELS_H

#include "core/ctx.h"
#include "ops/ops.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// cudaStream_t without including CUDA headers in C code (the same type as CUDA's).
typedef struct CUstream_st *ganc_stream;

// ---- context and memory (kernels/ctx.cu) ------------------------------------------------------
// Makes ctx a CUDA context on `device`: a stream, and a cuDNN handle (oracle, baseline and the
// optional cuDNN convolution backend) made when first asked for. Returns 0, or -1 with `why` set.
int ganc_cuda_ctx_init(ganc_ctx *ctx, int device, char *why, size_t why_len);
void ganc_cuda_ctx_free(ganc_ctx *ctx);
void *ganc_cuda_cudnn_handle(ganc_ctx *ctx); // cudnnHandle_t
ganc_stream ganc_cuda_stream(ganc_ctx *ctx);
// Device memory. Out of memory is fatal with the size asked for, what is free, and a hint
// (a smaller batch); never a bare CUDA error string.
void *ganc_cuda_malloc(ganc_ctx *ctx, size_t bytes);
void ganc_cuda_free(ganc_ctx *ctx, void *p);
void ganc_cuda_memset0(ganc_ctx *ctx, void *p, size_t bytes);
void ganc_cuda_h2d(ganc_ctx *ctx, void *dst, const void *src, size_t bytes);
void ganc_cuda_d2h(ganc_ctx *ctx, void *dst, const void *src, size_t bytes);
void ganc_cuda_d2d(ganc_ctx *ctx, void *dst, const void *src, size_t bytes);
void ganc_cuda_sync(ganc_ctx *ctx);
// The most device memory ganc_cuda_malloc has held at once (bytes), for ganc-bench.
size_t ganc_cuda_peak_bytes(ganc_ctx *ctx);
// Starts the peak again from what is held now (a benchmark's steady state after its warm-up).
void ganc_cuda_reset_peak(ganc_ctx *ctx);
// A stopwatch of CUDA events on the context's stream (ganc-bench --step): _ms records the end,
// waits for it and returns the milliseconds since _start.
void ganc_cuda_stopwatch_start(ganc_ctx *ctx);
double ganc_cuda_stopwatch_ms(ganc_ctx *ctx);
// A profile's marks (core/device.h: ganc_mark): event i recorded on the context's stream (the
// events made on first use, reused by later steps); the milliseconds from mark a to mark b, once
// b has been reached.
void ganc_cuda_mark(ganc_ctx *ctx, int i);
double ganc_cuda_mark_ms(ganc_ctx *ctx, int a, int b);
// Device scratch of at least n floats (grows; contents not kept).
float *ganc_cuda_scratch(ganc_ctx *ctx, size_t n);
// Changes whenever the scratch moves, so that a captured graph (which names it) is made again.
unsigned ganc_cuda_memory_generation(ganc_ctx *ctx);
// Staged uploads on a stream of their own (dispatch.h's ganc_stage_*): begin (at most `bytes`
// in all, at most 8 copies), copy, end (the context's stream waits for them and moves them into
// place), wait (the host waits until the last staged sources were read).
void ganc_cuda_stage_begin(ganc_ctx *ctx, size_t bytes);
void ganc_cuda_stage_copy(ganc_ctx *ctx, void *dst, const void *src, size_t n);
void ganc_cuda_stage_end(ganc_ctx *ctx);
void ganc_cuda_stage_wait(ganc_ctx *ctx);
// CUDA graphs: capture the context's stream (nothing captured runs; no synchronisation,
// allocation or host read may happen inside), then replay it.
void ganc_cuda_capture_begin(ganc_ctx *ctx);
ganc_graph *ganc_cuda_capture_end(ganc_ctx *ctx);
void ganc_cuda_graph_launch(ganc_ctx *ctx, ganc_graph *g);
void ganc_cuda_graph_free(ganc_graph *g);
// Name, SM count, memory, measured-peak hints for reports.
void ganc_cuda_describe(ganc_ctx *ctx, char *buf, size_t n);

// ---- the launchers of every op of src/ops/ops.def (what each computes is written there) ---------
// <name>_cuda(ctx, stream, parameters) in kernels/<file>.cu; for the convolutions (dispatch CONV)
// also <name>_cudnn(ctx, stream, parameters) in kernels/cudnn.cu: the same roles through cuDNN with
// NHWC tensors and KRSC↔RSCK handled by a weight transpose, cuDNN's fastest true-FP32 algorithm
// (cudnnFind*, cached per shape): oracle for tests, baseline for ganc-bench, `backend = cudnn`.
#define GANC_OP_PARAMS_CUDA(...) (ganc_ctx * ctx, ganc_stream st, __VA_ARGS__)
#define GANC_OP_CUDNN_PLAIN(name, params)
#define GANC_OP_CUDNN_CONV(name, params) void name##_cudnn GANC_OP_PARAMS_CUDA params;
#define GANC_OP(name, dispatch, params, args)                                                      \
  void name##_cuda GANC_OP_PARAMS_CUDA params;                                                     \
  GANC_OP_CUDNN_##dispatch(name, params)
#include "ops/ops.def"
#undef GANC_OP

// ---- convolution variants (kernels/conv.cu) ----------------------------------------------------
// Every implementation of the three convolution roles is one row of a table: its name, the
// precision of its products, the compute capability it needs, whether it repeats its bits, and the
// unit roundoff of its operands (what the tests' tolerances are derived from). conv2d_*_cuda (the
// launchers of ops.def) run the variant conv2d_pick_variant_cuda chooses for the context:
//   ctx->conv_variant named          that variant (a wrong name or precision is an error);
//   FP32                             the first variant of the table that supports the role and
//                                    shape (a fixed rule: FP32 runs stay bit-reproducible);
//   TF32, BF16                       the variants of that precision the device and shape support;
//                                    each first checked against the FP32 kernel on the caller's
//                                    operands (conv.cu: the agreement check; one that disagrees is
//                                    never chosen; none agreeing widens a bf16-stored operand,
//                                    else stops the run); with more than
//                                    one left, each is timed once on the shape (CUDA
//                                    events, the median of 3 runs after a warm-up, into scratch)
//                                    and the fastest kept for that role and shape in the context,
//                                    written to ctx->tune_log (and read back on resume) and to
//                                    the device's cache file, whose choices later runs on the
//                                    same kind of GPU reuse (conv.cu: cache_path).
typedef struct {
  const char *name;
  ganc_precision precision;
  int min_cc;                 // compute capability x 10 (80: mma.sync, cvt.rn.bf16x2)
  int deterministic;          // the same bits from run to run on one GPU
  double unit_roundoff;       // of its operands: 2^-24 (FP32), 2^-11 (TF32), 2^-8 (BF16)
  unsigned roles;             // the roles it implements: bit 1 << ganc_conv_role
  int min_stride, max_stride; // the strides it takes
  const char *what;
  int chan_multiple; // C and K must be multiples of it (0 or 1: any)
} ganc_conv_variant;
int ganc_conv_variant_count(void);
const ganc_conv_variant *ganc_conv_variant_at(int i);
int ganc_conv_variant_find(const char *name); // its index, or -1
// 1 when variant v implements `role` for shape s (the device's compute capability aside).
int ganc_conv_variant_supports(int v, ganc_conv_role role, const conv_shape *s);
// 1 when this device runs variant v (compute capability, shared memory, sm_90a code).
int ganc_conv_variant_runs(ganc_ctx *ctx, int v);
// Runs one role with variant v: in0, in1 are (x, w) for FWD, (dy, w) for BWD_DATA, (x, dy) for
// BWD_WEIGHT; out is y, dx (overwritten) or dw (accumulated), as ops.def says.
void conv2d_run_variant_cuda(ganc_ctx *ctx, ganc_stream st, int v, ganc_conv_role role,
                             const conv_shape *s, const float *in0, const float *in1, float *out);
// The same with activation operands stored in bf16 (uint16_t, the upper half of the float,
// rounded to nearest even) where in0_bf16 / in1_bf16 say so: in0 of any role (x, dy, x), in1 only
// of BWD_WEIGHT (dy), either or both; the weights stay FP32. Only the variants for
// which ganc_conv_variant_reads_bf16 is 1 (the bf16 variants but mma-bf16-cp3, whose cp.async
// copies 4-byte elements) read them; the result is the same bits as the variant on the float
// operands the bf16 ones came from (the variant rounds those to bf16 anyway). out_bf16 (FWD and
// BWD_DATA, any variant): y or dx written in bf16, each value rounded to nearest even as the
// epilogue stores it — the halves of the FP32 output, bit for bit. epi (FWD and BWD_DATA, any
// variant; NULL: none): the activation or its derivative applied to each value before it is
// stored (ops.h: ganc_conv_epi) — the separate op's bits on the FP32 output. wh (FWD and
// BWD_DATA; NULL: none): the weights' bf16 halves (round(in1), element for element), which g128's
// family reads instead of in1 when in0 is bf16 too (no rounding, and by cp.async); the others,
// and every other case, read in1 — the same bits either way.
int ganc_conv_variant_reads_bf16(int v);
void conv2d_run_variant_mixed_cuda(ganc_ctx *ctx, ganc_stream st, int v, ganc_conv_role role,
                                   const conv_shape *s, const void *in0, int in0_bf16,
                                   const void *in1, int in1_bf16, const uint16_t *wh, void *out,
                                   int out_bf16, const ganc_conv_epi *epi);
// The variant the launchers use for this role and shape on ctx (choosing it on first use).
int conv2d_pick_variant_cuda(ganc_ctx *ctx, ganc_stream st, ganc_conv_role role,
                             const conv_shape *s, const float *in0, const float *in1);
// 1 when conv2d_mixed_cuda (ops.def) reads a bf16 operand of this role and shape directly on ctx
// (a variant of its precision reads bf16 — or train.conv_variant's pick does — and the device runs
// it; not with cuDNN); 0 when it would widen the operand first.
int conv2d_reads_bf16_cuda(ganc_ctx *ctx, ganc_conv_role role, const conv_shape *s);
// The device's compute capability x 10 (kernels/ctx.cu), and the context's slot for conv.cu's
// choices (freed with the context by ganc_conv_tune_free).
int ganc_cuda_cc(ganc_ctx *ctx);
const char *ganc_cuda_device_name(ganc_ctx *ctx);
void **ganc_cuda_tune_slot(ganc_ctx *ctx);
void ganc_conv_tune_free(void *tune);
// How many times the agreement check (conv.cu) left a variant out on this context: 0 unless a
// variant's results disagreed with the FP32 kernel's (or GANC_TEST_CONV_FAULT said to pretend so).
int ganc_conv_disagreements(ganc_ctx *ctx);
// conv.cu's per-device kernel attributes (the pipelined variants' dynamic shared memory), set by
// ganc_cuda_ctx_init before any launch: 0, or -1 where the device refused them, and whether it
// did not (ctx.cu keeps the answer for conv.cu).
int ganc_conv_cuda_init(ganc_ctx *ctx);
int ganc_cuda_conv_pipe_ok(ganc_ctx *ctx);
// conv.cu's wgmma variants may run: compute capability 9.0 and sm_90a code in this build (asked
// once per context by ganc_conv_cuda_wg_ok; ganc_cuda_conv_wg_ok reads the answer).
int ganc_conv_cuda_wg_ok(ganc_ctx *ctx);
int ganc_cuda_conv_wg_ok(ganc_ctx *ctx);
// Reads back the lines conv2d_pick_variant_cuda wrote to a tune log as the context's choices
// (lines it does not recognise, and variants this build lacks, are skipped). Returns how many.
int ganc_conv_tune_read(ganc_ctx *ctx, FILE *f);

// ---- latents (kernels/pixels.cu): the GPU side of core/philox.h ---------------------------------
// z [n, z_dim]: row i is ganc_latent(seed, first + i) of core/philox.h, bit-identical to the CPU.
void latents_cuda(ganc_ctx *ctx, ganc_stream st, uint64_t seed, uint64_t first, int n, int z_dim,
                  float *z);

// ---- probes of the tensor-core primitives (kernels/mma_probe.cu; test_gpu_mma only) ------------
// One warp: kind BF16 / TF32 computes D [16][8] = A · B from FP32 A, B with fragments built per
// lane; LDMATRIX from bf16 bits staged by cp.async and loaded by ldmatrix; SHFL the four shuffles;
// the FAULT kinds are faults the emulator must stop (never launched on a GPU). mutation 0 is
// correct, 1-3 each perturb one index (what they do: mma_probe.cu).
enum {
  GANC_PROBE_BF16 = 0,
  GANC_PROBE_TF32 = 1,
  GANC_PROBE_LDMATRIX = 2,
  GANC_PROBE_SHFL = 3,
  GANC_PROBE_FAULT_DIVERGE = 4,
  GANC_PROBE_FAULT_RETURN = 5,
  GANC_PROBE_FAULT_LDMATRIX_GLOBAL = 6,
  GANC_PROBE_FAULT_CP_ASYNC_RACE = 7,
  // The emulator's static shared memory (never launched on a GPU, where it reads garbage): each of
  // 3 blocks of 32 threads reads s[l] before any write (D[64b + l]: poison under cudemu), then
  // what its neighbour lane wrote, 100b + (l+1)%32 (D[64b + 32 + l]).
  GANC_PROBE_SHARED = 8,
  // One warpgroup's wgmma (sm_90a): kind GANC_PROBE_WGMMA + cfg (0..127; the operands' sources,
  // major-ness and swizzles: mma_probe.cu), D [64][128] = A [64][64] · B [64][128] from bf16 bits
  // (a: A then Aᵀ; b: B then Bᵀ); mutations 1-4 perturb, 10-16 are faults for the emulator.
  GANC_PROBE_WGMMA = 64,
};
void mma_probe_cuda(ganc_ctx *ctx, ganc_stream st, int kind, int mutation, const void *a,
                    const void *b, float *d);

#ifdef __cplusplus
}
#endif

#endif
