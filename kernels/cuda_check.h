// cuda_check.h — the CUDA, cuBLAS and cuDNN members of ganc's checking-macro family (core/check.h):
// a failed call prints the call, file, line and the library's reason, and exits 1. Used only in
// kernels/*.cu. Launch errors are caught right after each launch with CUDA_CHECK_LAUNCH().
#ifndef GANC_CUDA_CHECK_H
#define GANC_CUDA_CHECK_H

#include "core/check.h"

#include <cuda_runtime.h>

#define CUDA_CHECK(call)                                                                           \
  do {                                                                                             \
    cudaError_t ganc_e_ = (call);                                                                  \
    if (ganc_e_ != cudaSuccess)                                                                    \
      ganc_fail_call(#call, __FILE__, __LINE__, cudaGetErrorString(ganc_e_));                      \
  } while (0)

#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

// A launch: GANC_LAUNCH(kernel, grid, block, stream)(args...) is kernel<<<grid, block, 0,
// stream>>>(args...). A macro rather than the chevrons at the call site so that the same
// launchers also build with the host C++ compiler under tests/gpu/cudemu (the CUDA emulator of the
// tests), whose cuda_runtime.h defines GANC_LAUNCH first.
// GANC_LAUNCH_SMEM adds the block's dynamic shared memory in bytes (kernels/mma.cuh's
// dynamic_shared; above 48 KB after cudaFuncSetAttribute).
#ifndef GANC_LAUNCH
#define GANC_LAUNCH(kernel, grid, block, stream) kernel<<<(grid), (block), 0, (stream)>>>
#define GANC_LAUNCH_SMEM(kernel, grid, block, smem, stream)                                        \
  kernel<<<(grid), (block), (smem), (stream)>>>
#endif

#define CUBLAS_CHECK(call)                                                                         \
  do {                                                                                             \
    int ganc_s_ = (int)(call);                                                                     \
    if (ganc_s_ != 0) {                                                                            \
      char ganc_b_[64];                                                                            \
      snprintf(ganc_b_, sizeof ganc_b_, "cuBLAS status %d", ganc_s_);                              \
      ganc_fail_call(#call, __FILE__, __LINE__, ganc_b_);                                          \
    }                                                                                              \
  } while (0)

// cudnnGetErrorString needs cudnn.h: files that use cuDNN include it before this header.
#ifdef CUDNN_MAJOR
#define CUDNN_CHECK(call)                                                                          \
  do {                                                                                             \
    cudnnStatus_t ganc_s_ = (call);                                                                \
    if (ganc_s_ != CUDNN_STATUS_SUCCESS)                                                           \
      ganc_fail_call(#call, __FILE__, __LINE__, cudnnGetErrorString(ganc_s_));                     \
  } while (0)
#endif

// Launchers state their assumptions with this instead of assert: the op, what was expected.
#define KERNEL_REQUIRE(cond, op, ...)                                                              \
  do {                                                                                             \
    if (!(cond)) ganc_die(GANC_EXIT_RUNTIME, "internal error in " op ": " __VA_ARGS__);            \
  } while (0)

#endif
