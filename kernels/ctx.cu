// ctx.cu — the CUDA side of ganc_ctx: device, stream, cuBLAS/cuDNN handles, device memory with
// out-of-memory messages a user can act on, and the device scratch arena.
#include <cudnn.h>

#include "kernels/cuda_check.h"
#include "kernels/kernels.h"

#include <stdio.h>
#include <stdlib.h>

// What ctx->cuda points to. Private to the CUDA backend; kernels/cudnn.cu reads the cuDNN handle.
// cuBLAS is not here: only ganc-bench uses it (as a baseline), so training and sampling need no
// cuBLAS library at run time.
struct ganc_cuda_state {
  int device;
  cudaStream_t stream;
  cudnnHandle_t cudnn;  // made on first use (ganc_cuda_cudnn_handle)
  cudaEvent_t watch[2]; // ganc_cuda_stopwatch_*, made on first use
  cudaEvent_t *marks;   // ganc_cuda_mark: a profile's points in the stream, made on first use
  int nmarks;
  float *scratch;
  size_t scratch_floats;
  unsigned scratch_gen; // bumped when the scratch moves: a captured graph names the old one
  // Staged uploads (ganc_cuda_stage_*): a stream of their own, two device staging slots, and
  // events: copied[s] (the upload into slot s is done), moved[s] (the compute stream has moved
  // slot s into place, so it may be written again). Made on first use.
  cudaStream_t up;
  char *stage[2];
  size_t stage_cap, stage_off;
  int slot, staged;
  cudaEvent_t copied[2], moved[2];
  struct {
    void *dst;
    size_t off, n;
  } items[8];
  int nitems;
  cudaDeviceProp prop;
  void *conv_tune;  // kernels/conv.cu's variant choices per role and shape
  int conv_pipe_ok; // conv.cu's pipelined variants may run (ganc_conv_cuda_init)
  int conv_wg_ok;   // conv.cu's wgmma variants may run (ganc_conv_cuda_wg_ok)
  // Live allocations, for the peak-memory figure ganc-bench reports (a few hundred at most).
  void **ptrs;
  size_t *sizes;
  int nallocs, cap;
  size_t in_use, peak;
};

static ganc_cuda_state *state(ganc_ctx *ctx) {
  if (ctx->backend != GANC_BACKEND_CUDA || !ctx->cuda)
    ganc_die(GANC_EXIT_RUNTIME, "internal error: a CUDA call on a context that is not CUDA");
  return (ganc_cuda_state *)ctx->cuda;
}

extern "C" int ganc_cuda_ctx_init(ganc_ctx *ctx, int device, char *why, size_t why_len) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    snprintf(why, why_len, "no CUDA device (%s)", cudaGetErrorString(e));
    (void)cudaGetLastError();
    return -1;
  }
  if (device < 0 || device >= n) {
    snprintf(why, why_len, "CUDA device %d does not exist (%d present)", device, n);
    return -1;
  }
  ganc_cuda_state *s = (ganc_cuda_state *)calloc(1, sizeof *s);
  if (!s) ganc_die(GANC_EXIT_RUNTIME, "out of host memory");
  s->device = device;
  e = cudaSetDevice(device);
  if (e == cudaSuccess) e = cudaGetDeviceProperties(&s->prop, device);
  if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking);
  if (e != cudaSuccess) {
    snprintf(why, why_len, "cannot use CUDA device %d: %s", device, cudaGetErrorString(e));
    free(s);
    (void)cudaGetLastError();
    return -1;
  }
  // The cuDNN handle is made on first use (ganc_cuda_cudnn_handle): runs that never call cuDNN
  // (our kernels only; the compute-sanitizer runs of the tests) never initialise it.
  ctx->backend = GANC_BACKEND_CUDA;
  ctx->cuda = s;
  if (ctx->threads < 1) ctx->threads = 1;
  s->conv_pipe_ok = ganc_conv_cuda_init(ctx) == 0; // kernel attributes, before any launch
  s->conv_wg_ok = ganc_conv_cuda_wg_ok(ctx);
  return 0;
}

extern "C" void ganc_cuda_ctx_free(ganc_ctx *ctx) {
  if (!ctx->cuda) return;
  ganc_cuda_state *s = (ganc_cuda_state *)ctx->cuda;
  cudaStreamSynchronize(s->stream);
  if (s->scratch) cudaFree(s->scratch);
  if (s->up) {
    cudaStreamSynchronize(s->up);
    cudaStreamDestroy(s->up);
    for (int i = 0; i < 2; i++) {
      cudaFree(s->stage[i]);
      cudaEventDestroy(s->copied[i]);
      cudaEventDestroy(s->moved[i]);
    }
  }
  free(s->ptrs);
  free(s->sizes);
  if (s->cudnn) cudnnDestroy(s->cudnn);
  ganc_conv_tune_free(s->conv_tune);
  for (int i = 0; i < 2; i++)
    if (s->watch[i]) cudaEventDestroy(s->watch[i]);
  for (int i = 0; i < s->nmarks; i++)
    cudaEventDestroy(s->marks[i]);
  free(s->marks);
  cudaStreamDestroy(s->stream);
  free(s);
  ctx->cuda = NULL;
}

extern "C" ganc_stream ganc_cuda_stream(ganc_ctx *ctx) { return state(ctx)->stream; }
extern "C" int ganc_cuda_cc(ganc_ctx *ctx) {
  const ganc_cuda_state *s = state(ctx);
  return s->prop.major * 10 + s->prop.minor;
}
extern "C" void **ganc_cuda_tune_slot(ganc_ctx *ctx) { return &state(ctx)->conv_tune; }
extern "C" int ganc_cuda_conv_pipe_ok(ganc_ctx *ctx) { return state(ctx)->conv_pipe_ok; }
extern "C" int ganc_cuda_conv_wg_ok(ganc_ctx *ctx) { return state(ctx)->conv_wg_ok; }
extern "C" const char *ganc_cuda_device_name(ganc_ctx *ctx) { return state(ctx)->prop.name; }

// Accessor for kernels/cudnn.cu: the handle, made on the first call.
extern "C" void *ganc_cuda_cudnn_handle(ganc_ctx *ctx) {
  ganc_cuda_state *s = state(ctx);
  if (!s->cudnn) {
    CUDNN_CHECK(cudnnCreate(&s->cudnn));
    CUDNN_CHECK(cudnnSetStream(s->cudnn, s->stream));
  }
  return s->cudnn;
}

extern "C" void *ganc_cuda_malloc(ganc_ctx *ctx, size_t bytes) {
  (void)state(ctx);
  void *p = NULL;
  cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
  if (e == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    ganc_die(GANC_EXIT_RUNTIME,
             "out of GPU memory: asked for %.1f MiB with %.1f MiB free of %.1f MiB\n"
             "---> HINT: use a smaller batch (--set train.batch=...) or a smaller model "
             "(model.g_base / model.d_base), or close other programs using the GPU",
             bytes / 1048576.0, free_b / 1048576.0, total_b / 1048576.0);
  }
  CUDA_CHECK(e);
  ganc_cuda_state *s = state(ctx);
  if (s->nallocs == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 256;
    s->ptrs = (void **)realloc(s->ptrs, sizeof(void *) * s->cap);
    s->sizes = (size_t *)realloc(s->sizes, sizeof(size_t) * s->cap);
    if (!s->ptrs || !s->sizes) ganc_die(GANC_EXIT_RUNTIME, "out of host memory");
  }
  s->ptrs[s->nallocs] = p;
  s->sizes[s->nallocs++] = bytes;
  s->in_use += bytes;
  if (s->in_use > s->peak) s->peak = s->in_use;
  return p;
}

extern "C" void ganc_cuda_free(ganc_ctx *ctx, void *p) {
  if (!p) return;
  ganc_cuda_state *s = state(ctx);
  for (int i = s->nallocs - 1; i >= 0; i--)
    if (s->ptrs[i] == p) {
      s->in_use -= s->sizes[i];
      s->ptrs[i] = s->ptrs[--s->nallocs];
      s->sizes[i] = s->sizes[s->nallocs];
      break;
    }
  CUDA_CHECK(cudaFree(p));
}

extern "C" size_t ganc_cuda_peak_bytes(ganc_ctx *ctx) { return state(ctx)->peak; }
extern "C" void ganc_cuda_reset_peak(ganc_ctx *ctx) { state(ctx)->peak = state(ctx)->in_use; }

extern "C" void ganc_cuda_memset0(ganc_ctx *ctx, void *p, size_t bytes) {
  CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, state(ctx)->stream));
}

extern "C" void ganc_cuda_h2d(ganc_ctx *ctx, void *dst, const void *src, size_t bytes) {
  cudaStream_t st = state(ctx)->stream;
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, st));
  // The host buffer may be reused as soon as we return (it is pageable in general).
  CUDA_CHECK(cudaStreamSynchronize(st));
}

extern "C" void ganc_cuda_d2h(ganc_ctx *ctx, void *dst, const void *src, size_t bytes) {
  cudaStream_t st = state(ctx)->stream;
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, st));
  CUDA_CHECK(cudaStreamSynchronize(st));
}

extern "C" void ganc_cuda_d2d(ganc_ctx *ctx, void *dst, const void *src, size_t bytes) {
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, state(ctx)->stream));
}

extern "C" void ganc_cuda_sync(ganc_ctx *ctx) {
  CUDA_CHECK(cudaStreamSynchronize(state(ctx)->stream));
}

extern "C" void ganc_cuda_stopwatch_start(ganc_ctx *ctx) {
  ganc_cuda_state *s = state(ctx);
  for (int i = 0; i < 2; i++)
    if (!s->watch[i]) CUDA_CHECK(cudaEventCreate(&s->watch[i]));
  CUDA_CHECK(cudaEventRecord(s->watch[0], s->stream));
}

extern "C" double ganc_cuda_stopwatch_ms(ganc_ctx *ctx) {
  ganc_cuda_state *s = state(ctx);
  if (!s->watch[0]) ganc_die(GANC_EXIT_RUNTIME, "internal error: stopwatch read before started");
  float ms = 0;
  CUDA_CHECK(cudaEventRecord(s->watch[1], s->stream));
  CUDA_CHECK(cudaEventSynchronize(s->watch[1]));
  CUDA_CHECK(cudaEventElapsedTime(&ms, s->watch[0], s->watch[1]));
  return ms;
}

extern "C" void ganc_cuda_mark(ganc_ctx *ctx, int i) {
  ganc_cuda_state *s = state(ctx);
  if (i < 0) ganc_die(GANC_EXIT_RUNTIME, "internal error: profile mark %d", i);
  if (i >= s->nmarks) { // a profile's first step makes its events; later steps reuse them
    int n = i + 1 > 2 * s->nmarks ? i + 1 : 2 * s->nmarks;
    cudaEvent_t *m = (cudaEvent_t *)realloc(s->marks, sizeof(cudaEvent_t) * (size_t)n);
    if (!m) ganc_die(GANC_EXIT_RUNTIME, "out of host memory for %d profile events", n);
    s->marks = m;
    for (; s->nmarks < n; s->nmarks++)
      CUDA_CHECK(cudaEventCreate(&s->marks[s->nmarks]));
  }
  CUDA_CHECK(cudaEventRecord(s->marks[i], s->stream));
}

extern "C" double ganc_cuda_mark_ms(ganc_ctx *ctx, int a, int b) {
  ganc_cuda_state *s = state(ctx);
  if (a < 0 || b < 0 || a >= s->nmarks || b >= s->nmarks)
    ganc_die(GANC_EXIT_RUNTIME, "internal error: profile marks %d, %d of %d", a, b, s->nmarks);
  float ms = 0;
  CUDA_CHECK(cudaEventSynchronize(s->marks[b]));
  CUDA_CHECK(cudaEventElapsedTime(&ms, s->marks[a], s->marks[b]));
  return ms;
}

extern "C" float *ganc_cuda_scratch(ganc_ctx *ctx, size_t n) {
  ganc_cuda_state *s = state(ctx);
  if (n > s->scratch_floats) {
    // The stream may still be using the old buffer.
    CUDA_CHECK(cudaStreamSynchronize(s->stream));
    if (s->scratch) ganc_cuda_free(ctx, s->scratch);
    s->scratch = NULL;
    s->scratch = (float *)ganc_cuda_malloc(ctx, n * sizeof(float));
    s->scratch_floats = n;
    s->scratch_gen++;
  }
  return s->scratch;
}

extern "C" unsigned ganc_cuda_memory_generation(ganc_ctx *ctx) { return state(ctx)->scratch_gen; }

// ---- staged uploads: the next step's inputs copied on a stream of their own ------------------
// The host's sources (the loader's pinned batch) go to a device staging slot on the upload
// stream, overlapping the compute stream's work; the compute stream then waits for them and moves
// them into place (device to device: ~1 µs per MB on an H200), so that its buffers (which a
// captured graph names) are never written while a step still reads them. Two slots alternate;
// before the upload stream writes a slot again it waits until the compute stream has moved the
// slot's previous contents.

extern "C" void ganc_cuda_stage_begin(ganc_ctx *ctx, size_t bytes) {
  ganc_cuda_state *s = state(ctx);
  if (s->staged) ganc_die(GANC_EXIT_RUNTIME, "internal error: ganc_cuda_stage_begin twice");
  if (!s->up) {
    CUDA_CHECK(cudaStreamCreateWithFlags(&s->up, cudaStreamNonBlocking));
    for (int i = 0; i < 2; i++) {
      CUDA_CHECK(cudaEventCreateWithFlags(&s->copied[i], cudaEventDisableTiming));
      CUDA_CHECK(cudaEventCreateWithFlags(&s->moved[i], cudaEventDisableTiming));
    }
  }
  const size_t need = bytes + 256 * 8; // each item starts 256-byte aligned
  if (need > s->stage_cap) {           // both streams may still use the old slots
    CUDA_CHECK(cudaStreamSynchronize(s->up));
    CUDA_CHECK(cudaStreamSynchronize(s->stream));
    for (int i = 0; i < 2; i++) {
      if (s->stage[i]) ganc_cuda_free(ctx, s->stage[i]);
      s->stage[i] = NULL;
    }
    for (int i = 0; i < 2; i++)
      s->stage[i] = (char *)ganc_cuda_malloc(ctx, need);
    s->stage_cap = need;
  }
  s->slot ^= 1;
  s->staged = 1;
  s->stage_off = 0;
  s->nitems = 0;
  // The slot's previous contents (two steps ago) must have been moved into place.
  CUDA_CHECK(cudaStreamWaitEvent(s->up, s->moved[s->slot], 0));
}

extern "C" void ganc_cuda_stage_copy(ganc_ctx *ctx, void *dst, const void *src, size_t n) {
  ganc_cuda_state *s = state(ctx);
  if (!s->staged || s->nitems == 8 || s->stage_off + n > s->stage_cap)
    ganc_die(GANC_EXIT_RUNTIME, "internal error: ganc_cuda_stage_copy outside its begin/end");
  if (n == 0) return;
  const size_t off = s->stage_off;
  CUDA_CHECK(cudaMemcpyAsync(s->stage[s->slot] + off, src, n, cudaMemcpyHostToDevice, s->up));
  s->items[s->nitems].dst = dst;
  s->items[s->nitems].off = off;
  s->items[s->nitems].n = n;
  s->nitems++;
  s->stage_off = (off + n + 255) / 256 * 256;
}

extern "C" void ganc_cuda_stage_end(ganc_ctx *ctx) {
  ganc_cuda_state *s = state(ctx);
  if (!s->staged) ganc_die(GANC_EXIT_RUNTIME, "internal error: ganc_cuda_stage_end alone");
  CUDA_CHECK(cudaEventRecord(s->copied[s->slot], s->up));
  CUDA_CHECK(cudaStreamWaitEvent(s->stream, s->copied[s->slot], 0));
  for (int i = 0; i < s->nitems; i++)
    CUDA_CHECK(cudaMemcpyAsync(s->items[i].dst, s->stage[s->slot] + s->items[i].off, s->items[i].n,
                               cudaMemcpyDeviceToDevice, s->stream));
  CUDA_CHECK(cudaEventRecord(s->moved[s->slot], s->stream));
  s->staged = 0;
}

extern "C" void ganc_cuda_stage_wait(ganc_ctx *ctx) {
  ganc_cuda_state *s = state(ctx);
  if (s->up) CUDA_CHECK(cudaEventSynchronize(s->copied[s->slot]));
}

// ---- CUDA graphs: one capture of the context's stream, replayed ------------------------------

struct ganc_graph {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
};

extern "C" void ganc_cuda_capture_begin(ganc_ctx *ctx) {
  // Thread-local: the loader's threads may use the runtime (pinned buffers) meanwhile.
  CUDA_CHECK(cudaStreamBeginCapture(state(ctx)->stream, cudaStreamCaptureModeThreadLocal));
}

extern "C" ganc_graph *ganc_cuda_capture_end(ganc_ctx *ctx) {
  ganc_graph *g = (ganc_graph *)calloc(1, sizeof *g);
  if (!g) ganc_die(GANC_EXIT_RUNTIME, "out of host memory");
  CUDA_CHECK(cudaStreamEndCapture(state(ctx)->stream, &g->graph));
  CUDA_CHECK(cudaGraphInstantiate(&g->exec, g->graph, 0));
  return g;
}

extern "C" void ganc_cuda_graph_launch(ganc_ctx *ctx, ganc_graph *g) {
  CUDA_CHECK(cudaGraphLaunch(g->exec, state(ctx)->stream));
}

extern "C" void ganc_cuda_graph_free(ganc_graph *g) {
  if (!g) return;
  if (g->exec) CUDA_CHECK(cudaGraphExecDestroy(g->exec));
  if (g->graph) CUDA_CHECK(cudaGraphDestroy(g->graph));
  free(g);
}

extern "C" void ganc_cuda_describe(ganc_ctx *ctx, char *buf, size_t n) {
  ganc_cuda_state *s = state(ctx);
  int drv = 0, rt = 0;
  cudaDriverGetVersion(&drv);
  cudaRuntimeGetVersion(&rt);
  snprintf(buf, n, "%s (sm_%d%d, %d SMs, %.1f GiB), driver %d.%d, runtime %d.%d, cuDNN %zu",
           s->prop.name, s->prop.major, s->prop.minor, s->prop.multiProcessorCount,
           s->prop.totalGlobalMem / 1073741824.0, drv / 1000, (drv % 1000) / 10, rt / 1000,
           (rt % 1000) / 10, cudnnGetVersion());
}
