// cuda_runtime.h — cudemu's stand-in for the CUDA runtime header, so that ganc's kernels/*.cu
// compile with the host C++ compiler and run on the CPU, for tests on machines without a GPU.
//
// cudemu is a test instrument, not a backend: it runs the real kernels and launchers (the same
// source files nvcc compiles) with one fiber per CUDA thread, so that what the GPU tests check
// (every launcher against its CPU twin, poisoned outputs, determinism) also runs in CI. What it
// checks beyond the kernels' results, and what only a GPU can show, is listed in cudemu.cc.
//
// It is found instead of the toolkit's header because tests/gpu/cudemu comes first on the include
// path of the emulated build (tests/CMakeLists.txt); nothing of the CUDA toolkit is included.
#ifndef CUDEMU_CUDA_RUNTIME_H
#define CUDEMU_CUDA_RUNTIME_H

#ifndef __cplusplus
#error "cudemu's cuda_runtime.h is for C++ (the kernels/*.cu files compiled as C++)"
#endif

#include <functional>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <tuple>
#include <type_traits>
#include <utility>

#define GANC_CUDEMU 1

// ---- the language: qualifiers become host C++
// -----------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// Blocks run one after another on one host thread (cudemu.cc), so a function-local static is
// exactly one block's shared memory. All of them live in one linker section, which cudemu fills
// with poison (signalling NaNs, cudemu.cc) before every block: shared memory starts as garbage on
// a GPU, and a kernel that reads what it did not write this block must not get the last block's
// values. GCC drops the section attribute of a static inside a function template (clang keeps
// it): a template kernel takes its shared memory from a plain __device__ function instead
// (kernels/conv.cu's conv_shared), or its tiles are never poisoned and ldmatrix and cp.async
// refuse their addresses as not shared.
#define __shared__ static __attribute__((section("cudemu_shared")))

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct __align__(16) float4 {
  float x, y, z, w;
};
static inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
struct __align__(8) uint2 { // act.cu: four bf16 halves in one load
  unsigned x, y;
};

// ---- runtime API: the subset ganc uses, with CUDA's names and meanings
// ---------------------------
typedef enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInsufficientDriver = 35,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorLaunchFailure = 719,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
  cudaErrorStreamCaptureWrongThread = 908,
} cudaError_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

typedef struct CUstream_st *cudaStream_t;
typedef struct CUevent_st *cudaEvent_t;
typedef struct CUgraph_st *cudaGraph_t;
typedef struct CUgraphExec_st *cudaGraphExec_t;
enum cudaStreamCaptureMode {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1,
  cudaStreamCaptureModeRelaxed = 2,
};
enum cudaStreamCaptureStatus {
  cudaStreamCaptureStatusNone = 0,
  cudaStreamCaptureStatusActive = 1,
  cudaStreamCaptureStatusInvalidated = 2,
};

// cudaFuncSetAttribute: the one attribute ganc sets (a kernel's dynamic shared memory above 48 KB).
enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
};

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  int maxThreadsPerBlock;
  int major, minor;
  int multiProcessorCount;
};

#define cudaStreamNonBlocking 0x01
#define cudaHostAllocDefault 0x00

const char *cudaGetErrorString(cudaError_t e);
cudaError_t cudaGetLastError(void);
cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaSetDevice(int d);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d);
cudaError_t cudaDriverGetVersion(int *v);
cudaError_t cudaRuntimeGetVersion(int *v);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaMalloc(void **p, size_t bytes);
cudaError_t cudaFree(void *p);
cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total_b);
cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t s);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t s);
// Events: launches complete before they return here, so an event is the host clock when recorded.
cudaError_t cudaEventCreate(cudaEvent_t *e);
#define cudaEventDisableTiming 0x02
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
// Streams run their work when it is issued, so a wait between streams has nothing to wait for.
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags);
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned flags);
// Stream capture and graphs. While a stream captures, its launches, copies and memsets are
// recorded (a kernel's arguments copied as at a launch) instead of run; cudaGraphLaunch runs the
// recorded operations in order, reading host sources when it runs, as CUDA's graphs do. As in
// CUDA's thread-local capture mode, synchronising, allocating or freeing while a capture is open
// is refused (cudaErrorStreamCaptureUnsupported) and invalidates the capture: what would read a
// result that was never computed, or change memory a recorded operation names.
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g);
cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus *status);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *e, cudaGraph_t g, unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t s);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e);
cudaError_t cudaGraphDestroy(cudaGraph_t g);
cudaError_t cudaFreeHost(void *p);

// ---- threads, blocks, barriers, launches (cudemu.cc)
// ----------------------------------------------
namespace cudemu {
uint3 thread_idx();
uint3 block_idx();
dim3 block_dim();
dim3 grid_dim();
void syncthreads(const char *file, int line);

struct Config {
  dim3 grid, block;
  cudaStream_t stream;
  const char *kernel; // its name as written at the launch, for messages
  size_t smem;        // dynamic shared memory per block (GANC_LAUNCH_SMEM), 0 for none
  const void *fn;     // the kernel, for its attributes (cudaFuncSetAttribute)
};
// Dynamic shared memory: the block's `extern __shared__` array (kernels/mma.cuh's
// dynamic_shared), poisoned before every block like the static shared memory, its first
// Config::smem bytes counted as shared by ldmatrix and cp.async. As on a GPU, a launch asking
// for more than 48 KB fails (cudaErrorInvalidValue) unless cudaFuncSetAttribute raised the
// kernel's limit to at least that much first, and no limit goes past 227 KB (sm_90's).
void *dynamic_shared();
cudaError_t set_max_dynamic_smem(const void *fn, int bytes);
// Runs body(arg) as every thread of every block of c (blocks in turn, threads as fibers), then
// checks device memory for writes outside allocations. A bad configuration is recorded for
// cudaGetLastError, as the CUDA runtime does.
void run(const Config &c, void (*body)(void *), void *arg);
// When `s` is capturing, appends op to its graph and returns true (the launch is recorded, not
// run); otherwise returns false.
bool record(cudaStream_t s, const std::function<void()> &op);

template <class... P> struct Launch {
  void (*kernel)(P...);
  Config cfg;
  // The arguments convert to the kernel's parameter types here, as at a launch; every thread then
  // gets its own copies (kernel parameters are per-thread values).
  // Under stream capture the copies are kept for every replay, as CUDA keeps a kernel node's.
  void operator()(P... a) const {
    std::tuple<typename std::decay<P>::type...> args(a...);
    void (*k)(P...) = kernel;
    auto call = [args, k] { std::apply(k, args); };
    const Config c = cfg;
    auto go = [call, c] {
      run(
          c, [](void *f) { (*static_cast<const decltype(call) *>(f))(); },
          const_cast<void *>(static_cast<const void *>(&call)));
    };
    if (!record(c.stream, go)) go();
  }
};
template <class... P>
Launch<P...> launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t st,
                    const char *name) {
  return Launch<P...>{kernel, Config{grid, block, st, name, smem, (const void *)kernel}};
}
} // namespace cudemu

template <class... P>
cudaError_t cudaFuncSetAttribute(void (*kernel)(P...), cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return cudaErrorInvalidValue;
  return ::cudemu::set_max_dynamic_smem((const void *)kernel, value);
}

// ---- warps (cudemu.cc) ---------------------------------------------------------------------
// A warp is 32 consecutive threads of a block in linear thread order (the last one may be partial).
// Every warp-level operation is built on one collective: each lane of the warp contributes `bytes`
// and receives all lanes' contributions in lane order (a lane that does not exist gives zeros).
// Like __syncthreads, a collective stops the calling fiber until every lane of its warp has
// reached the same collective (the same `what`, file and line); lanes that wait at different
// collectives, or a lane that returns or waits at __syncthreads while its warp waits at a
// collective, stop the program with the kernel, block, warp and places. `mask` must name every
// lane of the warp (cudemu emulates full-warp collectives only; ganc's kernels use no others).
namespace cudemu {
void warp_allgather(const void *mine, size_t bytes, void *all, unsigned mask, const char *what,
                    const char *file, int line);
unsigned lane_id();

// The tensor-core and asynchronous-copy instructions of PTX that ganc's kernels use (kernels/
// mma.cuh), emulated as the PTX ISA defines them: fragment layouts, operand rounding, zero fill.
// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32: d = a·b + c; a, b hold two bf16 per word.
void mma_bf16_m16n8k16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4],
                       const char *file, int line);
// mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32: a, b hold one tf32 per word.
void mma_tf32_m16n8k8(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4],
                      const char *file, int line);
// ldmatrix.sync.aligned.m8n8.x{num}[.trans].shared.b16 r, [row]: num = 1, 2 or 4.
void ldmatrix(uint32_t *r, int num, bool trans, const void *row, const char *file, int line);
// cp.async.ca.shared.global [dst], [src], cp_size, src_size (cp_size 4, 8 or 16; bytes past
// src_size are zero-filled); commit_group; wait_group n (n = -1: wait_all).
void cp_async(void *dst, const void *src, int cp_size, int src_size, const char *file, int line);
void cp_async_commit();
void cp_async_wait(int n);
// Warpgroup MMA (sm_90a; cudemu.cc says what is checked). shared_address: cvta.to.shared of a
// pointer into the launch's dynamic shared memory (the only shared memory wgmma may read here).
// wgmma_bf16: wgmma.mma_async.sync.aligned.m64n{n}k16.f32.bf16.bf16 d, {a_regs | a_desc}, b_desc,
// scale_d, 1, 1, tnsp_a, tnsp_b — d holds the thread's n/2 accumulators, a_regs (4 words) or,
// when null, a_desc gives A.
uint32_t shared_address(const void *p, const char *file, int line);
void wgmma_fence();
void fence_proxy_async();
void wgmma_commit();
void wgmma_wait(int n, const char *file, int line);
void wgmma_bf16(float *d, int n, const uint32_t *a_regs, uint64_t a_desc, uint64_t b_desc,
                int scale_d, int tnsp_a, int tnsp_b, const char *file, int line);
} // namespace cudemu

// The warp intrinsics of CUDA C++ on the collective above (full-warp masks only).
namespace cudemu_detail {
enum { SHFL_IDX, SHFL_XOR, SHFL_DOWN, SHFL_UP };
template <class T>
inline T shfl(unsigned mask, T v, int kind, int arg, int width, const char *what, const char *file,
              int line) {
  static_assert(std::is_trivially_copyable<T>::value && sizeof(T) <= 8, "a shuffled value");
  T all[32];
  ::cudemu::warp_allgather(&v, sizeof v, all, mask, what, file, line);
  const int lane = (int)::cudemu::lane_id(), base = lane & ~(width - 1);
  int src = lane;
  switch (kind) {
  case SHFL_IDX:
    src = base + (arg & (width - 1));
    break;
  case SHFL_XOR:
    src = lane ^ arg;
    if (src >= base + width) src = lane;
    break;
  case SHFL_DOWN:
    src = lane + arg < base + width ? lane + arg : lane;
    break;
  default:
    src = lane - arg >= base ? lane - arg : lane;
    break;
  }
  return all[src];
}
} // namespace cudemu_detail

template <class T>
inline T __shfl_sync(unsigned mask, T v, int src, int width = 32,
                     const char *file = __builtin_FILE(), int line = __builtin_LINE()) {
  return cudemu_detail::shfl(mask, v, cudemu_detail::SHFL_IDX, src, width, "__shfl_sync", file,
                             line);
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32,
                         const char *file = __builtin_FILE(), int line = __builtin_LINE()) {
  return cudemu_detail::shfl(mask, v, cudemu_detail::SHFL_XOR, lane_mask, width, "__shfl_xor_sync",
                             file, line);
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32,
                          const char *file = __builtin_FILE(), int line = __builtin_LINE()) {
  return cudemu_detail::shfl(mask, v, cudemu_detail::SHFL_DOWN, (int)delta, width,
                             "__shfl_down_sync", file, line);
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32,
                        const char *file = __builtin_FILE(), int line = __builtin_LINE()) {
  return cudemu_detail::shfl(mask, v, cudemu_detail::SHFL_UP, (int)delta, width, "__shfl_up_sync",
                             file, line);
}
inline void __syncwarp(unsigned mask = 0xffffffffu, const char *file = __builtin_FILE(),
                       int line = __builtin_LINE()) {
  ::cudemu::warp_allgather(nullptr, 0, nullptr, mask, "__syncwarp", file, line);
}

#define threadIdx (::cudemu::thread_idx())
#define blockIdx (::cudemu::block_idx())
#define blockDim (::cudemu::block_dim())
#define gridDim (::cudemu::grid_dim())
#define __syncthreads() ::cudemu::syncthreads(__FILE__, __LINE__)
// kernels/cuda_check.h: kernel<<<grid, block, 0 or smem, stream>>>(args) on nvcc.
#define GANC_LAUNCH(kernel, grid, block, stream)                                                   \
  ::cudemu::launch(kernel, grid, block, 0, stream, #kernel)
#define GANC_LAUNCH_SMEM(kernel, grid, block, smem, stream)                                        \
  ::cudemu::launch(kernel, grid, block, smem, stream, #kernel)

#endif
